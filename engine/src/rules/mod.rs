//! Rhai rule modules: computed rules (ages, windows, adequacy lists, minimum necessary, obligations).
//!
//! [`RuleModules`] guarantees: every module compiled once, defines `evaluate(tx, env)`, and runs in
//! a sandbox — an operation budget, call-depth, expression-depth, string, array and map limits, no
//! `eval`, no `import`, no output, and no clock or randomness (the `no_time` build has none; Rhai has
//! no file or network access). What a module returns is checked; anything else is an error, and the
//! caller turns errors into a deny (fail closed).
//!
//! Two compile-time analyses make a decision cheaper without changing it: a module is evaluated
//! natively wherever it stays in a subset whose Rhai semantics [`native`] mirrors, and called in
//! Rhai otherwise; and then `tx`/`env` carry only the fields some module can read ([`usage`]).
//! [`RuleModules::run_reference`] skips both, and tests assert that it decides every case alike.

mod api;
mod check;
mod dual;
mod err;
mod explain;
mod fields;
mod filter;
mod native;
mod strict;
mod usage;
mod verdict;

pub use check::{suggest, Findings};
pub use dual::{disagreements, Disagreement};
pub use err::RuleError;
pub use explain::{Evaluator, ModuleRun, ModuleTrace};
pub(crate) use filter::Present as FilterBits;

use crate::cedar::RequestFacts;
use crate::decision::DecisionBuilder;
use crate::jurisdiction::JurisdictionTable;
use crate::transaction::{AccessRequest, Action, PurposeOfUse};
use fields::{Field, FieldSet};
use rhai::{CallFnOptions, Dynamic, Engine, Scope, AST};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use usage::Usage;

/// Sandbox limits. Generous for rule logic, small enough that a runaway module fails in microseconds.
pub mod limits {
    pub const MAX_OPERATIONS: u64 = 100_000;
    pub const MAX_CALL_LEVELS: usize = 32;
    pub const MAX_EXPR_DEPTH: usize = 64;
    pub const MAX_FUNCTION_EXPR_DEPTH: usize = 32;
    pub const MAX_STRING_SIZE: usize = 64 * 1024;
    pub const MAX_ARRAY_SIZE: usize = 10_000;
    pub const MAX_MAP_SIZE: usize = 10_000;
}

/// One Rhai module's source and applicability, as named in the manifest.
pub struct RhaiSource<'a> {
    pub module: &'a str,
    pub path: &'a str,
    pub text: &'a str,
    /// Regimes or jurisdiction codes; the module runs when any applies.
    pub applies_to: &'a [String],
    /// When given, the module runs only for these actions.
    pub actions: Option<&'a [Action]>,
    /// When given, the module runs only for these purposes of use.
    pub purposes: Option<&'a [PurposeOfUse]>,
    /// When given, the module runs only when one of these context attributes is present.
    pub when_attributes: Option<&'a [String]>,
    /// The module only attaches obligations (runs in [`Stage::Obligations`]).
    pub obligations_only: bool,
    /// An obligations-only module that also runs on a decision that is otherwise a deny.
    pub on_deny: bool,
}

/// When a module runs. Verdict modules run for every request they apply to; obligations-only
/// modules run afterwards, and only when the decision is otherwise an allow, unless declared
/// `on_deny`: most obligations reach no other decision, so skipping a module on a deny changes
/// nothing a decision carries; one declared `on_deny` attaches duties that come with a deny too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Verdicts,
    Obligations,
}

/// A compiled module.
pub struct RuleModule {
    pub id: String,
    pub path: String,
    pub applies_to: Vec<String>,
    pub actions: Option<Vec<Action>>,
    pub purposes: Option<Vec<PurposeOfUse>>,
    pub when_attributes: Option<Vec<String>>,
    pub stage: Stage,
    /// Runs in [`Stage::Obligations`] on a deny too.
    pub on_deny: bool,
    ast: AST,
    /// `evaluate` as far as it can be evaluated natively (see [`native`]).
    program: Option<native::Program>,
    /// The fields of `tx` and `env` this module can read.
    reads: FieldSet,
    /// Its loops and recursive functions, named when it hits a sandbox limit.
    sites: check::RunawaySites,
}

/// Every Rhai module of a bundle, compiled, with the sandboxed engine that runs them.
pub struct RuleModules {
    engine: Engine,
    params: Arc<api::ParameterTable>,
    modules: Vec<RuleModule>,
    /// The modules' manifest filters, precomputed ([`filter`]).
    filters: filter::Filters,
    /// What the compile-time checks found (no errors: a module with one is refused).
    findings: Findings,
}

