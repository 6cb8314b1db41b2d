//! How long the symbolic comparison of two Cedar policy sets takes on the default bundle, per
//! action and for all eight: the bundle against itself (identical policies: the compiler proves
//! them equal without a solver query, so this is symbolic compilation alone), against a tightening
//! of one forbid for `export` (two queries, one counterexample found and read back), and against
//! the same tightening for every action but `delete` (two queries for each of the seven). Each
//! figure is the median of `RUNS` runs; every run starts its own solver process, as a proposal's
//! analysis does.
//!
//! Needs cvc5 (`CVC5` or on `PATH`). Run: `cargo bench -p accord-engine --bench symbolic`.
#![allow(clippy::unwrap_used)] // bench code: a failed unwrap is a failed bench

use accord_engine::symbolic::{self, CedarSide, PolicySetComparison, SolverSettings, Verdict};
use accord_engine::testing::default_bundle;
use accord_engine::Bundle;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

const FORBID: &str = "  context.legal_basis == \"\" &&\n  action != Accord::Action::\"delete\" &&";
const TIGHTER: &str = "  (context.legal_basis == \"\" || (action == Accord::Action::\"export\" && \
                       context.recipient_country == \"AQ\")) &&\n  action != Accord::Action::\"delete\" &&";

const EVERYWHERE: &str =
    "  (context.legal_basis == \"\" || context.recipient_country == \"AQ\") &&\n  \
                          action != Accord::Action::\"delete\" &&";

fn tightened(bundle: &Bundle, replacement: &str) -> Bundle {
    let mut files: std::collections::BTreeMap<String, Vec<u8>> = bundle
        .files()
        .iter()
        .map(|(p, b)| (p.to_owned(), b.to_vec()))
        .collect();
    let text = String::from_utf8(files["cedar/uk-gdpr.cedar"].clone()).unwrap();
    assert!(
        text.contains(FORBID),
        "the forbid to tighten is in uk-gdpr.cedar"
    );
    files.insert(
        "cedar/uk-gdpr.cedar".into(),
        text.replacen(FORBID, replacement, 1).into_bytes(),
    );
    Bundle::compile(accord_engine::BundleFiles::new(files)).unwrap()
}

fn run(
    base: &Bundle,
    target: &Bundle,
    settings: &SolverSettings,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> (Duration, PolicySetComparison) {
    fn side(b: &Bundle) -> CedarSide<'_> {
        CedarSide {
            schema: b.cedar().schema(),
            policies: b.cedar().all(),
        }
    }
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        let c = symbolic::compare_selected(side(base), side(target), settings, keep).unwrap();
        times.push(started.elapsed());
        last = Some(c);
    }
    times.sort();
    (times[RUNS / 2], last.unwrap())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let settings = SolverSettings::from_env();
    let base = default_bundle();
    let target = tightened(&base, TIGHTER);
    let everywhere = tightened(&base, EVERYWHERE);
    let mut sorted: Vec<String> = base
        .cedar()
        .schema()
        .actions()
        .map(ToString::to_string)
        .collect();
    sorted.sort();
    println!("symbolic comparison, default bundle, median of {RUNS} runs");
    let (all, c) = run(&base, &base, &settings, &|_| true);
    println!("solver: {}", c.solver);
    assert!(c.actions.iter().all(|a| a.verdict == Verdict::Equivalent));
    for action in &sorted {
        let (t, c) = run(&base, &base, &settings, &|a| a == action);
        assert_eq!(c.actions.len(), 1);
        println!("  itself      {action:<32} {:>10}", ms(t));
    }
    println!("  itself      all {} actions {:>25}", sorted.len(), ms(all));
    let (all, c) = run(&base, &target, &settings, &|_| true);
    let verdicts: Vec<String> = c
        .actions
        .iter()
        .filter(|a| a.verdict != Verdict::Equivalent)
        .map(|a| format!("{} {:?}", a.action, a.verdict))
        .collect();
    println!(
        "  tightened   all {} actions {:>25}   ({})",
        sorted.len(),
        ms(all),
        verdicts.join(", ")
    );
    let export = "Accord::Action::\"export\"";
    let (t, _) = run(&base, &target, &settings, &|a| a == export);
    println!("  tightened   {export:<32} {:>10}", ms(t));
    let (all, c) = run(&base, &everywhere, &settings, &|_| true);
    let stricter = c
        .actions
        .iter()
        .filter(|a| a.verdict == Verdict::Stricter)
        .count();
    println!(
        "  everywhere  all {} actions {:>25}   ({stricter} stricter)",
        sorted.len(),
        ms(all)
    );
    for action in &sorted {
        let (t, c) = run(&base, &everywhere, &settings, &|a| a == action);
        println!(
            "  everywhere  {action:<32} {:>10}   {:?}",
            ms(t),
            c.actions[0].verdict
        );
    }
}
