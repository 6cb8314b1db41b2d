//! The leading guards of a Cedar policy: the conjuncts at the start of its first `when` condition
//! that test an attribute Accord always provides with an operation that cannot fail (the forms are
//! listed in [`super::slice`]'s documentation). Read from the policy's JSON form, which mirrors its
//! AST; [`super::slice`] keys slices by them and drops those a slice's key decides.

use cedar_policy::Policy;
use serde_json::Value;
use std::collections::BTreeSet;

/// What a policy's leading guards require of a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Guards {
    pub(super) regimes: Vec<String>,
    /// Each set must contain the request's purpose.
    pub(super) purposes: Vec<BTreeSet<String>>,
    /// Each set must contain the request's legal basis.
    pub(super) legal_bases: Vec<BTreeSet<String>>,
    /// Each set must contain the actor's kind.
    pub(super) kinds: Vec<BTreeSet<String>>,
    /// Boolean context attributes and the value each must have.
    pub(super) flags: Vec<(String, bool)>,
    /// Data categories the record must (true) or must not (false) have.
    pub(super) categories: Vec<(String, bool)>,
}

/// The attribute a guard tests.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Subject {
    Purpose,
    LegalBasis,
    Kind,
}

impl Guards {
    /// Reads the leading guards of `policy` from its JSON form, which mirrors its AST.
    pub(super) fn of(policy: &Policy) -> Guards {
        let mut guards = Guards::default();
        let Ok(json) = policy.to_json() else {
            return guards;
        };
        let first = json
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        let Some(first) = first else { return guards };
        if first.get("kind").and_then(Value::as_str) != Some("when") {
            return guards;
        }
        let Some(body) = first.get("body") else {
            return guards;
        };
        let mut conjuncts = Vec::new();
        flatten_and(body, &mut conjuncts);
        for conjunct in conjuncts {
            if let Some(regime) = regime_test(conjunct) {
                guards.regimes.push(regime);
            } else if let Some(flag) = flag_test(conjunct) {
                guards.flags.push(flag);
            } else if let Some(category) = category_test(conjunct) {
                guards.categories.push(category);
            } else if let Some((subject, values)) = attribute_test(conjunct) {
                match subject {
                    Subject::Purpose => guards.purposes.push(values),
                    Subject::LegalBasis => guards.legal_bases.push(values),
                    Subject::Kind => guards.kinds.push(values),
                }
            } else {
                break;
            }
        }
        guards
    }
}

/// `a && b && c` (however parenthesised) in evaluation order.
pub(super) fn flatten_and<'a>(expr: &'a Value, out: &mut Vec<&'a Value>) {
    match expr.get("&&") {
        Some(and) => {
            if let (Some(l), Some(r)) = (and.get("left"), and.get("right")) {
                flatten_and(l, out);
                flatten_and(r, out);
            } else {
                out.push(expr);
            }
        }
        None => out.push(expr),
    }
}

fn string_value(expr: &Value) -> Option<&str> {
    expr.get("Value")?.as_str()
}

/// `context.<attr>` or `principal.<attr>`.
pub(super) fn attribute(expr: &Value) -> Option<(&str, &str)> {
    let dot = expr.get(".")?;
    let var = dot.get("left")?.get("Var")?.as_str()?;
    Some((var, dot.get("attr")?.as_str()?))
}

pub(super) fn regime_test(expr: &Value) -> Option<String> {
    let contains = expr.get("contains")?;
    let (var, attr) = attribute(contains.get("left")?)?;
    let is_regimes = var == "context" && matches!(attr, "regimes" | "holder_regimes");
    is_regimes.then(|| string_value(contains.get("right")?).map(str::to_owned))?
}

/// `context.f` or `!context.f` for a boolean attribute `f`, or the consent-coverage test
/// ([`CONSENT_COVERS_RECORD`]) or its negation.
pub(super) fn flag_test(expr: &Value) -> Option<(String, bool)> {
    let (inner, expected) = match expr.get("!") {
        Some(not) => (not.get("arg")?, false),
        None => (expr, true),
    };
    if consent_covers_record(inner) {
        return Some((CONSENT_COVERS_RECORD.to_owned(), expected));
    }
    match attribute(inner)? {
        ("context", name) if CONTEXT_FLAGS.contains(&name) => Some((name.to_owned(), expected)),
        _ => None,
    }
}

/// The flag standing for `context.consent_categories.containsAll(resource.data_categories)`:
/// whether the registry's consent covers every category of the record. Both sets are always
/// provided and `containsAll` of two sets cannot fail, so it guards as a boolean attribute does.
pub(super) const CONSENT_COVERS_RECORD: &str = "consent_categories.containsAll(data_categories)";

