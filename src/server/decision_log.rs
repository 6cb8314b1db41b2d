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

use crate::server::log_entry::{check_entry, EntryParts};
use accord_engine::decision::Decision;
use accord_engine::AccessRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The sled tree that holds the log.
pub const TREE: &str = "decisions";
/// The sled tree that holds [`LOGGED_BLOCK`].
pub const BLOCKS_TREE: &str = "decisions-blocks";
/// Key of the height of the last block whose decisions are in the log (big-endian u64), written
/// after them and made durable by the same flush.
pub const LOGGED_BLOCK: &[u8] = b"logged-block";
/// Domain separator of entry hashes.
pub const DOMAIN: &[u8] = b"accord/decision-log/v1\0";
/// `prev` of the first entry.
pub const GENESIS_PREV: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// One decision to log, with the patient of the request it answers (the decision itself does
/// not name the patient).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub decision: &'a Decision,
    pub patient: Option<&'a str>,
}

impl<'a> Record<'a> {
    pub fn new(decision: &'a Decision, request: &'a AccessRequest) -> Self {
        Record {
            decision,
            patient: request.patient_id(),
        }
    }
}

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
    /// Test hook: while set, every write round fails as a storage error would.
    failing: Arc<AtomicBool>,
    stats: Arc<WriterStats>,
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

/// How long a busy writer waits for more callers before it writes and flushes.
const LINGER: Duration = Duration::from_micros(300);

/// Most jobs one writer round takes (bounds a round's batch).
const ROUND_JOBS: usize = 4096;

/// Most entries one stored segment holds.
pub const SEGMENT_ENTRIES: usize = 64;
/// A segment is closed before an entry would take it to this many bytes (an entry larger than
/// that has a segment of its own). sled writes a tree node larger than a quarter of its 512 KiB
/// log segment (128 KiB) to a blob file of its own, and a leaf holds up to 17 keys before it
/// splits: segments under 7 KiB keep every leaf in sled's log. With 32 KiB segments a run of
/// 40,000 entries left over a hundred blob files.
pub const SEGMENT_BYTES: usize = 7 * 1024;

/// A stored entry, as read back for queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntrySummary {
    pub seq: u64,
    pub tx: String,
    pub patient: Option<String>,
    pub policy_version: String,
    pub outcome: String,
}

/// Filters of a page query; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub after: u64,
    pub limit: usize,
    /// Stop after examining this many entries even if the page is not full.
    pub scan_limit: usize,
    pub tx: Option<String>,
    pub patient: Option<String>,
    pub outcome: Option<String>,
    pub version: Option<String>,
}

/// One page of entries (their stored JSON text) and where the next page starts.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub entries: Vec<String>,
    /// `Some(seq)`: pass `after=seq` for more; `None`: the log has no more entries.
    pub next_after: Option<u64>,
}

/// The result of recomputing the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub ok: bool,
    /// Entries checked and found sound (all of them when `ok`).
    pub length: u64,
    /// The last sound entry's hash (`GENESIS_PREV` for an empty log).
    pub head: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<Broken>,
}

/// The first entry that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    pub seq: u64,
    pub reason: String,
}

