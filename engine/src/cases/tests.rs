use super::*;
use crate::testing::{self, files_with};
use serde_json::json;
use std::time::Duration;

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

const THREE_WAYS: &str = r#"
defaults:
  access:
    timestamp: "2026-03-01T10:00:00Z"
    actor: { id: practitioner/alice, type: Practitioner, organization: org/st-marys, jurisdiction: US-CA }
    resource: { id: Observation/1, type: Observation, patient: { id: patient/p-1 }, jurisdiction: US }
cases:
  - name: treatment read
    why: 164.506(c)(1) <treatment> & "care"
    access: { action: read, context: { purpose_of_use: TREAT } }
    expect: { decision: allow }
  - name: marketing read expected to pass
    why: 164.508(a)(3) requires an authorization
    access: { action: read, context: { purpose_of_use: HMARKT } }
    expect: { decision: allow }
  - name: unparseable timestamp
    why: a case that cannot run
    access: { action: read, timestamp: "yesterday" }
    expect: { decision: deny }
"#;

#[test]
fn each_result_says_whether_it_passed_failed_or_could_not_run() {
    let results = run_with(THREE_WAYS);
    let statuses: Vec<Status> = results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Status::Passed, Status::Failed, Status::Error]);
    assert_eq!(results[1].expected, Some(Effect::Allow));
    assert_eq!(
        results[2].expected, None,
        "a case that cannot run has no decision"
    );
    assert!(results[1].failures[0] == "expected allow, got deny");
    assert!(results.iter().take(2).all(|r| r.duration > Duration::ZERO));
}

#[test]
fn a_filter_selects_cases_by_name_and_file_errors_whatever_it_is() {
    let bundle = Bundle::compile(files_with(&[("tests/cases.yaml", THREE_WAYS)]))
        .unwrap_or_else(|e| panic!("fixture compiles: {e}"));
    let names = |filter: &str| -> Vec<String> {
        run_bundle_tests_filtered(&bundle, Some(&Filter::new(filter)))
            .into_iter()
            .map(|r| r.name)
            .collect()
    };
    assert_eq!(
        names("read"),
        ["treatment read", "marketing read expected to pass"]
    );
    assert_eq!(names("*read"), ["treatment read"]);
    assert_eq!(names("nothing matches"), Vec::<String>::new());
    let broken = run_tests(
        &bundle,
        "tests/broken.yaml",
        b"cases: 7",
        Some(&Filter::new("x")),
    );
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].status, Status::Error);
    assert!(
        broken[0].failures[0].starts_with("tests/broken.yaml: "),
        "{broken:?}"
    );
}

#[test]
fn one_file_runs_against_the_bundle_whether_or_not_the_manifest_names_it() {
    let bundle = testing::bundle();
    let results = run_tests(&bundle, "tests/extra.yaml", THREE_WAYS.as_bytes(), None);
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.file == "tests/extra.yaml"));
}

/// The results of [`THREE_WAYS`] with fixed durations, so reports are reproducible.
fn fixed_results() -> Vec<CaseResult> {
    let mut results = run_with(THREE_WAYS);
    for (i, r) in results.iter_mut().enumerate() {
        r.duration = Duration::from_micros(1500 * (i as u64 + 1));
    }
    results
}

const INFO: report::RunInfo<'static> = report::RunInfo {
    bundle: "mini",
    version: "sha256:[version]",
    filter: Some("read & <all>"),
};

#[test]
fn the_junit_report_has_a_suite_per_file_and_a_failure_or_error_per_case() {
    let mut results = fixed_results();
    let mut other = results[0].clone();
    other.file = "tests/other.yaml".into();
    other.name = "control\u{1}char".into();
    results.push(other);
    insta::assert_snapshot!(report::junit(&INFO, &results));
}

