//! Errors of the decision log.

/// The decision log could not record or read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    #[error("decision log storage: {0}")]
    Storage(String),
    #[error("decision log entry {seq} is corrupt: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error("the decision log writer has stopped")]
    WriterGone,
    #[error("the data directory refuses writes: {0}")]
    Unavailable(String),
}

impl LogError {
    pub(super) fn storage(e: sled::Error) -> Self {
        LogError::Storage(e.to_string())
    }
}
