//! The data directory: the database, the decision log in it and the block state machine, opened
//! together — and reopened together after a storage fault, without a restart.
//!
//! sled refuses every later operation once a write of its own log failed (a full disk, an I/O
//! error): that database handle never works again. So a fault is healed by reopening: the
//! [`supervise`] task takes the storage out of service, waits for the requests still holding it,
//! drops it, and opens the data directory again, recovering exactly what is durable there (the
//! state machine at its last stored block, the decision log at its last flushed entry). Writes
//! stay refused — fast, without touching the disk — until a probe shows the directory takes
//! writes again; reads work as soon as the reopened database does.
//!
//! INVARIANT: no decision is answered unless it was logged. While writes are refused, evaluations
//! answer `decision-log-unavailable` and blocks `state-unavailable`; the log's chain continues from
//! its last durable entry, so it still verifies after a heal.

use crate::decision_log::DecisionLog;
use crate::node::Node;
use crate::problem::{Problem, ProblemKind};
use crate::state::{AppState, StartError};
use accord_engine::{Bundle, InMemoryConsentRegistry};
use accord_governance::analysis::AnalysisStore;
use accord_governance::{ActivePolicySet, Genesis, StateMachine};
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything that lives in the data directory.
pub struct Storage {
    pub db: sled::Db,
    pub log: Arc<DecisionLog>,
    pub node: Arc<Node>,
    /// The active policy set; the state machine swaps it at activation heights.
    pub policy: Arc<ActivePolicySet>,
    /// The consent state; the state machine stores a new snapshot after each block.
    pub consents: Arc<ArcSwap<InMemoryConsentRegistry>>,
    /// Proposal analyses, beside the state ([`crate::analysis`]).
    pub analyses: AnalysisStore,
}

/// What opening the data directory needs, kept to open it again.
pub struct Opener {
    pub data: PathBuf,
    /// Bytes of the database's page cache (`--cache-capacity`).
    pub cache_capacity: u64,
    pub genesis: Genesis,
    /// The genesis's initial bundle, compiled.
    pub bundle: Arc<Bundle>,
}

impl Opener {
    /// Opens the database at `data`, the decision log in it, and the node: the state kept there,
    /// or a fresh state from the genesis. The active set and the consent state served to
    /// evaluations are the node's, and follow every block it applies.
    pub fn open(&self, health: &Arc<StorageHealth>) -> Result<Storage, StartError> {
        let data_error = |reason: String| StartError::Data {
            path: self.data.clone(),
            reason,
        };
        let db = sled::Config::new()
            .path(&self.data)
            .cache_capacity(self.cache_capacity)
            .open()
            .map_err(|e| data_error(e.to_string()))?;
        let machine = StateMachine::open(&self.genesis, Arc::clone(&self.bundle), &db)
            .map_err(|e| data_error(e.to_string()))?;
        let published = machine.published();
        let analyses = AnalysisStore::open(&db).map_err(|e| data_error(e.to_string()))?;
        let log = DecisionLog::open(&db, Arc::clone(health))
            .map_err(|e| StartError::Log(e.to_string()))?;
        let node = Node::new(machine);
        if let Some(height) = node.applied_height() {
            // A stop (or a storage fault) between the store's flush of the last block and the
            // log's flush of its decisions leaves them unlogged; the ledger node, which had no
            // answer, sends the block again, and that replay must log them before it answers.
            let logged = log
                .logged_block()
                .map_err(|e| StartError::Log(e.to_string()))?;
            if logged.map_or(log.is_empty(), |h| h < height) {
                tracing::warn!(
                    height,
                    "the last block's decisions are not in the decision log; its replay logs them"
                );
                node.logging().missing(height);
            }
        }
        Ok(Storage {
            db,
            log: Arc::new(log),
            node,
            policy: published.policy,
            consents: published.consents,
            analyses,
        })
    }

    /// [`Opener::open`], retrying while the previous handle's file lock is still held: sled
    /// releases it when its background thread notices the last handle is gone.
    fn reopen(&self, health: &Arc<StorageHealth>) -> Result<Storage, StartError> {
        let mut tries = 0;
        loop {
            match self.open(health) {
                Err(e) if tries < 200 && e.to_string().contains("lock") => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }
}

/// Whether the data directory takes writes, shared by everything that writes to it.
#[derive(Debug, Default)]
pub struct StorageHealth {
    state: Mutex<Option<Fault>>,
    changed: tokio::sync::Notify,
    /// Test hook: while set, every write is refused as a failing disk would refuse it.
    injected: AtomicBool,
    faults: AtomicU64,
    recoveries: AtomicU64,
}

/// A storage fault that has not healed yet.
#[derive(Debug, Clone)]
struct Fault {
    reason: String,
}

impl StorageHealth {
    pub fn new() -> Arc<Self> {
        Arc::new(StorageHealth::default())
    }

    /// Records that a write failed: writes are refused from now until the storage heals.
    pub fn fail(&self, reason: impl std::fmt::Display) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.is_none() {
            let reason = reason.to_string();
            tracing::error!(%reason, "storage fault: writes are refused until the data directory takes writes again");
            self.faults.fetch_add(1, Ordering::Relaxed);
            *state = Some(Fault { reason });
            self.changed.notify_one();
        }
    }

    /// Why writes are refused now, if they are.
    pub fn writes_refused(&self) -> Option<String> {
        if self.injected.load(Ordering::SeqCst) {
            // An injected fault is recorded as a real one would be: it heals through a reopen.
            self.fail("writes refused (test hook)");
        }
        self.fault()
    }

    /// The unhealed fault, if any.
    pub fn fault(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|f| f.reason.clone())
    }

