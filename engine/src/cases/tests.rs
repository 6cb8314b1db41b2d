use super::*;
use crate::testing::{self, files_with};
use serde_json::json;

fn run_with(cases: &str) -> Vec<CaseResult> {
    let bundle = Bundle::compile(files_with(&[("tests/cases.yaml", cases)]))
        .unwrap_or_else(|e| panic!("fixture compiles: {e}"));
    run_bundle_tests(&bundle)
}

#[test]
fn the_fixture_cases_pass() {
    let results = run_bundle_tests(&testing::bundle());
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(CaseResult::passed), "{results:?}");
    assert_eq!(results[0].name, "treatment read");
    assert!(results[0].decision.as_ref().is_some_and(|d| d.is_allow()));
}

#[test]
fn deep_merge_merges_objects_and_replaces_everything_else() {
    let merged = deep_merge(
        json!({ "a": { "x": 1, "y": [1, 2] }, "b": 1 }),
        json!({ "a": { "y": [3], "z": true }, "c": null }),
    );
    assert_eq!(
        merged,
        json!({ "a": { "x": 1, "y": [3], "z": true }, "b": 1, "c": null })
    );
}

#[test]
fn a_wrong_expectation_fails_with_every_mismatch_listed() {
    let results = run_with(
        r#"
defaults:
  access:
    timestamp: "2026-03-01T10:00:00Z"
    actor: { id: practitioner/alice, type: Practitioner, organization: org/st-marys, jurisdiction: US-CA }
    resource: { id: Observation/1, type: Observation, patient: { id: patient/p-1 }, jurisdiction: US }
cases:
  - name: wrong on purpose
    why: the runner must report each mismatch
    access: { action: read, context: { purpose_of_use: TREAT } }
    expect: { decision: deny, citations: ["GDPR Art. 99"], rules: [nope], obligations: [shred], errors: true,
              absent_rules: [treatment], absent_obligations: [audit] }
"#,
    );
    assert_eq!(results.len(), 1);
    let failures = &results[0].failures;
    assert_eq!(failures[0], "expected deny, got allow");
    assert_eq!(failures[1], "no reason cites `GDPR Art. 99`");
    assert_eq!(failures[2], "no reason names rule `nope`");
    assert_eq!(failures[3], "no obligation of kind `shred`");
    assert_eq!(
        failures[4],
        "a reason names rule `treatment`, which must be absent"
    );
    assert_eq!(
        failures[5],
        "an obligation of kind `audit` is present, which must be absent"
    );
    assert_eq!(failures[6], "expected evaluation errors, got none");
    assert!(
        failures[7].starts_with("decision reasons: [test/hipaa#treatment"),
        "{failures:?}"
    );
}

#[test]
fn setup_consents_apply_before_the_access() {
    let results = run_with(
        r#"
defaults:
  access:
    timestamp: "2026-03-01T10:00:00Z"
    actor: { id: practitioner/alice, type: Practitioner, organization: org/st-marys, jurisdiction: US-CA }
    resource: { id: DocumentReference/n1, type: DocumentReference, patient: { id: patient/p-1 },
                jurisdiction: US, data_categories: [psychotherapy-notes] }
  consent:
    timestamp: "2026-02-01T00:00:00Z"
cases:
  - name: without an authorization
    why: 164.508(a)(2)
    access: { action: read, context: { purpose_of_use: TREAT } }
    expect: { decision: deny, rules: ["test/hipaa#psychotherapy-notes"] }
  - name: with an authorization
    why: 164.508(a)(2)
    setup:
      - id: tx-c1
        consent: { id: c-1, status: active, patient: patient/p-1, grantee: org/st-marys,
                   purposes: [TREAT], actions: [read], data_categories: [psychotherapy-notes] }
    access: { action: read, context: { purpose_of_use: TREAT } }
    expect: { decision: allow }
"#,
    );
    assert!(results.iter().all(CaseResult::passed), "{results:?}");
}

#[test]
fn bad_steps_are_failures_naming_the_place() {
    let results = run_with(
        r#"
cases:
  - name: setup holds an access
    why: only consent transactions set up state
    setup:
      - { id: t, kind: access }
    access: { kind: consent }
    expect: { decision: deny }
  - name: unparseable access
    why: reports the field
    access: { id: t, timestamp: "not a time" }
    expect: { decision: deny }
"#,
    );
    assert_eq!(results.len(), 2);
    assert!(
        results[0].failures[0].starts_with("cases[0].setup[0]: "),
        "{:?}",
        results[0].failures
    );
    assert!(
        results[0].failures[1].starts_with("cases[0].access: "),
        "{:?}",
        results[0].failures
    );
    insta::assert_snapshot!(results[1].failures.join("\n"), @"cases[1].access: field `timestamp`: `not a time` is not an RFC 3339 timestamp: the 'year' component could not be parsed");
}

#[test]
fn a_test_file_that_does_not_parse_is_one_failure_naming_file_and_field() {
    let results = run_with(
        "cases:\n  - name: x\n    why: y\n    access: {}\n    expect: { decision: maybe }\n",
    );
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].name, "(file)");
    insta::assert_snapshot!(results[0].failures[0], @"tests/cases.yaml: field `cases[0].expect.decision`: unknown variant `maybe`, expected `allow` or `deny` at line 5 column 25");
}
