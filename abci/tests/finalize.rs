//! `FinalizeBlock`: one result per transaction with the decision or outcome in `data` and as
//! events, activations as block events, the state root as the app hash — the same root
//! `POST /v1/blocks` computes for the same block — and the decisions in the decision log.

use super::*;
use accord_abci::app::app_hash;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

/// `method path` with a JSON body through `router`: the status and the JSON answer.
pub async fn http(
    router: axum::Router,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    let body = match body {
        Some(value) => {
            request = request.header("content-type", "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    let response = router.oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = accord_engine::json::value_from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

#[tokio::test]
async fn a_finalized_block_answers_results_events_and_the_state_root_of_the_http_path() {
    let chain_dir = tempfile::tempdir().unwrap();
    let app = app(chain_dir.path()).await;
    app.init_chain(init_chain(b"", 1)).await.unwrap();
    let proposal = signed("g-1", tightening(), "st-marys");
    let valid = vec![
        allow_tx("a-1"),
        deny_tx("a-2"),
        revoke_unknown("c-1"),
        proposal,
    ];
    let mut block = txs(&valid);
    block.insert(2, Bytes::from_static(b"junk"));
    let finalized = app.finalize_block(finalize(1, block)).await.unwrap();
    app.commit().await.unwrap();

    // The same Accord block through the HTTP block feed of a plain `accord serve` state.
    let http_dir = tempfile::tempdir().unwrap();
    let served = open_state(http_dir.path()).await;
    let (status, answer) = http(
        accord_server::router(served),
        Method::POST,
        "/v1/blocks",
        Some(&json!({ "height": 1, "transactions": valid })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let root = answer["state_root"].as_str().unwrap();
    assert_eq!(
        finalized.app_hash,
        app_hash(root).unwrap(),
        "same block, same root"
    );

    let results = &finalized.tx_results;
    assert_eq!(results.len(), 5, "one result per transaction");
    // Each result in the Accord block carries what the HTTP answer says, as JSON.
    for (result, expected) in [0, 1, 3, 4]
        .iter()
        .map(|i| &results[*i])
        .zip(answer["results"].as_array().unwrap())
    {
        assert_eq!(&json_of(&result.data), expected);
    }

    let allow = &results[0];
    assert!(allow.code.is_ok());
    assert_eq!(json_of(&allow.data)["decision"], "allow");
    let decision = attributes(&allow.events, "accord.decision");
    assert!(
        decision.contains(&("tx".into(), "a-1".into())),
        "{decision:?}"
    );
    assert!(
        decision.contains(&("decision".into(), "allow".into())),
        "{decision:?}"
    );
    let reason = attributes(&allow.events, "accord.reason");
    let keys: Vec<&str> = reason.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["tx", "module", "rule", "effect", "citation"]);
    assert!(
        allow
            .events
            .iter()
            .flat_map(|e| &e.attributes)
            .all(|a| matches!(
                a,
                tendermint::abci::EventAttribute::V037(a) if a.index
            )),
        "a decision's attributes are indexed"
    );

    let deny = &results[1];
    assert!(deny.code.is_ok(), "a deny is a decision, not a failure");
    assert!(
        attributes(&deny.events, "accord.decision").contains(&("decision".into(), "deny".into()))
    );

    let junk = &results[2];
    assert_eq!(junk.code.value(), accord_abci::tx::code::MALFORMED);
    assert_eq!(junk.codespace, "accord");
    assert!(junk.events.is_empty());

    let refused = &results[3];
    assert_eq!(refused.code.value(), accord_abci::tx::code::REFUSED);
    assert_eq!(log_of(&refused.log)["code"], "consent_refused");
    assert_eq!(json_of(&refused.data)["refused"]["code"], "consent_refused");
    assert!(attributes(&refused.events, "accord.refused")
        .contains(&("code".into(), "consent_refused".into())));

    let proposed = &results[4];
    assert!(proposed.code.is_ok(), "{}", proposed.log);
    let applied = attributes(&proposed.events, "accord.applied");
    assert!(
        applied.contains(&("kind".into(), "proposal".into())),
        "{applied:?}"
    );
    assert!(
        applied.contains(&("status".into(), "voting".into())),
        "{applied:?}"
    );

    let block_event = attributes(&finalized.events, "accord.block");
    assert!(
        block_event.contains(&("state_root".into(), root.to_owned())),
        "{block_event:?}"
    );
    assert!(block_event.contains(&("height".into(), "1".into())));

    // The decisions are in the decision log.
    for id in ["a-1", "a-2"] {
        let logged = app.query(query(&format!("/decisions?tx={id}"))).await;
        assert_eq!(logged.code.value(), 0, "{}", logged.log);
        assert_eq!(
            json_of(&logged.value)["decisions"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn a_governance_round_through_blocks_activates_with_a_block_event() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let answers = run_blocks(&app, &[vec![signed("g-1", tightening(), "st-marys")]]).await;
    let applied = json_of(&answers[0].tx_results[0].data);
    let id = applied["applied"]["id"].as_str().unwrap().to_owned();
    let proposal = json_of(&app.query(query(&format!("/proposals/{id}"))).await.value);
    let content = proposal["content"].as_str().unwrap().to_owned();

    // Two of three equal weights at height 2: queued, active from 2 + 2.
    let answers = run_blocks(
        &app,
        &[
            vec![
                vote("v-1", "st-marys", &id, &content),
                vote("v-2", "acme-insurance", &id, &content),
            ],
            vec![share_to_uruguay("s-3")],
            vec![share_to_uruguay("s-4")],
        ],
    )
    .await;
    let queued = attributes(&answers[0].tx_results[1].events, "accord.applied");
    assert!(
        queued.contains(&("status".into(), "queued".into())),
        "{queued:?}"
    );
    assert!(!answers[1]
        .events
        .iter()
        .any(|e| e.kind == "accord.activation"));
    assert_eq!(json_of(&answers[1].tx_results[0].data)["decision"], "allow");
    let activation = attributes(&answers[2].events, "accord.activation");
    assert_eq!(activation, vec![("proposal".to_owned(), id.clone())]);
    assert_eq!(
        json_of(&answers[2].tx_results[0].data)["decision"],
        "deny",
        "the new set governs block 4"
    );
    assert_ne!(answers[1].app_hash, answers[2].app_hash);
}

#[tokio::test]
async fn the_sidecar_evaluates_and_reads_but_takes_no_blocks_or_governance_next_to_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    run_blocks(&app, &[vec![allow_tx("a-1")]]).await;
    let router = app.http();
    let (status, decision) = http(
        router.clone(),
        Method::POST,
        "/v1/evaluate",
        Some(&deny_tx("e-1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(decision["decision"], "deny");
    let (status, _) = http(router.clone(), Method::GET, "/v1/policy-set", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, metrics) = http(router.clone(), Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("accord_applied_height 1"),
        "{metrics}"
    );
    for (path, body) in [
        ("/v1/blocks", json!({ "height": 2, "transactions": [] })),
        ("/v1/governance", signed("g-1", tightening(), "st-marys")),
    ] {
        let (status, problem) = http(router.clone(), Method::POST, path, Some(&body)).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("CometBFT"),
            "{problem}"
        );
    }
    assert_eq!(app.state().node().unwrap().applied_height(), Some(1));
}
