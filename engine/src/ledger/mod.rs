//! Blocks as ledger nodes send them (CONTRACT §5), their hash, and the canonical JSON both use.
//! The governance crate's state machine applies them.

use crate::transaction::TransactionError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A block as a ledger node sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub height: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    pub transactions: Vec<Value>,
}

impl Block {
    pub fn from_value(value: Value) -> Result<Block, TransactionError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            TransactionError::new(field, e.into_inner().to_string())
        })
    }

    /// `sha256:` of `accord/block/v1`, a NUL, and the block's canonical JSON.
    pub fn hash(&self) -> String {
        // The canonical JSON of the block written field by field (keys in sorted order), so the
        // transactions are not copied into a new value first.
        let mut text = format!("{{\"height\":{}", self.height);
        if let Some(previous) = &self.previous {
            text.push_str(",\"previous\":");
            crate::canonical::write_str(previous, &mut text);
        }
        text.push_str(",\"transactions\":[");
        for (i, tx) in self.transactions.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            crate::canonical::write(tx, &mut text);
        }
        text.push_str("]}");
        let mut hasher = Sha256::new();
        hasher.update(b"accord/block/v1\0");
        hasher.update(text.as_bytes());
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

/// JSON with object keys sorted at every level and no insignificant white space.
pub use crate::canonical::to_string as canonical_json;

#[cfg(test)]
mod tests;
