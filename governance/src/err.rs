//! Why a governance message or a genesis file is refused. Every refusal leaves state untouched.

use crate::signature_scheme::SignatureFault;

/// A refused governance message. [`Refusal::code`] is stable: clients may match on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("field `{field}`: {reason}")]
    Malformed { field: String, reason: String },
    #[error("message is for consortium `{got}`, this is `{expected}`")]
    WrongConsortium { expected: String, got: String },
    #[error("`{signer}` is not a member{}", snapshot.as_ref().map(|p| format!(" of the membership proposal {p} was opened under")).unwrap_or_default())]
    NotAMember {
        signer: String,
        snapshot: Option<String>,
    },
    #[error("{}", fault.describe(signer))]
    BadSignature {
        signer: String,
        /// Which signature failed, and how.
        fault: SignatureFault,
    },
    #[error("this exact message (sha256 {digest}) was already applied")]
    Replayed { digest: String },
    #[error("proposal {id} already exists")]
    DuplicateProposal { id: String },
    #[error("no proposal {id}")]
    UnknownProposal { id: String },
    #[error("proposal {id} is {status}, not open for voting")]
    ProposalClosed { id: String, status: String },
    #[error("proposal {id} was cancelled")]
    ProposalCancelled { id: String },
    #[error("vote names content {got}, proposal {id} has content {expected}")]
    ContentMismatch {
        id: String,
        expected: String,
        got: String,
    },
    #[error("only the proposer `{proposer}` may cancel proposal {id}")]
    NotProposer { id: String, proposer: String },
    #[error("`{proposer}` already has {open} open proposals (cap {cap})")]
    ProposalCapReached {
        proposer: String,
        open: u32,
        cap: u32,
    },
    #[error("proposed bundle is invalid: {reason}")]
    InvalidBundle { reason: String },
    #[error("proposed bundle fails {failed} of its own test cases: {first}")]
    BundleTestsFailed { failed: usize, first: String },
    #[error("no earlier policy set with version {version}")]
    UnknownVersion { version: String },
    #[error("invalid change: field `{field}`: {reason}")]
    InvalidChange { field: String, reason: String },
    #[error("a change of the {state} must name the {state} it was built on in `base` (in force now: {current})")]
    MissingBase {
        state: &'static str,
        current: String,
    },
    #[error("the change was built on {state} {base}, but {current} is in force: rebuild it on {current}")]
    StaleBase {
        state: &'static str,
        base: String,
        current: String,
    },
    #[error("a membership change takes no `base`")]
    UnexpectedBase,
    #[error("proposal {id} cannot be vetoed: {reason}")]
    NotVetoable { id: String, reason: String },
    #[error("the bundle {version} ({size} bytes) would bring the bundles held by open proposals from {held} to {} bytes, over the budget `voting.max_open_bundle_bytes` ({budget} bytes)", held.saturating_add(*size))]
    BundleBudgetExceeded {
        /// The message field that brings the bundle.
        field: String,
        version: String,
        size: u64,
        /// Bytes the distinct bundles of open proposals hold already.
        held: u64,
        budget: u64,
    },
}

impl Refusal {
    /// The stable error code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed { .. } => "malformed",
            Refusal::WrongConsortium { .. } => "wrong_consortium",
            Refusal::NotAMember { .. } => "not_a_member",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::Replayed { .. } => "replayed",
            Refusal::DuplicateProposal { .. } => "duplicate_proposal",
            Refusal::UnknownProposal { .. } => "unknown_proposal",
            Refusal::ProposalClosed { .. } => "proposal_closed",
            Refusal::ProposalCancelled { .. } => "proposal_cancelled",
            Refusal::ContentMismatch { .. } => "content_mismatch",
            Refusal::NotProposer { .. } => "not_proposer",
            Refusal::ProposalCapReached { .. } => "proposal_cap_reached",
            Refusal::InvalidBundle { .. } => "invalid_bundle",
            Refusal::BundleTestsFailed { .. } => "bundle_tests_failed",
            Refusal::UnknownVersion { .. } => "unknown_version",
            Refusal::InvalidChange { .. } => "invalid_change",
            Refusal::MissingBase { .. } => "missing_base",
            Refusal::StaleBase { .. } => "stale_base",
            Refusal::UnexpectedBase => "unexpected_base",
            Refusal::NotVetoable { .. } => "not_vetoable",
            Refusal::BundleBudgetExceeded { .. } => "bundle_budget_exceeded",
        }
    }

    /// The path of the message field at fault, where one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            Refusal::Malformed { field, .. }
            | Refusal::InvalidChange { field, .. }
            | Refusal::BundleBudgetExceeded { field, .. } => Some(field),
            Refusal::MissingBase { .. } | Refusal::StaleBase { .. } | Refusal::UnexpectedBase => {
                Some("message.base")
            }
            _ => None,
        }
    }

    pub(crate) fn invalid_change(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Refusal::InvalidChange {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn malformed(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Refusal::Malformed {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
