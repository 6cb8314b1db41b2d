//! Layers every request passes: a tracing span and `X-Request-ID` echo, and metrics; on the
//! guarded endpoints, bounded concurrency (503 + `Retry-After` instead of an unbounded queue), the
//! bearer token and a timeout.

use crate::metrics::Endpoint;
use crate::problem::{Problem, ProblemKind, ProblemMarker};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tracing::Instrument;

const REQUEST_ID: &str = "x-request-id";

/// The outermost layer: one span per request (method, path, request id; the handler records `tx`
/// and `outcome`), latency and problem metrics, `X-Request-ID` echoed on every answer.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req.headers().get(REQUEST_ID).cloned();
    let endpoint = Endpoint::from_path(req.uri().path());
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""),
        tx = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    state.metrics.observe(endpoint, elapsed);
    if let Some(ProblemMarker(kind)) = response.extensions().get::<ProblemMarker>() {
        state.metrics.count_problem(*kind);
    }
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            micros = elapsed.as_micros() as u64,
            "answered"
        )
    });
    if let Some(id) = request_id {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

/// What every guarded endpoint passes, in one layer (each `from_fn` layer costs a boxed future
/// and a cloned route per request):
/// - at most `--max-concurrency` requests run at once; the next one gets a 503 problem with
///   `Retry-After` at once instead of waiting in an unbounded queue;
/// - the bearer token (`--token`), when one is configured, compared in constant time;
/// - a request that runs longer than `--request-timeout` is answered with a 503 problem. A
///   decision whose log append was already under way may still be logged: the log can hold a
///   decision the client never saw, never the reverse;
/// - an answer marked [`crate::refusal_budget::Held`] (a governance client with no refusal left)
///   is held back, after its slot is given back.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = admitted(&state, req, next).await;
    if response
        .extensions()
        .get::<crate::refusal_budget::Held>()
        .is_some()
    {
        // The request's slot is free again: holding the answer costs no one else a slot.
        state.refusals.hold().await;
    }
    response
}

async fn admitted(state: &AppState, req: Request, next: Next) -> Response {
    let Ok(_permit) = state.permits.clone().try_acquire_owned() else {
        return Problem::new(
            ProblemKind::Overloaded,
            format!(
                "the limit of {} requests in progress (--max-concurrency) is reached; retry after 1 s",
                state.limits.max_concurrency
            ),
        )
        .retry_after(1)
        .into_response();
    };
    if let Some(problem) = token_problem(state, &req) {
        return problem.into_response();
    }
    let limit = state.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            ProblemKind::Timeout,
            format!(
                "the request ran longer than {} ms (--request-timeout)",
                limit.as_millis()
            ),
        )
        .retry_after(1)
        .into_response(),
    }
}

/// The 401 problem for a request without the configured bearer token; `None` when it may pass.
fn token_problem(state: &AppState, req: &Request) -> Option<Problem> {
    let expected = state.limits.token.as_ref()?;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let detail = match given {
        None => "send `Authorization: Bearer <token>`",
        Some(token) if !constant_time_eq(token.trim().as_bytes(), expected.as_bytes()) => {
            "the bearer token is not the configured one"
        }
        Some(_) => return None,
    };
    Some(Problem::new(ProblemKind::Unauthorized, detail))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 404 for unknown paths.
pub async fn not_found(req: Request) -> Response {
    Problem::new(
        ProblemKind::NotFound,
        format!("no endpoint at `{}`", req.uri().path()),
    )
    .into_response()
}

/// 405 for a known path with the wrong method.
pub async fn method_not_allowed(req: Request) -> Response {
    let mut r = Problem::new(
        ProblemKind::MethodNotAllowed,
        format!("`{}` is not served at `{}`", req.method(), req.uri().path()),
    )
    .into_response();
    // axum adds `Allow` itself when it knows the methods; keep a content type on the problem.
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}
