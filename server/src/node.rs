//! The node: the governance block state machine behind the server. Blocks (from a ledger, or
//! sequenced here in single-node mode) apply one at a time; reads take a short lock.

use super::metrics::family;
use accord_engine::ledger::PreparedBlock;
use accord_governance::{BlockAnswer, BlockError, GovernanceState, StateMachine, Status};
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// The state machine, shared by the handlers. Applying a block holds the lock for the block's
/// duration (blocks are strictly ordered anyway); reads hold it only to copy what they answer.
pub struct Node {
    machine: Mutex<StateMachine>,
    logging: LogProgress,
}

impl Node {
    pub fn new(machine: StateMachine) -> Arc<Self> {
        Arc::new(Node {
            machine: Mutex::new(machine),
            logging: LogProgress::default(),
        })
    }

    /// The machine; a panic while it was held cannot have left it half-changed (a block is
    /// applied on a staged copy), so a poisoned lock is still safe to use.
    pub fn lock(&self) -> MutexGuard<'_, StateMachine> {
        self.machine.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn applied_height(&self) -> Option<u64> {
        self.lock().height()
    }

    /// `accord_proposals{state="…"}` for every status, zeros included.
    pub fn write_metrics(&self, out: &mut String) {
        let machine = self.lock();
        let gov = machine.governance();
        family(
            out,
            "accord_proposals",
            "gauge",
            "Governance proposals by state.",
        );
        for status in Status::ALL {
            let n = gov
                .proposals
                .values()
                .filter(|p| p.status == status)
                .count();
            out.push_str(&format!("accord_proposals{{state=\"{status}\"}} {n}\n"));
        }
        family(out, "accord_members", "gauge", "Consortium members.");
        out.push_str(&format!("accord_members {}\n", gov.membership.len()));
    }

    pub fn next_height(&self) -> u64 {
        self.lock().next_height()
    }

    /// Applies a block from the ledger, already hashed and parsed; `decided` sees a new block's
    /// answer before it is stored ([`StateMachine::apply_prepared_with`]).
    pub fn apply(
        &self,
        block: PreparedBlock,
        decided: impl FnOnce(&BlockAnswer),
    ) -> Result<Arc<BlockAnswer>, BlockError> {
        self.applying(|machine| machine.apply_prepared_with(block, decided))
    }

    /// Single-node mode: sequences the governance transaction `tx` into this node's next block
    /// if the state accepts it; a refused one takes no height.
    pub fn sequence_governance(&self, tx: Value) -> Result<Arc<BlockAnswer>, BlockError> {
        self.applying(|machine| machine.sequence_governance(tx))
    }

    /// Runs `apply` under the lock. The request that applies a new block (not a replay) writes
    /// its decisions to the log and then reports with [`LogProgress::finish`].
    fn applying(
        &self,
        apply: impl FnOnce(&mut StateMachine) -> Result<Arc<BlockAnswer>, BlockError>,
    ) -> Result<Arc<BlockAnswer>, BlockError> {
        let mut machine = self.lock();
        let before = machine.height();
        let answer = apply(&mut machine)?;
        if before.is_none_or(|h| answer.height > h) {
            self.logging.writing(answer.height);
        }
        Ok(answer)
    }

    /// Where the decision log stands on the last applied block's decisions.
    pub fn logging(&self) -> &LogProgress {
        &self.logging
    }

    /// Reads governance state under the lock.
    pub fn read<T>(&self, f: impl FnOnce(&GovernanceState, &StateMachine) -> T) -> T {
        let machine = self.lock();
        f(machine.governance(), &machine)
    }
}

/// Where the decision log stands on the last applied block's decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logging {
    /// Every applied block's decisions are in the log.
    Done,
    /// One request is writing block `height`'s decisions.
    Writing(u64),
    /// Block `height`'s decisions are not in the log (their write failed): a replay writes them.
    Missing(u64),
}

/// What a replay of block `height` has to do about its decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// They are in the log.
    Logged,
    /// They are not: this replay writes them, then reports with [`LogProgress::finish`].
    Write,
    /// Another request is writing them: wait with [`LogProgress::wait`].
    Wait,
}

