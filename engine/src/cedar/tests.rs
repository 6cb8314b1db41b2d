use super::*;
use crate::bundle::{Bundle, BundleError, DerivedFacts};
use crate::consent::{ConsentFacts, InMemoryConsentRegistry};
use crate::jurisdiction::Applicable;
use crate::testing::{self, access, files_with};
use crate::transaction::DataCategory;
use serde_json::json;

/// The facts of `request` with these applicable jurisdictions and consent facts.
fn derived(request: &AccessRequest, applicable: Applicable, consent: ConsentFacts) -> DerivedFacts {
    // The consented categories serve as an authorization too (no compound consent here).
    let mut relations = crate::relations::RelationFacts::default();
    relations.authorization.categories = consent.categories.clone();
    DerivedFacts {
        applicable,
        consent,
        categories: request.data_categories(),
        relations,
        native_fits: std::cell::OnceCell::new(),
        module_filter: std::cell::OnceCell::new(),
    }
}

/// The slice's policy ids for `request` where exactly `regimes` apply (no consent).
fn slice_ids(bundle: &Bundle, request: &AccessRequest, regimes: &[&str]) -> Vec<String> {
    let applicable = Applicable {
        regimes: regimes.iter().map(|r| r.to_string()).collect(),
        ..Applicable::default()
    };
    let facts = derived(request, applicable, ConsentFacts::default());
    bundle.cedar().slice(request, &facts.facts()).ids()
}

fn compile_err(policies: &str) -> String {
    match Bundle::compile(files_with(&[("cedar/gdpr.cedar", policies)])) {
        Ok(_) => panic!("policies must be refused:\n{policies}"),
        Err(BundleError::Cedar(e)) => e.to_string(),
        Err(other) => panic!("expected a Cedar error, got {other}"),
    }
}

/// Requests covering every action, both regimes, consent and no consent.
fn varied_requests() -> Vec<(AccessRequest, ConsentFacts)> {
    let mut out = Vec::new();
    for action in Action::ALL {
        for purpose in ["TREAT", "HPAYMT", "HRESCH"] {
            for (jurisdiction, categories) in [
                ("US", json!(["general"])),
                ("EU-DE", json!(["psychotherapy-notes", "general"])),
            ] {
                let request = access(json!({
                    "action": action.as_str(),
                    "resource": { "jurisdiction": jurisdiction, "data_categories": categories },
                    "context": { "purpose_of_use": purpose,
                                 "recipient": { "id": "org/uni-lab", "country": "US" } }
                }));
                for consented in [
                    vec![],
                    vec![DataCategory::PsychotherapyNotes, DataCategory::General],
                ] {
                    let transfer_countries = if consented.is_empty() {
                        vec![]
                    } else {
                        vec!["US".to_owned()]
                    };
                    let consent = ConsentFacts {
                        categories: consented,
                        transfer_countries,
                        consent_ids: vec![],
                        ..ConsentFacts::default()
                    };
                    out.push((request.clone(), consent));
                }
            }
        }
    }
    out
}

#[test]
fn sliced_fast_path_matches_the_naive_path_on_every_request() {
    let bundle = testing::bundle();
    let mut checked = 0;
    for (request, consent) in varied_requests() {
        let applicable = bundle
            .jurisdictions()
            .applicable(&request)
            .expect("fixture jurisdictions resolve");
        let derived = derived(&request, applicable, consent);
        let facts = derived.facts();
        let fast = bundle.cedar().authorize(&request, &facts);
        let naive = bundle
            .cedar()
            .authorize_reference(&request, &facts)
            .expect("the naive path accepts what the fast path builds");
        assert_eq!(fast, naive, "request {request:?}");
        checked += 1;
    }
    assert_eq!(checked, 8 * 3 * 2 * 2);
}

#[test]
fn slices_hold_exactly_the_policies_that_can_match() {
    let bundle = testing::bundle();
    let ids = |action: Action, regimes: &[&str]| -> Vec<String> {
        slice_ids(
            &bundle,
            &access(json!({ "action": action.as_str() })),
            regimes,
        )
    };
    let both = ["GDPR", "HIPAA"];
    // The record is `general`: the psychotherapy-notes forbid guards on its category and drops.
    assert_eq!(
        ids(Action::Read, &both),
        vec!["test/gdpr#health-care", "test/hipaa#treatment"]
    );
    // Sharing under an authorization needs a consent covering the record's categories: without
    // one, the policy's coverage guard drops it; with one, it stays.
    assert!(ids(Action::Share, &both).is_empty());
    let share = access(json!({ "action": "share" }));
    let consented = derived(
        &share,
        Applicable {
            regimes: both.iter().map(|r| r.to_string()).collect(),
            ..Applicable::default()
        },
        ConsentFacts {
            categories: share.data_categories(),
            ..ConsentFacts::default()
        },
    );
    assert_eq!(
        bundle.cedar().slice(&share, &consented.facts()).ids(),
        vec!["test/hipaa#consented-share"]
    );
    assert!(ids(Action::Delete, &both).is_empty());
    let notes = access(json!({ "resource": { "data_categories": ["psychotherapy-notes"] } }));
    assert!(
        slice_ids(&bundle, &notes, &both).contains(&"test/hipaa#psychotherapy-notes".to_owned())
    );
    // Every fixture policy tests its regime first, so a regime that does not apply drops it.
    assert_eq!(ids(Action::Read, &["GDPR"]), vec!["test/gdpr#health-care"]);
    assert!(ids(Action::Read, &[]).is_empty());
}

