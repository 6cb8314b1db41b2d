//! RFC 9457 problem details: every error the server answers is one of these, with a stable `type`
//! URI (`https://accord.dev/problems/<code>`), a `title` fixed per code, the HTTP `status`, a
//! `detail` naming the field and the reason, and, where one applies, the `field` itself.

use crate::decision_log::LogError;
use accord_governance::BlockError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use tokio::sync::AcquireError;
use tokio::task::{JoinError, JoinHandle};

/// The base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://accord.dev/problems/";

/// The problem types the server answers. The code is part of the public API: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// 400: the body is not JSON (syntax error, with line and column).
    MalformedJson,
    /// 400: JSON, but not the request shape (a field of the wrong type, a missing field, an
    /// unknown top-level field of an Accord endpoint), or a bad query parameter.
    InvalidRequest,
    /// 401: the bearer token is missing or wrong.
    Unauthorized,
    /// 403: the bearer token is known but lacks the role the endpoint needs.
    Forbidden,
    /// 404: no such endpoint.
    NotFound,
    /// 405: the endpoint exists but not for this method.
    MethodNotAllowed,
    /// 413: the body is over `--body-limit`.
    PayloadTooLarge,
    /// 413: a batch holds more than `--max-batch` transactions.
    BatchTooLarge,
    /// 415: the content type is not JSON.
    UnsupportedMediaType,
    /// 422: the transaction does not parse or check (docs/contract.md §1); names the field.
    InvalidTransaction,
    /// 422: a consent or governance transaction sent for evaluation.
    NotAnAccessTransaction,
    /// 503: the decision could not be logged durably, so it is not answered.
    DecisionLogUnavailable,
    /// 503: `--max-concurrency` requests are already running; retry after `Retry-After`.
    Overloaded,
    /// 503: the request ran longer than `--request-timeout`.
    Timeout,
    /// 503: `/readyz` while the node cannot serve yet (e.g. replaying blocks).
    NotReady,
    /// 500: a bug; the detail says what.
    Internal,
    /// 400: the request line is not `METHOD target HTTP/1.x` (answered before HTTP parsing).
    BadRequestLine,
    /// 414: the request target is longer than the server accepts.
    UriTooLong,
    /// 409: a block that is not the next height (gap, or an old height never applied here);
    /// `expected_height` says which height is next.
    BlockOutOfOrder,
    /// 409: a different block at a height already applied, or a `previous` that is not the last
    /// block's hash; `expected_height` says which height is next.
    BlockConflict,
    /// 422: a block whose shape or one of whose transactions is invalid; names the field.
    InvalidBlock,
    /// 422: the governance message was refused and took no height; `code` is the governance
    /// refusal code (docs/governance.md).
    GovernanceRefused,
    /// 429: this client's governance messages were refused too often lately; retry after
    /// `Retry-After`.
    TooManyRefusals,
    /// 404: no proposal with this id.
    UnknownProposal,
    /// 503: the state could not be stored; nothing was applied.
    StateUnavailable,
    /// 429: a full verification of the decision log is already running.
    VerificationInProgress,
}

