//! A member's key file: JSON holding the 32-byte ed25519 secret seed and its public key (standard
//! base64), optionally the 32-byte ML-DSA-65 seed and its public key (`ml_dsa_seed`,
//! `ml_dsa_public_key`: a hybrid key), and optionally the member id the key signs for.
//! `accord keygen` writes it (mode 0600; `--hybrid` for a hybrid key); `accord sign`,
//! `accord propose`, `accord vote`, the tests and the benchmarks read it through [`KeyFile`].

use crate::err::Refusal;
use crate::message::SignedMessage;
use crate::signature_scheme::{self, ml_dsa_public_key_text, MlDsaSigningKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// A parsed, consistent key file.
///
/// INVARIANT: `public_key` is the base64 of `signing_key`'s verifying key, and so for the
/// ML-DSA-65 key; [`KeyFile::parse`] refuses a file where they differ.
#[derive(Clone)]
pub struct KeyFile {
    member: Option<String>,
    signing_key: SigningKey,
    public_key: String,
    ml_dsa: Option<MlDsaKey>,
}

/// The ML-DSA-65 half of a hybrid key.
#[derive(Clone)]
struct MlDsaKey {
    seed: [u8; 32],
    /// Boxed: the expanded key is about 60 KB.
    signing_key: Box<MlDsaSigningKey>,
    public_key: String,
}

/// The file's JSON form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member: Option<String>,
    public_key: String,
    secret_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ml_dsa_public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ml_dsa_seed: Option<String>,
}

// INVARIANT (json::Strict): a derived struct of strings and optional strings.
impl accord_engine::json::Strict for KeyFileJson {}

/// Why a key file is refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    #[error("not a key file: {0}")]
    Format(String),
    #[error("field `secret_key`: {0}")]
    SecretKey(String),
    #[error("field `public_key` does not match the secret key")]
    PublicKeyMismatch,
    #[error("field `ml_dsa_seed`: {0}")]
    MlDsaSeed(String),
    #[error("field `ml_dsa_public_key` does not match `ml_dsa_seed`")]
    MlDsaPublicKeyMismatch,
    #[error("field `{0}` is missing: `ml_dsa_seed` and `ml_dsa_public_key` come together")]
    MlDsaIncomplete(&'static str),
}

impl KeyFile {
    /// The key file of `signing_key`, naming `member` if given.
    pub fn new(signing_key: SigningKey, member: Option<String>) -> KeyFile {
        let public_key = BASE64.encode(signing_key.verifying_key().as_bytes());
        KeyFile {
            member,
            signing_key,
            public_key,
            ml_dsa: None,
        }
    }

    /// This key file with the ML-DSA-65 key of `seed` (FIPS 204 `ML-DSA.KeyGen_internal`): a
    /// hybrid key.
    pub fn with_ml_dsa_seed(mut self, seed: [u8; 32]) -> KeyFile {
        let signing_key = Box::new(MlDsaSigningKey::from_seed(&seed.into()));
        let public_key = ml_dsa_public_key_text(&signing_key);
        self.ml_dsa = Some(MlDsaKey {
            seed,
            signing_key,
            public_key,
        });
        self
    }

    /// Parses key-file JSON, checking the public key against the secret one.
    pub fn parse(text: &str) -> Result<KeyFile, KeyFileError> {
        let file: KeyFileJson =
            accord_engine::json::from_str(text).map_err(|e| KeyFileError::Format(e.to_string()))?;
        let seed = BASE64
            .decode(&file.secret_key)
            .map_err(|e| KeyFileError::SecretKey(format!("not base64: {e}")))?;
        let seed: [u8; 32] = seed.try_into().map_err(|b: Vec<u8>| {
            KeyFileError::SecretKey(format!("{} bytes, expected 32", b.len()))
        })?;
        let mut key = KeyFile::new(SigningKey::from_bytes(&seed), file.member);
        if key.public_key != file.public_key {
            return Err(KeyFileError::PublicKeyMismatch);
        }
        match (file.ml_dsa_seed, file.ml_dsa_public_key) {
            (None, None) => {}
            (Some(_), None) => return Err(KeyFileError::MlDsaIncomplete("ml_dsa_public_key")),
            (None, Some(_)) => return Err(KeyFileError::MlDsaIncomplete("ml_dsa_seed")),
            (Some(seed), Some(public_key)) => {
                let seed = BASE64
                    .decode(seed)
                    .map_err(|e| KeyFileError::MlDsaSeed(format!("not base64: {e}")))?;
                let seed: [u8; 32] = seed.try_into().map_err(|b: Vec<u8>| {
                    KeyFileError::MlDsaSeed(format!("{} bytes, expected 32", b.len()))
                })?;
                key = key.with_ml_dsa_seed(seed);
                if key.ml_dsa_public_key() != Some(public_key.as_str()) {
                    return Err(KeyFileError::MlDsaPublicKeyMismatch);
                }
            }
        }
        Ok(key)
    }

