//! `accord init` and the binary's built-in defaults: a new consortium with fresh keys serves from
//! any directory; without a genesis the built-in dev genesis serves, loudly.

use crate::common::{accord, root, stderr, stdout};
use crate::serve::{get, serve_in, stop};
use std::path::Path;
use std::process::Command;

/// The version of the repository's bundle, as `/readyz` names it.
fn repository_bundle_version() -> String {
    accord_engine::BundleFiles::read_dir(&root().join("policies"))
        .expect("repository bundle")
        .version()
}

/// Runs `accord` with `args` from `cwd`.
fn accord_in(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("accord runs")
}

#[test]
fn init_makes_a_consortium_with_fresh_keys_that_serves_from_anywhere() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("health-net");
    let o = accord(&["init", &dir.display().to_string(), "--members", "4"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let printed = stdout(&o);
    let command = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("accord serve "))
        .unwrap_or_else(|| panic!("no serve command in {printed}"));
    assert_eq!(
        command,
        format!(
            "--genesis {} --data {}",
            dir.join("genesis.yaml").display(),
            dir.join("data").display()
        )
    );
    // Four members with fresh keys, none of the dev genesis's; their key files are private.
    let genesis =
        accord_governance::Genesis::load(&dir.join("genesis.yaml")).expect("genesis loads");
    assert_eq!(genesis.consortium, "health-net");
    assert_eq!(genesis.membership.iter().count(), 4);
    assert!(!accord_server::defaults::is_dev_genesis(&genesis));
    for i in 1..=4 {
        let path = dir.join(format!("keys/member-{i}.json"));
        let key = accord_governance::KeyFile::parse(&std::fs::read_to_string(&path).expect("key"))
            .expect("key file");
        let member = genesis
            .membership
            .get(&format!("member/member-{i}"))
            .expect("member");
        assert_eq!(member.public_key, key.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
    }
    // Served from a directory that is not the repository with the printed command's flags
    // (`serve_in` gives `--data`).
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let genesis_path = dir.join("genesis.yaml").display().to_string();
    let (child, addr) = serve_in(
        elsewhere.path(),
        &dir.join("data"),
        &["--genesis", &genesis_path],
    );
    let (status, ready) = get(&addr, "/readyz");
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["dev_genesis"], false, "{ready}");
    assert!(ready.get("warning").is_none(), "{ready}");
    assert_eq!(ready["policy_set"]["version"], repository_bundle_version());
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("DEV GENESIS"), "{log}");
}

#[test]
fn init_refuses_a_bad_member_count_and_a_directory_in_use() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("c");
    for n in ["0", "101"] {
        let o = accord(&["init", &dir.display().to_string(), "--members", n]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("--members"), "{}", stderr(&o));
        assert!(!dir.exists(), "nothing written for --members {n}");
    }
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("genesis.yaml"), "mine").expect("write");
    let o = accord(&["init", &dir.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not an empty directory"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("genesis.yaml")).expect("read"),
        "mine"
    );
}

#[test]
fn without_a_genesis_the_built_in_dev_genesis_serves_with_a_warning() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let data = elsewhere.path().join("data");
    let (child, addr) = serve_in(elsewhere.path(), &data, &[]);
    let (status, ready) = get(&addr, "/readyz");
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["dev_genesis"], true, "{ready}");
    let warning = ready["warning"].as_str().expect("warning");
    assert!(warning.starts_with("DEV GENESIS"), "{warning}");
    // The built-in bundle is the repository's, file for file.
    assert_eq!(ready["policy_set"]["version"], repository_bundle_version());
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("DEV GENESIS"), "{log}");
}

#[test]
fn the_built_in_defaults_decide_and_replay_outside_the_repository() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let tx = root().join("examples/treatment-read.json");
    let o = accord_in(elsewhere.path(), &["check", &tx.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("\"decision\":\"allow\""),
        "{}",
        stdout(&o)
    );
    let blocks = root().join("examples/ledger.json");
    let outside = accord_in(elsewhere.path(), &["replay", &blocks.display().to_string()]);
    let inside = accord(&["replay", &blocks.display().to_string()]);
    assert_eq!(outside.status.code(), Some(0), "{}", stderr(&outside));
    assert_eq!(stdout(&outside), stdout(&inside));
    // Commands that read or write a bundle's files need a directory.
    for command in ["test", "fmt", "validate"] {
        let o = accord_in(elsewhere.path(), &[command]);
        assert_eq!(o.status.code(), Some(2), "{command}");
        assert!(
            stderr(&o).contains("accord init"),
            "{command}: {}",
            stderr(&o)
        );
    }
}
