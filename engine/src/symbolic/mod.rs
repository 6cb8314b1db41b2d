//! Two Cedar policy sets compared per action with the Cedar symbolic compiler
//! (`cedar-policy-symcc`) and an SMT solver (cvc5): for each action, whether the target set is
//! equivalent to the base, only stricter, only looser, or incomparable with it, with a concrete
//! request for each direction in which they differ.
//!
//! Two queries per action and request environment of the schema, each under
//! [`SolverSettings::query_limit`]: "does the target allow a request the base denies?" (newly
//! allowed) and "does the base allow a request the target denies?" (newly denied). A proof that no
//! such request exists covers every request the schema admits, with any entities; a request found
//! is one the schema admits, which need not be one Accord would ever build from a transaction
//! (the engine derives the context). The comparison covers Cedar's decision only: Rhai modules and
//! the manifest's regime defaults are outside it.
//!
//! The result is advisory: it depends on a solver outside the engine and on time, and is never
//! an input to a decision or to governance state.

mod counterexample;
mod solver;

pub use counterexample::Counterexample;
pub use solver::{SolverSettings, DEFAULT_QUERY_LIMIT};

use cedar_policy::{PolicySet, RequestEnv, Schema};
use cedar_policy_symcc::err::Error as SymccError;
use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicySet};
use serde::Serialize;
use std::collections::BTreeMap;

/// One side of a comparison: a schema and the policies validated against it.
#[derive(Clone, Copy)]
pub struct CedarSide<'a> {
    pub schema: &'a Schema,
    pub policies: &'a PolicySet,
}

/// How the target set's decisions relate to the base set's for one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every request is decided alike.
    Equivalent,
    /// Some request the base allows is denied, none the base denies is allowed.
    Stricter,
    /// Some request the base denies is allowed, none the base allows is denied.
    Looser,
    /// Both: some requests are newly allowed and others newly denied.
    Incomparable,
    /// A query timed out or failed: what is known is in the two directions.
    Undecided,
    /// The action is only in the target's schema.
    Added,
    /// The action is only in the base's schema.
    Removed,
}

/// What one direction's queries found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// Proved: no request differs in this direction.
    None,
    /// A request differs (the counterexample, when the solver's model could be read).
    Found,
    /// A query did not finish within the time limit.
    Timeout,
    /// A query could not be run (the detail says why).
    Error,
}

/// One direction (newly allowed, or newly denied) for one action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Direction {
    pub result: Finding,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Direction {
    fn new(result: Finding, detail: Option<String>) -> Self {
        Direction {
            result,
            counterexample: None,
            detail,
        }
    }
}

/// One action compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionComparison {
    /// The action's uid as Cedar writes it (`Accord::Action::"read"`).
    pub action: String,
    pub verdict: Verdict,
    /// Requests the target allows and the base denies (absent for added and removed actions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newly_allowed: Option<Direction>,
    /// Requests the base allows and the target denies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newly_denied: Option<Direction>,
}

/// Two policy sets compared, action by action in uid order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicySetComparison {
    /// The solver as it names itself (`cvc5 1.0.3`).
    pub solver: String,
    /// The time limit of each query, in milliseconds.
    pub query_limit_ms: u64,
    /// The schemas differ: both sets are compared on the target's schema, the one that governs
    /// once the target is active.
    pub schema_changed: bool,
    pub actions: Vec<ActionComparison>,
}

/// Why no comparison was made (the solver cannot be run, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct NotRun {
    pub reason: String,
}

/// Compares `target` with `base` action by action. Blocking: the solver is driven from a thread
/// and runtime of the comparison's own, so any thread may call it (an async task included,
/// which it then blocks).
pub fn compare(
    base: CedarSide<'_>,
    target: CedarSide<'_>,
    settings: &SolverSettings,
) -> Result<PolicySetComparison, NotRun> {
    compare_selected(base, target, settings, &|_| true)
}

