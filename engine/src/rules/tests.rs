use crate::bundle::Bundle;
use crate::consent::InMemoryConsentRegistry;
use crate::decision::{Decision, Effect};
use crate::testing::{access, files_with};
use serde_json::json;

/// Compiles the fixture with `script` as its Rhai module and decides a treatment read (which the
/// Cedar policies permit), so any deny comes from the module.
fn decide_with(script: &str) -> Decision {
    let bundle = Bundle::compile(files_with(&[("rhai/rules.rhai", script)]))
        .unwrap_or_else(|e| panic!("module must compile: {e}"));
    bundle.decide(&access(json!({})), &InMemoryConsentRegistry::new(), 0)
}

fn compile_err(script: &str) -> String {
    match Bundle::compile(files_with(&[("rhai/rules.rhai", script)])) {
        Ok(_) => panic!("module must be refused:\n{script}"),
        Err(e) => e.to_string(),
    }
}

fn assert_fails_closed(decision: &Decision, needle: &str) {
    assert_eq!(decision.decision, Effect::Deny, "{decision:?}");
    assert_eq!(decision.errors.len(), 1, "{decision:?}");
    assert_eq!(decision.errors[0].module, "test/rules");
    assert!(
        decision.errors[0].message.contains(needle),
        "`{needle}` not in {:?}",
        decision.errors[0].message
    );
    assert!(decision.obligations.is_empty());
}

#[test]
fn a_module_that_loops_forever_exhausts_its_budget_and_denies() {
    let d = decide_with("fn evaluate(tx, env) { loop { } }");
    assert_fails_closed(&d, "sandbox limit: more than 100000 operations");
}

#[test]
fn deep_recursion_hits_the_call_depth_limit_and_denies() {
    let d = decide_with("fn down(n) { down(n + 1) } fn evaluate(tx, env) { down(0); [] }");
    assert_fails_closed(
        &d,
        "sandbox limit: function calls nested deeper than 32 levels",
    );
}

