//! The governance commands: `keygen`, `sign`, `propose`. Signing happens offline, on the
//! member's machine; the output is a governance transaction ready to submit.

use crate::commands::{bad_input, print_line, read_input, Failure, FAILED};
use accord_engine::cases::run_bundle_tests;
use accord_engine::{Bundle, BundleFiles};
use accord_governance::message::{content_hash, proposal_id, sign, signed_bytes, Change, Envelope};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// A member's key file (JSON, mode 0600): the 32-byte secret seed and the public key, base64.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The member id this key signs for, filled into messages that leave the signer out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    pub public_key: String,
    pub secret_key: String,
}

// INVARIANT (json::Strict): a derived struct of strings.
impl accord_engine::json::Strict for KeyFile {}

impl KeyFile {
    fn load(path: &Path) -> Result<(KeyFile, SigningKey), Failure> {
        let shown = path.display();
        let text = read_input(path)?;
        let file: KeyFile = accord_engine::json::from_str(&text)
            .map_err(|e| bad_input(format!("{shown}: not a key file: {e}")))?;
        let seed = BASE64
            .decode(&file.secret_key)
            .map_err(|e| bad_input(format!("{shown}: field `secret_key`: not base64: {e}")))?;
        let seed: [u8; 32] = seed.try_into().map_err(|b: Vec<u8>| {
            bad_input(format!(
                "{shown}: field `secret_key`: {} bytes, expected 32",
                b.len()
            ))
        })?;
        let key = SigningKey::from_bytes(&seed);
        if BASE64.encode(key.verifying_key().as_bytes()) != file.public_key {
            return Err(bad_input(format!(
                "{shown}: field `public_key` does not match the secret key"
            )));
        }
        Ok((file, key))
    }
}

/// `accord keygen --out FILE [--member ID]`: a new key pair, written with mode 0600.
pub fn keygen(out: &Path, member: Option<String>, force: bool) -> Result<ExitCode, Failure> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| bad_input(format!("no randomness from the operating system: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let file = KeyFile {
        member,
        public_key: BASE64.encode(key.verifying_key().as_bytes()),
        secret_key: BASE64.encode(seed),
    };
    let text = serde_json::to_string_pretty(&file).unwrap_or_default() + "\n";
    write_private(out, text.as_bytes(), force)
        .map_err(|e| bad_input(format!("{}: {e}", out.display())))?;
    print_line(
        &json!({ "key_file": out.display().to_string(), "public_key": file.public_key })
            .to_string(),
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8], force: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut f = options.open(path)?;
    // An existing file keeps its mode when truncated: set it explicitly.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8], force: bool) -> std::io::Result<()> {
    if !force && path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "file exists",
        ));
    }
    std::fs::write(path, bytes)
}

/// Where a signed transaction goes and what it is called.
pub struct TxOptions {
    pub id: Option<String>,
    pub timestamp: Option<String>,
}

/// `accord sign MESSAGE --key KEY`: a governance transaction carrying the signed message. The
/// message may leave out `consortium` (given by `--consortium`) and its signer field (taken from
/// the key file's `member`).
pub fn sign_message(
    message: &Path,
    key: &Path,
    consortium: Option<String>,
    tx: TxOptions,
) -> Result<ExitCode, Failure> {
    let shown = message.display();
    let text = read_input(message)?;
    accord_engine::yaml::check_unique_keys(text.as_bytes())
        .map_err(|e| bad_input(format!("{shown}: field `{}`: {}", e.field, e.reason)))?;
    // Duplicate keys were refused just above.
    #[allow(clippy::disallowed_methods)]
    let mut value: Value = serde_yaml::from_str(&text)
        .map_err(|e| bad_input(format!("{shown}: not JSON or YAML: {e}")))?;
    let (file, signing) = KeyFile::load(key)?;
    let Value::Object(map) = &mut value else {
        return Err(bad_input(format!("{shown}: a message must be an object")));
    };
    if let Some(c) = consortium {
        map.entry("consortium").or_insert(Value::String(c));
    }
    let signer_field = match map.get("type").and_then(Value::as_str) {
        Some("vote") => "voter",
        Some("proposal") | Some("cancel") => "proposer",
        other => {
            return Err(bad_input(format!(
                "{shown}: field `type`: expected `proposal`, `vote` or `cancel`, got {other:?}"
            )))
        }
    };
    if let Some(member) = &file.member {
        map.entry(signer_field)
            .or_insert(Value::String(member.clone()));
    }
    emit(value, &signing, tx, &shown.to_string())
}

