//! The chain's verification: recomputing entries' hashes and links, from the genesis (full) or
//! from the verified checkpoint (incremental), in chunks that a cancellation can stop between.
//!
//! The checkpoint is the last entry a verification found sound: its sequence number and hash,
//! under [`CHECKPOINT_KEY`] in the sled tree [`CHECKPOINT_TREE`] (8 bytes big-endian `seq`, then
//! the hash as text). An incremental verification re-reads the checkpoint's entry (it must still
//! hash to the checkpoint's hash) and recomputes only the entries after it. A tampered entry
//! before the checkpoint is found by a full verification only.

use super::entry::check_entry;
use super::{key_seq, segment_entries, DecisionLog, LogError, GENESIS_PREV};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The sled tree that holds the verified checkpoint.
pub const CHECKPOINT_TREE: &str = "decisions-verified";
/// Key of the verified checkpoint in [`CHECKPOINT_TREE`].
pub const CHECKPOINT_KEY: &[u8] = b"verified";
/// Entries recomputed between two looks at the cancellation flag (about 1.5 ms of work).
pub const CHUNK_ENTRIES: u64 = 256;

/// The last entry a verification found sound: its sequence number, its hash and its `prev`
/// (`seq` 0 and [`GENESIS_PREV`]: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub head: String,
    pub prev: String,
}

impl Checkpoint {
    pub fn genesis() -> Self {
        Checkpoint {
            seq: 0,
            head: GENESIS_PREV.to_owned(),
            prev: String::new(),
        }
    }

    /// 8 bytes big-endian `seq`, then `head`, a space and `prev`.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut bytes = self.seq.to_be_bytes().to_vec();
        bytes.extend_from_slice(self.head.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(self.prev.as_bytes());
        bytes
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<Self> {
        let seq = key_seq(bytes.get(..8)?)?;
        let text = std::str::from_utf8(bytes.get(8..)?).ok()?;
        let (head, prev) = text.split_once(' ')?;
        let hash = |h: &str| h.starts_with("sha256:") && h.len() == 71;
        (hash(head) && (seq == 0 || hash(prev))).then(|| Checkpoint {
            seq,
            head: head.to_owned(),
            prev: prev.to_owned(),
        })
    }
}

/// What to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every entry, from the first.
    Full,
    /// The entries after the verified checkpoint.
    SinceCheckpoint,
}

/// The result of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub ok: bool,
    /// Sound entries: all of them when `ok`, those before the broken one otherwise.
    pub length: u64,
    /// The last sound entry's hash (`GENESIS_PREV` for an empty log).
    pub head: String,
    /// The first entry whose hash and link were recomputed (1 for a full verification; the entry
    /// after the checkpoint for an incremental one).
    pub checked_from: u64,
    /// How many entries were recomputed.
    pub checked: u64,
    /// Whether the verification started from the first entry.
    pub full: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<Broken>,
}

/// The first entry that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    pub seq: u64,
    pub reason: String,
}

/// Where a verification got: its finding (`None`: cancelled) and the last entry it found sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub finding: Option<Verification>,
    /// The last sound entry verified, when it is at or after the checkpoint verified from.
    pub reached: Option<Checkpoint>,
    /// Entries recomputed after the checkpoint (also when cancelled).
    pub checked: u64,
}