impl ProblemKind {
    pub fn code(self) -> &'static str {
        match self {
            ProblemKind::MalformedJson => "malformed-json",
            ProblemKind::InvalidRequest => "invalid-request",
            ProblemKind::Unauthorized => "unauthorized",
            ProblemKind::Forbidden => "forbidden",
            ProblemKind::NotFound => "not-found",
            ProblemKind::MethodNotAllowed => "method-not-allowed",
            ProblemKind::PayloadTooLarge => "payload-too-large",
            ProblemKind::BatchTooLarge => "batch-too-large",
            ProblemKind::UnsupportedMediaType => "unsupported-media-type",
            ProblemKind::InvalidTransaction => "invalid-transaction",
            ProblemKind::NotAnAccessTransaction => "not-an-access-transaction",
            ProblemKind::DecisionLogUnavailable => "decision-log-unavailable",
            ProblemKind::Overloaded => "overloaded",
            ProblemKind::Timeout => "timeout",
            ProblemKind::NotReady => "not-ready",
            ProblemKind::Internal => "internal",
            ProblemKind::BadRequestLine => "bad-request-line",
            ProblemKind::UriTooLong => "uri-too-long",
            ProblemKind::BlockOutOfOrder => "block-out-of-order",
            ProblemKind::BlockConflict => "block-conflict",
            ProblemKind::InvalidBlock => "invalid-block",
            ProblemKind::GovernanceRefused => "governance-refused",
            ProblemKind::UnknownProposal => "unknown-proposal",
            ProblemKind::StateUnavailable => "state-unavailable",
            ProblemKind::VerificationInProgress => "verification-in-progress",
            ProblemKind::TooManyRefusals => "too-many-refusals",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ProblemKind::MalformedJson => "The request body is not valid JSON",
            ProblemKind::InvalidRequest => "The request does not have the expected shape",
            ProblemKind::Unauthorized => "A valid bearer token is required",
            ProblemKind::Forbidden => "The token does not carry the role this endpoint needs",
            ProblemKind::NotFound => "No such endpoint",
            ProblemKind::MethodNotAllowed => "Method not allowed on this endpoint",
            ProblemKind::PayloadTooLarge => "The request body is too large",
            ProblemKind::BatchTooLarge => "The batch holds too many transactions",
            ProblemKind::UnsupportedMediaType => "The request body must be JSON",
            ProblemKind::InvalidTransaction => "The transaction is invalid",
            ProblemKind::NotAnAccessTransaction => "Only access transactions get a decision",
            ProblemKind::DecisionLogUnavailable => "The decision could not be logged",
            ProblemKind::Overloaded => "The server is at its concurrency limit",
            ProblemKind::Timeout => "The request took too long",
            ProblemKind::NotReady => "The server is not ready",
            ProblemKind::Internal => "Internal error",
            ProblemKind::BadRequestLine => "The request line is not HTTP/1.1",
            ProblemKind::UriTooLong => "The request target is too long",
            ProblemKind::BlockOutOfOrder => "The block is not the next height",
            ProblemKind::BlockConflict => "The block conflicts with the chain applied here",
            ProblemKind::InvalidBlock => "The block is invalid",
            ProblemKind::GovernanceRefused => "The governance message was refused",
            ProblemKind::UnknownProposal => "No such proposal",
            ProblemKind::StateUnavailable => "The state could not be stored",
            ProblemKind::VerificationInProgress => "A full verification is already running",
            ProblemKind::TooManyRefusals => "Too many refused governance messages from this client",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ProblemKind::MalformedJson
            | ProblemKind::InvalidRequest
            | ProblemKind::BadRequestLine => StatusCode::BAD_REQUEST,
            ProblemKind::UriTooLong => StatusCode::URI_TOO_LONG,
            ProblemKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ProblemKind::Forbidden => StatusCode::FORBIDDEN,
            ProblemKind::NotFound => StatusCode::NOT_FOUND,
            ProblemKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemKind::PayloadTooLarge | ProblemKind::BatchTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ProblemKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemKind::InvalidTransaction
            | ProblemKind::NotAnAccessTransaction
            | ProblemKind::InvalidBlock
            | ProblemKind::GovernanceRefused => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemKind::BlockOutOfOrder | ProblemKind::BlockConflict => StatusCode::CONFLICT,
            ProblemKind::UnknownProposal => StatusCode::NOT_FOUND,
            ProblemKind::DecisionLogUnavailable
            | ProblemKind::StateUnavailable
            | ProblemKind::Overloaded
            | ProblemKind::Timeout
            | ProblemKind::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ProblemKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ProblemKind::VerificationInProgress | ProblemKind::TooManyRefusals => {
                StatusCode::TOO_MANY_REQUESTS
            }
        }
    }

    pub fn type_uri(self) -> String {
        format!("{PROBLEM_BASE}{}", self.code())
    }
}

/// One problem answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
    /// The offending field as a path (`transactions[3].actor.type`), when one is to blame.
    pub field: Option<String>,
    /// Seconds for `Retry-After` (503s).
    pub retry_after: Option<u64>,
    /// Extension members of this problem type (RFC 9457 §3.2), e.g. `expected_height`.
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Marks a response as a problem of this kind (read by the metrics middleware).
#[derive(Debug, Clone, Copy)]
pub struct ProblemMarker(pub ProblemKind);

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(flatten)]
    extra: &'a BTreeMap<String, serde_json::Value>,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            detail: detail.into(),
            field: None,
            retry_after: None,
            extra: BTreeMap::new(),
        }
    }

    /// A problem blamed on `field`; the detail names it too.
    pub fn at(kind: ProblemKind, field: impl Into<String>, reason: impl AsRef<str>) -> Self {
        let field = field.into();
        Problem {
            kind,
            detail: format!("field `{field}`: {}", reason.as_ref()),
            field: Some(field),
            retry_after: None,
            extra: BTreeMap::new(),
        }
    }

    /// Adds an extension member.
    pub fn with(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(name.to_owned(), value.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The JSON body (RFC 9457 members plus `field`).
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(ProblemBody {
            kind: self.kind.type_uri(),
            title: self.kind.title(),
            status: self.kind.status().as_u16(),
            detail: &self.detail,
            field: self.field.as_deref(),
            extra: &self.extra,
        })
        .unwrap_or_default()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.kind.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.kind == ProblemKind::Unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"accord\""),
            );
        }
        response.extensions_mut().insert(ProblemMarker(self.kind));
        response
    }
}

