//! The sidecar against a real server on an ephemeral loopback port, through a real HTTP client.
//!
//! - `evaluate`: `/v1/evaluate`, `/v1/evaluate/batch`, every problem type, the bearer token, limits.
//! - `authzen`: the AuthZEN API shapes.
//! - `log`: `/v1/decisions`, `/v1/audit/verify`, restart, tampering, metrics.
//! - `analysis`: the advisory analysis of proposals (needs cvc5).
//! - `audit`: `/v1/audit/verify` from the checkpoint and in full, cancellation, its limits.
//! - `governance`: the block feed, governance messages, proposals, policy set, members, consents.
//! - `doors`: a repeated JSON key is refused at every endpoint that reads a body.
//! - `storage`: storage faults (injected, and a full tmpfs) heal without a restart.
//! - `access`: tokens and roles, request ids, `--insecure` in `/readyz`.
//! - `https`: TLS, client certificates, the certificate reloaded on SIGHUP.
//! - `openapi`: `/openapi.json` covers every route and its examples are answered as documented.
//! - `backup`: `POST /v1/backup` on a running node, and restores of it.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod access;
mod analysis;
mod audit;
mod authzen;
mod backup;
mod doors;
mod evaluate;
mod governance;
mod https;
mod log;
mod openapi;
mod storage;

use accord_engine::Bundle;
use accord_server::{self as server, AppState, ServeConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// The default bundle, compiled once for every test.
pub fn bundle() -> Arc<Bundle> {
    accord_engine::testing::shared_default_bundle()
}

pub fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("examples").join(name)).expect("example");
    accord_engine::json::parse_str(&text).expect("example JSON")
}

/// The allowed treatment read (tx-001) and the denied export (tx-014).
pub fn allow_tx() -> Value {
    example("treatment-read.json")
}

pub fn deny_tx() -> Value {
    example("export-to-us.json")
}

/// A transaction with a new id.
pub fn with_id(mut tx: Value, id: &str) -> Value {
    tx["id"] = Value::String(id.into());
    tx
}

/// A server running in-process.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    /// The server's storage health (for its fault-injection hook).
    pub health: Arc<accord_server::storage::StorageHealth>,
    /// The server's state, to reach its current decision log.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(data: &Path) -> Self {
        Self::start_with(data, |_| {}).await
    }

    pub async fn start_with(data: &Path, tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::start_on(data, tweak, None).await
    }

    /// A server speaking TLS through `acceptor`; `base` is its `https://` address.
    pub async fn start_tls(
        data: &Path,
        acceptor: Arc<accord_server::tls::TlsAcceptor>,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        Self::start_on(data, tweak, Some(acceptor)).await
    }

    async fn start_on(
        data: &Path,
        tweak: impl FnOnce(&mut ServeConfig),
        tls: Option<Arc<accord_server::tls::TlsAcceptor>>,
    ) -> Self {
        let mut config = ServeConfig::with_defaults(root().join("policies"), data.to_path_buf());
        tweak(&mut config);
        // sled releases its file lock when its flusher thread notices the last handle is gone,
        // which can trail a stop by a moment.
        let mut tries = 0;
        let state = loop {
            match AppState::open(&config, bundle()) {
                Ok(state) => break state,
                Err(e) if tries < 100 && e.to_string().contains("lock") => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("state opens: {e}"),
            }
        };
        let health = Arc::clone(&state.health);
        let held = state.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = match tls {
            Some(acceptor) => server::listener::CheckedListener::tls(listener, acceptor),
            None => server::listener::CheckedListener::plain(listener),
        };
        let handle = tokio::spawn(server::serve(listener, state, async {
            let _ = rx.await;
        }));
        TestServer {
            base: format!("{scheme}://{addr}"),
            client: reqwest::Client::new(),
            health,
            state: held,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).body(body.to_owned());
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// The decision log of the storage open now.
    pub fn log(&self) -> Arc<accord_server::DecisionLog> {
        Arc::clone(&self.state.storage().expect("storage is open").log)
    }

    /// Waits until `/readyz` answers 200 (e.g. after a storage fault healed).
    pub async fn wait_ready(&self) {
        for _ in 0..400 {
            if self.get("/readyz").await.status().as_u16() == 200 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the server did not become ready within 10 s");
    }

    /// Stops the server gracefully and waits until its database is closed.
    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Idle keep-alive connections would hold the graceful shutdown open.
        self.client = reqwest::Client::new();
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }
}

/// Opens the data directory's database directly, waiting for a stopped server to let go of it.
pub fn open_db(path: &Path) -> sled::Db {
    for _ in 0..100 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(e) => panic!("open data: {e}"),
        }
    }
    panic!("the data directory stayed locked");
}

/// Status, content type and JSON body of a response.
pub async fn answer(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("body");
    let body = accord_engine::json::value_from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, body)
}

/// Asserts an RFC 9457 problem of `code` and `status`; returns the body for a snapshot.
pub async fn problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    let (got, content_type, body) = answer(response).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert_eq!(
        body["type"],
        format!("https://accord.dev/problems/{code}"),
        "{body}"
    );
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}
