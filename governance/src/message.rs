//! Governance messages (docs/contract.md §4) and the bytes their signatures cover.
//!
//! Signed bytes: the ASCII domain `accord/governance/v1`, one NUL byte, then the message's
//! canonical JSON: UTF-8, object keys sorted by their UTF-8 bytes at every level, no insignificant
//! white space, strings escaped as serde_json writes them, integers only (a message holding a
//! floating-point number is refused). The message names its consortium and its `type`, so a
//! signature is valid for one consortium and one message only. docs/governance.md has the full
//! encoding and governance/tests/vectors/ has test vectors.

use crate::err::Refusal;
use crate::member::{Member, MemberUpdate};
use crate::params::VotingParams;
use crate::signature_scheme::ML_DSA_SIGNATURE_BYTES;
use accord_engine::ledger::canonical_json;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Domain separator of signed governance bytes.
pub const SIGNING_DOMAIN: &[u8] = b"accord/governance/v1\0";
const PROPOSAL_ID_DOMAIN: &[u8] = b"accord/proposal-id/v1\0";
const CONTENT_DOMAIN: &[u8] = b"accord/proposal-content/v1\0";

/// One governance message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    Proposal(ProposalMessage),
    Vote(VoteMessage),
    Cancel(CancelMessage),
    Veto(VetoMessage),
}

impl Message {
    pub fn consortium(&self) -> &str {
        match self {
            Message::Proposal(m) => &m.consortium,
            Message::Vote(m) => &m.consortium,
            Message::Cancel(m) => &m.consortium,
            Message::Veto(m) => &m.consortium,
        }
    }

