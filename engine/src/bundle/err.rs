use crate::cedar::CedarError;
use crate::jurisdiction::JurisdictionError;
use crate::rules::RuleError;

/// A bundle that cannot be loaded. Every variant names the file and, where it applies, the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("manifest.yaml: field `{field}`: {reason}")]
    Manifest { field: String, reason: String },
    #[error("{path}: file not found (named by manifest.yaml field `{field}`)")]
    MissingFile { path: String, field: String },
    #[error("{path}: {reason}")]
    Encoding { path: String, reason: String },
    #[error(transparent)]
    Jurisdiction(#[from] JurisdictionError),
    #[error(transparent)]
    Cedar(#[from] CedarError),
    #[error(transparent)]
    Rules(#[from] RuleError),
    #[error("manifest.yaml: field `{field}`: `{name}` is neither a regime nor a jurisdiction code of this bundle")]
    UnknownRegime { field: String, name: String },
}
