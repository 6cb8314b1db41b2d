//! A program's answer is the interpreter's: each script here runs both ways on the same request.

use crate::bundle::Bundle;
use crate::consent::InMemoryConsentRegistry;
use crate::rules::dual::plain;
use crate::rules::fields::FieldSet;
use crate::rules::{api::CallTag, ROOTS};
use crate::testing::{access, benchmark_mix, default_bundle, files_with, BenchmarkMix};
use crate::transaction::AccessRequest;
use rhai::Dynamic;
use serde_json::{json, Value};
use std::sync::Arc;

/// The native answer (if any) and Rhai's result for `request` in a bundle whose rule module is
/// `script`.
fn both_for(script: &str, request: &AccessRequest) -> (Option<String>, Result<String, String>) {
    both_in(&[], script, request)
}

/// [`both_for`] in the fixture bundle with other files replaced.
fn both_in(
    files: &[(&str, &str)],
    script: &str,
    request: &AccessRequest,
) -> (Option<String>, Result<String, String>) {
    let mut files = files.to_vec();
    files.push(("rhai/rules.rhai", script));
    let bundle =
        Bundle::compile(files_with(&files)).unwrap_or_else(|e| panic!("module must compile: {e}"));
    let registry = InMemoryConsentRegistry::new();
    let derived = bundle.derive(request, &registry).expect("derives");
    let facts = derived.facts();
    let rules = bundle.rules();
    let module = &rules.modules()[0];
    let native = module
        .program
        .as_ref()
        .and_then(|p| p.run(request, &facts, &rules.params))
        .map(|a| plain(&a.into_dynamic()));
    let [tx, env] = FieldSet::ALL.build(&ROOTS, request, &facts);
    let tag = Dynamic::from(CallTag {
        jurisdictions: Arc::new(facts.applicable.jurisdictions.clone()),
    });
    let rhai = rules.call(module, &tx, &env, &tag).map(|d| plain(&d));
    (native, rhai)
}

fn both(script: &str, patch: Value) -> (Option<String>, Result<String, String>) {
    both_for(script, &access(patch))
}

/// `script` is answered natively, with Rhai's value.
#[track_caller]
fn native_as_rhai(script: &str, patch: Value) -> String {
    let (native, rhai) = both(script, patch);
    let rhai = rhai.unwrap_or_else(|e| panic!("Rhai fails: {e}"));
    assert_eq!(native.as_deref(), Some(rhai.as_str()), "{script}");
    rhai
}

/// `script` is left to Rhai for this request.
#[track_caller]
fn left_to_rhai(script: &str, patch: Value) {
    let (native, _) = both(script, patch);
    assert_eq!(native, None, "{script}");
}

#[test]
fn blocks_have_the_value_of_their_last_statement() {
    let with = |body: &str| format!("fn evaluate(tx, env) {{ {body} }}");
    for body in [
        r#"let out = []; out.push(deny("r", "c", "m")); out"#,
        r#"let out = [permit("r", "c", "m")]; out;"#,
        r#"let out = [];"#,
        r#"if tx.action == "read" { [permit("r", "c", "m")] } else { [] }"#,
        r#"if tx.action == "write" { [permit("r", "c", "m")] }"#,
        r#"{ let a = [deny("a", "c", "m")]; a }"#,
        r#"return;"#,
        r#"for x in tx.actor.roles { x; }"#,
        // A block ending with a variable of an enclosing block leaves that variable intact.
        r#"let out = [1]; let copy = { out }; out.push(2); [obligation("k", "c", #{ copy: copy, out: out })]"#,
        r#"let out = [1]; let n = if true { out } else { [] }; out.push(2); [obligation("k", "c", #{ n: n, out: out })]"#,
    ] {
        native_as_rhai(&with(body), json!({}));
    }
    // A function ending with its parameter gives it without changing the caller's variable.
    let rhai = native_as_rhai(
        r#"fn same(list) { list } fn evaluate(tx, env) { let out = [1]; let again = same(out); out.push(2); [obligation("k", "c", #{ again: again, out: out })] }"#,
        json!({}),
    );
    assert!(rhai.contains("again: [i64:1], "), "{rhai}");
}

