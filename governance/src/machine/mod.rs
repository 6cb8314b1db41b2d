//! The block state machine (docs/contract.md §5): one function applies an ordered block.
//!
//! At the start of block `h` voting windows that end at `h` close and queued proposals due at `h`
//! activate; then the block's transactions apply in order: access transactions get decisions
//! (and, while a policy change is pending, a second evaluation under the proposed set for the
//! impact preview), consent, representation, agreement and governance transactions change state. Everything happens on a
//! staged copy which, with its persistence batch, replaces the state only when the whole block
//! is done: a block is applied entirely or not at all, on disk as in memory.

mod err;
mod root;

pub use crate::answer::{Applied, BlockAnswer, RefusedBy, TxResult};
pub use err::{BlockError, OpenError};
pub use root::{governance_digest, state_root};

use crate::genesis::Genesis;
use crate::message::Envelope;
use crate::policy_set::{ActivePolicySet, ActiveSet};
use crate::state::{Accepted, GovernanceState};
use crate::store::{BlockCommit, Store, StoredState};
use accord_engine::consent::ConsentRegistry;
use accord_engine::ledger::{Block, PreparedBlock};
use accord_engine::{
    AccessRequest, Bundle, Decision, Effect, InMemoryConsentRegistry, Transaction,
};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Handles other threads read without blocking the machine: the active policy set and the
/// consent state as of the last applied block.
#[derive(Debug, Clone)]
pub struct Published {
    pub policy: Arc<ActivePolicySet>,
    pub consents: Arc<ArcSwap<InMemoryConsentRegistry>>,
}

/// The node's state: governance, consents, the active set, and the last applied block.
pub struct StateMachine {
    gov: GovernanceState,
    consents: Arc<InMemoryConsentRegistry>,
    /// Shared with the caller that applied it: a block's answer is large (every decision).
    last: Option<Arc<BlockAnswer>>,
    /// Answers to every applied block, when there is no store to keep them.
    answers: BTreeMap<u64, Arc<BlockAnswer>>,
    store: Option<Store>,
    genesis_digest: String,
    published: Published,
    /// The height the first block must have (the genesis's `initial_height`).
    initial_height: u64,
    /// Access decisions made under candidate sets for the impact preview since this machine
    /// started (applied blocks and blocks that failed to store alike).
    preview_decisions: u64,
}

/// Work the machine has done since it started: what the impact preview and proposal checks cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// Bundles compiled by governance (proposal checks, activations, recompiles after a restart).
    pub bundle_compiles: u64,
    /// Access decisions made under candidate sets for the impact preview.
    pub preview_decisions: u64,
}

impl StateMachine {
    /// A fresh in-memory state from genesis and its compiled bundle.
    pub fn new(genesis: &Genesis, bundle: Arc<Bundle>) -> Self {
        let digest = genesis.digest(bundle.version());
        let gov = GovernanceState::from_genesis(genesis, bundle);
        Self::assemble(gov, InMemoryConsentRegistry::new(), None, None, digest)
            .starting_at(genesis.initial_height)
    }

    /// Opens the state kept in `db`, or starts from genesis when `db` holds none. Refuses a
    /// database made under another genesis.
    pub fn open(genesis: &Genesis, bundle: Arc<Bundle>, db: &sled::Db) -> Result<Self, OpenError> {
        let digest = genesis.digest(bundle.version());
        let store = Store::open(db)?;
        match store.load(genesis.signature_scheme)? {
            None => {
                let gov = GovernanceState::from_genesis(genesis, bundle);
                Ok(Self::assemble(
                    gov,
                    InMemoryConsentRegistry::new(),
                    None,
                    Some(store),
                    digest,
                )
                .starting_at(genesis.initial_height))
            }
            Some(StoredState {
                genesis: stored_genesis,
                gov,
                consents,
                last,
            }) => {
                if stored_genesis != digest {
                    return Err(OpenError::GenesisMismatch {
                        stored: stored_genesis,
                        expected: digest,
                    });
                }
                Ok(
                    Self::assemble(gov, consents, Some(last), Some(store), digest)
                        .starting_at(genesis.initial_height),
                )
            }
        }
    }

