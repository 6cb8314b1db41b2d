//! The answer to one block, as stored and as returned to the ledger node.

use accord_engine::Decision;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// What happened to one transaction of a block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TxResult {
    /// An access transaction's decision (docs/contract.md §2).
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
    /// The path of the field at fault (`message.change.params.quorum`), where one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The answer to one block. Replaying the block returns exactly this.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockAnswer {
    pub height: u64,
    pub block_hash: String,
    /// Proposals that activated at the start of this block, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activated: Vec<String>,
    pub results: Vec<TxResult>,
    pub state_root: String,
    /// The JSON text, written once: the store keeps it and the server sends it (a block's answer
    /// holds every decision of the block).
    #[serde(skip)]
    json: OnceLock<String>,
}

impl PartialEq for BlockAnswer {
    fn eq(&self, other: &Self) -> bool {
        // The cached text follows from the fields; whether it was written yet does not count.
        self.height == other.height
            && self.block_hash == other.block_hash
            && self.activated == other.activated
            && self.results == other.results
            && self.state_root == other.state_root
    }
}

impl BlockAnswer {
    pub fn new(
        height: u64,
        block_hash: String,
        activated: Vec<String>,
        results: Vec<TxResult>,
        state_root: String,
    ) -> Self {
        BlockAnswer {
            height,
            block_hash,
            activated,
            results,
            state_root,
            json: OnceLock::new(),
        }
    }

    pub fn decisions(&self) -> impl Iterator<Item = &Decision> {
        self.results.iter().filter_map(|r| match r {
            TxResult::Decided(d) => Some(d),
            _ => None,
        })
    }

    /// The answer as JSON text (serde's serialization of it, byte for byte), written on first
    /// use.
    pub fn to_json(&self) -> &str {
        self.json.get_or_init(|| self.write_json())
    }

    /// Serializes the results on every core (a block's answer holds one decision per access
    /// transaction) and writes the fields around them in serde's order.
    fn write_json(&self) -> String {
        let results =
            accord_engine::parallel::map_chunks(&self.results, RESULTS_PER_THREAD, |part| {
                part.iter().map(text).collect()
            });
        let size = results.iter().map(String::len).sum::<usize>() + results.len() + 256;
        let mut out = String::with_capacity(size);
        out.push_str("{\"height\":");
        out.push_str(&self.height.to_string());
        out.push_str(",\"block_hash\":");
        out.push_str(&text(&self.block_hash));
        if !self.activated.is_empty() {
            out.push_str(",\"activated\":");
            out.push_str(&text(&self.activated));
        }
        out.push_str(",\"results\":[");
        for (i, result) in results.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(result);
        }
        out.push_str("],\"state_root\":");
        out.push_str(&text(&self.state_root));
        out.push('}');
        out
    }
}

/// Below this many results per core an answer is serialized on one thread.
const RESULTS_PER_THREAD: usize = 64;

/// serde's JSON text of `value`; serializing strings, integers and plain structs cannot fail.
fn text<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
