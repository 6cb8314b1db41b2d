//! The offline commands. Each returns the exit code, or a [`Failure`] carrying a one-line message.

use accord_engine::bundle::BundleError;
use accord_engine::cases::run_bundle_tests;
use accord_engine::ledger::Block;
use accord_engine::{AccessRequest, Bundle};
use accord_governance::{Genesis, StateMachine, TxResult};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// A command that could not do its job: exit `code` with `message` on standard error.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

/// Exit code 1: the check or test ran and failed.
pub const FAILED: u8 = 1;
/// Exit code 2: bad input.
pub const BAD_INPUT: u8 = 2;

pub fn bad_input(message: impl Into<String>) -> Failure {
    Failure {
        code: BAD_INPUT,
        message: message.into(),
    }
}

/// `--policies`, else `./policies` when it holds a manifest, else the repository's bundle.
pub fn policies_dir(given: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = given {
        return dir;
    }
    let local = PathBuf::from("policies");
    if local.join("manifest.yaml").is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

fn load_bundle(dir: &Path, code_on_invalid: u8) -> Result<Bundle, Failure> {
    Bundle::load(dir).map_err(|e| {
        let code = match e {
            BundleError::Io { .. } => BAD_INPUT,
            _ => code_on_invalid,
        };
        Failure {
            code,
            message: format!("policy bundle {}: {e}", dir.display()),
        }
    })
}

pub fn read_input(path: &Path) -> Result<String, Failure> {
    let mut text = String::new();
    let result = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    result.map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    Ok(text)
}

pub fn print_line(value: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}").map_err(|e| bad_input(format!("writing output: {e}")))
}

pub fn check(tx: &Path, policies: &Path, state: Option<&Path>) -> Result<ExitCode, Failure> {
    let text = read_input(tx)?;
    let request =
        AccessRequest::from_json(&text).map_err(|e| bad_input(format!("{}: {e}", tx.display())))?;
    let consents = match state {
        Some(path) => load_state(path)?,
        None => accord_engine::InMemoryConsentRegistry::new(),
    };
    let bundle = load_bundle(policies, BAD_INPUT)?;
    let decision = bundle.decide(&request, &consents, 0);
    print_line(&decision.to_json())?;
    Ok(if decision.is_allow() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED)
    })
}

/// The consent, representation and agreement state that a JSON array of such transactions builds,
/// applied in order to an empty state; the first that fails is named with its index.
fn load_state(path: &Path) -> Result<accord_engine::InMemoryConsentRegistry, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| bad_input(format!("{shown}: {e}")))?;
    let value = accord_engine::json::value_from_str(&text)
        .map_err(|e| bad_input(format!("{shown}: {e}")))?;
    let Value::Array(transactions) = value else {
        return Err(bad_input(format!(
            "{shown}: must be a JSON array of consent, representation and agreement transactions"
        )));
    };
    accord_engine::InMemoryConsentRegistry::from_transactions(&transactions)
        .map_err(|e| bad_input(format!("{shown}: {e}")))
}

/// The dev genesis shipped with the repository, used when `--genesis` is not given.
pub fn genesis_path(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("governance/genesis.dev.yaml")
    })
}

/// Loads the genesis and its bundle; `policies`, when given, replaces the genesis bundle.
pub fn load_genesis(
    genesis: &Path,
    policies: Option<&Path>,
) -> Result<(Genesis, Arc<Bundle>), Failure> {
    let genesis = Genesis::load(genesis).map_err(|e| bad_input(e.to_string()))?;
    let dir = policies.map_or_else(|| genesis.bundle_dir.clone(), Path::to_path_buf);
    let bundle = Arc::new(load_bundle(&dir, BAD_INPUT)?);
    Ok((genesis, bundle))
}

