//! Why the governance store could not write or read back the state.

/// A failure of the governance store. The messages name the stored key at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled could not open, read, write or flush a tree.
    #[error("{0}")]
    Database(#[from] sled::Error),
    /// A value could not be written as JSON.
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
    /// A stored value could not be read back.
    #[error("stored `{name}` is unreadable: {reason}")]
    Unreadable { name: String, reason: String },
    /// A stored bundle file is not valid base64.
    #[error("stored bundle file {path}: {source}")]
    BundleFile {
        path: String,
        source: base64::DecodeError,
    },
    /// The stored height names a block whose answer is not stored.
    #[error("the answer to the last block {height} is missing")]
    MissingAnswer { height: u64 },
    /// The stored parts do not make a governance state (e.g. an empty policy-set history).
    #[error("{0}")]
    Restore(String),
}
