//! The decision Accord answers (docs/contract.md §2).
//!
//! A [`Decision`] is built only through [`DecisionBuilder`], which applies deny-overrides and
//! fail-closed and sorts every list, so two nodes that saw the same verdicts produce the same bytes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    /// As the contract and the test cases spell it: `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which policy set decided (docs/contract.md §2 `policy_set`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySetRef {
    pub version: String,
    pub name: String,
    pub activated_at_height: u64,
}

/// A rule that decided the outcome, with the legal citation it carries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reason {
    pub module: String,
    pub rule: String,
    pub effect: RuleEffect,
    pub citation: String,
    pub message: String,
}

/// What a single rule said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleEffect {
    Permit,
    Deny,
}

/// Which decisions an obligation comes with: an allow (the default), a deny, or both. An audit
/// record of every attempt (45 CFR 164.312(b)) comes with both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ObligationWhen {
    #[default]
    Allow,
    Deny,
    Always,
}

impl ObligationWhen {
    /// Parses the `when` detail of an obligation verdict.
    pub fn parse(text: &str) -> Option<ObligationWhen> {
        match text {
            "allow" => Some(ObligationWhen::Allow),
            "deny" => Some(ObligationWhen::Deny),
            "always" => Some(ObligationWhen::Always),
            _ => None,
        }
    }

    /// Whether it comes with a decision that is an allow (`true`) or a deny (`false`).
    pub fn matches(self, allow: bool) -> bool {
        match self {
            ObligationWhen::Allow => allow,
            ObligationWhen::Deny => !allow,
            ObligationWhen::Always => true,
        }
    }
}

impl RuleEffect {
    /// As verdicts spell it: `permit` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleEffect::Permit => "permit",
            RuleEffect::Deny => "deny",
        }
    }
}

/// A duty that comes with a decision: most with an allow, some (`when: deny` or `always`) with a
/// deny. `details` holds rule-specific fields (`within_hours`, `deadline`, `target`, `message`,
/// ...), written in key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Obligation {
    pub kind: String,
    pub citation: String,
    pub module: String,
    pub rule: String,
    #[serde(flatten)]
    pub details: BTreeMap<String, serde_json::Value>,
}

impl Obligation {
    /// Total order used for output: kind, citation, module, rule, then the details' JSON text
    /// (written only to break a tie of the others).
    fn output_order(&self, other: &Obligation) -> std::cmp::Ordering {
        fn names(o: &Obligation) -> (&str, &str, &str, &str) {
            (&o.kind, &o.citation, &o.module, &o.rule)
        }
        fn details(o: &Obligation) -> String {
            serde_json::to_string(&o.details).unwrap_or_default()
        }
        names(self)
            .cmp(&names(other))
            .then_with(|| details(self).cmp(&details(other)))
    }
}

/// An evaluation error: the decision is deny and the error is listed (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EvaluationError {
    /// The module that failed, or `accord` for the engine itself.
    pub module: String,
    pub message: String,
}

/// docs/contract.md §2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub tx: String,
    pub decision: Effect,
    pub policy_set: PolicySetRef,
    pub jurisdictions: Vec<String>,
    pub reasons: Vec<Reason>,
    pub obligations: Vec<Obligation>,
    pub errors: Vec<EvaluationError>,
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        self.decision == Effect::Allow
    }

    /// The canonical JSON text (one line). Byte-identical for equal decisions.
    pub fn to_json(&self) -> String {
        // Serializing plain structs, strings and BTreeMaps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Collects verdicts from every rule, then combines them.
#[derive(Debug, Default)]
pub struct DecisionBuilder {
    permits: Vec<Reason>,
    denies: Vec<Reason>,
    obligations: Vec<(ObligationWhen, Obligation)>,
    errors: Vec<EvaluationError>,
    default_denies: Vec<Reason>,
}

impl DecisionBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reason(&mut self, reason: Reason) {
        match reason.effect {
            RuleEffect::Permit => self.permits.push(reason),
            RuleEffect::Deny => self.denies.push(reason),
        }
    }

    /// An obligation that comes with an allow.
    pub fn obligation(&mut self, obligation: Obligation) {
        self.obligations.push((ObligationWhen::Allow, obligation));
    }

    /// An obligation that comes with the decisions `when` names.
    pub fn obligation_when(&mut self, when: ObligationWhen, obligation: Obligation) {
        self.obligations.push((when, obligation));
    }

    pub fn error(&mut self, module: impl Into<String>, message: impl Into<String>) {
        self.errors.push(EvaluationError {
            module: module.into(),
            message: message.into(),
        });
    }

    /// The permits collected so far.
    pub fn permits(&self) -> &[Reason] {
        &self.permits
    }

    /// The denies collected so far.
    pub fn denies(&self) -> &[Reason] {
        &self.denies
    }

    /// The obligations collected so far.
    pub fn obligations(&self) -> impl Iterator<Item = &Obligation> {
        self.obligations.iter().map(|(_, o)| o)
    }

    /// The errors collected so far.
    pub fn errors(&self) -> &[EvaluationError] {
        &self.errors
    }

    /// Adds everything `other` collected (its default denies included).
    pub fn extend(&mut self, other: DecisionBuilder) {
        self.permits.extend(other.permits);
        self.denies.extend(other.denies);
        self.obligations.extend(other.obligations);
        self.errors.extend(other.errors);
        self.default_denies.extend(other.default_denies);
    }

    /// The modules whose rules permitted so far.
    pub fn permitting_modules(&self) -> impl Iterator<Item = &str> {
        self.permits.iter().map(|r| r.module.as_str())
    }

    /// Whether the verdicts so far make an allow: no error, no deny, and a permit.
    pub fn allows(&self) -> bool {
        self.errors.is_empty() && self.denies.is_empty() && !self.permits.is_empty()
    }

    /// Whether nothing so far permits, denies or failed: the decision would then be a deny by
    /// default, explained by its [`default_deny`](Self::default_deny) reasons (used only then).
    pub fn denies_by_default(&self) -> bool {
        self.permits.is_empty() && self.denies.is_empty() && self.errors.is_empty()
    }

    /// The explanation used when nothing permits and nothing denies (deny by default).
    pub fn default_deny(&mut self, reason: Reason) {
        self.default_denies.push(reason);
    }

    /// Deny overrides; no permit means deny; any error means deny. Lists are sorted and deduplicated.
    pub fn finish(
        self,
        tx: &str,
        policy_set: PolicySetRef,
        jurisdictions: Vec<String>,
    ) -> Decision {
        let allow = self.allows();
        let mut reasons = if allow {
            self.permits
        } else if !self.denies.is_empty() {
            self.denies
        } else if self.errors.is_empty() {
            self.default_denies
        } else {
            Vec::new()
        };
        reasons.sort();
        reasons.dedup();
        let mut obligations: Vec<Obligation> = self
            .obligations
            .into_iter()
            .filter(|(when, _)| when.matches(allow))
            .map(|(_, o)| o)
            .collect();
        obligations.sort_by(|a, b| a.output_order(b));
        obligations.dedup();
        let mut errors = self.errors;
        errors.sort();
        errors.dedup();
        Decision {
            tx: tx.to_owned(),
            decision: if allow { Effect::Allow } else { Effect::Deny },
            policy_set,
            jurisdictions,
            reasons,
            obligations,
            errors,
        }
    }
}

#[cfg(test)]
mod tests;
