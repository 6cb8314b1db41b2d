//! A bundle's own test cases (`tests/*.yaml`, named in the manifest), run by `accord test`.
//!
//! Each case applies its consent transactions to a fresh registry, decides its access transaction,
//! and compares the decision with what the case expects. A file that does not parse is reported as
//! a failure of that file, never skipped.

mod err;

pub use err::CaseError;

use crate::bundle::Bundle;
use crate::consent::InMemoryConsentRegistry;
use crate::decision::{Decision, Effect};
use crate::transaction::{AccessRequest, Transaction};
use serde::Deserialize;
use serde_json::Value;

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

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub why: String,
    /// Empty when the case passed.
    pub failures: Vec<String>,
    pub decision: Option<Decision>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every test file the bundle's manifest names. A file that cannot be read or parsed yields
/// one failed result naming the file and the problem.
pub fn run_bundle_tests(bundle: &Bundle) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for file in &bundle.manifest().tests {
        match parse_file(bundle, file) {
            Ok(cases) => {
                for (index, case) in cases.into_iter().enumerate() {
                    results.push(run_case(bundle, file, index, case));
                }
            }
            Err(e) => results.push(CaseResult {
                file: file.clone(),
                name: "(file)".into(),
                why: String::new(),
                failures: vec![e.to_string()],
                decision: None,
            }),
        }
    }
    results
}

/// A case with its transactions merged over the file's defaults, not yet parsed.
struct PreparedCase {
    name: String,
    why: String,
    setup: Vec<Value>,
    access: Value,
    expect: Expectation,
}

fn parse_file(bundle: &Bundle, file: &str) -> Result<Vec<PreparedCase>, CaseError> {
    let bytes = bundle.files().get(file).ok_or_else(|| CaseError::File {
        path: file.to_owned(),
        reason: "not in the bundle".into(),
    })?;
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
        let Ok(cases) = parse_file(bundle, file) else {
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
        _ => Err(Box::new(CaseResult {
            file: file.to_owned(),
            name: case.name,
            why: case.why,
            failures,
            decision: None,
        })),
    }
}

fn run_case(bundle: &Bundle, file: &str, index: usize, case: PreparedCase) -> CaseResult {
    match prepare(file, index, case) {
        Ok((input, why, expect)) => {
            let decision = bundle.decide(&input.request, &input.registry, 0);
            CaseResult {
                file: input.file,
                name: input.name,
                why,
                failures: [
                    check(&expect, &decision),
                    crate::rules::disagreements(bundle, &input.request, &input.registry),
                ]
                .concat(),
                decision: Some(decision),
            }
        }
        Err(failed) => *failed,
    }
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
            "expected {:?}, got {:?}",
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
