//! How a bundle decides: the phases of one decision, run for one request, or phase by phase for a
//! batch.
//!
//! The phases: check declared attributes and derive the facts (jurisdictions, consent), Cedar, the
//! Rhai verdict modules and the per-regime permission check, the obligations-only modules (on what
//! would be an allow), then the deny-by-default explanation. A batch runs each phase over up to
//! [`PHASE_BATCH`] requests before the next: the result is the same as deciding one at a time, but
//! each interpreter's code and data stay in cache, which makes a decision about a fifth cheaper.

use super::{Bundle, DerivedFacts};
use crate::consent::ConsentRegistry;
use crate::decision::{Decision, DecisionBuilder, PolicySetRef, Reason, RuleEffect};
use crate::rules::Stage;
use crate::transaction::AccessRequest;
use std::borrow::Borrow;

/// How many requests go through a phase together: enough to keep one interpreter hot, few enough
/// that their facts stay in cache.
pub const PHASE_BATCH: usize = 64;

/// One request on its way to a decision.
struct Pending<'r> {
    request: &'r AccessRequest,
    builder: DecisionBuilder,
    /// `None` when the facts could not be derived; its builder holds the error.
    derived: Option<DerivedFacts>,
    /// Whether the verdict rules run: not when a declared attribute has the wrong type (the
    /// builder holds that error). The facts are still derived then, so that the duties attached
    /// to a denied attempt (`on_deny` modules) still come with the decision.
    verdicts: bool,
}

impl Bundle {
    /// Decides one access request against this bundle and the consent state. Never panics and
    /// never allows by accident: any error is a deny with the error listed.
    pub fn decide(
        &self,
        request: &AccessRequest,
        consents: &dyn ConsentRegistry,
        activated_at_height: u64,
    ) -> Decision {
        let mut one = [self.start(request, consents)];
        self.run_rules(&mut one);
        let [pending] = one;
        self.finish(pending, activated_at_height)
    }

    /// Decides every request in order against the same consent state, each exactly as
    /// [`Bundle::decide`] would, phase by phase (see the module documentation).
    pub fn decide_all<R: Borrow<AccessRequest>>(
        &self,
        requests: &[R],
        consents: &dyn ConsentRegistry,
        activated_at_height: u64,
    ) -> Vec<Decision> {
        let mut decisions = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(PHASE_BATCH) {
            let mut pending: Vec<Pending<'_>> = chunk
                .iter()
                .map(|r| self.start(r.borrow(), consents))
                .collect();
            self.run_rules(&mut pending);
            decisions.extend(
                pending
                    .into_iter()
                    .map(|p| self.finish(p, activated_at_height)),
            );
        }
        decisions
    }

