//! The writer thread: group commits of queued entries, stored in segments.

use super::{Head, Job, LogError, WriterStats, LOGGED_BLOCK};
use crate::storage::StorageHealth;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

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

/// The writer thread: one round per wake-up takes every queued job, writes one batch, flushes
/// once and answers them all.
pub(super) fn write_rounds(
    db: &sled::Db,
    (tree, blocks): &(sled::Tree, sled::Tree),
    head: &Mutex<Head>,
    jobs: &mpsc::Receiver<Job>,
    (health, failing): &(Arc<StorageHealth>, Arc<AtomicBool>),
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
        // While the data directory refuses writes, a round fails at once without touching the
        // database (sled refuses everything after a failed write of its own log; the storage
        // supervisor reopens it).
        if let Some(reason) = health.writes_refused() {
            let e = LogError::Unavailable(reason);
            for job in round {
                job.reply.send(Err(e.clone()));
            }
            continue;
        }
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
            health.fail(&e);
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
            health.fail(e);
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
