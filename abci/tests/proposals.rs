//! `PrepareProposal` and `ProcessProposal`: a proposer drops what the state would refuse where it
//! stands in the block; a validator rejects a proposal that holds one.

use super::*;

#[tokio::test]
async fn a_proposer_drops_junk_and_refused_transactions_and_keeps_the_rest_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    run_blocks(&app, &[vec![]]).await;
    let proposal = signed("g-1", tightening(), "st-marys");
    let offered = vec![
        tx(&allow_tx("a-1")),
        Bytes::from_static(b"junk"),
        tx(&forged("g-forged")),
        tx(&proposal),
        // The same message again: refused where it stands (after the first), not alone.
        tx(&proposal),
        tx(&deny_tx("a-2")),
        tx(&revoke_unknown("c-1")),
    ];
    let kept = app
        .prepare_proposal(prepare(2, offered.clone(), i64::MAX))
        .await
        .unwrap()
        .txs;
    assert_eq!(
        kept,
        vec![offered[0].clone(), offered[3].clone(), offered[5].clone()]
    );
    // Nothing was applied.
    assert_eq!(app.state().node().unwrap().applied_height(), Some(1));

    // The proposer's block is accepted by a validator, and its results have no refusal.
    let verdict = app
        .process_proposal(process(2, kept.clone()))
        .await
        .unwrap();
    assert_eq!(verdict, response::ProcessProposal::Accept);
    let finalized = app.finalize_block(finalize(2, kept)).await.unwrap();
    assert!(finalized.tx_results.iter().all(|r| r.code.is_ok()));
}

#[tokio::test]
async fn a_proposal_stays_within_max_tx_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    run_blocks(&app, &[vec![]]).await;
    let offered = txs(&[allow_tx("a-1"), allow_tx("a-2"), allow_tx("a-3")]);
    let room = (offered[0].len() + offered[1].len()) as i64;
    let kept = app
        .prepare_proposal(prepare(2, offered.clone(), room))
        .await
        .unwrap()
        .txs;
    assert_eq!(kept, offered[..2].to_vec());
}

#[tokio::test]
async fn a_validator_rejects_a_proposal_holding_an_invalid_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    run_blocks(&app, &[vec![]]).await;
    let proposal = signed("g-1", tightening(), "st-marys");
    let rejected = [
        vec![tx(&allow_tx("a-1")), Bytes::from_static(b"junk")],
        vec![tx(&json!({ "id": "t", "kind": "payment" }))],
        vec![tx(&forged("g-forged"))],
        vec![tx(&stranger_proposal("g-stranger"))],
        vec![tx(&proposal), tx(&proposal)],
        vec![tx(&revoke_unknown("c-1"))],
    ];
    for block in rejected {
        let verdict = app
            .process_proposal(process(2, block.clone()))
            .await
            .unwrap();
        assert_eq!(verdict, response::ProcessProposal::Reject, "{block:?}");
    }
    // A proposal for another height than the next is rejected too.
    let verdict = app
        .process_proposal(process(3, txs(&[allow_tx("a-1")])))
        .await
        .unwrap();
    assert_eq!(verdict, response::ProcessProposal::Reject);
    let accepted = app
        .process_proposal(process(
            2,
            txs(&[allow_tx("a-1"), deny_tx("a-2"), proposal]),
        ))
        .await
        .unwrap();
    assert_eq!(accepted, response::ProcessProposal::Accept);
    assert_eq!(app.state().node().unwrap().applied_height(), Some(1));
}