#[test]
fn slices_drop_policies_whose_purpose_or_kind_guard_fails() {
    let bundle = testing::bundle();
    let ids = |patch: serde_json::Value| slice_ids(&bundle, &access(patch), &["GDPR", "HIPAA"]);
    // The fixture's `treatment` policy guards on purpose TREAT, then on kind via a later conjunct.
    assert!(ids(json!({})).contains(&"test/hipaa#treatment".to_owned()));
    assert!(!ids(json!({ "context": { "purpose_of_use": "HPAYMT" } }))
        .contains(&"test/hipaa#treatment".to_owned()));
    // A purpose no guard names shares the "other" class and is sliced the same way.
    assert_eq!(
        ids(json!({ "context": { "purpose_of_use": "ZZZ" } })),
        ids(json!({ "context": { "purpose_of_use": "YYY" } }))
    );
}

#[test]
fn a_policy_that_tests_its_regime_later_stays_in_every_regime_slice() {
    // The regime test comes after a conjunct that is not a recognised guard: that conjunct could
    // fail with an error on any request, so the policy is evaluated whatever regimes apply.
    let late = r#"@id("late") @citation("c") @message("m")
permit (principal, action == Accord::Action::"read", resource)
when { resource.fhir_type == "Observation" && context.regimes.contains("GDPR") };"#;
    let bundle = Bundle::compile(files_with(&[("cedar/gdpr.cedar", late)])).expect("compiles");
    assert!(slice_ids(&bundle, &access(json!({})), &[]).contains(&"test/gdpr#late".to_owned()));
}

#[test]
fn determining_policies_carry_module_rule_and_citation() {
    let bundle = testing::bundle();
    let request = access(json!({}));
    let applicable = Applicable {
        jurisdictions: vec!["US".into()],
        regimes: vec!["HIPAA".into()],
        holder_regimes: vec!["HIPAA".into()],
        patient_jurisdiction: None,
    };
    let facts = derived(&request, applicable, ConsentFacts::default());
    let outcome = bundle.cedar().authorize(&request, &facts.facts());
    assert!(outcome.allowed);
    assert_eq!(outcome.reasons.len(), 1);
    assert_eq!(outcome.reasons[0].module, "test/hipaa");
    assert_eq!(outcome.reasons[0].rule, "treatment");
    assert_eq!(outcome.reasons[0].citation, "45 CFR 164.506(c)(1)");
}

#[test]
fn a_policy_that_fails_validation_is_refused_naming_file_and_rule() {
    let text = compile_err(
        r#"@id("typo") @citation("GDPR Art. 6") @message("m")
permit (principal, action, resource) when { context.purpse == "TREAT" };"#,
    );
    assert!(text.contains("cedar/gdpr.cedar: policy `typo`"), "{text}");
    assert!(text.contains("purpse"), "{text}");
}

#[test]
fn a_policy_file_that_does_not_parse_names_file_and_line() {
    let text = compile_err("@id(\"a\") @citation(\"c\") @message(\"m\")\npermit (principal, action, resource)\nwhen { context.purpose == };");
    assert!(
        text.starts_with("cedar/gdpr.cedar: policy file does not parse: line 3"),
        "{text}"
    );
}

#[test]
fn every_annotation_is_required() {
    for (missing, policy) in [
        (
            "id",
            r#"@citation("c") @message("m") permit (principal, action, resource);"#,
        ),
        (
            "citation",
            r#"@id("a") @message("m") permit (principal, action, resource);"#,
        ),
        (
            "message",
            r#"@id("a") @citation("c") permit (principal, action, resource);"#,
        ),
    ] {
        let text = compile_err(policy);
        assert!(
            text.contains(&format!("missing or empty @{missing} annotation")),
            "{text}"
        );
    }
    insta::assert_snapshot!(
        compile_err(r#"@id("a") @citation("") @message("m") permit (principal, action, resource);"#),
        @"cedar/gdpr.cedar: policy `a`: missing or empty @citation annotation"
    );
}

#[test]
fn duplicate_ids_in_a_module_are_refused() {
    let p = r#"@id("same") @citation("c") @message("m") permit (principal, action, resource);"#;
    insta::assert_snapshot!(compile_err(&format!("{p}\n{p}")), @"cedar/gdpr.cedar: policy `same`: @id is used twice in module `test/gdpr`");
}

#[test]
fn templates_are_refused() {
    let text = compile_err(
        r#"@id("t") @citation("c") @message("m") permit (principal == ?principal, action, resource);"#,
    );
    assert!(text.contains("templates are not supported"), "{text}");
}

#[test]
fn a_schema_that_does_not_parse_is_refused() {
    let err = Bundle::compile(files_with(&[(
        "schema.cedarschema",
        "namespace Accord { entity ",
    )]))
    .expect_err("broken schema");
    assert!(
        err.to_string()
            .starts_with("schema.cedarschema: schema does not parse"),
        "{err}"
    );
}

#[test]
fn reference_path_is_schema_checked() {
    // The naive path validates entities against the schema; the fast path's entities pass it,
    // which the equality test relies on. Here: a consent-free registry, default bundle facts.
    let bundle = testing::bundle();
    let request = access(json!({ "action": "export" }));
    let decision = bundle.decide(&request, &InMemoryConsentRegistry::new(), 0);
    assert!(!decision.is_allow());
}

#[test]
fn every_boolean_context_attribute_is_a_known_flag() {
    // The slicer keys on boolean context attributes by name; a new one must be added there too.
    let request = access(json!({}));
    let facts = derived(&request, Applicable::default(), ConsentFacts::default());
    let mut flags: Vec<&str> = request::attrs(request::CONTEXT, &request, &facts.facts())
        .into_iter()
        .filter(|(_, v)| matches!(v, request::Attr::Bool(_)))
        .map(|(k, _)| k)
        .collect();
    flags.sort();
    let mut known = guards::CONTEXT_FLAGS.to_vec();
    known.sort();
    assert_eq!(flags, known);
}