/// What one module answered, natively or in Rhai, or its error.
type Outcome<'a> = Result<native::Answer<'a>, String>;

/// The field trees of `evaluate`'s two parameters.
const ROOTS: [(&str, &Field); 2] = [("tx", &fields::TX), ("env", &fields::ENV)];

/// Builds the sandboxed engine, with the rule API bound to this bundle's jurisdictions.
pub fn sandboxed_engine(table: Arc<JurisdictionTable>) -> Engine {
    engine_with(Arc::new(api::ParameterTable::new(table)))
}

fn engine_with(params: Arc<api::ParameterTable>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits::MAX_OPERATIONS)
        .set_max_call_levels(limits::MAX_CALL_LEVELS)
        .set_max_expr_depths(limits::MAX_EXPR_DEPTH, limits::MAX_FUNCTION_EXPR_DEPTH)
        .set_max_string_size(limits::MAX_STRING_SIZE)
        .set_max_array_size(limits::MAX_ARRAY_SIZE)
        .set_max_map_size(limits::MAX_MAP_SIZE)
        .set_max_modules(0)
        // Rhai's string interner takes a global write lock (which sleeps) for every interned
        // string: with it, threads deciding at once serialize. Interning is only a cache.
        .set_max_strings_interned(0)
        // Full: calls with constant arguments are evaluated once, at compile time (an obligation's
        // map of literals, say). Sound because every registered function is a function of its
        // arguments except those marked volatile (api.rs), which it leaves alone.
        .set_optimization_level(rhai::OptimizationLevel::Full)
        .set_strict_variables(true)
        .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    strict::register(&mut engine);
    api::register(&mut engine, params);
    engine
}