    fn assemble(
        gov: GovernanceState,
        consents: InMemoryConsentRegistry,
        last: Option<BlockAnswer>,
        store: Option<Store>,
        genesis_digest: String,
    ) -> Self {
        let consents = Arc::new(consents);
        let published = Published {
            policy: Arc::new(ActivePolicySet::new(gov.active_set())),
            consents: Arc::new(ArcSwap::new(consents.clone())),
        };
        StateMachine {
            gov,
            consents,
            last: last.map(Arc::new),
            answers: BTreeMap::new(),
            store,
            genesis_digest,
            published,
            initial_height: 1,
            preview_decisions: 0,
        }
    }

    fn starting_at(mut self, initial_height: u64) -> Self {
        self.initial_height = initial_height;
        self
    }

    /// Work done since this machine started.
    pub fn work(&self) -> Work {
        Work {
            bundle_compiles: self.gov.bundles.compiles(),
            preview_decisions: self.preview_decisions,
        }
    }

    pub fn governance(&self) -> &GovernanceState {
        &self.gov
    }

    pub fn consents(&self) -> &InMemoryConsentRegistry {
        &self.consents
    }

    /// Handles for concurrent readers; they follow every applied block.
    pub fn published(&self) -> Published {
        self.published.clone()
    }

    /// The last applied height, if any block was applied.
    pub fn height(&self) -> Option<u64> {
        self.last.as_ref().map(|a| a.height)
    }

    /// The height the next block must have: the genesis's `initial_height` (1 unless it says
    /// otherwise) before any block, then one more than the last.
    ///
    /// INVARIANT: heights never wrap. The first height is at most
    /// [`crate::genesis::MAX_INITIAL_HEIGHT`] and each block adds one, so `u64::MAX` is beyond
    /// reach; the addition saturates all the same, and a block at `u64::MAX` is then refused as
    /// out of order rather than followed by height 0.
    pub fn next_height(&self) -> u64 {
        self.height()
            .map_or(self.initial_height, |h| h.saturating_add(1))
    }

    pub fn last_answer(&self) -> Option<&BlockAnswer> {
        self.last.as_deref()
    }

    /// The state root after the last block (or of the genesis state).
    pub fn state_root(&self) -> String {
        match &self.last {
            Some(a) => a.state_root.clone(),
            None => state_root(&self.gov, &self.consents.digest()),
        }
    }

    fn known_answer(&self, height: u64) -> Result<Option<Arc<BlockAnswer>>, BlockError> {
        if let Some(last) = self.last.as_ref().filter(|a| a.height == height) {
            return Ok(Some(last.clone()));
        }
        if let Some(a) = self.answers.get(&height) {
            return Ok(Some(a.clone()));
        }
        match &self.store {
            Some(store) => store
                .answer(height)
                .map(|a| a.map(Arc::new))
                .map_err(|e| BlockError::Store(e.to_string())),
            None => Ok(None),
        }
    }

    /// Single-node mode: wraps `transactions` into this node's own next block (height after the
    /// last, `previous` = the last block's hash) and applies it through the same rules as any
    /// block from a ledger.
    pub fn sequence(
        &mut self,
        transactions: Vec<serde_json::Value>,
    ) -> Result<Arc<BlockAnswer>, BlockError> {
        let block = Block {
            height: self.next_height(),
            previous: self.last.as_ref().map(|a| a.block_hash.clone()),
            transactions,
        };
        self.apply_block(block)
    }

    /// Applies the next block, or returns the stored answer when `block` is a replay of a
    /// block already applied. The first block must have the genesis's initial height; each later
    /// one the next height.
    pub fn apply_block(&mut self, block: Block) -> Result<Arc<BlockAnswer>, BlockError> {
        self.apply_prepared(block.prepare())
    }

    /// [`StateMachine::apply_block`] for a block already hashed and parsed.
    pub fn apply_prepared(&mut self, block: PreparedBlock) -> Result<Arc<BlockAnswer>, BlockError> {
        self.apply_prepared_with(block, |_| {})
    }

