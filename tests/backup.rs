//! `accord backup` from a running node and from a stopped one, and `accord restore`.

use crate::common::{accord, allow_tx, stderr, stdout};
use crate::serve::{get, post, serve_in, stop};
use serde_json::{json, Value};

fn json_line(o: &std::process::Output) -> Value {
    accord_engine::json::value_from_str(stdout(o).trim()).expect("one JSON line")
}

#[test]
fn a_backup_of_a_running_node_restores_with_the_same_height_state_root_and_log() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let (child, addr) = serve_in(&crate::common::root(), &data, &[]);
    for height in 1..=2 {
        let mut tx = allow_tx();
        tx["id"] = json!(format!("b{height}"));
        let block = json!({ "height": height, "transactions": [tx] }).to_string();
        let (status, answer) = post(&addr, "/v1/blocks", &block);
        assert_eq!(status, 200, "{answer}");
    }
    // The node found through the address it recorded in its data directory.
    let out = work.path().join("node.bak");
    let o = accord(&[
        "backup",
        "--data",
        &data.display().to_string(),
        &out.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let made = json_line(&o);
    assert_eq!(made["height"], 2, "{made}");
    assert_eq!(made["decision_log_entries"], 2, "{made}");
    assert!(
        made["from"]
            .as_str()
            .is_some_and(|f| f.starts_with("node http://")),
        "{made}"
    );
    assert!(!work.path().join("node.bak.partial").exists());
    let (_, set) = get(&addr, "/v1/policy-set");
    let (_, verified) = get(&addr, "/v1/audit/verify?full=true");

    // A second backup to the same file is refused.
    let again = accord(&[
        "backup",
        "--data",
        &data.display().to_string(),
        &out.display().to_string(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));

    let restored_dir = work.path().join("restored");
    let o = accord(&[
        "restore",
        &out.display().to_string(),
        "--data",
        &restored_dir.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let restored = json_line(&o);
    assert_eq!(restored["height"], 2, "{restored}");
    assert_eq!(
        restored["state_root"], set["state_root"],
        "{restored} {set}"
    );
    assert_eq!(restored["decision_log"]["ok"], true, "{restored}");
    assert_eq!(
        restored["decision_log"]["head"], verified["head"],
        "{restored}"
    );
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !data.join("serving.json").exists(),
        "removed when the node stops"
    );
    let o = accord(&[
        "log",
        "verify",
        "--data",
        &restored_dir.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // A stopped node's directory is read directly.
    let offline = work.path().join("offline.bak");
    let o = accord(&[
        "backup",
        "--data",
        &data.display().to_string(),
        &offline.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(json_line(&o)["from"]
        .as_str()
        .is_some_and(|f| f.contains("not in use")));
    assert_eq!(json_line(&o)["height"], 2);
}

#[test]
fn a_restore_refuses_a_backup_made_under_another_genesis() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let (child, addr) = serve_in(&crate::common::root(), &data, &[]);
    let block = json!({ "height": 1, "transactions": [allow_tx()] }).to_string();
    assert_eq!(post(&addr, "/v1/blocks", &block).0, 200);
    let out = work.path().join("dev.bak");
    let o = accord(&[
        "backup",
        "--data",
        &data.display().to_string(),
        &out.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");

    let consortium = work.path().join("consortium");
    assert_eq!(
        accord(&["init", &consortium.display().to_string()])
            .status
            .code(),
        Some(0)
    );
    let target = work.path().join("restored");
    let o = accord(&[
        "restore",
        &out.display().to_string(),
        "--data",
        &target.display().to_string(),
        "--genesis",
        &consortium.join("genesis.yaml").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("made under genesis"), "{}", stderr(&o));
    assert!(!target.exists());
}