/// [`compare`] for the actions whose uid `keep` accepts (`Accord::Action::"read"`) only.
pub fn compare_selected(
    base: CedarSide<'_>,
    target: CedarSide<'_>,
    settings: &SolverSettings,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<PolicySetComparison, NotRun> {
    let not_run = |reason: String| NotRun { reason };
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("accord-symbolic".into())
            .spawn_scoped(scope, || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| not_run(format!("no runtime for the solver: {e}")))?;
                runtime.block_on(compare_on_runtime(base, target, settings, keep))
            })
            .map_err(|e| not_run(format!("no thread for the solver: {e}")))?;
        worker
            .join()
            .map_err(|_| not_run("the comparison stopped unexpectedly".into()))?
    })
}

/// Request environments by action uid.
fn envs_by_action(schema: &Schema) -> BTreeMap<String, Vec<RequestEnv>> {
    let mut map: BTreeMap<String, Vec<RequestEnv>> = BTreeMap::new();
    for env in schema.request_envs() {
        map.entry(env.action().to_string()).or_default().push(env);
    }
    map
}

async fn compare_on_runtime(
    base: CedarSide<'_>,
    target: CedarSide<'_>,
    settings: &SolverSettings,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<PolicySetComparison, NotRun> {
    let solver = settings
        .version()
        .await
        .map_err(|reason| NotRun { reason })?;
    let schema_changed = base.schema.as_ref() != target.schema.as_ref();
    let mut base_actions = envs_by_action(base.schema);
    let mut target_actions = envs_by_action(target.schema);
    base_actions.retain(|action, _| keep(action));
    target_actions.retain(|action, _| keep(action));
    let mut process = SolverProcess {
        settings,
        compiler: None,
    };
    let mut actions = Vec::new();
    for (action, envs) in &target_actions {
        if !base_actions.contains_key(action) {
            actions.push(ActionComparison {
                action: action.clone(),
                verdict: Verdict::Added,
                newly_allowed: None,
                newly_denied: None,
            });
            continue;
        }
        actions.push(process.compare_action(action, envs, base, target).await);
    }
    for action in base_actions.keys() {
        if !target_actions.contains_key(action) {
            actions.push(ActionComparison {
                action: action.clone(),
                verdict: Verdict::Removed,
                newly_allowed: None,
                newly_denied: None,
            });
        }
    }
    actions.sort_by(|a, b| a.action.cmp(&b.action));
    Ok(PolicySetComparison {
        solver,
        query_limit_ms: u64::try_from(settings.query_limit.as_millis()).unwrap_or(u64::MAX),
        schema_changed,
        actions,
    })
}

/// The verdict the two directions make.
fn verdict(newly_allowed: Finding, newly_denied: Finding) -> Verdict {
    match (newly_allowed, newly_denied) {
        (Finding::None, Finding::None) => Verdict::Equivalent,
        (Finding::None, Finding::Found) => Verdict::Stricter,
        (Finding::Found, Finding::None) => Verdict::Looser,
        (Finding::Found, Finding::Found) => Verdict::Incomparable,
        _ => Verdict::Undecided,
    }
}

/// The solver process queries run on, started on first use and replaced after a query it did not
/// finish.
struct SolverProcess<'s> {
    settings: &'s SolverSettings,
    compiler: Option<CedarSymCompiler<LocalSolver>>,
}

