//! `accord backup --data DIR OUT` and `accord restore BACKUP --data DIR`: a consistent copy of a
//! data directory, from a running node or a stopped one, and its restore (docs/server.md,
//! Backup and restore).

use crate::commands::{bad_input, print_line, Failure, FAILED};
use accord_server::backup::{
    restore_backup, restore_into, write_backup, BackupError, SERVING_FILE,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where `backup` reads the data from.
pub struct BackupSource {
    pub data: PathBuf,
    /// A running node to ask (`--node`); else the node that `data/serving.json` names when the
    /// directory is in use.
    pub node: Option<String>,
    pub token: Option<String>,
}

pub fn backup(source: &BackupSource, out: &Path) -> Result<ExitCode, Failure> {
    let shown = source.data.display();
    if out.exists() {
        return Err(bad_input(format!(
            "{}: exists; a backup is written only to a new file",
            out.display()
        )));
    }
    let partial = partial_path(out);
    let from = match &source.node {
        Some(url) => from_node(url, source.token.as_deref(), &partial)?,
        None => {
            if !source.data.join("conf").is_file() || !source.data.join("db").is_file() {
                return Err(bad_input(format!(
                    "data directory {shown}: no database here (expected the `conf` and `db` files of `accord serve --data`)"
                )));
            }
            match sled::Config::new().path(&source.data).open() {
                Ok(db) => {
                    let file = create(&partial)?;
                    write_backup(&db, None, std::io::BufWriter::new(file)).map_err(|e| {
                        let _ = std::fs::remove_file(&partial);
                        bad_input(format!("backup of {shown}: {e}"))
                    })?;
                    format!("data directory {shown} (not in use)")
                }
                Err(e) if e.to_string().contains("lock") => {
                    let url = serving_node(&source.data)?;
                    from_node(&url, source.token.as_deref(), &partial)?
                }
                Err(e) => return Err(bad_input(format!("data directory {shown}: {e}"))),
            }
        }
    };
    // The file is checked whole (digest included) before it takes its name.
    let checked = std::fs::File::open(&partial)
        .map_err(BackupError::from)
        .and_then(|f| restore_backup(f, None, |_| Ok(())));
    let header = match checked {
        Ok(header) => header,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(Failure {
                code: FAILED,
                message: format!("backup from {from}: the copy is unusable: {e}"),
            });
        }
    };
    std::fs::rename(&partial, out).map_err(|e| bad_input(format!("{}: {e}", out.display())))?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    print_line(
        &json!({
            "backup": out.display().to_string(),
            "from": from,
            "bytes": bytes,
            "genesis": header.genesis,
            "height": header.height,
            "decision_log_entries": header.decision_log_entries,
        })
        .to_string(),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `OUT.partial`, where the backup is written until it is checked.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

fn create(path: &Path) -> Result<std::fs::File, Failure> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| bad_input(format!("{}: {e}", path.display())))
}

/// The node serving `data`, from the address it recorded there when it started.
fn serving_node(data: &Path) -> Result<String, Failure> {
    let path = data.join(SERVING_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        bad_input(format!(
            "data directory {}: in use, and {} cannot be read ({e}): give the node with --node URL",
            data.display(),
            path.display()
        ))
    })?;
    let value = accord_engine::json::value_from_str(&text)
        .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    let url = value
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_input(format!("{}: no `url`", path.display())))?;
    Ok(url.to_owned())
}

/// `POST /v1/backup` on the node at `url`, its answer streamed to `partial`.
fn from_node(url: &str, token: Option<&str>, partial: &Path) -> Result<String, Failure> {
    let url = url.trim_end_matches('/');
    let endpoint = format!("{url}/v1/backup");
    // No overall timeout: a large directory takes as long as it takes to copy.
    let http = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .map_err(|e| bad_input(format!("{endpoint}: {e}")))?;
    let mut request = http.post(&endpoint);
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        request = request.bearer_auth(token);
    }
    let mut response = request
        .send()
        .map_err(|e| bad_input(format!("{endpoint}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().unwrap_or_default();
        let body = accord_engine::json::value_from_str(&text).unwrap_or(Value::Null);
        let detail = body
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or(text.as_str());
        return Err(bad_input(format!("{endpoint}: {status}: {detail}")));
    }
    let mut file = std::io::BufWriter::new(create(partial)?);
    let copied = response
        .copy_to(&mut file)
        .map_err(|e| e.to_string())
        .and_then(|_| std::io::Write::flush(&mut file).map_err(|e| e.to_string()));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(partial);
        return Err(Failure {
            code: FAILED,
            message: format!("{endpoint}: the backup was cut short: {e}"),
        });
    }
    Ok(format!("node {url}"))
}

/// `accord restore BACKUP --data DIR`: the node's genesis and initial bundle are resolved as
/// `accord serve` resolves them.
pub fn restore(
    backup: &Path,
    data: &Path,
    genesis: Option<PathBuf>,
    policies: Option<PathBuf>,
) -> Result<ExitCode, Failure> {
    let config = accord_server::ServeConfig::resolve(accord_server::ServeArgs {
        data: Some(data.to_path_buf()),
        genesis,
        policies,
        ..accord_server::ServeArgs::default()
    })
    .map_err(|e| bad_input(e.to_string()))?;
    let genesis =
        accord_server::state::load_genesis(&config).map_err(|e| bad_input(e.to_string()))?;
    let bundle =
        accord_server::state::load_bundle(&config).map_err(|e| bad_input(e.to_string()))?;
    let file =
        std::fs::File::open(backup).map_err(|e| bad_input(format!("{}: {e}", backup.display())))?;
    let restored =
        restore_into(file, data, &genesis, std::sync::Arc::new(bundle)).map_err(|e| {
            let code = match e {
                BackupError::OtherGenesis(_) | BackupError::Format(_) => FAILED,
                _ => crate::commands::BAD_INPUT,
            };
            Failure {
                code,
                message: format!("restore {} into {}: {e}", backup.display(), data.display()),
            }
        })?;
    print_line(
        &json!({
            "restored": data.display().to_string(),
            "height": restored.height,
            "state_root": restored.state_root,
            "decision_log": restored.decision_log,
        })
        .to_string(),
    )?;
    Ok(ExitCode::SUCCESS)
}