/// A decision-log append failed: the decisions are not answered (503, retry after 1 s).
impl From<LogError> for Problem {
    fn from(e: LogError) -> Self {
        tracing::error!(error = %e, "decision log append failed");
        Problem::new(ProblemKind::DecisionLogUnavailable, e.to_string()).retry_after(1)
    }
}

/// A read of the decision log (a page, a verification) failed: 503, without `Retry-After`.
#[derive(Debug)]
pub struct LogReadError(pub LogError);

impl From<LogReadError> for Problem {
    fn from(LogReadError(e): LogReadError) -> Self {
        Problem::new(ProblemKind::DecisionLogUnavailable, e.to_string())
    }
}

/// A block the state machine refused, with the height it expects next.
#[derive(Debug)]
pub struct BlockRefusal {
    pub error: BlockError,
    pub next_height: u64,
}

impl From<BlockRefusal> for Problem {
    fn from(BlockRefusal { error, next_height }: BlockRefusal) -> Self {
        match error {
            BlockError::OutOfOrder { expected, got } => Problem::at(
                ProblemKind::BlockOutOfOrder,
                "height",
                format!("expected height {expected}, got {got}"),
            )
            .with("expected_height", expected),
            BlockError::Conflict { height } => Problem::at(
                ProblemKind::BlockConflict,
                "height",
                format!("a different block was applied at height {height}"),
            )
            .with("expected_height", next_height),
            BlockError::PreviousMismatch { expected, .. } => Problem::at(
                ProblemKind::BlockConflict,
                "previous",
                format!("does not match the last block's hash {expected}"),
            )
            .with("expected_height", next_height),
            BlockError::Transaction(e) => Problem::at(ProblemKind::InvalidBlock, e.field, e.reason),
            BlockError::NotSequenced { refused } => {
                let mut problem = Problem::new(
                    ProblemKind::GovernanceRefused,
                    format!("{}: {}", refused.code, refused.message),
                )
                .with("code", refused.code.as_str())
                .with("next_height", next_height);
                problem.field = refused.field;
                problem
            }
            BlockError::Store(reason) => {
                tracing::error!(%reason, "state store failed");
                Problem::new(ProblemKind::StateUnavailable, reason).retry_after(1)
            }
        }
    }
}

/// A task of a request (on the blocking pool, or spawned) panicked or was cancelled.
#[derive(Debug)]
pub struct TaskFailed {
    /// What the task did (`decision task`, `block task`, ...), the start of the detail.
    pub task: &'static str,
    pub error: JoinError,
}

impl From<TaskFailed> for Problem {
    fn from(TaskFailed { task, error }: TaskFailed) -> Self {
        Problem::new(ProblemKind::Internal, format!("{task}: {error}"))
    }
}

/// Awaits `handle`, the task that does `task`; its failure is a [`TaskFailed`].
pub async fn join<T>(task: &'static str, handle: JoinHandle<T>) -> Result<T, TaskFailed> {
    handle.await.map_err(|error| TaskFailed { task, error })
}

/// The server's semaphores are never closed; should one be, the request fails as a bug.
impl From<AcquireError> for Problem {
    fn from(e: AcquireError) -> Self {
        Problem::new(ProblemKind::Internal, e.to_string())
    }
}

/// Serializing an answer failed: a bug.
impl From<serde_json::Error> for Problem {
    fn from(e: serde_json::Error) -> Self {
        Problem::new(ProblemKind::Internal, e.to_string())
    }
}

/// Every problem kind, for documentation tests.
pub const ALL_KINDS: [ProblemKind; 26] = [
    ProblemKind::MalformedJson,
    ProblemKind::InvalidRequest,
    ProblemKind::Unauthorized,
    ProblemKind::Forbidden,
    ProblemKind::NotFound,
    ProblemKind::MethodNotAllowed,
    ProblemKind::PayloadTooLarge,
    ProblemKind::BatchTooLarge,
    ProblemKind::UnsupportedMediaType,
    ProblemKind::InvalidTransaction,
    ProblemKind::NotAnAccessTransaction,
    ProblemKind::DecisionLogUnavailable,
    ProblemKind::Overloaded,
    ProblemKind::Timeout,
    ProblemKind::NotReady,
    ProblemKind::Internal,
    ProblemKind::BlockOutOfOrder,
    ProblemKind::BlockConflict,
    ProblemKind::InvalidBlock,
    ProblemKind::GovernanceRefused,
    ProblemKind::UnknownProposal,
    ProblemKind::StateUnavailable,
    ProblemKind::BadRequestLine,
    ProblemKind::UriTooLong,
    ProblemKind::VerificationInProgress,
    ProblemKind::TooManyRefusals,
];
