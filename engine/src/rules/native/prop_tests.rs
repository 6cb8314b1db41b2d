//! One meaning per module, tested on generated modules and requests: for every module built from
//! the constructs of the native subset (and a few outside it) and every request, oversized ones
//! included (lists past Rhai's 10,000-element limit, strings past 64 KiB), the decision the engine
//! makes (natively where it can) is the decision of the reference run (every module in Rhai), and
//! [`crate::rules::RuleModules::disagreement`] finds nothing.
//!
//! `PROPTEST_CASES` sets how many modules are generated (256 by default; each is decided on
//! several requests).

use crate::bundle::Bundle;
use crate::consent::InMemoryConsentRegistry;
use crate::rules::analysis_tests::rules_decision;
use crate::testing::{access_json, files_with};
use crate::transaction::AccessRequest;
use proptest::prelude::*;
use serde_json::{json, Value};

const ACTIONS: [&str; 4] = ["read", "share", "export", "write"];
const PURPOSES: [&str; 4] = ["TREAT", "HPAYMT", "HRESCH", "FAMRQT"];
const WORDS: [&str; 5] = ["name", "ssn", "physician", "", "tx"];

fn word() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&WORDS[..])
}

/// A boolean condition (it may raise a type error, which both evaluators must raise alike).
fn condition() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        prop::sample::select(&ACTIONS[..]).prop_map(|a| format!("tx.action == \"{a}\"")),
        prop::sample::select(&PURPOSES[..])
            .prop_map(|p| format!("tx.context.purpose_of_use == \"{p}\"")),
        word().prop_map(|w| format!("tx.actor.roles.contains(\"{w}\")")),
        word().prop_map(|w| format!("\"{w}\" in tx.resource.fields")),
        Just("tx.resource.fields.is_empty()".to_owned()),
        Just("tx.resource.fields.len() > 2".to_owned()),
        (0i64..3).prop_map(|i| format!("tx.resource.fields[{i}] == \"name\"")),
        prop::sample::select(&["== true", "!= false", "== ()", "!= ()"][..])
            .prop_map(|op| format!("attrs.flag {op}")),
        word().prop_map(|w| format!("attrs.basis == \"{w}\"")),
        Just("type_of(attrs.basis) == \"string\"".to_owned()),
        Just("attrs.basis.is_empty()".to_owned()),
        (0i64..10).prop_map(|i| format!("attrs.k > {i}")),
        (0i64..10).prop_map(|i| format!("attrs.basis == {i}")),
        Just("type_of(attrs.k) == \"i64\" && attrs.k >= 5".to_owned()),
        Just("\"flag\" in attrs".to_owned()),
        Just("tx.id.split(\"-\")[0] == \"tx\"".to_owned()),
        Just("(tx.id + \"!\") == \"tx-1!\"".to_owned()),
        Just("env.jurisdictions.contains(\"US\")".to_owned()),
        Just("env.consent_categories.contains_all(tx.resource.data_categories)".to_owned()),
        (0i64..30).prop_map(|i| format!("env.patient_age >= {i}")),
        Just("in_regime(\"US\", \"HIPAA\") && has_param(\"US\", \"review_hours\")".to_owned()),
        Just("param(\"US\", \"review_hours\") - 1 == 23".to_owned()),
    ];
    atom.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| format!("!({c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a} || {b})")),
        ]
    })
}

/// A value for an obligation's details.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("attrs.k".to_owned()),
        Just("attrs.basis".to_owned()),
        Just("type_of(attrs.flag)".to_owned()),
        Just("\"n=\" + attrs.k".to_owned()),
        Just("attrs.basis + \"/\" + tx.id".to_owned()),
        Just("env.patient_age".to_owned()),
        Just("[tx.action, tx.context.purpose_of_use]".to_owned()),
        Just("regime_param(\"HIPAA\", \"review_hours\")".to_owned()),
        Just("hours_after(env.now, 24)".to_owned()),
    ]
}

