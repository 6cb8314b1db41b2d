//! The state root: one hash over the registry (consents, representations, data use agreements),
//! governance and active-policy state after a block.

use crate::signature_scheme::SignatureScheme;
use crate::state::GovernanceState;
use accord_engine::ledger::canonical_json;
use sha2::{Digest, Sha256};

/// `sha256:` over the domain `accord/state/v3`, the active version, its activation height, the
/// registry digest (`ConsentRegistry::digest`: consents, representations and data use
/// agreements) and the governance digest. Equal on every node that applied the same blocks.
pub fn state_root(gov: &GovernanceState, consents: &[u8; 32]) -> String {
    let active = gov.active_activation();
    let mut hasher = Sha256::new();
    hasher.update(b"accord/state/v3\0");
    hasher.update(active.version.as_bytes());
    hasher.update([0u8]);
    hasher.update(active.activated_at_height.to_be_bytes());
    hasher.update(consents);
    hasher.update(governance_digest(gov));
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Digest of the governance state: canonical JSON of consortium, members, voting parameters,
/// the signature scheme when it is not `ed25519`, proposals (with votes, tallies and impact), the policy history and the proposal counter.
/// Bundles enter through their versions, which are content hashes.
pub fn governance_digest(gov: &GovernanceState) -> [u8; 32] {
    let mut value = serde_json::json!({
        "consortium": gov.consortium,
        "members": gov.membership,
        "params": gov.params,
        "proposals": gov.proposals,
        "history": gov.history,
        "next_seq": gov.next_seq,
    });
    // Stated only under a hybrid genesis, so that an ed25519 consortium keeps its state roots.
    if gov.signature_scheme != SignatureScheme::Ed25519 {
        value["signature_scheme"] = gov.signature_scheme.name().into();
    }
    let mut hasher = Sha256::new();
    hasher.update(b"accord/governance-state/v1\0");
    hasher.update(canonical_json(&value).as_bytes());
    hasher.finalize().into()
}
