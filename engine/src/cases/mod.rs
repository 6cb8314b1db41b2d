//! A bundle's own test cases (`tests/*.yaml`, named in the manifest), run by `accord test`.
//!
//! Each case applies its consent transactions to a fresh registry, decides its access transaction,
//! and compares the decision with what the case expects. A file that does not parse is reported as
//! an error of that file, never skipped. [`Filter`] selects cases by name, [`coverage`] says which
//! rules the cases made decide, and [`report`] writes results as text, JSON or JUnit XML.

pub mod coverage;
mod err;
mod filter;
pub mod report;

pub use coverage::Coverage;
pub use err::CaseError;
pub use filter::Filter;

use crate::bundle::Bundle;
use crate::consent::InMemoryConsentRegistry;
use crate::decision::{Decision, Effect};
use crate::transaction::{AccessRequest, Transaction};
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};

/// One test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    defaults: Defaults,
    cases: Vec<CaseSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    #[serde(default)]
    access: Option<Value>,
    #[serde(default)]
    consent: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    name: String,
    why: String,
    #[serde(default)]
    setup: Vec<Value>,
    access: Value,
    expect: Expectation,
}

/// What a case expects of its decision.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub decision: Effect,
    /// Each must be the citation of some reason.
    #[serde(default)]
    pub citations: Vec<String>,
    /// Each must be the `rule` (or `module#rule`) of some reason.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Each must be the kind of some obligation.
    #[serde(default)]
    pub obligations: Vec<String>,
    /// None may be the `rule` (or `module#rule`) of a reason.
    #[serde(default)]
    pub absent_rules: Vec<String>,
    /// None may be the kind of an obligation.
    #[serde(default)]
    pub absent_obligations: Vec<String>,
    /// Whether the decision must (true) or must not (false) list errors.
    #[serde(default)]
    pub errors: Option<bool>,
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passed,
    /// It ran and its decision differs from what it expects.
    Failed,
    /// It could not run: its file, setup or access does not parse or apply.
    Error,
}

impl Status {
    /// `pass`, `fail` or `error`, as the JSON report spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "pass",
            Status::Failed => "fail",
            Status::Error => "error",
        }
    }
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub why: String,
    pub status: Status,
    /// Empty when the case passed.
    pub failures: Vec<String>,
    /// The decision the case expects; `None` when its file did not parse.
    pub expected: Option<Effect>,
    pub decision: Option<Decision>,
    /// How long the case took: applying its setup, deciding and comparing.
    pub duration: Duration,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.status == Status::Passed
    }

    /// A case that could not run.
    fn error(file: &str, name: String, why: String, failures: Vec<String>) -> CaseResult {
        CaseResult {
            file: file.to_owned(),
            name,
            why,
            status: Status::Error,
            failures,
            expected: None,
            decision: None,
            duration: Duration::ZERO,
        }
    }
}

/// Runs every test file the bundle's manifest names. A file that cannot be read or parsed yields
/// one result with [`Status::Error`] naming the file and the problem.
pub fn run_bundle_tests(bundle: &Bundle) -> Vec<CaseResult> {
    run_bundle_tests_filtered(bundle, None)
}

/// As [`run_bundle_tests`], only the cases whose name `filter` selects (a file that does not parse
/// is reported whatever the filter).
pub fn run_bundle_tests_filtered(bundle: &Bundle, filter: Option<&Filter>) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for file in &bundle.manifest().tests {
        match bundle.files().get(file) {
            Some(bytes) => results.extend(run_tests(bundle, file, bytes, filter)),
            None => results.push(CaseResult::error(
                file,
                "(file)".into(),
                String::new(),
                vec![CaseError::File {
                    path: file.clone(),
                    reason: "not in the bundle".into(),
                }
                .to_string()],
            )),
        }
    }
    results
}

