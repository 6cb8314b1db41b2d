//! Cedar authorization: a bundle's policies compiled once, validated against its schema, and sliced
//! so that each request evaluates only the policies that can match it ([`slice`] says how, and why
//! the result is exact).
//!
//! [`CedarPolicies`] guarantees: every policy parsed, validated (strict mode) and carries `@id`,
//! `@citation` and `@message`; its id is `module#rule`, unique in the bundle; and a request's slice
//! gives the same Cedar outcome, determining policies and errors as the whole set (asserted against
//! [`reference`] in tests).

mod err;
mod explain;
mod guards;
mod reads;
pub mod reference;
mod request;
mod slice;

pub use err::CedarError;
pub use explain::{CedarTrace, PolicyOutcome, PolicyTrace};
pub use request::RequestFacts;
pub(crate) use request::Strs;
pub use slice::Slice;

use crate::decision::{Reason, RuleEffect};
use crate::transaction::{AccessRequest, Action};
use cedar_policy::{
    Authorizer, Effect, EntityTypeName, EntityUid, PolicyId, PolicySet, Response, Schema,
    ValidationMode, Validator,
};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;

/// One Cedar module's source, as named in the manifest.
pub struct CedarSource<'a> {
    pub module: &'a str,
    pub path: &'a str,
    pub text: &'a str,
}

/// What a policy's annotations say about it.
#[derive(Debug, Clone)]
pub struct PolicyMeta {
    pub module: String,
    pub rule: String,
    pub citation: String,
    pub message: String,
    pub effect: RuleEffect,
    /// The file it came from.
    pub path: String,
}

/// Cedar's verdict for one request, translated into Accord's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CedarOutcome {
    pub allowed: bool,
    /// The determining policies, sorted.
    pub reasons: Vec<Reason>,
    /// `(module, message)` of every policy that failed to evaluate, sorted.
    pub errors: Vec<(String, String)>,
}

/// The compiled, validated, sliced policy set of one bundle. Immutable once built.
pub struct CedarPolicies {
    /// The validator's warnings (an impossible policy, say), one line each.
    warnings: Vec<String>,
    schema: Schema,
    all: PolicySet,
    slices: slice::SliceIndex,
    action_uids: Vec<EntityUid>,
    actor_type: EntityTypeName,
    record_type: EntityTypeName,
    meta: HashMap<PolicyId, PolicyMeta>,
    authorizer: Authorizer,
}

/// The Cedar namespace of the schema Accord builds requests for.
pub const NAMESPACE: &str = "Accord";

impl CedarPolicies {
    /// Parses the schema and every module, checks annotations, validates, and slices.
    /// `regimes` are the regimes that may apply to a request (those of the bundle's jurisdictions).
    pub fn compile(
        schema_path: &str,
        schema_text: &str,
        sources: &[CedarSource<'_>],
        regimes: &[String],
    ) -> Result<Self, CedarError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(schema_text).map_err(|e| CedarError::Schema {
                path: schema_path.to_owned(),
                reason: err::render(&e, schema_text),
            })?;
        let mut all = PolicySet::new();
        let mut meta = HashMap::new();
        for source in sources {
            parse_module(source, &mut all, &mut meta)?;
        }
        let validation = Validator::new(schema.clone()).validate(&all, ValidationMode::Strict);
        // Each diagnostic names the file, the policy, the line and column in that file, and
        // Cedar's own help.
        let texts: HashMap<&str, &str> = sources.iter().map(|s| (s.path, s.text)).collect();
        let describe = |id: &PolicyId, diagnostic: &dyn miette::Diagnostic| {
            let Some(m) = meta.get(id) else {
                return format!("policy `{id}`: {}", err::render(diagnostic, ""));
            };
            let text = texts.get(m.path.as_str()).copied().unwrap_or("");
            let rendered = err::render(diagnostic, text);
            let hint = err::hint(&rendered);
            format!("{}: policy `{}`: {rendered}{hint}", m.path, m.rule)
        };
        if !validation.validation_passed() {
            let mut problems: Vec<String> = validation
                .validation_errors()
                .map(|e| describe(e.policy_id(), e))
                .collect();
            problems.sort();
            return Err(CedarError::Validation { problems });
        }
        let mut warnings: Vec<String> = validation
            .validation_warnings()
            .map(|w| describe(w.policy_id(), w))
            .collect();
        warnings.sort();
        let type_name = |name: &str| {
            EntityTypeName::from_str(&format!("{NAMESPACE}::{name}")).map_err(|e| {
                CedarError::Schema {
                    path: schema_path.to_owned(),
                    reason: e.to_string(),
                }
            })
        };
        let actor_type = type_name("Actor")?;
        let record_type = type_name("Record")?;
        let action_type = type_name("Action")?;
        let action_uids: Vec<EntityUid> = Action::ALL
            .iter()
            .map(|a| {
                EntityUid::from_type_name_and_id(
                    action_type.clone(),
                    cedar_policy::EntityId::new(a.as_str()),
                )
            })
            .collect();
        let slices = slice::SliceIndex::new(&all, action_uids.clone(), regimes);
        Ok(CedarPolicies {
            warnings,
            schema,
            all,
            slices,
            action_uids,
            actor_type,
            record_type,
            meta,
            authorizer: Authorizer::new(),
        })
    }

