use std::fmt;

/// A transaction that does not parse or check: names the field (a dotted path) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TransactionError {
    /// Dotted path of the offending field, e.g. `actor.type`; `.` for the document itself.
    pub field: String,
    pub reason: String,
}

impl TransactionError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TransactionError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn from_path(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        // A problem with the document itself (an unknown top-level field) has an empty path.
        let field = match err.path().to_string() {
            path if path.is_empty() => ".".to_owned(),
            path => path,
        };
        let inner = err.into_inner();
        // serde_json appends " at line L column C"; keep it: it helps find the spot in a file.
        TransactionError::new(field, inner.to_string())
    }

    /// Prefixes the field with a parent path (e.g. the transaction's place in a block).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field == "." {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for TransactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

impl From<crate::json::JsonError> for TransactionError {
    fn from(e: crate::json::JsonError) -> Self {
        // The position helps find the spot in a file, as serde_json's own messages do.
        let reason = if e.line > 0 {
            format!("{} at line {} column {}", e.reason, e.line, e.column)
        } else {
            e.reason
        };
        TransactionError::new(e.field, reason)
    }
}