fn statement() -> impl Strategy<Value = String> {
    prop_oneof![
        (condition(), 0u8..4)
            .prop_map(|(c, n)| format!("if {c} {{ out.push(deny(\"r{n}\", \"c\", \"m\")); }}")),
        (condition(), value()).prop_map(|(c, v)| format!(
            "if {c} {{ out.push(permit(\"p\", \"c\", \"m\")); }} else {{ out.push(obligation(\"k\", \"c\", #{{ v: {v} }})); }}"
        )),
        word().prop_map(|w| format!(
            "for f in tx.resource.fields {{ if f == \"{w}\" {{ out.push(deny(\"f\", \"c\", f)); }} }}"
        )),
        condition().prop_map(|c| format!("if {c} {{ return out; }}")),
        condition().prop_map(|c| format!("let v = {c}; if v && helper(tx) {{ out.push(deny(\"h\", \"c\", \"m\")); }}")),
        value().prop_map(|v| format!("let x = {v}; out.push(obligation(\"o\", \"c\", #{{ x: x }}));")),
    ]
}

fn module() -> impl Strategy<Value = String> {
    prop::collection::vec(statement(), 1..5).prop_map(|statements| {
        format!(
            "fn helper(t) {{ t.resource.fields.is_empty() || t.actor.roles.contains(\"physician\") }}\n\
             fn evaluate(tx, env) {{\n    let out = [];\n    let attrs = tx.context.attributes;\n    {}\n    out\n}}\n",
            statements.join("\n    ")
        )
    })
}

/// An attribute value of any JSON type.
fn any_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (-3i64..12).prop_map(Value::from),
        word().prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!(["x"])),
        Just(Value::Null),
    ]
}

/// How many entries a list has: mostly a few, sometimes around and past Rhai's limits.
fn count() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..5,
        1 => 4_990usize..5_010,
        1 => 9_995usize..10_005,
        1 => Just(65_537usize),
    ]
}

fn request() -> impl Strategy<Value = AccessRequest> {
    (
        prop::sample::select(&ACTIONS[..]),
        prop::sample::select(&PURPOSES[..]),
        prop::collection::vec(word(), 0..3),
        (count(), word()),
        prop::option::of(any_json()),
        prop::option::of(any_json()),
        prop::option::of(any_json()),
        prop_oneof![6 => Just(0usize), 1 => Just(40_000usize), 1 => Just(70_000usize)],
        any::<bool>(),
    )
        .prop_map(
            |(action, purpose, roles, (fields, filler), flag, basis, k, long, born)| {
                let mut attributes = serde_json::Map::new();
                for (name, v) in [("flag", flag), ("basis", basis), ("k", k)] {
                    if let Some(v) = v {
                        attributes.insert(name.to_owned(), v);
                    }
                }
                if long > 0 {
                    attributes.insert("basis".into(), Value::from("b".repeat(long)));
                }
                let fields: Vec<String> = (0..fields)
                    .map(|i| {
                        if i == 0 {
                            filler.to_owned()
                        } else {
                            format!("f{i}")
                        }
                    })
                    .collect();
                let mut value = access_json();
                value["action"] = json!(action);
                value["actor"]["roles"] = json!(roles);
                value["resource"]["fields"] = json!(fields);
                if !born {
                    value["resource"]["patient"] = json!({ "id": "patient/p-1" });
                }
                value["context"] = json!({
                    "purpose_of_use": purpose,
                    "recipient": { "id": "org/other", "country": "US" },
                    "attributes": attributes,
                });
                match AccessRequest::from_json(&value.to_string()) {
                    Ok(r) => r,
                    Err(e) => panic!("generated request must parse: {e}"),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_generated_module_means_the_same_natively_and_in_rhai(
        script in module(),
        requests in prop::collection::vec(request(), 1..4),
    ) {
        let bundle = Bundle::compile(files_with(&[("rhai/rules.rhai", script.as_str())]))
            .unwrap_or_else(|e| panic!("generated module must compile: {e}\n{script}"));
        let registry = InMemoryConsentRegistry::new();
        for request in &requests {
            let analysed = rules_decision(&bundle, request, &registry, true).map(|d| d.to_json());
            let reference = rules_decision(&bundle, request, &registry, false).map(|d| d.to_json());
            prop_assert_eq!(&analysed, &reference, "{}", script);
            let derived = bundle.derive(request, &registry).expect("derives");
            let found = bundle.rules().disagreement(request, &derived.facts());
            prop_assert!(found.is_none(), "{:?}\n{}", found, script);
        }
    }
}