    /// What the validator warned of: policies that can never apply, and the like.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The whole policy set (every module).
    pub fn all(&self) -> &PolicySet {
        &self.all
    }

    /// The policies that can match or fail on `request` with these facts.
    pub fn slice(&self, request: &AccessRequest, facts: &RequestFacts<'_>) -> Arc<Slice> {
        let flag = |name: &str| {
            if name == guards::CONSENT_COVERS_RECORD {
                let consented = &facts.consent.categories;
                facts.categories.iter().all(|c| consented.contains(c))
            } else {
                request::context_flag(request, facts, name)
            }
        };
        self.slices.slice(&slice::RequestView {
            action: request.action,
            regimes: &facts.applicable.regimes,
            purpose: request
                .context
                .purpose_of_use
                .as_ref()
                .map_or("", |p| p.as_str()),
            legal_basis: request.context.legal_basis.map_or("", |b| b.as_str()),
            kind: request.actor.kind,
            flag: &flag,
            categories: facts.categories,
        })
    }

    pub fn action_uid(&self, action: Action) -> &EntityUid {
        &self.action_uids[action.index()]
    }

    /// Every policy's metadata, ordered by policy id.
    pub fn policies(&self) -> BTreeMap<String, &PolicyMeta> {
        self.meta
            .iter()
            .map(|(id, m)| (id.to_string(), m))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Decides `request` on its slice, with entities built directly from the typed request.
    pub fn authorize(&self, request: &AccessRequest, facts: &RequestFacts<'_>) -> CedarOutcome {
        let slice = self.slice(request, facts);
        if slice.policies().is_empty() {
            // No policy can match or fail: Cedar would deny with no determining policy and no
            // error, whatever the request holds, so none is built. (Building one cannot fail: two
            // entities of different types, and no schema to check the request against.)
            return CedarOutcome::default();
        }
        match request::build(self, request, facts, slice.reads()) {
            Ok((cedar_request, entities)) => {
                let response =
                    self.authorizer
                        .is_authorized(&cedar_request, slice.policies(), &entities);
                self.outcome(&response)
            }
            Err(message) => CedarOutcome {
                allowed: false,
                reasons: Vec::new(),
                errors: vec![("accord".to_owned(), message)],
            },
        }
    }

    /// Translates Cedar's response: determining policies become reasons, errors stay errors.
    pub(crate) fn outcome(&self, response: &Response) -> CedarOutcome {
        let mut reasons: Vec<Reason> = response
            .diagnostics()
            .reason()
            .map(|id| match self.meta.get(id) {
                Some(m) => Reason {
                    module: m.module.clone(),
                    rule: m.rule.clone(),
                    effect: m.effect,
                    citation: m.citation.clone(),
                    message: m.message.clone(),
                },
                // Unreachable for policies we compiled; keep the id rather than lose it.
                None => Reason {
                    module: "cedar".into(),
                    rule: id.to_string(),
                    effect: RuleEffect::Deny,
                    citation: String::new(),
                    message: String::new(),
                },
            })
            .collect();
        reasons.sort();
        let mut errors: Vec<(String, String)> = response
            .diagnostics()
            .errors()
            .map(|e| {
                let module = match e {
                    cedar_policy::AuthorizationError::PolicyEvaluationError(pe) => self
                        .meta
                        .get(pe.policy_id())
                        .map(|m| m.module.clone())
                        .unwrap_or_else(|| "cedar".into()),
                };
                (module, e.to_string())
            })
            .collect();
        errors.sort();
        CedarOutcome {
            allowed: response.decision() == cedar_policy::Decision::Allow,
            reasons,
            errors,
        }
    }
}

/// The policies of a set parsed from one file, in source order (`from_str` names them
/// policy0..N in that order).
fn in_source_order(parsed: &PolicySet) -> Vec<&cedar_policy::Policy> {
    let mut policies: Vec<_> = parsed.policies().collect();
    policies.sort_by_key(|p| {
        p.id()
            .to_string()
            .trim_start_matches("policy")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    policies
}

/// The policies of one Cedar file, in file order, each named by its `@id` (or `#N`, its place,
/// without one) with its text as Cedar prints it: what a reviewer compares policy by policy.
pub fn policies_by_id(text: &str) -> Result<Vec<(String, String)>, String> {
    let parsed = PolicySet::from_str(text).map_err(|e| err::render(&e, text))?;
    let policies = in_source_order(&parsed);
    Ok(policies
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let id = p
                .annotation("id")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("#{}", i + 1));
            (id, p.to_string())
        })
        .collect())
}

