//! The signature scheme a consortium requires (genesis `signature_scheme`) and the ML-DSA-65 half
//! of hybrid signatures.
//!
//! Under `ed25519` a message carries one ed25519 signature over its signed bytes
//! ([`crate::message::signed_bytes`]). Under `ed25519+ml-dsa-65` (hybrid) it also carries an
//! ML-DSA-65 (FIPS 204) signature over the same bytes, made with the context string
//! [`ML_DSA_CONTEXT`], and both must verify: a message stays unforgeable as long as either
//! algorithm does, so records kept for decades survive a break of ed25519 by a quantum computer.

use crate::err::Refusal;
use crate::message::{self, Envelope, SignedMessage};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use ml_dsa::{EncodedSignature, EncodedVerifyingKey, MlDsa65, Signature};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// A decoded ML-DSA-65 public key (its matrix expanded once, when the key is read).
pub type MlDsaVerifyingKey = ml_dsa::VerifyingKey<MlDsa65>;
/// An ML-DSA-65 signing key, expanded from its 32-byte seed.
pub type MlDsaSigningKey = ml_dsa::ExpandedSigningKey<MlDsa65>;

/// Bytes of an encoded ML-DSA-65 public key.
pub const ML_DSA_PUBLIC_KEY_BYTES: usize = 1952;
/// Bytes of an encoded ML-DSA-65 signature.
pub const ML_DSA_SIGNATURE_BYTES: usize = 3309;
/// The FIPS 204 context string of governance signatures: the signing domain without its NUL.
pub const ML_DSA_CONTEXT: &[u8] = b"accord/governance/v1";

/// Which signatures a message must carry; fixed by the genesis for the life of the consortium.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureScheme {
    /// One ed25519 signature. Members may register ML-DSA-65 keys; a message that carries an
    /// ML-DSA-65 signature has it checked too.
    #[default]
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ed25519 and ML-DSA-65 over the same signed bytes, both required. Every member must
    /// register an ML-DSA-65 key.
    #[serde(rename = "ed25519+ml-dsa-65")]
    Hybrid,
}

impl SignatureScheme {
    /// The name written in a genesis file.
    pub fn name(self) -> &'static str {
        match self {
            SignatureScheme::Ed25519 => "ed25519",
            SignatureScheme::Hybrid => "ed25519+ml-dsa-65",
        }
    }
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which signature of a message failed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFault {
    /// The ed25519 `signature` does not verify (strictly) under the signer's key.
    Ed25519,
    /// The consortium requires hybrid signatures and `ml_dsa_signature` is absent.
    MlDsaMissing,
    /// `ml_dsa_signature` does not verify under the signer's ML-DSA-65 key.
    MlDsa,
    /// `ml_dsa_signature` is given but the signer registered no ML-DSA-65 key.
    MlDsaKeyMissing,
}

impl SignatureFault {
    /// The refusal's words for `signer`.
    pub fn describe(self, signer: &str) -> String {
        match self {
            SignatureFault::Ed25519 => {
                format!("signature does not verify against `{signer}`'s key")
            }
            SignatureFault::MlDsaMissing => format!(
                "`ml_dsa_signature` is missing: the consortium requires hybrid signatures \
                 (ed25519 and ML-DSA-65), and `{signer}`'s message has an ed25519 signature only"
            ),
            SignatureFault::MlDsa => format!(
                "`ml_dsa_signature` does not verify against `{signer}`'s ML-DSA-65 key \
                 (`ml_dsa_public_key`)"
            ),
            SignatureFault::MlDsaKeyMissing => format!(
                "`ml_dsa_signature` is given but `{signer}` has no ML-DSA-65 key \
                 (`ml_dsa_public_key`) to check it against"
            ),
        }
    }
}

/// Decodes a base64 ML-DSA-65 public key ([`ML_DSA_PUBLIC_KEY_BYTES`] bytes). Every byte string
/// of that length is a key (FIPS 204 `pkDecode`); decoding expands its matrix.
pub fn parse_ml_dsa_public_key(text: &str) -> Result<MlDsaVerifyingKey, String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| format!("ML-DSA-65 public key is not base64: {e}"))?;
    let encoded = EncodedVerifyingKey::<MlDsa65>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "ML-DSA-65 public key has {} bytes, expected {ML_DSA_PUBLIC_KEY_BYTES}",
            bytes.len()
        )
    })?;
    Ok(MlDsaVerifyingKey::decode(&encoded))
}

/// The base64 of `key`'s public key, as a genesis or a membership change lists it.
pub fn ml_dsa_public_key_text(key: &MlDsaSigningKey) -> String {
    BASE64.encode(key.verifying_key().encode().as_slice())
}

/// The ML-DSA-65 signature of `signed_bytes` under [`ML_DSA_CONTEXT`]: FIPS 204 ML-DSA.Sign,
/// deterministic variant (the same key and bytes always give the same signature).
pub fn ml_dsa_sign(key: &MlDsaSigningKey, signed_bytes: &[u8]) -> Result<Vec<u8>, String> {
    key.sign_deterministic(signed_bytes, ML_DSA_CONTEXT)
        .map(|signature| signature.encode().to_vec())
        .map_err(|_| "ML-DSA-65 signing failed".to_owned())
}