    /// [`StateMachine::apply_prepared`], showing `decided` a new block's answer once all its
    /// transactions are decided and before the block is stored, so that the caller can start
    /// work of its own while the store writes (the server queues the block's decision-log
    /// entries). `decided` is not called for a replay, nor for a block refused before its
    /// transactions ran; when it is called, storing the block may still fail.
    pub fn apply_prepared_with(
        &mut self,
        block: PreparedBlock,
        decided: impl FnOnce(&BlockAnswer),
    ) -> Result<Arc<BlockAnswer>, BlockError> {
        if self.height().is_some_and(|h| block.height <= h) {
            return match self.known_answer(block.height)? {
                Some(known) if known.block_hash == block.hash => Ok(known),
                Some(_) => Err(BlockError::Conflict {
                    height: block.height,
                }),
                // Below the first block this node applied: never known here.
                None => Err(BlockError::OutOfOrder {
                    expected: self.next_height(),
                    got: block.height,
                }),
            };
        }
        if block.height != self.next_height() || block.height == u64::MAX {
            return Err(BlockError::OutOfOrder {
                expected: self.next_height(),
                got: block.height,
            });
        }
        if let Some(last) = &self.last {
            if let Some(previous) = &block.previous {
                if previous != &last.block_hash {
                    return Err(BlockError::PreviousMismatch {
                        height: block.height,
                        expected: last.block_hash.clone(),
                    });
                }
            }
        }
        let staged = self.stage(block)?;
        decided(&staged.answer);
        self.commit(staged)
    }

    /// The answer to block `height` if this node applied it (the last block, or one kept in the
    /// store).
    pub fn answer(&self, height: u64) -> Result<Option<Arc<BlockAnswer>>, BlockError> {
        self.known_answer(height)
    }

    /// What applying `block` as the next block would answer now, without storing or installing
    /// anything: a consensus engine's proposer and validators check a proposed block with it, and
    /// its mempool a single transaction. Refused like [`StateMachine::apply_prepared`] when
    /// `block` is not the next height or a transaction does not parse.
    pub fn dry_run(&mut self, block: PreparedBlock) -> Result<BlockAnswer, BlockError> {
        if block.height != self.next_height() || block.height == u64::MAX {
            return Err(BlockError::OutOfOrder {
                expected: self.next_height(),
                got: block.height,
            });
        }
        // A trial's impact-preview decisions are not work done for an applied block.
        let preview_decisions = self.preview_decisions;
        let staged = self.stage(block);
        self.preview_decisions = preview_decisions;
        Ok(staged?.answer)
    }

    /// Single-node mode: one governance transaction as the next block, sequenced only when it is
    /// applied. A message the state refuses (malformed, a bad signature, not a member, a state
    /// rule) is returned as [`BlockError::NotSequenced`]: no height is taken, nothing changes.
    pub fn sequence_governance(
        &mut self,
        tx: serde_json::Value,
    ) -> Result<Arc<BlockAnswer>, BlockError> {
        let block = Block {
            height: self.next_height(),
            previous: self.last.as_ref().map(|a| a.block_hash.clone()),
            transactions: vec![tx],
        }
        .prepare();
        if let Ok(transactions) = &block.transactions {
            if !matches!(transactions.as_slice(), [Transaction::Governance(_)]) {
                return Err(BlockError::NotSequenced {
                    refused: RefusedBy {
                        code: "not_governance".to_owned(),
                        message: "expected one governance transaction".to_owned(),
                        field: Some("kind".to_owned()),
                    },
                });
            }
        }
        if block.height == u64::MAX {
            return Err(BlockError::OutOfOrder {
                expected: self.next_height(),
                got: block.height,
            });
        }
        let staged = self.stage(block)?;
        if let [TxResult::Refused { refused, .. }] = staged.answer.results.as_slice() {
            return Err(BlockError::NotSequenced {
                refused: refused.clone(),
            });
        }
        self.commit(staged)
    }

