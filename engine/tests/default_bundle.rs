//! The default bundle, decided two ways: the fast path (sliced policy set, entities built in code)
//! must give the same Cedar outcome, determining policies and errors as the naive path (entities
//! through Cedar's JSON parser with the schema, the whole policy set) on every request the bundle's
//! own legal test cases and the benchmark mix contain.

use accord_engine::cases::case_inputs;
use accord_engine::consent::ConsentRegistry;
use accord_engine::transaction::AccessRequest;
use accord_engine::{Bundle, InMemoryConsentRegistry};
use std::path::Path;

fn default_bundle() -> Bundle {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    Bundle::load(&dir).unwrap_or_else(|e| panic!("default bundle loads: {e}"))
}

fn assert_same(
    bundle: &Bundle,
    label: &str,
    request: &AccessRequest,
    registry: &dyn ConsentRegistry,
) {
    let derived = bundle
        .derive(request, registry)
        .unwrap_or_else(|e| panic!("{label}: derive: {e}"));
    let fast = bundle.cedar().authorize(request, &derived.facts());
    let naive = bundle
        .cedar()
        .authorize_reference(request, &derived.facts())
        .unwrap_or_else(|e| panic!("{label}: naive path refused the request: {e}"));
    assert_eq!(fast, naive, "{label}: fast and naive Cedar paths differ");
}

#[test]
fn fast_path_matches_naive_path_on_every_legal_test_case() {
    let bundle = default_bundle();
    let inputs = case_inputs(&bundle);
    assert!(inputs.len() >= 150, "only {} cases", inputs.len());
    for input in &inputs {
        let label = format!("{} :: {}", input.file, input.name);
        assert_same(&bundle, &label, &input.request, &input.registry);
    }
}

#[test]
fn fast_path_matches_naive_path_on_the_benchmark_mix() {
    let bundle = default_bundle();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mix: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("benches/mix.json")).expect("mix"))
            .expect("mix is JSON");
    let registry =
        InMemoryConsentRegistry::from_transactions(mix["consents"].as_array().expect("consents"))
            .expect("consents apply");
    let transactions = mix["transactions"].as_array().expect("transactions");
    assert!(transactions.len() >= 20);
    for t in transactions {
        let request = AccessRequest::from_json(&t.to_string()).expect("mix parses");
        assert_same(&bundle, &request.id, &request, &registry);
    }
}
