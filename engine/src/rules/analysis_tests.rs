//! Native evaluation and the field-usage analysis change no decision: checked against the reference run on the
//! default bundle's cases and the benchmark mix, and on hand-written edge cases.

use super::native::Program;
use super::usage::Usage;
use super::{sandboxed_engine, Stage, ROOTS};
use crate::bundle::Bundle;
use crate::cases::case_inputs;
use crate::consent::{ConsentRegistry, InMemoryConsentRegistry};
use crate::decision::{Decision, DecisionBuilder, Effect, PolicySetRef};
use crate::jurisdiction::JurisdictionTable;
use crate::testing::{access, benchmark_mix, files_with};
use crate::transaction::AccessRequest;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

pub(super) fn default_bundle() -> Bundle {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    Bundle::load(&dir).unwrap_or_else(|e| panic!("default bundle loads: {e}"))
}

/// The rule modules' contribution to a decision, analysed or by the reference run.
pub(super) fn rules_decision(
    bundle: &Bundle,
    request: &AccessRequest,
    registry: &dyn ConsentRegistry,
    analysed: bool,
) -> Option<Decision> {
    let derived = bundle.derive(request, registry).ok()?;
    let mut builder = DecisionBuilder::new();
    for stage in [Stage::Verdicts, Stage::Obligations] {
        if analysed {
            bundle
                .rules()
                .run(stage, request, &derived.facts(), &mut builder);
        } else {
            bundle
                .rules()
                .run_reference(stage, request, &derived.facts(), &mut builder);
        }
    }
    let set = PolicySetRef {
        version: String::new(),
        name: String::new(),
        activated_at_height: 0,
    };
    Some(builder.finish(&request.id, set, Vec::new()))
}

#[test]
fn analysed_run_matches_the_reference_on_every_default_case_and_the_mix() {
    let bundle = default_bundle();
    let modules = bundle.rules().modules();
    let untranslated: Vec<&str> = modules
        .iter()
        .filter(|m| m.program.is_none())
        .map(|m| m.id.as_str())
        .collect();
    assert!(
        untranslated.is_empty(),
        "every default module starts in the native subset; these do not: {untranslated:?}"
    );

    let mut requests: Vec<(String, AccessRequest, InMemoryConsentRegistry)> = case_inputs(&bundle)
        .into_iter()
        .map(|c| (format!("{} :: {}", c.file, c.name), c.request, c.registry))
        .collect();
    let mix = benchmark_mix();
    for request in mix.requests {
        requests.push((request.id.clone(), request, mix.registry.clone()));
    }
    assert!(requests.len() >= 200, "only {} requests", requests.len());
    for (label, request, registry) in &requests {
        let fast = rules_decision(&bundle, request, registry, true).map(|d| d.to_json());
        let reference = rules_decision(&bundle, request, registry, false).map(|d| d.to_json());
        assert_eq!(fast, reference, "{label}");
    }
}

fn module_bundle(script: &str) -> Bundle {
    Bundle::compile(files_with(&[("rhai/rules.rhai", script)]))
        .unwrap_or_else(|e| panic!("module must compile: {e}"))
}

fn program_of(script: &str) -> Option<Program> {
    let engine = sandboxed_engine(Arc::new(JurisdictionTable::default()));
    let ast = engine.compile(script).expect("compiles");
    Program::of(&engine, &ast)
}

/// Whether the program of `script` answers for `request` natively, and the decision `decide`
/// gives; asserts that the decision is the reference run's.
fn native_and_decided(script: &str, patch: serde_json::Value) -> (bool, Decision) {
    let bundle = module_bundle(script);
    let request = access(patch);
    let registry = InMemoryConsentRegistry::new();
    let derived = bundle.derive(&request, &registry).expect("derives");
    let rules = bundle.rules();
    let native = rules.modules()[0]
        .program
        .as_ref()
        .and_then(|p| p.run(&request, &derived.facts(), &rules.params))
        .is_some();
    let fast = rules_decision(&bundle, &request, &registry, true).map(|d| d.to_json());
    let reference = rules_decision(&bundle, &request, &registry, false).map(|d| d.to_json());
    assert_eq!(fast, reference, "{script}");
    (native, bundle.decide(&request, &registry, 0))
}

fn has_error(d: &Decision, needle: &str) -> bool {
    d.decision == Effect::Deny && d.errors.iter().any(|e| e.message.contains(needle))
}

