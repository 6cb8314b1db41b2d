//! Governance state: membership, voting rules, proposals and the policy-set history, and the
//! rules by which signed messages and block heights change it.

use crate::bundles::{BundleStore, OpenBundles};
use crate::change::{self, Context};
use crate::err::Refusal;
use crate::genesis::Genesis;
use crate::member::{Membership, MembershipChange};
use crate::message::{
    CancelMessage, Change, Envelope, Message, ProposalMessage, VetoMessage, VoteMessage,
};
use crate::params::VotingParams;
use crate::proposal::{Effect, Impact, Proposal, Status, VoteRecord};
use crate::signature_scheme::{self, SignatureFault, SignatureScheme};
use crate::tally::{Outcome, Tally};
use crate::{Activation, ActiveSet};
use accord_engine::Bundle;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What an accepted message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    Proposed { proposal: String },
    Voted { proposal: String, status: Status },
    Cancelled { proposal: String },
    Vetoed { proposal: String, status: Status },
}

/// The impact preview's work for a run of access transactions: each distinct candidate set is
/// decided once, and each proposal reads the answers of its own candidate.
#[derive(Debug, Clone, Default)]
pub struct PreviewTargets {
    /// Distinct compiled candidates, in the order their first proposal comes in id order.
    pub candidates: Vec<Arc<Bundle>>,
    /// Pending policy proposals in id order, each with the index of its candidate.
    pub proposals: Vec<(String, usize)>,
}

/// Consortium governance state. Cloning gives an independent copy (a block stages on one).
#[derive(Debug, Clone)]
pub struct GovernanceState {
    pub consortium: String,
    pub membership: Membership,
    pub params: VotingParams,
    /// The signatures messages must carry (from genesis; never changes).
    pub signature_scheme: SignatureScheme,
    /// By id.
    pub proposals: BTreeMap<String, Proposal>,
    /// Every policy set that was active, oldest first; the last is active now.
    pub history: Vec<Activation>,
    pub next_seq: u64,
    pub bundles: BundleStore,
    /// The compiled active set.
    pub active: Arc<Bundle>,
    /// Proposals changed since the last [`GovernanceState::take_dirty`].
    dirty: BTreeSet<String>,
}

impl GovernanceState {
    /// The state at height 0.
    pub fn from_genesis(genesis: &Genesis, bundle: Arc<Bundle>) -> Self {
        let mut bundles = BundleStore::default();
        bundles.insert(bundle.clone());
        GovernanceState {
            consortium: genesis.consortium.clone(),
            membership: genesis.membership.clone(),
            params: genesis.voting.clone(),
            signature_scheme: genesis.signature_scheme,
            proposals: BTreeMap::new(),
            history: vec![Activation {
                version: bundle.version().to_owned(),
                name: bundle.name().to_owned(),
                activated_at_height: 0,
                proposal: None,
            }],
            next_seq: 0,
            bundles,
            active: bundle,
            dirty: BTreeSet::new(),
        }
    }

