//! One reader behind every door: a JSON object that names a key twice is refused, with the
//! repeated key's path, on every endpoint that reads a body, and nothing is decided, logged or
//! applied. `serde_json` alone keeps the last of two keys; a gateway or ledger in front of Accord
//! may read the first, and the two would then act on different transactions.

use crate::{allow_tx, answer, problem, TestServer};
use accord_engine::json::with_each_key_repeated;
use serde_json::{json, Value};

/// `{"action":"delete","action":"read"}`: what a reader of the first key sees (`delete`) is not
/// what a reader of the last key sees (`read`).
fn action_twice(tx: &Value) -> String {
    let text = tx.to_string();
    text.replacen("\"action\":", "\"action\":\"delete\",\"action\":", 1)
}

async fn logged(server: &TestServer) -> usize {
    let (_, _, page) = answer(server.get("/v1/decisions?limit=100").await).await;
    page["decisions"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn evaluate_refuses_every_repeated_key_naming_it_and_logs_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path()).await;
    let bypass = action_twice(&allow_tx());
    assert!(bypass.contains("\"action\":\"delete\",\"action\":\"read\""));
    let body = problem(
        server
            .post_raw("/v1/evaluate", "application/json", &bypass)
            .await,
        422,
        "invalid-transaction",
    )
    .await;
    assert_eq!(body["field"], "action", "{body}");
    assert_eq!(
        body["detail"],
        "field `action`: duplicate key `action`: an object may name a key only once"
    );
    let mut tx = allow_tx();
    tx["context"]["attributes"] = json!({ "irb_waiver": true, "nested": { "k": [1] } });
    let variants = with_each_key_repeated(&tx);
    assert!(variants.len() >= 7, "{}", variants.len());
    for (path, text) in variants {
        let body = problem(
            server
                .post_raw("/v1/evaluate", "application/json", &text)
                .await,
            422,
            "invalid-transaction",
        )
        .await;
        assert_eq!(body["field"], path.as_str(), "{text}");
    }
    assert_eq!(
        logged(&server).await,
        0,
        "no refused transaction is decided"
    );
    server.stop().await;
}

#[tokio::test]
async fn batch_items_and_the_batch_envelope_refuse_repeated_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path()).await;
    let item = action_twice(&allow_tx());
    let body = format!("{{\"transactions\":[{},{item}]}}", allow_tx());
    let p = problem(
        server
            .post_raw("/v1/evaluate/batch", "application/json", &body)
            .await,
        422,
        "invalid-transaction",
    )
    .await;
    assert_eq!(p["field"], "transactions[1].action", "{p}");
    let envelope = format!("{{\"transactions\":[],\"transactions\":[{}]}}", allow_tx());
    let p = problem(
        server
            .post_raw("/v1/evaluate/batch", "application/json", &envelope)
            .await,
        400,
        "invalid-request",
    )
    .await;
    assert_eq!(p["field"], "transactions", "{p}");
    assert_eq!(
        logged(&server).await,
        0,
        "an all-or-nothing batch logs nothing"
    );
    server.stop().await;
}

#[tokio::test]
async fn authzen_refuses_a_repeated_property() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path()).await;
    let body = r#"{"subject":{"type":"Practitioner","id":"practitioner/alice",
        "properties":{"organization":"org/a","organization":"org/b"}},
        "action":{"name":"read"},"resource":{"type":"Observation","id":"Observation/o-1"}}"#;
    let p = problem(
        server
            .post_raw("/access/v1/evaluation", "application/json", body)
            .await,
        400,
        "invalid-request",
    )
    .await;
    assert_eq!(p["field"], "subject.properties.organization", "{p}");
    server.stop().await;
}

