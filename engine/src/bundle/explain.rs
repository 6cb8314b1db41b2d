//! Why a bundle decides a transaction as it does (`accord check --explain`).
//!
//! [`Bundle::explain`] runs the phases of a decision (decide.rs) once more, recording what each
//! produced: the facts derived from the request, each policy of the Cedar slice and its outcome,
//! each Rhai module and whether it ran (natively or in Rhai) and what it said, the permissions the
//! regimes binding the holder require, and the combination. The decision it reaches is the one
//! [`Bundle::decide`] reaches (tests compare them on every case of the default bundle). Deciding
//! itself records nothing: explanations cost only when asked for.

use super::{Bundle, DerivedFacts};
use crate::cedar::{CedarTrace, PolicyOutcome};
use crate::consent::ConsentRegistry;
use crate::decision::{Decision, DecisionBuilder, PolicySetRef, Reason, RuleEffect};
use crate::rules::{ModuleRun, ModuleTrace, Stage};
use crate::transaction::AccessRequest;
use std::fmt;

/// Whether a regime that binds the holder had the permission it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredPermit {
    pub regime: String,
    /// The regime lists the request's action in `permit_required_for`.
    pub required: bool,
    /// The modules of the regime that permitted.
    pub permitted_by: Vec<String>,
}

/// Everything that went into one decision.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub request: AccessRequest,
    /// The problem that denied before any rule ran (a mistyped attribute, a jurisdiction error).
    pub failed_before_rules: Option<String>,
    pub derived: Option<DerivedFacts>,
    pub cedar: Option<CedarTrace>,
    /// The verdict modules, in manifest order.
    pub modules: Vec<ModuleTrace>,
    /// For each regime that binds the holder and has a manifest entry (empty when nothing
    /// permitted: the default deny explains that).
    pub required_permits: Vec<RequiredPermit>,
    /// The obligations-only modules; `None` when they did not run because the decision was not
    /// otherwise an allow.
    pub obligation_modules: Option<Vec<ModuleTrace>>,
    /// The permits that deny-overrides set aside (empty unless the decision is a deny).
    pub overridden_permits: Vec<Reason>,
    pub decision: Decision,
}

impl Bundle {
    /// Decides `request` as [`Bundle::decide`] does and records why (see the module docs).
    pub fn explain(
        &self,
        request: &AccessRequest,
        consents: &dyn ConsentRegistry,
        activated_at_height: u64,
    ) -> Explanation {
        let policy_set = PolicySetRef {
            version: self.version.clone(),
            name: self.name.clone(),
            activated_at_height,
        };
        let mut builder = DecisionBuilder::new();
        // As deciding does: a mistyped attribute stops the verdict rules, but the facts are still
        // derived so that the duties attached to a denied attempt (`on_deny` modules) come along.
        let attribute_problem = self.check_attributes(request);
        let derived = match (attribute_problem, self.derive(request, consents)) {
            (None, Ok(derived)) => derived,
            (attribute_problem, derived) => {
                if let Some(problem) = &attribute_problem {
                    builder.error("accord", problem.clone());
                }
                let (problem, obligation_modules) = match derived {
                    Ok(derived) => {
                        let traces = self.rules.run_traced(
                            Stage::Obligations,
                            request,
                            &derived.facts(),
                            &mut builder,
                            true,
                        );
                        (attribute_problem, (!traces.is_empty()).then_some(traces))
                    }
                    Err(e) => {
                        builder.error("accord", e.to_string());
                        (attribute_problem.or(Some(e.to_string())), None)
                    }
                };
                return Explanation {
                    request: request.clone(),
                    failed_before_rules: problem,
                    derived: None,
                    cedar: None,
                    modules: Vec::new(),
                    required_permits: Vec::new(),
                    obligation_modules,
                    overridden_permits: Vec::new(),
                    decision: builder.finish(&request.id, policy_set, Vec::new()),
                };
            }
        };
        let facts = derived.facts();
        let cedar = self.cedar.explain(request, &facts);
        for reason in &cedar.outcome.reasons {
            builder.reason(reason.clone());
        }
        for (module, message) in &cedar.outcome.errors {
            builder.error(module.clone(), message.clone());
        }
        let modules = self
            .rules
            .run_traced(Stage::Verdicts, request, &facts, &mut builder, false);
        let required_permits = self.required_permits(request, &derived, &builder);
        self.require_binding_permits(request, &derived.applicable.holder_regimes, &mut builder);
        // As deciding does: every obligations-only module on an allow, those declared `on_deny`
        // on a deny (none run: `None`).
        let obligation_modules = if builder.allows() {
            Some(
                self.rules
                    .run_traced(Stage::Obligations, request, &facts, &mut builder, false),
            )
        } else {
            let traces =
                self.rules
                    .run_traced(Stage::Obligations, request, &facts, &mut builder, true);
            (!traces.is_empty()).then_some(traces)
        };
        let overridden_permits = if builder.allows() {
            Vec::new()
        } else {
            let mut permits = builder.permits().to_vec();
            permits.sort();
            permits.dedup();
            permits
        };
        let applicable = &derived.applicable;
        let explaining = if applicable.holder_regimes.is_empty() {
            &applicable.regimes
        } else {
            &applicable.holder_regimes
        };
        self.default_denies(explaining, &applicable.jurisdictions, &mut builder);
        let decision = builder.finish(&request.id, policy_set, applicable.jurisdictions.clone());
        Explanation {
            request: request.clone(),
            failed_before_rules: None,
            cedar: Some(cedar),
            modules,
            required_permits,
            obligation_modules,
            overridden_permits,
            decision,
            derived: Some(derived),
        }
    }