#[test]
fn the_json_report_spells_decisions_as_the_cases_do() {
    let bundle = testing::bundle();
    let results = fixed_results();
    let coverage = Coverage::of(&bundle, &results);
    let value = report::json(&INFO, &results, Some(&coverage));
    assert_eq!(value["summary"]["total"], 3);
    assert_eq!(value["summary"]["passed"], 1);
    assert_eq!(value["summary"]["failed"], 1);
    assert_eq!(value["summary"]["errors"], 1);
    assert_eq!(value["summary"]["duration_ms"], 9.0);
    assert_eq!(value["cases"][0]["decision"], "allow");
    assert_eq!(value["cases"][1]["expected"], "allow");
    assert_eq!(value["cases"][1]["decision"], "deny");
    assert_eq!(value["cases"][1]["status"], "fail");
    assert_eq!(
        value["cases"][1]["reasons"],
        json!(["test/rules#marketing"])
    );
    assert_eq!(value["cases"][2]["status"], "error");
    assert_eq!(value["cases"][2]["decision"], Value::Null);
    assert_eq!(value["cases"][0]["duration_ms"], 1.5);
    assert_eq!(value["coverage"]["total"], 5);
    assert_eq!(value["filter"], "read & <all>");
}

#[test]
fn the_text_report_lists_failures_and_with_verbose_every_case_and_its_time() {
    let results = fixed_results();
    assert!(report::text_case(&results[0], false).is_empty());
    assert_eq!(
        report::text_case(&results[0], true),
        ["ok   tests/cases.yaml :: treatment read (1.500 ms)"]
    );
    let failed = report::text_case(&results[1], false);
    assert_eq!(
        failed[0],
        "FAIL tests/cases.yaml :: marketing read expected to pass"
    );
    assert_eq!(failed[1], "       expected allow, got deny");
    assert_eq!(
        failed.last().map(String::as_str),
        Some("       why: 164.508(a)(3) requires an authorization")
    );
    assert_eq!(
        report::text_summary(&report::Summary::of(&results)),
        "test result: 1 passed, 2 failed"
    );
    assert_eq!(
        report::text_header(&INFO, 3),
        "running 3 cases matching `read & <all>` of bundle mini (sha256:[version])"
    );
}

#[test]
fn coverage_counts_each_rule_on_the_side_it_decides() {
    let bundle = testing::bundle();
    let results = run_bundle_tests(&bundle);
    let coverage = Coverage::of(&bundle, &results);
    let sides: Vec<(String, &str, usize)> = coverage
        .items
        .iter()
        .map(|i| (i.id(), i.side.as_str(), i.cases))
        .collect();
    assert_eq!(
        sides,
        [
            ("test/gdpr#health-care".to_owned(), "allow", 0),
            ("test/hipaa#consented-share".to_owned(), "allow", 0),
            ("test/hipaa#psychotherapy-notes".to_owned(), "deny", 0),
            ("test/hipaa#treatment".to_owned(), "allow", 1),
            ("test/rules#marketing".to_owned(), "deny", 1),
        ]
    );
    assert_eq!(coverage.exercised(), 2);
    assert!((coverage.percent() - 40.0).abs() < 1e-9);
    assert_eq!(
        coverage.never_exercised(),
        [
            "test/gdpr#health-care",
            "test/hipaa#consented-share",
            "test/hipaa#psychotherapy-notes"
        ]
    );
    assert_eq!(coverage.obligations.len(), 1);
    assert_eq!(
        coverage.obligations[0].first_case.as_deref(),
        Some("tests/cases.yaml :: treatment read")
    );
    let text = report::text_coverage(&coverage, false).join("\n");
    insta::assert_snapshot!(text);
}

#[test]
fn a_permit_on_a_deny_does_not_cover_its_allow_side() {
    // The treatment permit is satisfied, but psychotherapy notes are forbidden: the permit decided
    // nothing, so it is not exercised by this case.
    let results = run_with(
        r#"
defaults:
  access:
    timestamp: "2026-03-01T10:00:00Z"
    actor: { id: practitioner/alice, type: Practitioner, organization: org/st-marys, jurisdiction: US-CA }
    resource: { id: Observation/1, type: Observation, patient: { id: patient/p-1 }, jurisdiction: US,
                data_categories: [psychotherapy-notes] }
cases:
  - name: notes
    why: 164.508(a)(2)
    access: { action: read, context: { purpose_of_use: TREAT } }
    expect: { decision: deny }
"#,
    );
    let coverage = Coverage::of(&testing::bundle(), &results);
    let covered: Vec<String> = coverage
        .items
        .iter()
        .filter(|i| i.covered())
        .map(|i| i.id())
        .collect();
    assert_eq!(covered, ["test/hipaa#psychotherapy-notes"]);
}
