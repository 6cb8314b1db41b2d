//! For explanations (`accord check --explain`): which policies a request's slice holds, and how each
//! one alone evaluates on the request. Only explanations call this; deciding never does.

use super::{request, CedarOutcome, CedarPolicies, PolicyMeta, RequestFacts};
use crate::transaction::AccessRequest;
use cedar_policy::PolicySet;

/// How one policy evaluated on the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// Its scope and conditions hold: a permit permits, a forbid forbids.
    Satisfied,
    NotSatisfied,
    /// Evaluating it failed; the message is Cedar's.
    Error(String),
}

/// One policy of the slice and its outcome.
#[derive(Debug, Clone)]
pub struct PolicyTrace {
    /// `module#rule`.
    pub id: String,
    pub meta: PolicyMeta,
    pub outcome: PolicyOutcome,
}

/// Cedar's part of a decision, policy by policy.
#[derive(Debug, Clone)]
pub struct CedarTrace {
    /// How many policies the bundle has.
    pub total: usize,
    /// The policies of the request's slice, by id; the others cannot match it (their action scope
    /// or a leading guard excludes it).
    pub policies: Vec<PolicyTrace>,
    /// What the slice decided together, exactly as deciding computes it.
    pub outcome: CedarOutcome,
}

impl CedarPolicies {
    /// Evaluates the request's slice, then each of its policies on its own.
    pub fn explain(&self, request: &AccessRequest, facts: &RequestFacts<'_>) -> CedarTrace {
        let outcome = self.authorize(request, facts);
        let slice = self.slice(request, facts);
        let mut policies = Vec::new();
        if let Ok((cedar_request, entities)) = request::build(self, request, facts, slice.reads()) {
            for policy in slice.policies().policies() {
                let Some(meta) = self.meta.get(policy.id()) else {
                    continue;
                };
                let outcome = match PolicySet::from_policies([policy.clone()]) {
                    Ok(one) => {
                        let response =
                            self.authorizer
                                .is_authorized(&cedar_request, &one, &entities);
                        let errors: Vec<String> = response
                            .diagnostics()
                            .errors()
                            .map(|e| e.to_string())
                            .collect();
                        if !errors.is_empty() {
                            PolicyOutcome::Error(errors.join("; "))
                        } else if response.diagnostics().reason().any(|id| id == policy.id()) {
                            PolicyOutcome::Satisfied
                        } else {
                            PolicyOutcome::NotSatisfied
                        }
                    }
                    Err(e) => PolicyOutcome::Error(e.to_string()),
                };
                policies.push(PolicyTrace {
                    id: policy.id().to_string(),
                    meta: meta.clone(),
                    outcome,
                });
            }
        }
        policies.sort_by(|a, b| a.id.cmp(&b.id));
        CedarTrace {
            total: self.len(),
            policies,
            outcome,
        }
    }
}