/// Whether the last applied block's decisions are in the decision log. Exactly one request writes
/// them — the one that applied the block, or after a failed write the replay that claims them —
/// so an audit trail slows down but never drops or repeats an entry; replays that arrive meanwhile
/// wait for that write.
#[derive(Debug)]
pub struct LogProgress(watch::Sender<Logging>);

impl Default for LogProgress {
    fn default() -> Self {
        LogProgress(watch::Sender::new(Logging::Done))
    }
}

impl LogProgress {
    /// Block `height` is applied; its applier writes its decisions.
    pub fn writing(&self, height: u64) {
        self.0.send_replace(Logging::Writing(height));
    }

    /// Block `height`'s decisions are not in the log, and nobody is writing them (after a
    /// restart: the node stopped between storing the block and logging its decisions).
    pub fn missing(&self, height: u64) {
        self.0.send_replace(Logging::Missing(height));
    }

    /// For a replay of block `height`. At most one caller gets [`Claim::Write`] for a height
    /// until that write fails.
    pub fn claim(&self, height: u64) -> Claim {
        let mut claim = Claim::Logged;
        self.0.send_if_modified(|state| match *state {
            Logging::Missing(h) if h == height => {
                *state = Logging::Writing(h);
                claim = Claim::Write;
                true
            }
            Logging::Writing(h) if h == height => {
                claim = Claim::Wait;
                false
            }
            _ => false,
        });
        claim
    }

    /// The write of block `height`'s decisions is over: they are in the log, or not. A report
    /// for a block no longer being written (a newer block was applied since) changes nothing.
    pub fn finish(&self, height: u64, logged: bool) {
        self.0.send_if_modified(|state| {
            let writing = *state == Logging::Writing(height);
            if writing {
                *state = if logged {
                    Logging::Done
                } else {
                    Logging::Missing(height)
                };
            }
            writing
        });
    }

    /// Waits until no request is writing block `height`'s decisions; whether they are in the log.
    pub async fn wait(&self, height: u64) -> bool {
        let mut changes = self.0.subscribe();
        let logged = match changes.wait_for(|s| *s != Logging::Writing(height)).await {
            Ok(state) => *state != Logging::Missing(height),
            // Unreachable while `self` holds the sender; not logged, to be safe.
            Err(_) => false,
        };
        logged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_failed_write_is_claimed_by_one_replay_and_a_success_by_none() {
        let progress = LogProgress::default();
        assert_eq!(progress.claim(1), Claim::Logged, "nothing applied yet");
        progress.writing(1);
        assert_eq!(progress.claim(1), Claim::Wait, "the applier writes");
        progress.finish(1, false);
        assert_eq!(
            progress.claim(1),
            Claim::Write,
            "the first replay after a failure"
        );
        assert_eq!(progress.claim(1), Claim::Wait, "and no second one");
        progress.finish(1, true);
        assert_eq!(progress.claim(1), Claim::Logged);
    }

    #[test]
    fn a_report_for_an_older_block_changes_nothing() {
        let progress = LogProgress::default();
        progress.writing(1);
        progress.writing(2);
        progress.finish(1, false);
        assert_eq!(progress.claim(2), Claim::Wait);
        assert_eq!(
            progress.claim(1),
            Claim::Logged,
            "only the last block replays"
        );
        progress.finish(2, true);
        assert_eq!(progress.claim(2), Claim::Logged);
    }

    #[tokio::test]
    async fn a_waiting_replay_learns_how_the_write_ended() {
        for logged in [true, false] {
            let progress = Arc::new(LogProgress::default());
            progress.writing(7);
            let waiter = tokio::spawn({
                let progress = Arc::clone(&progress);
                async move { progress.wait(7).await }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!waiter.is_finished(), "waits while the write runs");
            progress.finish(7, logged);
            assert_eq!(waiter.await.expect("waiter"), logged);
        }
        let progress = LogProgress::default();
        assert!(
            progress.wait(3).await,
            "nothing being written: nothing to wait for"
        );
    }
}