impl RuleModules {
    /// Compiles and checks every module ([`check`]): a module that calls an unknown function,
    /// reads a path `tx` and `env` do not have, or reads an attribute `declared` does not name is
    /// refused, with every such problem of the bundle listed.
    pub fn compile(
        table: Arc<JurisdictionTable>,
        sources: &[RhaiSource<'_>],
        declared: &crate::bundle::DeclaredAttributes,
    ) -> Result<Self, RuleError> {
        let params = Arc::new(api::ParameterTable::new(table));
        let engine = engine_with(params.clone());
        // The checks read each module as written: the optimizer would fold calls away.
        let mut literal = engine_with(params.clone());
        literal.set_optimization_level(rhai::OptimizationLevel::None);
        let known = check::known_functions(&engine);
        let mut findings = Findings::default();
        let mut modules = Vec::with_capacity(sources.len());
        for source in sources {
            // The optimizer runs native functions on constant arguments while compiling; a Rhai
            // panic there (see `run_with`) refuses the bundle instead of unwinding the caller (a
            // governance proposal carries modules of its own).
            let compiled =
                std::panic::catch_unwind(AssertUnwindSafe(|| engine.compile(source.text)));
            let ast = match compiled {
                Ok(Ok(ast)) => ast,
                Ok(Err(e)) => {
                    return Err(RuleError::Compile {
                        path: source.path.to_owned(),
                        reason: e.to_string(),
                    })
                }
                Err(_) => {
                    return Err(RuleError::Compile {
                        path: source.path.to_owned(),
                        reason: "the Rhai compiler panicked on this module".into(),
                    })
                }
            };
            let has_entry = ast
                .iter_functions()
                .any(|f| f.name == "evaluate" && f.params.len() == 2);
            if !has_entry {
                return Err(RuleError::Compile {
                    path: source.path.to_owned(),
                    reason: "module must define `fn evaluate(tx, env)`".into(),
                });
            }
            let mut sites = check::RunawaySites::default();
            if let Ok(Ok(written)) =
                std::panic::catch_unwind(AssertUnwindSafe(|| literal.compile(source.text)))
            {
                sites = check::runaway_sites(&written);
                let found = check::module(&written, source.path, &ROOTS, &known, declared);
                findings.errors.extend(found.errors);
                findings.warnings.extend(found.warnings);
                for rule in found.rules {
                    findings.rules.insert(format!("{}#{rule}", source.module));
                    findings.rules.insert(rule);
                }
                findings.rule_prefixes.extend(found.rule_prefixes);
                findings.computed_rules |= found.computed_rules;
            }
            let usage = Usage::of(&ast, &ROOTS);
            modules.push(RuleModule {
                id: source.module.to_owned(),
                path: source.path.to_owned(),
                applies_to: source.applies_to.to_vec(),
                actions: source.actions.map(<[Action]>::to_vec),
                purposes: source.purposes.map(<[PurposeOfUse]>::to_vec),
                when_attributes: source.when_attributes.map(<[String]>::to_vec),
                stage: if source.obligations_only {
                    Stage::Obligations
                } else {
                    Stage::Verdicts
                },
                on_deny: source.obligations_only && source.on_deny,
                program: native::Program::of(&engine, &ast),
                reads: FieldSet::new(&ROOTS, &|p| usage.wanted(p), &|p| usage.on_route(p)),
                sites,
                ast,
            });
        }
        if !findings.errors.is_empty() {
            return Err(RuleError::Checks {
                problems: findings.errors,
            });
        }
        Ok(RuleModules {
            engine,
            params,
            filters: filter::Filters::new(&modules),
            modules,
            findings,
        })
    }

    pub fn modules(&self) -> &[RuleModule] {
        &self.modules
    }

    /// What the compile-time checks found: warnings, and the rule names modules produce.
    pub fn findings(&self) -> &Findings {
        &self.findings
    }

    /// Runs every module of `stage` that applies to `request`, adding verdicts, obligations and
    /// errors.
    pub fn run(
        &self,
        stage: Stage,
        request: &AccessRequest,
        facts: &RequestFacts<'_>,
        builder: &mut DecisionBuilder,
    ) {
        self.run_with(stage, request, facts, builder, true, false);
    }

    /// Runs the obligations-only modules declared `on_deny` that apply to `request`, for a
    /// decision that is a deny.
    pub fn run_on_deny(
        &self,
        request: &AccessRequest,
        facts: &RequestFacts<'_>,
        builder: &mut DecisionBuilder,
    ) {
        self.run_with(Stage::Obligations, request, facts, builder, true, true);
    }

    /// [`run_on_deny`](Self::run_on_deny) as the reference run does it.
    pub fn run_on_deny_reference(
        &self,
        request: &AccessRequest,
        facts: &RequestFacts<'_>,
        builder: &mut DecisionBuilder,
    ) {
        self.run_with(Stage::Obligations, request, facts, builder, false, true);
    }

    /// What [`run`](Self::run) must decide alike: every applicable module called, with every
    /// field of `tx` and `env`.
    pub fn run_reference(
        &self,
        stage: Stage,
        request: &AccessRequest,
        facts: &RequestFacts<'_>,
        builder: &mut DecisionBuilder,
    ) {
        self.run_with(stage, request, facts, builder, false, false);
    }

    fn run_with(
        &self,
        stage: Stage,
        request: &AccessRequest,
        facts: &RequestFacts<'_>,
        builder: &mut DecisionBuilder,
        analysed: bool,
        on_deny_only: bool,
    ) {
        // Each module's result, in module order: natively evaluated where its program answers
        // (`Ok(None)`: nothing to add), otherwise `None` until the module is called in Rhai below.
        let mut results: smallvec::SmallVec<[(&RuleModule, Option<Outcome>); 16]> =
            smallvec::SmallVec::new();
        let mut reads = FieldSet::default();
        // What the filters test of the request is read once per request, as is whether programs
        // may run on it at all, when one would (`facts.native_fits`).
        let cached = facts
            .module_filter
            .get_or_init(|| self.filters.present(request, facts));
        let fresh;
        let present = if self.filters.computed(cached) {
            cached
        } else {
            fresh = self.filters.present(request, facts);
            &fresh
        };
        for (index, module) in self.modules.iter().enumerate() {
            if module.stage != stage
                || (on_deny_only && !module.on_deny)
                || !self.filters.admits(index, request.action, present)
            {
                continue;
            }
            let native = match &module.program {
                Some(program)
                    if analysed
                        && *facts
                            .native_fits
                            .get_or_init(|| native::within_limits(request, facts)) =>
                {
                    program.run(request, facts, &self.params).map(Ok)
                }
                _ => None,
            };
            if native.is_none() {
                reads = reads.union(module.reads);
            }
            results.push((module, native));
        }
        if results.iter().any(|(_, native)| native.is_none()) {
            if !analysed {
                reads = FieldSet::ALL;
            }
            // Built once per request with what the modules called can read, read-only and
            // shared: modules cannot change what the next sees.
            let [tx, env] = reads.build(&ROOTS, request, facts);
            let tag = Dynamic::from(api::CallTag {
                jurisdictions: Arc::new(facts.applicable.jurisdictions.clone()),
            });
            for (module, result) in results.iter_mut() {
                if result.is_some() {
                    continue;
                }
                *result = Some(
                    self.call(module, &tx, &env, &tag)
                        .map(native::Answer::Value),
                );
            }
        }
        for (module, result) in results {
            match result {
                Some(Ok(answer)) => verdict::collect_answer(module, answer, request, builder),
                Some(Err(message)) => builder.error(module.id.clone(), message),
                None => {}
            }
        }
    }

    /// Calls `evaluate` in Rhai; an error names the module's file.
    fn call(
        &self,
        module: &RuleModule,
        tx: &Dynamic,
        env: &Dynamic,
        tag: &Dynamic,
    ) -> Result<Dynamic, String> {
        // Rhai panics on a few states it deems impossible (e.g. its data-size check meeting a
        // shared value that a module put inside an array); that must deny, not unwind. The values
        // touched are this request's own, dropped afterwards.
        let call = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.engine.call_fn_with_options::<Dynamic>(
                CallFnOptions::new()
                    .eval_ast(false)
                    .rewind_scope(true)
                    .with_tag(tag.clone()),
                &mut Scope::new(),
                &module.ast,
                "evaluate",
                (tx.clone(), env.clone()),
            )
        }));
        match call {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(describe(module, &e)),
            Err(_) => Err(format!("{}: the interpreter panicked", module.path)),
        }
    }
}

