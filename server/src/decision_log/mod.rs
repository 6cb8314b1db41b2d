//! The decision log: every decision the server makes, append-only and hash-chained, in the sled
//! tree `decisions`.
//!
//! - An entry is the canonical JSON (keys sorted, no whitespace) of
//!   `{errors, hash, obligations, outcome, patient, policy_version, prev, reasons, seq, tx}`.
//! - `hash` = `sha256:` hex of `accord/decision-log/v1\0` followed by the canonical JSON of the
//!   entry without its `hash` member. `prev` is the previous entry's `hash`; the first entry's
//!   `prev` is [`GENESIS_PREV`].
//! - Entries are stored in segments: key = the sequence number of the segment's first entry,
//!   big-endian u64 (so sled's order is log order; the first entry is 1); value = the segment's
//!   entries in order, each followed by `\n` (canonical JSON holds no raw newline). A write round
//!   fills segments of at most [`SEGMENT_ENTRIES`] entries or [`SEGMENT_BYTES`] bytes: one sled key
//!   per entry cost two to three times as much per entry as one per segment.
//!
//! Appends are serialized by one writer thread that owns the chain head (the lock around it is
//! held only by that thread and by readers of the length). Callers serialize their decisions
//! into entry parts in parallel, then queue them; the writer takes everything queued, stamps
//! `seq` and `prev`, hashes, writes one sled batch, flushes once and answers every caller of
//! that round: a group commit. No async worker ever blocks on the disk, and an answer is given
//! only once its entries are flushed.

mod entry;
mod err;
mod read;
mod verify;
mod writer;

pub(crate) use entry::EntryParts;
pub use entry::{Record, DOMAIN};
pub use err::LogError;
pub use read::{EntrySummary, Page, PageQuery};
pub use verify::{
    verify_tree, Broken, Checkpoint, FullSlot, IncrementalSlot, Outcome, Scope, Verification,
    VerifyStats, CHECKPOINT_KEY, CHECKPOINT_TREE, CHUNK_ENTRIES,
};
pub use writer::{SEGMENT_BYTES, SEGMENT_ENTRIES};

use crate::storage::StorageHealth;
use read::{key_seq, segment_entries};
use serde_json::Value;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use writer::write_rounds;

/// The sled tree that holds the log.
pub const TREE: &str = "decisions";
/// The sled tree that holds [`LOGGED_BLOCK`].
pub const BLOCKS_TREE: &str = "decisions-blocks";
/// Key of the height of the last block whose decisions are in the log (big-endian u64), written
/// after them and made durable by the same flush.
pub const LOGGED_BLOCK: &[u8] = b"logged-block";
/// `prev` of the first entry.
pub const GENESIS_PREV: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Where the next entry goes.
#[derive(Debug)]
struct Head {
    next_seq: u64,
    prev: String,
}

/// The append-only, hash-chained decision log.
#[derive(Debug)]
pub struct DecisionLog {
    tree: sled::Tree,
    blocks: sled::Tree,
    /// Written by the writer thread after each round; read for `len` and `head_hash`.
    head: Arc<Mutex<Head>>,
    queue: Option<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Whether the data directory takes writes: the writer refuses rounds while it does not,
    /// and records a fault when a write fails.
    health: Arc<StorageHealth>,
    /// Test hook: while set, every write round fails as a storage error would.
    failing: Arc<AtomicBool>,
    stats: Arc<WriterStats>,
    verifier: verify::Verifier,
}

/// Counters of the writer thread (exported as metrics).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Write rounds (one batch and one flush each).
    pub rounds: AtomicU64,
    /// Time spent writing batches, in microseconds.
    pub write_micros: AtomicU64,
    /// Time spent flushing, in microseconds.
    pub flush_micros: AtomicU64,
}

/// Where the answer of one append goes.
enum Reply {
    Async(tokio::sync::oneshot::Sender<Appended>),
    Blocking(mpsc::SyncSender<Appended>),
}

pub(crate) type Appended = Result<Option<RangeInclusive<u64>>, LogError>;

/// Entries handed to the writer: the answer to come, or the answer already known.
pub(crate) struct QueuedAppend(Result<tokio::sync::oneshot::Receiver<Appended>, Appended>);

impl QueuedAppend {
    /// Waits until the entries are on disk; the sequence numbers they took.
    pub(crate) async fn written(self) -> Appended {
        match self.0 {
            Ok(rx) => rx.await.map_err(|_| LogError::WriterGone)?,
            Err(known) => known,
        }
    }
}

struct Job {
    parts: Vec<EntryParts>,
    reply: Reply,
    /// The block whose decisions these are, all of them.
    block: Option<u64>,
}

impl Reply {
    fn send(self, result: Appended) {
        // A caller that stopped waiting (a timed-out request) needs no answer.
        let _ = match self {
            Reply::Async(tx) => tx.send(result).map_err(|_| ()),
            Reply::Blocking(tx) => tx.send(result).map_err(|_| ()),
        };
    }
}

