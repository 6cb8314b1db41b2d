//! `accord log verify --data DIR`: the decision log of a stopped server's data directory,
//! verified from its first entry to its last.

use crate::commands::{bad_input, print_line, Failure, FAILED};
use accord_server::decision_log::{verify_tree, Checkpoint, TREE};
use std::path::Path;
use std::process::ExitCode;

/// Prints the verification as `GET /v1/audit/verify?full=true` answers it; exits 0 when the chain
/// verifies, 1 when it is broken, 2 when the directory cannot be read (missing, not a data
/// directory, or in use by a running server). Nothing is written: the verified checkpoint stays.
pub fn verify(data: &Path) -> Result<ExitCode, Failure> {
    let shown = data.display();
    if !data.is_dir() {
        return Err(bad_input(format!(
            "data directory {shown}: not a directory"
        )));
    }
    // sled creates a database where there is none: refuse a directory that holds none.
    if !data.join("conf").is_file() || !data.join("db").is_file() {
        return Err(bad_input(format!(
            "data directory {shown}: no database here (expected the `conf` and `db` files of `accord serve --data`)"
        )));
    }
    let db = sled::Config::new().path(data).open().map_err(|e| {
        let reason = e.to_string();
        if reason.contains("lock") {
            bad_input(format!(
                "data directory {shown}: in use by another process (stop `accord serve` first): {reason}"
            ))
        } else {
            bad_input(format!("data directory {shown}: {reason}"))
        }
    })?;
    let has_log = db
        .tree_names()
        .iter()
        .any(|name| name.as_ref() == TREE.as_bytes());
    let tree = if has_log {
        Some(
            db.open_tree(TREE)
                .map_err(|e| bad_input(format!("data directory {shown}: tree `{TREE}`: {e}")))?,
        )
    } else {
        None
    };
    let verification = match &tree {
        Some(tree) => {
            verify_tree(tree, &Checkpoint::genesis(), &|| false)
                .map_err(|e| bad_input(format!("data directory {shown}: {e}")))?
                .finding
        }
        None => None,
    };
    let verification = verification.unwrap_or_else(empty_log);
    let text = serde_json::to_string(&verification)
        .map_err(|e| bad_input(format!("writing the verification: {e}")))?;
    print_line(&text)?;
    Ok(if verification.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED)
    })
}

/// The verification of a data directory that holds no log yet.
fn empty_log() -> accord_server::decision_log::Verification {
    accord_server::decision_log::Verification {
        ok: true,
        length: 0,
        head: Checkpoint::genesis().head,
        checked_from: 1,
        checked: 0,
        full: true,
        broken: None,
    }
}
