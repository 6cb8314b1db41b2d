//! Which entity and context attributes a policy can read, so a request carries only those.
//!
//! Cedar reads an attribute only through `x.attr` or `x has attr`, with the name written in the
//! policy. A request that lacks an attribute no policy of its slice names therefore evaluates
//! exactly as one that carries it: nothing looks it up, and nothing compares whole records.
//! Wherever `principal`, `resource` or `context` appears other than as the left side of such an
//! access (compared, put in a set, passed to a function), every attribute of it counts as read.
//! A policy whose JSON form cannot be read counts as reading everything.

use super::request::{AttrOf, ACTOR, CONTEXT, RECORD};
use cedar_policy::Policy;
use serde_json::Value;

/// The attributes of the actor (`principal`), the record (`resource`) and `context` that some
/// policy can read, one bit per attribute of [`ACTOR`], [`RECORD`] and [`CONTEXT`], in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct AttributeReads {
    pub actor: u64,
    pub record: u64,
    pub context: u64,
}

impl AttributeReads {
    pub(super) const ALL: AttributeReads = AttributeReads {
        actor: u64::MAX,
        record: u64::MAX,
        context: u64::MAX,
    };

    /// What `policy`'s conditions read.
    pub(super) fn of(policy: &Policy) -> AttributeReads {
        let Ok(json) = policy.to_json() else {
            return AttributeReads::ALL;
        };
        let mut reads = AttributeReads::default();
        for condition in json
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match condition.get("body") {
                Some(body) => reads.walk(body),
                None => return AttributeReads::ALL,
            }
        }
        reads
    }

    pub(super) fn union(self, other: AttributeReads) -> AttributeReads {
        AttributeReads {
            actor: self.actor | other.actor,
            record: self.record | other.record,
            context: self.context | other.context,
        }
    }

    /// Whether the attribute at `index` of the variable's name list is read.
    pub(super) fn reads(mask: u64, index: usize) -> bool {
        index >= 64 || mask & (1 << index) != 0
    }

    fn slot(&mut self, var: &str) -> Option<(&mut u64, &'static [(&'static str, AttrOf)])> {
        match var {
            "principal" => Some((&mut self.actor, ACTOR)),
            "resource" => Some((&mut self.record, RECORD)),
            "context" => Some((&mut self.context, CONTEXT)),
            _ => None,
        }
    }

    fn read(&mut self, var: &str, attr: &str) {
        if let Some((mask, names)) = self.slot(var) {
            // A name outside the list is one Accord never provides: reading it fails alike either
            // way, so it needs no bit.
            if let Some(index) = names.iter().position(|(n, _)| *n == attr) {
                *mask |= 1 << index.min(63);
            }
        }
    }

    fn read_all(&mut self, var: &str) {
        if let Some((mask, _)) = self.slot(var) {
            *mask = u64::MAX;
        }
    }

    /// Walks an expression in Cedar's JSON form (EST).
    fn walk(&mut self, expr: &Value) {
        match expr {
            Value::Array(items) => items.iter().for_each(|item| self.walk(item)),
            Value::Object(map) => {
                // A literal holds no variable; a record literal's keys are data, not operators.
                if map.contains_key("Value") {
                    return;
                }
                if let Some(record) = map.get("Record") {
                    if let Some(fields) = record.as_object() {
                        fields.values().for_each(|v| self.walk(v));
                    } else {
                        self.walk(record);
                    }
                    return;
                }
                if let Some(var) = map.get("Var").and_then(Value::as_str) {
                    self.read_all(var);
                    return;
                }
                for op in [".", "has"] {
                    let Some(access) = map.get(op) else { continue };
                    let var = access
                        .get("left")
                        .and_then(|l| l.get("Var"))
                        .and_then(Value::as_str);
                    let attr = access.get("attr").and_then(Value::as_str);
                    if let (Some(var), Some(attr)) = (var, attr) {
                        self.read(var, attr);
                        return;
                    }
                }
                map.values().for_each(|v| self.walk(v));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn reads(src: &str) -> AttributeReads {
        AttributeReads::of(&Policy::from_str(src).expect("policy parses"))
    }

    fn bit(names: &[(&str, AttrOf)], name: &str) -> u64 {
        1 << names
            .iter()
            .position(|(n, _)| *n == name)
            .expect("known name")
    }

    #[test]
    fn attribute_accesses_and_has_tests_are_read_by_name() {
        let r = reads(
            r#"permit(principal, action, resource) when {
                context.purpose == "TREAT" && principal.roles.contains("nurse")
                && resource has fields && !(context has recipient_id)
            } unless { context.break_glass };"#,
        );
        assert_eq!(
            r.context,
            bit(CONTEXT, "purpose") | bit(CONTEXT, "recipient_id") | bit(CONTEXT, "break_glass")
        );
        assert_eq!(r.actor, bit(ACTOR, "roles"));
        assert_eq!(r.record, bit(RECORD, "fields"));
    }

    #[test]
    fn a_variable_used_whole_reads_everything_of_it() {
        let r = reads(
            r#"permit(principal, action, resource) when { context == {"purpose": "TREAT"} };"#,
        );
        assert_eq!(r.context, u64::MAX);
        assert_eq!((r.actor, r.record), (0, 0));
        let r = reads(
            r#"permit(principal, action, resource) when { (if true then principal else principal).kind == "x" };"#,
        );
        assert_eq!(r.actor, u64::MAX);
    }

    #[test]
    fn record_literal_keys_are_not_operators() {
        let r = reads(
            r#"permit(principal, action, resource) when { {".": context.purpose}["."] == "x" };"#,
        );
        assert_eq!(r.context, bit(CONTEXT, "purpose"));
        assert_eq!((r.actor, r.record), (0, 0));
    }

    #[test]
    fn no_condition_reads_nothing() {
        let r = reads("permit(principal, action, resource);");
        assert_eq!(r, AttributeReads::default());
        assert!(AttributeReads::reads(AttributeReads::ALL.context, 3));
        assert!(!AttributeReads::reads(0, 3));
    }
}