#[test]
fn locals_loops_strings_and_functions_are_modelled() {
    // As hipaa-minimum-necessary joins the excess fields.
    let script = r#"
        fn join(items) {
            let out = "";
            for x in items {
                if out != "" { out += ", "; }
                out += x;
            }
            out
        }
        fn target(resource) {
            if resource.location != "" { resource.location } else { resource.id }
        }
        fn evaluate(tx, env) {
            let excess = [];
            for f in tx.resource.fields {
                if !["name", "birthDate"].contains(f) && !excess.contains(f) { excess.push(f); }
            }
            let kind = if excess.is_empty() { "none" } else { "some" };
            let n = 0;
            n = n + 2 - 1;
            let shred = #{ a: 1 };
            shred.b = env.now;
            let parts = (tx.resource.id + "-x").split("-");
            [deny(kind, "c", "fields [" + join(excess) + "] of " + target(tx.resource)),
             obligation("k", "c", #{ n: n, list: excess, age: env.patient_age, first: parts[0],
                 said: "n is " + n, twice: n + " times", j: env.jurisdictions[0] }),
             obligation("shred", "c", shred)]
        }"#;
    let value = native_as_rhai(
        script,
        json!({ "resource": { "fields": ["name", "address", "ssn", "address"] } }),
    );
    assert!(
        value.contains("fields [address, ssn] of Observation/obs-88"),
        "{value}"
    );
    native_as_rhai(script, json!({ "resource": { "fields": [] } }));
}

#[test]
fn comparisons_and_the_rule_api_are_modelled() {
    let script = r#"
        fn evaluate(tx, env) {
            let m = #{ a: 1, b: "x" };
            let attrs = tx.context.attributes;
            let key = "b";
            [obligation("k", "c", #{
                minor: env.patient_age < 18,
                adult: env.patient_age >= 18,
                in_map: "a" in m,
                not_in: "z" in m,
                by_key: m[key],
                missing: m.zzz,
                attr: attrs["flag"] == true,
                kind: type_of(attrs["basis"]) == "string",
                hours: regime_param("HIPAA", "breach_notification_hours"),
                none: regime_param("HIPAA", "no_such_parameter"),
                us: param("US", "breach_notification_hours"),
                has: has_param("US", "breach_notification_hours"),
                regime: in_regime("US-CA", "HIPAA"),
                parent: parent("US-CA"),
                due: hours_after(env.now, 24),
                mine: tx.actor.roles.contains("physician"),
                all: env.consent_categories.contains_all(tx.resource.data_categories),
            }), obligation("bare", "c")]
        }"#;
    native_as_rhai(script, json!({}));
    // Without a birth date the age is `()`, which cannot be ordered: Rhai raises the type error.
    let mut unborn = crate::testing::access_json();
    if let Some(patient) = unborn["resource"]["patient"].as_object_mut() {
        patient.remove("birth_date");
    }
    let unborn = AccessRequest::from_json(&unborn.to_string()).expect("parses");
    let (native, rhai) = both_for(script, &unborn);
    assert_eq!(native, None);
    assert!(rhai.is_err_and(|e| e.contains("type error: `<` between ()")));
    native_as_rhai(
        script,
        json!({ "context": { "attributes": { "flag": true, "basis": "x" } },
                "resource": { "patient": { "birth_date": "1980-01-01" } } }),
    );
}

#[test]
fn verdicts_read_as_maps_are_the_maps_rhai_holds() {
    // Verdicts built at run time (an argument from the request) and folded at compile time (all
    // arguments constant), read, tested and changed as maps, nested, and mixed with other values.
    let with = |body: &str| {
        format!(
            r#"fn evaluate(tx, env) {{
                let d = deny(tx.id, "c", "m");
                let p = permit("r", "c", "m");
                let o = obligation(tx.action, "c", #{{ n: 1, kind: "theirs", effect: "x" }});
                let f = obligation("k", "c", #{{ message: "m", within_hours: 2 }});
                let b = obligation("bare", tx.id);
                {body}
            }}"#
        )
    };
    for body in [
        r#"[d, p, o, f, b]"#,
        r#"[d.rule, d["effect"], p.message, o.kind, o.effect, o.n, f.within_hours, b.zzz]"#,
        r#"["rule" in d, "kind" in d, "kind" in o, "n" in o, "zzz" in f, "message" in f]"#,
        r#"[type_of(d), type_of(f), d == (), f != ()]"#,
        r#"d.extra = 1; f.message = "changed"; o.kind = "k2"; [d, f, o]"#,
        r#"[obligation("nested", "c", d), obligation("again", "c", f), obligation("in", "c", #{ v: o })]"#,
        r#"[d, 1, f]"#,
        r#"let out = [d]; out.push(f); out.push([p]); out"#,
        r#"d"#,
        r#"[#{ effect: "deny", rule: "r", citation: "c", message: "m" }, #{ effect: "deny", rule: "r", citation: "c", message: "m", more: 1 }]"#,
        r#"[#{ effect: "obligation", kind: "k", citation: "c", rule: "named", when: "always" }]"#,
    ] {
        native_as_rhai(&with(body), json!({}));
    }
}

