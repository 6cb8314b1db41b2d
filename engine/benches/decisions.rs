//! Decisions per second on the default bundle, single-threaded, from a transaction's JSON text to
//! its decision, over a mix of 26 transactions (benches/mix.json) with consents in the registry.
//!
//! The same mix as one batch, decided phase by phase as blocks and batches are.
//!
//! Beside it, for the same requests in the same run, the naive path: the request parsed the same
//! way, then entities and context through Cedar's JSON parsers with the schema
//! (`Entities::from_json_value`), and `is_authorized` over the whole policy set — Cedar only.
//! And the naive full decision, the like-for-like baseline: the same naive Cedar path plus every
//! applicable Rhai module called with complete `tx`/`env` maps (`RuleModules::run_reference`).
//!
//! One row measures the machine itself: SHA-256 of 1 KiB took 0.58 µs on the machine the targets
//! were set on, so its ratio to that figure says how much slower or faster this run's machine is
//! at plain computation (network-bound figures are calibrated by the load bench's echo instead).
//!
//! Run: `cargo bench -p accord-engine --bench decisions`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use accord_engine::decision::DecisionBuilder;
use accord_engine::rules::Stage;
use accord_engine::testing::{benchmark_mix, default_bundle};
use accord_engine::transaction::AccessRequest;
use accord_engine::{Bundle, InMemoryConsentRegistry};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::Value;
use std::hint::black_box;

// The same allocator as the `accord` binary, so the figures are the shipped binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Mix {
    bundle: Bundle,
    registry: InMemoryConsentRegistry,
    texts: Vec<String>,
}

fn load() -> Mix {
    let mix = benchmark_mix();
    Mix {
        bundle: default_bundle(),
        registry: mix.registry,
        texts: mix.texts,
    }
}

fn decisions(c: &mut Criterion) {
    let mix = load();
    let n = mix.texts.len() as u64;
    let mut group = c.benchmark_group("decisions");
    group.throughput(Throughput::Elements(n));

    group.bench_function("accord: JSON text -> decision (sliced Cedar + Rhai)", |b| {
        b.iter(|| {
            for text in &mix.texts {
                let request = AccessRequest::from_json(black_box(text)).expect("parses");
                black_box(mix.bundle.decide(&request, &mix.registry, 0));
            }
        })
    });

    // The same requests as one batch (how blocks and `/v1/evaluate/batch` are decided): parsed,
    // then decided phase by phase (`Bundle::decide_all`).
    group.bench_function(
        "accord batch: JSON texts -> decisions, phase by phase",
        |b| {
            b.iter(|| {
                let requests: Vec<AccessRequest> = mix
                    .texts
                    .iter()
                    .map(|text| AccessRequest::from_json(black_box(text)).expect("parses"))
                    .collect();
                black_box(mix.bundle.decide_all(&requests, &mix.registry, 0));
            })
        },
    );

    group.bench_function("naive: JSON text -> Cedar JSON entities + whole set", |b| {
        b.iter(|| {
            for text in &mix.texts {
                let request = AccessRequest::from_json(black_box(text)).expect("parses");
                let derived = mix.bundle.derive(&request, &mix.registry).expect("derives");
                black_box(
                    mix.bundle
                        .cedar()
                        .authorize_reference(&request, &derived.facts())
                        .expect("naive path"),
                );
            }
        })
    });

    group.bench_function(
        "naive full: Cedar JSON entities + whole set + every Rhai module, full maps",
        |b| {
            b.iter(|| {
                for text in &mix.texts {
                    let request = AccessRequest::from_json(black_box(text)).expect("parses");
                    let derived = mix.bundle.derive(&request, &mix.registry).expect("derives");
                    let facts = derived.facts();
                    let cedar = mix
                        .bundle
                        .cedar()
                        .authorize_reference(&request, &facts)
                        .expect("naive path");
                    let mut rules = DecisionBuilder::new();
                    // Naive: every module, obligations-only ones too, whatever the outcome.
                    for stage in [Stage::Verdicts, Stage::Obligations] {
                        mix.bundle
                            .rules()
                            .run_reference(stage, &request, &facts, &mut rules);
                    }
                    black_box((cedar, rules));
                }
            })
        },
    );

    // Where the time goes: parsing alone, and the decision from an already parsed request.
    group.bench_function("part: JSON text -> typed request", |b| {
        b.iter(|| {
            for text in &mix.texts {
                black_box(AccessRequest::from_json(black_box(text)).expect("parses"));
            }
        })
    });
    let parsed: Vec<AccessRequest> = mix
        .texts
        .iter()
        .map(|t| AccessRequest::from_json(t).expect("parses"))
        .collect();
    group.bench_function("part: typed request -> decision", |b| {
        b.iter_batched(
            || (),
            |_| {
                for request in &parsed {
                    black_box(mix.bundle.decide(request, &mix.registry, 0));
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// What a block pays for the consent state whatever its transactions: the staged copy of the
/// registry and the digest in the state root, with 100,000 consents held.
fn consent_state(c: &mut Criterion) {
    use accord_engine::consent::ConsentRegistry;
    let n = 100_000;
    let grants: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({ "id": format!("tx-{i}"), "kind": "consent",
                "timestamp": "2026-02-01T09:00:00Z",
                "consent": { "id": format!("consent/c-{i}"), "status": "active",
                    "patient": format!("patient/p-{}", i / 3), "grantee": "org/uni-lab",
                    "purposes": ["HRESCH"], "actions": ["read"], "data_categories": ["general"],
                    "period": { "start": "2026-02-01T00:00:00Z", "end": "2027-02-01T00:00:00Z" } } })
        })
        .collect();
    let registry = InMemoryConsentRegistry::from_transactions(&grants).expect("grants apply");
    let mut group = c.benchmark_group("consent state, 100,000 consents");
    group.bench_function("staged copy", |b| b.iter(|| black_box(registry.clone())));
    group.bench_function("digest", |b| b.iter(|| black_box(registry.digest())));
    group.finish();
}

/// A building block with a known speed on the reference machine, to calibrate this run's.
fn machine(c: &mut Criterion) {
    let mut group = c.benchmark_group("machine");
    group.throughput(Throughput::Elements(1));
    let kib = vec![0x5a_u8; 1024];
    group.bench_function("sha256 of 1 KiB (reference 0.58 us)", |b| {
        b.iter(|| {
            use sha2::Digest;
            black_box(sha2::Sha256::digest(black_box(&kib)))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(4));
    targets = decisions, consent_state, machine
}
criterion_main!(benches);
