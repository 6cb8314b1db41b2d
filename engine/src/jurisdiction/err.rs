/// A jurisdiction file that cannot be loaded, or a transaction naming an unknown jurisdiction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JurisdictionError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: field `{field}`: {reason}")]
    Invalid {
        path: String,
        field: String,
        reason: String,
    },
    #[error("{path}: field `parent`: `{code}` names parent `{parent}`, which no jurisdiction file defines")]
    UnknownParent {
        path: String,
        code: String,
        parent: String,
    },
    #[error("{path}: field `parent`: parent cycle {cycle}")]
    ParentCycle { path: String, cycle: String },
    #[error(
        "field `{field}`: unknown jurisdiction `{code}`: the policy bundle has no rules for it"
    )]
    UnknownInTransaction { field: String, code: String },
}
