use accord_engine::TransactionError;

/// A block the state machine refuses. The state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block out of order: expected height {expected}, got {got}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("block {height} conflicts with the block already applied at that height")]
    Conflict { height: u64 },
    #[error("block {height}: field `previous` does not match the last block's hash {expected}")]
    PreviousMismatch { height: u64, expected: String },
    #[error("{0}")]
    Transaction(TransactionError),
    #[error("storage: {0}")]
    Store(String),
    /// Single-node sequencing: the governance message was refused, so it took no height.
    #[error("{}: {}", refused.code, refused.message)]
    NotSequenced { refused: crate::answer::RefusedBy },
}

impl BlockError {
    /// The height the machine expects next, when the refusal is about order.
    pub fn expected_height(&self) -> Option<u64> {
        match self {
            BlockError::OutOfOrder { expected, .. } => Some(*expected),
            _ => None,
        }
    }
}

/// Why [`StateMachine::open`](super::StateMachine::open) cannot open a data directory's state.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store could not be opened or its state read back.
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// The state was made under another genesis (or another initial bundle).
    #[error(
        "the data directory was made under genesis {stored}, not {expected}: the genesis file or \
         its initial policy bundle changed since; use another data directory (or remove this one \
         to start over)"
    )]
    GenesisMismatch { stored: String, expected: String },
}
