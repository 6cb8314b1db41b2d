/// A consent transaction the registry refuses. The registry's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    #[error("consent `{consent}`: field `{field}`: {reason}")]
    Invalid {
        consent: String,
        field: String,
        reason: String,
    },
    #[error("consent `{consent}`: cannot revoke a consent the registry has never seen")]
    UnknownConsent { consent: String },
    #[error("consent `{consent}`: already revoked by transaction `{revoked_by}`; grant a new consent with a new id")]
    AlreadyRevoked { consent: String, revoked_by: String },
    #[error("consent `{consent}`: belongs to patient `{recorded}`, not `{given}`")]
    PatientMismatch {
        consent: String,
        recorded: String,
        given: String,
    },
}