    /// Reads and parses the key file at `path`.
    pub fn read(path: &Path) -> Result<KeyFile, KeyFileError> {
        KeyFile::parse(&std::fs::read_to_string(path)?)
    }

    /// The member id the key signs for, if the file names one.
    pub fn member(&self) -> Option<&str> {
        self.member.as_deref()
    }

    /// The ed25519 signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// The public key, standard base64 (as a genesis lists it).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The ML-DSA-65 signing key of a hybrid key file.
    pub fn ml_dsa_signing_key(&self) -> Option<&MlDsaSigningKey> {
        self.ml_dsa.as_ref().map(|k| k.signing_key.as_ref())
    }

    /// The ML-DSA-65 public key of a hybrid key file, standard base64 (as a genesis lists it in
    /// `ml_dsa_public_key`).
    pub fn ml_dsa_public_key(&self) -> Option<&str> {
        self.ml_dsa.as_ref().map(|k| k.public_key.as_str())
    }

    /// Signs `message` with the ed25519 key and, in a hybrid key file, with the ML-DSA-65 key
    /// too: the `governance` object of a governance transaction.
    pub fn sign(&self, message: &Value) -> Result<SignedMessage, Refusal> {
        signature_scheme::sign(message, &self.signing_key, self.ml_dsa_signing_key())
    }

