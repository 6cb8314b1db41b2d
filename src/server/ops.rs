//! `GET /healthz` (the process answers), `GET /readyz` (it can decide and log), `GET /metrics`.

use crate::server::metrics::Gauges;
use crate::server::problem::{Problem, ProblemKind};
use crate::server::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn healthz() -> Response {
    crate::server::evaluate::json_response(json!({ "status": "ok" }).to_string())
}

/// Ready when the decision log is writable and the node (once wired) says so.
pub async fn readyz(State(state): State<AppState>) -> Result<Response, Problem> {
    if let Some(node) = &state.node {
        node.ready().map_err(|reason| {
            Problem::new(ProblemKind::NotReady, format!("not ready: {reason}")).retry_after(1)
        })?;
    }
    let set = state.policy.current();
    Ok(crate::server::evaluate::json_response(
        json!({
            "status": "ready",
            "policy_set": { "name": set.bundle.name(), "version": set.version(), "activated_at_height": set.activated_at_height },
            "decision_log": { "entries": state.log.len(), "head": state.log.head_hash() },
        })
        .to_string(),
    ))
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let set = state.policy.current();
    let gauges = Gauges {
        policy_name: set.bundle.name(),
        policy_version: set.version(),
        activated_at_height: set.activated_at_height,
        applied_height: state.node.as_ref().and_then(|n| n.applied_height()),
        log_entries: state.log.len(),
        log_rounds: {
            use std::sync::atomic::Ordering::Relaxed;
            let s = state.log.stats();
            (
                s.rounds.load(Relaxed),
                s.write_micros.load(Relaxed) as f64 / 1e6,
                s.flush_micros.load(Relaxed) as f64 / 1e6,
            )
        },
        data_bytes: state.db.size_on_disk().ok(),
        in_flight: state
            .limits
            .max_concurrency
            .saturating_sub(state.permits.available_permits()),
        dropped_log_lines: super::dropped_log_lines(),
    };
    let text = state.metrics.render(&gauges, |out| {
        if let Some(node) = &state.node {
            node.write_metrics(out);
        }
    });
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