/// Runs the cases of one test file, `path` being how results name it, against `bundle` (the file
/// need not be one the manifest names).
pub fn run_tests(
    bundle: &Bundle,
    path: &str,
    bytes: &[u8],
    filter: Option<&Filter>,
) -> Vec<CaseResult> {
    match parse_file(path, bytes) {
        Ok(cases) => cases
            .into_iter()
            .enumerate()
            .filter(|(_, case)| filter.is_none_or(|f| f.matches(&case.name)))
            .map(|(index, case)| run_case(bundle, path, index, case))
            .collect(),
        Err(e) => vec![CaseResult::error(
            path,
            "(file)".into(),
            String::new(),
            vec![e.to_string()],
        )],
    }
}

/// A case with its transactions merged over the file's defaults, not yet parsed.
struct PreparedCase {
    name: String,
    why: String,
    setup: Vec<Value>,
    access: Value,
    expect: Expectation,
}

fn parse_file(file: &str, bytes: &[u8]) -> Result<Vec<PreparedCase>, CaseError> {
    let parsed: CaseFile = crate::yaml::parse(bytes).map_err(|e| CaseError::Field {
        path: file.to_owned(),
        field: e.field,
        reason: e.reason,
    })?;
    let defaults = parsed.defaults;
    Ok(parsed
        .cases
        .into_iter()
        .map(|c| PreparedCase {
            name: c.name,
            why: c.why,
            setup: c
                .setup
                .into_iter()
                .map(|s| merged(defaults.consent.as_ref(), s, "consent"))
                .collect(),
            access: merged(defaults.access.as_ref(), c.access, "access"),
            expect: c.expect,
        })
        .collect())
}

/// `over` deep-merged over `base` (objects merge key by key; anything else replaces), with `kind`
/// filled in when absent.
fn merged(base: Option<&Value>, over: Value, kind: &str) -> Value {
    let mut value = match base {
        Some(base) => deep_merge(base.clone(), over),
        None => over,
    };
    if let Value::Object(map) = &mut value {
        map.entry("kind").or_insert_with(|| Value::from(kind));
    }
    value
}

/// `over` merged into `base`: objects merge key by key, recursively; anything else in `over` replaces.
pub fn deep_merge(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Object(mut base), Value::Object(over)) => {
            for (k, v) in over {
                let merged = match base.remove(&k) {
                    Some(b) => deep_merge(b, v),
                    None => v,
                };
                base.insert(k, merged);
            }
            Value::Object(base)
        }
        (_, over) => over,
    }
}

/// A case ready to decide: its consent state applied and its request parsed.
pub struct CaseInput {
    pub file: String,
    pub name: String,
    pub registry: InMemoryConsentRegistry,
    pub request: AccessRequest,
}

/// Every well-formed case of the bundle, ready to decide (malformed ones are skipped here; the
/// runner reports them).
pub fn case_inputs(bundle: &Bundle) -> Vec<CaseInput> {
    let mut inputs = Vec::new();
    for file in &bundle.manifest().tests {
        let Some(Ok(cases)) = bundle.files().get(file).map(|b| parse_file(file, b)) else {
            continue;
        };
        for (index, case) in cases.into_iter().enumerate() {
            if let Ok((input, _, _)) = prepare(file, index, case) {
                inputs.push(input);
            }
        }
    }
    inputs
}

/// Applies a case's setup and parses its access; a problem is a failed result naming the place.
fn prepare(
    file: &str,
    index: usize,
    case: PreparedCase,
) -> Result<(CaseInput, String, Expectation), Box<CaseResult>> {
    let mut failures = Vec::new();
    let at = format!("cases[{index}]");
    let mut registry = InMemoryConsentRegistry::new();
    for (i, step) in case.setup.into_iter().enumerate() {
        match Transaction::from_value(step) {
            Ok(Transaction::Access(_) | Transaction::Governance(_)) => failures.push(format!(
                "{at}.setup[{i}]: setup holds consent, representation and agreement transactions only"
            )),
            Ok(tx) => {
                if let Err(e) = registry.apply_state(&tx) {
                    failures.push(format!("{at}.setup[{i}]: {e}"));
                }
            }
            Err(e) => failures.push(format!("{at}.setup[{i}]: {e}")),
        }
    }
    let mut access = case.access;
    if let Value::Object(map) = &mut access {
        map.entry("id")
            .or_insert_with(|| Value::from(format!("case-{}", index + 1)));
    }
    let request = match Transaction::from_value(access) {
        Ok(Transaction::Access(r)) => Some(*r),
        Ok(_) => {
            failures.push(format!("{at}.access: must be an access transaction"));
            None
        }
        Err(e) => {
            failures.push(format!("{at}.access: {e}"));
            None
        }
    };
    match request {
        Some(request) if failures.is_empty() => Ok((
            CaseInput {
                file: file.to_owned(),
                name: case.name,
                registry,
                request,
            },
            case.why,
            case.expect,
        )),
        _ => Err(Box::new(CaseResult::error(
            file, case.name, case.why, failures,
        ))),
    }
}

