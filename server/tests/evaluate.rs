//! `/v1/evaluate`, `/v1/evaluate/batch`, problems, token, limits.

use crate::*;
use insta::assert_json_snapshot;
use serde_json::json;
use std::io::{Read, Write};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_answers_the_contract_decision_and_echoes_the_request_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let response = server
        .client
        .post(server.url("/v1/evaluate"))
        .header("content-type", "application/json")
        .header("x-request-id", "req-42")
        .body(allow_tx().to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"req-42"[..])
    );
    let (status, content_type, allow) = answer(response).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    // The same bytes as the engine's canonical decision (docs/contract.md §2).
    let expected = bundle().decide(
        &accord_engine::AccessRequest::from_json(&allow_tx().to_string()).expect("tx"),
        &accord_engine::InMemoryConsentRegistry::new(),
        0,
    );
    assert_eq!(
        allow,
        accord_engine::json::value_from_str(&expected.to_json()).expect("json")
    );
    assert_json_snapshot!("evaluate_allow", allow, { ".policy_set.version" => "[version]" });

    let (status, _, deny) = answer(server.post_json("/v1/evaluate", &deny_tx()).await).await;
    assert_eq!(status, 200, "a deny is an answer, not an error");
    assert_json_snapshot!("evaluate_deny", deny, { ".policy_set.version" => "[version]" });
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_problem_has_its_type_and_names_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), |c| c.body_limit = 4096).await;

    let malformed = server
        .post_raw(
            "/v1/evaluate",
            "application/json",
            "{\n  \"id\": \"tx-1\",\n  \"kind\": acc\n}",
        )
        .await;
    let body = problem(malformed, 400, "malformed-json").await;
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.starts_with("line 3 column")));
    assert_json_snapshot!("problem_malformed_json", body);

    let text = server
        .post_raw("/v1/evaluate", "text/plain", &allow_tx().to_string())
        .await;
    assert_json_snapshot!(
        "problem_unsupported_media_type",
        problem(text, 415, "unsupported-media-type").await
    );
    let none = server
        .post_raw("/v1/evaluate", "", &allow_tx().to_string())
        .await;
    problem(none, 415, "unsupported-media-type").await;

    let mut bad = allow_tx();
    bad["actor"]["type"] = json!("Robot");
    let body = problem(
        server.post_json("/v1/evaluate", &bad).await,
        422,
        "invalid-transaction",
    )
    .await;
    assert_eq!(body["field"], "actor.type");
    assert_json_snapshot!("problem_invalid_transaction", body);

    let mut typo = allow_tx();
    typo["context"]["purpose_of_us"] = json!("TREAT");
    let body = problem(
        server.post_json("/v1/evaluate", &typo).await,
        422,
        "invalid-transaction",
    )
    .await;
    assert_eq!(body["field"], "context.purpose_of_us", "{body}");

    let consent = json!({ "id": "tx-7", "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
        "consent": { "id": "consent/c-1", "status": "active", "patient": "patient/p-1",
                     "grantee": "org/uni-lab", "purposes": ["HRESCH"], "actions": ["read"] } });
    let body = problem(
        server.post_json("/v1/evaluate", &consent).await,
        422,
        "not-an-access-transaction",
    )
    .await;
    assert_eq!(body["field"], "kind");
    assert_json_snapshot!("problem_not_an_access_transaction", body);

    let array = server
        .post_raw("/v1/evaluate", "application/json", "[1, 2]")
        .await;
    let body = problem(array, 422, "invalid-transaction").await;
    assert_eq!(body["field"], ".");

    let mut big = allow_tx();
    big["actor"]["attributes"] = json!({ "padding": "x".repeat(8000) });
    let body = problem(
        server.post_json("/v1/evaluate", &big).await,
        413,
        "payload-too-large",
    )
    .await;
    assert_json_snapshot!("problem_payload_too_large", body);

    let body = problem(server.get("/v1/nothing-here").await, 404, "not-found").await;
    assert_json_snapshot!("problem_not_found", body);
    let body = problem(server.get("/v1/evaluate").await, 405, "method-not-allowed").await;
    assert_json_snapshot!("problem_method_not_allowed", body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_in_order_and_fails_whole_on_an_invalid_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), |c| c.max_batch = 3).await;
    let batch = json!({ "transactions": [allow_tx(), deny_tx(), with_id(allow_tx(), "tx-001b")] });
    let (status, _, body) = answer(server.post_json("/v1/evaluate/batch", &batch).await).await;
    assert_eq!(status, 200, "{body}");
    let decisions = body["decisions"].as_array().expect("decisions");
    let summary: Vec<(&str, &str)> = decisions
        .iter()
        .map(|d| {
            (
                d["tx"].as_str().unwrap_or(""),
                d["decision"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("tx-001", "allow"),
            ("tx-014", "deny"),
            ("tx-001b", "allow")
        ]
    );

    // A larger batch (decided on the blocking pool) keeps its order too.
    let server_big = TestServer::start_with(&dir.path().join("big"), |_| {}).await;
    let many: Vec<Value> = (0..20)
        .map(|i| {
            if i % 3 == 0 {
                with_id(deny_tx(), &format!("d{i}"))
            } else {
                with_id(allow_tx(), &format!("a{i}"))
            }
        })
        .collect();
    let (status, _, body) = answer(
        server_big
            .post_json("/v1/evaluate/batch", &json!({ "transactions": many }))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got: Vec<String> = body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| {
            format!(
                "{}:{}",
                d["tx"].as_str().unwrap_or(""),
                d["decision"].as_str().unwrap_or("")
            )
        })
        .collect();
    let want: Vec<String> = (0..20)
        .map(|i| {
            if i % 3 == 0 {
                format!("d{i}:deny")
            } else {
                format!("a{i}:allow")
            }
        })
        .collect();
    assert_eq!(got, want);
    // An invalid item in a batch that large (over 8 KiB, the pool's threshold) fails it whole
    // too, from the pool, and nothing of it is logged.
    let mut many_bad: Vec<Value> = (0..20)
        .map(|i| with_id(allow_tx(), &format!("b{i}")))
        .collect();
    many_bad[19]["actor"]["type"] = json!("Robot");
    let many_bad = json!({ "transactions": many_bad });
    assert!(many_bad.to_string().len() > 8 * 1024);
    let body = problem(
        server_big.post_json("/v1/evaluate/batch", &many_bad).await,
        422,
        "invalid-transaction",
    )
    .await;
    assert_eq!(body["field"], "transactions[19].actor.type", "{body}");
    let (_, _, verify) = answer(server_big.get("/v1/audit/verify").await).await;
    assert_eq!(verify["length"], 20, "{verify}");
    server_big.stop().await;

    let mut bad = deny_tx();
    bad["resource"]["data_categories"] = json!(["general", "gossip"]);
    let invalid = json!({ "transactions": [allow_tx(), bad] });
    let body = problem(
        server.post_json("/v1/evaluate/batch", &invalid).await,
        422,
        "invalid-transaction",
    )
    .await;
    assert_eq!(body["field"], "transactions[1].resource.data_categories[1]");
    assert_json_snapshot!("problem_batch_invalid_item", body);

    let over = json!({ "transactions": [allow_tx(), allow_tx(), allow_tx(), allow_tx()] });
    let body = problem(
        server.post_json("/v1/evaluate/batch", &over).await,
        413,
        "batch-too-large",
    )
    .await;
    assert_eq!(body["field"], "transactions");
    assert_json_snapshot!("problem_batch_too_large", body);

    let unknown = json!({ "transactions": [], "transaction": [] });
    let body = problem(
        server.post_json("/v1/evaluate/batch", &unknown).await,
        400,
        "invalid-request",
    )
    .await;
    assert_json_snapshot!("problem_invalid_request", body);

    let (status, _, body) = answer(
        server
            .post_json("/v1/evaluate/batch", &json!({"transactions": []}))
            .await,
    )
    .await;
    assert_eq!((status, body), (200, json!({ "decisions": [] })));

    // Nothing of the refused batches was logged: 3 + 0 entries.
    let (_, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(verify["length"], 3, "{verify}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_guards_the_api_but_not_health() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), |c| {
        c.tokens = Some(accord_server::tokens::Tokens::single("s3cret"))
    })
    .await;
    let missing = server.post_json("/v1/evaluate", &allow_tx()).await;
    assert!(missing.headers().get("www-authenticate").is_some());
    assert_json_snapshot!(
        "problem_unauthorized",
        problem(missing, 401, "unauthorized").await
    );
    let wrong = server
        .client
        .post(server.url("/v1/evaluate"))
        .header("content-type", "application/json")
        .bearer_auth("guess")
        .body(allow_tx().to_string())
        .send()
        .await
        .expect("request");
    problem(wrong, 401, "unauthorized").await;
    problem(server.get("/v1/decisions").await, 401, "unauthorized").await;
    let right = server
        .client
        .post(server.url("/v1/evaluate"))
        .header("content-type", "application/json")
        .bearer_auth("s3cret")
        .body(allow_tx().to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(right.status().as_u16(), 200);
    for open in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/.well-known/authzen-configuration",
    ] {
        assert_eq!(server.get(open).await.status().as_u16(), 200, "{open}");
    }
    server.stop().await;
}

/// Opens a request whose body never finishes, so its handler holds a concurrency permit.
fn stalled_request(base: &str) -> std::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST /v1/evaluate HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"id\":"
    )
    .expect("write");
    stream.flush().expect("flush");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturation_answers_503_with_retry_after_and_slow_requests_time_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), |c| {
        c.max_concurrency = 1;
        c.request_timeout = Duration::from_millis(400);
    })
    .await;
    let mut stalled = stalled_request(&server.base);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let busy = server.post_json("/v1/evaluate", &allow_tx()).await;
    assert_eq!(
        busy.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_json_snapshot!("problem_overloaded", problem(busy, 503, "overloaded").await);
    // Health is not behind the limit.
    assert_eq!(server.get("/healthz").await.status().as_u16(), 200);

    // The stalled request is answered by the timeout.
    let answer_text = tokio::task::spawn_blocking(move || {
        stalled
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = vec![0u8; 4096];
        let n = stalled.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .expect("read");
    assert!(answer_text.starts_with("HTTP/1.1 503"), "{answer_text}");
    assert!(
        answer_text.contains("https://accord.dev/problems/timeout"),
        "{answer_text}"
    );
    let body = answer_text.split("\r\n\r\n").nth(1).unwrap_or("");
    let body: Value = accord_engine::json::value_from_str(body).expect("problem body");
    assert_json_snapshot!("problem_timeout", body);

    // Permits come back: the server answers again.
    let after = server.post_json("/v1/evaluate", &allow_tx()).await;
    assert_eq!(after.status().as_u16(), 200);
    server.stop().await;
}