/// Parses one module file, renames each policy `module#id`, and records its annotations.
fn parse_module(
    source: &CedarSource<'_>,
    all: &mut PolicySet,
    meta: &mut HashMap<PolicyId, PolicyMeta>,
) -> Result<(), CedarError> {
    let parsed = PolicySet::from_str(source.text).map_err(|e| CedarError::Parse {
        path: source.path.to_owned(),
        reason: err::render(&e, source.text),
    })?;
    if parsed.templates().next().is_some() {
        return Err(CedarError::Policy {
            path: source.path.to_owned(),
            policy: "(template)".into(),
            reason: "templates are not supported in a policy bundle; write static policies".into(),
        });
    }
    let policies = in_source_order(&parsed);
    for (index, policy) in policies.into_iter().enumerate() {
        let annotation = |key: &str| -> Result<String, CedarError> {
            match policy.annotation(key) {
                Some(v) if !v.trim().is_empty() => Ok(v.to_owned()),
                _ => Err(CedarError::Policy {
                    path: source.path.to_owned(),
                    policy: policy
                        .annotation("id")
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("#{} in file order", index + 1)),
                    reason: format!("missing or empty @{key} annotation"),
                }),
            }
        };
        let rule = annotation("id")?;
        let citation = annotation("citation")?;
        let message = annotation("message")?;
        let id = PolicyId::new(format!("{}#{}", source.module, rule));
        if meta.contains_key(&id) {
            return Err(CedarError::Policy {
                path: source.path.to_owned(),
                policy: rule,
                reason: format!("@id is used twice in module `{}`", source.module),
            });
        }
        let effect = match policy.effect() {
            Effect::Permit => RuleEffect::Permit,
            Effect::Forbid => RuleEffect::Deny,
        };
        all.add(policy.new_id(id.clone()))
            .map_err(|e| CedarError::Internal(e.to_string()))?;
        meta.insert(
            id,
            PolicyMeta {
                module: source.module.to_owned(),
                rule,
                citation,
                message,
                effect,
                path: source.path.to_owned(),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