pub fn replay(
    blocks_path: &Path,
    genesis: &Path,
    policies: Option<&Path>,
) -> Result<ExitCode, Failure> {
    let text = read_input(blocks_path)?;
    let shown = blocks_path.display();
    let value = accord_engine::json::value_from_str(&text)
        .map_err(|e| bad_input(format!("{shown}: {e}")))?;
    let Value::Array(blocks) = value else {
        return Err(bad_input(format!(
            "{shown}: must be a JSON array of blocks"
        )));
    };
    let (genesis, bundle) = load_genesis(genesis, policies)?;
    let mut machine = StateMachine::new(&genesis, bundle);
    for (i, block) in blocks.into_iter().enumerate() {
        let at = format!("{shown}: blocks[{i}]");
        let block = Block::from_value(block).map_err(|e| bad_input(format!("{at}: {e}")))?;
        let answer = machine
            .apply_block(block)
            .map_err(|e| bad_input(format!("{at}: {e}")))?;
        for result in &answer.results {
            match result {
                TxResult::Decided(decision) => print_line(&decision.to_json())?,
                TxResult::Applied { applied, .. }
                    if matches!(
                        applied.kind.as_str(),
                        "consent" | "representation" | "agreement"
                    ) => {}
                other => print_line(&serde_json::to_string(other).unwrap_or_default())?,
            }
        }
        let mut line = json!({ "height": answer.height, "state_root": answer.state_root });
        if !answer.activated.is_empty() {
            line["activated"] = json!(answer.activated);
        }
        print_line(&line.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn test(dir: &Path, verbose: bool) -> Result<ExitCode, Failure> {
    let bundle = load_bundle(dir, FAILED)?;
    let results = run_bundle_tests(&bundle);
    let mut out = std::io::stdout().lock();
    let mut write = |line: String| {
        writeln!(out, "{line}").map_err(|e| bad_input(format!("writing output: {e}")))
    };
    write(format!(
        "running {} cases of bundle {} ({})",
        results.len(),
        bundle.name(),
        bundle.version()
    ))?;
    let mut failed = 0;
    for r in &results {
        if r.passed() {
            if verbose {
                write(format!("ok   {} :: {}", r.file, r.name))?;
            }
        } else {
            failed += 1;
            write(format!("FAIL {} :: {}", r.file, r.name))?;
            for f in &r.failures {
                write(format!("       {f}"))?;
            }
            if !r.why.is_empty() {
                write(format!("       why: {}", r.why))?;
            }
        }
    }
    let passed = results.len() - failed;
    write(format!("test result: {passed} passed, {failed} failed"))?;
    Ok(if failed == 0 && !results.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED)
    })
}

pub fn validate(dir: &Path, deny_warnings: bool) -> Result<ExitCode, Failure> {
    let mut errors = accord_engine::bundle::unnamed_files(dir).unwrap_or_default();
    let (bundle, review) = match Bundle::load(dir) {
        Ok(bundle) => {
            let review = bundle.review();
            (Some(bundle), review)
        }
        Err(BundleError::Io { path, reason }) => {
            return Err(bad_input(format!(
                "policy bundle {}: {path}: {reason}",
                dir.display()
            )))
        }
        // Every problem on a line of its own.
        Err(e) => {
            let errors = match e {
                BundleError::Cedar(accord_engine::cedar::CedarError::Validation { problems })
                | BundleError::Rules(accord_engine::rules::RuleError::Checks { problems }) => {
                    problems
                }
                other => other.to_string().lines().map(str::to_owned).collect(),
            };
            let warnings = Vec::new();
            (None, accord_engine::bundle::Review { errors, warnings })
        }
    };
    errors.extend(review.errors);
    // Diagnostics on standard error, the verdict of a valid bundle on standard output.
    let mut err = std::io::stderr().lock();
    let mut diagnostic = |line: String| {
        writeln!(err, "{line}").map_err(|e| bad_input(format!("writing output: {e}")))
    };
    for line in &errors {
        diagnostic(format!("error: {line}"))?;
    }
    for line in &review.warnings {
        diagnostic(format!("warning: {line}"))?;
    }
    let warnings = review.warnings.len();
    let failed = !errors.is_empty() || (deny_warnings && warnings > 0);
    match bundle {
        Some(bundle) if !failed => print_line(&format!(
            "ok: bundle {} {}: {} Cedar policies valid against the schema, {} Rhai modules compiled and checked, {} jurisdictions; {warnings} warnings",
            bundle.name(),
            bundle.version(),
            bundle.cedar().len(),
            bundle.rules().modules().len(),
            bundle.jurisdictions().iter().count()
        ))?,
        _ => diagnostic(format!(
            "invalid: policy bundle {}: {} errors, {warnings} warnings{}",
            dir.display(),
            errors.len(),
            if deny_warnings && warnings > 0 && errors.is_empty() {
                " (--deny-warnings)"
            } else {
                ""
            }
        ))?,
    }
    Ok(if failed {
        ExitCode::from(FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
