use super::*;
use serde_json::json;

fn reason(module: &str, rule: &str, effect: RuleEffect, citation: &str) -> Reason {
    Reason {
        module: module.into(),
        rule: rule.into(),
        effect,
        citation: citation.into(),
        message: format!("{rule} ({citation})"),
    }
}

fn permit(rule: &str, citation: &str) -> Reason {
    reason("hipaa/permitted-uses", rule, RuleEffect::Permit, citation)
}

fn deny(rule: &str, citation: &str) -> Reason {
    reason("gdpr/cross-border", rule, RuleEffect::Deny, citation)
}

fn default_deny(citation: &str) -> Reason {
    reason("accord", "no-permit", RuleEffect::Deny, citation)
}

fn obligation(kind: &str, citation: &str, details: serde_json::Value) -> Obligation {
    let details = match details {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        other => panic!("details must be an object, not {other}"),
    };
    Obligation {
        kind: kind.into(),
        citation: citation.into(),
        module: "hipaa/audit".into(),
        rule: kind.into(),
        details,
    }
}

fn policy_set() -> PolicySetRef {
    PolicySetRef {
        version: "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
        name: "accord-default".into(),
        activated_at_height: 0,
    }
}

fn finish(builder: DecisionBuilder) -> Decision {
    builder.finish("tx-000123", policy_set(), vec!["US".into(), "US-CA".into()])
}

#[test]
fn a_permit_alone_allows_with_the_permit_as_reason() {
    let mut b = DecisionBuilder::new();
    b.reason(permit("treatment", "45 CFR 164.506(c)(1)"));
    b.default_deny(default_deny("45 CFR 164.502(a)"));
    let d = finish(b);
    assert_eq!(d.decision, Effect::Allow);
    assert!(d.is_allow());
    assert_eq!(d.reasons, vec![permit("treatment", "45 CFR 164.506(c)(1)")]);
    assert!(d.errors.is_empty());
}

#[test]
fn deny_overrides_permit_and_only_deny_reasons_are_given() {
    let mut b = DecisionBuilder::new();
    b.reason(permit("treatment", "45 CFR 164.506(c)(1)"));
    b.reason(deny("transfer-needs-safeguard", "GDPR Art. 44"));
    b.obligation(obligation("audit", "45 CFR 164.312(b)", json!({})));
    b.default_deny(default_deny("45 CFR 164.502(a)"));
    let d = finish(b);
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(
        d.reasons,
        vec![deny("transfer-needs-safeguard", "GDPR Art. 44")]
    );
    assert!(
        d.obligations.is_empty(),
        "obligations come only with an allow"
    );
}

#[test]
fn no_permit_denies_with_the_default_deny_reasons() {
    let mut b = DecisionBuilder::new();
    b.obligation(obligation("audit", "45 CFR 164.312(b)", json!({})));
    b.default_deny(default_deny("GDPR Art. 6(1)"));
    b.default_deny(default_deny("45 CFR 164.502(a)"));
    let d = finish(b);
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(
        d.reasons,
        vec![
            default_deny("45 CFR 164.502(a)"),
            default_deny("GDPR Art. 6(1)")
        ],
        "sorted"
    );
    assert!(d.obligations.is_empty());
}

#[test]
fn nothing_at_all_is_a_deny() {
    let d = finish(DecisionBuilder::new());
    assert_eq!(
        d.decision,
        Effect::Deny,
        "a decision is never allow by accident"
    );
    assert!(d.reasons.is_empty());
}

#[test]
fn an_error_denies_even_with_a_permit() {
    // Fail closed: a rule that failed might have denied.
    let mut b = DecisionBuilder::new();
    b.reason(permit("treatment", "45 CFR 164.506(c)(1)"));
    b.obligation(obligation("audit", "45 CFR 164.312(b)", json!({})));
    b.default_deny(default_deny("45 CFR 164.502(a)"));
    b.error("hipaa/minimum-necessary", "operation budget exhausted");
    let d = finish(b);
    assert_eq!(d.decision, Effect::Deny);
    assert!(
        d.reasons.is_empty(),
        "neither the permit nor a default deny decided: {:?}",
        d.reasons
    );
    assert!(d.obligations.is_empty());
    assert_eq!(
        d.errors,
        vec![EvaluationError {
            module: "hipaa/minimum-necessary".into(),
            message: "operation budget exhausted".into()
        }]
    );
}