    /// What `require_binding_permits` checks, as data.
    fn required_permits(
        &self,
        request: &AccessRequest,
        derived: &DerivedFacts,
        builder: &DecisionBuilder,
    ) -> Vec<RequiredPermit> {
        let permitting: Vec<&str> = builder.permitting_modules().collect();
        if permitting.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for regime in &derived.applicable.holder_regimes {
            let Some(d) = self.manifest.regimes.get(regime) else {
                continue;
            };
            let mut permitted_by: Vec<String> = permitting
                .iter()
                .filter(|m| {
                    self.module_regimes
                        .get(**m)
                        .is_some_and(|regimes| regimes.contains(regime))
                })
                .map(|m| (*m).to_owned())
                .collect();
            permitted_by.sort();
            permitted_by.dedup();
            out.push(RequiredPermit {
                regime: regime.clone(),
                required: d.permit_required_for.contains(&request.action),
                permitted_by,
            });
        }
        out
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn yes(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

fn reason_line(r: &Reason) -> String {
    let citation = if r.citation.is_empty() {
        String::new()
    } else {
        format!(" [{}]", r.citation)
    };
    format!("{}#{}{citation}: {}", r.module, r.rule, r.message)
}

fn effect_word(effect: RuleEffect) -> &'static str {
    match effect {
        RuleEffect::Permit => "permit",
        RuleEffect::Deny => "forbid",
    }
}

fn modules(f: &mut fmt::Formatter<'_>, traces: &[ModuleTrace]) -> fmt::Result {
    let width = traces.iter().map(|t| t.module.len()).max().unwrap_or(0);
    let mut skipped = Vec::new();
    for t in traces {
        match &t.run {
            ModuleRun::NotApplicable(reason) => skipped.push((t, reason)),
            ModuleRun::Ran {
                evaluator,
                verdicts,
                obligations,
                errors,
            } => {
                let said = if verdicts.is_empty() && obligations.is_empty() && errors.is_empty() {
                    "  nothing"
                } else {
                    ""
                };
                let line = format!("  {:<width$}  {:<6}{said}", t.module, evaluator.as_str());
                writeln!(f, "{}", line.trim_end())?;
                for v in verdicts {
                    writeln!(f, "      {} {}", v.effect.as_str(), reason_line(v))?;
                }
                for o in obligations {
                    let rule = if o.rule == o.kind {
                        String::new()
                    } else {
                        format!(" (rule {})", o.rule)
                    };
                    writeln!(f, "      obligation {} [{}]{rule}", o.kind, o.citation)?;
                }
                for e in errors {
                    writeln!(f, "      error: {}", e.message)?;
                }
            }
        }
    }
    if !skipped.is_empty() {
        writeln!(f, "  not applicable ({}):", skipped.len())?;
        for (t, reason) in skipped {
            writeln!(f, "    {:<width$}  {reason}", t.module)?;
        }
    }
    Ok(())
}

impl fmt::Display for Explanation {
    /// The explanation as text for people, sections in the order the engine works.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.request;
        let d = &self.decision;
        writeln!(
            f,
            "transaction {} at {}: {} by {} ({}{}{})",
            r.id,
            r.timestamp.as_str(),
            r.action,
            r.actor.id,
            r.actor.kind,
            r.actor
                .organization
                .as_deref()
                .map(|o| format!(", {o}"))
                .unwrap_or_default(),
            r.actor
                .jurisdiction
                .as_ref()
                .map(|j| format!(", {j}"))
                .unwrap_or_default(),
        )?;
        writeln!(
            f,
            "  record {} ({}{}){}",
            r.resource.id,
            r.resource.kind.as_str(),
            r.resource
                .jurisdiction
                .as_ref()
                .map(|j| format!(", {j}"))
                .unwrap_or_default(),
            r.resource
                .patient
                .as_ref()
                .map(|p| format!(" of patient {}", p.id))
                .unwrap_or_default(),
        )?;
        let c = &r.context;
        writeln!(
            f,
            "  purpose {}, legal basis {}{}{}",
            c.purpose_of_use.as_ref().map_or("(none)", |p| p.as_str()),
            c.legal_basis.map_or("(none)", |b| b.as_str()),
            c.recipient
                .as_ref()
                .map(|rc| format!(
                    ", recipient {}{}{}",
                    rc.id,
                    rc.kind.map(|k| format!(" ({k})")).unwrap_or_default(),
                    rc.country
                        .as_ref()
                        .map(|k| format!(" in {k}"))
                        .unwrap_or_default()
                ))
                .unwrap_or_default(),
            if c.break_glass { ", break-glass" } else { "" },
        )?;
        writeln!(
            f,
            "policy set {} ({})",
            d.policy_set.name, d.policy_set.version
        )?;

        if let Some(problem) = &self.failed_before_rules {
            writeln!(f)?;
            writeln!(f, "decision: deny")?;
            writeln!(
                f,
                "why: fail closed: the transaction could not be evaluated, so no verdict rule ran: {problem}"
            )?;
            if let Some(traces) = &self.obligation_modules {
                writeln!(f, "obligations-only modules declared on_deny")?;
                modules(f, traces)?;
            }
            for o in &self.decision.obligations {
                writeln!(
                    f,
                    "obligation: {} [{}] from {}#{}",
                    o.kind, o.citation, o.module, o.rule
                )?;
            }
            return Ok(());
        }

        if let Some(derived) = &self.derived {
            let a = &derived.applicable;
            let categories: Vec<String> =
                derived.categories.iter().map(|c| c.to_string()).collect();
            writeln!(f)?;
            writeln!(f, "derived facts")?;
            writeln!(f, "  jurisdictions         {}", list(&a.jurisdictions))?;
            writeln!(f, "  regimes               {}", list(&a.regimes))?;
            writeln!(
                f,
                "  holder regimes        {} (the law of the actor's and the record's jurisdictions)",
                list(&a.holder_regimes)
            )?;
            writeln!(
                f,
                "  patient jurisdiction  {}",
                a.patient_jurisdiction.as_deref().unwrap_or("(unknown)")
            )?;
            writeln!(f, "  data categories       {}", list(&categories))?;
            let k = &derived.consent;
            let covered: Vec<String> = k.categories.iter().map(|c| c.to_string()).collect();
            writeln!(f, "  consent (grantee {})", r.grantee())?;
            writeln!(f, "    consents in force   {}", list(&k.consent_ids))?;
            writeln!(f, "    categories covered  {}", list(&covered))?;
            writeln!(f, "    withdrawn           {}", yes(k.withdrawn))?;
            writeln!(
                f,
                "    given at            {}",
                k.given_at
                    .and_then(crate::transaction::Timestamp::format_unix)
                    .unwrap_or_else(|| "(not established)".into())
            )?;
            writeln!(f, "    transfer countries  {}", list(&k.transfer_countries))?;
            writeln!(
                f,
                "    42 CFR Part 2       TPO consent {}, holder received for TPO {}, counseling-notes consent {}",
                yes(k.part2_tpo),
                yes(k.holder_tpo),
                yes(k.counseling_notes)
            )?;
        }

        if let Some(cedar) = &self.cedar {
            writeln!(f)?;
            writeln!(
                f,
                "cedar: {} of {} policies in this request's slice (the action scope or a leading guard of every other policy excludes the request)",
                cedar.policies.len(),
                cedar.total
            )?;
            let width = cedar.policies.iter().map(|p| p.id.len()).max().unwrap_or(0);
            for p in &cedar.policies {
                let outcome = match &p.outcome {
                    PolicyOutcome::Satisfied => "satisfied".to_owned(),
                    PolicyOutcome::NotSatisfied => "not satisfied".to_owned(),
                    PolicyOutcome::Error(e) => format!("error: {e}"),
                };
                writeln!(
                    f,
                    "  {:<6} {:<width$}  [{}]  {outcome}",
                    effect_word(p.meta.effect),
                    p.id,
                    p.meta.citation
                )?;
            }
            for (module, message) in &cedar.outcome.errors {
                if !cedar.policies.iter().any(|p| &p.meta.module == module) {
                    writeln!(f, "  error ({module}): {message}")?;
                }
            }
        }

        writeln!(f)?;
        writeln!(
            f,
            "rhai modules (native: the engine's evaluator; rhai: the interpreter)"
        )?;
        modules(f, &self.modules)?;

        if !self.required_permits.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "permissions of the regimes binding the holder (for `{}`)",
                r.action
            )?;
            for p in &self.required_permits {
                let status = match (p.required, p.permitted_by.is_empty()) {
                    (false, _) => "needs no permission of its own for this action".to_owned(),
                    (true, false) => format!("permitted by {}", p.permitted_by.join(", ")),
                    (true, true) => {
                        "needs its own permission and none of its rules gives it".to_owned()
                    }
                };
                writeln!(f, "  {:<10} {status}", p.regime)?;
            }
        }

