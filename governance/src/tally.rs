//! Counting votes. Integer arithmetic only; see docs/governance.md for worked examples.

use crate::message::Choice;
use crate::params::VotingParams;
use serde::{Deserialize, Serialize};

/// Weights cast so far, out of the proposal's frozen total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub yes: u64,
    pub no: u64,
    pub abstain: u64,
    /// The total weight of the membership the proposal was created under.
    pub total: u64,
}

/// What a tally says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Rejected,
    /// Quorum not reached when the window closed.
    Expired,
    /// Remaining votes could still change the result.
    Open,
}

impl Tally {
    pub fn new(total: u64) -> Self {
        Tally {
            total,
            ..Tally::default()
        }
    }

    /// Weight not cast yet.
    pub fn remaining(&self) -> u64 {
        self.total
            .saturating_sub(self.yes)
            .saturating_sub(self.no)
            .saturating_sub(self.abstain)
    }

    pub fn add(&mut self, choice: Choice, weight: u64) {
        let slot = match choice {
            Choice::Yes => &mut self.yes,
            Choice::No => &mut self.no,
            Choice::Abstain => &mut self.abstain,
        };
        *slot = slot.saturating_add(weight);
    }

    pub fn remove(&mut self, choice: Choice, weight: u64) {
        let slot = match choice {
            Choice::Yes => &mut self.yes,
            Choice::No => &mut self.no,
            Choice::Abstain => &mut self.abstain,
        };
        *slot = slot.saturating_sub(weight);
    }

    /// Quorum: yes + no + abstain is at least `quorum` of the total.
    fn quorum(yes: u64, no: u64, abstain: u64, total: u64, params: &VotingParams) -> bool {
        // Cast weight never exceeds the frozen total, which fits in 64 bits.
        let cast = yes.saturating_add(no).saturating_add(abstain);
        params.quorum.reached_by(cast, total)
    }

    /// Threshold: yes / (yes + no) is more than `threshold` (so at least one yes).
    fn threshold(yes: u64, no: u64, params: &VotingParams) -> bool {
        params.threshold.exceeded_by(yes, yes.saturating_add(no)) && yes > 0
    }

    fn passes(yes: u64, no: u64, abstain: u64, total: u64, params: &VotingParams) -> bool {
        Self::quorum(yes, no, abstain, total, params) && Self::threshold(yes, no, params)
    }

    /// The outcome if the window closed now.
    pub fn at_close(&self, params: &VotingParams) -> Outcome {
        if !Self::quorum(self.yes, self.no, self.abstain, self.total, params) {
            Outcome::Expired
        } else if Self::threshold(self.yes, self.no, params) {
            Outcome::Passed
        } else {
            Outcome::Rejected
        }
    }

    /// The outcome once no way of casting the remaining weight can change it, else `Open`.
    ///
    /// Passing needs quorum (helped by any vote) and the threshold (hurt only by `no`), so the
    /// result is certain to pass when it passes both with the remaining weight absent and with
    /// all of it voting no; it is certain to fail when it fails even with all of it voting yes.
    pub fn decided(&self, params: &VotingParams) -> Outcome {
        let r = self.remaining();
        let (y, n, a, t) = (self.yes, self.no, self.abstain, self.total);
        if Self::passes(y, n, a, t, params) && Self::passes(y, n.saturating_add(r), a, t, params) {
            return Outcome::Passed;
        }
        if !Self::passes(y.saturating_add(r), n, a, t, params) {
            return Outcome::Rejected;
        }
        Outcome::Open
    }
}

/// Whether vetoes of `weight`, out of `total`, stop a passed proposal: at least the rules'
/// `veto_threshold` of the total. Never when the rules set none.
pub fn vetoed(weight: u64, total: u64, params: &VotingParams) -> bool {
    params
        .veto_threshold
        .is_some_and(|share| share.reached_by(weight, total))
}

#[cfg(test)]
mod tests;