fn consent_covers_record(expr: &Value) -> bool {
    let Some(call) = expr.get("containsAll") else {
        return false;
    };
    let (Some(left), Some(right)) = (call.get("left"), call.get("right")) else {
        return false;
    };
    attribute(left) == Some(("context", "consent_categories"))
        && attribute(right) == Some(("resource", "data_categories"))
}

/// Boolean context attributes of the schema (kept in step with `request::CONTEXT`).
pub(super) const CONTEXT_FLAGS: &[&str] = &[
    "break_glass",
    "treating_relationship",
    "actor_is_subject",
    "consent_withdrawn",
    "actor_represents_subject",
    "irb_waiver",
    "de_identified",
];

/// `resource.data_categories.contains("C")` or its negation.
pub(super) fn category_test(expr: &Value) -> Option<(String, bool)> {
    let (inner, expected) = match expr.get("!") {
        Some(not) => (not.get("arg")?, false),
        None => (expr, true),
    };
    let contains = inner.get("contains")?;
    match attribute(contains.get("left")?)? {
        ("resource", "data_categories") => {
            Some((string_value(contains.get("right")?)?.to_owned(), expected))
        }
        _ => None,
    }
}

fn subject_of(expr: &Value) -> Option<Subject> {
    match attribute(expr)? {
        ("context", "purpose") => Some(Subject::Purpose),
        ("context", "legal_basis") => Some(Subject::LegalBasis),
        ("principal", "kind") => Some(Subject::Kind),
        _ => None,
    }
}

/// `x == "V"`, `"V" == x`, `["V", ..].contains(x)`, or `||` of tests on the same `x`.
pub(super) fn attribute_test(expr: &Value) -> Option<(Subject, BTreeSet<String>)> {
    if let Some(eq) = expr.get("==") {
        let (l, r) = (eq.get("left")?, eq.get("right")?);
        let (subject, value) = match (subject_of(l), subject_of(r)) {
            (Some(s), None) => (s, string_value(r)?),
            (None, Some(s)) => (s, string_value(l)?),
            _ => return None,
        };
        return Some((subject, BTreeSet::from([value.to_owned()])));
    }
    if let Some(contains) = expr.get("contains") {
        let subject = subject_of(contains.get("right")?)?;
        let items = contains.get("left")?.get("Set")?.as_array()?;
        let values = items
            .iter()
            .map(|i| string_value(i).map(str::to_owned))
            .collect::<Option<BTreeSet<_>>>()?;
        return Some((subject, values));
    }
    if let Some(or) = expr.get("||") {
        let (ls, mut lv) = attribute_test(or.get("left")?)?;
        let (rs, rv) = attribute_test(or.get("right")?)?;
        if ls != rs {
            return None;
        }
        lv.extend(rv);
        return Some((ls, lv));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn guards(src: &str) -> Guards {
        let policy = Policy::from_str(src).expect("policy parses");
        Guards::of(&policy)
    }

    #[test]
    fn leading_guards_are_read_until_the_first_other_conjunct() {
        let g = guards(
            r#"permit(principal, action, resource) when {
                context.holder_regimes.contains("HIPAA") &&
                ["TREAT", "ETREAT"].contains(context.purpose) &&
                (principal.kind == "Practitioner" || principal.kind == "Organization") &&
                context.treating_relationship &&
                !resource.data_categories.contains("psychotherapy-notes") &&
                resource.fhir_type == "Claim" &&
                context.purpose == "HPAYMT"
            };"#,
        );
        assert_eq!(g.regimes, vec!["HIPAA"]);
        assert_eq!(
            g.purposes,
            vec![BTreeSet::from(["ETREAT".into(), "TREAT".into()])]
        );
        assert_eq!(
            g.kinds,
            vec![BTreeSet::from([
                "Organization".into(),
                "Practitioner".into()
            ])]
        );
        assert_eq!(g.flags, vec![("treating_relationship".to_owned(), true)]);
        assert_eq!(
            g.categories,
            vec![("psychotherapy-notes".to_owned(), false)]
        );
    }

    #[test]
    fn no_guards_unless_the_first_condition_is_a_when() {
        let g = guards(
            r#"forbid(principal, action, resource) unless { context.purpose == "TREAT" }
               when { context.regimes.contains("HIPAA") };"#,
        );
        assert_eq!(g, Guards::default());
        let g = guards(
            r#"permit(principal, action, resource) when {
                resource.fhir_type == "Claim" && context.regimes.contains("HIPAA") };"#,
        );
        assert_eq!(
            g,
            Guards::default(),
            "a guard after another conjunct is not leading"
        );
    }

    #[test]
    fn mixed_or_is_not_a_guard() {
        let g = guards(
            r#"permit(principal, action, resource) when {
                context.purpose == "TREAT" || principal.kind == "Patient" };"#,
        );
        assert_eq!(g, Guards::default());
    }
}