    /// The file's JSON text (pretty, newline-terminated).
    pub fn to_json(&self) -> String {
        let file = KeyFileJson {
            member: self.member.clone(),
            public_key: self.public_key.clone(),
            secret_key: BASE64.encode(self.signing_key.to_bytes()),
            ml_dsa_public_key: self.ml_dsa.as_ref().map(|k| k.public_key.clone()),
            ml_dsa_seed: self.ml_dsa.as_ref().map(|k| BASE64.encode(k.seed)),
        };
        serde_json::to_string_pretty(&file).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn a_written_key_file_reads_back_as_the_same_key() {
        let file = KeyFile::new(key(), Some("member/x".into()));
        let back = KeyFile::parse(&file.to_json()).expect("parses");
        assert_eq!(back.signing_key().to_bytes(), key().to_bytes());
        assert_eq!(back.member(), Some("member/x"));
        assert_eq!(back.public_key(), file.public_key());
        let unnamed = KeyFile::new(key(), None).to_json();
        assert!(!unnamed.contains("member"), "{unnamed}");
    }

    #[test]
    fn a_hybrid_key_file_reads_back_and_signs_with_both_keys() {
        let file = KeyFile::new(key(), Some("member/x".into())).with_ml_dsa_seed([9u8; 32]);
        let back = KeyFile::parse(&file.to_json()).expect("parses");
        assert_eq!(back.ml_dsa_public_key(), file.ml_dsa_public_key());
        assert_eq!(
            back.ml_dsa_public_key()
                .map(|k| BASE64.decode(k).expect("base64").len()),
            Some(crate::signature_scheme::ML_DSA_PUBLIC_KEY_BYTES)
        );
        let message = serde_json::json!({ "type": "cancel", "consortium": "c",
                                          "proposal": "p", "proposer": "member/x" });
        let signed = back.sign(&message).expect("signs");
        let env = crate::Envelope::from_value(&serde_json::to_value(&signed).expect("json"))
            .expect("parses");
        let ml_dsa = crate::signature_scheme::parse_ml_dsa_public_key(
            back.ml_dsa_public_key().expect("hybrid"),
        )
        .expect("decodes");
        let verdict = crate::signature_scheme::verify(
            crate::SignatureScheme::Hybrid,
            &env,
            &key().verifying_key(),
            Some(&ml_dsa),
        );
        assert_eq!(verdict, Ok(()));
        // An ed25519-only key file signs with ed25519 alone.
        let plain = KeyFile::new(key(), None).sign(&message).expect("signs");
        assert_eq!(plain.ml_dsa_signature, None);
        assert!(back.signing_key().to_bytes() == key().to_bytes());
    }

    #[test]
    fn every_ml_dsa_defect_is_named() {
        let hybrid = KeyFile::new(key(), None).with_ml_dsa_seed([9u8; 32]);
        let other = KeyFile::new(key(), None).with_ml_dsa_seed([10u8; 32]);
        let public = hybrid.public_key();
        let secret = BASE64.encode(key().to_bytes());
        let ml_seed = BASE64.encode([9u8; 32]);
        let ml_public = hybrid.ml_dsa_public_key().expect("hybrid");
        let file =
            |extra: &str| format!(r#"{{"public_key":"{public}","secret_key":"{secret}"{extra}}}"#);
        let cases = [
            (
                file(&format!(r#","ml_dsa_seed":"{ml_seed}""#)),
                "field `ml_dsa_public_key` is missing",
            ),
            (
                file(&format!(r#","ml_dsa_public_key":"{ml_public}""#)),
                "field `ml_dsa_seed` is missing",
            ),
            (
                file(&format!(
                    r#","ml_dsa_seed":"!!","ml_dsa_public_key":"{ml_public}""#
                )),
                "field `ml_dsa_seed`: not base64",
            ),
            (
                file(&format!(
                    r#","ml_dsa_seed":"AAAA","ml_dsa_public_key":"{ml_public}""#
                )),
                "field `ml_dsa_seed`: 3 bytes, expected 32",
            ),
            (
                file(&format!(
                    r#","ml_dsa_seed":"{ml_seed}","ml_dsa_public_key":"{}""#,
                    other.ml_dsa_public_key().expect("hybrid")
                )),
                "field `ml_dsa_public_key` does not match `ml_dsa_seed`",
            ),
        ];
        for (text, expected) in cases {
            let err = KeyFile::parse(&text).err().expect("refused").to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let good = file(&format!(
            r#","ml_dsa_seed":"{ml_seed}","ml_dsa_public_key":"{ml_public}""#
        ));
        assert!(KeyFile::parse(&good).is_ok());
    }

    #[test]
    fn every_defect_is_named() {
        let good = KeyFile::new(key(), None);
        let other = KeyFile::new(SigningKey::from_bytes(&[8u8; 32]), None);
        let secret = BASE64.encode(key().to_bytes());
        let cases = [
            ("[]".to_owned(), "not a key file"),
            (
                format!(
                    r#"{{"public_key":"{}","secret_key":"{secret}","x":1}}"#,
                    good.public_key()
                ),
                "unknown field `x`",
            ),
            (
                format!(
                    r#"{{"public_key":"{}","secret_key":"!!"}}"#,
                    good.public_key()
                ),
                "field `secret_key`: not base64",
            ),
            (
                format!(
                    r#"{{"public_key":"{}","secret_key":"AAAA"}}"#,
                    good.public_key()
                ),
                "field `secret_key`: 3 bytes, expected 32",
            ),
            (
                format!(
                    r#"{{"public_key":"{}","secret_key":"{secret}"}}"#,
                    other.public_key()
                ),
                "field `public_key` does not match the secret key",
            ),
            (
                format!(
                    r#"{{"public_key":"{}","public_key":"{}","secret_key":"{secret}"}}"#,
                    good.public_key(),
                    good.public_key()
                ),
                "duplicate",
            ),
        ];
        for (text, expected) in cases {
            let err = KeyFile::parse(&text).err().expect("refused").to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
