//! `accord abci`: its flags, the ABCI socket, and the process that serves it next to the HTTP
//! sidecar until SIGTERM/SIGINT.

use crate::app::App;
use crate::genesis;
use accord_server::config::ConfigError;
use accord_server::state::{load_bundle, load_genesis};
use accord_server::{AppState, LogFormat, ServeArgs, ServeConfig, StartError};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower::limit::ConcurrencyLimit;
use tower::ServiceBuilder;
use tower_abci::v038::Server;
use tower_abci::BoxError;

/// Default `--listen`: where CometBFT's `proxy_app` connects by default.
pub const DEFAULT_LISTEN: &str = "tcp://127.0.0.1:26658";

/// The flags of `accord abci`; each is also read from its `ACCORD_*` variable. Those it shares
/// with `accord serve` mean the same, and a `--config` file is read as for `serve` (its `listen`
/// is the HTTP sidecar's address).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AbciArgs {
    /// ABCI socket CometBFT connects to (its `proxy_app`): `tcp://HOST:PORT` or
    /// `unix:///PATH` [default: tcp://127.0.0.1:26658].
    #[arg(long, env = "ACCORD_ABCI_LISTEN")]
    pub listen: Option<String>,
    /// The HTTP sidecar's address (evaluations, reads, metrics) [default: 127.0.0.1:8181].
    #[arg(long, env = "ACCORD_HTTP_LISTEN")]
    pub http: Option<String>,
    /// Data directory (embedded sled database) [default: ./accord-data].
    #[arg(long, env = "ACCORD_DATA")]
    pub data: Option<PathBuf>,
    /// Policy bundle directory: the genesis policy set [default: ./policies, else the
    /// repository's bundle].
    #[arg(long, env = "ACCORD_POLICIES")]
    pub policies: Option<PathBuf>,
    /// Accord genesis file (consortium members and voting rules).
    #[arg(long, env = "ACCORD_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Configuration file (TOML), as for `accord serve`.
    #[arg(long, env = "ACCORD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, env = "ACCORD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter (tracing-subscriber syntax) [default: info].
    #[arg(long, env = "ACCORD_LOG")]
    pub log: Option<String>,
    /// Bearer token required on the sidecar's /v1 and /access/v1 endpoints [default: none].
    #[arg(long, env = "ACCORD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the `app_state` of CometBFT's genesis for this Accord genesis and policy set, and
    /// exit.
    #[arg(long)]
    pub print_app_state: bool,
}

impl AbciArgs {
    /// The sidecar's configuration, as `accord serve` would read it.
    fn serve_args(&self) -> ServeArgs {
        ServeArgs {
            listen: self.http.clone(),
            data: self.data.clone(),
            policies: self.policies.clone(),
            genesis: self.genesis.clone(),
            config: self.config.clone(),
            log_format: self.log_format,
            log: self.log.clone(),
            token: self.token.clone(),
            ..ServeArgs::default()
        }
    }
}

/// Where the ABCI socket listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbciAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl AbciAddr {
    /// `tcp://HOST:PORT` (or a bare `HOST:PORT`) with an IP address, or `unix:///PATH`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(ConfigError::new("listen", "`unix://` needs a socket path"));
            }
            return Ok(AbciAddr::Unix(PathBuf::from(path)));
        }
        let host_port = text.strip_prefix("tcp://").unwrap_or(text);
        let addr = host_port.parse::<SocketAddr>().map_err(|e| {
            ConfigError::new(
                "listen",
                format!("`{text}`: {e}; expected tcp://IP:PORT or unix:///PATH"),
            )
        })?;
        if addr.port() == 0 {
            return Err(ConfigError::new(
                "listen",
                format!("`{text}`: the ABCI port must be the fixed one CometBFT's proxy_app names, not 0"),
            ));
        }
        Ok(AbciAddr::Tcp(addr))
    }

    /// Whether the socket can be bound, checked before anything is served: a taken port is a
    /// start error, not a stop once running.
    fn check_bindable(&self) -> Result<(), StartError> {
        let refused = |reason: String| StartError::Listen {
            addr: self.to_string(),
            reason,
        };
        match self {
            AbciAddr::Tcp(addr) => std::net::TcpListener::bind(addr)
                .map(drop)
                .map_err(|e| refused(e.to_string())),
            AbciAddr::Unix(path) => match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                    Err(refused(format!("{} is not a directory", dir.display())))
                }
                _ => remove_stale_socket(path).map_err(|e| refused(e.to_string())),
            },
        }
    }
}

impl fmt::Display for AbciAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbciAddr::Tcp(addr) => write!(f, "tcp://{addr}"),
            AbciAddr::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// The consensus connection's requests run one at a time, in order: a block is finalized before
/// it is committed, and committed before the next is proposed.
pub type AbciServer = Server<ConcurrencyLimit<App>, App, App, App>;

/// The ABCI server over `app`: its four connections (consensus, mempool, info, snapshot).
pub fn abci_server(app: App) -> Result<AbciServer, BoxError> {
    Server::builder()
        .consensus(
            ServiceBuilder::new()
                .concurrency_limit(1)
                .service(app.clone()),
        )
        .mempool(app.clone())
        .info(app.clone())
        .snapshot(app)
        .finish()
        .ok_or_else(|| "an ABCI service is missing".into())
}

