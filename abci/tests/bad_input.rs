//! Bad input through ABCI: garbage and oversized transaction bytes, a block at the wrong height,
//! `Commit` without `FinalizeBlock`. Each gets an error answer or a clean refusal, never a panic
//! and never a state change.

use super::*;
use accord_abci::tx::code;

fn state_of(app: &App) -> (Option<u64>, String) {
    let node = app.state().node().unwrap();
    (node.applied_height(), node.read(|_, m| m.state_root()))
}

#[tokio::test]
async fn a_block_at_the_wrong_height_is_an_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    run_blocks(&app, &[vec![allow_tx("a-1")]]).await;
    let before = state_of(&app);
    // A gap, and a height already applied with other transactions.
    for h in [5, 0] {
        let refused = app
            .finalize_block(finalize(h, txs(&[deny_tx("a-2")])))
            .await;
        assert!(refused.is_err(), "height {h} was applied");
        assert_eq!(state_of(&app), before, "height {h} changed the state");
    }
    let conflicting = app
        .finalize_block(finalize(1, txs(&[deny_tx("a-3")])))
        .await;
    assert!(
        conflicting.is_err(),
        "a different block at an applied height"
    );
    assert_eq!(state_of(&app), before);
    // The next height still applies.
    let next = app
        .finalize_block(finalize(2, txs(&[deny_tx("a-4")])))
        .await
        .unwrap();
    assert_eq!(next.tx_results.len(), 1);
    assert_eq!(next.tx_results[0].code.value(), 0);
    app.commit().await.unwrap();
    assert_eq!(app.info().await.unwrap().last_block_height.value(), 2);
}

#[tokio::test]
async fn commit_without_a_finalized_block_commits_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    app.init_chain(init_chain(b"", 1)).await.unwrap();
    let genesis = state_of(&app);
    app.commit().await.unwrap();
    assert_eq!(app.info().await.unwrap().last_block_height.value(), 0);
    assert_eq!(state_of(&app), genesis);
    run_blocks(&app, &[vec![allow_tx("a-1")]]).await;
    let one = app.info().await.unwrap();
    app.commit().await.unwrap();
    app.commit().await.unwrap();
    let again = app.info().await.unwrap();
    assert_eq!(again.last_block_height, one.last_block_height);
    assert_eq!(again.last_block_app_hash, one.last_block_app_hash);
}

#[tokio::test]
async fn garbage_and_oversized_transactions_in_a_block_are_refused_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    run_blocks(&app, &[vec![]]).await;
    // 8 MiB of one JSON string inside an otherwise well-formed transaction (past
    // `MAX_TX_BYTES`), raw garbage and an empty transaction.
    let mut oversized = allow_tx("big");
    oversized["context"]["attributes"] = json!({ "note": "x".repeat(8 * 1024 * 1024) });
    let block = vec![
        Bytes::from_static(b"\x00\x01\x02 not json"),
        tx(&oversized),
        Bytes::new(),
        tx(&allow_tx("a-1")),
    ];
    let answer = app.finalize_block(finalize(2, block)).await.unwrap();
    assert_eq!(answer.tx_results.len(), 4);
    assert_eq!(answer.tx_results[0].code.value(), code::MALFORMED);
    assert_eq!(answer.tx_results[1].code.value(), code::MALFORMED);
    assert_eq!(
        log_of(&answer.tx_results[1].log)["code"],
        "transaction_too_large"
    );
    assert_eq!(answer.tx_results[2].code.value(), code::MALFORMED);
    assert_eq!(
        answer.tx_results[3].code.value(),
        0,
        "{}",
        answer.tx_results[3].log
    );
    app.commit().await.unwrap();
    assert_eq!(app.info().await.unwrap().last_block_height.value(), 2);
    // `CheckTx` refuses it the same way; a transaction of exactly the bound is read.
    let checked = app
        .check_tx(request::CheckTx {
            tx: tx(&oversized),
            kind: request::CheckTxKind::New,
        })
        .await;
    assert_eq!(checked.code.value(), code::MALFORMED);
    let fits = vec![b' '; accord_abci::tx::MAX_TX_BYTES - 2];
    let mut at_bound = b"[".to_vec();
    at_bound.extend_from_slice(&fits);
    at_bound.push(b']');
    assert_eq!(at_bound.len(), accord_abci::tx::MAX_TX_BYTES);
    let fault = accord_abci::tx::decode(&at_bound)
        .err()
        .expect("not a transaction");
    assert!(!fault.log.contains("too_large"), "{}", fault.log);
}
