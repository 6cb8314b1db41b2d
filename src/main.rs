//! `accord`: a thin command line over the engine (CONTRACT §6).
//!
//! Exit codes: 0 success, 1 a check or test failed (a deny, a failing case, an invalid bundle),
//! 2 bad input (unreadable or malformed files). Errors are one line naming file, field and reason.

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "accord",
    version,
    about = "Compliance-as-code sidecar for health-data ledgers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide one access transaction; exits 0 on allow, 1 on deny.
    Check {
        /// The transaction (JSON); `-` reads standard input.
        tx: PathBuf,
        #[command(flatten)]
        policies: PoliciesArg,
    },
    /// Feed a JSON array of blocks through a fresh in-memory state, printing every decision and,
    /// after each block, its state root, one JSON object per line.
    Replay {
        blocks: PathBuf,
        #[command(flatten)]
        policies: PoliciesArg,
    },
    /// Run the test cases shipped with a policy bundle.
    Test {
        /// The bundle directory (default: the bundled `policies/`).
        dir: Option<PathBuf>,
        /// Print every case, not only failures.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Run the sidecar: the HTTP API a ledger node calls (docs/server.md). Stops on SIGTERM/SIGINT
    /// after finishing in-flight requests.
    Serve(Box<accord::server::ServeArgs>),
    /// Parse and type-check a policy bundle (Cedar against its schema, Rhai compiled).
    Validate {
        /// The bundle directory (default: the bundled `policies/`).
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct PoliciesArg {
    /// Policy bundle directory (default: `./policies`, else the repository's bundled one).
    #[arg(long, env = "ACCORD_POLICIES")]
    policies: Option<PathBuf>,
}

impl PoliciesArg {
    fn dir(&self) -> PathBuf {
        commands::policies_dir(self.policies.clone())
    }
}

fn serve(args: accord::server::ServeArgs) -> Result<ExitCode, commands::Failure> {
    use accord::server::StartError;
    accord::server::run(args, commands::policies_dir(None))
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| commands::Failure {
            code: match e {
                StartError::Config(_) | StartError::Bundle { .. } => 2,
                _ => 1,
            },
            message: format!("serve: {e}"),
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { tx, policies } => commands::check(&tx, &policies.dir()),
        Command::Replay { blocks, policies } => commands::replay(&blocks, &policies.dir()),
        Command::Test { dir, verbose } => commands::test(&commands::policies_dir(dir), verbose),
        Command::Validate { dir } => commands::validate(&commands::policies_dir(dir)),
        Command::Serve(args) => serve(*args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("accord: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
