//! Transactions as CometBFT carries them: bytes, each the UTF-8 JSON text of one Accord
//! transaction (docs/contract.md §1), and the result codes an application answers with.
//!
//! A CometBFT block at height `h` is applied as the Accord block at height `h` whose transactions
//! are the block's well-formed transactions, in block order, with no `previous` (CometBFT chains
//! its blocks itself). A transaction that is not well-formed JSON of a valid Accord transaction is
//! not part of the Accord block: its result carries the code saying why.

use accord_engine::ledger::{Block, PreparedBlock};
use accord_engine::Transaction;
use accord_governance::machine::RefusedBy;
use bytes::Bytes;
use serde_json::{json, Value};

/// The codespace of every Accord result code.
pub const CODESPACE: &str = "accord";

/// The largest transaction read, in bytes (CometBFT's default mempool `max_tx_bytes`): a larger
/// one is malformed. A constant, not a setting: every node must refuse the same transactions.
pub const MAX_TX_BYTES: usize = 1024 * 1024;

/// Below this many transactions per core a block is read on one thread.
const MIN_PER_THREAD: usize = 32;

/// Why a transaction does not count: its code (never 0) and the log line CometBFT shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxFault {
    pub code: u32,
    /// JSON: `{"code": …, "message": …, "field": …}` (`field` where one is at fault).
    pub log: String,
}

/// Result codes (docs/contract.md §7). 0 is success.
pub mod code {
    /// Not UTF-8, not one JSON value, or larger than [`super::MAX_TX_BYTES`].
    pub const MALFORMED: u32 = 1;
    /// JSON, but not a valid Accord transaction (a missing field, a wrong type, an unknown kind).
    pub const INVALID: u32 = 2;
    /// A valid transaction the state refuses (a bad signature, not a member, a consent that does
    /// not apply, …): the refusal's own code is in the log.
    pub const REFUSED: u32 = 3;
    /// The node cannot check the transaction now (its storage refuses work); send it again.
    pub const UNAVAILABLE: u32 = 4;
}

impl TxFault {
    fn new(code: u32, name: &str, message: impl Into<String>, field: Option<&str>) -> Self {
        let mut log = json!({ "code": name, "message": message.into() });
        if let Some(field) = field {
            log["field"] = field.into();
        }
        TxFault {
            code,
            log: log.to_string(),
        }
    }

    /// The state refused the transaction.
    pub fn refused(refused: &RefusedBy) -> Self {
        TxFault::new(
            code::REFUSED,
            &refused.code,
            refused.message.clone(),
            refused.field.as_deref(),
        )
    }

    /// The node could not check it (`why`).
    pub fn unavailable(why: impl std::fmt::Display) -> Self {
        TxFault::new(code::UNAVAILABLE, "unavailable", why.to_string(), None)
    }
}

/// One transaction read from its bytes: its JSON value and what it is.
pub struct DecodedTx {
    pub value: Value,
    pub transaction: Transaction,
}

/// Reads one transaction: UTF-8 JSON text (duplicate keys refused, as everywhere in Accord) of a
/// valid Accord transaction.
pub fn decode(bytes: &[u8]) -> Result<DecodedTx, TxFault> {
    if bytes.len() > MAX_TX_BYTES {
        return Err(TxFault::new(
            code::MALFORMED,
            "transaction_too_large",
            format!(
                "{} bytes: a transaction is at most {MAX_TX_BYTES} bytes",
                bytes.len()
            ),
            None,
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        TxFault::new(
            code::MALFORMED,
            "malformed_transaction",
            format!("not UTF-8: {e}"),
            None,
        )
    })?;
    let value = accord_engine::json::value_from_str(text).map_err(|e| {
        TxFault::new(
            code::MALFORMED,
            "malformed_transaction",
            format!("not JSON: {e}"),
            None,
        )
    })?;
    let transaction = Transaction::from_value(value.clone()).map_err(|e| {
        TxFault::new(
            code::INVALID,
            "invalid_transaction",
            e.reason.clone(),
            Some(&e.field),
        )
    })?;
    Ok(DecodedTx { value, transaction })
}

/// A CometBFT block's transactions as an Accord block: where each transaction went.
pub struct ChainBlock {
    pub block: PreparedBlock,
    /// Per CometBFT transaction, in order: its index among the Accord block's results, or why
    /// it is not in the Accord block.
    pub slots: Vec<Result<usize, TxFault>>,
}

impl ChainBlock {
    /// The Accord block at `height` holding the well-formed ones of `txs` (each read on
    /// whichever core is free: a transaction's reading depends on it alone).
    pub fn new(height: u64, txs: &[Bytes]) -> Self {
        let decoded =
            accord_engine::parallel::map_each(txs.iter().collect(), MIN_PER_THREAD, |_, tx| {
                decode(tx).map(|decoded| decoded.value)
            });
        let mut values = Vec::with_capacity(txs.len());
        let slots = decoded
            .into_iter()
            .map(|read| {
                read.map(|value| {
                    values.push(value);
                    values.len() - 1
                })
            })
            .collect();
        let block = Block {
            height,
            previous: None,
            transactions: values,
        }
        .prepare();
        ChainBlock { block, slots }
    }

    /// Whether every transaction is well-formed.
    pub fn all_decoded(&self) -> bool {
        self.slots.iter().all(Result::is_ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(fault: &TxFault) -> Value {
        accord_engine::json::value_from_str(&fault.log).expect("the log is JSON")
    }

    #[test]
    fn bytes_that_are_not_utf8_or_json_are_malformed() {
        for bytes in [&b"\xff\xfe"[..], b"{\"kind\":", b"not json"] {
            let fault = decode(bytes).err().expect("refused");
            assert_eq!(fault.code, code::MALFORMED, "{bytes:?}");
            assert_eq!(log(&fault)["code"], "malformed_transaction");
        }
    }

    #[test]
    fn a_duplicate_key_is_malformed() {
        let fault = decode(br#"{"kind":"access","kind":"consent"}"#)
            .err()
            .expect("refused");
        assert_eq!(fault.code, code::MALFORMED);
    }

    #[test]
    fn json_that_is_no_transaction_is_invalid_and_names_the_field() {
        let fault = decode(br#"{"id":"t","kind":"payment"}"#)
            .err()
            .expect("refused");
        assert_eq!(fault.code, code::INVALID);
        let log = log(&fault);
        assert_eq!(log["code"], "invalid_transaction");
        assert_eq!(log["field"], "kind");
    }

    #[test]
    fn a_block_keeps_the_well_formed_transactions_in_order() {
        let consent = br#"{"id":"c-1","kind":"consent","timestamp":"2026-02-15T09:00:00Z","consent":{"id":"consent/c-9","status":"revoked","patient":"patient/d-4"}}"#;
        let txs = vec![
            Bytes::from_static(b"junk"),
            Bytes::from_static(consent),
            Bytes::from_static(consent),
        ];
        let chain = ChainBlock::new(5, &txs);
        assert!(!chain.all_decoded());
        assert_eq!(chain.block.height, 5);
        assert_eq!(chain.block.previous, None);
        assert_eq!(
            chain.block.transactions.as_ref().map(Vec::len).ok(),
            Some(2)
        );
        assert_eq!(chain.slots[0].as_ref().err().map(|f| f.code), Some(1));
        assert_eq!(chain.slots[1], Ok(0));
        assert_eq!(chain.slots[2], Ok(1));
    }
}