#[test]
fn what_rhai_treats_apart_is_left_to_it() {
    let with = |body: &str| format!("fn evaluate(tx, env) {{ {body} }}");
    for body in [
        // A shared list inside a container (Rhai's size check may panic on it).
        r#"[#{ fields: tx.resource.fields }]"#,
        r#"let out = []; out.push(tx.actor.roles); out"#,
        // `+` of a string and a number, an index by number, a range, a counter.
        r#"[deny("r", "c", tx.id + 1.5)]"#,
        r#"[deny(env.jurisdictions[-1], "c", "m")]"#,
        r#"[deny(env.jurisdictions[99], "c", "m")]"#,
        r#"let out = []; for i in 0..2 { out.push(i); } out"#,
        r#"for (x, i) in tx.actor.roles { x; } []"#,
        // `throw`, an unknown function, `return` inside an expression.
        r#"throw "no";"#,
        r#"[deny(to_upper(tx.id), "c", "m")]"#,
        r#"let x = if true { return [] } else { 1 }; []"#,
        // A parameter that is missing (`regime_param_at` throws).
        r#"let t = regime_param_at("HIPAA", "no_such_table", ["x"]); []"#,
    ] {
        left_to_rhai(&with(body), json!({}));
    }
    // Recursion is not inlined.
    left_to_rhai(
        r#"fn f(n) { if n == 0 { 0 } else { f(n - 1) } } fn evaluate(tx, env) { let x = f(3); [] }"#,
        json!({}),
    );
    // More built than a fraction of the sandbox's size limits (Rhai checks containers' totals).
    left_to_rhai(
        r#"fn evaluate(tx, env) { let out = []; for x in tx.resource.fields { out.push(x + x + x + x); } [] }"#,
        json!({ "resource": { "fields": (0..2000).map(|i| format!("field-{i}")).collect::<Vec<_>>() } }),
    );
    // A loop past the step limit.
    left_to_rhai(
        r#"fn evaluate(tx, env) { let n = 0; for x in tx.resource.fields { n += 1; } [] }"#,
        json!({ "resource": { "fields": (0..super::MAX_STEPS).map(|i| format!("f{i}")).collect::<Vec<_>>() } }),
    );
}

#[test]
fn every_module_the_benchmark_mix_calls_is_answered_natively() {
    let bundle = default_bundle();
    let BenchmarkMix {
        requests, registry, ..
    } = benchmark_mix();
    let rules = bundle.rules();
    let mut left = Vec::new();
    for request in requests {
        let derived = bundle.derive(&request, &registry).expect("derives");
        for module in rules.modules() {
            if !super::super::applies(module, &request, &derived.facts()) {
                continue;
            }
            let native = module
                .program
                .as_ref()
                .and_then(|p| p.run(&request, &derived.facts(), &rules.params));
            if native.is_none() {
                left.push(format!("{} for {}", module.id, request.id));
            }
        }
    }
    assert!(left.is_empty(), "called in Rhai: {left:#?}");
}

