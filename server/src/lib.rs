//! `accord serve`: the sidecar a ledger node calls, as a library (the `accord` binary runs it; the
//! tests and the load benchmark run it in-process).
//!
//! One module per concern: [`analysis`] (the advisory analysis of proposals), [`config`] (flags, environment, file), [`state`] (shared state),
//! [`routes`] (the HTTP API, one module per resource), [`extract`] (request bodies and queries),
//! [`respond`] (JSON answers), [`problem`] (RFC 9457 errors and the conversions into them),
//! [`middleware`] (limits, tracing, token), [`listener`] (the accepting socket), [`node`] (the
//! governance state machine behind a lock), [`storage`] (the data directory and its faults),
//! [`decision_log`] (the hash-chained log), [`metrics`].

pub mod analysis;
pub mod config;
pub mod decision_log;
pub mod extract;
pub mod listener;
pub mod metrics;
pub mod middleware;
pub mod node;
pub mod problem;
pub mod refusal_budget;
pub mod respond;
pub mod routes;
pub mod state;
pub mod storage;

pub use config::{LogFormat, ServeArgs, ServeConfig};
pub use decision_log::DecisionLog;
pub use node::Node;
pub use routes::router;
pub use state::{AppState, SharedState, StartError};

use accord_engine::Bundle;
use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};

/// Serves `state` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// and flushes the database.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let supervisor = tokio::spawn(storage::supervise(state.clone()));
    axum::serve(
        listener::CheckedListener(listener),
        app.into_make_service_with_connect_info::<listener::PeerAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    supervisor.abort();
    let _ = supervisor.await;
    let storage = state.storage.swap(None);
    drop(state);
    if let Some(storage) = storage {
        let db = storage.db.clone();
        // Dropping the storage joins the decision log's writer thread.
        tokio::task::spawn_blocking(move || {
            drop(storage);
            db.flush()
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
    }
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

/// Lines of the process log dropped because its writer fell behind (see [`init_tracing`]); unset
/// until `accord serve` installs its subscriber.
static DROPPED_LOG_LINES: OnceLock<ErrorCounter> = OnceLock::new();

/// How many process-log lines were dropped so far (`None` without `accord serve`'s subscriber).
pub fn dropped_log_lines() -> Option<usize> {
    DROPPED_LOG_LINES.get().map(ErrorCounter::dropped_lines)
}

/// Installs the process log: one line per request and event on standard error, formatted on the
/// thread that logs and written by a thread of its own through a buffer. A request never waits on
/// standard error (a stalled log pipe must not stall the sidecar; at default level every request
/// logs a line), and a burst costs one write per batch of lines, not one per line. Should the
/// writer fall behind by more than [`LOG_LINES_BUFFERED`] lines, further lines are dropped and
/// counted (`accord_log_lines_dropped_total`). The returned guard writes what is buffered when
/// it is dropped.
fn init_tracing(config: &ServeConfig) -> WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_LINES_BUFFERED)
        .thread_name("accord-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let _ = DROPPED_LOG_LINES.set(writer.error_counter());
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in files or a log shipper's pipe.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    // A second initialisation (tests) keeps the first subscriber.
    let _ = match config.log_format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}

/// Lines the process log holds for its writer before it drops new ones.
const LOG_LINES_BUFFERED: usize = 64 * 1024;

/// `accord serve`: resolve the configuration, load the bundle, open the data directory, serve
/// until SIGTERM/SIGINT. Prints one line `{"listening":"ADDR"}` on standard output once bound.
pub fn run(args: ServeArgs, default_policies: PathBuf) -> Result<(), StartError> {
    let config = ServeConfig::resolve(args, default_policies)?;
    // Held until `run` returns: dropping it writes the log's last lines.
    let _log = init_tracing(&config);
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