impl SolverProcess<'_> {
    async fn compare_action(
        &mut self,
        action: &str,
        envs: &[RequestEnv],
        base: CedarSide<'_>,
        target: CedarSide<'_>,
    ) -> ActionComparison {
        let mut newly_allowed: Option<Direction> = None;
        let mut newly_denied: Option<Direction> = None;
        for env in envs {
            let compiled = CompiledPolicySet::compile(base.policies, env, target.schema)
                .map_err(|e| format!("the base policies on the target's schema: {e}"))
                .and_then(|b| {
                    CompiledPolicySet::compile(target.policies, env, target.schema)
                        .map(|t| (b, t))
                        .map_err(|e| format!("the target policies: {e}"))
                });
            let (b, t) = match compiled {
                Ok(sets) => sets,
                Err(reason) => {
                    let failed = Direction::new(Finding::Error, Some(reason));
                    newly_allowed = Some(merge(newly_allowed, failed.clone()));
                    newly_denied = Some(merge(newly_denied, failed));
                    continue;
                }
            };
            if !found(&newly_allowed) {
                let d = self.query(&t, &b).await;
                newly_allowed = Some(merge(newly_allowed, d));
            }
            if !found(&newly_denied) {
                let d = self.query(&b, &t).await;
                newly_denied = Some(merge(newly_denied, d));
            }
        }
        let allowed = newly_allowed.unwrap_or_else(|| Direction::new(Finding::None, None));
        let denied = newly_denied.unwrap_or_else(|| Direction::new(Finding::None, None));
        ActionComparison {
            action: action.to_owned(),
            verdict: verdict(allowed.result, denied.result),
            newly_allowed: Some(allowed),
            newly_denied: Some(denied),
        }
    }

    /// Is there a request `allows` allows and `denies` denies? One query, under the time limit.
    async fn query(&mut self, allows: &CompiledPolicySet, denies: &CompiledPolicySet) -> Direction {
        let compiler = match self.compiler.take() {
            Some(c) => c,
            None => match self.settings.spawn().and_then(|solver| {
                CedarSymCompiler::new(solver).map_err(|e| format!("symbolic compiler: {e}"))
            }) {
                Ok(c) => c,
                Err(reason) => return Direction::new(Finding::Error, Some(reason)),
            },
        };
        let mut compiler = compiler;
        let limit_ms = self.settings.query_limit.as_millis();
        let asked = tokio::time::timeout(
            self.settings.deadline(),
            compiler.check_implies_with_counterexample_opt(allows, denies),
        )
        .await;
        let answer = match asked {
            // The solver is still busy with the query: dropping it kills the process.
            Err(_) => {
                return Direction::new(
                    Finding::Timeout,
                    Some(format!(
                        "no answer within {limit_ms} ms; the solver was stopped"
                    )),
                )
            }
            Ok(answer) => answer,
        };
        let direction = match answer {
            Ok(None) => Direction::new(Finding::None, None),
            Ok(Some(env)) => match Counterexample::of(&env) {
                Ok(cex) => Direction {
                    result: Finding::Found,
                    counterexample: Some(cex),
                    detail: None,
                },
                Err(reason) => Direction::new(
                    Finding::Found,
                    Some(format!("the counterexample could not be written: {reason}")),
                ),
            },
            Err(SymccError::SolverUnknown) => Direction::new(
                Finding::Timeout,
                Some(format!(
                    "the solver gave no answer within its {limit_ms} ms limit"
                )),
            ),
            // The solver answered "sat" but its model could not be read back: the two sets still
            // differ in this direction.
            Err(e @ (SymccError::DecodeModel(_) | SymccError::ConcretizeError(_))) => {
                let found = Direction::new(Finding::Found, Some(format!("no counterexample: {e}")));
                self.compiler = Some(compiler);
                return found;
            }
            // The solver's state is unknown after any other failure: the next query gets a
            // fresh one.
            Err(e) => return Direction::new(Finding::Error, Some(e.to_string())),
        };
        self.compiler = Some(compiler);
        direction
    }
}

fn found(d: &Option<Direction>) -> bool {
    d.as_ref().is_some_and(|d| d.result == Finding::Found)
}

/// One direction over several request environments: a request found anywhere decides it;
/// otherwise a timeout or error anywhere leaves it undecided; otherwise none.
fn merge(so_far: Option<Direction>, next: Direction) -> Direction {
    let rank = |f: Finding| match f {
        Finding::None => 0,
        Finding::Error => 1,
        Finding::Timeout => 2,
        Finding::Found => 3,
    };
    match so_far {
        Some(d) if rank(d.result) >= rank(next.result) => d,
        _ => next,
    }
}

#[cfg(test)]
mod tests;
