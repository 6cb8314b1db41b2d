//! The HTTP sidecar next to the chain: `accord serve`'s routes in the same process, over the same
//! state. Reads, pre-check evaluations (`/v1/evaluate`, AuthZEN), metrics and health keep
//! working; the two routes that would change the state outside consensus are refused, since
//! blocks come only from CometBFT and governance transactions go through its mempool
//! (`broadcast_tx_*`).

use accord_server::problem::{Problem, ProblemKind};
use accord_server::AppState;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// The routes that write state outside consensus, refused next to a chain.
const CONSENSUS_ONLY: [&str; 2] = ["/v1/blocks", "/v1/governance"];

/// `accord serve`'s router, less its state-changing routes.
pub fn router(state: AppState) -> Router {
    accord_server::router(state).layer(from_fn(refuse_writes))
}

async fn refuse_writes(req: Request, next: Next) -> Response {
    if req.method() == Method::POST && CONSENSUS_ONLY.contains(&req.uri().path()) {
        return Problem::new(
            ProblemKind::MethodNotAllowed,
            format!(
                "`POST {}` is not served next to a chain: blocks come from CometBFT, and governance transactions are submitted with `broadcast_tx_sync`",
                req.uri().path()
            ),
        )
        .into_response();
    }
    next.run(req).await
}
