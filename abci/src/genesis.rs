//! CometBFT's genesis `app_state` against the Accord genesis this node runs.
//!
//! The Accord genesis (members, voting rules, signature scheme, initial height) and the initial
//! policy set are files every node has (`--genesis`, `--policies`); CometBFT's genesis names
//! them by digest, so that a node started with other files refuses the chain at `InitChain`
//! instead of computing other app hashes from its first block:
//!
//! ```json
//! "app_state": { "accord_genesis": "sha256:…" }
//! ```
//!
//! `accord abci --print-app-state` prints that object. An empty or `{}` `app_state` checks
//! nothing: the node trusts its files.

use serde_json::Value;

/// The key of the Accord genesis digest in `app_state`.
pub const KEY: &str = "accord_genesis";

/// The `app_state` naming the Accord genesis whose digest is `digest`.
pub fn app_state(digest: &str) -> Value {
    serde_json::json!({ KEY: digest })
}

/// Checks `app_state_bytes` (CometBFT's genesis `app_state`, as JSON) against `digest`.
pub fn check_app_state(app_state_bytes: &[u8], digest: &str) -> Result<(), AppStateError> {
    if app_state_bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value = accord_engine::json::value_from_slice(app_state_bytes)
        .map_err(|e| AppStateError::NotJson(e.to_string()))?;
    let Value::Object(fields) = &value else {
        return Err(AppStateError::Shape);
    };
    if let Some(unknown) = fields.keys().find(|k| k.as_str() != KEY) {
        return Err(AppStateError::UnknownField(unknown.clone()));
    }
    match fields.get(KEY) {
        None => Ok(()),
        Some(Value::String(named)) if named == digest => Ok(()),
        Some(Value::String(named)) => Err(AppStateError::Mismatch {
            chain: named.clone(),
            node: digest.to_owned(),
        }),
        Some(_) => Err(AppStateError::Shape),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppStateError {
    #[error("genesis app_state is not JSON: {0}")]
    NotJson(String),
    #[error("genesis app_state must be an object {{\"accord_genesis\": \"sha256:…\"}}")]
    Shape,
    #[error("genesis app_state: unknown field `{0}`, expected only `accord_genesis`")]
    UnknownField(String),
    #[error("genesis app_state names Accord genesis {chain}, this node runs {node} (check --genesis and --policies)")]
    Mismatch { chain: String, node: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:00ff";

    #[test]
    fn an_empty_app_state_or_the_same_digest_is_accepted() {
        for ok in [
            &b""[..],
            b"  ",
            b"{}",
            br#"{"accord_genesis":"sha256:00ff"}"#,
        ] {
            assert_eq!(check_app_state(ok, DIGEST), Ok(()), "{ok:?}");
        }
        let printed = app_state(DIGEST).to_string();
        assert_eq!(check_app_state(printed.as_bytes(), DIGEST), Ok(()));
    }

    #[test]
    fn another_digest_or_shape_is_refused() {
        assert_eq!(
            check_app_state(br#"{"accord_genesis":"sha256:aa"}"#, DIGEST),
            Err(AppStateError::Mismatch {
                chain: "sha256:aa".into(),
                node: DIGEST.into()
            })
        );
        assert_eq!(check_app_state(b"[1]", DIGEST), Err(AppStateError::Shape));
        assert_eq!(
            check_app_state(br#"{"accord_genesis":1}"#, DIGEST),
            Err(AppStateError::Shape)
        );
        assert_eq!(
            check_app_state(br#"{"balances":{}}"#, DIGEST),
            Err(AppStateError::UnknownField("balances".into()))
        );
        assert!(matches!(
            check_app_state(b"{", DIGEST),
            Err(AppStateError::NotJson(_))
        ));
    }
}
