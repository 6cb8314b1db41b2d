//! The default bundle, decided two ways: the fast path (sliced policy set, entities built in code)
//! must give the same Cedar outcome, determining policies and errors as the naive path (entities
//! through Cedar's JSON parser with the schema, the whole policy set) on every request the bundle's
//! own legal test cases and the benchmark mix contain; and a batch decided phase by phase must give
//! each request the decision it gets alone.

use accord_engine::cases::case_inputs;
use accord_engine::consent::ConsentRegistry;
use accord_engine::testing::{benchmark_mix, default_bundle, BenchmarkMix};
use accord_engine::transaction::AccessRequest;
use accord_engine::Bundle;

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
    let BenchmarkMix {
        requests, registry, ..
    } = benchmark_mix();
    assert!(requests.len() >= 20);
    for request in &requests {
        assert_same(&bundle, &request.id, request, &registry);
    }
}

#[test]
fn deciding_a_batch_phase_by_phase_gives_each_request_its_own_decision() {
    // The mix three times (past one phase batch of 64), with requests that fail before any rule
    // runs mixed in: each decision must be byte-identical to deciding the request alone.
    let bundle = default_bundle();
    let BenchmarkMix {
        requests: mix,
        registry,
        ..
    } = benchmark_mix();
    let mut requests: Vec<AccessRequest> = Vec::new();
    for round in 0..3 {
        requests.extend(mix.iter().cloned());
        let mut unknown = mix[0].clone();
        unknown.id = format!("unknown-jurisdiction-{round}");
        unknown.resource.jurisdiction = Some(String::from("ZZ").try_into().expect("a code"));
        requests.push(unknown);
        let mut mistyped = mix[1].clone();
        mistyped.id = format!("mistyped-attribute-{round}");
        mistyped
            .context
            .attributes
            .insert("irb_waiver".into(), serde_json::json!("yes"));
        requests.push(mistyped);
    }
    let batch = bundle.decide_all(&requests, &registry, 7);
    assert_eq!(batch.len(), requests.len());
    let mut kinds = std::collections::BTreeSet::new();
    for (request, decision) in requests.iter().zip(&batch) {
        let alone = bundle.decide(request, &registry, 7);
        assert_eq!(alone.to_json(), decision.to_json(), "{}", request.id);
        kinds.insert((decision.decision, decision.errors.len()));
    }
    // Allows, denies by rule and denies by error were all in the batch.
    assert!(kinds.len() >= 3, "{kinds:?}");
    assert!(kinds.iter().any(|(_, errors)| *errors > 0), "{kinds:?}");
}
