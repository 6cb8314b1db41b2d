// Temporary: run only the Rhai rules over the mix, for perf.
use accord_engine::consent::ConsentRegistry;
use accord_engine::decision::DecisionBuilder;
use accord_engine::transaction::{AccessRequest, Transaction};
use accord_engine::{Bundle, InMemoryConsentRegistry};
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let b = Bundle::load(&root.join("../policies")).unwrap();
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
    let ds: Vec<_> = reqs.iter().map(|r| b.derive(r, &reg).unwrap()).collect();
    let t0 = std::time::Instant::now();
    if std::env::var("FULL").is_ok() {
        for _ in 0..2000 {
            for r in &reqs {
                std::hint::black_box(b.decide(r, &reg, 0));
            }
        }
    } else {
        for _ in 0..2000 {
            for (r, d) in reqs.iter().zip(&ds) {
                let mut bd = DecisionBuilder::new();
                b.rules().run(r, &d.facts(), &mut bd);
                std::hint::black_box(bd);
            }
        }
    }
    eprintln!(
        "rhai per request {:?}",
        t0.elapsed() / (2000 * reqs.len() as u32)
    );
}
