//! A proposal as the state keeps it: frozen rules, votes, tally, lifecycle and impact preview.

use crate::member::{Member, MemberUpdate, Membership};
use crate::message::Choice;
use crate::params::VotingParams;
use crate::tally::Tally;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Where a proposal is in its life, counted in block heights.
///
/// `voting` → `queued` (passed) / `rejected` / `expired` (no quorum) / `cancelled` / `aborted`
/// (the rules it was opened under were replaced); `queued` → `active` at its activation height
/// (or `failed` when its change no longer applies, or `aborted`); `active` → `superseded` when a
/// later change of the same kind activates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Voting,
    Queued,
    Active,
    Superseded,
    Rejected,
    Expired,
    Cancelled,
    Aborted,
    Failed,
    Vetoed,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Voting,
        Status::Queued,
        Status::Active,
        Status::Superseded,
        Status::Rejected,
        Status::Expired,
        Status::Cancelled,
        Status::Aborted,
        Status::Failed,
        Status::Vetoed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Voting => "voting",
            Status::Queued => "queued",
            Status::Active => "active",
            Status::Superseded => "superseded",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Aborted => "aborted",
            Status::Failed => "failed",
            Status::Vetoed => "vetoed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What activating a proposal does, resolved when the proposal is made (a bundle's content is
/// kept once, by version, in the bundle store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// Make `version` the active policy set. `base` is the version the change was built on: if
    /// another set activates first, it is aborted.
    ActivatePolicySet {
        version: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
    },
    SetVotingParams {
        params: VotingParams,
        /// The digest of the rules the change was built on: if other rules activate first, it
        /// is aborted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
    },
    AddMember {
        member: Member,
    },
    RemoveMember {
        member: String,
    },
    UpdateMember(MemberUpdate),
}

impl Effect {
    pub fn policy_version(&self) -> Option<&str> {
        match self {
            Effect::ActivatePolicySet { version, .. } => Some(version),
            _ => None,
        }
    }

    /// Changes who votes or how.
    pub fn is_rules_change(&self) -> bool {
        !matches!(self, Effect::ActivatePolicySet { .. })
    }
}

/// One member's current vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRecord {
    pub choice: Choice,
    pub weight: u64,
    /// The transaction that carried it, and its height.
    pub tx: String,
    pub height: u64,
}

/// A decision that would change under the proposed policy set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flip {
    pub tx: String,
    pub height: u64,
    /// `allow` or `deny` under the active set, then under the proposed one.
    pub from: String,
    pub to: String,
}

/// Impact preview: access transactions evaluated under the proposed set while it was open or
/// queued, and the decisions that would flip.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    pub evaluated: u64,
    pub allow_to_deny: u64,
    pub deny_to_allow: u64,
    /// The first flips, in ledger order (at most [`Impact::EXAMPLES`]).
    pub examples: Vec<Flip>,
}

impl Impact {
    pub const EXAMPLES: usize = 10;

    pub fn record(&mut self, tx: &str, height: u64, before: bool, after: bool) {
        self.evaluated += 1;
        if before == after {
            return;
        }
        if before {
            self.allow_to_deny += 1;
        } else {
            self.deny_to_allow += 1;
        }
        if self.examples.len() < Self::EXAMPLES {
            let word = |allow: bool| if allow { "allow" } else { "deny" }.to_owned();
            self.examples.push(Flip {
                tx: tx.to_owned(),
                height,
                from: word(before),
                to: word(after),
            });
        }
    }
}

/// A proposal and everything decided about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// `sha256:` of the signed proposal message.
    pub id: String,
    /// `sha256:` of its change: what a vote must name.
    pub content: String,
    /// Order of creation, the tie-break for activations at the same height.
    pub seq: u64,
    pub proposer: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The `kind` of the change as proposed (`activate_bundle`, `rollback`, …).
    pub kind: String,
    pub effect: Effect,
    pub tx: String,
    pub created_at: u64,
    /// The first height at which votes are no longer accepted.
    pub voting_ends: u64,
    /// The rules and membership it is voted under, frozen at creation.
    pub params: VotingParams,
    pub membership: Membership,
    pub votes: BTreeMap<String, VoteRecord>,
    pub tally: Tally,
    /// Weight of each member who vetoed it while it waited to activate.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vetoes: BTreeMap<String, u64>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activates_at: Option<u64>,
    /// Why it was aborted or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Digests of the vote messages applied to it (replay detection while it is open).
    pub seen: BTreeSet<String>,
    pub impact: Impact,
}

impl Proposal {
    /// Open for votes or waiting to activate: the impact preview runs for these.
    pub fn is_pending(&self) -> bool {
        matches!(self.status, Status::Voting | Status::Queued)
    }
}
