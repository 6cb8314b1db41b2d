//! `GET /healthz` (the process answers), `GET /readyz` (it can decide and log), `GET /metrics`.

use super::examples as ex;
use super::openapi::ProblemDetails;
use super::Routes;
use crate::metrics::Gauges;
use crate::problem::{Problem, ProblemKind};
use crate::respond::json_response;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub fn router() -> Routes {
    Routes::new()
        .get("/healthz", healthz)
        .get("/readyz", readyz)
        .get("/metrics", metrics)
}

#[utoipa::path(
    get, path = "/healthz", tag = "operations", operation_id = "healthz",
    summary = "The process serves",
    responses((status = 200, description = "Always, while the process serves", content_type = "application/json", body = Object,
        examples(("ok" = (value = json!(ex::healthz_answer())))))),
)]
async fn healthz() -> Response {
    json_response(json!({ "status": "ok" }).to_string())
}

/// Ready when the data directory is open and takes writes and the decision log's writer runs;
/// otherwise a 503 naming the reason (a storage fault heals by itself: see
/// [`crate::storage`]).
#[utoipa::path(
    get, path = "/readyz", tag = "operations", operation_id = "readyz",
    summary = "The server can decide and log",
    responses(
        (status = 200, description = "The active policy set, the log head, and whether `--insecure` is set", content_type = "application/json", body = Object,
            examples(("ready" = (value = json!(ex::readyz_answer()))))),
        (status = 503, description = "`not-ready`, naming the reason (a storage fault, a stopped log writer)", content_type = "application/problem+json", body = ProblemDetails),
    ),
)]
async fn readyz(State(state): State<AppState>) -> Result<Response, Problem> {
    let not_ready = |reason: String| {
        Problem::new(ProblemKind::NotReady, format!("not ready: {reason}")).retry_after(1)
    };
    let storage = state.storage().map_err(|p| not_ready(p.detail))?;
    if let Some(reason) = state.health.writes_refused() {
        return Err(not_ready(format!(
            "storage fault: {reason}; writes are refused until the data directory takes writes again"
        )));
    }
    if !storage.log.writer_alive() {
        return Err(not_ready("the decision log's writer has stopped".into()));
    }
    let set = storage.policy.current();
    let mut body = json!({
        "status": "ready",
        "insecure": state.protection.insecure,
        "policy_set": { "name": set.bundle.name(), "version": set.version(), "activated_at_height": set.activated_at_height },
        "decision_log": { "entries": storage.log.len(), "head": storage.log.head_hash() },
        "dev_genesis": state.dev_genesis,
    });
    if state.dev_genesis {
        body["warning"] = json!(crate::defaults::DEV_GENESIS_WARNING);
    }
    Ok(json_response(body.to_string()))
}

#[utoipa::path(
    get, path = "/metrics", tag = "operations", operation_id = "metrics",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String,
        examples(("metrics" = (value = json!(ex::metrics_answer())))))),
)]
async fn metrics(State(state): State<AppState>) -> Response {
    let storage = state.storage.load_full();
    let set = storage.as_ref().map(|s| s.policy.current());
    let log = storage.as_ref().map(|s| &s.log);
    let gauges = Gauges {
        policy_name: set.as_ref().map_or("", |s| s.bundle.name()),
        policy_version: set.as_ref().map_or("", |s| s.version()),
        activated_at_height: set.as_ref().map_or(0, |s| s.activated_at_height),
        applied_height: storage.as_ref().and_then(|s| s.node.applied_height()),
        log_entries: log.map_or(0, |l| l.len()),
        log_rounds: log.map_or((0, 0.0, 0.0), |l| {
            use std::sync::atomic::Ordering::Relaxed;
            let s = l.stats();
            (
                s.rounds.load(Relaxed),
                s.write_micros.load(Relaxed) as f64 / 1e6,
                s.flush_micros.load(Relaxed) as f64 / 1e6,
            )
        }),
        data_bytes: storage.as_ref().and_then(|s| s.db.size_on_disk().ok()),
        in_flight: state
            .limits
            .max_concurrency
            .saturating_sub(state.permits.available_permits()),
        dropped_log_lines: crate::dropped_log_lines(),
        storage_healthy: state.health.writes_refused().is_none() && storage.is_some(),
        storage_faults: state.health.counts(),
    };
    let text = state.metrics.render(&gauges, |out| {
        if let Some(storage) = &storage {
            storage.node.write_metrics(out);
        }
        crate::process_metrics::write(out);
    });
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
