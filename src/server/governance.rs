//! Routes of the block state machine, wired by the governance work (issue 4, second half).
//!
//! To wire: give `AppState::node` the node (implementing [`crate::server::state::NodeHandle`]
//! for `/metrics` and `/readyz`), then add here, each handler taking `State<AppState>` and a
//! [`crate::server::body::JsonBody`] and answering a [`crate::server::problem::Problem`] on error:
//!
//! - `POST /v1/blocks` — apply a block; log its decisions with
//!   `state.log.append_all(&records)` (blocking) or `state.record(&requests, &decisions)` (async)
//!   before answering, then store the new consent snapshot in `state.consents`.
//! - `POST /v1/governance`, `GET /v1/proposals`, `GET /v1/proposals/{id}`, `GET /v1/policy-set`,
//!   `GET /v1/members`, `GET /v1/consents`.
//!
//! Routes added here sit behind the bearer token, the concurrency limit and the timeout, like
//! the evaluation endpoints.

use crate::server::state::AppState;
use axum::Router;

/// The state machine's routes (none yet).
pub fn routes() -> Router<AppState> {
    Router::new()
}