    /// Rebuilds the state from stored parts; compiles the active set from its stored bundle. The
    /// signature scheme is the genesis's (not stored: the genesis digest pins it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restore(
        signature_scheme: SignatureScheme,
        consortium: String,
        membership: Membership,
        params: VotingParams,
        proposals: BTreeMap<String, Proposal>,
        history: Vec<Activation>,
        next_seq: u64,
        mut bundles: BundleStore,
    ) -> Result<Self, String> {
        let current = history
            .last()
            .ok_or("the stored policy-set history is empty")?;
        let active = bundles.compiled(&current.version)?;
        let mut state = GovernanceState {
            consortium,
            membership,
            params,
            signature_scheme,
            proposals,
            history,
            next_seq,
            bundles,
            active,
            dirty: BTreeSet::new(),
        };
        state.keep_needed_compiled()?;
        Ok(state)
    }

    /// The compiled active set with the height it governs from.
    pub fn active_set(&self) -> ActiveSet {
        ActiveSet {
            bundle: self.active.clone(),
            activated_at_height: self.active_activation().activated_at_height,
        }
    }

    pub fn active_activation(&self) -> &Activation {
        // Never empty: genesis puts the first entry and nothing removes one.
        &self.history[self.history.len() - 1]
    }

    /// Proposals changed since the last call (for persistence).
    pub fn take_dirty(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.dirty)
    }

    /// Checks and applies one signed message at `height`. On refusal nothing changes.
    pub fn apply(&mut self, env: &Envelope, tx: &str, height: u64) -> Result<Accepted, Refusal> {
        let message = &env.message;
        if message.consortium() != self.consortium {
            return Err(Refusal::WrongConsortium {
                expected: self.consortium.clone(),
                got: message.consortium().to_owned(),
            });
        }
        match message {
            Message::Proposal(m) => self.propose(m, env, tx, height),
            Message::Vote(m) => self.vote(m, env, tx, height),
            Message::Cancel(m) => self.cancel(m, env, height),
            Message::Veto(m) => self.veto(m, env, height),
        }
    }

    fn verify(
        membership: &Membership,
        scheme: SignatureScheme,
        env: &Envelope,
        snapshot: Option<&str>,
    ) -> Result<u64, Refusal> {
        let signer = env.message.signer();
        let member = membership.get(signer).ok_or_else(|| Refusal::NotAMember {
            signer: signer.to_owned(),
            snapshot: snapshot.map(str::to_owned),
        })?;
        let bad = |fault: SignatureFault| Refusal::BadSignature {
            signer: signer.to_owned(),
            fault,
        };
        let key = membership
            .key(signer)
            .ok_or_else(|| bad(SignatureFault::Ed25519))?;
        signature_scheme::verify(scheme, env, key, membership.ml_dsa_key(signer)).map_err(bad)?;
        Ok(member.weight)
    }

    fn propose(
        &mut self,
        m: &ProposalMessage,
        env: &Envelope,
        tx: &str,
        height: u64,
    ) -> Result<Accepted, Refusal> {
        Self::verify(&self.membership, self.signature_scheme, env, None)?;
        let id = crate::message::proposal_id(&env.signed_bytes);
        if self.proposals.contains_key(&id) {
            return Err(Refusal::DuplicateProposal { id });
        }
        let open = self
            .proposals
            .values()
            .filter(|p| p.proposer == m.proposer && p.status == Status::Voting)
            .count();
        let open = u32::try_from(open).unwrap_or(u32::MAX);
        if open >= self.params.max_open_proposals {
            return Err(Refusal::ProposalCapReached {
                proposer: m.proposer.clone(),
                open,
                cap: self.params.max_open_proposals,
            });
        }
        let active = self.active_activation().clone();
        self.check_base(m, &active.version)?;
        // An emergency rollback is voted under the emergency rules, frozen with it.
        let params = match &m.change {
            Change::Rollback {
                emergency: true, ..
            } => self.params.for_emergency().ok_or_else(|| {
                Refusal::invalid_change(
                    "message.change.emergency",
                    "the voting rules allow no emergency rollback (genesis `voting.emergency`)",
                )
            })?,
            _ => self.params.clone(),
        };
        // Resolve on a copy of the bundle store so a refusal leaves it untouched.
        let mut bundles = self.bundles.clone();
        let open = self.open_bundles();
        let mut effect = change::resolve(
            &m.change,
            Context {
                membership: &self.membership,
                signature_scheme: self.signature_scheme,
                active: &active,
                history: &self.history,
                bundles: &mut bundles,
                open: &open,
            },
        )?;
        self.bundles = bundles;
        match &mut effect {
            Effect::ActivatePolicySet { base, .. } => *base = Some(active.version.clone()),
            Effect::SetVotingParams { base, .. } => *base = Some(self.params.digest()),
            _ => {}
        }
        let kind = serde_json::to_value(&m.change)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
            .unwrap_or_default();
        let proposal = Proposal {
            id: id.clone(),
            content: crate::message::content_hash(&m.change),
            seq: self.next_seq,
            proposer: m.proposer.clone(),
            title: m.title.clone(),
            description: m.description.clone(),
            kind,
            effect,
            tx: tx.to_owned(),
            created_at: height,
            voting_ends: height.saturating_add(params.voting_period),
            params,
            membership: self.membership.clone(),
            votes: BTreeMap::new(),
            tally: Tally::new(self.membership.total_weight()),
            vetoes: BTreeMap::new(),
            status: Status::Voting,
            decided_at: None,
            activates_at: None,
            note: None,
            seen: BTreeSet::new(),
            impact: Impact::default(),
        };
        self.next_seq += 1;
        self.dirty.insert(id.clone());
        self.proposals.insert(id.clone(), proposal);
        Ok(Accepted::Proposed { proposal: id })
    }

    /// A policy or voting-rule change must name the state it was built on, and that must be
    /// the state in force; a membership change names none.
    fn check_base(&self, m: &ProposalMessage, active_version: &str) -> Result<(), Refusal> {
        let (state, current) = if m.change.is_policy_change() {
            ("policy set", active_version.to_owned())
        } else if matches!(m.change, Change::SetVotingParams { .. }) {
            ("voting rules", self.params.digest())
        } else {
            return match m.base {
                Some(_) => Err(Refusal::UnexpectedBase),
                None => Ok(()),
            };
        };
        match &m.base {
            None => Err(Refusal::MissingBase { state, current }),
            Some(base) if *base != current => Err(Refusal::StaleBase {
                state,
                base: base.clone(),
                current,
            }),
            Some(_) => Ok(()),
        }
    }

    fn open_proposal(&self, id: &str) -> Result<&Proposal, Refusal> {
        let p = self
            .proposals
            .get(id)
            .ok_or_else(|| Refusal::UnknownProposal { id: id.to_owned() })?;
        Ok(p)
    }

    fn vote(
        &mut self,
        m: &VoteMessage,
        env: &Envelope,
        tx: &str,
        height: u64,
    ) -> Result<Accepted, Refusal> {
        let p = self.open_proposal(&m.proposal)?;
        let weight = Self::verify(&p.membership, self.signature_scheme, env, Some(&p.id))?;
        let digest = env.digest();
        if p.seen.contains(&digest) {
            return Err(Refusal::Replayed { digest });
        }
        check_voting(p, height)?;
        if m.content != p.content {
            return Err(Refusal::ContentMismatch {
                id: p.id.clone(),
                expected: p.content.clone(),
                got: m.content.clone(),
            });
        }
        let id = p.id.clone();
        let Some(p) = self.proposals.get_mut(&id) else {
            return Err(Refusal::UnknownProposal { id });
        };
        if let Some(old) = p.votes.get(&m.voter) {
            p.tally.remove(old.choice, old.weight);
        }
        p.tally.add(m.choice, weight);
        p.votes.insert(
            m.voter.clone(),
            VoteRecord {
                choice: m.choice,
                weight,
                tx: tx.to_owned(),
                height,
            },
        );
        p.seen.insert(digest);
        match p.tally.decided(&p.params) {
            Outcome::Passed => pass(p, height),
            Outcome::Rejected => close(p, Status::Rejected, height),
            Outcome::Expired | Outcome::Open => {}
        }
        let status = p.status;
        self.dirty.insert(id.clone());
        Ok(Accepted::Voted {
            proposal: id,
            status,
        })
    }

    fn cancel(
        &mut self,
        m: &CancelMessage,
        env: &Envelope,
        height: u64,
    ) -> Result<Accepted, Refusal> {
        let p = self.open_proposal(&m.proposal)?;
        Self::verify(&p.membership, self.signature_scheme, env, Some(&p.id))?;
        if m.proposer != p.proposer {
            return Err(Refusal::NotProposer {
                id: p.id.clone(),
                proposer: p.proposer.clone(),
            });
        }
        check_voting(p, height)?;
        let id = p.id.clone();
        if let Some(p) = self.proposals.get_mut(&id) {
            close(p, Status::Cancelled, height);
        }
        self.dirty.insert(id.clone());
        Ok(Accepted::Cancelled { proposal: id })
    }

    /// A veto of a passed proposal waiting to activate, by a member of the membership it was
    /// voted under. Enough vetoes (the frozen rules' `veto_threshold`) and it never activates.
    fn veto(&mut self, m: &VetoMessage, env: &Envelope, height: u64) -> Result<Accepted, Refusal> {
        let p = self.open_proposal(&m.proposal)?;
        let weight = Self::verify(&p.membership, self.signature_scheme, env, Some(&p.id))?;
        if p.status != Status::Queued {
            return Err(Refusal::NotVetoable {
                id: p.id.clone(),
                reason: format!("it is {}, not passed and waiting to activate", p.status),
            });
        }
        if p.params.veto_threshold.is_none() {
            return Err(Refusal::NotVetoable {
                id: p.id.clone(),
                reason:
                    "the rules it was voted under allow no veto (genesis `voting.veto_threshold`)"
                        .into(),
            });
        }
        if m.content != p.content {
            return Err(Refusal::ContentMismatch {
                id: p.id.clone(),
                expected: p.content.clone(),
                got: m.content.clone(),
            });
        }
        if p.vetoes.contains_key(&m.voter) {
            return Err(Refusal::NotVetoable {
                id: p.id.clone(),
                reason: format!("`{}` vetoed it already", m.voter),
            });
        }
        let id = p.id.clone();
        let Some(p) = self.proposals.get_mut(&id) else {
            return Err(Refusal::UnknownProposal { id });
        };
        p.vetoes.insert(m.voter.clone(), weight);
        let vetoed: u64 = p.vetoes.values().fold(0, |a, w| a.saturating_add(*w));
        if crate::tally::vetoed(vetoed, p.tally.total, &p.params) {
            p.status = Status::Vetoed;
            p.note = Some(format!(
                "vetoed at height {height} by weight {vetoed} of {}",
                p.tally.total
            ));
        }
        let status = p.status;
        self.dirty.insert(id.clone());
        Ok(Accepted::Vetoed {
            proposal: id,
            status,
        })
    }

    /// What happens at the start of block `height`, before its transactions: voting windows
    /// that end here close, then queued proposals due here activate, oldest first. Returns the
    /// ids of the proposals that activated.
    pub fn begin_block(&mut self, height: u64) -> Vec<String> {
        let closing: Vec<String> = self
            .proposals
            .values()
            .filter(|p| p.status == Status::Voting && p.voting_ends <= height)
            .map(|p| p.id.clone())
            .collect();
        for id in closing {
            if let Some(p) = self.proposals.get_mut(&id) {
                match p.tally.at_close(&p.params) {
                    Outcome::Passed => pass(p, height),
                    Outcome::Rejected => close(p, Status::Rejected, height),
                    Outcome::Expired | Outcome::Open => close(p, Status::Expired, height),
                }
                self.dirty.insert(id);
            }
        }
        let mut due: Vec<(u64, String)> = self
            .proposals
            .values()
            .filter(|p| p.status == Status::Queued && p.activates_at.is_some_and(|h| h <= height))
            .map(|p| (p.seq, p.id.clone()))
            .collect();
        due.sort();
        let mut activated = Vec::new();
        for (_, id) in due {
            // An earlier activation in this loop may have aborted it.
            if self.proposals.get(&id).map(|p| p.status) != Some(Status::Queued) {
                continue;
            }
            if self.activate(&id, height) {
                activated.push(id);
            }
        }
        if !activated.is_empty() {
            // Compiled sets no longer needed are dropped; a failure here only loses a cache.
            let _ = self.keep_needed_compiled();
        }
        activated
    }

    /// Applies a queued proposal's effect; false when it failed (and was marked so).
    fn activate(&mut self, id: &str, height: u64) -> bool {
        let Some(effect) = self.proposals.get(id).map(|p| p.effect.clone()) else {
            return false;
        };
        let result = match &effect {
            Effect::ActivatePolicySet { version, name, .. } => {
                self.activate_policy_set(id, version, name, height)
            }
            Effect::SetVotingParams { params, .. } => {
                self.params = params.clone();
                Ok(())
            }
            Effect::AddMember { member } => self.change_membership(MembershipChange::Add(member)),
            Effect::RemoveMember { member } => {
                self.change_membership(MembershipChange::Remove(member))
            }
            Effect::UpdateMember(update) => {
                self.change_membership(MembershipChange::Update(update))
            }
        };
        if let Err(reason) = result {
            if let Some(p) = self.proposals.get_mut(id) {
                p.status = Status::Failed;
                p.note = Some(reason);
            }
            self.dirty.insert(id.to_owned());
            return false;
        }
        // The change of the same kind that was in force is superseded by this one.
        let same_kind = |e: &Effect| {
            matches!(
                (&effect, e),
                (
                    Effect::ActivatePolicySet { .. },
                    Effect::ActivatePolicySet { .. }
                ) | (
                    Effect::SetVotingParams { .. },
                    Effect::SetVotingParams { .. }
                )
            )
        };
        let superseded: Vec<String> = self
            .proposals
            .values()
            .filter(|p| p.status == Status::Active && same_kind(&p.effect))
            .map(|p| p.id.clone())
            .collect();
        for old in superseded {
            if let Some(p) = self.proposals.get_mut(&old) {
                p.status = Status::Superseded;
                self.dirty.insert(old);
            }
        }
        if let Some(p) = self.proposals.get_mut(id) {
            p.status = Status::Active;
        }
        self.dirty.insert(id.to_owned());
        if effect.is_rules_change() {
            self.abort_where(height, id, |p| p.status == Status::Voting, |h| {
                format!("opened under voting rules or a membership that proposal {id} replaced at height {h}")
            });
            let rules = self.params.digest();
            self.abort_where(
                height,
                id,
                |p| {
                    p.is_pending()
                        && matches!(&p.effect, Effect::SetVotingParams { base: Some(b), .. } if *b != rules)
                },
                |h| format!("built on voting rules that proposal {id} replaced at height {h}"),
            );
        } else if let Some(version) = effect.policy_version() {
            let version = version.to_owned();
            self.abort_where(
                height,
                id,
                |p| {
                    p.is_pending()
                        && matches!(&p.effect, Effect::ActivatePolicySet { base: Some(b), .. } if *b != version)
                },
                |h| format!("computed from a policy set that proposal {id} replaced at height {h}"),
            );
        }
        true
    }

    fn abort_where(
        &mut self,
        height: u64,
        by: &str,
        which: impl Fn(&Proposal) -> bool,
        note: impl Fn(u64) -> String,
    ) {
        for p in self.proposals.values_mut() {
            if p.id != by && which(p) {
                p.status = Status::Aborted;
                p.decided_at.get_or_insert(height);
                p.note = Some(note(height));
                self.dirty.insert(p.id.clone());
            }
        }
    }

    fn activate_policy_set(
        &mut self,
        id: &str,
        version: &str,
        name: &str,
        height: u64,
    ) -> Result<(), String> {
        let bundle = self.bundles.compiled(version)?;
        self.active = bundle;
        self.history.push(Activation {
            version: version.to_owned(),
            name: name.to_owned(),
            activated_at_height: height,
            proposal: Some(id.to_owned()),
        });
        Ok(())
    }

    fn change_membership(&mut self, change: MembershipChange<'_>) -> Result<(), String> {
        self.membership = self.membership.with(change)?;
        Ok(())
    }

    /// Keeps compiled only the active set and the targets of pending proposals, compiling any
    /// that are missing (after a restart).
    fn keep_needed_compiled(&mut self) -> Result<(), String> {
        let keep = self.held_versions();
        for v in &keep {
            self.bundles.compiled(v)?;
        }
        self.bundles.retain_compiled(&keep);
        Ok(())
    }

    /// The distinct candidate bundles of pending policy proposals, with their size and budget.
    pub(crate) fn open_bundles(&self) -> OpenBundles {
        let mut open = OpenBundles {
            budget: self.params.open_bundle_budget(),
            ..OpenBundles::default()
        };
        for p in self.proposals.values().filter(|p| p.is_pending()) {
            let Some(version) = p.effect.policy_version() else {
                continue;
            };
            // A rollback target may be the genesis set, which was never run through the
            // proposal checks.
            if p.kind != "rollback" {
                open.checked.insert(version.to_owned());
            }
            if open.held.insert(version.to_owned()) {
                let size = self.bundles.bytes(version).unwrap_or(0);
                open.bytes = open.bytes.saturating_add(size);
            }
        }
        open
    }

    /// Drops the compiled bundles neither the active set nor a pending proposal holds (their
    /// content stays).
    pub fn release_unheld_compiled(&mut self) {
        let keep = self.held_versions();
        self.bundles.retain_compiled(&keep);
    }

    /// The active version and the candidate versions of pending proposals.
    fn held_versions(&self) -> BTreeSet<String> {
        let mut keep: BTreeSet<String> = BTreeSet::new();
        keep.insert(self.active.version().to_owned());
        for p in self.proposals.values().filter(|p| p.is_pending()) {
            if let Some(v) = p.effect.policy_version() {
                keep.insert(v.to_owned());
            }
        }
        keep
    }

    /// What the impact preview evaluates: pending proposals that would change the policy set,
    /// in id order, each naming its candidate among the distinct compiled candidates.
    pub fn preview_targets(&self) -> PreviewTargets {
        let mut targets = PreviewTargets::default();
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for p in self.proposals.values().filter(|p| p.is_pending()) {
            let Some(version) = p.effect.policy_version() else {
                continue;
            };
            let Some(bundle) = self.bundles.cached(version) else {
                continue;
            };
            let candidate = *index.entry(version).or_insert_with(|| {
                targets.candidates.push(bundle.clone());
                targets.candidates.len() - 1
            });
            targets.proposals.push((p.id.clone(), candidate));
        }
        targets
    }

    /// Records one access decision's would-be flip for a pending proposal.
    pub fn record_impact(
        &mut self,
        proposal: &str,
        tx: &str,
        height: u64,
        before: bool,
        after: bool,
    ) {
        if let Some(p) = self.proposals.get_mut(proposal) {
            p.impact.record(tx, height, before, after);
            self.dirty.insert(proposal.to_owned());
        }
    }
}

fn check_voting(p: &Proposal, height: u64) -> Result<(), Refusal> {
    match p.status {
        Status::Cancelled => Err(Refusal::ProposalCancelled { id: p.id.clone() }),
        Status::Voting if height < p.voting_ends => Ok(()),
        status => Err(Refusal::ProposalClosed {
            id: p.id.clone(),
            status: if status == Status::Voting {
                "past its voting window".to_owned()
            } else {
                status.to_string()
            },
        }),
    }
}

fn pass(p: &mut Proposal, height: u64) {
    p.status = Status::Queued;
    p.decided_at = Some(height);
    p.activates_at = Some(height.saturating_add(p.params.activation_delay));
}

fn close(p: &mut Proposal, status: Status, height: u64) {
    p.status = status;
    p.decided_at = Some(height);
}
