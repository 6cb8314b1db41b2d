//! Snapshots of the default bundle's decisions on a representative set of transactions: allow and
//! deny in each jurisdiction the set touches, with consents in the registry. Each snapshot is the
//! exact decision JSON (docs/contract.md §2) but for the bundle version, which is checked separately.

use accord_engine::testing::{benchmark_mix, default_bundle};
use accord_engine::transaction::AccessRequest;
use accord_engine::{Bundle, Decision, InMemoryConsentRegistry};
use std::collections::BTreeMap;

fn scenario() -> (Bundle, InMemoryConsentRegistry, Vec<AccessRequest>) {
    let mix = benchmark_mix();
    (default_bundle(), mix.registry, mix.requests)
}

#[test]
fn decisions_on_the_representative_set() {
    let (bundle, registry, requests) = scenario();
    for request in &requests {
        let decision = bundle.decide(request, &registry, 0);
        assert_eq!(decision.policy_set.version, bundle.version());
        assert_eq!(decision.policy_set.name, "accord-default");
        insta::assert_json_snapshot!(request.id.clone(), decision, {
            ".policy_set.version" => "[bundle version]"
        });
    }
}

#[test]
fn every_jurisdiction_of_the_set_sees_an_allow_and_a_deny() {
    let (bundle, registry, requests) = scenario();
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for request in &requests {
        let decision: Decision = bundle.decide(request, &registry, 0);
        let place = request
            .resource
            .jurisdiction
            .as_ref()
            .map(|j| j.as_str().split('-').next().unwrap_or("").to_owned())
            .unwrap_or_default();
        let entry = seen.entry(place).or_default();
        if decision.is_allow() {
            entry.0 = true;
        } else {
            entry.1 = true;
        }
    }
    for (place, (allow, deny)) in &seen {
        assert!(
            *allow && *deny,
            "{place}: allow seen {allow}, deny seen {deny}"
        );
    }
    assert!(
        seen.contains_key("US") && seen.contains_key("EU"),
        "{seen:?}"
    );
}

#[test]
fn every_decision_explains_itself_with_citations() {
    let (bundle, registry, requests) = scenario();
    for request in &requests {
        let decision = bundle.decide(request, &registry, 0);
        assert!(
            decision.errors.is_empty(),
            "{}: {:?}",
            request.id,
            decision.errors
        );
        assert!(!decision.reasons.is_empty(), "{}: no reasons", request.id);
        for reason in &decision.reasons {
            assert!(
                !reason.citation.is_empty(),
                "{}: reason {}#{} has no citation",
                request.id,
                reason.module,
                reason.rule
            );
        }
        for obligation in &decision.obligations {
            assert!(
                !obligation.citation.is_empty(),
                "{}: obligation without citation",
                request.id
            );
        }
    }
}
