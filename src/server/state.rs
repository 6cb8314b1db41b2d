//! The server's shared state: the active policy set, the consent snapshot, the database, the
//! decision log, metrics, limits, and a slot for the block state machine's node.

use crate::server::config::ServeConfig;
use crate::server::decision_log::{DecisionLog, LogError, Record};
use crate::server::metrics::Metrics;
use crate::server::node::Node;
use crate::server::problem::{Problem, ProblemKind};
use accord_engine::{AccessRequest, Bundle, BundleError, Decision, InMemoryConsentRegistry};
use accord_governance::{ActivePolicySet, Genesis, StateMachine};
use arc_swap::ArcSwap;
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
/// (an owned concurrency permit, the log on the blocking pool).
pub struct SharedState {
    /// The active policy set; the state machine swaps it at activation heights.
    pub policy: Arc<ActivePolicySet>,
    /// The consent state; the state machine stores a new snapshot after each block.
    pub consents: Arc<ArcSwap<InMemoryConsentRegistry>>,
    /// The embedded database at `--data`. The tree `decisions` is the decision log's; every other
    /// tree belongs to the state machine.
    pub db: sled::Db,
    pub log: Arc<DecisionLog>,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Bounds requests in progress (`--max-concurrency`).
    pub permits: Arc<Semaphore>,
    /// One permit per core for batches decided on the blocking pool.
    pub compute: Semaphore,
    /// The genesis file (`--genesis`), kept for the state machine.
    pub genesis: Option<PathBuf>,
    /// The block state machine (governance, consents, blocks).
    pub node: Option<Arc<Node>>,
}

impl SharedState {
    fn new(
        config: &ServeConfig,
        policy: Arc<ActivePolicySet>,
        consents: Arc<ArcSwap<InMemoryConsentRegistry>>,
        db: sled::Db,
    ) -> Result<Self, StartError> {
        let log = DecisionLog::open(&db).map_err(|e| StartError::Log(e.to_string()))?;
        let limits = Limits::from_config(config);
        Ok(SharedState {
            policy,
            consents,
            db,
            log: Arc::new(log),
            metrics: Metrics::new(),
            permits: Arc::new(Semaphore::new(limits.max_concurrency)),
            compute: Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
            limits,
            genesis: config.genesis.clone(),
            node: None,
        })
    }
}

impl AppState {
    /// Opens the database at `config.data`, the decision log in it, and the node: the state
    /// kept there, or a fresh state from the genesis (`--genesis`, default the repository's dev
    /// genesis) with `bundle` as its initial policy set. The active set and the consent state
    /// served to evaluations are the node's, and follow every block it applies.
    pub fn open(config: &ServeConfig, bundle: Arc<Bundle>) -> Result<Self, StartError> {
        let db = sled::open(&config.data).map_err(|e| StartError::Data {
            path: config.data.clone(),
            reason: e.to_string(),
        })?;
        let path = config.genesis.clone().unwrap_or_else(default_genesis);
        let genesis = Genesis::load(&path).map_err(|e| StartError::Genesis(e.to_string()))?;
        let machine =
            StateMachine::open(&genesis, bundle, &db).map_err(|reason| StartError::Data {
                path: config.data.clone(),
                reason,
            })?;
        let published = machine.published();
        let mut shared = SharedState::new(config, published.policy, published.consents, db)?;
        shared.genesis = Some(path);
        let node = Node::new(machine);
        if let Some(height) = node.applied_height() {
            // A stop between the store's flush of the last block and the log's flush of its
            // decisions leaves them unlogged; the ledger node, which had no answer, sends the
            // block again, and that replay must log them before it answers. A log that never
            // recorded a block (written before the record existed) and holds entries is taken as
            // complete.
            let logged = shared
                .log
                .logged_block()
                .map_err(|e| StartError::Log(e.to_string()))?;
            if logged.map_or(shared.log.is_empty(), |h| h < height) {
                tracing::warn!(
                    height,
                    "the last block's decisions are not in the decision log; its replay logs them"
                );
                node.logging().missing(height);
            }
        }
        shared.node = Some(node);
        Ok(AppState(Arc::new(shared)))
    }

    /// Assembles the state from parts the state machine already holds.
    pub fn with_parts(
        config: &ServeConfig,
        policy: Arc<ActivePolicySet>,
        consents: Arc<ArcSwap<InMemoryConsentRegistry>>,
        db: sled::Db,
    ) -> Result<Self, StartError> {
        SharedState::new(config, policy, consents, db).map(|shared| AppState(Arc::new(shared)))
    }

    /// Decides every request on one snapshot of the policy set and the consent state.
    pub fn decide_all(&self, requests: &[AccessRequest]) -> Vec<Decision> {
        let set = self.policy.current();
        let consents = self.consents.load();
        set.decide_all(requests, &**consents)
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
        requests: &[AccessRequest],
        decisions: &[Decision],
    ) -> Result<(), Problem> {
        let records: Vec<Record<'_>> = decisions
            .iter()
            .zip(requests)
            .map(|(d, r)| Record::new(d, r))
            .collect();
        self.log.append(&records).await.map_err(log_problem)?;
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
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("governance/genesis.dev.yaml")
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
    Config(#[from] crate::server::config::ConfigError),
    #[error("runtime: {0}")]
    Runtime(String),
}
