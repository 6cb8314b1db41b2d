//! Governance benchmarks, each with its baseline in the same run:
//!
//! (a) signed votes verified and applied per second on one core (`GovernanceState::apply` on a
//!     proposal of 2,000 members of weight 1 whose quorum is never reached early), against the
//!     raw `verify_strict` of the same signatures; and the same under a hybrid genesis
//!     (`ed25519+ml-dsa-65`: each vote carries and is checked under both signatures), against
//!     ed25519 alone;
//! (b) validating, testing and compiling the default bundle for activation (`Bundle::compile` +
//!     `run_bundle_tests`, as a proposal does), against `Bundle::compile` alone;
//! (c) decisions per second on two threads through `ActivePolicySet::decide` while another
//!     thread swaps between two compiled bundles every 100 ms, against no swapping; decisions
//!     carrying errors are counted (there must be none).
//!
//! A plain-timed summary with the ratios is printed at the end.
//!
//! Run: `cargo bench -p accord-governance --bench governance -- --warm-up-time 1 --measurement-time 5`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use accord_engine::cases::run_bundle_tests;
use accord_engine::testing::{benchmark_mix, BenchmarkMix};
use accord_engine::{Bundle, BundleFiles};
use accord_governance::member::{Member, Membership};
use accord_governance::message::{content_hash, proposal_id, signed_bytes, Change};
use accord_governance::params::{Ratio, VotingParams};
use accord_governance::{
    ActivePolicySet, ActiveSet, Envelope, Genesis, GovernanceState, KeyFile, SignatureScheme,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The same allocator as the `accord` binary, so the figures are the shipped binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MEMBERS: usize = 2_000;
/// Votes applied per measured batch: half the members, so the 1/1 quorum is never reached and
/// every vote takes the full path (no early decision).
const VOTES: usize = 1_000;
const CONSORTIUM: &str = "bench-net";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bundle_files() -> BundleFiles {
    BundleFiles::read_dir(&root().join("policies")).expect("default bundle reads")
}

fn key(i: usize) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    seed[8..].fill(0x42); // bench keys, not real ones
    SigningKey::from_bytes(&seed)
}

/// Member `i`'s key file: ed25519 alone, or hybrid with an ML-DSA-65 key.
fn key_file(i: usize, scheme: SignatureScheme) -> KeyFile {
    let file = KeyFile::new(key(i), Some(format!("member/m{i:04}")));
    match scheme {
        SignatureScheme::Ed25519 => file,
        SignatureScheme::Hybrid => {
            let mut seed = [0x51u8; 32]; // bench keys, not real ones
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            file.with_ml_dsa_seed(seed)
        }
    }
}

struct Votes {
    /// The state with one open proposal.
    state: GovernanceState,
    envelopes: Vec<Envelope>,
    keys: Vec<VerifyingKey>,
}

fn votes_setup(bundle: Arc<Bundle>, scheme: SignatureScheme) -> Votes {
    // Only the voters' key files are kept: an expanded ML-DSA-65 signing key is about 60 KB.
    let mut voters: Vec<KeyFile> = Vec::with_capacity(VOTES);
    let members = (0..MEMBERS)
        .map(|i| {
            let file = key_file(i, scheme);
            let member = Member {
                id: format!("member/m{i:04}"),
                public_key: file.public_key().to_owned(),
                ml_dsa_public_key: file.ml_dsa_public_key().map(str::to_owned),
                weight: 1,
                name: format!("Member {i}"),
            };
            if i < VOTES {
                voters.push(file);
            }
            member
        })
        .collect();
    let genesis = Genesis {
        consortium: CONSORTIUM.into(),
        membership: Membership::new(members).expect("members"),
        voting: VotingParams {
            quorum: Ratio::new(1, 1).expect("ratio"),
            threshold: Ratio::new(1, 2).expect("ratio"),
            voting_period: 100,
            activation_delay: 1,
            max_open_proposals: 3,
            max_open_bundle_bytes: None,
            veto_threshold: None,
            emergency: None,
        },
        signature_scheme: scheme,
        bundle_dir: root().join("policies"),
        initial_height: 1,
    };
    let mut state = GovernanceState::from_genesis(&genesis, bundle);
    let change: Change = serde_json::from_value(
        json!({ "kind": "update_member", "member": "member/m0000", "name": "Renamed" }),
    )
    .expect("change");
    let message = json!({ "type": "proposal", "consortium": CONSORTIUM,
                          "proposer": "member/m0000", "title": "bench", "change": change });
    let id = proposal_id(&signed_bytes(&message).expect("bytes"));
    let content = content_hash(&change);
    let env = parse(&message, &voters[0]);
    state.apply(&env, "tx-p", 1).expect("proposal applies");
    let envelopes = (0..VOTES)
        .map(|i| {
            let vote = json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": id,
                               "content": content, "voter": format!("member/m{i:04}"),
                               "choice": if i % 2 == 0 { "yes" } else { "no" } });
            parse(&vote, &voters[i])
        })
        .collect();
    Votes {
        state,
        envelopes,
        keys: voters
            .iter()
            .map(|f| f.signing_key().verifying_key())
            .collect(),
    }
}