    /// Runs `block`'s transactions on copies of the state: nothing is stored or installed.
    fn stage(&mut self, block: PreparedBlock) -> Result<StagedBlock, BlockError> {
        let hash = block.hash;
        let height = block.height;
        let transactions = block.transactions.map_err(BlockError::Transaction)?;
        let mut gov = self.gov.clone();
        let mut consents = (*self.consents).clone();
        let activated = gov.begin_block(height);
        let active = gov.active_set();
        let mut touched_consents = BTreeSet::new();
        let mut touched_representations = BTreeSet::new();
        let mut touched_agreements = BTreeSet::new();
        let mut results = Vec::with_capacity(transactions.len());
        let mut i = 0;
        while i < transactions.len() {
            // A run of access transactions sees one consent and governance state: decide it in
            // parallel, then record the results in ledger order.
            let run = transactions[i..]
                .iter()
                .take_while(|t| matches!(t, Transaction::Access(_)))
                .count();
            if run > 0 {
                let requests: Vec<&AccessRequest> = transactions[i..i + run]
                    .iter()
                    .filter_map(|t| match t {
                        Transaction::Access(r) => Some(&**r),
                        _ => None,
                    })
                    .collect();
                let targets = gov.preview_targets();
                let evaluated =
                    evaluate_run(&active, &targets.candidates, &requests, &consents, height);
                self.preview_decisions = self.preview_decisions.saturating_add(
                    (requests.len() as u64).saturating_mul(targets.candidates.len() as u64),
                );
                for (request, (decision, allowed_under)) in requests.iter().zip(evaluated) {
                    let allowed = decision.decision == Effect::Allow;
                    for (proposal, candidate) in &targets.proposals {
                        let after = allowed_under.get(*candidate).copied().unwrap_or(false);
                        gov.record_impact(proposal, &request.id, height, allowed, after);
                    }
                    results.push(TxResult::Decided(decision));
                }
                i += run;
                continue;
            }
            let tx = &transactions[i];
            i += 1;
            results.push(match tx {
                // Decided above, in runs.
                Transaction::Access(_) => continue,
                Transaction::Consent(c) => match consents.apply(c) {
                    Ok(()) => {
                        touched_consents.insert(c.consent.id.clone());
                        TxResult::Applied {
                            tx: c.id.clone(),
                            applied: Applied {
                                kind: "consent".into(),
                                id: c.consent.id.clone(),
                                status: None,
                            },
                        }
                    }
                    Err(e) => refused(&c.id, "consent_refused", e.to_string(), None),
                },
                Transaction::Representation(r) => match consents.apply_representation(r) {
                    Ok(()) => {
                        touched_representations.insert(r.representation.id.clone());
                        TxResult::Applied {
                            tx: r.id.clone(),
                            applied: Applied {
                                kind: "representation".into(),
                                id: r.representation.id.clone(),
                                status: None,
                            },
                        }
                    }
                    Err(e) => refused(&r.id, "representation_refused", e.to_string(), None),
                },
                Transaction::Agreement(a) => match consents.apply_agreement(a) {
                    Ok(()) => {
                        touched_agreements.insert(a.agreement.id.clone());
                        TxResult::Applied {
                            tx: a.id.clone(),
                            applied: Applied {
                                kind: "agreement".into(),
                                id: a.agreement.id.clone(),
                                status: None,
                            },
                        }
                    }
                    Err(e) => refused(&a.id, "agreement_refused", e.to_string(), None),
                },
                Transaction::Governance(g) => {
                    let outcome = Envelope::from_value(&g.governance)
                        .and_then(|env| gov.apply(&env, &g.id, height));
                    match outcome {
                        Ok(accepted) => TxResult::Applied {
                            tx: g.id.clone(),
                            applied: applied_of(accepted),
                        },
                        Err(refusal) => refused(
                            &g.id,
                            refusal.code(),
                            refusal.to_string(),
                            refusal.field().map(str::to_owned),
                        ),
                    }
                }
            });
        }
        // Compiled candidates of proposals that closed in this block are released.
        gov.release_unheld_compiled();
        let consent_digest = consents.digest();
        let answer = BlockAnswer::new(
            height,
            hash,
            activated,
            results,
            state_root(&gov, &consent_digest),
        );
        Ok(StagedBlock {
            gov,
            consents,
            answer,
            touched_consents,
            touched_representations,
            touched_agreements,
        })
    }

