//! The governance commands: `keygen`, `sign`, `propose`, `vote`. Signing happens on the member's
//! machine; the output is a governance transaction ready to submit. What a message must name from
//! the node's state (a change's `base`, a vote's `content`) comes from a flag or from the node
//! (`--node`, read-only).

use crate::commands::{bad_input, print_line, read_input, Failure, FAILED};
use crate::node_client::NodeClient;
use accord_engine::cases::run_bundle_tests;
use accord_engine::{Bundle, BundleFiles};
use accord_governance::message::{content_hash, proposal_id, signed_bytes, Change, Envelope};
use accord_governance::signature_scheme;
use accord_governance::{KeyFile, SignatureScheme};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// Reads a member's key file, errors naming the file.
fn read_key(path: &Path) -> Result<KeyFile, Failure> {
    KeyFile::read(path).map_err(|e| bad_input(format!("{}: {e}", path.display())))
}

/// `accord keygen --out FILE [--member ID] [--hybrid]`: a new key pair (with `--hybrid`, an
/// ML-DSA-65 key pair too), written with mode 0600.
pub fn keygen(
    out: &Path,
    member: Option<String>,
    force: bool,
    hybrid: bool,
) -> Result<ExitCode, Failure> {
    let mut file = KeyFile::new(SigningKey::from_bytes(&random_seed()?), member);
    if hybrid {
        file = file.with_ml_dsa_seed(random_seed()?);
    }
    write_private(out, file.to_json().as_bytes(), force)
        .map_err(|e| bad_input(format!("{}: {e}", out.display())))?;
    let mut shown =
        json!({ "key_file": out.display().to_string(), "public_key": file.public_key() });
    if let Some(key) = file.ml_dsa_public_key() {
        shown["ml_dsa_public_key"] = json!(key);
    }
    print_line(&shown.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// 32 bytes from the operating system's random source: a key seed.
pub fn random_seed() -> Result<[u8; 32], Failure> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| bad_input(format!("no randomness from the operating system: {e}")))?;
    Ok(seed)
}