#[test]
fn a_thrown_error_denies() {
    let d = decide_with(r#"fn evaluate(tx, env) { throw "rule bug"; }"#);
    assert_fails_closed(&d, "rule bug");
}

#[test]
fn runaway_strings_and_arrays_are_stopped() {
    let d = decide_with(r#"fn evaluate(tx, env) { let s = "x"; loop { s += s; } }"#);
    assert_fails_closed(&d, "sandbox limit: length of string over 65536 bytes");
    let d = decide_with("fn evaluate(tx, env) { let a = []; loop { a.push(1); } }");
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(d.errors.len(), 1, "{d:?}");
}

#[test]
fn the_wrong_shape_denies_with_the_reason() {
    let d = decide_with(r#"fn evaluate(tx, env) { "allow" }"#);
    assert_fails_closed(&d, "must return an array of verdicts, not string");
    let d =
        decide_with(r#"fn evaluate(tx, env) { [#{ effect: "permit", rule: "r", message: "m" }] }"#);
    assert_fails_closed(&d, "verdict 0: missing `citation`");
    let d = decide_with(
        r#"fn evaluate(tx, env) { [#{ effect: "allow", rule: "r", citation: "c", message: "m" }] }"#,
    );
    assert_fails_closed(
        &d,
        "`effect` must be `deny`, `permit` or `obligation`, not `allow`",
    );
    let d = decide_with(r#"fn evaluate(tx, env) { [permit("r", "c", "m"), 42] }"#);
    assert_fails_closed(&d, "verdict 1: a verdict must be a map, not i64");
    let d = decide_with(
        r#"fn evaluate(tx, env) { [obligation("audit", "c", #{ within_hours: -1 })] }"#,
    );
    assert_fails_closed(&d, "`within_hours` must be a non-negative integer");
    let d = decide_with(r#"fn evaluate(tx, env) { [obligation("audit", "c", #{ target: #{} })] }"#);
    assert_fails_closed(&d, "`target`: must be a string");
}

#[test]
fn modules_cannot_modify_the_transaction_they_are_given() {
    let d = decide_with(r#"fn evaluate(tx, env) { tx.action = "delete"; [] }"#);
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(d.errors.len(), 1, "{d:?}");
}

#[test]
fn eval_and_import_are_unavailable() {
    let text = compile_err(r#"fn evaluate(tx, env) { eval("1") }"#);
    assert!(text.starts_with("rhai/rules.rhai:"), "{text}");
    let d = decide_with(r#"import "secrets" as s; fn evaluate(tx, env) { [] }"#);
    // `import` at module level runs only under eval_ast; inside a function it must fail.
    assert_eq!(
        d.decision,
        Effect::Allow,
        "a top-level import is never executed: {d:?}"
    );
    let d = decide_with(r#"fn evaluate(tx, env) { import "secrets" as s; [] }"#);
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(d.errors.len(), 1, "{d:?}");
}

#[test]
fn a_module_without_evaluate_is_refused() {
    insta::assert_snapshot!(compile_err("fn check(tx) { [] }"), @"rhai/rules.rhai: module must define `fn evaluate(tx, env)`");
    let text = compile_err("fn evaluate(tx, env) { [ }");
    assert!(text.starts_with("rhai/rules.rhai: "), "{text}");
    assert!(text.contains("line 1"), "{text}");
}

#[test]
fn the_api_reads_jurisdiction_parameters_and_ledger_time() {
    let d = decide_with(
        r#"
        fn evaluate(tx, env) {
            let out = [];
            if param("DE", "digital_consent_age") != 16 { throw "alias lookup"; }
            if param("EU-DE", "adequacy") != ["CH", "JP"] { throw "inherited list"; }
            if param("EU-DE", "nope") != () { throw "absent is unit"; }
            if !has_param("US-CA", "review_hours") { throw "inherited"; }
            if parent("US-CA") != "US" || parent("US") != "" { throw "parent"; }
            if !in_regime("US-CA", "HIPAA") || in_regime("EU-DE", "HIPAA") { throw "regimes"; }
            if hours_after(env.now, 72) != "2026-03-04T10:00:00Z" { throw "hours_after"; }
            if env.patient_age != 14 { throw `age ${env.patient_age}`; }
            if env.jurisdictions != ["US", "US-CA"] || env.regimes != ["HIPAA"] { throw "env"; }
            if env.grantee != "org/st-marys" { throw "grantee"; }
            if tx.resource.fields != [] || tx.context.recipient.id != "" { throw "defaults"; }
            out.push(obligation("audit", "45 CFR 164.312(b)", #{ within_hours: 6, target: tx.resource.id }));
            out
        }"#,
    );
    assert_eq!(d.decision, Effect::Allow, "{d:?}");
    assert_eq!(d.obligations.len(), 1);
    let o = &d.obligations[0];
    assert_eq!(
        o.details.get("deadline"),
        Some(&json!("2026-03-01T16:00:00Z"))
    );
    assert_eq!(o.details.get("target"), Some(&json!("Observation/obs-88")));
}

#[test]
fn regime_param_at_reads_one_entry_of_a_map_parameter() {
    // The fixture's US defines `review_hours: 24` under HIPAA; a map parameter is added for this test.
    let bundle = Bundle::compile(files_with(&[
        (
            "jurisdictions/US.yaml",
            "code: US\nname: United States\nregimes: [HIPAA]\nparameters: { review_hours: 24, table: { HPAYMT: { Claim: [id, total] } } }\n",
        ),
        (
            "rhai/rules.rhai",
            r#"
            fn evaluate(tx, env) {
                if regime_param_at("HIPAA", "table", ["HPAYMT", "Claim"]) != ["id", "total"] { throw "two keys"; }
                if type_of(regime_param_at("HIPAA", "table", ["HPAYMT"])) != "map" { throw "one key"; }
                if regime_param_at("HIPAA", "table", ["TREAT"]) != () { throw "absent key is unit"; }
                if regime_param_at("HIPAA", "review_hours", []) != 24 { throw "empty path"; }
                []
            }"#,
        ),
    ]))
    .expect("compiles");
    let d = bundle.decide(&access(json!({})), &InMemoryConsentRegistry::new(), 0);
    assert!(d.errors.is_empty(), "{d:?}");
    // A missing parameter, or a key looked up in a value that is not a map, fails closed.
    let missing =
        decide_with(r#"fn evaluate(tx, env) { regime_param_at("HIPAA", "nope", ["x"]); [] }"#);
    assert_fails_closed(&missing, "jurisdiction parameter `nope` is missing");
    let not_map = decide_with(
        r#"fn evaluate(tx, env) { regime_param_at("HIPAA", "review_hours", ["x"]); [] }"#,
    );
    assert_fails_closed(
        &not_map,
        "`review_hours` is not a map where `x` is looked up",
    );
}

#[test]
fn request_dependent_functions_are_not_folded_at_compile_time() {
    // Constant arguments would let the optimizer call `regime_param` while compiling, with no
    // request and so no jurisdictions: `()` baked in. It must run per request instead. `param` is
    // not folded either (its values are shared, which a folded constant may not hold); calls that
    // depend on their arguments alone (`obligation`) may be folded and mean the same.
    let d = decide_with(
        r#"fn evaluate(tx, env) {
            if regime_param("HIPAA", "review_hours") != 24 { throw "regime_param was folded"; }
            if param("US", "review_hours") != 24 { throw "param changed"; }
            [obligation("audit", "45 CFR 164.312(b)", #{ within_hours: param("US", "review_hours") })]
        }"#,
    );
    assert!(d.errors.is_empty(), "{d:?}");
    assert_eq!(d.obligations.len(), 1, "{d:?}");
    assert_eq!(
        d.obligations[0].details.get("within_hours"),
        Some(&json!(24))
    );
}

#[test]
fn a_rhai_permit_alone_allows_and_is_a_reason() {
    // Cedar denies (no purpose), the module permits: some permit and no deny → allow.
    let bundle = Bundle::compile(files_with(&[(
        "rhai/rules.rhai",
        r#"fn evaluate(tx, env) { [permit("own-record", "45 CFR 164.524(a)(1)", "individual access")] }"#,
    )]))
    .expect("compiles");
    let d = bundle.decide(
        &access(json!({ "context": { "purpose_of_use": "PATRQT" } })),
        &InMemoryConsentRegistry::new(),
        0,
    );
    assert_eq!(d.decision, Effect::Allow);
    assert_eq!(d.reasons[0].rule, "own-record");
    assert_eq!(d.reasons[0].module, "test/rules");
}

#[test]
fn modules_outside_the_applicable_regimes_do_not_run() {
    // The module applies to HIPAA; an EU-only request never runs it, so its throw cannot deny.
    let bundle = Bundle::compile(files_with(&[(
        "rhai/rules.rhai",
        r#"fn evaluate(tx, env) { throw "must not run"; }"#,
    )]))
    .expect("compiles");
    let request = access(json!({
        "actor": { "jurisdiction": "EU-DE" },
        "resource": { "jurisdiction": "EU-DE" }
    }));
    let d = bundle.decide(&request, &InMemoryConsentRegistry::new(), 0);
    assert_eq!(d.decision, Effect::Allow, "{d:?}");
}

#[test]
fn obligations_cannot_forge_engine_fields() {
    let d = decide_with(
        r#"fn evaluate(tx, env) { [obligation("audit", "c", #{ "module": "other" })] }"#,
    );
    assert_fails_closed(&d, "`module` is set by the engine, not by a module");
    let d = decide_with(
        r#"fn evaluate(tx, env) { [obligation("audit", "c", #{ deadline: "never" })] }"#,
    );
    assert_fails_closed(&d, "`deadline` is set by the engine");
}

#[test]
fn a_panic_inside_the_interpreter_denies_instead_of_unwinding() {
    // Rhai's data-size check panics on a shared value inside an array (here `tx.context`, shared
    // so that reading it costs no deep copy); the engine must turn that into an error.
    let d = decide_with("fn evaluate(tx, env) { let a = []; a.push(tx.context); a.push(1); [] }");
    assert_fails_closed(&d, "panicked");
}

/// The fixture with its Rhai module declared `obligations_only`.
fn obligations_only_bundle(script: &str) -> Bundle {
    let manifest = crate::testing::MANIFEST.replace(
        "file: rhai/rules.rhai,",
        "file: rhai/rules.rhai, obligations_only: true,",
    );
    Bundle::compile(files_with(&[
        ("manifest.yaml", &manifest),
        ("rhai/rules.rhai", script),
    ]))
    .unwrap_or_else(|e| panic!("bundle must compile: {e}"))
}

#[test]
fn an_obligations_only_module_attaches_its_obligations_to_an_allow() {
    let bundle = obligations_only_bundle(
        r#"fn evaluate(tx, env) { [obligation("audit", "45 CFR 164.312(b)", #{})] }"#,
    );
    let d = bundle.decide(&access(json!({})), &InMemoryConsentRegistry::new(), 0);
    assert_eq!(d.decision, Effect::Allow, "{d:?}");
    assert_eq!(d.obligations.len(), 1, "{d:?}");
    assert_eq!(d.obligations[0].module, "test/rules");
}

#[test]
fn an_obligations_only_module_runs_only_when_the_decision_is_otherwise_allow() {
    // It would fail if it ran; on a deny it must not run, since no obligation can reach a deny.
    let bundle = obligations_only_bundle(r#"fn evaluate(tx, env) { throw "ran"; }"#);
    let registry = InMemoryConsentRegistry::new();
    // No HIPAA permission covers marketing by a practitioner: a deny before the module.
    let denied = bundle.decide(
        &access(json!({ "context": { "purpose_of_use": "HMARKT" } })),
        &registry,
        0,
    );
    assert_eq!(denied.decision, Effect::Deny, "{denied:?}");
    assert!(denied.errors.is_empty(), "{denied:?}");
    // On what would be an allow it runs, and its error fails closed.
    let allowed = bundle.decide(&access(json!({})), &registry, 0);
    assert_fails_closed(&allowed, "ran");
}

#[test]
fn a_verdict_from_an_obligations_only_module_is_an_error_and_denies() {
    for verdict in [
        r#"deny("r", "45 CFR 164.502(b)", "no")"#,
        r#"permit("r", "45 CFR 164.506(c)(1)", "yes")"#,
        // Built at run time, not folded.
        r#"deny(tx.id, "45 CFR 164.502(b)", "no")"#,
        r#"obligation("audit", "c"), permit(tx.action, "45 CFR 164.506(c)(1)", "yes")"#,
    ] {
        let bundle = obligations_only_bundle(&format!("fn evaluate(tx, env) {{ [{verdict}] }}"));
        let d = bundle.decide(&access(json!({})), &InMemoryConsentRegistry::new(), 0);
        assert_fails_closed(&d, "declared `obligations_only`");
    }
}

#[test]
fn contains_all_compares_type_and_value() {
    // Strings of the request (shared, read-only) against literals; unlike types never match;
    // other values compare by value. Any mismatch throws, so an error names which check failed.
    let d = decide_with(
        r#"fn evaluate(tx, env) {
            if !env.regimes.contains_all(["HIPAA"]) { throw "request strings"; }
            if env.regimes.contains_all(["HIPAA", "GDPR-not"]) { throw "a missing string"; }
            if ![1, 2, 3].contains_all([3, 1]) { throw "integers"; }
            if [1, 2].contains_all(["1"]) { throw "an integer is not its text"; }
            if !["a"].contains_all([]) { throw "the empty list"; }
            if [true].contains_all(["true"]) { throw "a boolean is not its text"; }
            []
        }"#,
    );
    assert!(d.errors.is_empty(), "{d:?}");
}

/// `years_since` counts whole years as ages are counted: the anniversary completes a year.
#[test]
fn years_since_counts_whole_years_to_the_ledger_date() {
    let at = |t: &str| {
        crate::transaction::Timestamp::parse(t)
            .expect("valid timestamp")
            .unix()
    };
    let years = |date: &str, now: &str| super::api::years_since(date, at(now)).as_int().ok();
    assert_eq!(years("2016-03-01", "2026-02-28T23:59:59Z"), Some(9));
    assert_eq!(years("2016-03-01", "2026-03-01T00:00:00Z"), Some(10));
    assert_eq!(
        years("2016-03-01T22:00:00-05:00", "2026-03-01T12:00:00Z"),
        Some(9),
        "a timestamp counts by its UTC date (2 March)"
    );
    assert!(super::api::years_since("1 March 2016", at("2026-03-01T00:00:00Z")).is_unit());
}

/// The fixture with its Rhai module declared `obligations_only` and `on_deny`.
fn on_deny_bundle(script: &str) -> Bundle {
    let manifest = crate::testing::MANIFEST.replace(
        "file: rhai/rules.rhai,",
        "file: rhai/rules.rhai, obligations_only: true, on_deny: true,",
    );
    Bundle::compile(files_with(&[
        ("manifest.yaml", &manifest),
        ("rhai/rules.rhai", script),
    ]))
    .unwrap_or_else(|e| panic!("bundle must compile: {e}"))
}

fn kinds(d: &Decision) -> Vec<&str> {
    d.obligations.iter().map(|o| o.kind.as_str()).collect()
}

#[test]
fn an_on_deny_module_attaches_the_duties_that_come_with_each_outcome() {
    let bundle = on_deny_bundle(
        r#"fn evaluate(tx, env) { [
            obligation("audit", "45 CFR 164.312(b)", #{ when: "always" }),
            obligation("report", "45 CFR 164.514(e)(4)(iii)", #{ when: "deny" }),
            obligation("review", "45 CFR 164.312(a)(2)(ii)", #{})
        ] }"#,
    );
    let registry = InMemoryConsentRegistry::new();
    let denied = bundle.decide(
        &access(json!({ "context": { "purpose_of_use": "HMARKT" } })),
        &registry,
        0,
    );
    assert_eq!(denied.decision, Effect::Deny, "{denied:?}");
    assert_eq!(kinds(&denied), ["audit", "report"]);
    assert!(
        denied
            .obligations
            .iter()
            .all(|o| !o.details.contains_key("when")),
        "`when` is not copied into the decision: {denied:?}"
    );
    let allowed = bundle.decide(&access(json!({})), &registry, 0);
    assert_eq!(allowed.decision, Effect::Allow, "{allowed:?}");
    assert_eq!(kinds(&allowed), ["audit", "review"]);
}

#[test]
fn a_verdict_modules_deny_duty_does_not_come_with_an_allow() {
    let d = decide_with(
        r#"fn evaluate(tx, env) { [obligation("report", "45 CFR 164.514(e)(4)(iii)", #{ when: "deny" })] }"#,
    );
    assert_eq!(d.decision, Effect::Allow, "{d:?}");
    assert!(d.obligations.is_empty(), "{d:?}");
}

#[test]
fn an_unknown_when_fails_closed() {
    let d = decide_with(
        r#"fn evaluate(tx, env) { [obligation("audit", "45 CFR 164.312(b)", #{ when: "sometimes" })] }"#,
    );
    assert_fails_closed(&d, "`when` must be `allow`, `deny` or `always`");
}

#[test]
fn on_deny_is_refused_on_a_verdict_module() {
    let manifest = crate::testing::MANIFEST.replace(
        "file: rhai/rules.rhai,",
        "file: rhai/rules.rhai, on_deny: true,",
    );
    let err = Bundle::compile(files_with(&[("manifest.yaml", &manifest)]))
        .expect_err("on_deny without obligations_only")
        .to_string();
    assert!(err.contains("modules[2].on_deny"), "{err}");
}

#[test]
fn a_request_with_a_mistyped_attribute_still_carries_the_duties_of_a_deny() {
    let bundle = on_deny_bundle(
        r#"fn evaluate(tx, env) { [obligation("audit", "45 CFR 164.312(b)", #{ when: "always" })] }"#,
    );
    let d = bundle.decide(
        &access(json!({ "context": { "attributes": { "remuneration": "yes" } } })),
        &InMemoryConsentRegistry::new(),
        0,
    );
    assert_eq!(d.decision, Effect::Deny, "{d:?}");
    assert_eq!(d.errors.len(), 1, "{d:?}");
    assert!(d.reasons.is_empty() && d.jurisdictions.is_empty(), "{d:?}");
    assert_eq!(kinds(&d), ["audit"]);
}

#[test]
fn when_attributes_runs_a_module_only_when_one_of_them_is_present() {
    let manifest = crate::testing::MANIFEST.replace(
        "file: rhai/rules.rhai,",
        "file: rhai/rules.rhai, when_attributes: [remuneration, legal_process],",
    );
    let bundle = Bundle::compile(files_with(&[
        ("manifest.yaml", &manifest),
        (
            "rhai/rules.rhai",
            r#"fn evaluate(tx, env) { throw "ran"; }"#,
        ),
    ]))
    .unwrap_or_else(|e| panic!("bundle must compile: {e}"));
    let registry = InMemoryConsentRegistry::new();
    let without = bundle.decide(&access(json!({})), &registry, 0);
    assert!(without.errors.is_empty(), "not run: {without:?}");
    // Present, whatever the value: the module runs (and its error fails closed).
    let with = bundle.decide(
        &access(json!({ "context": { "attributes": { "remuneration": false } } })),
        &registry,
        0,
    );
    assert_fails_closed(&with, "ran");
}

#[test]
fn when_attributes_must_name_attributes_of_a_rhai_module() {
    let compile = |manifest: String| {
        Bundle::compile(files_with(&[("manifest.yaml", &manifest)]))
            .expect_err("refused")
            .to_string()
    };
    let empty = compile(crate::testing::MANIFEST.replace(
        "file: rhai/rules.rhai,",
        "file: rhai/rules.rhai, when_attributes: [],",
    ));
    assert!(empty.contains("modules[2].when_attributes"), "{empty}");
    let cedar = compile(crate::testing::MANIFEST.replace(
        "file: cedar/hipaa.cedar,",
        "file: cedar/hipaa.cedar, when_attributes: [remuneration],",
    ));
    assert!(cedar.contains("modules[0].when_attributes"), "{cedar}");
}
