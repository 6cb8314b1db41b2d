//! End-to-end tests of the `accord` binary: exit codes, one-line errors, and output shapes.

use crate::common::{accord, accord_stdin, copy_dir, root, stderr, stdout};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// A bad-input failure: exit 2 and exactly one line on standard error.
fn assert_bad_input(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one-line error expected: {err}"
    );
    err.trim_end().to_owned()
}

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
}

/// Copies the default bundle and jurisdictions into a temp dir, so a test can break one file.
fn bundle_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&root().join("policies"), &dir.path().join("policies"));
    copy_dir(
        &root().join("jurisdictions"),
        &dir.path().join("jurisdictions"),
    );
    dir
}

#[test]
fn check_prints_one_decision_line_and_exits_by_outcome() {
    let allow = accord(&["check", &example("treatment-read.json")]);
    assert_eq!(allow.status.code(), Some(0), "{}", stderr(&allow));
    let out = stdout(&allow);
    assert_eq!(out.lines().count(), 1);
    let decision: Value = accord_engine::json::value_from_str(&out).expect("decision JSON");
    assert_eq!(decision["decision"], "allow");
    assert_eq!(decision["tx"], "tx-001");
    assert!(decision["policy_set"]["version"]
        .as_str()
        .is_some_and(|v| v.starts_with("sha256:")));

    let deny = accord(&["check", &example("export-to-us.json")]);
    assert_eq!(deny.status.code(), Some(1), "a deny is a failed check");
    let decision: Value =
        accord_engine::json::value_from_str(&stdout(&deny)).expect("decision JSON");
    assert_eq!(decision["decision"], "deny");
    assert!(!decision["reasons"].as_array().expect("reasons").is_empty());
}

#[test]
fn check_applies_state_law_in_addition_to_hipaa() {
    // Cal. Civ. Code 56.110(a): abortion information leaves a California provider's records for an
    // entity from another state only on an authorization naming it; HIPAA's treatment permission
    // (45 CFR 164.506(c)(2)) is not enough.
    let out = accord(&["check", &example("abortion-record-out-of-state.json")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let decision: Value =
        accord_engine::json::value_from_str(&stdout(&out)).expect("decision JSON");
    assert_eq!(decision["decision"], "deny");
    assert_eq!(
        decision["jurisdictions"],
        serde_json::json!(["US", "US-AZ", "US-CA"])
    );
    let reasons = decision["reasons"].as_array().expect("reasons");
    assert!(
        reasons
            .iter()
            .any(|r| r["module"] == "us-states/health-information"
                && r["rule"] == "ca-abortion-information-out-of-state"
                && r["citation"] == "Cal. Civ. Code 56.110(a)"),
        "{reasons:?}"
    );
}

#[test]
fn check_is_byte_identical_across_runs() {
    let a = accord(&["check", &example("export-to-us.json")]);
    let b = accord(&["check", &example("export-to-us.json")]);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn check_reads_standard_input() {
    let text = std::fs::read_to_string(example("treatment-read.json")).expect("example");
    let o = accord_stdin(&["check", "-"], &text);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn check_bad_input_names_file_field_and_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let base: Value = accord_engine::json::value_from_str(
        &std::fs::read_to_string(example("treatment-read.json")).expect("ex"),
    )
    .expect("json");
    let with = |patch: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        patch(&mut v);
        v.to_string()
    };

    let malformed = write("malformed.json", "{ \"id\": ");
    let err = assert_bad_input(&accord(&["check", &malformed]));
    assert!(err.contains("malformed.json"), "{err}");
    assert!(err.contains("EOF"), "{err}");

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown-field.json",
            with(&|v| v["colour"] = "red".into()),
            "unknown field `colour`",
        ),
        (
            "bad-action.json",
            with(&|v| v["action"] = "peek".into()),
            "field `action`: unknown variant `peek`",
        ),
        (
            "bad-actor.json",
            with(&|v| v["actor"]["type"] = "Robot".into()),
            "field `actor.type`: unknown variant `Robot`",
        ),
        (
            "bad-time.json",
            with(&|v| v["timestamp"] = "yesterday".into()),
            "field `timestamp`: `yesterday` is not an RFC 3339 timestamp",
        ),
    ];
    for (name, text, needle) in cases {
        let path = write(name, &text);
        let err = assert_bad_input(&accord(&["check", &path]));
        assert!(err.contains(name), "{err}");
        assert!(err.contains(needle), "`{needle}` not in {err}");
    }

    let missing = assert_bad_input(&accord(&["check", "no-such-file.json"]));
    assert!(missing.contains("no-such-file.json"), "{missing}");
}