impl DecisionLog {
    /// Opens the log in `db`, recovering the chain head from the last entry.
    pub fn open(db: &sled::Db) -> Result<Self, LogError> {
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
                let value: Value = serde_json::from_str(last).map_err(|e| LogError::Corrupt {
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
        let head = Arc::new(Mutex::new(head));
        let failing = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WriterStats::default());
        let (queue, jobs) = mpsc::channel::<Job>();
        let writer = {
            let trees = (tree.clone(), blocks.clone());
            let (db, head) = (db.clone(), Arc::clone(&head));
            let (failing, stats) = (Arc::clone(&failing), Arc::clone(&stats));
            std::thread::Builder::new()
                .name("accord-decision-log".into())
                .spawn(move || write_rounds(&db, &trees, &head, &jobs, &failing, &stats))
                .map_err(|e| LogError::Storage(format!("starting the writer thread: {e}")))?
        };
        Ok(DecisionLog {
            tree,
            blocks,
            head,
            queue: Some(queue),
            writer: Some(writer),
            failing,
            stats,
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

    /// The height of the last block whose decisions were written, as [`DecisionLog::queue_block`]
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

    /// Test hook: while `on`, appends fail as if the disk refused them (the server must then
    /// answer 503 instead of an unlogged decision).
    #[doc(hidden)]
    pub fn fail_writes(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    fn send(&self, job: Job) -> Result<(), LogError> {
        self.queue
            .as_ref()
            .ok_or(LogError::WriterGone)?
            .send(job)
            .map_err(|_| LogError::WriterGone)
    }

    /// A page of entries after `query.after` that match the filters.
    pub fn page(&self, query: &PageQuery) -> Result<Page, LogError> {
        let first = query.after.saturating_add(1);
        // The segment holding entry `first` starts at or before it.
        let start = match self.tree.range(..=first.to_be_bytes()).next_back() {
            Some(item) => item.map_err(LogError::storage)?.0.to_vec(),
            None => first.to_be_bytes().to_vec(),
        };
        let mut page = Page::default();
        let mut scanned = 0usize;
        for item in self.tree.range(start..) {
            let (key, value) = item.map_err(LogError::storage)?;
            let Some(segment_start) = key_seq(&key) else {
                continue;
            };
            let text = String::from_utf8_lossy(&value);
            let lines = text.strip_suffix('\n').unwrap_or(&text).split('\n');
            for (seq, entry) in (segment_start..).zip(lines) {
                if seq < first {
                    continue;
                }
                scanned += 1;
                let summary: Option<EntrySummary> = serde_json::from_str(entry).ok();
                let matches = match &summary {
                    // A corrupt entry matches no filter but is shown unfiltered (audit/verify
                    // explains).
                    None => {
                        query.tx.is_none()
                            && query.patient.is_none()
                            && query.outcome.is_none()
                            && query.version.is_none()
                    }
                    Some(s) => {
                        query.tx.as_ref().is_none_or(|t| *t == s.tx)
                            && query
                                .patient
                                .as_ref()
                                .is_none_or(|p| Some(p) == s.patient.as_ref())
                            && query.outcome.as_ref().is_none_or(|o| *o == s.outcome)
                            && query
                                .version
                                .as_ref()
                                .is_none_or(|v| *v == s.policy_version)
                    }
                };
                if matches {
                    page.entries.push(entry.to_owned());
                }
                if page.entries.len() >= query.limit || scanned >= query.scan_limit {
                    // A full page that happens to end at the last entry still offers
                    // `next_after`; the next page is then empty. That is cheaper than peeking.
                    page.next_after = Some(seq);
                    return Ok(page);
                }
            }
        }
        Ok(page)
    }

    /// Recomputes the whole chain: keys, sequence numbers, links and hashes.
    pub fn verify(&self) -> Result<Verification, LogError> {
        let mut prev = GENESIS_PREV.to_owned();
        let mut length = 0u64;
        let broken = |seq: u64, reason: String, length: u64, head: String| Verification {
            ok: false,
            length,
            head,
            broken: Some(Broken { seq, reason }),
        };
        let mut expected = 1u64;
        for item in self.tree.iter() {
            let (key, value) = item.map_err(LogError::storage)?;
            if let Some(start) = key_seq(&key).filter(|s| *s != expected) {
                return Ok(broken(
                    expected,
                    format!("missing entry: the next key is {start}"),
                    length,
                    prev,
                ));
            }
            let entries = match segment_entries(&key, &value) {
                Ok(entries) => entries,
                Err(reason) => return Ok(broken(expected, reason, length, prev)),
            };
            for (seq, entry) in entries {
                match check_entry(seq, &prev, entry.as_bytes()) {
                    Ok(hash) => prev = hash,
                    Err(reason) => return Ok(broken(seq, reason, length, prev)),
                }
                length = seq;
                expected = seq + 1;
            }
        }
        Ok(Verification {
            ok: true,
            length,
            head: prev,
            broken: None,
        })
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

/// The writer thread: one round per wake-up takes every queued job, writes one batch, flushes
/// once and answers them all.
fn write_rounds(
    db: &sled::Db,
    (tree, blocks): &(sled::Tree, sled::Tree),
    head: &Mutex<Head>,
    jobs: &mpsc::Receiver<Job>,
    failing: &AtomicBool,
    stats: &WriterStats,
) {
    let micros =
        |since: std::time::Instant| u64::try_from(since.elapsed().as_micros()).unwrap_or(0);
    let (mut next_seq, mut prev) = match head.lock() {
        Ok(h) => (h.next_seq, h.prev.clone()),
        Err(_) => return,
    };
    let mut busy = false;
    while let Ok(first) = jobs.recv() {
        let mut round = vec![first];
        // Under concurrency (the last round served more than one caller), wait a moment for
        // more callers so that one flush serves more of them; alone, flush at once.
        let linger_until = std::time::Instant::now() + if busy { LINGER } else { Duration::ZERO };
        while round.len() < ROUND_JOBS {
            match jobs.try_recv() {
                Ok(job) => round.push(job),
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {
                    let left = linger_until.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match jobs.recv_timeout(left) {
                        Ok(job) => round.push(job),
                        Err(_) => break,
                    }
                }
            }
        }
        busy = round.len() > 1;
        let writing = std::time::Instant::now();
        let mut batch = sled::Batch::default();
        let mut seq = next_seq;
        let mut hash = prev.clone();
        let mut ranges = Vec::with_capacity(round.len());
        let mut segment = Segment::starting_at(seq);
        for job in &round {
            let start = seq;
            for part in &job.parts {
                let (stored, h) = part.seal(seq, &hash);
                if segment.is_full_for(&stored) {
                    segment.store(&mut batch);
                    segment = Segment::starting_at(seq);
                }
                segment.push(&stored);
                hash = h;
                seq += 1;
            }
            ranges.push((seq > start).then(|| start..=seq - 1));
        }
        segment.store(&mut batch);
        let applied = if failing.load(Ordering::SeqCst) {
            Err(LogError::Storage("writes refused (test hook)".into()))
        } else {
            tree.apply_batch(batch).map_err(LogError::storage)
        };
        if let Err(e) = applied {
            // Nothing was written: the head stays, every caller of the round gets the error.
            tracing::error!(error = %e, "decision log batch failed");
            for job in round {
                job.reply.send(Err(e.clone()));
            }
            continue;
        }
        // The block marker goes in after the entries, so that sled's recovery (a prefix of its
        // log) never keeps the marker without them. Should it fail, the entries still stand: a
        // stale marker only makes the block's replay after a restart log its decisions again.
        if let Some(height) = round.iter().filter_map(|job| job.block).max() {
            if let Err(e) = blocks.insert(LOGGED_BLOCK, &height.to_be_bytes()) {
                tracing::error!(error = %e, height, "decision log block marker failed");
            }
        }
        next_seq = seq;
        prev = hash;
        if let Ok(mut h) = head.lock() {
            h.next_seq = next_seq;
            h.prev = prev.clone();
        }
        stats
            .write_micros
            .fetch_add(micros(writing), Ordering::Relaxed);
        let flushing = std::time::Instant::now();
        let flushed = db.flush().map_err(LogError::storage);
        stats
            .flush_micros
            .fetch_add(micros(flushing), Ordering::Relaxed);
        stats.rounds.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = &flushed {
            tracing::error!(error = %e, "decision log flush failed");
        }
        for (job, range) in round.into_iter().zip(ranges) {
            job.reply.send(flushed.clone().map(|_| range));
        }
    }
}

/// The entries of a write round on their way into one stored segment.
struct Segment {
    start: u64,
    entries: usize,
    text: String,
}

impl Segment {
    fn starting_at(start: u64) -> Self {
        Segment {
            start,
            entries: 0,
            text: String::new(),
        }
    }

    /// Whether `entry` must go to the next segment.
    fn is_full_for(&self, entry: &str) -> bool {
        self.entries > 0
            && (self.entries >= SEGMENT_ENTRIES || self.text.len() + entry.len() >= SEGMENT_BYTES)
    }

    fn push(&mut self, entry: &str) {
        self.text.push_str(entry);
        self.text.push('\n');
        self.entries += 1;
    }

    /// Adds the segment to `batch`, if it holds any entry.
    fn store(self, batch: &mut sled::Batch) {
        if self.entries > 0 {
            batch.insert(&self.start.to_be_bytes(), self.text.into_bytes());
        }
    }
}

/// The entries of one stored segment, each with its sequence number; an error says why the
/// segment cannot be read.
fn segment_entries<'v>(key: &[u8], value: &'v [u8]) -> Result<Vec<(u64, &'v str)>, String> {
    let start = key_seq(key).ok_or("key is not 8 bytes")?;
    let text = std::str::from_utf8(value).map_err(|e| format!("segment is not UTF-8: {e}"))?;
    let body = text
        .strip_suffix('\n')
        .ok_or("segment does not end with a newline")?;
    Ok((start..).zip(body.split('\n')).collect())
}

fn key_seq(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

/// The decision log could not record or read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    #[error("decision log storage: {0}")]
    Storage(String),
    #[error("decision log entry {seq} is corrupt: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error("the decision log writer has stopped")]
    WriterGone,
}

impl LogError {
    fn storage(e: sled::Error) -> Self {
        LogError::Storage(e.to_string())
    }
}
