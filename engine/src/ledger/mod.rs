//! Blocks (CONTRACT §5) applied strictly in height order against one bundle and consent state.
//!
//! A block is checked whole before anything changes (every transaction must parse); then its
//! transactions apply in order on a staged copy of the state, which replaces the state only when the
//! block is done. A replayed block (same height, same content) returns the stored answer; a gap or a
//! different block at a known height is refused. The governance layer builds its block state machine
//! on the same [`canonical_json`], block hash and staging rules.

mod err;

pub use err::LedgerError;

use crate::bundle::Bundle;
use crate::consent::{ConsentRegistry, InMemoryConsentRegistry};
use crate::decision::Decision;
use crate::transaction::{Transaction, TransactionError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

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
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut hasher = Sha256::new();
        hasher.update(b"accord/block/v1\0");
        hasher.update(canonical_json(&value).as_bytes());
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

/// JSON with object keys sorted at every level and no insignificant white space.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(k.as_str()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// What happened to one transaction of a block.
#[derive(Debug, Clone, PartialEq)]
pub enum TxOutcome {
    Decided(Decision),
    /// A consent (or governance) transaction that changed state.
    Applied {
        tx: String,
    },
    /// A well-formed transaction the state refused; state unchanged for it.
    Rejected {
        tx: String,
        reason: String,
    },
}

/// The answer to one block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockAnswer {
    pub height: u64,
    pub block_hash: String,
    pub state_root: String,
    pub outcomes: Vec<TxOutcome>,
}

/// The state after the last applied block, and the answer to every block applied so far (kept so
/// that a replay of any known height returns its answer; this ledger serves offline replays).
pub struct Ledger {
    bundle: Arc<Bundle>,
    activated_at_height: u64,
    consents: InMemoryConsentRegistry,
    answers: BTreeMap<u64, BlockAnswer>,
}

impl Ledger {
    pub fn new(bundle: Arc<Bundle>) -> Self {
        Ledger {
            bundle,
            activated_at_height: 0,
            consents: InMemoryConsentRegistry::new(),
            answers: BTreeMap::new(),
        }
    }

    pub fn consents(&self) -> &InMemoryConsentRegistry {
        &self.consents
    }

    pub fn height(&self) -> Option<u64> {
        self.answers.keys().next_back().copied()
    }

    /// `sha256:` over the active policy version, its activation height and the consent state.
    pub fn state_root(&self) -> String {
        state_root(
            self.bundle.version(),
            self.activated_at_height,
            &self.consents.digest(),
        )
    }

    /// Applies the next block. The first block may have any height; each later one must be the
    /// next height, and its `previous`, when given, must be the hash of the last block. A block at a
    /// height already applied returns that block's answer when it is the same block, and is refused
    /// as a conflict otherwise.
    pub fn apply(&mut self, block: Block) -> Result<BlockAnswer, LedgerError> {
        let hash = block.hash();
        if let Some(known) = self.answers.get(&block.height) {
            return if hash == known.block_hash {
                Ok(known.clone())
            } else {
                Err(LedgerError::Conflict {
                    height: block.height,
                })
            };
        }
        if let Some(last) = self.answers.values().next_back() {
            if block.height != last.height + 1 {
                return Err(LedgerError::OutOfOrder {
                    expected: last.height + 1,
                    got: block.height,
                });
            }
            if let Some(previous) = &block.previous {
                if previous != &last.block_hash {
                    return Err(LedgerError::PreviousMismatch {
                        height: block.height,
                        expected: last.block_hash.clone(),
                    });
                }
            }
        }
        let mut transactions = Vec::with_capacity(block.transactions.len());
        for (i, value) in block.transactions.iter().enumerate() {
            let tx = Transaction::from_value(value.clone())
                .map_err(|e| LedgerError::Transaction(e.within(&format!("transactions[{i}]"))))?;
            transactions.push(tx);
        }
        let mut staged = self.consents.clone();
        let mut outcomes = Vec::with_capacity(transactions.len());
        for tx in &transactions {
            outcomes.push(match tx {
                Transaction::Access(request) => Decided(self.bundle.decide(
                    request,
                    &staged,
                    self.activated_at_height,
                )),
                Transaction::Consent(c) => match staged.apply(c) {
                    Ok(()) => TxOutcome::Applied { tx: c.id.clone() },
                    Err(e) => TxOutcome::Rejected {
                        tx: c.id.clone(),
                        reason: e.to_string(),
                    },
                },
                Transaction::Governance(g) => TxOutcome::Rejected {
                    tx: g.id.clone(),
                    reason: "governance messages need a consortium genesis; this ledger has none"
                        .into(),
                },
            });
        }
        self.consents = staged;
        let answer = BlockAnswer {
            height: block.height,
            block_hash: hash,
            state_root: self.state_root(),
            outcomes,
        };
        self.answers.insert(answer.height, answer.clone());
        Ok(answer)
    }
}

use TxOutcome::Decided;

/// The state root over the parts every node must agree on.
pub fn state_root(policy_version: &str, activated_at_height: u64, consents: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"accord/state/v1\0");
    hasher.update(policy_version.as_bytes());
    hasher.update([0u8]);
    hasher.update(activated_at_height.to_be_bytes());
    hasher.update(consents);
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests;