#[test]
fn a_program_answers_where_it_models_the_module_and_rhai_does_the_rest() {
    let script = r#"fn evaluate(tx, env) { if tx.action != "export" { return []; } throw "ran"; }"#;
    let (native, d) = native_and_decided(script, json!({}));
    assert!(native);
    assert!(d.errors.is_empty(), "{d:?}");
    // `throw` is not modelled: Rhai runs the module and makes the error.
    let (native, d) = native_and_decided(script, json!({ "action": "export" }));
    assert!(!native);
    assert!(has_error(&d, "ran"), "{d:?}");
}

#[test]
fn missing_attributes_and_unlike_types_compare_as_rhai_does() {
    let script = r#"fn evaluate(tx, env) {
        let attrs = tx.context.attributes;
        if attrs["flag"] != true { return []; }
        throw "ran";
    }"#;
    // `flag` is declared a boolean: a string or a list is refused before any rule runs, and the
    // evaluator, given one, leaves the comparison of unlike types to Rhai (a type error there).
    for (attrs, native_answers, ran, refused) in [
        (json!({}), true, false, false),
        (json!({ "flag": "true" }), false, false, true),
        (json!({ "flag": [true] }), false, false, true),
        (json!({ "flag": false }), true, false, false),
        (json!({ "flag": true }), false, true, false),
    ] {
        let (native, d) = native_and_decided(script, json!({ "context": { "attributes": attrs } }));
        assert_eq!(native, native_answers, "{attrs}");
        assert_eq!(has_error(&d, "ran"), ran, "{attrs}: {d:?}");
        assert_eq!(
            has_error(&d, "must be a boolean"),
            refused,
            "{attrs}: {d:?}"
        );
    }
    // Read by a module that does not check the declaration, a string compared with a boolean is
    // a type error, never "not equal".
    let script = r#"fn evaluate(tx, env) { if tx.context.attributes.n != true { return []; } [] }"#;
    let (native, d) =
        native_and_decided(script, json!({ "context": { "attributes": { "n": "x" } } }));
    assert!(!native);
    assert!(
        has_error(&d, "type error: `!=` between string and boolean"),
        "{d:?}"
    );
}

