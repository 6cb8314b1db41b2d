//! Rules that cannot fail open: each mistake a compliance officer can make in a module or a
//! manifest surfaces as an error (or a warning) before the bundle is voted on, or as a deny with
//! the error listed, never as a silent allow.

use super::analysis_tests::{default_bundle, rules_decision};
use crate::bundle::{Bundle, BundleError};
use crate::consent::InMemoryConsentRegistry;
use crate::decision::{Decision, Effect};
use crate::rules::RuleError;
use crate::testing::{access, files_with, MANIFEST};
use serde_json::{json, Value};

/// The fixture manifest with these lines added under `attributes.context`.
fn manifest_declaring(lines: &str) -> String {
    MANIFEST.replace("  context:\n", &format!("  context:\n{lines}"))
}

fn compile(files: &[(&str, &str)]) -> Result<Bundle, BundleError> {
    Bundle::compile(files_with(files))
}

fn decide(files: &[(&str, &str)], patch: Value) -> Decision {
    let bundle = compile(files).unwrap_or_else(|e| panic!("bundle compiles: {e}"));
    bundle.decide(&access(patch), &InMemoryConsentRegistry::new(), 0)
}

fn problems(files: &[(&str, &str)]) -> Vec<String> {
    match compile(files) {
        Ok(_) => panic!("the bundle must be refused"),
        Err(BundleError::Rules(RuleError::Checks { problems })) => problems,
        Err(other) => panic!("expected the module checks to refuse it, got: {other}"),
    }
}

fn errors(d: &Decision) -> String {
    d.errors
        .iter()
        .map(|e| format!("{}: {}", e.module, e.message))
        .collect::<Vec<_>>()
        .join("\n")
}

const RECORD_COUNT: &str = r#"
fn evaluate(tx, env) {
    if tx.context.attributes.record_count > 1000 {
        return [deny("bulk-disclosure", "45 CFR 164.502(b)", "more than 1000 records")];
    }
    []
}"#;

#[test]
fn a_string_compared_with_an_integer_denies_with_an_error_instead_of_allowing() {
    // Declared as an integer: a request giving it as a string is refused before any rule runs.
    let manifest = manifest_declaring("    record_count: integer\n");
    let files = [
        ("manifest.yaml", manifest.as_str()),
        ("rhai/rules.rhai", RECORD_COUNT),
    ];
    let number = decide(
        &files,
        json!({ "context": { "attributes": { "record_count": 5000 } } }),
    );
    assert_eq!(number.decision, Effect::Deny);
    assert!(number.reasons.iter().any(|r| r.rule == "bulk-disclosure"));
    let text = decide(
        &files,
        json!({ "context": { "attributes": { "record_count": "5000" } } }),
    );
    assert_eq!(text.decision, Effect::Deny);
    assert!(
        errors(&text).contains("`context.attributes.record_count`: must be an integer"),
        "{}",
        errors(&text)
    );

    // Declared as a string, compared with an integer in the module: a type error, so a deny.
    let manifest = manifest_declaring("    record_count: string\n");
    let files = [
        ("manifest.yaml", manifest.as_str()),
        ("rhai/rules.rhai", RECORD_COUNT),
    ];
    let d = decide(
        &files,
        json!({ "context": { "attributes": { "record_count": "5000" } } }),
    );
    assert_eq!(d.decision, Effect::Deny);
    let e = errors(&d);
    assert!(e.contains("rhai/rules.rhai: line 3"), "{e}");
    assert!(
        e.contains("type error: `>` between string and integer"),
        "{e}"
    );
    // Absent, the comparison has no value to compare: an error too, not a silent false.
    let d = decide(&files, json!({}));
    assert!(errors(&d).contains("`>` between ()"), "{}", errors(&d));
}

