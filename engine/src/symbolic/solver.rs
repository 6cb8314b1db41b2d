//! The SMT solver the comparison runs on: cvc5, a separate process spoken to over its standard
//! input and output, found through `CVC5` (a path) or on `PATH`, and bounded per query.

use cedar_policy_symcc::solver::LocalSolver;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;
use tokio::process::Command;

/// The longest one solver query may take unless configured otherwise.
pub const DEFAULT_QUERY_LIMIT: Duration = Duration::from_secs(10);

/// What the solver's own limit leaves for the answer to arrive: past `query_limit` plus this, the
/// query is abandoned and its solver process killed.
const ANSWER_GRACE: Duration = Duration::from_millis(250);

/// Which solver to run and how long each query may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolverSettings {
    /// The cvc5 executable: a path, or a name looked up on `PATH`.
    pub program: PathBuf,
    /// The time limit of each query (one direction of one action).
    pub query_limit: Duration,
}

impl Default for SolverSettings {
    /// `cvc5` on `PATH`, [`DEFAULT_QUERY_LIMIT`].
    fn default() -> Self {
        SolverSettings {
            program: PathBuf::from("cvc5"),
            query_limit: DEFAULT_QUERY_LIMIT,
        }
    }
}

impl SolverSettings {
    /// The solver named by the `CVC5` environment variable (the symbolic compiler's own
    /// convention), else `cvc5` on `PATH`; [`DEFAULT_QUERY_LIMIT`].
    pub fn from_env() -> Self {
        let program = std::env::var_os("CVC5")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from("cvc5"), PathBuf::from);
        SolverSettings {
            program,
            ..SolverSettings::default()
        }
    }

    /// How long a query is waited for before it is abandoned.
    pub(crate) fn deadline(&self) -> Duration {
        self.query_limit.saturating_add(ANSWER_GRACE)
    }

    /// The solver's own per-query limit, in whole milliseconds (at least 1).
    fn limit_ms(&self) -> u128 {
        self.query_limit.as_millis().max(1)
    }

    /// A fresh solver process, killed when dropped (an abandoned query must not keep running).
    pub(crate) fn spawn(&self) -> Result<LocalSolver, String> {
        let mut command = Command::new(&self.program);
        command
            .arg("--lang")
            .arg("smt")
            .arg(OsString::from(format!("--tlimit-per={}", self.limit_ms())))
            .kill_on_drop(true);
        LocalSolver::from_command(&mut command).map_err(|e| self.spawn_error(&e.to_string()))
    }

    fn spawn_error(&self, reason: &str) -> String {
        format!(
            "the SMT solver `{}` could not be started ({reason}); install cvc5 or set CVC5 to its \
             path",
            self.program.display()
        )
    }

    /// The solver's version as it reports it (`cvc5 1.0.3`), or why it cannot be run.
    pub(crate) async fn version(&self) -> Result<String, String> {
        let run = Command::new(&self.program)
            .arg("--version")
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(self.deadline(), run)
            .await
            .map_err(|_| self.spawn_error("`--version` did not answer"))?
            .map_err(|e| self.spawn_error(&e.to_string()))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let first = text.lines().next().unwrap_or("").trim();
        match first.split_once(" version ") {
            Some((_, version)) if first.contains("cvc5") => Ok(format!("cvc5 {}", version.trim())),
            _ if output.status.success() && !first.is_empty() => Ok(first.to_owned()),
            _ => Err(self.spawn_error("`--version` printed no version")),
        }
    }
}
