//! The server's shared state: the data directory's storage (database, decision log, node, and
//! the policy set and consent state they publish), its health, metrics and limits.

use crate::analysis::Analyses;
use crate::config::ServeConfig;
use crate::decision_log::{DecisionLog, Record};
use crate::metrics::Metrics;
use crate::middleware::RequestIds;
use crate::node::Node;
use crate::problem::{join, Problem, ProblemKind};
use crate::refusal_budget::RefusalBudget;
use crate::storage::{Opener, Storage, StorageHealth};
use crate::tokens::Tokens;
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
    /// The callers and their roles; `None`: the guarded endpoints are open.
    pub tokens: Option<Tokens>,
}

impl Limits {
    pub fn from_config(config: &ServeConfig) -> Self {
        Limits {
            max_batch: config.max_batch,
            body_limit: config.body_limit,
            request_timeout: config.request_timeout,
            max_concurrency: config.max_concurrency,
            tokens: config.tokens.clone(),
        }
    }
}

/// How the server is protected, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    pub tls: bool,
    pub client_certificates: bool,
    pub tokens: bool,
    /// `--insecure` was given.
    pub insecure: bool,
}

impl Protection {
    pub fn from_config(config: &ServeConfig) -> Self {
        Protection {
            tls: config.tls.is_some(),
            client_certificates: config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
            tokens: config.tokens.is_some(),
            insecure: config.insecure,
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
    pub protection: Protection,
    /// Ids for requests that come without `X-Request-ID`.
    pub request_ids: RequestIds,
    /// Bounds requests in progress (`--max-concurrency`).
    pub permits: Arc<Semaphore>,
    /// One permit per core for batches decided on the blocking pool.
    pub compute: Semaphore,
    /// The genesis file (`--genesis`); `None`: the built-in dev genesis.
    pub genesis: Option<PathBuf>,
    /// Whether the genesis gives a member a key of the dev genesis, whose secret keys are
    /// public (`/readyz` says so).
    pub dev_genesis: bool,
    /// Each client's budget of refused governance messages.
    pub refusals: RefusalBudget,
    /// Proposal analyses: the solver and the lock that runs them one at a time.
    pub analyses: Analyses,
}

impl AppState {
    /// Opens the database at `config.data`, the decision log in it, and the node: the state
    /// kept there, or a fresh state from the genesis (`--genesis`, default the built-in dev
    /// genesis) with `bundle` as its initial policy set.
    pub fn open(config: &ServeConfig, bundle: Arc<Bundle>) -> Result<Self, StartError> {
        let genesis = load_genesis(config)?;
        let dev_genesis = crate::defaults::is_dev_genesis(&genesis);
        if dev_genesis {
            tracing::warn!("{}", crate::defaults::DEV_GENESIS_WARNING);
        }
        let opener = Arc::new(Opener {
            data: config.data.clone(),
            cache_capacity: config.cache_capacity,
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
            protection: Protection::from_config(config),
            request_ids: RequestIds::new(),
            permits: Arc::new(Semaphore::new(limits.max_concurrency)),
            compute: Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
            limits,
            genesis: config.genesis.clone(),
            dev_genesis,
            refusals: RefusalBudget::default(),
            analyses: Analyses::new(config.solver.clone()),
        })))
    }

    /// Runs `work` on the blocking pool, at most one job per core at a time, so that long batches
    /// never hold the async workers that serve I/O.
    pub async fn compute<T, F>(&self, work: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> T + Send + 'static,
    {
        let _permit = self.compute.acquire().await?;
        let state = self.clone();
        Ok(join(
            "decision task",
            tokio::task::spawn_blocking(move || work(&state)),
        )
        .await?)
    }

    /// The governance node of the storage open now.
    pub fn node(&self) -> Result<Arc<Node>, Problem> {
        Ok(Arc::clone(&self.storage()?.node))
    }

    /// Refuses a request that writes state while the data directory refuses writes (fast,
    /// without touching the database).
    pub fn writable(&self) -> Result<(), Problem> {
        match self.health.writes_refused() {
            None => Ok(()),
            Some(reason) => Err(Problem::new(
                ProblemKind::StateUnavailable,
                format!("the data directory refuses writes ({reason}); nothing was applied"),
            )
            .retry_after(1)),
        }
    }

    /// Records a storage fault behind `problem`, if it is one.
    pub fn noted(&self, problem: Problem) -> Problem {
        if problem.kind == ProblemKind::StateUnavailable {
            self.health.fail(&problem.detail);
        }
        problem
    }

    /// Applies `work` to the node on the blocking pool (a block may compile and test a proposed
    /// bundle). Once started, `work` runs to its end even if the request is dropped meanwhile.
    pub async fn on_node<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Arc<Node>) -> T + Send + 'static,
    ) -> Result<T, Problem> {
        let node = self.node()?;
        let _permit = self.compute.acquire().await?;
        Ok(join(
            "block task",
            tokio::task::spawn_blocking(move || work(&node)),
        )
        .await?)
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
        log.append(&records).await?;
        self.metrics.count_decisions(decisions);
        Ok(())
    }
}

/// The genesis of `config`: its file, else the built-in dev genesis.
pub fn load_genesis(config: &ServeConfig) -> Result<Genesis, StartError> {
    match &config.genesis {
        Some(path) => Genesis::load(path),
        None => crate::defaults::dev_genesis(),
    }
    .map_err(|e| StartError::Genesis(e.to_string()))
}

/// Where the initial bundle of `config` comes from: `--policies`; else, with a genesis file, the
/// bundle it names; else `./policies` when it holds a manifest; else the built-in bundle.
pub fn bundle_source(config: &ServeConfig) -> Result<Option<PathBuf>, StartError> {
    if let Some(dir) = &config.policies {
        return Ok(Some(dir.clone()));
    }
    if config.genesis.is_some() {
        return Ok(Some(load_genesis(config)?.bundle_dir));
    }
    let local = PathBuf::from("policies");
    Ok(local.join("manifest.yaml").is_file().then_some(local))
}

/// The initial bundle of `config` ([`bundle_source`]), compiled.
pub fn load_bundle(config: &ServeConfig) -> Result<Bundle, StartError> {
    match bundle_source(config)? {
        Some(path) => Bundle::load(&path).map_err(|source| StartError::Bundle { path, source }),
        None => crate::defaults::bundle().map_err(|source| StartError::Bundle {
            path: PathBuf::from("(built-in bundle)"),
            source,
        }),
    }
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