#[test]
fn unlike_types_are_refused_by_every_operator_that_would_answer_silently() {
    let manifest = manifest_declaring("    s: string\n");
    for (expr, refused) in [
        (r#""5000" > 1000"#, true),
        (r#""5000" == 5000"#, true),
        (r#""5000" != 5000"#, true),
        (r#"tx.context.attributes.k < 3"#, true),
        (r#"tx.context.attributes.k + 1"#, true),
        (r#""x" + tx.context.attributes.k"#, true),
        (r#"{ let m = "x"; m += tx.context.attributes.k; m }"#, true),
        (r#"{ let m = "x"; m += [1]; m }"#, true),
        (r#"{ let m = "x"; m += 1; m += "y"; m }"#, false),
        (r#"{ let m = 1; m += tx.context.attributes.k; m }"#, true),
        (r#"tx.context.attributes.s != 3"#, true),
        (r#"[1] == "a""#, true),
        (r#"true == 1"#, true),
        // The absence test, numbers of either kind, strings with characters, messages.
        (r#"tx.context.attributes.k == ()"#, false),
        (r#"tx.context.attributes.s == "x""#, false),
        (r#"tx.context.attributes.s + "x""#, false),
        (r#"1 == 1.0"#, false),
        (r#""a" == 'a'"#, false),
        (r#""age " + 3"#, false),
        (r#"() == ()"#, false),
    ] {
        let script = format!(
            "fn evaluate(tx, env) {{ let v = {expr}; [obligation(\"k\", \"c\", #{{ v: v }})] }}"
        );
        let files = [
            ("manifest.yaml", manifest.as_str()),
            ("rhai/rules.rhai", script.as_str()),
        ];
        let d = decide(&files, json!({ "context": { "attributes": { "s": "x" } } }));
        assert_eq!(
            errors(&d).contains("type error"),
            refused,
            "{expr}: {}",
            errors(&d)
        );
    }
}

#[test]
fn a_misspelt_function_field_or_attribute_refuses_the_bundle_with_a_suggestion() {
    let script = r#"
fn evaluate(tx, env) {
    let out = [];
    if parm("US", "review_hours") == 24 { out.push(deny("a", "c", "m")); }
    if tx.actor.jurisdction == "US" { out.push(deny("b", "c", "m")); }
    if env.consent_withdrawn_typo == true { out.push(deny("c", "c", "m")); }
    let attrs = tx.context.attributes;
    if attrs.remuneraton == true { out.push(deny("d", "c", "m")); }
    if "legal_proces" in attrs { out.push(deny("e", "c", "m")); }
    out
}"#;
    let found = problems(&[("rhai/rules.rhai", script)]);
    let all = found.join("\n");
    for needle in [
        "rhai/rules.rhai: line 4, column 8: unknown function `parm` with 2 arguments (did you mean `param`?)",
        "line 5, column 10: `tx.actor` has no field `jurisdction` (did you mean `jurisdiction`?)",
        "`env` has no field `consent_withdrawn_typo` (did you mean `consent_withdrawn`?)",
        "line 8, column 13: reads `tx.context.attributes.remuneraton`, which manifest.yaml does not declare (add it with its type under `attributes.context`) (did you mean `remuneration`?)",
        "reads `tx.context.attributes.legal_proces`",
    ] {
        assert!(all.contains(needle), "missing `{needle}` in:\n{all}");
    }
    assert_eq!(found.len(), 5, "{all}");
}

#[test]
fn calls_methods_and_aliases_the_engine_knows_pass_the_checks() {
    let script = r#"
fn flag(attrs) { attrs.remuneration == true }
fn roles(actor) { actor.roles }
fn evaluate(tx, env) {
    let ctx = tx.context;
    let r = roles(tx.actor);
    let n = r.len() + tx.actor.roles.len;
    if flag(ctx.attributes) && ctx.recipient.country.to_upper() == "US" && n > 0 {
        return [deny("paid", "45 CFR 164.502(a)(5)(ii)", "sale of PHI")];
    }
    if env.patient_age != () && type_of(env.patient_age) == "i64" { return []; }
    []
}"#;
    compile(&[("rhai/rules.rhai", script)]).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_wrong_arity_names_the_arities_that_exist() {
    let found = problems(&[(
        "rhai/rules.rhai",
        r#"fn evaluate(tx, env) { [deny("r", "c")] }"#,
    )]);
    assert!(
        found[0].contains("unknown function `deny` with 2 arguments (`deny` takes 3 arguments)"),
        "{found:?}"
    );
}

#[test]
fn a_purpose_that_no_transaction_carries_refuses_the_manifest() {
    let manifest = MANIFEST.replace(
        "file: rhai/rules.rhai, regimes: [HIPAA],",
        "file: rhai/rules.rhai, regimes: [HIPAA], purposes: [TRAET],",
    );
    assert_ne!(manifest, MANIFEST);
    let e = compile(&[("manifest.yaml", manifest.as_str())])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        e,
        "manifest.yaml: field `modules[2].purposes[0]`: `TRAET` is not an HL7 v3 PurposeOfUse code, so the module would never run (did you mean `TREAT`?)"
    );
}

#[test]
fn runaway_modules_name_the_line_and_the_limit() {
    let d = decide(
        &[(
            "rhai/rules.rhai",
            "fn evaluate(tx, env) {\n    let n = 0;\n    loop { n += 1; }\n}",
        )],
        json!({}),
    );
    assert_eq!(
        errors(&d),
        "test/rules: rhai/rules.rhai: sandbox limit: more than 100000 operations (a loop that does not end?); the module's loops: line 3 (loop or while)"
    );
    let d = decide(
        &[(
            "rhai/rules.rhai",
            "fn down(n) { down(n + 1) }\nfn evaluate(tx, env) { down(0); [] }",
        )],
        json!({}),
    );
    assert_eq!(
        errors(&d),
        "test/rules: rhai/rules.rhai: sandbox limit: function calls nested deeper than 32 levels (a recursion that does not end?); the module's recursive functions: `down` (line 1)"
    );
}

#[test]
fn cedar_diagnostics_name_file_policy_line_column_and_help() {
    let with = |policy: &str| {
        let text = format!("{}\n{policy}", crate::testing::GDPR_CEDAR);
        compile(&[("cedar/gdpr.cedar", text.as_str())])
    };
    // A type error.
    let e = with(
        "@id(\"typed\") @citation(\"c\") @message(\"m\")\nforbid (principal, action, resource)\nwhen { context.break_glass == \"yes\" };",
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        e.contains("cedar/gdpr.cedar: policy `typed`: line 10, column 8: the types Bool and String are not compatible (help: "),
        "{e}"
    );
    // An entity written without the schema's namespace: Cedar's help names the qualified one.
    let e = with(
        "@id(\"bare\") @citation(\"c\") @message(\"m\")\npermit (principal, action == Action::\"read\", resource);",
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        e.contains("cedar/gdpr.cedar: policy `bare`: line 9, column ")
            && e.contains("Accord::Action::\"read\""),
        "{e}"
    );
    // An impossible forbid is a warning of the review.
    let bundle = with(
        "@id(\"never\") @citation(\"c\") @message(\"m\")\nforbid (principal, action, resource)\nwhen { context.regimes.contains(\"GDPR\") && false };",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let review = bundle.review();
    assert!(
        review.warnings.iter().any(|w| w
            .starts_with("cedar/gdpr.cedar: policy `never`: line 8, column 1: ")
            && w.contains("policy is impossible")),
        "{review:?}"
    );
}

#[test]
fn test_expectations_naming_no_rule_are_errors_of_the_review() {
    let cases = crate::testing::CASES.replace(
        "expect: { decision: deny, citations: [\"45 CFR 164.508(a)(3)\"] }",
        "expect: { decision: deny, citations: [\"45 CFR 164.508(a)(3)\"], rules: [marketting], absent_rules: [test/rules#marketing, no-permit] }",
    );
    assert_ne!(cases, crate::testing::CASES);
    let bundle = compile(&[("tests/cases.yaml", cases.as_str())]).unwrap_or_else(|e| panic!("{e}"));
    let review = bundle.review();
    assert_eq!(
        review.errors,
        ["tests/cases.yaml: cases[1].expect.rules[0]: no policy or module has a rule `marketting` (did you mean `marketing`?)"],
        "{review:?}"
    );
}

#[test]
fn files_the_manifest_does_not_name_are_reported() {
    let dir = std::env::temp_dir().join(format!("accord-unnamed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files_with(&[]).iter() {
        let path = dir.join("policies").join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, text).expect("write");
    }
    let manifest = MANIFEST.replace(
        "schema: schema.cedarschema",
        "schema: schema.cedarschema\njurisdictions: jurisdictions",
    );
    std::fs::write(dir.join("policies/manifest.yaml"), manifest).expect("write");
    std::fs::write(dir.join("policies/cedar/forgotten.cedar"), "").expect("write");
    std::fs::write(dir.join("policies/README.md"), "").expect("write");
    let found = crate::bundle::unnamed_files(&dir.join("policies")).expect("reads");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        found,
        ["cedar/forgotten.cedar: not named in manifest.yaml: Cedar policies the engine never loads"]
    );
}

/// `hipaa/involvement-in-care` with more entries in `resource.fields` than Rhai's array limit:
/// Rhai fails the module (a deny listing the error), and the native evaluator, which does not model
/// the size checks, must not answer instead.
#[test]
fn an_oversized_request_is_decided_as_rhai_decides_it() {
    let bundle = default_bundle();
    let fields: Vec<String> = (0..65_537).map(|i| format!("f{i}")).collect();
    let request = access(json!({
        "action": "share",
        "resource": { "jurisdiction": "US", "fields": fields },
        "context": { "purpose_of_use": "FAMRQT",
                     "recipient": { "id": "person/sister", "type": "RelatedPerson" },
                     "attributes": { "family_involvement_basis": "agreed" } }
    }));
    let registry = InMemoryConsentRegistry::new();
    let analysed = rules_decision(&bundle, &request, &registry, true).expect("derives");
    let reference = rules_decision(&bundle, &request, &registry, false).expect("derives");
    assert_eq!(analysed, reference);
    let derived = bundle.derive(&request, &registry).expect("derives");
    assert_eq!(
        bundle.rules().disagreement(&request, &derived.facts()),
        None
    );
    assert!(!super::native::within_limits(&request, &derived.facts()));
}

#[test]
fn a_test_case_in_an_unknown_jurisdiction_is_a_warning_of_the_review() {
    let cases = crate::testing::CASES.replace(
        "access: { action: read, context: { purpose_of_use: HMARKT } }",
        "access: { action: read, resource: { jurisdiction: US-CX }, context: { purpose_of_use: HMARKT } }",
    );
    assert_ne!(cases, crate::testing::CASES);
    let bundle = compile(&[("tests/cases.yaml", cases.as_str())]).unwrap_or_else(|e| panic!("{e}"));
    let review = bundle.review();
    assert_eq!(
        review.warnings,
        ["tests/cases.yaml: cases[1].access.resource.jurisdiction: `US-CX` is no jurisdiction of this bundle, so the case is decided as a deny for an unknown jurisdiction (did you mean `US-CA`?)"],
        "{review:?}"
    );
}