/// Whether `signature` (encoded, any length) is a valid ML-DSA-65 signature of `signed_bytes`
/// under [`ML_DSA_CONTEXT`] and `key` (FIPS 204 ML-DSA.Verify).
pub fn ml_dsa_verify(key: &MlDsaVerifyingKey, signed_bytes: &[u8], signature: &[u8]) -> bool {
    let Ok(encoded) = EncodedSignature::<MlDsa65>::try_from(signature) else {
        return false;
    };
    let Some(signature) = Signature::<MlDsa65>::decode(&encoded) else {
        return false;
    };
    key.verify_with_context(signed_bytes, ML_DSA_CONTEXT, &signature)
}

/// Signs `message` with ed25519 and, when `ml_dsa` is given, with ML-DSA-65 too; returns the
/// `governance` object of a governance transaction.
pub fn sign(
    message: &Value,
    key: &SigningKey,
    ml_dsa: Option<&MlDsaSigningKey>,
) -> Result<SignedMessage, Refusal> {
    let mut signed = message::sign(message, key)?;
    if let Some(ml_dsa) = ml_dsa {
        let bytes = message::signed_bytes(message)?;
        let signature = ml_dsa_sign(ml_dsa, &bytes)
            .map_err(|reason| Refusal::malformed("ml_dsa_signature", reason))?;
        signed.ml_dsa_signature = Some(BASE64.encode(signature));
    }
    Ok(signed)
}

/// Checks `env`'s signatures under `scheme` against the signer's ed25519 key and ML-DSA-65 key
/// (if registered). The cheapest check comes first: a missing ML-DSA signature costs nothing, an
/// ed25519 verification less than an ML-DSA one.
pub fn verify(
    scheme: SignatureScheme,
    env: &Envelope,
    key: &VerifyingKey,
    ml_dsa_key: Option<&MlDsaVerifyingKey>,
) -> Result<(), SignatureFault> {
    if scheme == SignatureScheme::Hybrid && env.ml_dsa_signature.is_none() {
        return Err(SignatureFault::MlDsaMissing);
    }
    if !env.verify(key) {
        return Err(SignatureFault::Ed25519);
    }
    if let Some(signature) = &env.ml_dsa_signature {
        let ml_dsa_key = ml_dsa_key.ok_or(SignatureFault::MlDsaKeyMissing)?;
        if !ml_dsa_verify(ml_dsa_key, &env.signed_bytes, signature) {
            return Err(SignatureFault::MlDsa);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ml_key(byte: u8) -> MlDsaSigningKey {
        MlDsaSigningKey::from_seed(&[byte; 32].into())
    }

    #[test]
    fn a_public_key_reads_back_and_verifies_its_own_signatures() {
        let key = ml_key(1);
        let public = parse_ml_dsa_public_key(&ml_dsa_public_key_text(&key)).expect("decodes");
        let signature = ml_dsa_sign(&key, b"bytes").expect("signs");
        assert_eq!(signature.len(), ML_DSA_SIGNATURE_BYTES);
        assert_eq!(
            signature,
            ml_dsa_sign(&key, b"bytes").expect("signs"),
            "deterministic"
        );
        assert!(ml_dsa_verify(&public, b"bytes", &signature));
        assert!(!ml_dsa_verify(&public, b"other bytes", &signature));
        // The context string is part of what is signed: an empty context does not verify.
        let plain = key.sign_deterministic(b"bytes", b"").expect("signs");
        assert!(!ml_dsa_verify(&public, b"bytes", &plain.encode()));
        assert!(public.verify_with_context(b"bytes", b"", &plain));
    }

    #[test]
    fn malformed_keys_and_signatures_are_refused() {
        assert!(parse_ml_dsa_public_key("!!")
            .unwrap_err()
            .contains("not base64"));
        assert_eq!(
            parse_ml_dsa_public_key("AAAA").unwrap_err(),
            "ML-DSA-65 public key has 3 bytes, expected 1952"
        );
        let public = ml_key(1).verifying_key();
        assert!(!ml_dsa_verify(&public, b"bytes", &[0u8; 10]));
        // Right length, but the hint encoding is invalid (indices not increasing): no decode.
        assert!(!ml_dsa_verify(
            &public,
            b"bytes",
            &[0xffu8; ML_DSA_SIGNATURE_BYTES]
        ));
    }

    #[test]
    fn every_fault_names_the_signer_and_the_field() {
        for fault in [
            SignatureFault::MlDsaMissing,
            SignatureFault::MlDsa,
            SignatureFault::MlDsaKeyMissing,
        ] {
            let words = fault.describe("member/x");
            assert!(words.contains("`member/x`"), "{words}");
            assert!(words.contains("`ml_dsa_signature`"), "{words}");
        }
        assert_eq!(
            SignatureFault::Ed25519.describe("member/x"),
            "signature does not verify against `member/x`'s key"
        );
        assert_eq!(SignatureScheme::Hybrid.to_string(), "ed25519+ml-dsa-65");
        assert_eq!(SignatureScheme::default().to_string(), "ed25519");
    }
}
