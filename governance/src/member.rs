//! Consortium members: who may propose and vote, with what weight, under which key.

use crate::signature_scheme::{parse_ml_dsa_public_key, MlDsaVerifyingKey, SignatureScheme};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A member as written in genesis and in membership proposals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// `member/<name>`.
    pub id: String,
    /// The ed25519 public key, 32 bytes in standard base64.
    pub public_key: String,
    /// The ML-DSA-65 public key (FIPS 204, 1952 bytes) in standard base64: required under a
    /// hybrid genesis ([`SignatureScheme::Hybrid`]), allowed under ed25519. Written only when set,
    /// so members without one keep their digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_dsa_public_key: Option<String>,
    pub weight: u64,
    pub name: String,
}

impl Member {
    /// Checks the id, the weight, that the key is a valid, non-weak ed25519 point and that the
    /// ML-DSA-65 key, if any, decodes.
    pub fn check(&self) -> Result<(), String> {
        self.check_fields()?;
        self.key()?;
        self.ml_dsa_key().map(|_| ())
    }

    /// Refuses a member without an ML-DSA-65 key under a scheme that requires one.
    pub fn check_scheme(&self, scheme: SignatureScheme) -> Result<(), String> {
        if scheme == SignatureScheme::Hybrid && self.ml_dsa_public_key.is_none() {
            return Err(format!(
                "member `{}` has no `ml_dsa_public_key`: signature scheme `{scheme}` requires \
                 every member to have an ML-DSA-65 key",
                self.id
            ));
        }
        Ok(())
    }

    fn check_fields(&self) -> Result<(), String> {
        if !self.id.starts_with("member/") || self.id.len() == "member/".len() {
            return Err(format!(
                "member id `{}` must look like `member/<name>`",
                self.id
            ));
        }
        if self.weight == 0 {
            return Err(format!("member `{}`: weight must be at least 1", self.id));
        }
        Ok(())
    }

    /// The decoded key; refused when not 32 bytes of base64, not a curve point, or of small order.
    pub fn key(&self) -> Result<VerifyingKey, String> {
        parse_public_key(&self.public_key).map_err(|e| format!("member `{}`: {e}", self.id))
    }

    /// The decoded ML-DSA-65 key, if the member has one.
    pub fn ml_dsa_key(&self) -> Result<Option<MlDsaVerifyingKey>, String> {
        self.ml_dsa_public_key
            .as_deref()
            .map(parse_ml_dsa_public_key)
            .transpose()
            .map_err(|e| format!("member `{}`: {e}", self.id))
    }
}

/// Decodes a base64 ed25519 public key, refusing weak (small-order) keys.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| format!("public key is not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("public key has {} bytes, expected 32", b.len()))?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "public key is not a valid ed25519 point".to_owned())?;
    if key.is_weak() {
        return Err("public key has small order and is refused".into());
    }
    Ok(key)
}

/// The members at one moment, ordered by id. Proposals freeze a copy when they are created.
/// Keys are decoded once, when the membership is built (or read back), not per signature.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, Member>",
    into = "BTreeMap<String, Member>"
)]
pub struct Membership {
    members: BTreeMap<String, Member>,
    keys: BTreeMap<String, VerifyingKey>,
    /// Members' ML-DSA-65 keys; shared, as each is about 30 KB expanded and proposals copy the
    /// membership.
    ml_dsa_keys: BTreeMap<String, Arc<MlDsaVerifyingKey>>,
}

impl PartialEq for Membership {
    fn eq(&self, other: &Self) -> bool {
        // `keys` is derived from `members`.
        self.members == other.members
    }
}

impl Eq for Membership {}

impl TryFrom<BTreeMap<String, Member>> for Membership {
    type Error = String;
    fn try_from(members: BTreeMap<String, Member>) -> Result<Self, String> {
        Membership::new(members.into_values().collect())
    }
}

impl From<Membership> for BTreeMap<String, Member> {
    fn from(m: Membership) -> Self {
        m.members
    }
}

impl Membership {
    /// Builds a membership, refusing duplicates, invalid members and total weight overflow.
    pub fn new(members: Vec<Member>) -> Result<Membership, String> {
        let mut map = BTreeMap::new();
        let mut keys = BTreeMap::new();
        let mut ml_dsa_keys = BTreeMap::new();
        for m in members {
            m.check_fields()?;
            if map.contains_key(&m.id) {
                return Err(format!("member `{}` is listed twice", m.id));
            }
            keys.insert(m.id.clone(), m.key()?);
            if let Some(key) = m.ml_dsa_key()? {
                ml_dsa_keys.insert(m.id.clone(), Arc::new(key));
            }
            map.insert(m.id.clone(), m);
        }
        let membership = Membership {
            members: map,
            keys,
            ml_dsa_keys,
        };
        if membership.members.is_empty() {
            return Err("a consortium needs at least one member".into());
        }
        membership.checked_total()?;
        Ok(membership)
    }

    fn checked_total(&self) -> Result<u64, String> {
        self.members
            .values()
            .try_fold(0u64, |acc, m| acc.checked_add(m.weight))
            .ok_or_else(|| "total weight overflows 64 bits".to_owned())
    }

    /// The sum of all weights (checked not to overflow when the membership was built).
    pub fn total_weight(&self) -> u64 {
        self.members.values().map(|m| m.weight).sum()
    }

    pub fn get(&self, id: &str) -> Option<&Member> {
        self.members.get(id)
    }

    /// The decoded, checked key of member `id`.
    pub fn key(&self, id: &str) -> Option<&VerifyingKey> {
        self.keys.get(id)
    }

    /// The decoded ML-DSA-65 key of member `id`, if it has one.
    pub fn ml_dsa_key(&self, id: &str) -> Option<&MlDsaVerifyingKey> {
        self.ml_dsa_keys.get(id).map(Arc::as_ref)
    }

    /// Refuses a membership with a member lacking a key `scheme` requires.
    pub fn check_scheme(&self, scheme: SignatureScheme) -> Result<(), String> {
        self.members
            .values()
            .try_for_each(|m| m.check_scheme(scheme))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// This membership with `member` added, replaced or removed, re-checked as a whole.
    pub(crate) fn with(&self, change: MembershipChange<'_>) -> Result<Membership, String> {
        let mut members: Vec<Member> = self.members.values().cloned().collect();
        match change {
            MembershipChange::Add(m) => {
                if self.members.contains_key(&m.id) {
                    return Err(format!("`{}` is already a member", m.id));
                }
                members.push(m.clone());
            }
            MembershipChange::Remove(id) => {
                if !self.members.contains_key(id) {
                    return Err(format!("`{id}` is not a member"));
                }
                members.retain(|m| m.id != id);
            }
            MembershipChange::Update(update) => {
                let id = &update.member;
                let m = members
                    .iter_mut()
                    .find(|m| &m.id == id)
                    .ok_or_else(|| format!("`{id}` is not a member"))?;
                if let Some(w) = update.weight {
                    m.weight = w;
                }
                if let Some(k) = &update.public_key {
                    m.public_key = k.clone();
                }
                if let Some(k) = &update.ml_dsa_public_key {
                    m.ml_dsa_public_key = Some(k.clone());
                }
                if let Some(n) = &update.name {
                    m.name = n.clone();
                }
            }
        }
        Membership::new(members)
    }
}

/// A change to one member's weight, keys or display name; fields left out stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    /// The member id.
    pub member: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// A new or first ML-DSA-65 key (base64); a key cannot be removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_dsa_public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

pub(crate) enum MembershipChange<'a> {
    Add(&'a Member),
    Remove(&'a str),
    Update(&'a MemberUpdate),
}
