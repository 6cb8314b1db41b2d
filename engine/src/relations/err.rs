/// A representation or agreement transaction the registry refuses. The state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelationError {
    #[error("{kind} `{id}`: field `{field}`: {reason}")]
    Invalid {
        /// `representation` or `agreement`.
        kind: &'static str,
        id: String,
        field: String,
        reason: String,
    },
    #[error("{kind} `{id}`: cannot end a {kind} the registry has never seen")]
    Unknown { kind: &'static str, id: String },
    #[error(
        "{kind} `{id}`: already ended by transaction `{ended_by}`; record a new one with a new id"
    )]
    AlreadyEnded {
        kind: &'static str,
        id: String,
        ended_by: String,
    },
    #[error("{kind} `{id}`: recorded for {recorded}, not {given}")]
    Mismatch {
        kind: &'static str,
        id: String,
        recorded: String,
        given: String,
    },
}