/// `accord propose DIR --key KEY --consortium C --title T`: a proposal to activate the bundle
/// in `DIR`, refused here already if the bundle does not compile or fails its own tests.
pub fn propose(
    dir: &Path,
    key: &Path,
    consortium: String,
    title: String,
    tx: TxOptions,
) -> Result<ExitCode, Failure> {
    let (file, signing) = KeyFile::load(key)?;
    let proposer = file.member.clone().ok_or_else(|| {
        bad_input(format!(
            "{}: field `member`: the key file names no member",
            key.display()
        ))
    })?;
    let files = BundleFiles::read_dir(dir)
        .map_err(|e| bad_input(format!("policy bundle {}: {e}", dir.display())))?;
    let bundle = Bundle::compile(files.clone()).map_err(|e| Failure {
        code: FAILED,
        message: format!("policy bundle {}: {e}", dir.display()),
    })?;
    let failed = run_bundle_tests(&bundle)
        .iter()
        .filter(|r| !r.passed())
        .count();
    if failed > 0 {
        return Err(Failure {
            code: FAILED,
            message: format!(
                "policy bundle {}: {failed} of its test cases fail (run `accord test {}`)",
                dir.display(),
                dir.display()
            ),
        });
    }
    let mut content = BTreeMap::new();
    for (path, bytes) in files.iter() {
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| bad_input(format!("{}/{path}: not UTF-8 text", dir.display())))?;
        content.insert(path.to_owned(), text);
    }
    let change = Change::ActivateBundle { bundle: content };
    let message = json!({
        "type": "proposal",
        "consortium": consortium,
        "proposer": proposer,
        "title": title,
        "change": change,
    });
    eprintln!(
        "proposal of bundle {} {}: content {}",
        bundle.name(),
        bundle.version(),
        content_hash(&change)
    );
    emit(message, &signing, tx, &dir.display().to_string())
}

fn emit(message: Value, key: &SigningKey, tx: TxOptions, shown: &str) -> Result<ExitCode, Failure> {
    let bytes = signed_bytes(&message).map_err(|e| bad_input(format!("{shown}: {e}")))?;
    let signed = sign(&message, key).map_err(|e| bad_input(format!("{shown}: {e}")))?;
    // The node's own decoding: what it would refuse as malformed is refused here, with the same
    // code and words, instead of being signed.
    let envelope = serde_json::to_value(&signed)
        .map_err(|e| bad_input(format!("{shown}: {e}")))
        .and_then(|value| {
            Envelope::from_value(&value).map_err(|refusal| {
                bad_input(format!(
                    "{shown}: a node would refuse this message ({}): {refusal}",
                    refusal.code()
                ))
            })
        })?;
    if !envelope.verify(&key.verifying_key()) {
        return Err(bad_input(format!(
            "{shown}: the signature does not verify under the key's own public key"
        )));
    }
    if message.get("type").and_then(Value::as_str) == Some("proposal") {
        eprintln!("proposal id {}", proposal_id(&bytes));
    }
    let id = tx.id.unwrap_or_else(|| {
        let digest = proposal_id(&bytes);
        format!("gov-{}", &digest["sha256:".len().."sha256:".len() + 16])
    });
    let timestamp = match tx.timestamp {
        Some(t) => t,
        None => time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .ok_or_else(|| bad_input("cannot format the current time"))?,
    };
    let transaction = json!({
        "id": id,
        "kind": "governance",
        "timestamp": timestamp,
        "governance": signed,
    });
    print_line(&serde_json::to_string_pretty(&transaction).unwrap_or_default())?;
    Ok(ExitCode::SUCCESS)
}
