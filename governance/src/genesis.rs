//! The genesis file: the consortium, its first members, its voting rules, the signatures its
//! messages must carry and its first bundle.

use crate::member::{Member, Membership};
use crate::params::VotingParams;
use crate::signature_scheme::SignatureScheme;
use accord_engine::ledger::canonical_json;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A genesis file that cannot be used: the file, the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: field `{field}`: {reason}")]
pub struct GenesisError {
    pub file: String,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisFile {
    consortium: String,
    members: Vec<Member>,
    voting: VotingParams,
    /// The signatures every message must carry; `ed25519` when absent.
    #[serde(default)]
    signature_scheme: SignatureScheme,
    /// The initial bundle directory, relative to the genesis file.
    bundle: PathBuf,
    /// The height of the chain's first block (as CometBFT's `initial_height`); 1 when absent.
    #[serde(default = "first_height")]
    initial_height: u64,
}

fn first_height() -> u64 {
    1
}

/// The highest `initial_height` a genesis may set: far below `u64::MAX`, so that no chain's
/// heights can wrap.
pub const MAX_INITIAL_HEIGHT: u64 = 1 << 62;

/// A checked genesis.
#[derive(Debug, Clone)]
pub struct Genesis {
    pub consortium: String,
    pub membership: Membership,
    pub voting: VotingParams,
    /// The signatures every message must carry, for the life of the consortium.
    pub signature_scheme: SignatureScheme,
    /// The initial bundle directory, resolved against the genesis file's directory.
    pub bundle_dir: PathBuf,
    /// The height the first block must have (1 unless the genesis says otherwise).
    pub initial_height: u64,
}

impl Genesis {
    pub fn load(path: &Path) -> Result<Genesis, GenesisError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| GenesisError {
            file: file.clone(),
            field: "(file)".into(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Genesis::parse(&bytes, &file, base)
    }

    /// Parses genesis YAML; `base` is the directory `bundle` is relative to.
    pub fn parse(bytes: &[u8], file: &str, base: &Path) -> Result<Genesis, GenesisError> {
        let err = |field: String, reason: String| GenesisError {
            file: file.to_owned(),
            field,
            reason,
        };
        accord_engine::yaml::check_unique_keys(bytes).map_err(|e| err(e.field, e.reason))?;
        let de = serde_yaml::Deserializer::from_slice(bytes);
        let raw: GenesisFile = serde_path_to_error::deserialize(de)
            .map_err(|e| err(e.path().to_string(), e.into_inner().to_string()))?;
        if raw.consortium.trim().is_empty() {
            return Err(err("consortium".into(), "must not be empty".into()));
        }
        raw.voting
            .check()
            .map_err(|(field, reason)| err(format!("voting.{field}"), reason))?;
        for (i, member) in raw.members.iter().enumerate() {
            member
                .check_scheme(raw.signature_scheme)
                .map_err(|reason| err(format!("members[{i}].ml_dsa_public_key"), reason))?;
        }
        let membership =
            Membership::new(raw.members).map_err(|reason| err("members".into(), reason))?;
        if raw.initial_height == 0 || raw.initial_height > MAX_INITIAL_HEIGHT {
            return Err(err(
                "initial_height".into(),
                format!("must be between 1 and {MAX_INITIAL_HEIGHT}"),
            ));
        }
        Ok(Genesis {
            consortium: raw.consortium,
            membership,
            voting: raw.voting,
            signature_scheme: raw.signature_scheme,
            bundle_dir: base.join(raw.bundle),
            initial_height: raw.initial_height,
        })
    }

    /// `sha256:` identifying this genesis with its bundle version: a node refuses to reopen a
    /// data directory made under another genesis.
    pub fn digest(&self, bundle_version: &str) -> String {
        let mut value = serde_json::json!({
            "consortium": self.consortium,
            "members": self.membership,
            "voting": self.voting,
            "bundle": bundle_version,
        });
        // Stated only when it is not the default, so that a genesis without it keeps its digest.
        if self.initial_height != 1 {
            value["initial_height"] = self.initial_height.into();
        }
        if self.signature_scheme != SignatureScheme::Ed25519 {
            value["signature_scheme"] = self.signature_scheme.name().into();
        }
        let mut hasher = Sha256::new();
        hasher.update(b"accord/genesis/v1\0");
        hasher.update(canonical_json(&value).as_bytes());
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}
