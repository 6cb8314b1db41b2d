//! The node: the governance block state machine behind the server. Blocks (from a ledger, or
//! sequenced here in single-node mode) apply one at a time; reads take a short lock.

use super::metrics::family;
use accord_engine::ledger::PreparedBlock;
use accord_governance::{BlockAnswer, BlockError, GovernanceState, StateMachine, Status};
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};

/// The state machine, shared by the handlers. Applying a block holds the lock for the block's
/// duration (blocks are strictly ordered anyway); reads hold it only to copy what they answer.
pub struct Node {
    machine: Mutex<StateMachine>,
    /// A height whose decisions are applied but not yet in the decision log: a replay of that
    /// block logs them (audit trails slow down, never drop).
    unlogged: Mutex<Option<u64>>,
}

impl Node {
    pub fn new(machine: StateMachine) -> Arc<Self> {
        Arc::new(Node {
            machine: Mutex::new(machine),
            unlogged: Mutex::new(None),
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

    pub fn ready(&self) -> Result<(), String> {
        Ok(())
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

    /// Single-node mode: sequences `tx` into this node's next block.
    pub fn sequence(&self, tx: Value) -> Result<Arc<BlockAnswer>, BlockError> {
        self.applying(|machine| machine.sequence(vec![tx]))
    }

    /// Runs `apply` under the lock and marks a newly applied block (not a replay) as unlogged.
    fn applying(
        &self,
        apply: impl FnOnce(&mut StateMachine) -> Result<Arc<BlockAnswer>, BlockError>,
    ) -> Result<Arc<BlockAnswer>, BlockError> {
        let mut machine = self.lock();
        let before = machine.height();
        let answer = apply(&mut machine)?;
        if before.is_none_or(|h| answer.height > h) {
            *self.unlogged.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer.height);
        }
        Ok(answer)
    }

    /// Whether the decisions of block `height` still have to be logged.
    pub fn needs_logging(&self, height: u64) -> bool {
        *self.unlogged.lock().unwrap_or_else(|p| p.into_inner()) == Some(height)
    }

    /// The decisions of block `height` are in the decision log.
    pub fn logged(&self, height: u64) {
        let mut unlogged = self.unlogged.lock().unwrap_or_else(|p| p.into_inner());
        if *unlogged == Some(height) {
            *unlogged = None;
        }
    }

    /// Reads governance state under the lock.
    pub fn read<T>(&self, f: impl FnOnce(&GovernanceState, &StateMachine) -> T) -> T {
        let machine = self.lock();
        f(machine.governance(), &machine)
    }
}
