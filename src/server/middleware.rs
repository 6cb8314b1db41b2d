//! Layers every request passes: a tracing span and `X-Request-ID` echo, metrics, bounded
//! concurrency (503 + `Retry-After` instead of an unbounded queue), a timeout, and the bearer
//! token on the guarded endpoints.

use crate::server::metrics::Endpoint;
use crate::server::problem::{Problem, ProblemKind, ProblemMarker};
use crate::server::state::AppState;
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

/// At most `--max-concurrency` requests run at once; the next one gets a 503 problem with
/// `Retry-After` at once instead of waiting in an unbounded queue.
pub async fn limit_concurrency(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
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
    next.run(req).await
}

/// A request that runs longer than `--request-timeout` is answered with a 503 problem. A decision
/// whose log append was already under way may still be logged: the log can hold a decision the
/// client never saw, never the reverse.
pub async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
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

/// The bearer token (`--token`) on the guarded endpoints, compared in constant time.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(expected) = &state.limits.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let detail = match given {
            None => Some("send `Authorization: Bearer <token>`"),
            Some(token) if !constant_time_eq(token.trim().as_bytes(), expected.as_bytes()) => {
                Some("the bearer token is not the configured one")
            }
            Some(_) => None,
        };
        if let Some(detail) = detail {
            return Problem::new(ProblemKind::Unauthorized, detail).into_response();
        }
    }
    next.run(req).await
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