    /// Checks declared attributes and derives the facts every rule reads.
    fn start<'r>(&self, request: &'r AccessRequest, consents: &dyn ConsentRegistry) -> Pending<'r> {
        let mut builder = DecisionBuilder::new();
        let mut verdicts = true;
        if let Some(problem) = self.check_attributes(request) {
            builder.error("accord", problem);
            verdicts = false;
        }
        let derived = match self.derive(request, consents) {
            Ok(d) => Some(d),
            Err(e) => {
                builder.error("accord", e.to_string());
                None
            }
        };
        Pending {
            request,
            builder,
            derived,
            verdicts,
        }
    }

    /// Cedar, then the verdict modules and the per-regime permission check, then the
    /// obligations-only modules (those declared `on_deny` alone where the decision is a deny),
    /// each over every request.
    fn run_rules(&self, pending: &mut [Pending<'_>]) {
        for p in pending.iter_mut() {
            let Some(derived) = p.derived.as_ref().filter(|_| p.verdicts) else {
                continue;
            };
            let cedar = self.cedar.authorize(p.request, &derived.facts());
            for reason in cedar.reasons {
                p.builder.reason(reason);
            }
            for (module, message) in cedar.errors {
                p.builder.error(module, message);
            }
        }
        for p in pending.iter_mut() {
            let Some(derived) = p.derived.as_ref().filter(|_| p.verdicts) else {
                continue;
            };
            self.rules
                .run(Stage::Verdicts, p.request, &derived.facts(), &mut p.builder);
            self.require_binding_permits(
                p.request,
                &derived.applicable.holder_regimes,
                &mut p.builder,
            );
        }
        for p in pending.iter_mut() {
            let Some(derived) = &p.derived else { continue };
            if p.builder.allows() {
                self.rules.run(
                    Stage::Obligations,
                    p.request,
                    &derived.facts(),
                    &mut p.builder,
                );
            } else {
                self.rules
                    .run_on_deny(p.request, &derived.facts(), &mut p.builder);
            }
        }
    }

    /// Adds the deny-by-default explanation and combines.
    fn finish(&self, pending: Pending<'_>, activated_at_height: u64) -> Decision {
        let policy_set = PolicySetRef {
            version: self.version.clone(),
            name: self.name.clone(),
            activated_at_height,
        };
        let Pending {
            request,
            mut builder,
            derived,
            verdicts,
        } = pending;
        let Some(derived) = derived.filter(|_| verdicts) else {
            return builder.finish(&request.id, policy_set, Vec::new());
        };
        let applicable = derived.applicable;
        // Explain a deny by default with the laws that bind the holder, when any does (and only
        // when the decision is one: otherwise the explanation is not used).
        if builder.denies_by_default() {
            let explaining = if applicable.holder_regimes.is_empty() {
                &applicable.regimes
            } else {
                &applicable.holder_regimes
            };
            self.default_denies(explaining, &applicable.jurisdictions, &mut builder);
        }
        builder.finish(&request.id, policy_set, applicable.jurisdictions)
    }

    /// Each regime that binds the holder and requires its own permission must have a permit from
    /// one of its modules; otherwise its "no permission" rule denies. Applies only once something
    /// permits: with no permit at all the default deny explains the outcome.
    pub(super) fn require_binding_permits(
        &self,
        request: &AccessRequest,
        holder_regimes: &[String],
        builder: &mut DecisionBuilder,
    ) {
        let permitted_by: Vec<&str> = builder.permitting_modules().collect();
        if permitted_by.is_empty() {
            return;
        }
        let mut missing = Vec::new();
        for regime in holder_regimes {
            let Some(d) = self.manifest.regimes.get(regime) else {
                continue;
            };
            let satisfied = permitted_by.iter().any(|module| {
                self.module_regimes
                    .get(*module)
                    .is_some_and(|regimes| regimes.contains(regime))
            });
            if d.permit_required_for.contains(&request.action) && !satisfied {
                missing.push(Reason {
                    module: "accord".into(),
                    rule: "no-permit".into(),
                    effect: RuleEffect::Deny,
                    citation: d.default_deny_citation.clone(),
                    message: format!(
                        "{regime} binds this transaction and none of its rules permits it: {}",
                        d.default_deny_message
                    ),
                });
            }
        }
        for reason in missing {
            builder.reason(reason);
        }
    }

    /// The explanations of a deny by default: each applicable regime's own rule that processing
    /// needs a permission, or that no modelled regime applies at all.
    pub(super) fn default_denies(
        &self,
        regimes: &[String],
        jurisdictions: &[String],
        builder: &mut DecisionBuilder,
    ) {
        let mut any = false;
        for regime in regimes {
            if let Some(d) = self.manifest.regimes.get(regime) {
                any = true;
                builder.default_deny(Reason {
                    module: "accord".into(),
                    rule: "no-permit".into(),
                    effect: RuleEffect::Deny,
                    citation: d.default_deny_citation.clone(),
                    message: d.default_deny_message.clone(),
                });
            }
        }
        if !any {
            let message = if regimes.is_empty() {
                format!(
                    "no regime of this bundle applies to jurisdictions [{}]; nothing permits the transaction",
                    jurisdictions.join(", ")
                )
            } else {
                format!(
                    "no rule of regimes [{}] permits the transaction",
                    regimes.join(", ")
                )
            };
            builder.default_deny(Reason {
                module: "accord".into(),
                rule: "no-permit".into(),
                effect: RuleEffect::Deny,
                citation: String::new(),
                message,
            });
        }
    }
}
