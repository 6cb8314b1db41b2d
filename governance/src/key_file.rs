//! A member's key file: JSON holding the 32-byte ed25519 secret seed and its public key (standard
//! base64), and optionally the member id the key signs for. `accord keygen` writes it (mode 0600);
//! `accord sign`, `accord propose`, the tests and the benchmarks read it through [`KeyFile`].

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A parsed, consistent key file.
///
/// INVARIANT: `public_key` is the base64 of `signing_key`'s verifying key; [`KeyFile::parse`]
/// refuses a file where they differ.
#[derive(Clone)]
pub struct KeyFile {
    member: Option<String>,
    signing_key: SigningKey,
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
}

// INVARIANT (json::Strict): a derived struct of strings.
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
}

impl KeyFile {
    /// The key file of `signing_key`, naming `member` if given.
    pub fn new(signing_key: SigningKey, member: Option<String>) -> KeyFile {
        let public_key = BASE64.encode(signing_key.verifying_key().as_bytes());
        KeyFile {
            member,
            signing_key,
            public_key,
        }
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
        let key = KeyFile::new(SigningKey::from_bytes(&seed), file.member);
        if key.public_key != file.public_key {
            return Err(KeyFileError::PublicKeyMismatch);
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

    /// The file's JSON text (pretty, newline-terminated).
    pub fn to_json(&self) -> String {
        let file = KeyFileJson {
            member: self.member.clone(),
            public_key: self.public_key.clone(),
            secret_key: BASE64.encode(self.signing_key.to_bytes()),
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