/// A runtime error of a module, naming its file and, where Rhai knows it, the line and column at
/// which it arose (inside the innermost function call); a sandbox limit names the limit.
fn describe(module: &RuleModule, error: &rhai::EvalAltResult) -> String {
    use rhai::EvalAltResult as E;
    let path = module.path.as_str();
    let sites = |what: &str, list: &[String]| {
        if list.is_empty() {
            String::new()
        } else {
            format!("; the module's {what}: {}", list.join(", "))
        }
    };
    let mut inner = error;
    let mut calls = Vec::new();
    while let E::ErrorInFunctionCall(name, _, next, _) = inner {
        calls.push(name.as_str());
        inner = next;
    }
    let position = inner.position();
    let at = match (position.line(), position.position()) {
        (Some(line), Some(column)) => format!("{path}: line {line}, column {column}"),
        (Some(line), None) => format!("{path}: line {line}"),
        _ => path.to_owned(),
    };
    let within = if calls.is_empty() {
        String::new()
    } else {
        format!(" (in {})", calls.join(" → "))
    };
    let what = match inner {
        E::ErrorTooManyOperations(_) => format!(
            "sandbox limit: more than {} operations (a loop that does not end?){}",
            limits::MAX_OPERATIONS,
            sites("loops", &module.sites.loops)
        ),
        E::ErrorStackOverflow(_) => format!(
            "sandbox limit: function calls nested deeper than {} levels (a recursion that does not end?){}",
            limits::MAX_CALL_LEVELS,
            sites("recursive functions", &module.sites.recursive)
        ),
        E::ErrorDataTooLarge(what, _) => {
            let limit = if what.contains("string") {
                format!("{} bytes", limits::MAX_STRING_SIZE)
            } else if what.contains("map") {
                format!("{} entries", limits::MAX_MAP_SIZE)
            } else {
                format!("{} elements", limits::MAX_ARRAY_SIZE)
            };
            format!("sandbox limit: {} over {limit}", what.to_lowercase())
        }
        E::ErrorTooManyModules(_) => "sandbox limit: modules cannot import".to_owned(),
        // A `throw`, or a failing operator of the engine's: the message alone.
        E::ErrorRuntime(value, _) => value.to_string(),
        other => {
            let mut text = other.to_string();
            // Rhai appends the position it already gave; say it once.
            if let Some(cut) = text.rfind(" (line ") {
                text.truncate(cut);
            }
            text
        }
    };
    format!("{at}: {what}{within}")
}

/// Whether `module`'s manifest filters admit `request` (run_with asks [`filter::Filters`], which
/// answers alike without comparing names).
fn applies(module: &RuleModule, request: &AccessRequest, facts: &RequestFacts<'_>) -> bool {
    if let Some(actions) = &module.actions {
        if !actions.contains(&request.action) {
            return false;
        }
    }
    context_admits(module, request)
        && module.applies_to.iter().any(|name| {
            facts.applicable.regimes.iter().any(|r| r == name)
                || facts.applicable.jurisdictions.iter().any(|j| j == name)
        })
}

/// The filters on the request's context: `purposes` and `when_attributes`.
fn context_admits(module: &RuleModule, request: &AccessRequest) -> bool {
    if let Some(purposes) = &module.purposes {
        let purpose = request.context.purpose_of_use.as_ref();
        if !purpose.is_some_and(|p| purposes.contains(p)) {
            return false;
        }
    }
    if let Some(names) = &module.when_attributes {
        let attributes = &request.context.attributes;
        if !names.iter().any(|n| attributes.contains_key(n)) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod analysis_tests;

#[cfg(test)]
mod strict_tests;