    fn healed(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.take().is_some() {
            self.recoveries.fetch_add(1, Ordering::Relaxed);
            tracing::info!("storage healed: writes are accepted again");
        }
    }

    async fn until_failing(&self) {
        loop {
            let notified = self.changed.notified();
            if self.fault().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Faults seen and healed so far (for metrics).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.faults.load(Ordering::Relaxed),
            self.recoveries.load(Ordering::Relaxed),
        )
    }

    /// Test hook: while `on`, writes fail as if the disk refused them. The first refused write
    /// records a fault, which heals (through a reopen) only once the hook is off.
    #[doc(hidden)]
    pub fn inject_fault(&self, on: bool) {
        self.injected.store(on, Ordering::SeqCst);
    }
}

/// How often a failing data directory is probed.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// Bytes the probe writes (and syncs) to tell whether the disk takes writes again.
const PROBE_BYTES: usize = 64 * 1024;

/// Heals storage faults for as long as the server runs: on each fault, reopens the data
/// directory (at once, so that reads work again), then probes it until it takes writes.
pub async fn supervise(state: AppState) {
    loop {
        state.health.until_failing().await;
        let mut needs_reopen = true;
        loop {
            if needs_reopen {
                match reopen(&state).await {
                    Ok(()) => needs_reopen = false,
                    Err(e) => {
                        tracing::warn!(error = %e, "reopening the data directory failed; retrying");
                        tokio::time::sleep(PROBE_EVERY * 4).await;
                        continue;
                    }
                }
            }
            tokio::time::sleep(PROBE_EVERY).await;
            match probe(&state).await {
                Ok(()) => {
                    state.health.healed();
                    break;
                }
                Err(Probe::Directory(e)) => {
                    tracing::debug!(error = %e, "the data directory still refuses writes");
                }
                Err(Probe::Database(e)) => {
                    tracing::warn!(error = %e, "the database refused the probe; reopening");
                    needs_reopen = true;
                }
            }
        }
    }
}

/// Takes the storage out of service, waits for the requests still holding it, drops it, and
/// opens the data directory again.
async fn reopen(state: &AppState) -> Result<(), StartError> {
    if let Some(old) = state.storage.swap(None) {
        let mut waited = Duration::ZERO;
        while Arc::strong_count(&old) > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += Duration::from_millis(10);
            if waited.as_secs() == 30 && waited.subsec_millis() < 10 {
                tracing::warn!("requests still hold the failed storage after 30 s");
            }
        }
        // Dropping the log joins its writer thread.
        tokio::task::spawn_blocking(move || drop(old))
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))?;
    }
    let opener = Arc::clone(&state.opener);
    let health = Arc::clone(&state.health);
    let storage = tokio::task::spawn_blocking(move || opener.reopen(&health))
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))??;
    tracing::info!("data directory reopened after a storage fault");
    state.storage.store(Some(Arc::new(storage)));
    Ok(())
}

enum Probe {
    /// The directory does not take a small synced file yet.
    Directory(String),
    /// The reopened database refused a write: it must be reopened again.
    Database(String),
}

/// Whether the data directory takes writes: a synced file beside the database, then a flushed
/// write in it.
async fn probe(state: &AppState) -> Result<(), Probe> {
    if state.health.injected.load(Ordering::SeqCst) {
        return Err(Probe::Directory("writes refused (test hook)".into()));
    }
    let path = state.opener.data.join(".accord-probe");
    let storage = state.storage.load_full();
    tokio::task::spawn_blocking(move || {
        let file = (|| {
            use std::io::Write;
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&[0u8; PROBE_BYTES])?;
            f.sync_all()?;
            std::fs::remove_file(&path)
        })();
        if let Err(e) = file {
            let _ = std::fs::remove_file(&path);
            return Err(Probe::Directory(e.to_string()));
        }
        let Some(storage) = storage else {
            return Err(Probe::Database("no open database".into()));
        };
        let written = storage
            .db
            .insert(b"accord-probe", &[1u8])
            .and_then(|_| storage.db.remove(b"accord-probe"))
            .and_then(|_| storage.db.flush());
        written
            .map(drop)
            .map_err(|e| Probe::Database(e.to_string()))
    })
    .await
    .unwrap_or_else(|e| Err(Probe::Database(e.to_string())))
}

impl Storage {
    /// Decides every request on one snapshot of the policy set and the consent state.
    pub fn decide_all(
        &self,
        requests: &[accord_engine::AccessRequest],
    ) -> Vec<accord_engine::Decision> {
        let set = self.policy.current();
        let consents = self.consents.load();
        set.decide_all(requests, &**consents)
    }
}

impl AppState {
    /// The open storage, or a 503 while it is being reopened after a fault.
    pub fn storage(&self) -> Result<Arc<Storage>, Problem> {
        self.storage_or(ProblemKind::StateUnavailable)
    }

    /// The open storage for a request that must log its decisions: while the storage is being
    /// reopened, the answer is the same 503 `decision-log-unavailable` a failing log gives.
    pub fn decision_storage(&self) -> Result<Arc<Storage>, Problem> {
        self.storage_or(ProblemKind::DecisionLogUnavailable)
    }

    fn storage_or(&self, kind: ProblemKind) -> Result<Arc<Storage>, Problem> {
        self.storage.load_full().ok_or_else(|| {
            Problem::new(
                kind,
                "the data directory is being reopened after a storage fault",
            )
            .retry_after(1)
        })
    }
}