#[cfg(unix)]
pub fn write_private(path: &Path, bytes: &[u8], force: bool) -> std::io::Result<()> {
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
pub fn write_private(path: &Path, bytes: &[u8], force: bool) -> std::io::Result<()> {
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

/// Where the state a message must name comes from: given values first, else the node.
pub struct StateSource {
    /// `--base`: the state a change was built on.
    pub base: Option<String>,
    /// `--node`: a running node to read it from.
    pub node: Option<NodeClient>,
}

impl StateSource {
    /// The node to read `missing` from; without one, an error naming the `flags` that give it.
    fn node(&self, missing: &str, flags: &str) -> Result<&NodeClient, Failure> {
        self.node.as_ref().ok_or_else(|| {
            bad_input(format!(
                "{missing}: give {flags}, or --node URL to read it from the node"
            ))
        })
    }

    /// The `base` a proposal of change kind `kind` must name (`None` for membership changes).
    fn base_for(&self, kind: Option<&str>) -> Result<Option<String>, Failure> {
        let policy = matches!(
            kind,
            Some("activate_bundle" | "rollback" | "set_jurisdiction_parameters")
        );
        let voting = kind == Some("set_voting_params");
        if !policy && !voting {
            return Ok(None);
        }
        if let Some(base) = &self.base {
            return Ok(Some(base.clone()));
        }
        let what = if policy {
            "`base` (the active policy-set version)"
        } else {
            "`base` (the digest of the voting rules in force)"
        };
        let node = self.node(&format!("the proposal names no {what}"), "--base")?;
        Ok(Some(if policy {
            node.policy_version()?
        } else {
            node.voting_digest()?
        }))
    }
}

/// `accord sign MESSAGE --key KEY`: a governance transaction carrying the signed message. The
/// message may leave out `consortium` (given by `--consortium`), its signer field (taken from
/// the key file's `member`) and a proposal's `base` (given by `--base` or read from `--node`).
pub fn sign_message(
    message: &Path,
    key: &Path,
    consortium: Option<String>,
    state: &StateSource,
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
    let file = read_key(key)?;
    let Value::Object(map) = &mut value else {
        return Err(bad_input(format!("{shown}: a message must be an object")));
    };
    if let Some(c) = consortium {
        map.entry("consortium").or_insert(Value::String(c));
    }
    let signer_field = match map.get("type").and_then(Value::as_str) {
        Some("vote") | Some("veto") => "voter",
        Some("proposal") | Some("cancel") => "proposer",
        other => {
            return Err(bad_input(format!(
            "{shown}: field `type`: expected `proposal`, `vote`, `cancel` or `veto`, got {other:?}"
        )))
        }
    };
    if let Some(member) = file.member() {
        map.entry(signer_field)
            .or_insert(Value::String(member.to_owned()));
    }
    if signer_field == "proposer" && !map.contains_key("base") && map.contains_key("change") {
        let kind = map
            .get("change")
            .and_then(|c| c.get("kind"))
            .and_then(Value::as_str);
        if let Some(base) = state
            .base_for(kind)
            .map_err(|e| bad_input(format!("{shown}: {}", e.message)))?
        {
            map.insert("base".to_owned(), Value::String(base));
        }
    }
    emit(value, &file, tx, &shown.to_string())
}

/// `accord propose DIR --key KEY --consortium C --title T`: a proposal to activate the bundle
/// in `DIR`, refused here already if the bundle does not compile or fails its own tests.
pub fn propose(
    dir: &Path,
    key: &Path,
    consortium: String,
    title: String,
    state: &StateSource,
    tx: TxOptions,
) -> Result<ExitCode, Failure> {
    let file = read_key(key)?;
    let proposer = file.member().map(str::to_owned).ok_or_else(|| {
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
    let base = state.base_for(Some("activate_bundle"))?;
    let change = Change::ActivateBundle { bundle: content };
    let message = json!({
        "type": "proposal",
        "consortium": consortium,
        "proposer": proposer,
        "title": title,
        "base": base,
        "change": change,
    });
    eprintln!(
        "proposal of bundle {} {}: content {}",
        bundle.name(),
        bundle.version(),
        content_hash(&change)
    );
    emit(message, &file, tx, &dir.display().to_string())
}

/// What a vote names: the proposal's content hash, and the consortium when not given.
pub struct VoteOptions {
    /// The proposal id; with `proposal_file` it may be left out.
    pub proposal: Option<String>,
    pub choice: String,
    pub consortium: Option<String>,
    /// `--content`: the proposal's content hash.
    pub content: Option<String>,
    /// `--proposal-file`: the signed proposal transaction, to read the content hash from.
    pub proposal_file: Option<std::path::PathBuf>,
}

/// `accord vote ID --choice yes --key KEY`: a signed vote, its content hash given, read from the
/// signed proposal file, or read from the node.
pub fn vote(
    options: VoteOptions,
    key: &Path,
    state: &StateSource,
    tx: TxOptions,
) -> Result<ExitCode, Failure> {
    let file = read_key(key)?;
    let voter = file.member().map(str::to_owned).ok_or_else(|| {
        bad_input(format!(
            "{}: field `member`: the key file names no member",
            key.display()
        ))
    })?;
    let mut consortium = options.consortium.clone();
    let (proposal, content) = match (&options.proposal, &options.content, &options.proposal_file) {
        (Some(id), Some(content), _) => (id.clone(), content.clone()),
        (given, None, Some(path)) => {
            let (id, content, from_file) = proposal_of_file(path)?;
            if given.as_ref().is_some_and(|given| *given != id) {
                return Err(bad_input(format!(
                    "{}: this is proposal {id}, not {}",
                    path.display(),
                    given.as_deref().unwrap_or_default()
                )));
            }
            consortium = consortium.or(from_file);
            (id, content)
        }
        (Some(id), None, None) => {
            let content = state
                .node(
                    "the vote names no content hash",
                    "--content or --proposal-file",
                )?
                .proposal_content(id)?;
            (id.clone(), content)
        }
        (None, _, _) => {
            return Err(bad_input(
                "name the proposal: its id, or --proposal-file with the signed proposal",
            ))
        }
    };
    let consortium = match consortium {
        Some(c) => c,
        None => state
            .node("the vote names no consortium", "--consortium")?
            .consortium()?,
    };
    let message = json!({
        "type": "vote",
        "consortium": consortium,
        "proposal": proposal,
        "content": content,
        "voter": voter,
        "choice": options.choice,
    });
    emit(message, &file, tx, "vote")
}

/// A signed governance transaction file: the transaction and its envelope, decoded as a node
/// decodes it (what it would refuse as malformed is an error with its code and words).
pub fn read_signed_transaction(path: &Path) -> Result<(Value, Envelope), Failure> {
    let shown = path.display();
    let text = read_input(path)?;
    let tx: Value = accord_engine::json::value_from_str(&text)
        .map_err(|e| bad_input(format!("{shown}: {e}")))?;
    let governance = tx.get("governance").ok_or_else(|| {
        bad_input(format!(
            "{shown}: not a governance transaction (no `governance`)"
        ))
    })?;
    let envelope = Envelope::from_value(governance).map_err(|refusal| {
        bad_input(format!(
            "{shown}: a node would refuse this message ({}): {refusal}",
            refusal.code()
        ))
    })?;
    Ok((tx, envelope))
}

/// The id, content hash and consortium of the proposal in a signed governance transaction file.
fn proposal_of_file(path: &Path) -> Result<(String, String, Option<String>), Failure> {
    let (_, envelope) = read_signed_transaction(path)?;
    let accord_governance::Message::Proposal(proposal) = &envelope.message else {
        return Err(bad_input(format!(
            "{}: the message is not a proposal",
            path.display()
        )));
    };
    Ok((
        proposal_id(&envelope.signed_bytes),
        content_hash(&proposal.change),
        Some(proposal.consortium.clone()),
    ))
}

fn emit(message: Value, key: &KeyFile, tx: TxOptions, shown: &str) -> Result<ExitCode, Failure> {
    let bytes = signed_bytes(&message).map_err(|e| bad_input(format!("{shown}: {e}")))?;
    let signed = key
        .sign(&message)
        .map_err(|e| bad_input(format!("{shown}: {e}")))?;
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
    // A hybrid key file's message must carry both signatures, each verifying under the file's
    // own public keys.
    let (scheme, ml_dsa_key) = match key.ml_dsa_signing_key() {
        Some(k) => (SignatureScheme::Hybrid, Some(k.verifying_key())),
        None => (SignatureScheme::Ed25519, None),
    };
    signature_scheme::verify(
        scheme,
        &envelope,
        &key.signing_key().verifying_key(),
        ml_dsa_key.as_ref(),
    )
    .map_err(|fault| {
        bad_input(format!(
            "{shown}: the key's own public keys refuse its signatures: {}",
            fault.describe(key.member().unwrap_or("the key file"))
        ))
    })?;
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
    let transaction = signed.into_transaction(&id, &timestamp);
    print_line(&serde_json::to_string_pretty(&transaction).unwrap_or_default())?;
    Ok(ExitCode::SUCCESS)
}
