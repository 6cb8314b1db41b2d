//! `GET /v1/decisions` (the decision log, paged and filtered) and `GET /v1/audit/verify` (the
//! chain recomputed).

use crate::server::decision_log::PageQuery;
use crate::server::evaluate::json_response;
use crate::server::problem::{Problem, ProblemKind};
use crate::server::state::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

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
pub async fn decisions(
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
    let page = tokio::task::spawn_blocking(move || log.page(&query))
        .await
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("query task: {e}")))?
        .map_err(|e| Problem::new(ProblemKind::DecisionLogUnavailable, e.to_string()))?;
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

/// `GET /v1/audit/verify`: `{"ok":true,"length":n,"head":"sha256:…"}` or, at the first entry that
/// does not verify, `{"ok":false,"length":<sound entries before it>,"head":…,"broken":{"seq":s,
/// "reason":"…"}}`. Both are HTTP 200: the check ran; its result is in the body.
pub async fn verify(State(state): State<AppState>) -> Result<Response, Problem> {
    let log = Arc::clone(&state.storage()?.log);
    let result = tokio::task::spawn_blocking(move || log.verify())
        .await
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("verify task: {e}")))?
        .map_err(|e| Problem::new(ProblemKind::DecisionLogUnavailable, e.to_string()))?;
    if !result.ok {
        tracing::warn!(broken = ?result.broken, "decision log does not verify");
    }
    let body = serde_json::to_string(&result)
        .map_err(|e| Problem::new(ProblemKind::Internal, e.to_string()))?;
    Ok(json_response(body))
}

/// Parses a query string into `T`; a bad parameter is an `invalid-request` problem naming it.
/// Refuses a query whose `%` escapes are not two hex digits, or decode to bytes that are not
/// UTF-8: the form decoder would otherwise keep `%ZZ` as text, or replace the bytes, and answer
/// for a value the client did not send.
fn check_percent_encoding(raw: &str) -> Result<(), Problem> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                    let shown: String = raw[i..].chars().take(3).collect();
                    return Err(Problem::new(
                        ProblemKind::InvalidRequest,
                        format!("query: `{shown}` is not a percent-encoded byte (`%` and two hex digits)"),
                    ));
                };
                decoded.push(byte);
                i += 3;
            }
            b => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            "query: the percent-encoded bytes are not UTF-8",
        ));
    }
    Ok(())
}

pub fn parse_query<T: serde::de::DeserializeOwned + Default>(
    raw: Option<&str>,
) -> Result<T, Problem> {
    match raw {
        None | Some("") => Ok(T::default()),
        Some(raw) => {
            check_percent_encoding(raw)?;
            let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
            serde_path_to_error::deserialize(de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner().to_string();
                if field == "." {
                    Problem::new(ProblemKind::InvalidRequest, format!("query: {inner}"))
                } else {
                    Problem::at(ProblemKind::InvalidRequest, field, inner)
                }
            })
        }
    }
}