/// Verifies the entries of `tree` from the checkpoint `from` on: its own entry is recomputed and
/// must still hash to `from.head`, then every later entry. `cancelled` is asked between chunks
/// of [`CHUNK_ENTRIES`] entries; when it says so, the verification stops without a finding.
pub fn verify_tree(
    tree: &sled::Tree,
    from: &Checkpoint,
    cancelled: &dyn Fn() -> bool,
) -> Result<Outcome, LogError> {
    let anchored = from.seq > 0;
    // The next entry to read and the hash its `prev` must be.
    let mut expected = if anchored { from.seq } else { 1 };
    let mut head = if anchored {
        from.prev.clone()
    } else {
        GENESIS_PREV.to_owned()
    };
    let mut head_prev = String::new();
    let mut checked = 0u64;
    let mut since_look = 0u64;
    let reached = |expected: u64, head: &str, head_prev: &str| {
        (expected > from.seq).then(|| Checkpoint {
            seq: expected - 1,
            head: head.to_owned(),
            prev: head_prev.to_owned(),
        })
    };
    let finding = |expected: u64, head: &str, head_prev: &str, checked, broken| Outcome {
        finding: Some(Verification {
            ok: false,
            length: expected - 1,
            head: head.to_owned(),
            checked_from: from.seq + 1,
            checked,
            full: !anchored,
            broken: Some(broken),
        }),
        reached: reached(expected, head, head_prev),
        checked,
    };
    // The segment holding the first entry to read starts at or before it.
    let start = match tree.range(..=expected.to_be_bytes()).next_back() {
        Some(item) => item.map_err(LogError::storage)?.0.to_vec(),
        None => expected.to_be_bytes().to_vec(),
    };
    let mut start_segment = true;
    for item in tree.range(start..) {
        if since_look >= CHUNK_ENTRIES {
            since_look = 0;
            if cancelled() {
                return Ok(Outcome {
                    finding: None,
                    reached: reached(expected, &head, &head_prev),
                    checked,
                });
            }
        }
        let (key, value) = item.map_err(LogError::storage)?;
        let entries = match segment_entries(&key, &value) {
            Ok(entries) => entries,
            Err(reason) => {
                let seq = key_seq(&key).unwrap_or(expected).max(expected);
                let broken = Broken { seq, reason };
                return Ok(finding(expected, &head, &head_prev, checked, broken));
            }
        };
        // The first segment read may start before the next entry; every later one starts at it.
        let first = entries.first().map(|(first, _)| *first);
        let out_of_place = first.filter(|&f| f > expected || (!start_segment && f != expected));
        start_segment = false;
        if let Some(first) = out_of_place {
            let reason = format!("missing entry: the next key is {first}");
            let broken = Broken {
                seq: expected,
                reason,
            };
            return Ok(finding(expected, &head, &head_prev, checked, broken));
        }
        let from_here = expected;
        for (seq, entry) in entries.into_iter().filter(|(seq, _)| *seq >= from_here) {
            let checked_entry = check_entry(seq, &head, entry.as_bytes()).and_then(|hash| {
                if seq == from.seq && hash != from.head {
                    Err(format!(
                        "changed since it was verified: hash {hash}, verified {}",
                        from.head
                    ))
                } else {
                    Ok(hash)
                }
            });
            match checked_entry {
                Ok(hash) => head_prev = std::mem::replace(&mut head, hash),
                Err(reason) => {
                    let broken = Broken { seq, reason };
                    return Ok(finding(expected, &head, &head_prev, checked, broken));
                }
            }
            if seq > from.seq {
                checked += 1;
                since_look += 1;
            }
            expected = seq + 1;
        }
    }
    if expected <= from.seq {
        // The log ends inside the verified prefix: it lost entries verified before.
        let (last, last_hash) = last_entry(tree)?;
        let reason = format!(
            "missing entry: the log ends at entry {last}, before entry {}, which was verified",
            from.seq
        );
        let broken = Broken {
            seq: last + 1,
            reason,
        };
        return Ok(finding(last + 1, &last_hash, "", checked, broken));
    }
    Ok(Outcome {
        finding: Some(Verification {
            ok: true,
            length: expected - 1,
            head: head.clone(),
            checked_from: from.seq + 1,
            checked,
            full: !anchored,
            broken: None,
        }),
        reached: reached(expected, &head, &head_prev),
        checked,
    })
}

/// The last stored entry's sequence number and stored hash (0 and [`GENESIS_PREV`] for an empty
/// log, or one whose last segment cannot be read).
fn last_entry(tree: &sled::Tree) -> Result<(u64, String), LogError> {
    let Some((key, value)) = tree.last().map_err(LogError::storage)? else {
        return Ok((0, GENESIS_PREV.to_owned()));
    };
    let last = segment_entries(&key, &value)
        .ok()
        .and_then(|entries| entries.last().copied());
    let hash = last.and_then(|(seq, entry)| {
        let value = accord_engine::json::value_from_str(entry).ok()?;
        let hash = value.get("hash")?.as_str()?.to_owned();
        Some((seq, hash))
    });
    Ok(hash.unwrap_or_else(|| (0, GENESIS_PREV.to_owned())))
}

/// What a log keeps to verify itself: the checkpoint's tree, the lock that serializes
/// incremental verifications, the slot of the one full verification that may run, counters.
#[derive(Debug)]
pub(super) struct Verifier {
    checkpoints: sled::Tree,
    incremental: Arc<tokio::sync::Mutex<()>>,
    full_running: Arc<AtomicBool>,
    /// Test hook: a pause before each chunk, in microseconds.
    pause_micros: AtomicU64,
    stats: VerifyStats,
}

/// Counters of verifications (exported as metrics).
#[derive(Debug, Default)]
pub struct VerifyStats {
    /// Entries whose hash and link were recomputed.
    pub entries_checked: AtomicU64,
    /// Verifications stopped because their request was gone.
    pub cancelled: AtomicU64,
}

impl Verifier {
    pub(super) fn open(db: &sled::Db) -> Result<Self, LogError> {
        Ok(Verifier {
            checkpoints: db.open_tree(CHECKPOINT_TREE).map_err(LogError::storage)?,
            incremental: Arc::new(tokio::sync::Mutex::new(())),
            full_running: Arc::new(AtomicBool::new(false)),
            pause_micros: AtomicU64::new(0),
            stats: VerifyStats::default(),
        })
    }
}

/// The right to run the one full verification of a log; released when dropped.
#[derive(Debug)]
pub struct FullSlot(Arc<AtomicBool>);

