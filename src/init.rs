//! `accord init DIR --members N`: a new consortium in DIR — a genesis naming N members with
//! fresh keys, their key files (mode 0600), and the default bundle as its initial bundle.

use crate::commands::{bad_input, print_line, Failure};
use crate::governance::{random_seed, write_private};
use accord_governance::{Genesis, KeyFile};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

/// The most members `init` makes (a larger consortium is written by hand).
pub const MAX_MEMBERS: usize = 100;

#[derive(Serialize)]
struct GenesisYaml {
    consortium: String,
    members: Vec<MemberYaml>,
    voting: VotingYaml,
    bundle: &'static str,
}

#[derive(Serialize)]
struct MemberYaml {
    id: String,
    name: String,
    public_key: String,
    weight: u64,
}

#[derive(Serialize)]
struct VotingYaml {
    quorum: &'static str,
    threshold: &'static str,
    voting_period: u64,
    activation_delay: u64,
    max_open_proposals: u64,
}

pub fn init(dir: &Path, members: usize, consortium: Option<String>) -> Result<ExitCode, Failure> {
    let shown = dir.display();
    if members == 0 || members > MAX_MEMBERS {
        return Err(bad_input(format!(
            "--members: {members}: must be between 1 and {MAX_MEMBERS}"
        )));
    }
    let consortium = match consortium {
        Some(c) if c.trim().is_empty() => return Err(bad_input("--consortium: must not be empty")),
        Some(c) => c,
        None => dir
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .unwrap_or("consortium")
            .to_owned(),
    };
    let is_empty = |d: &Path| std::fs::read_dir(d).map(|mut e| e.next().is_none());
    if dir.exists() && !is_empty(dir).unwrap_or(false) {
        return Err(bad_input(format!(
            "{shown}: exists and is not an empty directory; init writes only into a new or empty one"
        )));
    }
    let io = |what: &str, e: std::io::Error| bad_input(format!("{shown}: {what}: {e}"));
    std::fs::create_dir_all(dir.join("keys")).map_err(|e| io("create", e))?;
    restrict_keys_dir(&dir.join("keys")).map_err(|e| io("keys/", e))?;
    let mut member_list = Vec::with_capacity(members);
    let mut key_files = Vec::with_capacity(members);
    for i in 1..=members {
        let id = format!("member/member-{i}");
        let key = KeyFile::new(SigningKey::from_bytes(&random_seed()?), Some(id.clone()));
        let path = dir.join("keys").join(format!("member-{i}.json"));
        write_private(&path, key.to_json().as_bytes(), false)
            .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        member_list.push(MemberYaml {
            id,
            name: format!("Member {i}"),
            public_key: key.public_key().to_owned(),
            weight: 1,
        });
        key_files.push(path.display().to_string());
    }
    let bundle_dir = accord_server::defaults::write_bundle(dir).map_err(|e| io("bundle", e))?;
    let genesis = GenesisYaml {
        consortium: consortium.clone(),
        members: member_list,
        voting: VotingYaml {
            quorum: "1/2",
            threshold: "1/2",
            voting_period: 10,
            activation_delay: 2,
            max_open_proposals: 3,
        },
        bundle: "policies",
    };
    let yaml =
        serde_yaml::to_string(&genesis).map_err(|e| bad_input(format!("{shown}: genesis: {e}")))?;
    let text = format!(
        "# Genesis of consortium `{consortium}` (written by `accord init`).\n\
         # Each member's secret key is in keys/: hand each file to its member and keep none on a\n\
         # node. Voting rules: docs/governance.md.\n{yaml}"
    );
    let genesis_path = dir.join("genesis.yaml");
    std::fs::write(&genesis_path, text).map_err(|e| io("genesis.yaml", e))?;
    // What was written must load as a node would load it.
    Genesis::load(&genesis_path).map_err(|e| bad_input(e.to_string()))?;
    let serve = format!(
        "accord serve --genesis {} --data {}",
        genesis_path.display(),
        dir.join("data").display()
    );
    print_line(&format!(
        "consortium `{consortium}`: genesis {}, {members} member key files in {} (mode 0600: \
         give each to its member), the default bundle in {}",
        genesis_path.display(),
        dir.join("keys").display(),
        bundle_dir.display()
    ))?;
    print_line("serve it with:")?;
    print_line(&format!("  {serve}"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
fn restrict_keys_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict_keys_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