/// The ledger facts of docs/contract.md §3a-§3b and the `treatment_basis` attribute, each with the
/// example that shows it: allowed with the state on the ledger, denied without it.
#[test]
fn check_applies_representation_and_agreement_state_from_examples() {
    let state = example("state-representation-dua.json");
    let decide = |tx: &str, with_state: bool| -> (Option<i32>, Value) {
        let path = example(tx);
        let mut args = vec!["check", path.as_str()];
        if with_state {
            args.extend(["--state", state.as_str()]);
        }
        let o = accord(&args);
        let decision = accord_engine::json::value_from_str(&stdout(&o)).expect("decision JSON");
        (o.status.code(), decision)
    };
    let (code, parent) = decide("parent-reads-child-record.json", true);
    assert_eq!(code, Some(0), "{parent}");
    assert!(parent["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .any(|r| r["citation"] == "45 CFR 164.502(g)(3)(i)"));
    let (code, parent) = decide("parent-reads-child-record.json", false);
    assert_eq!(code, Some(1), "no representation on the ledger: {parent}");
    assert_eq!(
        parent["obligations"][0]["kind"], "audit",
        "a denied attempt is audited"
    );

    let (code, lds) = decide("limited-data-set-export.json", true);
    assert_eq!(code, Some(0), "{lds}");
    assert_eq!(lds["reasons"][0]["citation"], "45 CFR 164.514(e)(1)");
    let (code, lds) = decide("limited-data-set-export.json", false);
    assert_eq!(code, Some(1), "no data use agreement on the ledger: {lds}");
    assert_eq!(lds["reasons"][0]["citation"], "45 CFR 164.514(e)(4)(i)");

    let (code, consult) = decide("consultation-read.json", false);
    assert_eq!(code, Some(0), "{consult}");
}

#[test]
fn check_refuses_malformed_state_naming_file_and_transaction() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    let bad = serde_json::json!([{ "id": "tx-r1", "kind": "representation",
        "timestamp": "2026-02-01T09:00:00Z",
        "representation": { "id": "rep/1", "status": "active", "patient": "patient/p-9",
                            "representative": "related/maria", "basis": "aunt" } }]);
    std::fs::write(&path, bad.to_string()).expect("write");
    let err = assert_bad_input(&accord(&[
        "check",
        &example("parent-reads-child-record.json"),
        "--state",
        &path.display().to_string(),
    ]));
    assert!(err.contains("state.json"), "{err}");
    assert!(err.contains("consents[0]"), "{err}");
    assert!(err.contains("representation.basis"), "{err}");
}

#[test]
fn replay_prints_decisions_and_a_state_root_per_block() {
    let o = accord(&["replay", &example("ledger.json")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| accord_engine::json::parse_str(l).expect("each line is JSON"))
        .collect();
    let roots: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("state_root").is_some())
        .collect();
    assert_eq!(roots.len(), 3, "one state root per block");
    assert_eq!(roots[0]["height"], 1);
    assert_eq!(roots[2]["height"], 3);
    // Consent changes between blocks change the root.
    assert_ne!(roots[0]["state_root"], roots[1]["state_root"]);
    let decisions = lines.iter().filter(|l| l.get("decision").is_some()).count();
    assert_eq!(decisions, 5 + 4 + 5);
    // A second run on a fresh state prints the same bytes.
    assert_eq!(
        o.stdout,
        accord(&["replay", &example("ledger.json")]).stdout
    );
}

#[test]
fn replay_flips_a_decision_when_consent_is_withdrawn() {
    let o = accord(&["replay", &example("ledger.json")]);
    let by_tx = |id: &str| -> Value {
        stdout(&o)
            .lines()
            .map(|l| accord_engine::json::value_from_str(l).expect("json"))
            .find(|l| l["tx"] == id)
            .unwrap_or_else(|| panic!("no decision for {id}"))
    };
    // Research read under GDPR consent: allowed in block 1, denied after the revocation in block 2
    // (GDPR Art. 7(3): withdrawal applies from then on).
    assert_eq!(by_tx("tx-019")["decision"], "allow", "{}", by_tx("tx-019"));
    assert_eq!(by_tx("tx-019b")["decision"], "deny");
}

#[test]
fn replay_refuses_a_gap_with_the_expected_height() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gap.json");
    std::fs::write(
        &path,
        r#"[{"height": 1, "transactions": []}, {"height": 3, "transactions": []}]"#,
    )
    .expect("write");
    let err = assert_bad_input(&accord(&["replay", &path.display().to_string()]));
    assert!(err.contains("blocks[1]"), "{err}");
    assert!(err.contains("expected height 2, got 3"), "{err}");
}

