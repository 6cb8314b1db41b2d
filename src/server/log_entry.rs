//! One decision-log entry: its canonical text, prepared in parallel and sealed by the writer, and
//! its check during verification. The format is described in [`crate::server::decision_log`].

use crate::server::decision_log::{Record, DOMAIN};
use accord_engine::canonical;
use accord_engine::decision::{Effect, RuleEffect};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Checks one stored entry against its key and the previous hash; returns its hash.
pub(crate) fn check_entry(seq: u64, prev: &str, value: &[u8]) -> Result<String, String> {
    let value: Value = serde_json::from_slice(value).map_err(|e| format!("not JSON: {e}"))?;
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
        let value = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
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
        canonical::write(&value(serde_json::to_value(&d.obligations)), &mut middle);
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