#[test]
fn values_outside_the_model_call_the_module() {
    // Integer against float (from a parameter: a declared attribute is never a float): a numeric
    // comparison, not modelled.
    let script =
        r#"fn evaluate(tx, env) { if param("EU", "ratio") == 1 { return []; } throw "ran"; }"#;
    let bundle = Bundle::compile(files_with(&[
        ("rhai/rules.rhai", script),
        (
            "jurisdictions/EU.yaml",
            "code: EU\nname: European Union\nregimes: [GDPR]\nparameters: { ratio: 1.0 }\n",
        ),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let request = access(json!({}));
    let registry = InMemoryConsentRegistry::new();
    let derived = bundle.derive(&request, &registry).expect("derives");
    let rules = bundle.rules();
    let program = rules.modules()[0].program.as_ref().expect("translated");
    assert!(program
        .run(&request, &derived.facts(), &rules.params)
        .is_none());
    let d = bundle.decide(&request, &registry, 0);
    assert!(
        d.errors.is_empty(),
        "Rhai compares 1 and 1.0 as equal: {d:?}"
    );
    // A condition that is not a boolean is an error in Rhai, never a native answer.
    let script = r#"fn evaluate(tx, env) { if tx.context.attributes.n { return []; } [] }"#;
    let (native, d) = native_and_decided(
        script,
        json!({ "context": { "attributes": { "n": "yes" } } }),
    );
    assert!(!native);
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(d.errors.len(), 1, "{d:?}");
    // `&&` stops at the first false operand, so a later non-boolean one is never evaluated.
    let script = r#"fn evaluate(tx, env) {
        if !(tx.action == "export" && tx.context.attributes.n) { return []; }
        throw "ran";
    }"#;
    let attrs = json!({ "attributes": { "n": "yes" } });
    let (native, d) = native_and_decided(script, json!({ "context": attrs }));
    assert!(native);
    assert!(d.errors.is_empty(), "{d:?}");
    let (native, d) = native_and_decided(script, json!({ "action": "export", "context": attrs }));
    assert!(!native);
    assert_eq!(
        d.errors.len(),
        1,
        "Rhai rejects a string operand of `&&`: {d:?}"
    );
}

#[test]
fn verdicts_kept_apart_are_checked_as_the_maps_rhai_returns() {
    // Each answered natively with verdicts alone; the decision is the reference run's, errors
    // included (`native_and_decided` compares the two).
    for (script, error) in [
        (
            r#"fn evaluate(tx, env) { [permit(tx.action, "c", "m"), deny("r", tx.id, "m")] }"#,
            None,
        ),
        (
            r#"fn evaluate(tx, env) { let blank = " "; [permit("r", "c", "m"), deny(blank, "c", "m")] }"#,
            Some("verdict 1: `rule` must not be empty"),
        ),
        (
            r#"fn evaluate(tx, env) { let blank = ""; [deny("r", "c", blank)] }"#,
            Some("`message` must not be empty"),
        ),
        (
            r#"fn evaluate(tx, env) { let blank = ""; [obligation(blank, "c")] }"#,
            Some("`kind` must not be empty"),
        ),
        (
            r#"fn evaluate(tx, env) { [obligation("k", "", #{ n: tx.id })] }"#,
            Some("`citation` must not be empty"),
        ),
        (
            r#"fn evaluate(tx, env) { [obligation("k", "c", #{ rule: tx.action, when: "always", within_hours: 1, list: [1, "a", true], none: () })] }"#,
            None,
        ),
        (
            r#"fn evaluate(tx, env) { [obligation("k", "c", #{ when: tx.action })] }"#,
            Some("`when` must be `allow`, `deny` or `always`, not `read`"),
        ),
        (
            r#"fn evaluate(tx, env) { [obligation("k", "c", #{ "module": tx.id })] }"#,
            Some("`module` is set by the engine"),
        ),
        (
            r#"fn evaluate(tx, env) { [obligation("k", "c", #{ within_hours: -1, by: tx.id })] }"#,
            Some("`within_hours` must be a non-negative integer"),
        ),
        (
            r#"fn evaluate(tx, env) { [obligation("k", "c", #{ rule: 1, by: tx.id })] }"#,
            Some("`rule` must be a string, not i64"),
        ),
    ] {
        let (native, d) = native_and_decided(script, json!({}));
        assert!(native, "{script}");
        match error {
            Some(needle) => assert!(has_error(&d, needle), "{script}: {d:?}"),
            None => assert!(d.errors.is_empty(), "{script}: {d:?}"),
        }
    }
}

#[test]
fn evaluation_stops_at_the_first_statement_it_cannot_model() {
    // `parse_int` fails at run time: a later `return` must not hide the error.
    let script = r#"fn evaluate(tx, env) { let n = parse_int("zz"); if true { return []; } [] }"#;
    assert!(program_of(script).is_none());
    let (_, d) = native_and_decided(script, json!({}));
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(d.errors.len(), 1, "{d:?}");
    // Any result is the module's, checked as Rhai's would be: `1` is not a verdict.
    let script = r#"fn evaluate(tx, env) { if tx.action == "read" { return [1]; } [] }"#;
    let (native, d) = native_and_decided(script, json!({}));
    assert!(native);
    assert!(has_error(&d, "verdict 0"), "{d:?}");
    // A method by the name of one of the module's own functions is the module's (`this`).
    let script = r#"fn contains(x) { true } fn evaluate(tx, env) { if tx.resource.fields.contains("a") { return []; } [] }"#;
    let (native, _) = native_and_decided(script, json!({}));
    assert!(!native);
}

#[test]
fn lists_type_names_and_renamed_parameters_are_modelled() {
    let script = r#"fn evaluate(t, e) {
        let age = e.patient_age;
        if type_of(age) != "i64" { return []; }
        if !e.holder_regimes.contains("HIPAA") { return []; }
        if e.consent_categories.contains_all(t.resource.data_categories) { return []; }
        throw "ran";
    }"#;
    let (native, d) = native_and_decided(
        script,
        json!({ "resource": { "patient": { "birth_date": null } } }),
    );
    assert!(native, "no birth date: age is ()");
    assert!(d.errors.is_empty(), "{d:?}");
    let (native, d) = native_and_decided(script, json!({}));
    assert!(!native, "no consent covers the record");
    assert!(has_error(&d, "ran"), "{d:?}");
}

fn facts_of(request: &AccessRequest) -> crate::bundle::DerivedFacts {
    module_bundle("fn evaluate(tx, env) { [] }")
        .derive(request, &InMemoryConsentRegistry::new())
        .expect("derives")
}

fn usage_of(script: &str) -> Usage {
    let engine = sandboxed_engine(Arc::new(JurisdictionTable::default()));
    Usage::of(&engine.compile(script).expect("compiles"), &ROOTS)
}

#[test]
fn usage_follows_aliases_and_widens_on_any_other_use() {
    let u = usage_of(
        r#"fn evaluate(tx, env) {
            let ctx = tx.context;
            let r = ctx.recipient;
            if r.id == "" { return []; }
            [env.now]
        }"#,
    );
    assert!(u.wanted(&["tx", "context", "recipient", "id"]));
    assert!(!u.wanted(&["tx", "context", "recipient", "type"]));
    assert!(!u.wanted(&["tx", "actor", "id"]));
    assert!(u.on_route(&["tx", "context"]));
    assert!(u.wanted(&["env", "now"]));
    assert!(!u.wanted(&["env", "regimes"]));

    let u = usage_of(
        r#"fn target(r) { r.location } fn evaluate(tx, env) { [target(tx.resource), len(tx.actor)] }"#,
    );
    assert!(
        u.wanted(&["tx", "resource", "location"]),
        "the parameter is followed"
    );
    assert!(!u.wanted(&["tx", "resource", "id"]));
    assert!(
        u.wanted(&["tx", "actor", "id"]),
        "a native function's argument is read whole"
    );
    assert!(!u.wanted(&["tx", "context"]));

    let u = usage_of(r#"fn evaluate(tx, env) { let ks = tx.context.keys(); let t = tx; [] }"#);
    assert!(
        u.wanted(&["tx", "context", "break_glass"]),
        "a method's object is read whole"
    );
    // `let t = tx;` is an alias; `t` itself is not read, so `tx.actor` stays out.
    assert!(!u.wanted(&["tx", "actor"]));

    let u =
        usage_of(r#"fn evaluate(tx, env) { let a = tx.context.attributes["x"]; [type_of(env)] }"#);
    assert!(u.wanted(&["tx", "context", "attributes"]));
    assert!(u.wanted(&["env", "grantee"]));
}

#[test]
fn a_module_reads_the_fields_it_names_through_aliases() {
    let script = r#"fn evaluate(tx, env) {
        let ctx = tx.context;
        let r = ctx.recipient;
        if r.id != "org/lab" || ctx.attributes["remuneration"] != true { throw "wrong: " + r.id; }
        []
    }"#;
    let bundle = module_bundle(script);
    let request = access(
        json!({ "context": { "recipient": { "id": "org/lab" }, "attributes": { "remuneration": true } } }),
    );
    let d = bundle.decide(&request, &InMemoryConsentRegistry::new(), 0);
    assert!(d.errors.is_empty(), "{d:?}");
}

#[test]
fn field_sets_number_every_field_and_build_only_theirs() {
    fn count(field: &super::fields::Field) -> usize {
        match field {
            super::fields::Field::Leaf(_) => 1,
            super::fields::Field::Record(fields) => {
                1 + fields.iter().map(|(_, f)| count(f)).sum::<usize>()
            }
        }
    }
    let nodes: usize = ROOTS.iter().map(|(_, f)| count(f)).sum();
    assert!(
        nodes <= 128,
        "{nodes} fields: FieldSet keeps every field past the 128th"
    );

    let u = usage_of(
        r#"fn evaluate(tx, env) { if tx.context.recipient.id == "" { return []; } [env.now] }"#,
    );
    let set = super::fields::FieldSet::new(&ROOTS, &|p| u.wanted(p), &|p| u.on_route(p));
    let request = access(json!({}));
    let facts = facts_of(&request);
    let [tx, env] = set.build(&ROOTS, &request, &facts.facts());
    assert_eq!(
        tx.to_string(),
        "#{context: #{recipient: #{id: } (shared)} (shared)} (shared)"
    );
    let now = request.timestamp.unix();
    assert_eq!(env.to_string(), format!("#{{now: {now}}} (shared)"));
}

#[test]
fn a_list_past_the_sandbox_limits_is_left_to_rhai() {
    // Rhai size-checks a method's object after the call and throws past the limits.
    let script =
        r#"fn evaluate(tx, env) { if !tx.resource.fields.contains("id") { return []; } [] }"#;
    let fields: Vec<String> = (0..super::limits::MAX_ARRAY_SIZE + 1)
        .map(|i| format!("f{i}"))
        .collect();
    let (native, d) = native_and_decided(script, json!({ "resource": { "fields": fields } }));
    assert!(!native);
    assert!(
        has_error(&d, "size of array/blob over 10000 elements"),
        "{d:?}"
    );
    let (native, d) = native_and_decided(script, json!({ "resource": { "fields": ["name"] } }));
    assert!(native);
    assert!(d.errors.is_empty(), "{d:?}");
}
