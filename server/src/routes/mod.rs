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
//! - [`openapi`]: `GET /openapi.json`, the API document generated from the handlers'
//!   annotations, with the examples of [`examples`].
//! - [`backup`]: `POST /v1/backup`.

pub mod audit;
pub mod authzen;
pub mod backup;
pub mod blocks;
pub mod consents;
pub mod evaluate;
pub mod examples;
pub mod governance;
pub mod openapi;
pub mod ops;

use crate::middleware;
use crate::state::AppState;
use crate::tokens::Role;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;

/// Routes of one resource, built only through [`Routes::get`] and [`Routes::post`], which also
/// record each route's method and path: [`route_table`] is the list of what is served, not a copy
/// kept beside it.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<(Method, &'static str)>,
}

impl Routes {
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    pub fn get<H, T>(mut self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, get(handler));
        self.table.push((Method::GET, path));
        self
    }

    pub fn post<H, T>(mut self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, post(handler));
        self.table.push((Method::POST, path));
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

/// One served route: method, path (axum's syntax, `{id}` for a parameter) and the role its token
/// must carry (`None`: open to every caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub role: Option<Role>,
}

/// The API's routes by the role they need; `None` for the open ones (health, readiness, metrics,
/// AuthZEN discovery, the API document).
fn groups() -> [(Option<Role>, Routes); 5] {
    [
        (
            Some(Role::Evaluate),
            evaluate::router().merge(authzen::router()),
        ),
        (Some(Role::Ledger), blocks::router()),
        (Some(Role::Governance), governance::router()),
        (
            Some(Role::Audit),
            audit::router()
                .merge(consents::router())
                .merge(backup::router()),
        ),
        (
            None,
            ops::router()
                .merge(authzen::discovery_router())
                .merge(openapi::router()),
        ),
    ]
}

/// Every route the API serves.
pub fn route_table() -> Vec<RouteInfo> {
    groups()
        .into_iter()
        .flat_map(|(role, routes)| {
            routes
                .table
                .into_iter()
                .map(move |(method, path)| RouteInfo { method, path, role })
        })
        .collect()
}

/// The whole HTTP API over `state`. Every endpoint but the health, readiness, metrics, AuthZEN
/// discovery and API-document ones is guarded: bounded concurrency, a bearer token with the
/// endpoint's role, the timeout and the body limit. Every request is observed (span, metrics,
/// `X-Request-ID`).
pub fn router(state: AppState) -> Router {
    let mut guarded = Router::new();
    let mut open = Router::new();
    for (role, routes) in groups() {
        match role {
            Some(role) => {
                guarded = guarded.merge(
                    routes
                        .router
                        .route_layer(from_fn_with_state((state.clone(), role), middleware::admit)),
                )
            }
            None => open = open.merge(routes.router),
        }
    }
    guarded
        .layer(DefaultBodyLimit::max(state.limits.body_limit))
        .merge(open)
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}
