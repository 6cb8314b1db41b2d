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
pub mod backup;
pub mod config;
pub mod decision_log;
pub mod defaults;
pub mod extract;
pub mod listener;
pub mod metrics;
pub mod middleware;
pub mod node;
pub mod problem;
pub mod process_metrics;
pub mod refusal_budget;
pub mod respond;
pub mod routes;
pub mod state;
pub mod storage;
pub mod tls;
pub mod tokens;

pub use config::{LogFormat, ServeArgs, ServeConfig};
pub use decision_log::DecisionLog;
pub use node::Node;
pub use routes::router;
pub use state::{AppState, SharedState, StartError};

use std::future::Future;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};

/// Serves `state` on `listener` (a `TcpListener` for plain HTTP, or
/// [`listener::CheckedListener::tls`]) until `shutdown` resolves, then lets in-flight requests
/// finish and flushes the database. With TLS, SIGHUP reloads the certificate and key.
pub async fn serve(
    listener: impl Into<listener::CheckedListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.into();
    let app = router(state.clone());
    let supervisor = tokio::spawn(storage::supervise(state.clone()));
    let reloader = listener
        .acceptor()
        .map(|acceptor| tokio::spawn(Arc::clone(acceptor).reload_on_sighup()));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<listener::PeerAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    supervisor.abort();
    let _ = supervisor.await;
    if let Some(reloader) = reloader {
        reloader.abort();
        let _ = reloader.await;
    }
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
/// it is dropped. `accord abci` installs the same.
pub fn init_tracing(config: &ServeConfig) -> WorkerGuard {
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

/// Logs how the server is protected at start: TLS, client certificates, the callers and their
/// roles, and, loudly, what `--insecure` leaves open.
fn log_protection(config: &ServeConfig) {
    let tls = match &config.tls {
        Some(files) if files.client_ca.is_some() => "https, client certificates required",
        Some(_) => "https",
        None => "plain http",
    };
    let callers = config.tokens.as_ref().map_or_else(
        || "none: guarded endpoints are open".to_owned(),
        |t| t.describe().join("; "),
    );
    tracing::info!(transport = tls, tokens = %callers, "protection");
    if config.insecure {
        let mut open = Vec::new();
        if config.tls.is_none() {
            open.push("without TLS: requests and tokens cross the network in clear text");
        }
        if config.tokens.is_none() {
            open.push("without tokens: anyone who reaches the port may call every endpoint");
        }
        tracing::warn!(
            listen = %config.listen,
            open = %open.join("; "),
            "INSECURE: --insecure is set; /readyz reports \"insecure\": true"
        );
    }
}

/// Lines the process log holds for its writer before it drops new ones.
const LOG_LINES_BUFFERED: usize = 64 * 1024;

/// `accord serve`: resolve the configuration, load the bundle, open the data directory, serve
/// until SIGTERM/SIGINT. Prints one line `{"listening":"ADDR"}` on standard output once bound.
pub fn run(args: ServeArgs) -> Result<(), StartError> {
    let config = ServeConfig::resolve(args)?;
    // Held until `run` returns: dropping it writes the log's last lines.
    let _log = init_tracing(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    runtime.block_on(async {
        let bundle = state::load_bundle(&config)?;
        let acceptor = config.tls.clone().map(tls::TlsAcceptor::new).transpose()?;
        let state = AppState::open(&config, Arc::new(bundle))?;
        let tcp = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError::Listen {
                addr: config.listen.to_string(),
                reason: e.to_string(),
            })?;
        let addr = tcp
            .local_addr()
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        println!("{}", serde_json::json!({ "listening": addr.to_string() }));
        let serving = record_serving(&config.data, addr, acceptor.is_some());
        log_protection(&config);
        let policies = state::bundle_source(&config)?.map_or_else(
            || "(built-in bundle)".to_owned(),
            |p| p.display().to_string(),
        );
        let genesis = config.genesis.as_ref().map_or_else(
            || defaults::DEV_GENESIS_NAME.to_owned(),
            |p| p.display().to_string(),
        );
        tracing::info!(%addr, data = %config.data.display(), %policies, %genesis, "listening");
        let listener = match acceptor {
            Some(acceptor) => listener::CheckedListener::tls(tcp, acceptor),
            None => listener::CheckedListener::plain(tcp),
        };
        let served = serve(listener, state, shutdown_signal())
            .await
            .map_err(|e| StartError::Runtime(e.to_string()));
        if let Some(path) = serving {
            let _ = std::fs::remove_file(path);
        }
        served
    })
}

/// Records in the data directory where this node listens ([`backup::SERVING_FILE`]), so that
/// `accord backup --data DIR` finds it; an unspecified address is reached on loopback. A
/// failure only costs that convenience (the backup can name the node with `--node`).
fn record_serving(
    data: &std::path::Path,
    addr: std::net::SocketAddr,
    https: bool,
) -> Option<std::path::PathBuf> {
    let mut reach = addr;
    if reach.ip().is_unspecified() {
        reach.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let path = data.join(backup::SERVING_FILE);
    let text = serde_json::json!({ "url": format!("{}://{reach}", if https { "https" } else { "http" }), "pid": std::process::id() });
    match std::fs::write(&path, text.to_string()) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "cannot record the serving address");
            None
        }
    }
}