fn parse(message: &Value, key: &KeyFile) -> Envelope {
    let signed = serde_json::to_value(key.sign(message).expect("signs")).expect("json");
    Envelope::from_value(&signed).expect("parses")
}

fn apply_all(state: &mut GovernanceState, envelopes: &[Envelope]) {
    for (i, env) in envelopes.iter().enumerate() {
        state.apply(env, "tx", 2).expect("vote applies");
        black_box(i);
    }
}

fn verify_all(envelopes: &[Envelope], keys: &[VerifyingKey]) {
    for (env, key) in envelopes.iter().zip(keys) {
        assert!(env.verify(black_box(key)));
    }
}

fn votes(c: &mut Criterion) {
    let bundle = Arc::new(Bundle::compile(bundle_files()).expect("compiles"));
    let v = votes_setup(bundle.clone(), SignatureScheme::Ed25519);
    let hybrid = votes_setup(bundle, SignatureScheme::Hybrid);
    let mut group = c.benchmark_group("votes");
    group.throughput(Throughput::Elements(VOTES as u64));
    group.bench_function(
        "GovernanceState::apply (verify + count), 2000 members",
        |b| {
            b.iter_batched(
                || v.state.clone(),
                |mut state| {
                    apply_all(&mut state, &v.envelopes);
                    state
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.bench_function("baseline: verify_strict alone", |b| {
        b.iter(|| verify_all(&v.envelopes, &v.keys))
    });
    group.bench_function(
        "hybrid: GovernanceState::apply (ed25519 + ML-DSA-65 verify + count), 2000 members",
        |b| {
            b.iter_batched(
                || hybrid.state.clone(),
                |mut state| {
                    apply_all(&mut state, &hybrid.envelopes);
                    state
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.finish();
}

fn compile(c: &mut Criterion) {
    let files = bundle_files();
    let mut group = c.benchmark_group("bundle");
    group.sample_size(10);
    group.bench_function("activation check: compile + run_bundle_tests", |b| {
        b.iter_batched(
            || files.clone(),
            |files| {
                let bundle = Bundle::compile(files).expect("compiles");
                let failed = run_bundle_tests(&bundle)
                    .iter()
                    .filter(|r| !r.passed())
                    .count();
                assert_eq!(failed, 0);
                bundle
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("baseline: Bundle::compile", |b| {
        b.iter_batched(
            || files.clone(),
            |files| Bundle::compile(files).expect("compiles"),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

// ---------------------------------------------------------------- (c) hot swap

/// The default bundle and the same with Uruguay dropped from the EU adequacy list.
fn two_bundles() -> (Arc<Bundle>, Arc<Bundle>) {
    let files = bundle_files();
    let mut edited: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(p, b)| (p.to_owned(), b.to_vec()))
        .collect();
    let eu = edited.get_mut("jurisdictions/EU.yaml").expect("EU");
    let text = String::from_utf8(eu.clone()).expect("utf-8");
    let cut: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("- UY"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(cut.len(), text.len());
    *eu = cut.into_bytes();
    let a = Bundle::compile(files).expect("a");
    let b = Bundle::compile(BundleFiles::new(edited)).expect("b");
    assert_ne!(a.version(), b.version());
    (Arc::new(a), Arc::new(b))
}

struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Swapper {
    /// Swaps `policy` between `a` and `b` every 100 ms until dropped.
    fn start(policy: Arc<ActivePolicySet>, a: Arc<Bundle>, b: Arc<Bundle>) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), swaps.clone());
        let handle = std::thread::spawn(move || {
            let mut height = 0;
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                height += 1;
                let bundle = if height % 2 == 1 {
                    b.clone()
                } else {
                    a.clone()
                };
                policy.swap(ActiveSet {
                    bundle,
                    activated_at_height: height,
                });
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
        Swapper {
            stop,
            swaps,
            handle: Some(handle),
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

const THREADS: usize = 2;

/// `total` decisions over the mix on [`THREADS`] threads; returns the wall time. Decisions
/// carrying errors are added to `errors`.
fn evaluate(
    policy: &ActivePolicySet,
    mix: &BenchmarkMix,
    total: u64,
    errors: &AtomicU64,
) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                let n = total / THREADS as u64 + u64::from((t as u64) < total % THREADS as u64);
                let mut bad = 0;
                for i in 0..n as usize {
                    let request = &mix.requests[(i * THREADS + t) % mix.requests.len()];
                    let d = policy.decide(black_box(request), &mix.registry);
                    bad += u64::from(!d.errors.is_empty());
                }
                errors.fetch_add(bad, Ordering::Relaxed);
            });
        }
    });
    start.elapsed()
}

fn swap(c: &mut Criterion) {
    let (a, b) = two_bundles();
    let mix = benchmark_mix();
    let policy = Arc::new(ActivePolicySet::new(ActiveSet {
        bundle: a.clone(),
        activated_at_height: 0,
    }));
    let errors = AtomicU64::new(0);
    let mut group = c.benchmark_group("hot swap");
    group.throughput(Throughput::Elements(1));
    group.bench_function("2 threads, no swapping", |bench| {
        bench.iter_custom(|iters| evaluate(&policy, &mix, iters, &errors))
    });
    let swapper = Swapper::start(policy.clone(), a.clone(), b.clone());
    group.bench_function("2 threads, swap every 100 ms", |bench| {
        bench.iter_custom(|iters| evaluate(&policy, &mix, iters, &errors))
    });
    let swaps = swapper.swaps.load(Ordering::Relaxed);
    drop(swapper);
    group.finish();
    println!(
        "hot swap: {swaps} swaps during the swapping bench, {} decisions with errors in both benches",
        errors.load(Ordering::Relaxed)
    );
}

// ---------------------------------------------------------------- summary

fn per_second(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn summary(_: &mut Criterion) {
    println!("\n== summary (plain timing, same process) ==");
    let (a, b) = two_bundles();

    // (a)
    let v = votes_setup(a.clone(), SignatureScheme::Ed25519);
    let h = votes_setup(a.clone(), SignatureScheme::Hybrid);
    let mut best_apply = Duration::MAX;
    let mut best_verify = Duration::MAX;
    let mut best_hybrid = Duration::MAX;
    for _ in 0..5 {
        let mut state = v.state.clone();
        let t = Instant::now();
        apply_all(&mut state, &v.envelopes);
        best_apply = best_apply.min(t.elapsed());
        let t = Instant::now();
        verify_all(&v.envelopes, &v.keys);
        best_verify = best_verify.min(t.elapsed());
        let mut state = h.state.clone();
        let t = Instant::now();
        apply_all(&mut state, &h.envelopes);
        best_hybrid = best_hybrid.min(t.elapsed());
    }
    let (apply, verify, hybrid) = (
        per_second(VOTES as u64, best_apply),
        per_second(VOTES as u64, best_verify),
        per_second(VOTES as u64, best_hybrid),
    );
    println!(
        "(a) votes applied: {apply:.0}/s ({:.1} µs each; target ≥ 15000/s); verify_strict alone: \
         {verify:.0}/s ({:.1} µs); apply costs {:.2}× a bare verification",
        1e6 / apply,
        1e6 / verify,
        verify / apply
    );
    println!(
        "(a) hybrid votes (ed25519 + ML-DSA-65) applied: {hybrid:.0}/s ({:.1} µs each); \
         ed25519 alone {apply:.0}/s; hybrid costs {:.2}× an ed25519 vote",
        1e6 / hybrid,
        apply / hybrid
    );

    // (b)
    let files = bundle_files();
    let time = |f: &dyn Fn()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .unwrap_or_default()
    };
    let full = time(&|| {
        let bundle = Bundle::compile(files.clone()).expect("compiles");
        assert!(run_bundle_tests(&bundle).iter().all(|r| r.passed()));
    });
    let bare = time(&|| {
        Bundle::compile(files.clone()).expect("compiles");
    });
    let cases = run_bundle_tests(&a).len();
    println!(
        "(b) activation check (compile + {cases} test cases): {:.1} ms (target < 100 ms); \
         compile alone: {:.1} ms; ratio {:.2}",
        full.as_secs_f64() * 1e3,
        bare.as_secs_f64() * 1e3,
        full.as_secs_f64() / bare.as_secs_f64()
    );

    // (c)
    let mix = benchmark_mix();
    let policy = Arc::new(ActivePolicySet::new(ActiveSet {
        bundle: a.clone(),
        activated_at_height: 0,
    }));
    let run_for = |secs: f64, errors: &AtomicU64| {
        // Batches of 20k decisions until `secs` have passed.
        let (mut n, mut elapsed) = (0u64, Duration::ZERO);
        while elapsed.as_secs_f64() < secs {
            elapsed += evaluate(&policy, &mix, 20_000, errors);
            n += 20_000;
        }
        per_second(n, elapsed)
    };
    let quiet_errors = AtomicU64::new(0);
    let swap_errors = AtomicU64::new(0);
    let mut quiet = run_for(3.0, &quiet_errors);
    let swapper = Swapper::start(policy.clone(), a.clone(), b.clone());
    let swapping = run_for(3.0, &swap_errors);
    let swaps = swapper.swaps.load(Ordering::Relaxed);
    drop(swapper);
    // Quiet again, to bracket drift from other load on the machine.
    quiet = quiet.max(run_for(3.0, &quiet_errors));
    println!(
        "(c) {THREADS} threads: {quiet:.0} decisions/s without swapping, {swapping:.0}/s with a \
         swap every 100 ms ({swaps} swaps); ratio {:.3} (target ≥ 0.90); decisions with errors: \
         {} without, {} with swapping",
        swapping / quiet,
        quiet_errors.load(Ordering::Relaxed),
        swap_errors.load(Ordering::Relaxed)
    );
}

criterion_group!(benches, votes, compile, swap, summary);
criterion_main!(benches);
