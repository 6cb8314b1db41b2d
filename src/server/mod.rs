//! `accord serve`: the sidecar a ledger node calls (issue 4).
//!
//! One module per concern: [`config`] (flags, environment, file), [`state`] (shared state),
//! [`problem`] (RFC 9457 errors), [`body`] (JSON bodies), [`evaluate`] (`/v1/evaluate[/batch]`),
//! [`authzen`] (the AuthZEN API), [`audit`] (`/v1/decisions`, `/v1/audit/verify`),
//! [`decision_log`] (the hash-chained log), [`metrics`], [`middleware`] (limits, tracing, token),
//! [`ops`] (health, readiness, metrics), [`governance`] (the state machine's routes, to come).

pub mod audit;
pub mod authzen;
pub mod body;
pub mod config;
pub mod decision_log;
pub mod evaluate;
pub mod governance;
mod log_entry;
pub mod metrics;
pub mod middleware;
pub mod node;
pub mod ops;
pub mod problem;
pub mod state;

pub use config::{LogFormat, ServeArgs, ServeConfig};
pub use decision_log::DecisionLog;
pub use node::Node;
pub use state::{AppState, SharedState, StartError};

use accord_engine::Bundle;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The whole HTTP API over `state`.
pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route("/v1/evaluate", post(evaluate::evaluate))
        .route("/v1/evaluate/batch", post(evaluate::evaluate_batch))
        .route("/access/v1/evaluation", post(authzen::evaluation))
        .route("/access/v1/evaluations", post(authzen::evaluations))
        .route("/v1/decisions", get(audit::decisions))
        .route("/v1/audit/verify", get(audit::verify))
        .merge(governance::routes())
        .route_layer(from_fn_with_state(state.clone(), middleware::admit))
        .layer(DefaultBodyLimit::max(state.limits.body_limit));
    let open = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route(
            "/.well-known/authzen-configuration",
            get(authzen::configuration),
        );
    guarded
        .merge(open)
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// and flushes the database.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    let db = state.db.clone();
    drop(state);
    tokio::task::spawn_blocking(move || db.flush())
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
    tracing::info!("stopped; data flushed");
    Ok(())
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

fn init_tracing(config: &ServeConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) keeps the first subscriber.
    let _ = match config.log_format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// `accord serve`: resolve the configuration, load the bundle, open the data directory, serve
/// until SIGTERM/SIGINT. Prints one line `{"listening":"ADDR"}` on standard output once bound.
pub fn run(args: ServeArgs, default_policies: PathBuf) -> Result<(), StartError> {
    let config = ServeConfig::resolve(args, default_policies)?;
    init_tracing(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    runtime.block_on(async {
        let bundle = Bundle::load(&config.policies).map_err(|source| StartError::Bundle {
            path: config.policies.clone(),
            source,
        })?;
        let state = AppState::open(&config, Arc::new(bundle))?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|e| StartError::Listen {
                    addr: config.listen.to_string(),
                    reason: e.to_string(),
                })?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        println!("{}", serde_json::json!({ "listening": addr.to_string() }));
        tracing::info!(%addr, data = %config.data.display(), policies = %config.policies.display(), "listening");
        serve(listener, state, shutdown_signal())
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))
    })
}
