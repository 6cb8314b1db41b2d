//! One decision-log entry: the record it is made from, its canonical text, prepared in parallel
//! and sealed by the writer, and its check during verification. The format is described in
//! [`crate::decision_log`].

use accord_engine::canonical;
use accord_engine::decision::{Decision, Effect, Obligation, RuleEffect};
use accord_engine::AccessRequest;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Domain separator of entry hashes.
pub const DOMAIN: &[u8] = b"accord/decision-log/v1\0";

/// One decision to log, with the patient of the request it answers (the decision itself does
/// not name the patient).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub decision: &'a Decision,
    pub patient: Option<&'a str>,
}

impl<'a> Record<'a> {
    pub fn new(decision: &'a Decision, request: &'a AccessRequest) -> Self {
        Record {
            decision,
            patient: request.patient_id(),
        }
    }
}

/// Checks one stored entry against its key and the previous hash; returns its hash.
pub(crate) fn check_entry(seq: u64, prev: &str, value: &[u8]) -> Result<String, String> {
    let value: Value =
        accord_engine::json::value_from_slice(value).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut map) = value else {
        return Err("not a JSON object".into());
    };
    let stored_hash = match map.remove("hash") {
        Some(Value::String(h)) => h,
        _ => return Err("no `hash` string".into()),
    };
    if map.get("seq").and_then(Value::as_u64) != Some(seq) {
        return Err(format!("`seq` is not {seq}, its place in the log"));
    }
    if map.get("prev").and_then(Value::as_str) != Some(prev) {
        return Err("`prev` does not match the previous entry's hash".into());
    }
    let computed = entry_hash(&canonical::to_string(&Value::Object(map)));
    if computed != stored_hash {
        return Err(format!(
            "hash mismatch: stored {stored_hash}, computed {computed}"
        ));
    }
    Ok(computed)
}

