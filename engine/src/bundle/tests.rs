use super::*;
use crate::consent::InMemoryConsentRegistry;
use crate::decision::Effect;
use crate::testing::{self, access, files_with};
use serde_json::json;

fn compile_err(overrides: &[(&str, &str)]) -> String {
    match Bundle::compile(files_with(overrides)) {
        Ok(_) => panic!("bundle with {overrides:?} must be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fixture_compiles_with_all_modules() {
    let bundle = testing::bundle();
    assert_eq!(bundle.name(), "mini");
    assert_eq!(bundle.cedar().len(), 4);
    assert_eq!(bundle.rules().modules().len(), 1);
    assert!(bundle.version().starts_with("sha256:"));
}

#[test]
fn version_depends_on_content_only() {
    let a = files_with(&[]);
    // Same content inserted in another order: BTreeMap canonicalises, so the version is equal.
    let mut reversed: Vec<(String, Vec<u8>)> =
        a.iter().map(|(p, b)| (p.to_owned(), b.to_vec())).collect();
    reversed.reverse();
    let b = BundleFiles::new(reversed.into_iter().collect());
    assert_eq!(a.version(), b.version());
    // One byte more in one file changes it.
    let changed = files_with(&[("cedar/gdpr.cedar", &format!("{} ", testing::GDPR_CEDAR))]);
    assert_ne!(a.version(), changed.version());
    // Moving bytes between path and content cannot collide: the path is length-delimited.
    let x = BundleFiles::new([("ab".to_owned(), b"c".to_vec())].into_iter().collect());
    let y = BundleFiles::new([("a".to_owned(), b"bc".to_vec())].into_iter().collect());
    assert_ne!(x.version(), y.version());
}

#[test]
fn read_dir_reads_the_default_bundle_like_compile() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    if !dir.join("manifest.yaml").is_file() {
        return; // the default bundle is tested end to end in tests/
    }
    let files = BundleFiles::read_dir(&dir).expect("default bundle reads");
    assert!(files.get("manifest.yaml").is_some());
    assert!(files.iter().any(|(p, _)| p.starts_with(JURISDICTIONS_DIR)));
    assert_eq!(
        files.version(),
        BundleFiles::read_dir(&dir).expect("reads").version()
    );
}

#[test]
fn treatment_read_is_allowed_with_audit_deadline() {
    let bundle = testing::bundle();
    let decision = bundle.decide(&access(json!({})), &InMemoryConsentRegistry::new(), 7);
    assert_eq!(decision.decision, Effect::Allow);
    assert_eq!(decision.policy_set.activated_at_height, 7);
    assert_eq!(decision.jurisdictions, vec!["US", "US-CA"]);
    assert_eq!(decision.policy_set.version, bundle.version());
    insta::assert_json_snapshot!(decision, { ".policy_set.version" => "[bundle version]" });
}

#[test]
fn rhai_deny_overrides_cedar_permit() {
    let bundle = testing::bundle();
    let request = access(json!({ "context": { "purpose_of_use": "HMARKT" } }));
    let decision = bundle.decide(&request, &InMemoryConsentRegistry::new(), 0);
    assert_eq!(decision.decision, Effect::Deny);
    assert_eq!(decision.reasons.len(), 1);
    assert_eq!(decision.reasons[0].citation, "45 CFR 164.508(a)(3)");
    assert!(
        decision.obligations.is_empty(),
        "obligations come only with an allow"
    );
}

#[test]
fn cedar_forbid_overrides_cedar_permit() {
    let bundle = testing::bundle();
    let request = access(json!({ "resource": { "data_categories": ["psychotherapy-notes"] } }));
    let decision = bundle.decide(&request, &InMemoryConsentRegistry::new(), 0);
    assert_eq!(decision.decision, Effect::Deny);
    assert_eq!(decision.reasons[0].rule, "psychotherapy-notes");
    assert_eq!(decision.reasons[0].module, "test/hipaa");
}

#[test]
fn no_permit_is_deny_citing_each_regime() {
    let bundle = testing::bundle();
    // An EU resource read for payment: HIPAA (actor in US-CA) and GDPR apply, nothing permits.
    let request = access(json!({
        "resource": { "jurisdiction": "EU-DE" },
        "context": { "purpose_of_use": "HPAYMT" }
    }));
    let decision = bundle.decide(&request, &InMemoryConsentRegistry::new(), 0);
    assert_eq!(decision.decision, Effect::Deny);
    assert_eq!(decision.jurisdictions, vec!["EU", "EU-DE", "US", "US-CA"]);
    let citations: Vec<&str> = decision
        .reasons
        .iter()
        .map(|r| r.citation.as_str())
        .collect();
    assert_eq!(citations, vec!["45 CFR 164.502(a)", "GDPR Art. 6(1)"]);
    insta::assert_json_snapshot!(decision, { ".policy_set.version" => "[bundle version]" });
}

#[test]
fn no_applicable_regime_is_explained() {
    let bundle = testing::bundle();
    let request = access(json!({
        "actor": { "jurisdiction": null },
        "resource": { "jurisdiction": null }
    }));
    let decision = bundle.decide(&request, &InMemoryConsentRegistry::new(), 0);
    assert_eq!(decision.decision, Effect::Deny);
    assert_eq!(decision.reasons.len(), 1);
    assert!(
        decision.reasons[0].message.contains("no regime"),
        "{:?}",
        decision.reasons
    );
}

#[test]
fn unknown_jurisdiction_fails_closed() {
    let bundle = testing::bundle();
    let request = access(json!({ "resource": { "jurisdiction": "ZZ" } }));
    let decision = bundle.decide(&request, &InMemoryConsentRegistry::new(), 0);
    assert_eq!(decision.decision, Effect::Deny);
    assert_eq!(decision.errors.len(), 1);
    insta::assert_snapshot!(decision.errors[0].message, @"field `resource.jurisdiction`: unknown jurisdiction `ZZ`: the policy bundle has no rules for it");
}

#[test]
fn decisions_are_byte_identical_across_bundle_instances() {
    let a = testing::bundle();
    let b = testing::bundle();
    let request = access(json!({ "context": { "purpose_of_use": "HPAYMT" } }));
    let registry = InMemoryConsentRegistry::new();
    assert_eq!(
        a.decide(&request, &registry, 3).to_json(),
        b.decide(&request, &registry, 3).to_json()
    );
}

#[test]
fn manifest_naming_a_missing_file_is_refused() {
    let manifest = testing::MANIFEST.replace("cedar/gdpr.cedar", "cedar/missing.cedar");
    insta::assert_snapshot!(compile_err(&[("manifest.yaml", &manifest)]), @"cedar/missing.cedar: file not found (named by manifest.yaml field `modules[1].file`)");
}

#[test]
fn read_dir_names_the_missing_file_and_field() {
    let dir = std::env::temp_dir().join(format!("accord-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("manifest.yaml"), testing::MANIFEST).expect("write manifest");
    let err = BundleFiles::read_dir(&dir).expect_err("schema is missing");
    let text = err.to_string();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        text.contains("schema.cedarschema: file not found"),
        "{text}"
    );
    assert!(text.contains("field `schema`"), "{text}");
}

#[test]
fn manifest_errors_name_the_field() {
    let unknown = format!("{}\nextra: 1\n", testing::MANIFEST);
    insta::assert_snapshot!(compile_err(&[("manifest.yaml", &unknown)]));
    let escaping = testing::MANIFEST.replace("rhai/rules.rhai", "../../etc/passwd");
    insta::assert_snapshot!(compile_err(&[("manifest.yaml", &escaping)]), @"manifest.yaml: field `modules[2].file`: `../../etc/passwd` must be a relative path inside the bundle");
    let bad_regime = testing::MANIFEST.replace("regimes: [GDPR]", "regimes: [GDRP]");
    insta::assert_snapshot!(compile_err(&[("manifest.yaml", &bad_regime)]), @"manifest.yaml: field `modules[1].regimes`: `GDRP` is neither a regime nor a jurisdiction code of this bundle");
    let cedar_obligations = testing::MANIFEST.replace(
        "file: cedar/gdpr.cedar,",
        "file: cedar/gdpr.cedar, obligations_only: true,",
    );
    insta::assert_snapshot!(compile_err(&[("manifest.yaml", &cedar_obligations)]), @"manifest.yaml: field `modules[1].obligations_only`: Cedar policies permit or forbid; `obligations_only` is for Rhai modules");
    let no_citation = testing::MANIFEST.replace("citation: \"GDPR\"", "citation: \"\"");
    insta::assert_snapshot!(compile_err(&[("manifest.yaml", &no_citation)]), @"manifest.yaml: field `modules[1].citation`: every module cites its legal source");
}

#[test]
fn jurisdiction_errors_surface_through_the_bundle() {
    let cycle = [(
        "jurisdictions/US.yaml",
        "code: US\nname: United States\nparent: US-CA\nregimes: [HIPAA]\n",
    )];
    let text = compile_err(&cycle);
    assert!(text.contains("parent cycle"), "{text}");
    let unknown_parent = [(
        "jurisdictions/US-CA.yaml",
        "code: US-CA\nname: California\nparent: XX\n",
    )];
    insta::assert_snapshot!(compile_err(&unknown_parent), @"jurisdictions/US-CA.yaml: field `parent`: `US-CA` names parent `XX`, which no jurisdiction file defines");
}

#[test]
fn a_declared_attribute_of_the_wrong_type_fails_closed_naming_the_field() {
    let bundle = testing::bundle();
    let registry = InMemoryConsentRegistry::new();
    let wrong = access(json!({ "context": { "attributes": { "remuneration": "yes" } } }));
    let decision = bundle.decide(&wrong, &registry, 0);
    assert_eq!(decision.decision, Effect::Deny);
    insta::assert_snapshot!(decision.errors[0].message, @"field `context.attributes.remuneration`: must be a boolean");
    let unknown = access(json!({ "context": { "attributes": { "legal_process": "warrant" } } }));
    let decision = bundle.decide(&unknown, &registry, 0);
    insta::assert_snapshot!(decision.errors[0].message, @"field `context.attributes.legal_process`: must be one of court-order, subpoena");
    // Well-typed declared attributes and undeclared ones pass through to the rules.
    let fine = access(json!({ "context": { "attributes": { "remuneration": false, "note": 3 } } }));
    assert!(bundle.decide(&fine, &registry, 0).is_allow());
}

#[test]
fn a_binding_regime_that_requires_its_own_permission_is_not_satisfied_by_another() {
    // GDPR permits research reads; HIPAA permits nothing for research. An EU actor reads a US
    // record: both regimes bind the holder.
    let gdpr = r#"@id("research") @citation("GDPR Art. 9(2)(j)") @message("research")
permit (principal, action == Accord::Action::"read", resource)
when { context.regimes.contains("GDPR") && context.purpose == "HRESCH" };"#;
    let request = access(json!({
        "actor": { "jurisdiction": "EU-DE" },
        "context": { "purpose_of_use": "HRESCH" }
    }));
    let registry = InMemoryConsentRegistry::new();

    let lenient = Bundle::compile(files_with(&[("cedar/gdpr.cedar", gdpr)])).expect("compiles");
    assert!(
        lenient.decide(&request, &registry, 0).is_allow(),
        "one permit suffices by default"
    );

    let manifest = testing::MANIFEST.replace(
        r#"default_deny_message: "no HIPAA permission" }"#,
        r#"default_deny_message: "no HIPAA permission", permit_required_for: [read] }"#,
    );
    let strict = Bundle::compile(files_with(&[
        ("cedar/gdpr.cedar", gdpr),
        ("manifest.yaml", &manifest),
    ]))
    .expect("compiles");
    let decision = strict.decide(&request, &registry, 0);
    assert_eq!(decision.decision, Effect::Deny);
    assert_eq!(decision.reasons.len(), 1, "{:?}", decision.reasons);
    assert_eq!(decision.reasons[0].citation, "45 CFR 164.502(a)");
    assert!(decision.reasons[0]
        .message
        .starts_with("HIPAA binds this transaction"));
    // A regime that binds only via the recipient or residence is not the holder's law.
    let eu_holder = access(json!({
        "actor": { "jurisdiction": "EU-DE" },
        "resource": { "jurisdiction": "EU-DE" },
        "context": { "purpose_of_use": "HRESCH", "recipient": { "id": "org/x", "country": "US" } }
    }));
    assert!(strict.decide(&eu_holder, &registry, 0).is_allow());
}

#[test]
fn a_deny_by_default_cites_the_laws_that_bind_the_holder() {
    // A US holder, an EU recipient: GDPR applies to the transaction but binds the recipient, not
    // the holder; the explanation is HIPAA's.
    let bundle = testing::bundle();
    let request = access(json!({
        "action": "export",
        "context": { "purpose_of_use": "HPAYMT", "recipient": { "id": "org/eu", "country": "DE" } }
    }));
    let decision = bundle.decide(&request, &InMemoryConsentRegistry::new(), 0);
    assert_eq!(decision.jurisdictions, vec!["EU", "EU-DE", "US", "US-CA"]);
    let citations: Vec<&str> = decision
        .reasons
        .iter()
        .map(|r| r.citation.as_str())
        .collect();
    assert_eq!(citations, vec!["45 CFR 164.502(a)"]);
}
