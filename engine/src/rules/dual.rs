//! One meaning per module: the native evaluator's answer compared with Rhai's, on a request.
//!
//! [`disagreements`] is what `accord test`, `accord validate` and the governance check of a
//! proposed bundle run over every test case of the bundle: a module whose two evaluations answer
//! differently on a case refuses the bundle, naming the module, the case and both answers.

use super::{native, RuleModules, ROOTS};
use crate::bundle::Bundle;
use crate::cedar::RequestFacts;
use crate::consent::ConsentRegistry;
use crate::rules::fields::FieldSet;
use crate::transaction::AccessRequest;
use rhai::{Dynamic, Map};
use std::sync::Arc;

/// A module whose two evaluations answer differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub module: String,
    /// The native evaluator's answer.
    pub native: String,
    /// Rhai's answer (a value, or `error: …`).
    pub rhai: String,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "module `{}` means two things: the native evaluator answers {}, Rhai answers {}",
            self.module, self.native, self.rhai
        )
    }
}

/// The first disagreement of the two evaluations of `bundle`'s modules on `request`, as one line
/// (no line when they agree, or when the request's facts cannot be derived: the decision then
/// fails on its own).
pub fn disagreements(
    bundle: &Bundle,
    request: &AccessRequest,
    consents: &dyn ConsentRegistry,
) -> Vec<String> {
    let Ok(derived) = bundle.derive(request, consents) else {
        return Vec::new();
    };
    bundle
        .rules()
        .disagreement(request, &derived.facts())
        .map(|d| d.to_string())
        .into_iter()
        .collect()
}

impl RuleModules {
    /// Every module that applies to `request` (in either stage) and that the native evaluator
    /// answers for it, called in Rhai too with every field of `tx` and `env`: the first whose
    /// answers differ. A module the evaluator leaves to Rhai has one answer.
    pub fn disagreement(
        &self,
        request: &AccessRequest,
        facts: &RequestFacts<'_>,
    ) -> Option<Disagreement> {
        if !native::within_limits(request, facts) {
            return None;
        }
        let mut rhai_args = None;
        for module in &self.modules {
            if !super::applies(module, request, facts) {
                continue;
            }
            let Some(program) = &module.program else {
                continue;
            };
            let Some(answer) = program.run(request, facts, &self.params) else {
                continue;
            };
            let native = plain(&answer.into_dynamic());
            let (tx, env, tag) = rhai_args.get_or_insert_with(|| {
                let [tx, env] = FieldSet::ALL.build(&ROOTS, request, facts);
                let tag = Dynamic::from(super::api::CallTag {
                    jurisdictions: Arc::new(facts.applicable.jurisdictions.clone()),
                });
                (tx, env, tag)
            });
            let rhai = match self.call(module, tx, env, tag) {
                Ok(value) => plain(&value),
                Err(e) => format!("error: {e}"),
            };
            if native != rhai {
                return Some(Disagreement {
                    module: module.id.clone(),
                    native,
                    rhai,
                });
            }
        }
        None
    }
}

/// A value with shared values read through, as text with every type named: two answers are the
/// same when their texts are.
pub(crate) fn plain(value: &Dynamic) -> String {
    let value = value.flatten_clone();
    if let Some(items) = value.read_lock::<rhai::Array>() {
        let items: Vec<String> = items.iter().map(plain).collect();
        return format!("[{}]", items.join(", "));
    }
    if let Some(map) = value.read_lock::<Map>() {
        let entries: Vec<String> = map
            .iter()
            .map(|(k, v)| format!("{k}: {}", plain(v)))
            .collect();
        return format!("#{{{}}}", entries.join(", "));
    }
    format!("{}:{value:?}", value.type_name())
}