fn entry_hash(unhashed: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(unhashed.as_bytes());
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// The canonical text of an entry, prepared without the chain head: the keys around `hash`,
/// `prev` and `seq` (which sort between them) are written in advance.
pub(crate) struct EntryParts {
    /// `{"errors":[...]`
    errors: String,
    /// `,"obligations":...,"outcome":...,"patient":...,"policy_version":...`
    middle: String,
    /// `,"reasons":[...]`
    reasons: String,
    /// `,"tx":"..."}`
    tail: String,
}

impl EntryParts {
    pub(crate) fn new(record: &Record<'_>) -> Self {
        let d = record.decision;
        let mut errors = String::from("{\"errors\":[");
        for (i, e) in d.errors.iter().enumerate() {
            if i > 0 {
                errors.push(',');
            }
            // Keys in canonical (sorted) order.
            errors.push_str("{\"message\":");
            canonical::write_str(&e.message, &mut errors);
            errors.push_str(",\"module\":");
            canonical::write_str(&e.module, &mut errors);
            errors.push('}');
        }
        errors.push(']');
        let mut middle = String::from(",\"obligations\":");
        write_obligations(&d.obligations, &mut middle);
        middle.push_str(",\"outcome\":");
        middle.push_str(match d.decision {
            Effect::Allow => "\"allow\"",
            Effect::Deny => "\"deny\"",
        });
        middle.push_str(",\"patient\":");
        match record.patient {
            Some(p) => canonical::write_str(p, &mut middle),
            None => middle.push_str("null"),
        }
        middle.push_str(",\"policy_version\":");
        canonical::write_str(&d.policy_set.version, &mut middle);
        let mut reasons = String::from(",\"reasons\":[");
        for (i, r) in d.reasons.iter().enumerate() {
            if i > 0 {
                reasons.push(',');
            }
            // Keys in canonical (sorted) order.
            reasons.push_str("{\"citation\":");
            canonical::write_str(&r.citation, &mut reasons);
            reasons.push_str(",\"effect\":");
            reasons.push_str(match r.effect {
                RuleEffect::Permit => "\"permit\"",
                RuleEffect::Deny => "\"deny\"",
            });
            reasons.push_str(",\"message\":");
            canonical::write_str(&r.message, &mut reasons);
            reasons.push_str(",\"module\":");
            canonical::write_str(&r.module, &mut reasons);
            reasons.push_str(",\"rule\":");
            canonical::write_str(&r.rule, &mut reasons);
            reasons.push('}');
        }
        reasons.push(']');
        let mut tail = String::from(",\"tx\":");
        canonical::write_str(&d.tx, &mut tail);
        tail.push('}');
        EntryParts {
            errors,
            middle,
            reasons,
            tail,
        }
    }

    /// The stored text and the hash of the entry at `seq` after `prev`.
    pub(crate) fn seal(&self, seq: u64, prev: &str) -> (String, String) {
        let mut rest = String::with_capacity(
            self.middle.len() + self.reasons.len() + self.tail.len() + prev.len() + 40,
        );
        rest.push_str(&self.middle);
        rest.push_str(",\"prev\":");
        canonical::write_str(prev, &mut rest);
        rest.push_str(&self.reasons);
        rest.push_str(",\"seq\":");
        rest.push_str(&seq.to_string());
        rest.push_str(&self.tail);
        let mut hasher = Sha256::new();
        hasher.update(DOMAIN);
        hasher.update(self.errors.as_bytes());
        hasher.update(rest.as_bytes());
        let hash = format!("sha256:{}", hex::encode(hasher.finalize()));
        let mut stored = String::with_capacity(self.errors.len() + rest.len() + 90);
        stored.push_str(&self.errors);
        stored.push_str(",\"hash\":");
        canonical::write_str(&hash, &mut stored);
        stored.push_str(&rest);
        (stored, hash)
    }
}

/// The canonical text of the decision's obligations, as [`canonical::write`] gives it for their
/// JSON (`details` flattened beside the four named fields, a detail of the same name replacing
/// the field as it does in a JSON object), without building that JSON first.
fn write_obligations(obligations: &[Obligation], out: &mut String) {
    enum Field<'a> {
        Text(&'a str),
        Json(&'a Value),
    }
    out.push('[');
    for (i, o) in obligations.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // `String`'s order is its UTF-8 bytes', the canonical key order.
        let mut fields: BTreeMap<&str, Field<'_>> = BTreeMap::new();
        fields.insert("citation", Field::Text(&o.citation));
        fields.insert("kind", Field::Text(&o.kind));
        fields.insert("module", Field::Text(&o.module));
        fields.insert("rule", Field::Text(&o.rule));
        for (key, value) in &o.details {
            fields.insert(key, Field::Json(value));
        }
        out.push('{');
        for (j, (key, field)) in fields.into_iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            canonical::write_str(key, out);
            out.push(':');
            match field {
                Field::Text(text) => canonical::write_str(text, out),
                Field::Json(value) => canonical::write(value, out),
            }
        }
        out.push('}');
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn obligations_are_written_as_the_canonical_text_of_their_json() {
        let obligation = |details: Value| Obligation {
            kind: "audit".into(),
            citation: "45 CFR 164.312(b)".into(),
            module: "hipaa/obligations".into(),
            rule: "audit-\"access\"".into(),
            details: serde_json::from_value(details).expect("details map"),
        };
        for obligations in [
            vec![],
            vec![obligation(json!({}))],
            vec![
                obligation(
                    json!({ "due": "2026-01-02T00:00:00Z", "hours": 24, "z": [1, { "b": 2, "a": null }] }),
                ),
                // A detail named like a field replaces it, as in the JSON object.
                obligation(json!({ "kind": "other", "Ä": true, "a": 1.5 })),
            ],
        ] {
            let mut direct = String::new();
            write_obligations(&obligations, &mut direct);
            let json = serde_json::to_value(&obligations).expect("obligations serialize");
            assert_eq!(direct, canonical::to_string(&json));
        }
    }
}
