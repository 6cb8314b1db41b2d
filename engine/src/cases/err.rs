/// A test file that cannot be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{path}: field `{field}`: {reason}")]
    Field {
        path: String,
        field: String,
        reason: String,
    },
}
