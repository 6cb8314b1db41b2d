//! Blocks as ledger nodes send them (docs/contract.md §5), their hash, and the canonical JSON both use.
//! The governance crate's state machine applies them.

use crate::transaction::{Transaction, TransactionError};
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
    #[serde(deserialize_with = "crate::json::strict_values")]
    pub transactions: Vec<Value>,
}

// INVARIANT (json::Strict): a derived struct whose free-form values are read strictly.
impl crate::json::Strict for Block {}

impl Block {
    /// A block from JSON text; duplicate keys are refused at any depth ([`crate::json`]).
    pub fn from_json(text: &str) -> Result<Block, TransactionError> {
        if !text.trim_start().starts_with('{') {
            return Err(TransactionError::new(".", "a block must be a JSON object"));
        }
        Ok(crate::json::from_str(text)?)
    }

    /// A block from a JSON value read by [`crate::json`] (or built in code).
    pub fn from_value(value: Value) -> Result<Block, TransactionError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            TransactionError::new(field, e.into_inner().to_string())
        })
    }

    /// `sha256:` of `accord/block/v1`, a NUL, and the block's canonical JSON.
    pub fn hash(&self) -> String {
        let pieces: Vec<String> = self
            .transactions
            .iter()
            .map(crate::canonical::to_string)
            .collect();
        block_hash(self.height, self.previous.as_deref(), &pieces)
    }

    /// The block with its hash computed and its transactions parsed, both on every core.
    pub fn prepare(self) -> PreparedBlock {
        let (pieces, transactions) = prepare_each(self.transactions, Ok);
        PreparedBlock::assemble(self.height, self.previous, &pieces, transactions)
    }
}

/// A block whose hash is computed and whose transactions are parsed: what the governance state
/// machine applies. Parsing a block's transactions and writing their canonical JSON are
/// independent per transaction, so they run on every core (see [`crate::parallel`]).
#[derive(Debug)]
pub struct PreparedBlock {
    pub height: u64,
    pub previous: Option<String>,
    /// [`Block::hash`] of the block as received.
    pub hash: String,
    /// The transactions in block order, or the first (in block order) that is not valid, its
    /// field prefixed with `transactions[i]`. Kept rather than returned at once so that the state
    /// machine can first say whether the block is a replay, out of order or in conflict.
    pub transactions: Result<Vec<Transaction>, TransactionError>,
}

impl PreparedBlock {
    /// A block whose transactions are still JSON text (each a valid JSON value), as a server
    /// reads them from a request body without building the values on one thread first.
    pub fn from_raw(
        height: u64,
        previous: Option<String>,
        transactions: Vec<&serde_json::value::RawValue>,
    ) -> PreparedBlock {
        let (pieces, transactions) = prepare_each(transactions, |raw| {
            Ok(crate::json::value_from_str(raw.get())?)
        });
        PreparedBlock::assemble(height, previous, &pieces, transactions)
    }

    fn assemble(
        height: u64,
        previous: Option<String>,
        pieces: &[String],
        transactions: Result<Vec<Transaction>, TransactionError>,
    ) -> PreparedBlock {
        PreparedBlock {
            height,
            hash: block_hash(height, previous.as_deref(), pieces),
            previous,
            transactions,
        }
    }
}

/// Below this many transactions per core a block is prepared on one thread.
const MIN_PER_THREAD: usize = 32;

/// Each transaction's canonical JSON and parse, on every core; the first invalid transaction in
/// block order is the error.
fn prepare_each<T: Send>(
    items: Vec<T>,
    value: impl Fn(T) -> Result<Value, TransactionError> + Sync,
) -> (Vec<String>, Result<Vec<Transaction>, TransactionError>) {
    let prepared = crate::parallel::map_each(items, MIN_PER_THREAD, |i, item| {
        let within = |e: TransactionError| e.within(&format!("transactions[{i}]"));
        match value(item) {
            Ok(value) => {
                let canonical = crate::canonical::to_string(&value);
                (canonical, Transaction::from_value(value).map_err(within))
            }
            // Not a JSON value at all: it has no canonical text, and the block is refused.
            Err(e) => (String::new(), Err(within(e))),
        }
    });
    let mut pieces = Vec::with_capacity(prepared.len());
    let mut transactions = Ok(Vec::with_capacity(prepared.len()));
    for (canonical, tx) in prepared {
        pieces.push(canonical);
        match (&mut transactions, tx) {
            (Ok(txs), Ok(tx)) => txs.push(tx),
            (Ok(_), Err(e)) => transactions = Err(e),
            (Err(_), _) => {}
        }
    }
    (pieces, transactions)
}

/// `sha256:` of `accord/block/v1`, a NUL, and the canonical JSON of the block with this height,
/// previous hash and transactions (each already canonical), written field by field in key order.
fn block_hash(height: u64, previous: Option<&str>, transactions: &[String]) -> String {
    let mut head = format!("{{\"height\":{height}");
    if let Some(previous) = previous {
        head.push_str(",\"previous\":");
        crate::canonical::write_str(previous, &mut head);
    }
    head.push_str(",\"transactions\":[");
    let mut hasher = Sha256::new();
    hasher.update(b"accord/block/v1\0");
    hasher.update(head.as_bytes());
    for (i, tx) in transactions.iter().enumerate() {
        if i > 0 {
            hasher.update(b",");
        }
        hasher.update(tx.as_bytes());
    }
    hasher.update(b"]}");
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// JSON with object keys sorted at every level and no insignificant white space.
pub use crate::canonical::to_string as canonical_json;

#[cfg(test)]
mod tests;
