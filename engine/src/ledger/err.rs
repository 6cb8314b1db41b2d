use crate::transaction::TransactionError;

/// A block the ledger refuses. The state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("block out of order: expected height {expected}, got {got}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("block {height} conflicts with the block already applied at that height")]
    Conflict { height: u64 },
    #[error("block {height}: field `previous` does not match the last block's hash {expected}")]
    PreviousMismatch { height: u64, expected: String },
    #[error("{0}")]
    Transaction(TransactionError),
}