    /// The member who signed it.
    pub fn signer(&self) -> &str {
        match self {
            Message::Proposal(m) => &m.proposer,
            Message::Vote(m) => &m.voter,
            Message::Cancel(m) => &m.proposer,
            Message::Veto(m) => &m.voter,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalMessage {
    pub consortium: String,
    pub proposer: String,
    /// What voters read first: one line, at most [`MAX_TITLE_BYTES`].
    pub title: String,
    /// Why, and what it changes, for voters: plain text or Markdown, at most
    /// [`MAX_DESCRIPTION_BYTES`]. Signed with the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub change: Change,
    /// The state the change was built on: the active policy-set version for a policy change
    /// (`activate_bundle`, `rollback`, `set_jurisdiction_parameters`), the voting rules' digest
    /// ([`VotingParams::digest`]) for `set_voting_params`; absent for membership changes. Refused
    /// when it is not what is in force at creation; aborted when another change of the same state
    /// activates first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Any text; lets a member re-propose identical content after a rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// What a proposal changes when it activates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// Activate the bundle given by its full content: logical path → UTF-8 text.
    ActivateBundle {
        bundle: BTreeMap<String, String>,
    },
    /// Activate again a policy set that was active before. `emergency: true` (the previous set
    /// only) is voted under the genesis's emergency rules: a higher threshold, a shorter delay.
    Rollback {
        version: String,
        #[serde(default, skip_serializing_if = "is_false")]
        emergency: bool,
    },
    /// Replace the voting parameters.
    SetVotingParams {
        params: VotingParams,
    },
    AddMember {
        member: Member,
    },
    RemoveMember {
        member: String,
    },
    /// Change a member's weight, key or display name (fields left out stay as they are).
    UpdateMember(MemberUpdate),
    /// Set parameters of one jurisdiction of the active bundle (others keep their values); the
    /// result is a new bundle, built when the proposal is made.
    SetJurisdictionParameters {
        jurisdiction: String,
        parameters: BTreeMap<String, Value>,
    },
}

impl Change {
    /// Whether activating it changes the policy set.
    pub fn is_policy_change(&self) -> bool {
        matches!(
            self,
            Change::ActivateBundle { .. }
                | Change::Rollback { .. }
                | Change::SetJurisdictionParameters { .. }
        )
    }

    /// Whether activating it changes who votes or how: proposals still voting under the old
    /// rules are then aborted.
    pub fn is_rules_change(&self) -> bool {
        matches!(
            self,
            Change::SetVotingParams { .. }
                | Change::AddMember { .. }
                | Change::RemoveMember { .. }
                | Change::UpdateMember(_)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    Yes,
    No,
    Abstain,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteMessage {
    pub consortium: String,
    /// The proposal id.
    pub proposal: String,
    /// The proposal's content hash: a vote counts only for the content the voter saw.
    pub content: String,
    pub voter: String,
    pub choice: Choice,
    /// Any text; lets a member return to an earlier choice with a message not seen before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelMessage {
    pub consortium: String,
    pub proposal: String,
    pub proposer: String,
}

/// A veto of a passed proposal during its activation delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VetoMessage {
    pub consortium: String,
    /// The proposal id.
    pub proposal: String,
    /// The proposal's content hash: a veto counts only against the content the member saw.
    pub content: String,
    pub voter: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The `governance` object of a governance transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedMessage {
    pub message: Value,
    /// The ed25519 signature over [`signed_bytes`], standard base64.
    pub signature: String,
    /// The ML-DSA-65 signature over the same bytes, standard base64: required when the consortium
    /// requires hybrid signatures ([`crate::signature_scheme`]), checked whenever present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_dsa_signature: Option<String>,
}

impl SignedMessage {
    /// The governance transaction (docs/contract.md, "Governance transactions") that carries this
    /// signed message in a block.
    pub fn into_transaction(self, id: &str, timestamp: &str) -> Value {
        serde_json::json!({ "id": id, "kind": "governance", "timestamp": timestamp,
                            "governance": self })
    }
}

/// The longest proposal title, in bytes of UTF-8.
pub const MAX_TITLE_BYTES: usize = 256;
/// The longest proposal description, in bytes of UTF-8.
pub const MAX_DESCRIPTION_BYTES: usize = 16 * 1024;

/// A title (one line) or a description (lines allowed): not empty, within `max` bytes, no control
/// characters but tabs, and line breaks where lines are allowed.
fn check_text(text: &str, field: &str, max: usize, lines: bool) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::malformed(field, "must not be empty"));
    }
    if text.len() > max {
        return Err(Refusal::malformed(
            field,
            format!("{} bytes, at most {max}", text.len()),
        ));
    }
    let allowed = |c: char| c == '\t' || (lines && (c == '\n' || c == '\r'));
    if let Some(c) = text.chars().find(|c| c.is_control() && !allowed(*c)) {
        return Err(Refusal::malformed(
            field,
            format!("control character U+{:04X} is not allowed", c as u32),
        ));
    }
    Ok(())
}

/// A signed message whose shape has been checked; its signature is checked against the
/// membership by the governance state.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub message: Message,
    /// The bytes the signature covers.
    pub signed_bytes: Vec<u8>,
    pub signature: Signature,
    /// The encoded ML-DSA-65 signature, if the message carries one: exactly
    /// [`ML_DSA_SIGNATURE_BYTES`] bytes (checked when parsed), verified by
    /// [`crate::signature_scheme::verify`].
    pub ml_dsa_signature: Option<Vec<u8>>,
}

impl Envelope {
    /// Parses the `governance` field of a governance transaction.
    pub fn from_value(governance: &Value) -> Result<Envelope, Refusal> {
        let signed: SignedMessage = serde_path_to_error::deserialize(governance.clone())
            .map_err(|e| Refusal::malformed(e.path().to_string(), e.inner().to_string()))?;
        let message: Message =
            serde_path_to_error::deserialize(signed.message.clone()).map_err(|e| {
                let path = e.path().to_string();
                // The whole message (`.`) is `message`; a field in it is `message.<path>`.
                let field = if path == "." {
                    "message".to_owned()
                } else {
                    format!("message.{path}")
                };
                Refusal::malformed(field, e.inner().to_string())
            })?;
        if let Message::Proposal(p) = &message {
            check_text(&p.title, "message.title", MAX_TITLE_BYTES, false)?;
            if let Some(description) = &p.description {
                check_text(
                    description,
                    "message.description",
                    MAX_DESCRIPTION_BYTES,
                    true,
                )?;
            }
        }
        let signed_bytes = signed_bytes(&signed.message)?;
        let raw = BASE64
            .decode(&signed.signature)
            .map_err(|e| Refusal::malformed("signature", format!("not base64: {e}")))?;
        let raw: [u8; 64] = raw.try_into().map_err(|b: Vec<u8>| {
            Refusal::malformed("signature", format!("{} bytes, expected 64", b.len()))
        })?;
        let ml_dsa_signature = match &signed.ml_dsa_signature {
            None => None,
            Some(text) => {
                let raw = BASE64.decode(text).map_err(|e| {
                    Refusal::malformed("ml_dsa_signature", format!("not base64: {e}"))
                })?;
                if raw.len() != ML_DSA_SIGNATURE_BYTES {
                    return Err(Refusal::malformed(
                        "ml_dsa_signature",
                        format!("{} bytes, expected {ML_DSA_SIGNATURE_BYTES}", raw.len()),
                    ));
                }
                Some(raw)
            }
        };
        Ok(Envelope {
            message,
            signed_bytes,
            signature: Signature::from_bytes(&raw),
            ml_dsa_signature,
        })
    }

    /// Strict verification (`verify_strict`): refuses small-order keys and non-canonical
    /// signatures, the edge cases on which ed25519 libraries disagree.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        key.verify_strict(&self.signed_bytes, &self.signature)
            .is_ok()
    }

    /// `sha256:` of the signed bytes: what "the same message" means for replay detection.
    pub fn digest(&self) -> String {
        sha256_tagged(b"", &self.signed_bytes)
    }
}

/// The bytes a signature covers: [`SIGNING_DOMAIN`] then the canonical JSON of `message`.
pub fn signed_bytes(message: &Value) -> Result<Vec<u8>, Refusal> {
    if let Some(path) = float_path(message, String::from("message")) {
        return Err(Refusal::malformed(
            path,
            "floating-point numbers are not allowed in governance messages",
        ));
    }
    let mut bytes = SIGNING_DOMAIN.to_vec();
    bytes.extend_from_slice(canonical_json(message).as_bytes());
    Ok(bytes)
}

fn float_path(value: &Value, at: String) -> Option<String> {
    match value {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => Some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| float_path(v, format!("{at}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| float_path(v, format!("{at}.{k}"))),
        _ => None,
    }
}

/// Signs `message` (a JSON object) with `key`; returns the `governance` object to put in a
/// governance transaction.
pub fn sign(message: &Value, key: &SigningKey) -> Result<SignedMessage, Refusal> {
    let bytes = signed_bytes(message)?;
    Ok(SignedMessage {
        message: message.clone(),
        signature: BASE64.encode(key.sign(&bytes).to_bytes()),
        ml_dsa_signature: None,
    })
}

/// A proposal's id: `sha256:` over a domain tag and the proposal's signed bytes.
pub fn proposal_id(signed_bytes: &[u8]) -> String {
    sha256_tagged(PROPOSAL_ID_DOMAIN, signed_bytes)
}

/// A proposal's content hash: `sha256:` over a domain tag and the canonical JSON of its change.
pub fn content_hash(change: &Change) -> String {
    let value = serde_json::to_value(change).unwrap_or(Value::Null);
    sha256_tagged(CONTENT_DOMAIN, canonical_json(&value).as_bytes())
}

fn sha256_tagged(domain: &[u8], bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(bytes);
    format!("sha256:{}", hex::encode(hasher.finalize()))
}
