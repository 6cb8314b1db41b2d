//! `GET /v1/decisions` (the decision log, paged and filtered) and `GET /v1/audit/verify` (the
//! chain recomputed, after the verified checkpoint or in full).

use super::examples as ex;
use super::openapi::ProblemDetails;
use super::Routes;
use crate::decision_log::{PageQuery, Scope};
use crate::extract::parse_query;
use crate::problem::{join, LogReadError, Problem, ProblemKind};
use crate::respond::json_response;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn router() -> Routes {
    Routes::new()
        .get("/v1/decisions", decisions)
        .get("/v1/audit/verify", verify)
}

/// Default and largest `limit`.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// Entries examined per page at most, so a filter matching nothing cannot scan without bound.
pub const SCAN_LIMIT: usize = 100_000;

/// The query of `GET /v1/decisions`; an unknown parameter is refused (a typo'd filter must not
/// return everything).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionsQuery {
    after: Option<u64>,
    limit: Option<usize>,
    tx: Option<String>,
    patient: Option<String>,
    outcome: Option<String>,
    version: Option<String>,
}

/// `GET /v1/decisions?after=<seq>&limit=<n>&tx=&patient=&outcome=allow|deny&version=`.
///
/// Answers `{"decisions":[entries...],"next_after":seq|null}`; entries are the stored log entries.
#[utoipa::path(
    get, path = "/v1/decisions", tag = "audit", operation_id = "decisions",
    summary = "The decision log, paged and filtered",
    params(
        ("after" = Option<u64>, Query, description = "entries after this sequence number (default 0)", example = 0),
        ("limit" = Option<usize>, Query, description = "at most this many entries (default 100, at most 1000)", example = 10),
        ("tx" = Option<String>, Query, description = "only this transaction id"),
        ("patient" = Option<String>, Query, description = "only this patient"),
        ("outcome" = Option<String>, Query, description = "`allow` or `deny`"),
        ("version" = Option<String>, Query, description = "only decisions under this policy version (`sha256:…`)"),
    ),
    responses(
        (status = 200, description = "`{decisions, next_after}`; `next_after` null when the log has no more", content_type = "application/json", body = Object,
            examples(("page" = (value = json!(ex::decisions_page()))))),
        (status = 400, description = "`invalid-request`: a bad or unknown parameter", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["audit"]))
)]
async fn decisions(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let q: DecisionsQuery = parse_query(raw.as_deref())?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Problem::at(
            ProblemKind::InvalidRequest,
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if let Some(o) = &q.outcome {
        if o != "allow" && o != "deny" {
            return Err(Problem::at(
                ProblemKind::InvalidRequest,
                "outcome",
                format!("`{o}`: expected `allow` or `deny`"),
            ));
        }
    }
    let query = PageQuery {
        after: q.after.unwrap_or(0),
        limit,
        scan_limit: SCAN_LIMIT,
        tx: q.tx,
        patient: q.patient,
        outcome: q.outcome,
        version: q.version,
    };
    let log = Arc::clone(&state.storage()?.log);
    let page = join(
        "query task",
        tokio::task::spawn_blocking(move || log.page(&query).map_err(LogReadError)),
    )
    .await??;
    let mut out = String::from("{\"decisions\":[");
    out.push_str(&page.entries.join(","));
    out.push_str("],\"next_after\":");
    match page.next_after {
        Some(seq) => out.push_str(&seq.to_string()),
        None => out.push_str("null"),
    }
    out.push('}');
    Ok(json_response(out))
}

/// The query of `GET /v1/audit/verify`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    full: Option<bool>,
}

/// Sets its flag when dropped: with the request's future (the client went away, or the request
/// timed out), or once the answer is made.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `GET /v1/audit/verify[?full=true]`: `{"ok":true,"length":n,"head":"sha256:…","checked_from":s,
/// "checked":k,"full":bool}` or, at the first entry that does not verify, the same with
/// `"ok":false`, `length` the sound entries before it, `head` the last sound hash and
/// `"broken":{"seq":s,"reason":"…"}`. Both are HTTP 200: the check ran; its result is in the body.
///
/// Without `full`, only the entries after the verified checkpoint are recomputed (one such
/// verification at a time; others wait for it). `full=true` recomputes every entry; while one
/// runs, another is refused with `verification-in-progress` (429). Either stops between chunks
/// once its request is gone.
#[utoipa::path(
    get, path = "/v1/audit/verify", tag = "audit", operation_id = "audit_verify",
    summary = "Recompute the decision log's chain",
    description = "From the verified checkpoint, or with `full=true` from the first entry. The finding is in the body: both a sound and a broken chain are 200.",
    params(("full" = Option<bool>, Query, description = "verify from the first entry", example = true)),
    responses(
        (status = 200, description = "`{ok, length, head, checked_from, checked, full, broken?}`", content_type = "application/json", body = Object,
            examples(("full" = (value = json!(ex::verify_answer()))))),
        (status = 400, description = "`invalid-request`: a parameter other than `full`", content_type = "application/problem+json", body = ProblemDetails),
        (status = 429, description = "`verification-in-progress`: a full verification already runs", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["audit"]))
)]
async fn verify(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let q: VerifyQuery = parse_query(raw.as_deref())?;
    let storage = state.storage()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancel));
    let task = if q.full == Some(true) {
        let Some(slot) = storage.log.try_full_slot() else {
            return Err(Problem::new(
                ProblemKind::VerificationInProgress,
                "a full verification of the decision log is running; retry after 1 s",
            )
            .retry_after(1));
        };
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            storage
                .log
                .verify_scope(Scope::Full, &cancel)
                .map_err(LogReadError)
        })
    } else {
        let slot = storage.log.incremental_slot().await;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            storage
                .log
                .verify_scope(Scope::SinceCheckpoint, &cancel)
                .map_err(LogReadError)
        })
    };
    let result = join("verify task", task)
        .await??
        .ok_or_else(|| Problem::new(ProblemKind::Internal, "verification cancelled"))?;
    if !result.ok {
        tracing::warn!(broken = ?result.broken, full = result.full, "decision log does not verify");
    }
    let body = serde_json::to_string(&result)?;
    Ok(json_response(body))
}