#[test]
fn replay_names_the_bad_transaction_in_a_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.json");
    std::fs::write(
        &path,
        r#"[{"height": 1, "transactions": [{"id": "t", "kind": "access", "timestamp": "2026-01-01T00:00:00Z"}]}]"#,
    )
    .expect("write");
    let err = assert_bad_input(&accord(&["replay", &path.display().to_string()]));
    assert!(err.contains("blocks[0]: field `transactions[0]"), "{err}");
    assert!(err.contains("missing field `actor`"), "{err}");
}

#[test]
fn validate_accepts_the_default_bundle() {
    let o = accord(&["validate", "policies"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("ok: bundle accord-default sha256:"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn validate_refuses_a_policy_that_fails_the_schema() {
    let dir = bundle_copy();
    let policies = dir.path().join("policies");
    let cedar_dir = policies.join("cedar");
    let first = std::fs::read_dir(&cedar_dir)
        .expect("cedar dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "cedar"))
        .expect("a cedar file");
    let mut text = std::fs::read_to_string(&first).expect("read");
    text.push_str(
        "\n@id(\"broken\") @citation(\"none\") @message(\"m\")\npermit (principal, action, resource) when { resource.colour == \"red\" };\n",
    );
    std::fs::write(&first, text).expect("write");
    let o = accord(&["validate", &policies.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("policy `broken`"), "{err}");
    assert!(err.contains("colour"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{err}"
    );
}

#[test]
fn validate_reports_a_missing_bundle_as_bad_input() {
    let err = assert_bad_input(&accord(&["validate", "no-such-dir"]));
    assert!(err.contains("no-such-dir"), "{err}");
}

#[test]
fn test_runs_the_default_bundle_cases() {
    let o = accord(&["test", "policies"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    let last = out.lines().last().expect("summary line");
    assert!(last.starts_with("test result: "), "{last}");
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
}

#[test]
fn test_reports_a_failing_case_and_exits_1() {
    let dir = bundle_copy();
    let policies = dir.path().join("policies");
    let manifest = std::fs::read_to_string(policies.join("manifest.yaml")).expect("manifest");
    let manifest = manifest.replace("tests:", "tests:\n  - tests/wrong.yaml");
    std::fs::write(policies.join("manifest.yaml"), manifest).expect("write");
    let case = std::fs::read_to_string(example("treatment-read.json")).expect("example");
    std::fs::write(
        policies.join("tests/wrong.yaml"),
        format!("cases:\n  - name: expects the wrong outcome\n    why: proves the runner can fail\n    access: {case}\n    expect: {{ decision: deny }}\n"),
    )
    .expect("write");
    let o = accord(&["test", &policies.display().to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("FAIL tests/wrong.yaml :: expects the wrong outcome"),
        "{out}"
    );
    assert!(out.contains("expected deny, got allow"), "{out}");
    assert!(out.trim_end().ends_with(" 1 failed"), "{out}");
}

#[test]
fn check_replay_and_validate_refuse_a_repeated_key_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(example("treatment-read.json")).expect("example");
    let bypass = text.replacen("\"action\":", "\"action\": \"delete\", \"action\":", 1);
    assert_ne!(bypass, text);
    let path = dir.path().join("twice.json");
    std::fs::write(&path, &bypass).expect("write");
    let err = assert_bad_input(&accord(&["check", &path.display().to_string()]));
    assert!(
        err.contains("field `action`: duplicate key `action`"),
        "{err}"
    );

    let blocks = dir.path().join("blocks.json");
    std::fs::write(
        &blocks,
        format!("[{{\"height\": 1, \"transactions\": [{bypass}]}}]"),
    )
    .expect("write");
    let err = assert_bad_input(&accord(&["replay", &blocks.display().to_string()]));
    assert!(err.contains("[0].transactions[0].action"), "{err}");

    // A jurisdiction file that states a parameter twice: which one would a reviewer read?
    let bundle = bundle_copy();
    let de = bundle.path().join("jurisdictions/EU-DE.yaml");
    let yaml = std::fs::read_to_string(&de).expect("EU-DE");
    std::fs::write(&de, format!("{yaml}\n  digital_consent_age: 13\n")).expect("write");
    let o = accord(&[
        "validate",
        &bundle.path().join("policies").display().to_string(),
    ]);
    assert_ne!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert!(err.contains("EU-DE.yaml"), "{err}");
    assert!(err.contains("duplicate key `digital_consent_age`"), "{err}");
}

/// GDPR Art. 49(1)(e): an export for an identified legal claim (`context.legal_claim`) is allowed;
/// the same export with the claim left out is refused.
#[test]
fn check_allows_a_transfer_for_an_identified_legal_claim() {
    let allow = accord(&["check", &example("transfer-legal-claim.json")]);
    assert_eq!(allow.status.code(), Some(0), "{}", stdout(&allow));
    let text = std::fs::read_to_string(example("transfer-legal-claim.json")).expect("example");
    let mut tx: Value = accord_engine::json::value_from_str(&text).expect("json");
    tx["context"]
        .as_object_mut()
        .expect("context")
        .remove("legal_claim");
    let deny = accord_stdin(&["check", "-"], &tx.to_string());
    assert_eq!(deny.status.code(), Some(1), "{}", stdout(&deny));
    assert!(
        stdout(&deny).contains("GDPR Art. 49(1)(e)"),
        "{}",
        stdout(&deny)
    );
    // A claim in an unknown kind of procedure is bad input, named by field.
    tx["context"]["legal_claim"] =
        serde_json::json!({ "reference": "x", "procedure": "arbitration" });
    let bad = assert_bad_input(&accord_stdin(&["check", "-"], &tx.to_string()));
    assert!(bad.contains("context.legal_claim.procedure"), "{bad}");
}

/// GDPR Art. 49(1)(a): a consent whose `transfer` statement names the destination lets the export
/// leave the EEA; a consent without one does not.
#[test]
fn replay_honours_an_explicit_transfer_consent() {
    let o = accord(&["replay", &example("transfer-consent.json")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let decision = |id: &str| -> Value {
        stdout(&o)
            .lines()
            .map(|l| accord_engine::json::value_from_str(l).expect("json"))
            .find(|l| l["tx"] == id)
            .unwrap_or_else(|| panic!("no decision for {id}"))
    };
    assert_eq!(decision("tx-te-1")["decision"], "allow");
    let refused = decision("tx-te-2");
    assert_eq!(refused["decision"], "deny");
    assert_eq!(refused["reasons"][0]["citation"], "GDPR Art. 49(1)(a)");
}

#[test]
fn replay_a_single_part2_tpo_consent_reaches_a_referral_until_revoked() {
    let o = accord(&["replay", &example("part2-tpo-consent.json")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let by_tx = |id: &str| -> Value {
        stdout(&o)
            .lines()
            .map(|l| accord_engine::json::value_from_str(l).expect("json"))
            .find(|l| l["tx"] == id)
            .unwrap_or_else(|| panic!("no decision for {id}"))
    };
    // 42 CFR 2.33(a)(2): the program refers the patient to a provider its TPO consent designates
    // only generally; 2.32 sends the notice and the consent with it.
    let first = by_tx("tx-p2-1");
    assert_eq!(first["decision"], "allow", "{first}");
    let kinds: Vec<&str> = first["obligations"]
        .as_array()
        .expect("obligations")
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"redisclosure-notice") && kinds.contains(&"consent-copy"));
    // Revoked in writing, it reaches nothing more.
    let second = by_tx("tx-p2-2");
    assert_eq!(second["decision"], "deny", "{second}");
    assert_eq!(second["reasons"][0]["citation"], "42 CFR 2.33(a)");
}

#[test]
fn replay_refuses_a_part2_consent_kind_it_does_not_know_or_that_says_too_much() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(example("part2-tpo-consent.json")).expect("example");
    // An unknown kind is refused when the block is parsed.
    let path = dir.path().join("unknown.json");
    std::fs::write(
        &path,
        text.replace("\"part2\": \"tpo\"", "\"part2\": \"general\""),
    )
    .unwrap();
    let err = assert_bad_input(&accord(&["replay", &path.display().to_string()]));
    assert!(err.contains("consent.part2"), "{err}");
    let path = dir.path().join("combined.json");
    std::fs::write(
        &path,
        text.replace("\"HOPERAT\"", "\"HOPERAT\",\n      \"HLEGAL\""),
    )
    .unwrap();
    // A TPO consent combined with a consent for proceedings (2.31(d)) is refused by the registry
    // (the block still applies), so the referral it would have covered is denied.
    let o = accord(&["replay", &path.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let first: Value = stdout(&o)
        .lines()
        .map(|l| accord_engine::json::value_from_str(l).expect("json"))
        .find(|l| l["tx"] == "tx-p2-1")
        .expect("a decision for tx-p2-1");
    assert_eq!(first["decision"], "deny", "{first}");
    assert_eq!(first["reasons"][0]["citation"], "42 CFR 2.33(a)");
}

/// `accord test` on the default bundle with `args` after it.
fn test_default(args: &[&str]) -> Output {
    let mut all = vec!["test", "policies"];
    all.extend_from_slice(args);
    accord(&all)
}

#[test]
fn test_filter_selects_cases_by_substring_or_glob() {
    let o = test_default(&["--filter", "164.510(a)", "-v"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let cases: Vec<&str> = out.lines().filter(|l| l.starts_with("ok   ")).collect();
    assert!(cases.len() >= 5, "{out}");
    assert!(cases.iter().all(|l| l.contains("164.510(a)")), "{out}");
    assert!(
        out.lines()
            .next()
            .is_some_and(|l| l.contains("matching `164.510(a)`")),
        "{out}"
    );
    // A glob matches the whole name: these names start with the citation.
    let o = test_default(&["--filter", "UK GDPR Art. 49*", "-v"]);
    let out = stdout(&o);
    let cases: Vec<&str> = out.lines().filter(|l| l.starts_with("ok   ")).collect();
    assert!(!cases.is_empty(), "{out}");
    assert!(
        cases.iter().all(|l| l.contains(":: UK GDPR Art. 49")),
        "{out}"
    );
}

#[test]
fn test_with_a_filter_matching_nothing_fails() {
    let o = test_default(&["--filter", "no case is named like this"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no test case matches --filter `no case is named like this`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn test_runs_one_test_file_of_a_bundle() {
    let o = accord(&["test", "policies/tests/coverage-uk.yaml", "-v"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let cases: Vec<&str> = out.lines().filter(|l| l.starts_with("ok   ")).collect();
    assert!(cases.len() >= 10, "{out}");
    assert!(
        cases
            .iter()
            .all(|l| l.starts_with("ok   tests/coverage-uk.yaml :: ")),
        "{out}"
    );
    // Every case line carries its time.
    assert!(cases.iter().all(|l| l.ends_with(" ms)")), "{out}");

    let dir = tempfile::tempdir().expect("temp dir");
    let stray = dir.path().join("cases.yaml");
    std::fs::write(&stray, "cases: []\n").expect("write");
    let err = assert_bad_input(&accord(&["test", &stray.display().to_string()]));
    assert!(err.contains("not inside a policy bundle"), "{err}");
}

#[test]
fn test_reports_json_with_decisions_spelt_as_in_the_cases() {
    let o = test_default(&["--format", "json", "--filter", "164.510(a)(2)"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: Value =
        accord_engine::json::value_from_str(&stdout(&o)).expect("one JSON document");
    assert_eq!(report["bundle"]["name"], "accord-default");
    assert_eq!(report["filter"], "164.510(a)(2)");
    let cases = report["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    assert_eq!(report["summary"]["total"], cases.len());
    for case in cases {
        assert_eq!(case["status"], "pass");
        assert_eq!(case["decision"], case["expected"]);
        assert!(
            matches!(case["decision"].as_str(), Some("allow" | "deny")),
            "{case}"
        );
        assert!(
            case["duration_ms"].as_f64().is_some_and(|t| t > 0.0),
            "{case}"
        );
    }
    assert!(report.get("coverage").is_none(), "only with --coverage");
}

#[test]
fn test_reports_junit_xml_with_a_failure_per_failing_case() {
    let dir = bundle_copy();
    let policies = dir.path().join("policies");
    let manifest = std::fs::read_to_string(policies.join("manifest.yaml")).expect("manifest");
    let manifest = manifest.replace("tests:", "tests:\n  - tests/wrong.yaml");
    std::fs::write(policies.join("manifest.yaml"), manifest).expect("write");
    let case = std::fs::read_to_string(example("treatment-read.json")).expect("example");
    std::fs::write(
        policies.join("tests/wrong.yaml"),
        format!("cases:\n  - name: expects the wrong outcome\n    why: proves the runner can fail\n    access: {case}\n    expect: {{ decision: deny }}\n"),
    )
    .expect("write");
    let o = accord(&[
        "test",
        &policies.display().to_string(),
        "--format",
        "junit",
        "--filter",
        "wrong",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let xml = stdout(&o);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"accord-default\" tests=\"1\" failures=\"1\" errors=\"0\""), "{xml}");
    assert!(
        xml.contains("<testsuite name=\"tests/wrong.yaml\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"expected deny, got allow\" type=\"decision\">"),
        "{xml}"
    );
    assert!(xml.trim_end().ends_with("</testsuites>"), "{xml}");
}

#[test]
fn test_verbose_into_a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["test", "-v", "policies"])
        .current_dir(crate::common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("accord starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    // The reader is dropped here, as `head -1` exits: the pipe closes with hundreds of lines to go.
    assert!(first.starts_with("running "), "{first}");
    let o = child.wait_with_output().expect("accord ends");
    assert_eq!(stderr(&o), "", "no error and no panic on a closed pipe");
    assert_eq!(o.status.code(), Some(0), "the exit code is still the run's");
}

#[test]
fn test_coverage_of_the_default_bundle_is_complete() {
    let o = test_default(&["--coverage", "--min-coverage", "100"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    let line = out
        .lines()
        .find(|l| l.starts_with("coverage: "))
        .expect("a coverage line");
    assert!(line.ends_with(" rule sides exercised (100.0%)"), "{out}");
    assert!(!out.contains("not exercised:"), "{out}");
}

#[test]
fn test_min_coverage_fails_below_the_minimum() {
    // Without the coverage files, some rules are exercised by no case.
    let dir = bundle_copy();
    let policies = dir.path().join("policies");
    let manifest = std::fs::read_to_string(policies.join("manifest.yaml")).expect("manifest");
    let manifest: String = manifest
        .lines()
        .filter(|l| !l.contains("tests/coverage-"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(policies.join("manifest.yaml"), manifest).expect("write");
    let shown = policies.display().to_string();
    let o = accord(&["test", &shown, "--min-coverage", "100"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("not exercised:"), "{out}");
    assert!(
        out.contains("allow side uk/lawful-basis-and-conditions#uk-rectification"),
        "{out}"
    );
    assert!(out.contains("never exercised on any side"), "{out}");
    assert!(
        stderr(&o).contains("is below --min-coverage 100"),
        "{}",
        stderr(&o)
    );
    // Coverage without a minimum reports and passes; in JSON it is a section of the report.
    assert_eq!(
        accord(&["test", &shown, "--coverage"]).status.code(),
        Some(0)
    );
    let o = accord(&["test", &shown, "--coverage", "--format", "json"]);
    let report: Value = accord_engine::json::value_from_str(&stdout(&o)).expect("JSON");
    assert!(report["coverage"]["percent"]
        .as_f64()
        .is_some_and(|p| p < 100.0));
    assert!(report["coverage"]["never_exercised"]
        .as_array()
        .is_some_and(|n| !n.is_empty()));

    let err = assert_bad_input(&accord(&["test", &shown, "--min-coverage", "120"]));
    assert!(err.contains("--min-coverage 120"), "{err}");
}

#[test]
fn check_explain_tells_why_a_transfer_is_denied() {
    let o = accord(&["check", "--explain", &example("export-to-us.json")]);
    assert_eq!(o.status.code(), Some(1), "a deny is a failed check");
    let version = stdout(&accord(&["validate", "policies"]))
        .split_whitespace()
        .nth(3)
        .expect("the version")
        .trim_end_matches(':')
        .to_owned();
    let text = stdout(&o).replace(&version, "sha256:[version]");
    insta::assert_snapshot!(text);
}

#[test]
fn check_explain_tells_why_a_treatment_read_is_allowed() {
    let o = accord(&["check", "--explain", &example("treatment-read.json")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("decision: allow"), "{text}");
    assert!(
        text.contains("why: a rule permits and none denies"),
        "{text}"
    );
    assert!(text.contains("hipaa/privacy-rule#treatment"), "{text}");
    assert!(
        text.contains("\nobligations\n  audit [45 CFR 164.312(b)]"),
        "{text}"
    );
    // Without --explain, the one JSON line as before.
    let o = accord(&["check", &example("treatment-read.json")]);
    assert_eq!(stdout(&o).lines().count(), 1);
}

#[test]
fn fmt_check_lists_unformatted_files_and_fmt_rewrites_them_without_changing_meaning() {
    let dir = bundle_copy();
    let policies = dir.path().join("policies");
    let shown = policies.display().to_string();
    let file = policies.join("cedar/hipaa-authorization.cedar");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("\n  ", "\n     ")).expect("write");
    let before = stdout(&accord(&["test", &shown]));

    let o = accord(&["fmt", "--check", &shown]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(&format!("not formatted: {}", file.display())),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&file).ok(),
        Some(text.replace("\n  ", "\n     ")),
        "--check changes nothing"
    );

    let o = accord(&["fmt", &shown]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("formatted {}", file.display())));
    assert_eq!(accord(&["fmt", "--check", &shown]).status.code(), Some(0));
    // Formatting again changes nothing, and the bundle decides every case as before.
    assert_eq!(stdout(&accord(&["fmt", &shown])), "");
    assert_eq!(accord(&["validate", &shown]).status.code(), Some(0));
    let after = stdout(&accord(&["test", &shown]));
    let summary = |s: &str| s.lines().last().map(str::to_owned);
    assert_eq!(summary(&before), summary(&after));
    assert!(after.trim_end().ends_with(" 0 failed"), "{after}");
}

#[test]
fn fmt_refuses_a_policy_that_does_not_parse_naming_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("broken.cedar");
    std::fs::write(
        &file,
        "@id(\"x\")\npermit (principal, action, resource)\nwhen { context.x == };\n",
    )
    .expect("write");
    let err = assert_bad_input(&accord(&["fmt", "--check", &file.display().to_string()]));
    assert!(err.contains("broken.cedar: line 3, column "), "{err}");
    assert!(err.contains("unexpected token"), "{err}");
}

/// A data directory whose decision log holds `n` entries (the allowed treatment read), closed.
fn data_with_log(n: usize) -> tempfile::TempDir {
    use accord_server::decision_log::Record;
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = accord_engine::Bundle::load(&root().join("policies")).expect("bundle");
    let text = std::fs::read_to_string(example("treatment-read.json")).expect("example");
    let request = accord_engine::AccessRequest::from_json(&text).expect("transaction");
    let decision = bundle.decide(
        &request,
        &accord_engine::InMemoryConsentRegistry::default(),
        0,
    );
    let records: Vec<Record<'_>> = (0..n).map(|_| Record::new(&decision, &request)).collect();
    let db = sled::open(dir.path()).expect("sled");
    let log = accord_server::DecisionLog::open(&db, accord_server::storage::StorageHealth::new())
        .expect("log");
    log.append_all(&records).expect("append");
    drop(log);
    db.flush().expect("flush");
    dir
}

/// `accord log verify --data DIR`, retried while sled still holds the lock of a database this
/// process just closed (its flusher thread lets go a moment later).
fn log_verify(data: &Path) -> Output {
    let data = data.display().to_string();
    for _ in 0..100 {
        let out = accord(&["log", "verify", "--data", &data]);
        if !stderr(&out).contains("in use by another process") {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the data directory stayed locked");
}

#[test]
fn log_verify_checks_the_whole_chain_offline() {
    let dir = data_with_log(5);
    let out = log_verify(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1);
    let v: Value = accord_engine::json::value_from_str(&stdout(&out)).expect("JSON");
    assert_eq!(
        (
            &v["ok"],
            &v["length"],
            &v["checked_from"],
            &v["checked"],
            &v["full"]
        ),
        (
            &Value::Bool(true),
            &Value::from(5),
            &Value::from(1),
            &Value::from(5),
            &Value::Bool(true)
        ),
        "{v}"
    );
    assert!(v["head"].as_str().is_some_and(|h| h.starts_with("sha256:")));

    // Entry 3's transaction id changed in its stored segment: broken there, exit 1.
    {
        let db = sled::open(dir.path()).expect("sled");
        let tree = db
            .open_tree(accord_server::decision_log::TREE)
            .expect("tree");
        let (key, value) = tree.first().expect("read").expect("a segment");
        let text = String::from_utf8(value.to_vec()).expect("utf-8");
        let forged: String = text
            .lines()
            .map(|e| {
                if e.contains("\"seq\":3,") {
                    format!("{}\n", e.replacen("\"tx\":\"", "\"tx\":\"forged-", 1))
                } else {
                    format!("{e}\n")
                }
            })
            .collect();
        assert_ne!(forged, text);
        tree.insert(key, forged.as_bytes()).expect("write");
        db.flush().expect("flush");
    }
    let out = log_verify(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = accord_engine::json::value_from_str(&stdout(&out)).expect("JSON");
    assert_eq!(
        (&v["ok"], &v["length"]),
        (&Value::Bool(false), &Value::from(2))
    );
    assert_eq!(v["broken"]["seq"], 3);
    assert!(
        v["broken"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("hash mismatch")),
        "{v}"
    );
}

#[test]
fn log_verify_of_a_database_without_a_log_is_an_empty_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(sled::open(dir.path()).expect("sled"));
    let out = log_verify(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = accord_engine::json::value_from_str(&stdout(&out)).expect("JSON");
    assert_eq!(
        (&v["ok"], &v["length"]),
        (&Value::Bool(true), &Value::from(0))
    );
}

#[test]
fn log_verify_refuses_a_missing_foreign_or_busy_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nowhere");
    let err = assert_bad_input(&accord(&[
        "log",
        "verify",
        "--data",
        &missing.display().to_string(),
    ]));
    assert!(err.contains("not a directory"), "{err}");
    assert!(!missing.exists(), "nothing was created");

    let foreign = dir.path().join("photos");
    std::fs::create_dir(&foreign).expect("mkdir");
    let err = assert_bad_input(&accord(&[
        "log",
        "verify",
        "--data",
        &foreign.display().to_string(),
    ]));
    assert!(err.contains("no database here"), "{err}");
    assert_eq!(
        std::fs::read_dir(&foreign).expect("read dir").count(),
        0,
        "nothing was created"
    );

    // A running server holds the database's lock.
    let busy = data_with_log(1);
    let _held = {
        let mut tries = 0;
        loop {
            match sled::open(busy.path()) {
                Ok(db) => break db,
                Err(e) if tries < 100 && e.to_string().contains("lock") => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("open: {e}"),
            }
        }
    };
    let err = assert_bad_input(&accord(&[
        "log",
        "verify",
        "--data",
        &busy.path().display().to_string(),
    ]));
    assert!(err.contains("in use by another process"), "{err}");
}
