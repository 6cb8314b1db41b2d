// Temporary: time the parts of a decision on the bench mix.
use accord_engine::consent::ConsentRegistry;
use accord_engine::decision::DecisionBuilder;
use accord_engine::transaction::{AccessRequest, Transaction};
use accord_engine::{Bundle, InMemoryConsentRegistry};
use std::time::Instant;
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = Bundle::load(&root.join("../policies")).unwrap();
    let mix: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("benches/mix.json")).unwrap())
            .unwrap();
    let mut reg = InMemoryConsentRegistry::new();
    for c in mix["consents"].as_array().unwrap() {
        if let Transaction::Consent(t) = Transaction::from_value(c.clone()).unwrap() {
            reg.apply(&t).unwrap();
        }
    }
    let reqs: Vec<AccessRequest> = mix["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| AccessRequest::from_json(&t.to_string()).unwrap())
        .collect();
    if std::env::var("DUMP").is_ok() {
        let p = bundle.cedar().all().policies().next().unwrap();
        println!(
            "{}",
            serde_json::to_string_pretty(&p.to_json().unwrap()).unwrap()
        );
        return;
    }
    if let Ok(i) = std::env::var("ONLY") {
        let i: usize = i.parse().unwrap();
        let r = &reqs[i];
        let d = bundle.derive(r, &reg).unwrap();
        if std::env::var("RHAI").is_ok() {
            for _ in 0..20000 {
                let mut b = DecisionBuilder::new();
                bundle.rules().run(r, &d.facts(), &mut b);
                std::hint::black_box(b);
            }
        } else {
            for _ in 0..100000 {
                std::hint::black_box(bundle.cedar().authorize(r, &d.facts()));
            }
        }
        return;
    }
    let n = 200;
    for (i, r) in reqs.iter().enumerate() {
        let d = bundle.derive(r, &reg).unwrap();
        let t0 = Instant::now();
        for _ in 0..n {
            std::hint::black_box(bundle.cedar().authorize(r, &d.facts()));
        }
        let cedar = t0.elapsed() / n;
        let t0 = Instant::now();
        for _ in 0..n {
            let mut b = DecisionBuilder::new();
            bundle.rules().run(r, &d.facts(), &mut b);
            std::hint::black_box(b);
        }
        let rhai = t0.elapsed() / n;
        let t0 = Instant::now();
        for _ in 0..n {
            std::hint::black_box(bundle.derive(r, &reg).unwrap());
        }
        let derive = t0.elapsed() / n;
        let dec = bundle.decide(r, &reg, 0);
        let sl = bundle.cedar().slice(r, &d.facts()).policies().count();
        print!("slice {sl:2} ");
        if std::env::var("SLICE").is_ok() && i == 0 {
            for p in bundle.cedar().slice(r, &d.facts()).policies() {
                println!("  {}", p.id());
            }
        }
        println!(
            "{i:2} {:12} {:?} cedar {:?} rhai {:?} derive {:?} -> {:?} {:?}",
            r.action.as_str(),
            r.id,
            cedar,
            rhai,
            derive,
            dec.decision,
            dec.reasons
                .iter()
                .map(|x| x.rule.as_str())
                .collect::<Vec<_>>()
        );
    }
}
#[allow(dead_code)]
fn dump() {}