    /// Stores a staged block and installs its state.
    fn commit(&mut self, staged: StagedBlock) -> Result<Arc<BlockAnswer>, BlockError> {
        let StagedBlock {
            mut gov,
            consents,
            answer,
            touched_consents,
            touched_representations,
            touched_agreements,
        } = staged;
        if let Some(store) = &self.store {
            let dirty = gov.take_dirty();
            let bundles = gov.bundles.take_unsaved();
            let commit = BlockCommit {
                genesis: &self.genesis_digest,
                gov: &gov,
                proposals: dirty
                    .iter()
                    .filter_map(|id| gov.proposals.get(id))
                    .collect(),
                bundles,
                consents: touched_consents
                    .iter()
                    .filter_map(|id| consents.get(id))
                    .collect(),
                representations: touched_representations
                    .iter()
                    .filter_map(|id| consents.relations().representation(id))
                    .collect(),
                agreements: touched_agreements
                    .iter()
                    .filter_map(|id| consents.relations().agreement(id))
                    .collect(),
                answer: &answer,
            };
            store
                .commit(&commit)
                .map_err(|e| BlockError::Store(e.to_string()))?;
        } else {
            gov.take_dirty();
            gov.bundles.take_unsaved();
            if let Some(last) = self.last.take() {
                self.answers.insert(last.height, last);
            }
        }
        let swapped = gov.active.version() != self.gov.active.version()
            || gov.active_activation() != self.gov.active_activation();
        self.gov = gov;
        self.consents = Arc::new(consents);
        self.published.consents.store(self.consents.clone());
        if swapped {
            self.published.policy.swap(self.gov.active_set());
        }
        let answer = Arc::new(answer);
        self.last = Some(answer.clone());
        Ok(answer)
    }
}

/// A block's effects computed on copies of the state ([`StateMachine::stage`]), not yet stored or
/// installed ([`StateMachine::commit`]).
struct StagedBlock {
    gov: GovernanceState,
    consents: InMemoryConsentRegistry,
    answer: BlockAnswer,
    touched_consents: BTreeSet<String>,
    touched_representations: BTreeSet<String>,
    touched_agreements: BTreeSet<String>,
}

/// Decisions for a run of access requests (and, per distinct candidate set of the pending policy
/// changes, whether each would be allowed under it), in input order. Runs long enough to pay for
/// threads are split across the machine's cores; the result does not depend on the split.
fn evaluate_run(
    active: &ActiveSet,
    candidates: &[Arc<Bundle>],
    requests: &[&AccessRequest],
    consents: &InMemoryConsentRegistry,
    height: u64,
) -> Vec<(Decision, Vec<bool>)> {
    // Each part is decided phase by phase (`Bundle::decide_all`), under the active set and under
    // each distinct candidate.
    let part = |requests: &[&AccessRequest]| -> Vec<(Decision, Vec<bool>)> {
        let decisions = active.decide_all(requests, consents);
        let mut impacts: Vec<Vec<bool>> = vec![Vec::new(); requests.len()];
        for target in candidates {
            let proposed = target.decide_all(requests, consents, height);
            for (flags, d) in impacts.iter_mut().zip(proposed) {
                flags.push(d.decision == Effect::Allow);
            }
        }
        decisions.into_iter().zip(impacts).collect()
    };
    const MIN_PER_THREAD: usize = 16;
    accord_engine::parallel::map_chunks(requests, MIN_PER_THREAD, part)
}

fn refused(tx: &str, code: &str, message: String, field: Option<String>) -> TxResult {
    TxResult::Refused {
        tx: tx.to_owned(),
        refused: RefusedBy {
            code: code.to_owned(),
            message,
            field,
        },
    }
}

fn applied_of(accepted: Accepted) -> Applied {
    let (kind, id, status) = match accepted {
        Accepted::Proposed { proposal } => ("proposal", proposal, Some("voting".to_owned())),
        Accepted::Voted { proposal, status } => ("vote", proposal, Some(status.to_string())),
        Accepted::Cancelled { proposal } => ("cancel", proposal, Some("cancelled".to_owned())),
        Accepted::Vetoed { proposal, status } => ("veto", proposal, Some(status.to_string())),
    };
    Applied {
        kind: kind.to_owned(),
        id,
        status,
    }
}

#[cfg(test)]
mod tests;