fn run_case(bundle: &Bundle, file: &str, index: usize, case: PreparedCase) -> CaseResult {
    let started = Instant::now();
    let mut result = match prepare(file, index, case) {
        Ok((input, why, expect)) => {
            let decision = bundle.decide(&input.request, &input.registry, 0);
            let failures = [
                check(&expect, &decision),
                crate::rules::disagreements(bundle, &input.request, &input.registry),
            ]
            .concat();
            CaseResult {
                file: input.file,
                name: input.name,
                why,
                status: if failures.is_empty() {
                    Status::Passed
                } else {
                    Status::Failed
                },
                failures,
                expected: Some(expect.decision),
                decision: Some(decision),
                duration: Duration::ZERO,
            }
        }
        Err(failed) => *failed,
    };
    result.duration = started.elapsed();
    result
}

/// Whether some reason is `rule`, given as a rule id or as `module#rule`.
fn names_rule(decision: &Decision, rule: &str) -> bool {
    decision
        .reasons
        .iter()
        .any(|r| r.rule == rule || format!("{}#{}", r.module, r.rule) == rule)
}

/// Compares a decision with an expectation; each mismatch is one line.
pub fn check(expect: &Expectation, decision: &Decision) -> Vec<String> {
    let mut failures = Vec::new();
    if decision.decision != expect.decision {
        failures.push(format!(
            "expected {}, got {}",
            expect.decision, decision.decision
        ));
    }
    for citation in &expect.citations {
        if !decision.reasons.iter().any(|r| &r.citation == citation) {
            failures.push(format!("no reason cites `{citation}`"));
        }
    }
    for rule in &expect.rules {
        if !names_rule(decision, rule) {
            failures.push(format!("no reason names rule `{rule}`"));
        }
    }
    for kind in &expect.obligations {
        if !decision.obligations.iter().any(|o| &o.kind == kind) {
            failures.push(format!("no obligation of kind `{kind}`"));
        }
    }
    for rule in &expect.absent_rules {
        if names_rule(decision, rule) {
            failures.push(format!(
                "a reason names rule `{rule}`, which must be absent"
            ));
        }
    }
    for kind in &expect.absent_obligations {
        if decision.obligations.iter().any(|o| &o.kind == kind) {
            failures.push(format!(
                "an obligation of kind `{kind}` is present, which must be absent"
            ));
        }
    }
    match expect.errors {
        Some(true) if decision.errors.is_empty() => {
            failures.push("expected evaluation errors, got none".into())
        }
        Some(false) if !decision.errors.is_empty() => failures.push(format!(
            "expected no evaluation errors, got: {}",
            decision
                .errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )),
        _ => {}
    }
    if !failures.is_empty() {
        let reasons: Vec<String> = decision
            .reasons
            .iter()
            .map(|r| format!("{}#{} ({})", r.module, r.rule, r.citation))
            .collect();
        failures.push(format!("decision reasons: [{}]", reasons.join(", ")));
        if !decision.errors.is_empty() && expect.errors.is_none() {
            failures.push(format!(
                "decision errors: {}",
                decision
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.module, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    failures
}

#[cfg(test)]
mod tests;
