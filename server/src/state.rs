//! The server's shared state: the data directory's storage (database, decision log, node, and
//! the policy set and consent state they publish), its health, metrics and limits.

use crate::config::ServeConfig;
use crate::decision_log::{DecisionLog, LogError, Record};
use crate::metrics::Metrics;
use crate::problem::{Problem, ProblemKind};
use crate::storage::{Opener, Storage, StorageHealth};
use accord_engine::{AccessRequest, Bundle, BundleError, Decision};
use accord_governance::Genesis;
use arc_swap::ArcSwapOption;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Limits the handlers apply themselves (the others are layers).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_batch: usize,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub max_concurrency: usize,
    pub token: Option<String>,
}

impl Limits {
    pub fn from_config(config: &ServeConfig) -> Self {
        Limits {
            max_batch: config.max_batch,
            body_limit: config.body_limit,
            request_timeout: config.request_timeout,
            max_concurrency: config.max_concurrency,
            token: config.token.clone(),
        }
    }
}

/// Shared by every handler. Cloning is one reference count: axum clones the state for every
/// extractor and middleware that takes it, several times per request.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] shares. Its parts are `Arc`s only where a part is handed out on its own
/// (an owned concurrency permit, the storage on the blocking pool).
pub struct SharedState {
    /// The data directory's storage: database, decision log, node, and the policy set and
    /// consent state they publish; `None` while it is reopened after a fault
    /// ([`crate::storage`]).
    pub storage: ArcSwapOption<Storage>,
    /// Whether the data directory takes writes.
    pub health: Arc<StorageHealth>,
    /// How to open the data directory again.
    pub opener: Arc<Opener>,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Bounds requests in progress (`--max-concurrency`).
    pub permits: Arc<Semaphore>,
    /// One permit per core for batches decided on the blocking pool.
    pub compute: Semaphore,
    /// The genesis file (`--genesis`).
    pub genesis: PathBuf,
}

impl AppState {
    /// Opens the database at `config.data`, the decision log in it, and the node: the state
    /// kept there, or a fresh state from the genesis (`--genesis`, default the repository's dev
    /// genesis) with `bundle` as its initial policy set.
    pub fn open(config: &ServeConfig, bundle: Arc<Bundle>) -> Result<Self, StartError> {
        let path = config.genesis.clone().unwrap_or_else(default_genesis);
        let genesis = Genesis::load(&path).map_err(|e| StartError::Genesis(e.to_string()))?;
        let opener = Arc::new(Opener {
            data: config.data.clone(),
            genesis,
            bundle,
        });
        let health = StorageHealth::new();
        let storage = opener.open(&health)?;
        let limits = Limits::from_config(config);
        Ok(AppState(Arc::new(SharedState {
            storage: ArcSwapOption::from_pointee(storage),
            health,
            opener,
            metrics: Metrics::new(),
            permits: Arc::new(Semaphore::new(limits.max_concurrency)),
            compute: Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
            limits,
            genesis: path,
        })))
    }

    /// Runs `work` on the blocking pool, at most one job per core at a time, so that long batches
    /// never hold the async workers that serve I/O.
    pub async fn compute<T, F>(&self, work: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> T + Send + 'static,
    {
        let _permit = self
            .compute
            .acquire()
            .await
            .map_err(|e| Problem::new(ProblemKind::Internal, e.to_string()))?;
        let state = self.clone();
        tokio::task::spawn_blocking(move || work(&state))
            .await
            .map_err(|e| Problem::new(ProblemKind::Internal, format!("decision task: {e}")))
    }

    /// Logs the decisions durably (one batch, one group-committed flush), then counts them.
    /// A decision that cannot be logged is not answered: the error is a 503 problem.
    pub async fn record(
        &self,
        log: &DecisionLog,
        requests: &[AccessRequest],
        decisions: &[Decision],
    ) -> Result<(), Problem> {
        let records: Vec<Record<'_>> = decisions
            .iter()
            .zip(requests)
            .map(|(d, r)| Record::new(d, r))
            .collect();
        log.append(&records).await.map_err(log_problem)?;
        self.metrics.count_decisions(decisions);
        Ok(())
    }
}

pub(crate) fn log_problem(e: LogError) -> Problem {
    tracing::error!(error = %e, "decision log append failed");
    Problem::new(ProblemKind::DecisionLogUnavailable, e.to_string()).retry_after(1)
}

/// The dev genesis shipped with the repository.
pub fn default_genesis() -> PathBuf {
    repository().join("governance/genesis.dev.yaml")
}

/// The repository this crate was built from (the parent of `server/`).
fn repository() -> &'static std::path::Path {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir)
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("policy bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: BundleError,
    },
    #[error("data directory {path}: {reason}")]
    Data { path: PathBuf, reason: String },
    #[error("{0}")]
    Log(String),
    #[error("genesis: {0}")]
    Genesis(String),
    #[error("listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("runtime: {0}")]
    Runtime(String),
}
