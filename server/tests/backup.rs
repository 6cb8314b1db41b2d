//! `POST /v1/backup` on a running node, and its restore: the same height, state root and a
//! verifying log; refused under another genesis, damaged, or into a directory in use.

use super::*;
use accord_server::backup::{restore_into, BackupError};
use serde_json::json;

async fn block(server: &TestServer, height: u64, txs: Vec<Value>) {
    let (status, _, body) = answer(
        server
            .post_json(
                "/v1/blocks",
                &json!({ "height": height, "transactions": txs }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// A node with three blocks and some single evaluations; its backup's bytes.
async fn served_with_history(data: &Path) -> (TestServer, Vec<u8>) {
    let server = TestServer::start(data).await;
    for height in 1..=3 {
        let txs = vec![
            with_id(allow_tx(), &format!("b{height}-1")),
            with_id(deny_tx(), &format!("b{height}-2")),
        ];
        block(&server, height, txs).await;
        let (status, _, _) = answer(
            server
                .post_json("/v1/evaluate", &with_id(allow_tx(), &format!("e{height}")))
                .await,
        )
        .await;
        assert_eq!(status, 200);
    }
    let response = server
        .client
        .post(server.url("/v1/backup"))
        .send()
        .await
        .expect("backup");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let bytes = response.bytes().await.expect("backup body").to_vec();
    (server, bytes)
}

fn dev_genesis() -> accord_governance::Genesis {
    accord_server::defaults::dev_genesis().expect("dev genesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_running_node_restores_to_the_same_height_state_root_and_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, bytes) = served_with_history(&dir.path().join("data")).await;
    let (_, _, set) = answer(server.get("/v1/policy-set").await).await;
    let (_, _, verified) = answer(server.get("/v1/audit/verify?full=true").await).await;
    assert_eq!(set["applied_height"], 3, "{set}");
    assert_eq!(verified["length"], 9, "{verified}");

    let target = dir.path().join("restored");
    let restored =
        restore_into(bytes.as_slice(), &target, &dev_genesis(), bundle()).expect("restores");
    assert_eq!(restored.height, Some(3));
    assert_eq!(json!(restored.state_root), set["state_root"]);
    assert!(restored.decision_log.ok);
    assert_eq!(json!(restored.decision_log.length), verified["length"]);
    assert_eq!(json!(restored.decision_log.head), verified["head"]);
    assert!(!dir.path().join("restored.restoring").exists());

    // A node serving the restored directory answers as the original: same height, state root
    // and log, and it goes on from there.
    let again = TestServer::start(&target).await;
    let (_, _, set_again) = answer(again.get("/v1/policy-set").await).await;
    assert_eq!(set_again["applied_height"], set["applied_height"]);
    assert_eq!(set_again["state_root"], set["state_root"]);
    let (_, _, verified_again) = answer(again.get("/v1/audit/verify?full=true").await).await;
    assert_eq!(verified_again["ok"], true, "{verified_again}");
    assert_eq!(verified_again["head"], verified["head"]);
    block(&again, 4, vec![with_id(allow_tx(), "b4-1")]).await;
    let (_, _, after) = answer(again.get("/v1/audit/verify").await).await;
    assert_eq!(after["ok"], true, "{after}");
    assert_eq!(after["length"], 10, "{after}");
    again.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_a_verifying_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(&dir.path().join("data")).await;
    block(&server, 1, vec![with_id(allow_tx(), "b1-1")]).await;
    let load = {
        let (client, url) = (server.client.clone(), server.url("/v1/evaluate"));
        tokio::spawn(async move {
            for i in 0..300 {
                let body = with_id(allow_tx(), &format!("load-{i}")).to_string();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("evaluate");
                assert_eq!(response.status(), 200);
            }
        })
    };
    let mut backups = Vec::new();
    for _ in 0..3 {
        let response = server
            .client
            .post(server.url("/v1/backup"))
            .send()
            .await
            .expect("backup");
        backups.push(response.bytes().await.expect("body").to_vec());
    }
    load.await.expect("load");
    let mut lengths = Vec::new();
    for (i, bytes) in backups.iter().enumerate() {
        let target = dir.path().join(format!("restored-{i}"));
        let restored =
            restore_into(bytes.as_slice(), &target, &dev_genesis(), bundle()).expect("restores");
        assert_eq!(restored.height, Some(1));
        assert!(
            restored.decision_log.ok,
            "{:?}",
            restored.decision_log.broken
        );
        lengths.push(restored.decision_log.length);
    }
    assert!(lengths.windows(2).all(|w| w[0] <= w[1]), "{lengths:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_refuses_another_genesis_a_damaged_file_and_a_directory_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, bytes) = served_with_history(&dir.path().join("data")).await;
    server.stop().await;

    // Another consortium: same members, another name.
    let other = dir.path().join("other.yaml");
    let text = accord_server::defaults::DEV_GENESIS
        .replace("consortium: health-net-dev", "consortium: health-net-other");
    std::fs::write(&other, text).expect("write");
    let other = accord_governance::Genesis::load(&other).expect("genesis");
    let target = dir.path().join("restored");
    let e = restore_into(bytes.as_slice(), &target, &other, bundle()).expect_err("refused");
    assert!(matches!(e, BackupError::OtherGenesis(_)), "{e}");
    assert!(e.to_string().contains("health-net-other"), "{e}");
    assert!(!target.exists() && !dir.path().join("restored.restoring").exists());

    // A flipped byte in the middle, and a file cut short.
    let mut damaged = bytes.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    let e =
        restore_into(damaged.as_slice(), &target, &dev_genesis(), bundle()).expect_err("refused");
    assert!(matches!(e, BackupError::Format(_)), "{e}");
    let cut = &bytes[..bytes.len() - 40];
    let e = restore_into(cut, &target, &dev_genesis(), bundle()).expect_err("refused");
    assert!(matches!(e, BackupError::Format(_)), "{e}");
    let e =
        restore_into(&b"not a backup"[..], &target, &dev_genesis(), bundle()).expect_err("refused");
    assert!(e.to_string().contains("accord-backup/v1"), "{e}");
    assert!(!target.exists() && !dir.path().join("restored.restoring").exists());

    // The original data directory is not empty: nothing is written over it.
    let e = restore_into(
        bytes.as_slice(),
        &dir.path().join("data"),
        &dev_genesis(),
        bundle(),
    )
    .expect_err("refused");
    assert!(matches!(e, BackupError::Refused(_)), "{e}");
    assert!(e.to_string().contains("not empty"), "{e}");
}

#[tokio::test]
async fn the_backup_endpoint_requires_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), |c| {
        c.tokens = Some(accord_server::tokens::Tokens::single("s3cret"))
    })
    .await;
    let response = server
        .client
        .post(server.url("/v1/backup"))
        .send()
        .await
        .expect("request");
    problem(response, 401, "unauthorized").await;
    let response = server
        .client
        .post(server.url("/v1/backup"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    server.stop().await;
}
