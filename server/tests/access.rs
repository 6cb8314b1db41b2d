//! Tokens and their roles on every guarded endpoint, request ids, and `--insecure` in `/readyz`.

use crate::{allow_tx, answer, problem, TestServer};
use accord_server::routes::route_table;
use accord_server::tokens::{Role, Tokens};

const NODE: &str = "node-secret-0123456789abcdef0123456789abc";
const AUDITOR: &str = "auditor-secret-0123456789abcdef0123456789";

/// The least-privilege set-up of docs/server.md: the ledger node feeds blocks and asks for
/// decisions; the auditor reads the decision log and consents; nobody else governs.
fn tokens() -> Tokens {
    Tokens::parse(&format!(
        "[[token]]\nname = \"ledger-node\"\nsecret = \"{NODE}\"\nroles = [\"ledger\", \"evaluate\"]\n\
         [[token]]\nname = \"auditor\"\nsecret = \"{AUDITOR}\"\nroles = [\"audit\"]\n"
    ))
    .expect("tokens")
}

async fn call(
    server: &TestServer,
    method: &axum::http::Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    // A path parameter gets a value; the guard answers before the handler reads it.
    let path = path.replace("{id}", "p-1");
    let mut req = server
        .client
        .request(method.clone(), server.url(&path))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_guarded_route_needs_a_token_with_its_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), |c| c.tokens = Some(tokens())).await;
    let routes = route_table();
    assert!(routes.iter().any(|r| r.role == Some(Role::Ledger)));
    for route in &routes {
        let what = format!("{} {}", route.method, route.path);
        let Some(role) = route.role else {
            // Open routes answer without a token.
            let status = call(&server, &route.method, route.path, None)
                .await
                .status();
            assert_ne!(status.as_u16(), 401, "{what}");
            assert_ne!(status.as_u16(), 403, "{what}");
            continue;
        };
        problem(
            call(&server, &route.method, route.path, None).await,
            401,
            "unauthorized",
        )
        .await;
        let wrong = problem(
            call(
                &server,
                &route.method,
                route.path,
                Some("not-a-configured-token"),
            )
            .await,
            401,
            "unauthorized",
        )
        .await;
        assert!(
            wrong["detail"].as_str().unwrap_or("").contains("none of"),
            "{what}: {wrong}"
        );
        for (name, secret, roles) in [
            ("ledger-node", NODE, &[Role::Ledger, Role::Evaluate][..]),
            ("auditor", AUDITOR, &[Role::Audit][..]),
        ] {
            let response = call(&server, &route.method, route.path, Some(secret)).await;
            if roles.contains(&role) {
                let status = response.status().as_u16();
                assert!(status != 401 && status != 403, "{what} as {name}: {status}");
            } else {
                let body = problem(response, 403, "forbidden").await;
                let detail = body["detail"].as_str().unwrap_or("");
                assert!(
                    detail.contains(name) && detail.contains(role.name()),
                    "{what}: {body}"
                );
            }
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_node_decides_and_the_auditor_reads_what_was_decided() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), |c| c.tokens = Some(tokens())).await;
    let decided = server
        .client
        .post(server.url("/v1/evaluate"))
        .header("content-type", "application/json")
        .bearer_auth(NODE)
        .body(allow_tx().to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(decided.status().as_u16(), 200);
    let (status, _, page) = answer(
        server
            .client
            .get(server.url("/v1/decisions"))
            .bearer_auth(AUDITOR)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["decisions"][0]["tx"], "tx-001", "{page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_an_id_gets_one_and_a_given_id_is_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let id = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .expect("an X-Request-ID on the answer")
    };
    let first = id(&server.get("/healthz").await);
    // Also on a problem, and on a route that does not exist.
    let second = id(&server.get("/nowhere").await);
    assert_ne!(first, second);
    for generated in [&first, &second] {
        let (prefix, counter) = generated.split_once('-').expect("prefix-counter");
        assert_eq!(prefix.len(), 16, "{generated}");
        assert!(
            prefix
                .chars()
                .chain(counter.chars())
                .all(|c| c.is_ascii_hexdigit()),
            "{generated}"
        );
    }
    let (a, b) = (first.split_once('-'), second.split_once('-'));
    assert_eq!(a.map(|x| x.0), b.map(|x| x.0), "one prefix per process");
    let given = server
        .client
        .get(server.url("/healthz"))
        .header("x-request-id", "node-7/tx-9")
        .send()
        .await
        .expect("request");
    assert_eq!(id(&given), "node-7/tx-9");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_shows_insecure() {
    for insecure in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start_with(dir.path(), |c| c.insecure = insecure).await;
        let (status, _, ready) = answer(server.get("/readyz").await).await;
        assert_eq!(status, 200, "{ready}");
        assert_eq!(ready["insecure"], insecure, "{ready}");
        server.stop().await;
    }
}
