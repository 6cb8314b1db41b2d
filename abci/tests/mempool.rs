//! `CheckTx`: what the state machine would refuse never enters the mempool, with a code and a
//! JSON log naming the reason.

use super::*;
use accord_abci::tx::code;

async fn check(app: &App, tx: Bytes) -> response::CheckTx {
    app.check_tx(request::CheckTx {
        tx,
        kind: request::CheckTxKind::New,
    })
    .await
}

#[tokio::test]
async fn check_tx_refuses_malformed_invalid_and_refused_transactions_with_codes() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    run_blocks(&app, &[vec![]]).await;

    let cases: Vec<(Bytes, u32, &str)> = vec![
        (
            Bytes::from_static(b"\xff\xfe"),
            code::MALFORMED,
            "malformed_transaction",
        ),
        (
            Bytes::from_static(b"{\"kind\":"),
            code::MALFORMED,
            "malformed_transaction",
        ),
        (
            tx(&json!({ "id": "t", "kind": "payment" })),
            code::INVALID,
            "invalid_transaction",
        ),
        (tx(&forged("g-forged")), code::REFUSED, "bad_signature"),
        (
            tx(&stranger_proposal("g-stranger")),
            code::REFUSED,
            "not_a_member",
        ),
        (tx(&revoke_unknown("c-1")), code::REFUSED, "consent_refused"),
    ];
    for (bytes, expected, name) in cases {
        let answer = check(&app, bytes).await;
        assert_eq!(answer.code.value(), expected, "{name}: {}", answer.log);
        assert_eq!(answer.codespace, "accord");
        assert_eq!(log_of(&answer.log)["code"], name, "{}", answer.log);
    }
    let invalid = check(&app, tx(&json!({ "id": "t", "kind": "payment" }))).await;
    assert_eq!(log_of(&invalid.log)["field"], "kind");

    // What the state accepts is admitted: an access transaction (allow or deny alike) and a
    // member's signed proposal. Checking changes no state.
    let root = app.state().node().unwrap().read(|_, m| m.state_root());
    for ok in [
        allow_tx("a-1"),
        deny_tx("a-2"),
        signed("g-1", tightening(), "st-marys"),
    ] {
        let answer = check(&app, tx(&ok)).await;
        assert_eq!(answer.code.value(), 0, "{ok}: {}", answer.log);
    }
    let node = app.state().node().unwrap();
    assert_eq!(node.read(|_, m| m.state_root()), root);
    assert_eq!(node.applied_height(), Some(1));
}

#[tokio::test]
async fn check_tx_answers_unavailable_while_the_storage_is_out_of_service() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let storage = app.state().storage.swap(None);
    let answer = check(&app, tx(&signed("g-1", tightening(), "st-marys"))).await;
    assert_eq!(answer.code.value(), code::UNAVAILABLE, "{}", answer.log);
    assert_eq!(log_of(&answer.log)["code"], "unavailable");
    app.state().storage.store(storage);
}
