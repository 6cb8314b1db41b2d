use crate::bundle::Bundle;
use crate::consent::InMemoryConsentRegistry;
use crate::testing::{self, files_with};
use serde_json::json;

/// The explanation's text, with the bundle version (which changes with any fixture file) masked.
fn explained(bundle: &Bundle, patch: serde_json::Value) -> String {
    let request = testing::access(patch);
    let registry = InMemoryConsentRegistry::new();
    let explanation = bundle.explain(&request, &registry, 0);
    assert_eq!(
        explanation.decision,
        bundle.decide(&request, &registry, 0),
        "explaining decides as deciding does"
    );
    explanation
        .to_string()
        .replace(bundle.version(), "sha256:[version]")
}

#[test]
fn an_allow_names_the_permits_the_binding_regimes_and_the_obligations() {
    insta::assert_snapshot!(explained(&testing::bundle(), json!({})));
}

#[test]
fn a_forbid_overrides_a_satisfied_permit() {
    let text = explained(
        &testing::bundle(),
        json!({ "resource": { "data_categories": ["psychotherapy-notes"] } }),
    );
    insta::assert_snapshot!(text);
}

#[test]
fn nothing_permitting_is_a_deny_by_default_citing_the_regime() {
    insta::assert_snapshot!(explained(
        &testing::bundle(),
        json!({ "context": { "purpose_of_use": "HPAYMT" } })
    ));
}

#[test]
fn a_mistyped_attribute_fails_closed_before_any_rule_runs() {
    insta::assert_snapshot!(explained(
        &testing::bundle(),
        json!({ "context": { "attributes": { "remuneration": "yes" } } })
    ));
}

#[test]
fn a_regime_binding_the_holder_needs_its_own_permit() {
    let manifest = testing::MANIFEST.replace(
        r#"HIPAA: { default_deny_citation: "45 CFR 164.502(a)", default_deny_message: "no HIPAA permission" }"#,
        r#"HIPAA: { default_deny_citation: "45 CFR 164.502(a)", default_deny_message: "no HIPAA permission", permit_required_for: [read] }"#,
    );
    assert_ne!(manifest, testing::MANIFEST, "the fixture manifest changed");
    let bundle = Bundle::compile(files_with(&[("manifest.yaml", &manifest)]))
        .unwrap_or_else(|e| panic!("fixture compiles: {e}"));
    // A German organisation reads a US record for treatment: the GDPR permits (Art. 9(2)(h)),
    // HIPAA's treatment permission is a practitioner's, and HIPAA binds the record's holder.
    let text = explained(
        &bundle,
        json!({ "actor": { "id": "org/charite", "type": "Organization", "organization": "org/charite",
                           "jurisdiction": "EU-DE" } }),
    );
    assert!(text.contains("decision: deny"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn a_module_error_fails_closed_and_is_shown_with_its_module() {
    let failing = "fn evaluate(tx, env) { throw \"broken on purpose\"; }";
    let bundle = Bundle::compile(files_with(&[("rhai/rules.rhai", failing)]))
        .unwrap_or_else(|e| panic!("fixture compiles: {e}"));
    let text = explained(&bundle, json!({}));
    assert!(
        text.contains("test/rules  rhai"),
        "a throw is left to Rhai: {text}"
    );
    insta::assert_snapshot!(text);
}