impl Drop for FullSlot {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The right to run an incremental verification; one runs at a time.
pub type IncrementalSlot = tokio::sync::OwnedMutexGuard<()>;

impl DecisionLog {
    /// The verified checkpoint as stored (genesis when none is, or when it is unreadable: a
    /// damaged checkpoint only costs a verification from the first entry), and its stored bytes.
    pub fn checkpoint(&self) -> Result<(Checkpoint, Option<sled::IVec>), LogError> {
        let stored = self
            .verifier
            .checkpoints
            .get(CHECKPOINT_KEY)
            .map_err(LogError::storage)?;
        let checkpoint = match stored.as_deref().map(Checkpoint::decode) {
            None => Checkpoint::genesis(),
            Some(Some(checkpoint)) => checkpoint,
            Some(None) => {
                tracing::warn!(
                    tree = CHECKPOINT_TREE,
                    "the verified checkpoint is unreadable; verifying from the first entry"
                );
                Checkpoint::genesis()
            }
        };
        Ok((checkpoint, stored))
    }

    /// Waits for the right to verify incrementally (one incremental verification at a time: a
    /// second one waits, then finds the first one's checkpoint and little left to check).
    pub async fn incremental_slot(&self) -> IncrementalSlot {
        Arc::clone(&self.verifier.incremental).lock_owned().await
    }

    /// The right to run a full verification, unless one runs already.
    pub fn try_full_slot(&self) -> Option<FullSlot> {
        self.verifier
            .full_running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| FullSlot(Arc::clone(&self.verifier.full_running)))
    }

    /// Whether a full verification runs now.
    pub fn full_verification_running(&self) -> bool {
        self.verifier.full_running.load(Ordering::SeqCst)
    }

    /// Verifications' counters.
    pub fn verify_stats(&self) -> &VerifyStats {
        &self.verifier.stats
    }

    /// Test hook: pause this long before each chunk of a verification.
    #[doc(hidden)]
    pub fn pace_verification(&self, pause: Duration) {
        let micros = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX);
        self.verifier.pause_micros.store(micros, Ordering::SeqCst);
    }

    /// Verifies the chain (all of it, or after the checkpoint), stopping between chunks once
    /// `cancel` is set (`None`: cancelled), then moves the checkpoint to the last sound entry
    /// found. Blocking: run it on a thread that may block, holding the slot of its scope.
    pub fn verify_scope(
        &self,
        scope: Scope,
        cancel: &AtomicBool,
    ) -> Result<Option<Verification>, LogError> {
        let (stored, stored_bytes) = self.checkpoint()?;
        let from = match scope {
            Scope::Full => Checkpoint::genesis(),
            Scope::SinceCheckpoint => stored.clone(),
        };
        let stats = &self.verifier.stats;
        let cancelled = || {
            let pause = self.verifier.pause_micros.load(Ordering::SeqCst);
            if pause > 0 {
                std::thread::sleep(Duration::from_micros(pause));
            }
            cancel.load(Ordering::SeqCst)
        };
        let outcome = verify_tree(&self.tree, &from, &cancelled)?;
        stats
            .entries_checked
            .fetch_add(outcome.checked, Ordering::Relaxed);
        if outcome.finding.is_none() {
            stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        let broken = outcome.finding.as_ref().is_some_and(|v| !v.ok);
        if let Some(reached) = outcome.reached {
            // An incremental verification moves the checkpoint it started from, unless a full
            // one moved it meanwhile. A full one moves it forward, or, when it found an entry
            // broken, to the entry before (back, if the prefix verified before no longer holds).
            let moves = |current: &Checkpoint| match scope {
                Scope::SinceCheckpoint => *current == stored && reached != stored,
                Scope::Full if broken => reached != *current,
                Scope::Full => reached.seq > current.seq,
            };
            self.move_checkpoint(stored.clone(), stored_bytes, &reached, moves)?;
        }
        Ok(outcome.finding)
    }

    /// The whole chain verified from the first entry, to its end (as `?full=true`).
    pub fn verify(&self) -> Result<Verification, LogError> {
        self.verify_scope(Scope::Full, &AtomicBool::new(false))?
            .ok_or_else(|| LogError::Storage("verification cancelled".into()))
    }

    /// Stores `reached` as the checkpoint while `moves` says it should replace the stored one
    /// (compare-and-swap: verifications of both scopes may finish at once).
    fn move_checkpoint(
        &self,
        mut current: Checkpoint,
        mut current_bytes: Option<sled::IVec>,
        reached: &Checkpoint,
        moves: impl Fn(&Checkpoint) -> bool,
    ) -> Result<(), LogError> {
        let tree = &self.verifier.checkpoints;
        while moves(&current) {
            let swapped = tree
                .compare_and_swap(CHECKPOINT_KEY, current_bytes, Some(reached.encode()))
                .map_err(LogError::storage)?;
            match swapped {
                Ok(()) => return Ok(()),
                Err(_) => (current, current_bytes) = self.checkpoint()?,
            }
        }
        Ok(())
    }
}