impl DecisionLog {
    /// Opens the log in `db`, recovering the chain head from the last entry. `health` is shared
    /// with everything else that writes to the data directory.
    pub fn open(db: &sled::Db, health: Arc<StorageHealth>) -> Result<Self, LogError> {
        let tree = db.open_tree(TREE).map_err(LogError::storage)?;
        let blocks = db.open_tree(BLOCKS_TREE).map_err(LogError::storage)?;
        let head = match tree.last().map_err(LogError::storage)? {
            None => Head {
                next_seq: 1,
                prev: GENESIS_PREV.to_owned(),
            },
            Some((key, value)) => {
                let (seq, last) = segment_entries(&key, &value)
                    .and_then(|entries| {
                        entries
                            .last()
                            .copied()
                            .ok_or_else(|| "empty segment".into())
                    })
                    .map_err(|reason| LogError::Corrupt {
                        seq: key_seq(&key).unwrap_or(0),
                        reason: format!("last segment: {reason}"),
                    })?;
                let value: Value =
                    accord_engine::json::value_from_str(last).map_err(|e| LogError::Corrupt {
                        seq,
                        reason: format!("not JSON: {e}"),
                    })?;
                let hash =
                    value
                        .get("hash")
                        .and_then(Value::as_str)
                        .ok_or_else(|| LogError::Corrupt {
                            seq,
                            reason: "no `hash`".into(),
                        })?;
                Head {
                    next_seq: seq.saturating_add(1),
                    prev: hash.to_owned(),
                }
            }
        };
        let verifier = verify::Verifier::open(db)?;
        let head = Arc::new(Mutex::new(head));
        let stats = Arc::new(WriterStats::default());
        let failing = Arc::new(AtomicBool::new(false));
        let (queue, jobs) = mpsc::channel::<Job>();
        let writer = {
            let trees = (tree.clone(), blocks.clone());
            let (db, head) = (db.clone(), Arc::clone(&head));
            let faults = (Arc::clone(&health), Arc::clone(&failing));
            let stats = Arc::clone(&stats);
            std::thread::Builder::new()
                .name("accord-decision-log".into())
                .spawn(move || write_rounds(&db, &trees, &head, &jobs, &faults, &stats))
                .map_err(|e| LogError::Storage(format!("starting the writer thread: {e}")))?
        };
        Ok(DecisionLog {
            tree,
            blocks,
            head,
            queue: Some(queue),
            writer: Some(writer),
            health,
            failing,
            stats,
            verifier,
        })
    }

    /// How many entries the log holds.
    pub fn len(&self) -> u64 {
        self.head
            .lock()
            .map(|h| h.next_seq.saturating_sub(1))
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one entry per record, in order, and returns once they are on disk; blocking (call
    /// it from a thread that may block, e.g. the block state machine's or `spawn_blocking`).
    /// Returns the sequence numbers used (`None` for no records).
    pub fn append_all(&self, records: &[Record<'_>]) -> Appended {
        if records.is_empty() {
            return Ok(None);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Job {
            parts: records.iter().map(EntryParts::new).collect(),
            reply: Reply::Blocking(tx),
            block: None,
        })?;
        rx.recv().map_err(|_| LogError::WriterGone)?
    }

    /// As [`DecisionLog::append_all`], awaiting the writer instead of blocking.
    pub async fn append(&self, records: &[Record<'_>]) -> Appended {
        self.append_parts(records.iter().map(EntryParts::new).collect())
            .await
    }

    /// As [`DecisionLog::append`], for entries already prepared (where their decisions were made).
    pub(crate) async fn append_parts(&self, parts: Vec<EntryParts>) -> Appended {
        self.queue_parts(parts).written().await
    }

    /// Queues entries already prepared without waiting for them, from any thread: they are
    /// written in the order queued, and [`QueuedAppend::written`] says when they are on disk.
    pub(crate) fn queue_parts(&self, parts: Vec<EntryParts>) -> QueuedAppend {
        if parts.is_empty() {
            return QueuedAppend(Err(Ok(None)));
        }
        self.queue(parts, None)
    }

    /// As [`DecisionLog::queue_parts`], for all the decisions of block `height` (none, for a
    /// block that decides nothing): once they are written, [`DecisionLog::logged_block`] says
    /// so, across restarts.
    pub(crate) fn queue_block(&self, height: u64, parts: Vec<EntryParts>) -> QueuedAppend {
        self.queue(parts, Some(height))
    }

    fn queue(&self, parts: Vec<EntryParts>, block: Option<u64>) -> QueuedAppend {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queued = self.send(Job {
            parts,
            reply: Reply::Async(tx),
            block,
        });
        QueuedAppend(match queued {
            Ok(()) => Ok(rx),
            Err(e) => Err(Err(e)),
        })
    }

    /// The height of the last block whose decisions were written, as `DecisionLog::queue_block`
    /// recorded it; `None` if no block's were (or the log predates the record).
    pub fn logged_block(&self) -> Result<Option<u64>, LogError> {
        let Some(value) = self.blocks.get(LOGGED_BLOCK).map_err(LogError::storage)? else {
            return Ok(None);
        };
        key_seq(&value).map(Some).ok_or_else(|| {
            LogError::Storage(format!(
                "tree `{BLOCKS_TREE}`, key `logged-block`: {} bytes, expected 8",
                value.len()
            ))
        })
    }

    /// The writer thread's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Whether the writer thread still runs (it ends only when the log is dropped, or if it
    /// panicked).
    pub fn writer_alive(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| !w.is_finished())
    }

    /// Test hook: while `on`, this log's write rounds fail as a storage error would (the first
    /// failure records a storage fault, which reopens the data directory with a new log).
    #[doc(hidden)]
    pub fn fail_writes(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    /// The storage health this log reports to.
    pub fn health(&self) -> &Arc<StorageHealth> {
        &self.health
    }

    fn send(&self, job: Job) -> Result<(), LogError> {
        self.queue
            .as_ref()
            .ok_or(LogError::WriterGone)?
            .send(job)
            .map_err(|_| LogError::WriterGone)
    }

    /// The last entry's hash (the chain head).
    pub fn head_hash(&self) -> String {
        self.head.lock().map(|h| h.prev.clone()).unwrap_or_default()
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has answered what was queued; joining it
        // releases its database handle before the log is gone.
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}
