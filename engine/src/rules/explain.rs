//! For explanations (`accord check --explain`): the modules of a stage run one by one, recording for
//! each whether it applied, whether it was evaluated natively or called in Rhai, and what it said.
//! Only explanations call this; deciding never does. What the modules add to the decision is what
//! [`RuleModules::run`] adds: each module gets the same answer either way (natively where its
//! program answers, else in Rhai), and tests compare the two paths' decisions.

use super::{api, applies, native, verdict, RuleModule, RuleModules, Stage, ROOTS};
use crate::cedar::RequestFacts;
use crate::decision::{DecisionBuilder, EvaluationError, Obligation, Reason};
use crate::transaction::AccessRequest;
use rhai::Dynamic;
use std::sync::Arc;

/// How a module that applied was evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluator {
    /// By the engine's native evaluator (the module stayed in the modelled subset).
    Native,
    /// Called in Rhai.
    Rhai,
}

impl Evaluator {
    pub fn as_str(self) -> &'static str {
        match self {
            Evaluator::Native => "native",
            Evaluator::Rhai => "rhai",
        }
    }
}

/// What one module did for a request.
#[derive(Debug, Clone)]
pub enum ModuleRun {
    /// Its manifest filters exclude the request; the reason says which.
    NotApplicable(String),
    Ran {
        evaluator: Evaluator,
        /// Its permit and deny verdicts.
        verdicts: Vec<Reason>,
        obligations: Vec<Obligation>,
        errors: Vec<EvaluationError>,
    },
}

/// One module of a stage and what it did.
#[derive(Debug, Clone)]
pub struct ModuleTrace {
    pub module: String,
    pub path: String,
    pub stage: Stage,
    pub run: ModuleRun,
}

/// Why `module`'s manifest entry excludes `request`, if it does.
fn not_applicable(
    module: &RuleModule,
    request: &AccessRequest,
    facts: &RequestFacts<'_>,
) -> Option<String> {
    if applies(module, request, facts) {
        return None;
    }
    if let Some(actions) = &module.actions {
        if !actions.contains(&request.action) {
            let list: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
            return Some(format!(
                "action `{}` is not among its actions [{}]",
                request.action.as_str(),
                list.join(", ")
            ));
        }
    }
    if let Some(purposes) = &module.purposes {
        let purpose = request.context.purpose_of_use.as_ref();
        if !purpose.is_some_and(|p| purposes.contains(p)) {
            let list: Vec<&str> = purposes.iter().map(|p| p.as_str()).collect();
            return Some(match purpose {
                Some(p) => format!(
                    "purpose `{}` is not among its purposes [{}]",
                    p.as_str(),
                    list.join(", ")
                ),
                None => format!("no purpose of use; it runs for [{}]", list.join(", ")),
            });
        }
    }
    if let Some(names) = &module.when_attributes {
        let attributes = &request.context.attributes;
        if !names.iter().any(|n| attributes.contains_key(n)) {
            return Some(format!(
                "the transaction has none of the attributes it runs on [{}]",
                names.join(", ")
            ));
        }
    }
    Some(format!(
        "none of its regimes or jurisdictions [{}] applies",
        module.applies_to.join(", ")
    ))
}

impl RuleModules {
    /// Runs every module of `stage` as [`run`](Self::run) does (with `on_deny_only`, only the
    /// modules declared `on_deny`, as [`run_on_deny`](Self::run_on_deny) does), adding what they
    /// say to `builder`, and returns what each module it considered did, in manifest order.
    pub fn run_traced(
        &self,
        stage: Stage,
        request: &AccessRequest,
        facts: &RequestFacts<'_>,
        builder: &mut DecisionBuilder,
        on_deny_only: bool,
    ) -> Vec<ModuleTrace> {
        let mut traces = Vec::new();
        for module in self
            .modules
            .iter()
            .filter(|m| m.stage == stage && (!on_deny_only || m.on_deny))
        {
            let trace = |run| ModuleTrace {
                module: module.id.clone(),
                path: module.path.clone(),
                stage,
                run,
            };
            if let Some(reason) = not_applicable(module, request, facts) {
                traces.push(trace(ModuleRun::NotApplicable(reason)));
                continue;
            }
            let native = module
                .program
                .as_ref()
                .and_then(|program| program.run(request, facts, &self.params));
            let (evaluator, result) = match native {
                Some(answer) => (Evaluator::Native, Ok(answer)),
                None => {
                    let [tx, env] = module.reads.build(&ROOTS, request, facts);
                    let tag = Dynamic::from(api::CallTag {
                        jurisdictions: Arc::new(facts.applicable.jurisdictions.clone()),
                    });
                    (
                        Evaluator::Rhai,
                        self.call(module, &tx, &env, &tag)
                            .map(native::Answer::Value),
                    )
                }
            };
            let mut own = DecisionBuilder::new();
            match result {
                Ok(answer) => verdict::collect_answer(module, answer, request, &mut own),
                Err(message) => own.error(module.id.clone(), message),
            }
            let mut verdicts: Vec<Reason> = own.permits().to_vec();
            verdicts.extend(own.denies().iter().cloned());
            traces.push(trace(ModuleRun::Ran {
                evaluator,
                verdicts,
                obligations: own.obligations().cloned().collect(),
                errors: own.errors().to_vec(),
            }));
            builder.extend(own);
        }
        traces
    }
}
