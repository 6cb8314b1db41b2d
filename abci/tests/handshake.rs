//! `InitChain` and `Info`: the genesis check, the initial app hash, and what a restart reports
//! so that CometBFT's handshake replays exactly the missing blocks.

use super::*;
use accord_abci::app::app_hash;

#[tokio::test]
async fn init_chain_answers_the_genesis_state_root_and_info_starts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let info = app.info().await.unwrap();
    assert_eq!(info.last_block_height.value(), 0);
    assert!(info.last_block_app_hash.as_bytes().is_empty());
    assert_eq!(info.data, "accord");

    let opener = &app.state().opener;
    let digest = opener.genesis.digest(opener.bundle.version());
    let app_state = accord_abci::genesis::app_state(&digest).to_string();
    let init = app
        .init_chain(init_chain(app_state.as_bytes(), 1))
        .await
        .unwrap();
    let root = app.state().node().unwrap().read(|_, m| m.state_root());
    assert_eq!(init.app_hash, app_hash(&root).unwrap());
    assert_eq!(init.app_hash.as_bytes().len(), 32);
    assert!(init.validators.is_empty(), "CometBFT's validators stand");
}

#[tokio::test]
async fn init_chain_refuses_another_genesis_another_initial_height_or_a_used_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let other = app
        .init_chain(init_chain(br#"{"accord_genesis":"sha256:00"}"#, 1))
        .await
        .expect_err("another genesis");
    assert!(
        other.to_string().contains("names Accord genesis sha256:00"),
        "{other}"
    );
    let junk = app
        .init_chain(init_chain(br#"{"accounts":[]}"#, 1))
        .await
        .expect_err("an app_state of another application");
    assert!(
        junk.to_string().contains("unknown field `accounts`"),
        "{junk}"
    );
    let late = app
        .init_chain(init_chain(b"", 5))
        .await
        .expect_err("another initial height");
    assert!(late.to_string().contains("starts at height 5"), "{late}");

    run_blocks(&app, &[vec![allow_tx("a-1")]]).await;
    let used = app
        .init_chain(init_chain(b"", 1))
        .await
        .expect_err("a data directory with blocks");
    assert!(used.to_string().contains("up to height 1"), "{used}");
}

#[tokio::test]
async fn after_a_restart_info_reports_the_last_committed_block() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let answers = run_blocks(&app, &[vec![allow_tx("a-1")], vec![deny_tx("a-2")], vec![]]).await;
    stop(app).await;

    let app = super::app(dir.path()).await;
    let info = app.info().await.unwrap();
    assert_eq!(info.last_block_height.value(), 3);
    assert_eq!(info.last_block_app_hash, answers[2].app_hash);
    // CometBFT goes on with block 4; a block beyond it is refused.
    let gap = app
        .finalize_block(finalize(6, txs(&[allow_tx("a-6")])))
        .await
        .expect_err("a gap");
    assert!(gap.to_string().contains("expected height 4"), "{gap}");
    let four = app
        .finalize_block(finalize(4, txs(&[allow_tx("a-4")])))
        .await
        .unwrap();
    app.commit().await.unwrap();
    assert_eq!(app.info().await.unwrap().last_block_height.value(), 4);
    assert_eq!(app.info().await.unwrap().last_block_app_hash, four.app_hash);
}

/// A stop (`kill -9`) after a block was applied and stored but before `Commit`: `Info` reports
/// the block before it, CometBFT replays the block, and the replay answers exactly as the block
/// did, without applying it twice or logging its decisions twice.
#[tokio::test]
async fn a_stop_between_finalize_and_commit_replays_exactly_that_block() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    run_blocks(&app, &[vec![allow_tx("a-1")]]).await;
    let block = vec![
        tx(&deny_tx("a-2")),
        tx(&revoke_unknown("c-2")),
        Bytes::from_static(b"junk"),
    ];
    let first = app
        .finalize_block(finalize(2, block.clone()))
        .await
        .unwrap();
    stop(app).await; // no Commit

    let app = super::app(dir.path()).await;
    let info = app.info().await.unwrap();
    assert_eq!(
        info.last_block_height.value(),
        1,
        "block 2 is not committed"
    );
    let replay = app.finalize_block(finalize(2, block)).await.unwrap();
    assert_eq!(replay, first, "the replay answers as the block did");
    app.commit().await.unwrap();
    assert_eq!(app.info().await.unwrap().last_block_height.value(), 2);
    assert_eq!(
        app.info().await.unwrap().last_block_app_hash,
        first.app_hash
    );

    // The decision of block 2 is in the log once.
    let logged = app.query(query("/decisions?tx=a-2")).await;
    assert_eq!(logged.code.value(), 0, "{}", logged.log);
    let logged = json_of(&logged.value);
    assert_eq!(logged["decisions"].as_array().unwrap().len(), 1, "{logged}");

    // A different block 2 is a conflict: the node halts rather than diverge.
    let conflict = app
        .finalize_block(finalize(2, txs(&[allow_tx("other")])))
        .await
        .expect_err("a conflict");
    assert!(
        conflict.to_string().contains("block 2 conflicts"),
        "{conflict}"
    );
}