        writeln!(f)?;
        match &self.obligation_modules {
            Some(traces) if traces.is_empty() => {
                writeln!(f, "obligations-only modules: none in this bundle")?
            }
            Some(traces) => {
                writeln!(f, "obligations-only modules")?;
                modules(f, traces)?;
            }
            None => writeln!(
                f,
                "obligations-only modules: not run (the decision is not otherwise an allow, and none is declared on_deny)"
            )?,
        }

        writeln!(f)?;
        writeln!(f, "decision: {}", d.decision)?;
        if !d.errors.is_empty() {
            writeln!(
                f,
                "why: fail closed: evaluation failed, and any error denies whatever the rules say"
            )?;
            for e in &d.errors {
                writeln!(f, "  error ({}): {}", e.module, e.message)?;
            }
        } else if d.is_allow() {
            writeln!(f, "why: a rule permits and none denies")?;
            for reason in &d.reasons {
                writeln!(f, "  permit {}", reason_line(reason))?;
            }
            let required: Vec<&RequiredPermit> = self
                .required_permits
                .iter()
                .filter(|p| p.required)
                .collect();
            if !required.is_empty() {
                let names: Vec<String> = required
                    .iter()
                    .map(|p| format!("{} ({})", p.regime, p.permitted_by.join(", ")))
                    .collect();
                writeln!(
                    f,
                    "  each regime binding the holder that needs its own permission has one: {}",
                    names.join("; ")
                )?;
            }
        } else if self.overridden_permits.is_empty()
            && d.reasons.iter().all(|x| x.module == "accord")
        {
            writeln!(
                f,
                "why: no rule permits, so the transaction is denied by default, citing each regime's rule that a use needs its permission"
            )?;
            for reason in &d.reasons {
                writeln!(f, "  {}", reason_line(reason))?;
            }
        } else {
            writeln!(f, "why: deny overrides: these rules deny, whatever permits")?;
            for reason in &d.reasons {
                writeln!(f, "  deny {}", reason_line(reason))?;
            }
            if !self.overridden_permits.is_empty() {
                writeln!(f, "  permits overridden:")?;
                for reason in &self.overridden_permits {
                    writeln!(f, "    {}", reason_line(reason))?;
                }
            }
        }
        let proposed = self.modules.iter().any(
            |t| matches!(&t.run, ModuleRun::Ran { obligations, .. } if !obligations.is_empty()),
        );
        if !d.is_allow() && proposed {
            writeln!(
                f,
                "  (a verdict module's obligations come with an allow, or with a deny only when it says `when: deny` or `always`)"
            )?;
        }
        if !d.obligations.is_empty() {
            writeln!(f, "obligations")?;
            for o in &d.obligations {
                let deadline = o
                    .details
                    .get("deadline")
                    .and_then(|v| v.as_str())
                    .map(|v| format!(", by {v}"))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "  {} [{}] from {}#{}{deadline}",
                    o.kind, o.citation, o.module, o.rule
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
