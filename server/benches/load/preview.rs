//! The impact preview's cost per block: blocks of 500 access transactions applied to an in-memory
//! state machine (no HTTP, no store) with K open policy proposals, K = 0 (the baseline), 1, 9 with
//! distinct bundles and 9 with one bundle. Every candidate is the default bundle with a comment
//! added to its manifest: it decides like the active set, so each K differs from the baseline
//! only by the preview's work.

use super::round::{signed, CONSORTIUM};
use accord_engine::ledger::Block;
use accord_engine::Bundle;
use accord_governance::{Genesis, StateMachine, TxResult};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One scenario's figures.
pub struct PreviewCost {
    pub name: &'static str,
    pub blocks: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// Bundles compiled while the proposals were made.
    pub compiles: u64,
    /// Decisions under candidate sets per measured block.
    pub preview_decisions_per_block: u64,
}

const PROPOSERS: [&str; 3] = ["st-marys", "acme-insurance", "city-lab"];

/// An `activate_bundle` proposal of the default bundle with `# variant {variant}` appended to its
/// manifest, from the `n`th proposer in turn (the dev genesis allows each three open proposals).
fn proposal(
    root: &Path,
    base: &str,
    files: &BTreeMap<String, String>,
    n: usize,
    variant: usize,
) -> Value {
    let mut files = files.clone();
    if let Some(manifest) = files.get_mut("manifest.yaml") {
        manifest.push_str(&format!("\n# variant {variant}\n"));
    }
    let member = PROPOSERS[n % PROPOSERS.len()];
    let message = json!({ "type": "proposal", "consortium": CONSORTIUM,
        "proposer": format!("member/{member}"), "title": format!("candidate {n}"),
        "nonce": format!("n{n}"), "base": base,
        "change": { "kind": "activate_bundle", "bundle": files } });
    signed(root, &format!("g-preview-{n}"), message, member)
}

/// What every scenario starts from and applies.
struct Setup<'a> {
    root: &'a Path,
    genesis: Genesis,
    bundle: &'a Arc<Bundle>,
    consents: Vec<Value>,
    block_txs: &'a [Value],
    secs: u64,
}

/// Applies blocks of `block_txs` (ids made unique per block) for `secs` seconds after two
/// warm-up blocks, with `variants[i]` the candidate variant of proposal `i`.
fn scenario(name: &'static str, setup: &Setup<'_>, variants: &[usize]) -> PreviewCost {
    let Setup {
        root,
        genesis,
        bundle,
        consents,
        block_txs,
        secs,
    } = setup;
    let (root, bundle, block_txs, secs) = (*root, *bundle, *block_txs, *secs);
    let open = variants.len();
    let files: BTreeMap<String, String> = bundle
        .files()
        .iter()
        .map(|(path, bytes)| (path.to_owned(), String::from_utf8_lossy(bytes).into_owned()))
        .collect();
    let mut machine = StateMachine::new(genesis, Arc::clone(bundle));
    let mut first: Vec<Value> = consents.clone();
    first.extend(
        variants
            .iter()
            .enumerate()
            .map(|(n, v)| proposal(root, bundle.version(), &files, n, *v)),
    );
    let answer = machine
        .apply_block(Block {
            height: 1,
            previous: None,
            transactions: first,
        })
        .expect("setup block");
    for r in &answer.results {
        if let TxResult::Refused { tx, refused } = r {
            panic!("{name}: {tx} refused: {} {}", refused.code, refused.message);
        }
    }
    let compiles = machine.work().bundle_compiles;
    let body = |height: u64| Block {
        height,
        previous: None,
        transactions: block_txs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut t = t.clone();
                t["id"] = json!(format!("blk{height}-{i}"));
                t
            })
            .collect(),
    };
    let mut height = 2;
    let mut times = Vec::new();
    let mut preview_before = 0;
    let started = Instant::now();
    loop {
        if height == 4 {
            preview_before = machine.work().preview_decisions;
        }
        let measured = height >= 4;
        if measured && started.elapsed() >= Duration::from_secs(secs) + Duration::from_millis(1) {
            break;
        }
        let block = body(height).prepare();
        let applying = Instant::now();
        machine.apply_prepared(block).expect("block applies");
        let pending = machine
            .governance()
            .proposals
            .values()
            .filter(|p| p.is_pending())
            .count();
        assert_eq!(pending, open, "{name}: every proposal stays open");
        if measured {
            times.push(applying.elapsed());
        }
        height += 1;
    }
    let blocks = times.len().max(1);
    let mean = times.iter().sum::<Duration>() / blocks as u32;
    times.sort();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    PreviewCost {
        name,
        blocks: times.len(),
        mean,
        p50: at(0.5),
        p99: at(0.99),
        compiles,
        preview_decisions_per_block: (machine.work().preview_decisions - preview_before)
            / blocks as u64,
    }
}

/// Runs the four scenarios, `secs` seconds of blocks each, and prints one line per scenario.
pub fn preview_cost(
    root: &Path,
    bundle: &Arc<Bundle>,
    consents: &[Value],
    block_txs: &[Value],
    secs: u64,
) {
    // The dev genesis, with voting windows that outlast the run: every proposal stays open.
    let mut genesis =
        Genesis::load(&root.join("governance/genesis.dev.yaml")).expect("dev genesis");
    genesis.voting.voting_period = u64::from(u32::MAX);
    let setup = Setup {
        root,
        genesis,
        bundle,
        consents: consents.to_vec(),
        block_txs,
        secs,
    };
    let identical = [0; 9];
    let distinct: Vec<usize> = (0..9).collect();
    let scenarios: [(&'static str, &[usize]); 4] = [
        ("K=0", &[]),
        ("K=1", &[0]),
        ("K=9 distinct", &distinct),
        ("K=9 identical", &identical),
    ];
    println!(
        "impact preview, blocks of {} access transactions in memory (no HTTP, no store), {secs} s per K:",
        block_txs.len()
    );
    let mut baseline = None;
    for (name, variants) in scenarios {
        let c = scenario(name, &setup, variants);
        let base = *baseline.get_or_insert(c.mean);
        println!(
            "  {:<14} {:>8.2} ms/block mean   p50 {:>7.2} ms   p99 {:>7.2} ms   {:>5.2}x K=0   ({} blocks, {} preview decisions per block, {} bundles compiled for the proposals)",
            c.name,
            c.mean.as_secs_f64() * 1e3,
            c.p50.as_secs_f64() * 1e3,
            c.p99.as_secs_f64() * 1e3,
            c.mean.as_secs_f64() / base.as_secs_f64().max(1e-9),
            c.blocks,
            c.preview_decisions_per_block,
            c.compiles,
        );
    }
}
