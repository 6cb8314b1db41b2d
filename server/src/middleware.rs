//! Layers every request passes: a tracing span and `X-Request-ID` (the client's, or one made
//! here), and metrics; on the guarded endpoints, bounded concurrency (503 + `Retry-After` instead
//! of an unbounded queue), the bearer token and its role, and a timeout.

use crate::metrics::Endpoint;
use crate::problem::{Problem, ProblemKind, ProblemMarker};
use crate::state::AppState;
use crate::tokens::{Role, Verdict};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;

const REQUEST_ID: &str = "x-request-id";

/// Request ids for requests that come without one: `<process prefix>-<counter>` in hex, e.g.
/// `3f9a0c1e5b7d2a46-1c`. The prefix is random per process, so ids stay distinct across restarts
/// and across the sidecars of a consortium; the counter makes them distinct within a process.
/// Making one costs an atomic increment and a short format, not a random number.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        // std's hasher keys are random per process (and per `RandomState`); hashing the start time
        // with them gives a random prefix without a random-number crate.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        RequestIds {
            prefix: std::collections::hash_map::RandomState::new()
                .hash_one((nanos, std::process::id())),
            next: AtomicU64::new(1),
        }
    }

    /// The next id.
    pub fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let text = format!("{:016x}-{n:x}", self.prefix);
        // Hex digits and a hyphen are always a valid header value.
        HeaderValue::try_from(text).unwrap_or(HeaderValue::from_static("accord"))
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// The outermost layer: one span per request (method, path, request id; the guard records the
/// caller's `principal`, the handler `tx` and `outcome`), latency and problem metrics, and
/// `X-Request-ID` on every answer: the request's own, or one made here when it came without.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = match req.headers().get(REQUEST_ID) {
        Some(id) => id.clone(),
        None => state.request_ids.next(),
    };
    let endpoint = Endpoint::from_path(req.uri().path());
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = request_id.to_str().unwrap_or(""),
        principal = tracing::field::Empty,
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
    response.headers_mut().insert(REQUEST_ID, request_id);
    response
}

/// What every guarded endpoint passes, in one layer (each `from_fn` layer costs a boxed future
/// and a cloned route per request):
/// - at most `--max-concurrency` requests run at once; the next one gets a 503 problem with
///   `Retry-After` at once instead of waiting in an unbounded queue;
/// - when tokens are configured, a bearer token that carries the endpoint's role
///   ([`crate::tokens`]): 401 without a known token, 403 when it lacks the role;
/// - a request that runs longer than `--request-timeout` is answered with a 503 problem. A
///   decision whose log append was already under way may still be logged: the log can hold a
///   decision the client never saw, never the reverse;
/// - an answer marked [`crate::refusal_budget::Held`] (a governance client with no refusal left)
///   is held back, after its slot is given back.
pub async fn admit(
    State((state, role)): State<(AppState, Role)>,
    req: Request,
    next: Next,
) -> Response {
    let response = admitted(&state, role, req, next).await;
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

async fn admitted(state: &AppState, role: Role, req: Request, next: Next) -> Response {
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
    if let Some(problem) = token_problem(state, &req, role) {
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

/// Marks a request made inside the process (the ABCI application's `abci_query` answered by the
/// sidecar's own handlers), which no token is asked of. Only code in the process can set a
/// request extension: nothing a client sends becomes one.
#[derive(Clone, Copy, Debug)]
pub struct InProcess;

/// The 401 or 403 problem for a request whose token does not carry `role`; `None` when it may
/// pass (then the caller's name is recorded on the request's span).
fn token_problem(state: &AppState, req: &Request, role: Role) -> Option<Problem> {
    let tokens = state.limits.tokens.as_ref()?;
    if req.extensions().get::<InProcess>().is_some() {
        return None;
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let detail = match tokens.judge(authorization, role) {
        Verdict::Allowed(name) => {
            tracing::Span::current().record("principal", name);
            return None;
        }
        Verdict::Missing => "send `Authorization: Bearer <token>`".to_owned(),
        Verdict::Unknown => "the bearer token is none of the configured tokens".to_owned(),
        Verdict::Forbidden(name) => {
            tracing::Span::current().record("principal", name);
            return Some(Problem::new(
                ProblemKind::Forbidden,
                format!(
                    "the token of `{name}` does not carry the role `{}` this endpoint needs",
                    role.name()
                ),
            ));
        }
    };
    Some(Problem::new(ProblemKind::Unauthorized, detail))
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