#[test]
fn parameters_are_read_in_place_with_rhai_values() {
    let eu = (
        "jurisdictions/EU.yaml",
        "code: EU\nname: European Union\nregimes: [GDPR]\nparameters: { review_hours: 72, adequacy: [CH, JP], partial: { US: \"DPF\", CA: \"PIPEDA\" }, label: text }\n",
    );
    let script = r#"
        fn evaluate(tx, env) {
            let adequacy = param("EU", "adequacy");
            let partial = param("EU-DE", "partial");
            [obligation("k", "c", #{
                has_jp: adequacy.contains("JP"),
                has_us: "US" in adequacy,
                first: adequacy[1],
                kind: type_of(adequacy),
                empty: adequacy.is_empty(),
                partial_us: "US" in partial,
                partial_kind: type_of(partial),
                us_scope: partial.US,
                label: param("EU", "label") == "text",
                hours: param("EU-DE", "review_hours") + 1,
                missing: param("EU", "no_such_parameter") == (),
            })]
        }"#;
    let (native, rhai) = both_in(&[eu], script, &access(json!({})));
    let rhai = rhai.unwrap_or_else(|e| panic!("Rhai fails: {e}"));
    assert!(rhai.contains("has_jp: bool:true"), "{rhai}");
    assert_eq!(native.as_deref(), Some(rhai.as_str()));
    // A parameter list in the result is Rhai's to build (it is shared there).
    let (native, rhai) = both_in(
        &[eu],
        r#"fn evaluate(tx, env) { [#{ list: param("EU", "adequacy") }] }"#,
        &access(json!({})),
    );
    assert_eq!(native, None);
    assert!(rhai.is_ok());
}

#[test]
fn table_entries_are_read_in_place_with_rhai_values() {
    // `regime_param_at` descends the parameter without copying it; what the module reads of the
    // entry is what Rhai reads of its copy.
    let us = (
        "jurisdictions/US.yaml",
        "code: US\nname: United States\nregimes: [HIPAA]\nparameters: { table: { TPO: { Observation: [code, value], default: [code] }, \"7\": { x: [a] }, scalar: 3 } }\n",
    );
    let script = r#"
        fn evaluate(tx, env) {
            let standard = regime_param_at("HIPAA", "table", ["TPO"]);
            let allowed = if "Patient" in standard { standard["Patient"] } else { standard["default"] };
            [obligation("k", "c", #{
                kind: type_of(standard),
                observation: standard.Observation.contains("value"),
                allowed: allowed.contains("code"),
                deep: regime_param_at("HIPAA", "table", ["TPO", "Observation"])[1],
                by_number: type_of(regime_param_at("HIPAA", "table", [7])),
                missing: regime_param_at("HIPAA", "table", ["NOPE"]) == (),
                missing_deep: regime_param_at("HIPAA", "table", ["NOPE", "x"]) == (),
                scalar: regime_param_at("HIPAA", "table", ["scalar"]) + 1,
                whole: type_of(regime_param_at("HIPAA", "table", [])),
            })]
        }"#;
    let request = access(json!({ "actor": { "jurisdiction": "US" } }));
    let (native, rhai) = both_in(&[us], script, &request);
    let rhai = rhai.unwrap_or_else(|e| panic!("Rhai fails: {e}"));
    assert!(rhai.contains("observation: bool:true"), "{rhai}");
    assert!(rhai.contains("deep: string:\"value\""), "{rhai}");
    assert_eq!(native.as_deref(), Some(rhai.as_str()));
    // Looking a key up in something other than a map is Rhai's error.
    let (native, rhai) = both_in(
        &[us],
        r#"fn evaluate(tx, env) { let x = regime_param_at("HIPAA", "table", ["scalar", "y"]); [] }"#,
        &request,
    );
    assert_eq!(native, None);
    let error = rhai.expect_err("Rhai refuses the lookup");
    assert!(
        error.contains("jurisdiction parameter `table` is not a map where `y` is looked up"),
        "{error}"
    );
}

#[test]
fn assigning_a_parameter_of_evaluate_is_left_to_rhai() {
    // Rhai refuses it ("Cannot modify constant tx"): the module errs, and so denies.
    for body in [
        r#"tx = 1; []"#,
        r#"let a = tx.action; if a == "read" { env = #{ now: 1 }; } [deny("r", "c", a)]"#,
        r#"env += 1; []"#,
        r#"tx.id = "t"; []"#,
        r#"let x = if true { tx = #{ id: "t" }; 1 } else { 2 }; [deny("r", "c", "m" + x)]"#,
    ] {
        let script = format!("fn evaluate(tx, env) {{ {body} }}");
        let (native, rhai) = both(&script, json!({ "action": "read" }));
        assert_eq!(native, None, "{script}");
        assert!(rhai.is_err(), "{script}: {rhai:?}");
    }
    // The parameters of the module's other functions are ordinary variables.
    native_as_rhai(
        r#"fn f(t) { t = 1; t } fn evaluate(tx, env) { [deny("r", "c", tx.action + f(tx))] }"#,
        json!({}),
    );
}
