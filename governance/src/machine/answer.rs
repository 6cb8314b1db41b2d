//! The answer to one block, as stored and as returned to the ledger node.

use accord_engine::Decision;
use serde::{Deserialize, Serialize};

/// What happened to one transaction of a block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TxResult {
    /// An access transaction's decision (CONTRACT §2).
    Decided(Decision),
    /// A consent or governance transaction that changed state.
    Applied { tx: String, applied: Applied },
    /// A well-formed transaction the state refused; nothing changed for it.
    Refused { tx: String, refused: RefusedBy },
}

/// What an applied consent or governance transaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// `consent`, `proposal`, `vote` or `cancel`.
    pub kind: String,
    /// The consent id or the proposal id.
    pub id: String,
    /// The proposal's status after a governance message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Why a transaction was refused: a stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedBy {
    pub code: String,
    pub message: String,
}

/// The answer to one block. Replaying the block returns exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockAnswer {
    pub height: u64,
    pub block_hash: String,
    /// Proposals that activated at the start of this block, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activated: Vec<String>,
    pub results: Vec<TxResult>,
    pub state_root: String,
}

impl BlockAnswer {
    pub fn decisions(&self) -> impl Iterator<Item = &Decision> {
        self.results.iter().filter_map(|r| match r {
            TxResult::Decided(d) => Some(d),
            _ => None,
        })
    }
}
