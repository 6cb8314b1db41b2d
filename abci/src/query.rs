//! `abci_query`: the node's read paths, so that CometBFT's RPC answers them.
//!
//! - `/block/{height}`: the answer to an applied block (its decisions, outcomes, state root).
//! - `/decisions[?…]`: the decision log (`GET /v1/decisions`, same parameters).
//! - `/proposals`, `/proposals/{id}`, `/proposals/{id}/diff`, `/policy-set`, `/members`,
//!   `/consents[?…]`: governance and consent state (`GET /v1/…`).
//!
//! The `/v1` reads are answered by the sidecar's own handlers, so an answer is byte for byte the
//! HTTP one. `value` is the JSON; a failure's code is its HTTP status (404 unknown path or
//! resource, 400 a bad parameter, 503 unavailable) with the problem document in `value` and its
//! detail in `log`. Reads see the latest state: a query at another `height` is refused.

use crate::app::App;
use crate::tx::CODESPACE;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use bytes::Bytes;
use tendermint::abci::{request, response};
use tower::ServiceExt;

/// The `/v1` resources a query may read.
const READS: [&str; 5] = [
    "/decisions",
    "/proposals",
    "/policy-set",
    "/members",
    "/consents",
];

/// The largest answer read back from a handler: the sidecar's own answers are bounded by
/// their pagination; this only keeps a fault from growing without bound.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

pub async fn answer(app: &App, req: request::Query) -> response::Query {
    let committed = app.committed_height();
    let height = committed.try_into().unwrap_or_default();
    let asked = req.height.value();
    let path = req.path.as_str();
    let resource = path.split('?').next().unwrap_or_default();
    let outcome = if let Some(at) = resource.strip_prefix("/block/") {
        block(app, at)
    } else if asked != 0 && asked != committed {
        Err(problem(
            StatusCode::BAD_REQUEST,
            format!(
                "only the latest state is served: query at height 0 (or {committed}), not {asked}"
            ),
        ))
    } else if READS
        .iter()
        .any(|r| resource == *r || (*r == "/proposals" && resource.starts_with("/proposals/")))
    {
        read(app, path).await
    } else {
        Err(problem(
            StatusCode::NOT_FOUND,
            format!("no query path `{resource}`; see docs/contract.md §7"),
        ))
    };
    match outcome {
        Ok(value) => response::Query {
            value,
            key: Bytes::from(req.path.into_bytes()),
            height,
            ..Default::default()
        },
        Err(Failure { status, log, value }) => response::Query {
            code: u32::from(status.as_u16()).into(),
            log,
            value,
            key: Bytes::from(req.path.into_bytes()),
            height,
            codespace: CODESPACE.to_owned(),
            ..Default::default()
        },
    }
}

/// A failed query: the HTTP status it maps to, the detail, and the problem document.
struct Failure {
    status: StatusCode,
    log: String,
    value: Bytes,
}

fn problem(status: StatusCode, detail: String) -> Failure {
    let document = serde_json::json!({
        "type": "about:blank",
        "status": status.as_u16(),
        "detail": detail,
    });
    Failure {
        status,
        value: Bytes::from(document.to_string()),
        log: detail,
    }
}

fn block(app: &App, height: &str) -> Result<Bytes, Failure> {
    let height: u64 = height.parse().map_err(|_| {
        problem(
            StatusCode::BAD_REQUEST,
            format!("`{height}` is not a block height"),
        )
    })?;
    let node = app
        .state()
        .node()
        .map_err(|p| problem(StatusCode::SERVICE_UNAVAILABLE, p.detail))?;
    let answer = node
        .lock()
        .answer(height)
        .map_err(|e| problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    match answer {
        Some(answer) => Ok(Bytes::from(answer.to_json().to_owned())),
        None => Err(problem(
            StatusCode::NOT_FOUND,
            format!("no block {height} was applied here"),
        )),
    }
}

/// A `GET /v1{path}` answered by the sidecar's handler.
async fn read(app: &App, path: &str) -> Result<Bytes, Failure> {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(format!("/v1{path}"));
    // Answered in-process for CometBFT's `abci_query`: no bearer token is asked of it.
    request = request.extension(accord_server::middleware::InProcess);
    let request = request
        .body(Body::empty())
        .map_err(|e| problem(StatusCode::BAD_REQUEST, format!("`{path}`: {e}")))?;
    let response = match app.http().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
        .await
        .map_err(|e| problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    if status.is_success() {
        return Ok(body);
    }
    let detail = accord_engine::json::value_from_slice(&body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| status.to_string());
    Err(Failure {
        status,
        log: detail,
        value: body,
    })
}
