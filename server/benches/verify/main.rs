//! What verifying the decision log costs at N entries: a full verification (every entry
//! recomputed) against an incremental one (the entries after the verified checkpoint), in the
//! same run.
//!
//! `cargo bench -p accord-server --bench verify [-- N]` (default N = 250,000).

use accord_engine::{AccessRequest, Bundle, InMemoryConsentRegistry};
use accord_server::decision_log::{Record, Scope, Verification};
use accord_server::storage::StorageHealth;
use accord_server::DecisionLog;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(250_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository");
    let bundle = Bundle::load(&root.join("policies")).expect("bundle");
    let consents = InMemoryConsentRegistry::default();
    let decided: Vec<_> = ["treatment-read.json", "export-to-us.json"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(root.join("examples").join(name)).expect("example");
            let request = AccessRequest::from_json(&text).expect("transaction");
            let decision = bundle.decide(&request, &consents, 0);
            (decision, request)
        })
        .collect();
    let records: Vec<Record<'_>> = (0..1000)
        .map(|i| {
            let (d, r) = &decided[i % decided.len()];
            Record::new(d, r)
        })
        .collect();
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("dir");
    let db = sled::open(dir.path()).expect("sled");
    let log = DecisionLog::open(&db, StorageHealth::new()).expect("log");
    let append = |count: usize| {
        let mut left = count;
        while left > 0 {
            let take = left.min(records.len());
            log.append_all(&records[..take]).expect("append");
            left -= take;
        }
    };
    let filling = Instant::now();
    append(n);
    println!(
        "log of {n} entries written in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    let never = AtomicBool::new(false);
    let run = |label: &str, scope: Scope| {
        let started = Instant::now();
        let v: Verification = log
            .verify_scope(scope, &never)
            .expect("verify")
            .expect("not cancelled");
        let took = started.elapsed();
        assert!(v.ok, "{v:?}");
        println!(
            "{label:<44} {:>9.3} ms  checked {:>7} entries from {:>7}{}",
            took.as_secs_f64() * 1e3,
            v.checked,
            v.checked_from,
            per_entry(took, v.checked)
        );
    };
    run(
        "full (first verification, no checkpoint)",
        Scope::SinceCheckpoint,
    );
    run("full (?full=true)", Scope::Full);
    run("incremental, nothing new", Scope::SinceCheckpoint);
    for new in [1usize, 100, 1000, 10_000] {
        append(new);
        run(
            &format!("incremental after {new} new entries"),
            Scope::SinceCheckpoint,
        );
    }
    run("full (?full=true) again", Scope::Full);
}

fn per_entry(took: Duration, entries: u64) -> String {
    if entries == 0 {
        return String::new();
    }
    format!(
        ", {:.2} µs/entry",
        took.as_secs_f64() * 1e6 / entries as f64
    )
}
