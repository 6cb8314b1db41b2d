//! The HTTP API, one module per resource, each with its own router; [`router`] merges them and
//! applies the layers.
//!
//! - [`evaluate`]: `POST /v1/evaluate`, `POST /v1/evaluate/batch`.
//! - [`authzen`]: the AuthZEN API (`/access/v1/evaluation[s]`, `/.well-known/authzen-configuration`).
//! - [`blocks`]: `POST /v1/blocks`, the ledger's block feed.
//! - [`governance`]: `POST /v1/governance`, `GET /v1/proposals[/{id}]`, `/v1/policy-set`, `/v1/members`.
//! - [`consents`]: `GET /v1/consents`.
//! - [`audit`]: `GET /v1/decisions`, `GET /v1/audit/verify`.
//! - [`ops`]: `GET /healthz`, `/readyz`, `/metrics`.
//! - [`backup`]: `POST /v1/backup`.

pub mod audit;
pub mod authzen;
pub mod backup;
pub mod blocks;
pub mod consents;
pub mod evaluate;
pub mod governance;
pub mod ops;

use crate::middleware;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::Router;

/// The whole HTTP API over `state`. Every endpoint but the health, readiness, metrics and AuthZEN
/// discovery ones is guarded: bounded concurrency, the bearer token, the timeout and the body
/// limit. Every request is observed (span, metrics, `X-Request-ID`).
pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .merge(evaluate::router())
        .merge(authzen::router())
        .merge(audit::router())
        .merge(blocks::router())
        .merge(governance::router())
        .merge(consents::router())
        .merge(backup::router())
        .route_layer(from_fn_with_state(state.clone(), middleware::admit))
        .layer(DefaultBodyLimit::max(state.limits.body_limit));
    let open = Router::new()
        .merge(ops::router())
        .merge(authzen::discovery_router());
    guarded
        .merge(open)
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}
