//! The offline commands. Each returns the exit code, or a [`Failure`] carrying a one-line message.

use accord_engine::bundle::BundleError;
use accord_engine::cases::{report, run_bundle_tests_filtered, run_tests, Coverage, Filter};
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

/// `--policies`, else `./policies` when it holds a manifest; `None`: the built-in bundle.
pub fn policies_source(given: Option<PathBuf>) -> Option<PathBuf> {
    if given.is_some() {
        return given;
    }
    let local = PathBuf::from("policies");
    local.join("manifest.yaml").is_file().then_some(local)
}

/// The bundle directory a command that reads or writes files works on: the one given, else
/// `./policies` when it holds a manifest.
pub fn policies_dir(given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    policies_source(given).ok_or_else(|| {
        bad_input(
            "no bundle directory given, and ./policies holds no manifest.yaml; \
             `accord init DIR` writes the default bundle to DIR/policies",
        )
    })
}

/// The bundle of `source` ([`policies_source`]), or the built-in one.
fn load_bundle_from(source: Option<&Path>, code_on_invalid: u8) -> Result<Bundle, Failure> {
    match source {
        Some(dir) => load_bundle(dir, code_on_invalid),
        None => accord_server::defaults::bundle().map_err(|e| Failure {
            code: code_on_invalid,
            message: format!("built-in policy bundle: {e}"),
        }),
    }
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

/// `accord check`: the decision as one JSON line, or with `explain` the explanation as text.
pub fn check(
    tx: &Path,
    policies: Option<&Path>,
    state: Option<&Path>,
    explain: bool,
) -> Result<ExitCode, Failure> {
    let text = read_input(tx)?;
    let request =
        AccessRequest::from_json(&text).map_err(|e| bad_input(format!("{}: {e}", tx.display())))?;
    let consents = match state {
        Some(path) => load_state(path)?,
        None => accord_engine::InMemoryConsentRegistry::new(),
    };
    let bundle = load_bundle_from(policies, BAD_INPUT)?;
    let allowed = if explain {
        let explanation = bundle.explain(&request, &consents, 0);
        let mut out = Out::new();
        out.write(&explanation.to_string())?;
        out.flush()?;
        explanation.decision.is_allow()
    } else {
        let decision = bundle.decide(&request, &consents, 0);
        print_line(&decision.to_json())?;
        decision.is_allow()
    };
    Ok(if allowed {
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

/// A genesis file, or (`None`) the built-in dev genesis with the built-in bundle.
pub struct GenesisSource(pub Option<PathBuf>);

impl GenesisSource {
    pub fn load(&self) -> Result<Genesis, Failure> {
        match &self.0 {
            Some(path) => Genesis::load(path),
            None => accord_server::defaults::dev_genesis(),
        }
        .map_err(|e| bad_input(e.to_string()))
    }

    /// How messages name it.
    pub fn shown(&self) -> String {
        self.0.as_ref().map_or_else(
            || accord_server::defaults::DEV_GENESIS_NAME.to_owned(),
            |p| p.display().to_string(),
        )
    }

    /// Its initial bundle's content: the directory the file names, or the built-in bundle.
    pub fn bundle_files(&self) -> Result<accord_engine::BundleFiles, Failure> {
        match &self.0 {
            Some(_) => {
                let dir = self.load()?.bundle_dir;
                accord_engine::BundleFiles::read_dir(&dir)
                    .map_err(|e| bad_input(format!("policy bundle {}: {e}", dir.display())))
            }
            None => accord_server::defaults::bundle_files()
                .map_err(|e| bad_input(format!("built-in policy bundle: {e}"))),
        }
    }

    /// The genesis and its bundle; `policies`, when given, replaces the genesis bundle.
    pub fn load_with_bundle(
        &self,
        policies: Option<&Path>,
    ) -> Result<(Genesis, Arc<Bundle>), Failure> {
        let genesis = self.load()?;
        let bundle = match (policies, &self.0) {
            (Some(dir), _) => load_bundle(dir, BAD_INPUT)?,
            (None, Some(_)) => load_bundle(&genesis.bundle_dir, BAD_INPUT)?,
            (None, None) => load_bundle_from(None, BAD_INPUT)?,
        };
        Ok((genesis, Arc::new(bundle)))
    }
}

pub fn replay(
    blocks_path: &Path,
    genesis: &GenesisSource,
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
    let (genesis, bundle) = genesis.load_with_bundle(policies)?;
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

/// Standard output that a closed pipe silences: once the reader has gone (`accord test -v | head`),
/// further lines are dropped and the command still finishes with its own exit code.
pub struct Out {
    out: std::io::StdoutLock<'static>,
    closed: bool,
}

impl Out {
    pub fn new() -> Out {
        Out {
            out: std::io::stdout().lock(),
            closed: false,
        }
    }

    /// Writes `text` as it is.
    pub fn write(&mut self, text: &str) -> Result<(), Failure> {
        if self.closed {
            return Ok(());
        }
        match self.out.write_all(text.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.map_err(|e| bad_input(format!("writing output: {e}"))),
        }
    }

    /// Writes `text` and a newline.
    pub fn line(&mut self, text: &str) -> Result<(), Failure> {
        self.write(text)?;
        self.write("\n")
    }

    pub fn flush(&mut self) -> Result<(), Failure> {
        if self.closed {
            return Ok(());
        }
        match self.out.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other.map_err(|e| bad_input(format!("writing output: {e}"))),
        }
    }
}

/// How `accord test` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    /// One line per failure (per case with `-v`) and a summary.
    Text,
    /// One JSON document: the bundle, a summary, every case and the coverage.
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

/// What `accord test` was asked.
pub struct TestOptions {
    /// A bundle directory, or one test file inside a bundle.
    pub path: PathBuf,
    pub verbose: bool,
    pub filter: Option<String>,
    pub format: TestFormat,
    pub coverage: bool,
    pub min_coverage: Option<f64>,
}

/// The bundle directory holding `file`: the nearest ancestor directory with a manifest, and the
/// file's path relative to it.
fn bundle_of_file(file: &Path) -> Result<(PathBuf, String), Failure> {
    let absolute =
        std::fs::canonicalize(file).map_err(|e| bad_input(format!("{}: {e}", file.display())))?;
    for dir in absolute.ancestors().skip(1) {
        if dir
            .join(accord_engine::bundle::manifest::MANIFEST)
            .is_file()
        {
            let relative = absolute
                .strip_prefix(dir)
                .map_err(|e| bad_input(format!("{}: {e}", file.display())))?;
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            return Ok((dir.to_path_buf(), name));
        }
    }
    Err(bad_input(format!(
        "{}: not inside a policy bundle (no {} in any directory above it)",
        file.display(),
        accord_engine::bundle::manifest::MANIFEST
    )))
}

pub fn test(options: &TestOptions) -> Result<ExitCode, Failure> {
    if let Some(min) = options.min_coverage {
        if !(0.0..=100.0).contains(&min) {
            return Err(bad_input(format!(
                "--min-coverage {min}: must be a percentage from 0 to 100"
            )));
        }
    }
    let filter = options.filter.as_deref().map(Filter::new);
    let (bundle, results) = if options.path.is_file() {
        let (dir, name) = bundle_of_file(&options.path)?;
        let bytes = std::fs::read(&options.path)
            .map_err(|e| bad_input(format!("{}: {e}", options.path.display())))?;
        let bundle = load_bundle(&dir, FAILED)?;
        let results = run_tests(&bundle, &name, &bytes, filter.as_ref());
        (bundle, results)
    } else {
        let bundle = load_bundle(&options.path, FAILED)?;
        let results = run_bundle_tests_filtered(&bundle, filter.as_ref());
        (bundle, results)
    };
    let info = report::RunInfo {
        bundle: bundle.name(),
        version: bundle.version(),
        filter: options.filter.as_deref(),
    };
    let coverage = (options.coverage || options.min_coverage.is_some())
        .then(|| Coverage::of(&bundle, &results));
    let summary = report::Summary::of(&results);
    let mut out = Out::new();
    match options.format {
        TestFormat::Text => {
            out.line(&report::text_header(&info, results.len()))?;
            for r in &results {
                for line in report::text_case(r, options.verbose) {
                    out.line(&line)?;
                }
            }
            if let Some(coverage) = &coverage {
                for line in report::text_coverage(coverage, options.verbose) {
                    out.line(&line)?;
                }
            }
            out.line(&report::text_summary(&summary))?;
        }
        TestFormat::Json => {
            let value = report::json(&info, &results, coverage.as_ref());
            out.line(&serde_json::to_string_pretty(&value).unwrap_or_default())?;
        }
        TestFormat::Junit => {
            out.write(&report::junit(&info, &results))?;
            // Standard output stays one XML document; the coverage goes to standard error.
            if let Some(coverage) = &coverage {
                for line in report::text_coverage(coverage, options.verbose) {
                    eprintln!("{line}");
                }
            }
        }
    }
    out.flush()?;
    if results.is_empty() {
        eprintln!(
            "accord: no test case{}",
            options
                .filter
                .as_deref()
                .map(|f| format!(" matches --filter `{f}`"))
                .unwrap_or_else(|| " in the bundle".into())
        );
        return Ok(ExitCode::from(FAILED));
    }
    if let (Some(min), Some(coverage)) = (options.min_coverage, &coverage) {
        if coverage.percent() < min {
            eprintln!(
                "accord: coverage {:.1}% is below --min-coverage {min}",
                coverage.percent()
            );
            return Ok(ExitCode::from(FAILED));
        }
    }
    Ok(if summary.passed == summary.total {
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

/// Cedar's formatter settings: those of the `cedar format` command (80 columns, 2 spaces).
fn cedar_format_config() -> cedar_policy_formatter::Config {
    cedar_policy_formatter::Config {
        line_width: 80,
        indent_width: 2,
    }
}

/// The offset of the first labelled span in `diagnostic`, its related diagnostics or its sources.
fn first_label(diagnostic: &dyn miette::Diagnostic) -> Option<usize> {
    if let Some(label) = diagnostic.labels().and_then(|mut labels| labels.next()) {
        return Some(label.offset());
    }
    diagnostic
        .related()
        .into_iter()
        .flatten()
        .chain(diagnostic.diagnostic_source())
        .find_map(first_label)
}

/// `text` as Cedar's formatter writes it; the error is one line naming the problem and, where
/// Cedar gives one, the line and column.
pub fn format_cedar(text: &str) -> Result<String, String> {
    cedar_policy_formatter::policies_str_to_pretty(text, &cedar_format_config()).map_err(|e| {
        let diagnostic: &dyn miette::Diagnostic = e.as_ref();
        let mut parts: Vec<String> = e.chain().map(|cause| cause.to_string()).collect();
        parts.dedup();
        let mut message = parts.join(": ").replace('\n', " ");
        if let Some(offset) = first_label(diagnostic) {
            let before = text.get(..offset).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            message = format!("line {line}, column {column}: {message}");
        }
        message
    })
}

/// The Cedar files `path` stands for: the file itself, or every Cedar module the manifest of the
/// bundle directory names, in manifest order.
fn cedar_files(path: &Path) -> Result<Vec<PathBuf>, Failure> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let manifest_path = path.join(accord_engine::bundle::manifest::MANIFEST);
    let bytes = std::fs::read(&manifest_path)
        .map_err(|e| bad_input(format!("{}: {e}", manifest_path.display())))?;
    let manifest = accord_engine::bundle::Manifest::parse(&bytes)
        .map_err(|e| bad_input(format!("policy bundle {}: {e}", path.display())))?;
    Ok(manifest
        .modules
        .iter()
        .filter(|m| m.kind == accord_engine::bundle::ModuleKind::Cedar)
        .map(|m| path.join(&m.file))
        .collect())
}

/// `accord fmt`: rewrites each Cedar file of the bundle as Cedar's formatter writes it, naming the
/// files it changed; with `check`, changes nothing and names the files that are not formatted
/// (exit 1 when there is one).
pub fn fmt(path: &Path, check: bool) -> Result<ExitCode, Failure> {
    let mut out = Out::new();
    let mut unformatted = 0;
    for file in cedar_files(path)? {
        let shown = file.display();
        let text =
            std::fs::read_to_string(&file).map_err(|e| bad_input(format!("{shown}: {e}")))?;
        let formatted = format_cedar(&text).map_err(|e| bad_input(format!("{shown}: {e}")))?;
        if formatted == text {
            continue;
        }
        unformatted += 1;
        if check {
            out.line(&format!("not formatted: {shown}"))?;
        } else {
            std::fs::write(&file, formatted).map_err(|e| bad_input(format!("{shown}: {e}")))?;
            out.line(&format!("formatted {shown}"))?;
        }
    }
    out.flush()?;
    Ok(if check && unformatted > 0 {
        ExitCode::from(FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