/// Serves `server` on `addr` until it fails. A Unix socket left by a previous run is removed.
pub async fn listen(server: AbciServer, addr: AbciAddr) -> Result<(), BoxError> {
    match addr {
        AbciAddr::Tcp(addr) => server.listen_tcp(addr).await,
        AbciAddr::Unix(path) => {
            remove_stale_socket(&path)?;
            server.listen_unix(path).await
        }
    }
}

#[cfg(unix)]
fn remove_stale_socket(path: &std::path::Path) -> Result<(), BoxError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => Ok(std::fs::remove_file(path)?),
        Ok(_) => Err(format!("{} exists and is not a socket", path.display()).into()),
        Err(_) => Ok(()),
    }
}

#[cfg(not(unix))]
fn remove_stale_socket(_: &std::path::Path) -> Result<(), BoxError> {
    Ok(())
}

/// `accord abci`: resolve the configuration, open the data directory, serve ABCI and the HTTP
/// sidecar until SIGTERM/SIGINT (or until the ABCI socket fails). Prints one line
/// `{"listening":"HTTP ADDR","abci":"ABCI ADDR"}` on standard output once both are bound.
pub fn run(args: AbciArgs) -> Result<(), StartError> {
    let addr = AbciAddr::parse(args.listen.as_deref().unwrap_or(DEFAULT_LISTEN))?;
    let config = ServeConfig::resolve(args.serve_args())?;
    if args.print_app_state {
        let genesis = load_genesis(&config)?;
        let bundle = load_bundle(&config)?;
        println!("{}", genesis::app_state(&genesis.digest(bundle.version())));
        return Ok(());
    }
    let _log = accord_server::init_tracing(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    runtime.block_on(async {
        addr.check_bindable()?;
        let bundle = load_bundle(&config)?;
        let acceptor = config
            .tls
            .clone()
            .map(accord_server::tls::TlsAcceptor::new)
            .transpose()?;
        let state = AppState::open(&config, Arc::new(bundle))?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError::Listen {
                addr: config.listen.to_string(),
                reason: e.to_string(),
            })?;
        let http = listener
            .local_addr()
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        let server =
            abci_server(App::new(state.clone())).map_err(|e| StartError::Runtime(e.to_string()))?;
        let (stopped, mut abci_stopped) = tokio::sync::watch::channel(false);
        let abci = tokio::spawn({
            let addr = addr.clone();
            async move {
                let result = listen(server, addr).await;
                stopped.send_replace(true);
                result.map_err(|e| e.to_string())
            }
        });
        println!(
            "{}",
            serde_json::json!({ "listening": http.to_string(), "abci": addr.to_string() })
        );
        tracing::info!(%http, abci = %addr, data = %config.data.display(), "listening");
        let shutdown = async move {
            tokio::select! {
                () = accord_server::shutdown_signal() => {}
                _ = abci_stopped.changed() => {}
            }
        };
        // The sidecar is served as `accord serve` serves: over TLS when it is configured.
        let listener = match acceptor {
            Some(acceptor) => accord_server::listener::CheckedListener::tls(listener, acceptor),
            None => accord_server::listener::CheckedListener::plain(listener),
        };
        accord_server::serve(listener, state, shutdown)
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        if abci.is_finished() {
            if let Ok(Err(reason)) = abci.await {
                return Err(StartError::Listen {
                    addr: addr.to_string(),
                    reason,
                });
            }
        } else {
            abci.abort();
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_tcp_or_unix() {
        assert_eq!(
            AbciAddr::parse(DEFAULT_LISTEN).expect("default"),
            AbciAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 26658)))
        );
        assert_eq!(
            AbciAddr::parse("0.0.0.0:1").expect("bare"),
            AbciAddr::Tcp(SocketAddr::from(([0, 0, 0, 0], 1)))
        );
        let unix = AbciAddr::parse("unix:///run/accord.sock").expect("unix");
        assert_eq!(unix, AbciAddr::Unix(PathBuf::from("/run/accord.sock")));
        assert_eq!(unix.to_string(), "unix:///run/accord.sock");
    }

    #[test]
    fn a_bad_listen_address_names_the_setting() {
        for bad in [
            "unix://",
            "tcp://localhost",
            "http://1.2.3.4:5",
            "tcp://127.0.0.1:0",
        ] {
            let err = AbciAddr::parse(bad).expect_err(bad);
            assert_eq!(err.setting, "listen", "{bad}");
        }
    }

    #[test]
    fn a_taken_port_or_a_missing_directory_is_a_start_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = AbciAddr::Tcp(taken.local_addr().expect("addr"));
        assert!(matches!(
            addr.check_bindable(),
            Err(StartError::Listen { .. })
        ));
        let nowhere = AbciAddr::Unix(PathBuf::from("/nonexistent-accord-dir/abci.sock"));
        let err = nowhere.check_bindable().expect_err("no directory");
        assert!(err.to_string().contains("is not a directory"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, b"x").expect("write");
        let err = AbciAddr::Unix(file)
            .check_bindable()
            .expect_err("a regular file");
        assert!(err.to_string().contains("is not a socket"), "{err}");
    }
}