#[tokio::test]
async fn blocks_refuse_a_repeated_height_or_consent_status_and_apply_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path()).await;
    // A revocation that a last-key reader would apply as a grant.
    let consent = r#"{"id":"c-1","kind":"consent","timestamp":"2026-02-01T09:00:00Z",
        "consent":{"id":"consent/c-1","status":"revoked","status":"active","patient":"patient/p-1",
        "grantee":"org/uni-lab","purposes":["HRESCH"],"actions":["read"],"data_categories":["general"]}}"#;
    let block = format!("{{\"height\":1,\"transactions\":[{consent}]}}");
    let p = problem(
        server
            .post_raw("/v1/blocks", "application/json", &block)
            .await,
        422,
        "invalid-block",
    )
    .await;
    assert_eq!(p["field"], "transactions[0].consent.status", "{p}");
    let heights = r#"{"height":1,"height":7,"transactions":[]}"#;
    let p = problem(
        server
            .post_raw("/v1/blocks", "application/json", heights)
            .await,
        422,
        "invalid-block",
    )
    .await;
    assert_eq!(p["field"], "height", "{p}");
    // Nothing was applied: block 1 is still the next, and the patient has no consent.
    let (status, _, _) = answer(
        server
            .post_json("/v1/blocks", &json!({ "height": 1, "transactions": [] }))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (_, _, consents) = answer(server.get("/v1/consents?patient=patient/p-1").await).await;
    assert_eq!(consents["consents"], json!([]), "{consents}");
    server.stop().await;
}

#[tokio::test]
async fn governance_refuses_a_repeated_key_before_sequencing_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path()).await;
    let body = r#"{"id":"g-1","kind":"governance","timestamp":"2026-03-01T00:00:00Z",
        "governance":{"message":{"type":"vote","type":"cancel"},"signature":""}}"#;
    let p = problem(
        server
            .post_raw("/v1/governance", "application/json", body)
            .await,
        400,
        "invalid-request",
    )
    .await;
    assert_eq!(p["field"], "governance.message.type", "{p}");
    server.stop().await;
}

/// Sends raw bytes on a fresh connection and reads the whole answer (the server closes it).
async fn raw_exchange(server: &TestServer, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

fn problem_of(response: &str) -> Value {
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    accord_engine::json::value_from_str(body).expect("a JSON problem")
}

#[tokio::test]
async fn what_the_http_layer_refuses_is_a_problem_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path()).await;
    let garbage = raw_exchange(&server, b"\x16\x03\x01 hello there\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
    let p = problem_of(&garbage);
    assert_eq!(
        p["type"], "https://accord.dev/problems/bad-request-line",
        "{p}"
    );

    let long = format!(
        "GET /v1/decisions?tx={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let answer = raw_exchange(&server, long.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 414 "),
        "{}",
        &answer[..80.min(answer.len())]
    );
    assert_eq!(
        problem_of(&answer)["type"],
        "https://accord.dev/problems/uri-too-long"
    );

    // A well-formed request on a raw connection is served as usual.
    let ok = raw_exchange(
        &server,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");
    server.stop().await;
}

#[tokio::test]
async fn bad_query_values_are_400s() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path()).await;
    let p = problem(
        server.get("/v1/proposals?status=bogus").await,
        400,
        "invalid-request",
    )
    .await;
    assert_eq!(p["field"], "status", "{p}");
    assert!(p["detail"].as_str().unwrap_or("").contains("voting"), "{p}");
    let (status, _, _) = answer(server.get("/v1/proposals?status=voting").await).await;
    assert_eq!(status, 200);
    for query in ["tx=%ZZ", "tx=%4", "tx=%FF"] {
        let p = problem(
            server.get(&format!("/v1/decisions?{query}")).await,
            400,
            "invalid-request",
        )
        .await;
        assert!(
            p["detail"].as_str().unwrap_or("").starts_with("query: "),
            "{p}"
        );
    }
    let (status, _, _) = answer(server.get("/v1/decisions?tx=tx%2D1").await).await;
    assert_eq!(status, 200);
    server.stop().await;
}