#[test]
fn an_error_keeps_explicit_deny_reasons() {
    let mut b = DecisionBuilder::new();
    b.reason(deny("transfer-needs-safeguard", "GDPR Art. 44"));
    b.error("accord", "module missing");
    let d = finish(b);
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(
        d.reasons,
        vec![deny("transfer-needs-safeguard", "GDPR Art. 44")]
    );
    assert_eq!(d.errors.len(), 1);
}

/// Feeds the same verdicts in the given order.
fn build(order: &[usize]) -> Decision {
    let mut b = DecisionBuilder::new();
    for &i in order {
        match i {
            0 => b.reason(permit("treatment", "45 CFR 164.506(c)(1)")),
            1 => b.reason(permit("health-care", "GDPR Art. 9(2)(h)")),
            2 => b.obligation(obligation(
                "audit",
                "45 CFR 164.312(b)",
                json!({ "within_hours": 24 }),
            )),
            3 => b.obligation(obligation(
                "audit",
                "45 CFR 164.312(b)",
                json!({ "within_hours": 6 }),
            )),
            4 => b.obligation(obligation(
                "notify",
                "GDPR Art. 33",
                json!({ "target": "dpo", "within_hours": 72 }),
            )),
            // A duplicate of 2: two rules asking for the same duty give it once.
            5 => b.obligation(obligation(
                "audit",
                "45 CFR 164.312(b)",
                json!({ "within_hours": 24 }),
            )),
            6 => b.reason(permit("treatment", "45 CFR 164.506(c)(1)")),
            _ => unreachable!(),
        }
    }
    finish(b)
}

#[test]
fn lists_are_sorted_and_deduplicated_whatever_the_insertion_order() {
    let forward = build(&[0, 1, 2, 3, 4, 5, 6]);
    let backward = build(&[6, 5, 4, 3, 2, 1, 0]);
    let shuffled = build(&[3, 6, 0, 4, 2, 5, 1]);
    assert_eq!(
        forward.to_json(),
        backward.to_json(),
        "byte-identical on every node"
    );
    assert_eq!(forward.to_json(), shuffled.to_json());
    assert_eq!(forward.decision, Effect::Allow);
    assert_eq!(forward.reasons.len(), 2, "duplicate permit given once");
    let obligations: Vec<(String, Option<i64>)> = forward
        .obligations
        .iter()
        .map(|o| {
            (
                o.kind.clone(),
                o.details.get("within_hours").and_then(|v| v.as_i64()),
            )
        })
        .collect();
    // Ties on kind/citation/module/rule are broken by the details' JSON text.
    assert_eq!(
        obligations,
        vec![
            ("audit".to_owned(), Some(24)),
            ("audit".to_owned(), Some(6)),
            ("notify".to_owned(), Some(72))
        ]
    );
}

#[test]
fn errors_are_sorted_and_deduplicated() {
    let mut b = DecisionBuilder::new();
    b.error("z/module", "boom");
    b.error("a/module", "boom");
    b.error("z/module", "boom");
    let d = finish(b);
    let modules: Vec<&str> = d.errors.iter().map(|e| e.module.as_str()).collect();
    assert_eq!(modules, vec!["a/module", "z/module"]);
}

#[test]
fn to_json_has_the_contract_field_order() {
    let mut b = DecisionBuilder::new();
    b.reason(permit("treatment", "45 CFR 164.506(c)(1)"));
    b.obligation(obligation(
        "notify",
        "GDPR Art. 33",
        json!({ "within_hours": 72, "deadline": "2026-03-04T10:00:00Z", "target": "dpo" }),
    ));
    b.obligation(obligation("audit", "45 CFR 164.312(b)", json!({})));
    let d = b.finish(
        "tx-000123",
        PolicySetRef {
            activated_at_height: 42,
            ..policy_set()
        },
        vec!["EU".into(), "EU-DE".into(), "US".into(), "US-CA".into()],
    );
    // docs/contract.md §2: tx, decision, policy_set {version, name, activated_at_height}, jurisdictions,
    // reasons {module, rule, effect, citation, message}, obligations {kind, citation, ...}, errors.
    // An obligation's details follow its fixed fields, in key order.
    insta::assert_snapshot!(d.to_json());
}

#[test]
fn decision_json_round_trips() {
    let d = build(&[0, 1, 2, 3, 4]);
    let back: Decision = crate::json::parse_str(&d.to_json()).expect("decision JSON parses back");
    assert_eq!(back, d);
    assert_eq!(back.to_json(), d.to_json());
}
