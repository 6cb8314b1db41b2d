//! `accord`: a thin command line over the engine (docs/contract.md §6).
//!
//! Exit codes: 0 success, 1 a check or test failed (a deny, a failing case, an invalid bundle),
//! 2 bad input (unreadable or malformed files). Errors are one line naming file, field and reason.

mod backup;
mod commands;
mod governance;
mod init;
mod inspect;
mod log_verify;
mod node_client;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

// Decisions allocate many small, short-lived Cedar and Rhai values; mimalloc serves them faster
// than the system allocator (docs/architecture.md, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Print, instead of the decision's JSON line, why it is what it is: the derived facts,
        /// each Cedar policy of the slice and its outcome, each Rhai module and its verdicts, and
        /// how they combine.
        #[arg(long)]
        explain: bool,
        #[command(flatten)]
        policies: PoliciesArg,
        /// A JSON array of consent, representation and agreement transactions applied, in order,
        /// to an empty state before deciding (default: no state).
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Feed a JSON array of blocks through a fresh in-memory state, printing every decision and
    /// every governance outcome and, after each block, its state root, one JSON object per line.
    Replay {
        blocks: PathBuf,
        /// Consortium genesis (default: the built-in dev genesis, with the built-in bundle).
        #[arg(long, env = "ACCORD_GENESIS")]
        genesis: Option<PathBuf>,
        /// Policy bundle replacing the genesis bundle.
        #[arg(long, env = "ACCORD_POLICIES")]
        policies: Option<PathBuf>,
    },
    /// Create a new consortium in DIR: a genesis naming N members with fresh keys (key files in
    /// DIR/keys/, mode 0600), the default bundle in DIR/policies; prints the command that serves it.
    Init {
        /// A new or empty directory.
        dir: PathBuf,
        /// How many members (weight 1 each).
        #[arg(long, default_value_t = 3)]
        members: usize,
        /// The consortium's name (default: DIR's name).
        #[arg(long)]
        consortium: Option<String>,
    },
    /// Make a member key pair; the key file is written with mode 0600.
    Keygen {
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
        /// The member id the key signs for (e.g. `member/st-marys`).
        #[arg(long)]
        member: Option<String>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Also make an ML-DSA-65 key: a hybrid key, whose messages carry both signatures (as a
        /// genesis with `signature_scheme: ed25519+ml-dsa-65` requires).
        #[arg(long)]
        hybrid: bool,
    },
    /// Sign a governance message (JSON or YAML file, `-` for standard input) into a governance
    /// transaction.
    Sign {
        message: PathBuf,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        state: StateArgs,
        /// Fills `consortium` when the message leaves it out.
        #[arg(long, env = "ACCORD_CONSORTIUM")]
        consortium: Option<String>,
    },
    /// Make a signed proposal to activate the bundle in DIR (checked and tested first).
    Propose {
        dir: PathBuf,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        state: StateArgs,
        #[arg(long, env = "ACCORD_CONSORTIUM")]
        consortium: String,
        /// What voters read first.
        #[arg(long)]
        title: String,
    },
    /// Sign a vote on proposal ID (or on the proposal in --proposal-file); its content hash comes
    /// from --content, the signed proposal file, or the node.
    Vote {
        /// The proposal id (`sha256:…`); may be left out with --proposal-file.
        #[arg(required_unless_present = "proposal_file")]
        proposal: Option<String>,
        /// yes, no or abstain.
        #[arg(long, value_parser = ["yes", "no", "abstain"])]
        choice: String,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        state: StateArgs,
        /// The consortium (default: the proposal file's, else the node's).
        #[arg(long, env = "ACCORD_CONSORTIUM")]
        consortium: Option<String>,
        /// The proposal's content hash.
        #[arg(long)]
        content: Option<String>,
        /// The signed proposal transaction (from `accord propose` or `accord sign`).
        #[arg(long, conflicts_with = "content")]
        proposal_file: Option<PathBuf>,
    },
    /// Show a signed governance transaction in readable form: signer, what it changes and
    /// against what, and whether the signature verifies (exit 0 it does, 1 it does not).
    Inspect {
        /// The transaction file (from `accord sign`, `propose` or `vote`), `-` for standard input.
        tx: PathBuf,
        #[command(flatten)]
        sources: InspectArgs,
    },
    /// Read proposals: `show FILE|ID`, `diff ID`, `analyse ID`.
    Proposal {
        #[command(subcommand)]
        command: ProposalCommand,
    },
    /// Run the test cases shipped with a policy bundle; exits 0 when every case passes (and the
    /// coverage reaches `--min-coverage`), 1 otherwise.
    Test {
        /// The bundle directory, or one test file inside a bundle (default: `./policies`).
        path: Option<PathBuf>,
        /// Print every case with its time, not only failures (with --coverage, every rule side).
        #[arg(long, short)]
        verbose: bool,
        /// Only the cases whose name contains PATTERN; with `*`, `?` or `[..]`, whose whole name
        /// matches it as a glob. Case-sensitive.
        #[arg(long, value_name = "PATTERN")]
        filter: Option<String>,
        /// How to report: text, one JSON document, or JUnit XML for CI systems.
        #[arg(long, value_enum, default_value_t = commands::TestFormat::Text)]
        format: commands::TestFormat,
        /// Report which Cedar policies and Rhai rules some case made decide, on each side
        /// (allow for permits, deny for forbids and denies).
        #[arg(long)]
        coverage: bool,
        /// Fail (exit 1) when under N percent of rule sides are exercised; implies --coverage.
        #[arg(long, value_name = "N")]
        min_coverage: Option<f64>,
    },
    /// The decision log of a data directory, offline (the server must be stopped).
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Copy a data directory consistently to the new file OUT, while its node runs (asked over
    /// HTTP: `POST /v1/backup`) or while it is stopped (read directly).
    Backup {
        /// The data directory of `accord serve`.
        #[arg(long, env = "ACCORD_DATA")]
        data: PathBuf,
        /// The backup file to write (must not exist).
        out: PathBuf,
        /// The running node to ask (default: the one the data directory names, when in use).
        #[arg(long, env = "ACCORD_NODE")]
        node: Option<String>,
        /// The node's bearer token, if it requires one.
        #[arg(long, env = "ACCORD_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Restore a backup into a new (or empty) data directory, for a node of the same genesis;
    /// prints the restored height, state root and the decision log's full verification.
    Restore {
        /// The backup file (from `accord backup`).
        backup: PathBuf,
        /// The data directory to create.
        #[arg(long, env = "ACCORD_DATA")]
        data: PathBuf,
        /// The node's genesis, as `accord serve` takes it (default: the built-in dev genesis).
        #[arg(long, env = "ACCORD_GENESIS")]
        genesis: Option<PathBuf>,
        /// The node's initial bundle, as `accord serve` takes it.
        #[arg(long, env = "ACCORD_POLICIES")]
        policies: Option<PathBuf>,
    },
    /// Run the sidecar: the HTTP API a ledger node calls (docs/server.md). Stops on SIGTERM/SIGINT
    /// after finishing in-flight requests.
    Serve(Box<accord_server::ServeArgs>),
    /// Run as a CometBFT v0.38 ABCI 2.0 application (docs/abci.md): blocks come from CometBFT,
    /// the HTTP sidecar serves evaluations and reads beside it. Stops on SIGTERM/SIGINT.
    Abci(Box<accord_abci::AbciArgs>),
    /// Format a bundle's Cedar policy files with Cedar's own formatter (as `cedar format` does).
    Fmt {
        /// The bundle directory, or one Cedar file (default: `./policies`).
        path: Option<PathBuf>,
        /// Change nothing; list the files that are not formatted and exit 1 if there is one.
        #[arg(long)]
        check: bool,
    },
    /// Check a policy bundle as a reviewer would (docs/policy-authoring.md, "What validate
    /// checks"): prints every error and warning; exits 1 on an error.
    Validate {
        /// The bundle directory (default: `./policies`).
        dir: Option<PathBuf>,
        /// Warnings fail the validation too.
        #[arg(long)]
        deny_warnings: bool,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Verify the whole hash chain, from the first entry; prints the verification as JSON
    /// (as `GET /v1/audit/verify?full=true` answers it) and exits 0 when it holds, 1 when it is
    /// broken, 2 when the directory cannot be read.
    Verify {
        /// The data directory of `accord serve`.
        #[arg(long, env = "ACCORD_DATA")]
        data: PathBuf,
    },
}

#[derive(clap::Args)]
struct PoliciesArg {
    /// Policy bundle directory (default: `./policies` when it holds a manifest, else the built-in
    /// bundle).
    #[arg(long, env = "ACCORD_POLICIES")]
    policies: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SigningArgs {
    /// The member's key file (from `accord keygen`).
    #[arg(long)]
    key: PathBuf,
    /// Transaction id (default: derived from the message).
    #[arg(long)]
    id: Option<String>,
    /// Transaction timestamp, RFC 3339 (default: now).
    #[arg(long)]
    timestamp: Option<String>,
}

#[derive(Subcommand)]
enum ProposalCommand {
    /// A signed proposal file (as `accord inspect`), or a proposal on the node by id, with a
    /// summary of what it changes.
    Show {
        /// A transaction file, or a proposal id (with --node).
        target: String,
        #[command(flatten)]
        sources: InspectArgs,
    },
    /// What a proposal on the node changes against its base: files, each Cedar policy and Rhai
    /// module old and new, parameters old → new.
    Diff {
        /// The proposal id.
        id: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// The node's advisory analysis of a policy proposal: per action, whether its Cedar policies
    /// are equivalent to the base's, stricter, looser or incomparable, with a request for each
    /// direction that differs (computed by the node with the cvc5 solver).
    #[command(visible_alias = "analyze")]
    Analyse {
        /// The proposal id.
        id: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(clap::Args)]
struct NodeArgs {
    /// The node (`http://host:port`).
    #[arg(long, env = "ACCORD_NODE")]
    node: Option<String>,
    /// The node's bearer token, if it requires one.
    #[arg(long, env = "ACCORD_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl NodeArgs {
    fn client(self) -> Result<Option<node_client::NodeClient>, commands::Failure> {
        self.node
            .map(|url| node_client::NodeClient::new(&url, self.token))
            .transpose()
    }
}

#[derive(clap::Args)]
struct InspectArgs {
    /// The genesis whose members' keys check the signature (default: the built-in dev genesis).
    #[arg(long, env = "ACCORD_GENESIS")]
    genesis: Option<PathBuf>,
    /// The bundle a change is compared with when it was built on it (default: the genesis's).
    #[arg(long)]
    policies: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArgs,
}

impl InspectArgs {
    fn run(
        self,
        f: impl FnOnce(&inspect::InspectSources<'_>) -> Result<ExitCode, commands::Failure>,
    ) -> Result<ExitCode, commands::Failure> {
        let genesis = commands::GenesisSource(self.genesis);
        let node = self.node.client()?;
        f(&inspect::InspectSources {
            genesis: &genesis,
            policies: self.policies.as_deref(),
            node: node.as_ref(),
        })
    }
}

#[derive(clap::Args)]
struct StateArgs {
    /// The state a proposed change was built on: the active policy-set version (policy changes)
    /// or the voting rules' digest (voting-rule changes). Default: read from --node.
    #[arg(long)]
    base: Option<String>,
    /// A running node to read the base, a proposal's content hash or the consortium from.
    #[command(flatten)]
    node: NodeArgs,
}

impl StateArgs {
    fn source(self) -> Result<governance::StateSource, commands::Failure> {
        Ok(governance::StateSource {
            base: self.base,
            node: self.node.client()?,
        })
    }
}

impl SigningArgs {
    fn tx(&self) -> governance::TxOptions {
        governance::TxOptions {
            id: self.id.clone(),
            timestamp: self.timestamp.clone(),
        }
    }
}

impl PoliciesArg {
    fn source(&self) -> Option<PathBuf> {
        commands::policies_source(self.policies.clone())
    }
}

fn serve(args: accord_server::ServeArgs) -> Result<ExitCode, commands::Failure> {
    use accord_server::StartError;
    accord_server::run(args)
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| commands::Failure {
            code: match e {
                StartError::Config(_) | StartError::Bundle { .. } => 2,
                _ => 1,
            },
            message: format!("serve: {e}"),
        })
}

fn abci(args: accord_abci::AbciArgs) -> Result<ExitCode, commands::Failure> {
    use accord_server::StartError;
    accord_abci::run(args)
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| commands::Failure {
            code: match e {
                StartError::Config(_) | StartError::Bundle { .. } => 2,
                _ => 1,
            },
            message: format!("abci: {e}"),
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            tx,
            explain,
            policies,
            state,
        } => commands::check(&tx, policies.source().as_deref(), state.as_deref(), explain),
        Command::Replay {
            blocks,
            genesis,
            policies,
        } => commands::replay(
            &blocks,
            &commands::GenesisSource(genesis),
            policies.as_deref(),
        ),
        Command::Init {
            dir,
            members,
            consortium,
        } => init::init(&dir, members, consortium),
        Command::Keygen {
            out,
            member,
            force,
            hybrid,
        } => governance::keygen(&out, member, force, hybrid),
        Command::Sign {
            message,
            signing,
            state,
            consortium,
        } => state.source().and_then(|state| {
            governance::sign_message(&message, &signing.key, consortium, &state, signing.tx())
        }),
        Command::Propose {
            dir,
            signing,
            state,
            consortium,
            title,
        } => state.source().and_then(|state| {
            governance::propose(&dir, &signing.key, consortium, title, &state, signing.tx())
        }),
        Command::Inspect { tx, sources } => sources.run(|s| inspect::inspect(&tx, s)),
        Command::Proposal {
            command: ProposalCommand::Show { target, sources },
        } => sources.run(|s| inspect::show(&target, s)),
        Command::Proposal {
            command: ProposalCommand::Diff { id, node },
        } => node
            .client()
            .and_then(|node| inspect::diff(&id, node.as_ref())),
        Command::Proposal {
            command: ProposalCommand::Analyse { id, node },
        } => node
            .client()
            .and_then(|node| inspect::analyse(&id, node.as_ref())),
        Command::Vote {
            proposal,
            choice,
            signing,
            state,
            consortium,
            content,
            proposal_file,
        } => state.source().and_then(|state| {
            let options = governance::VoteOptions {
                proposal,
                choice,
                consortium,
                content,
                proposal_file,
            };
            governance::vote(options, &signing.key, &state, signing.tx())
        }),
        Command::Test {
            path,
            verbose,
            filter,
            format,
            coverage,
            min_coverage,
        } => commands::policies_dir(path).and_then(|path| {
            commands::test(&commands::TestOptions {
                path,
                verbose,
                filter,
                format,
                coverage,
                min_coverage,
            })
        }),
        Command::Fmt { path, check } => {
            commands::policies_dir(path).and_then(|path| commands::fmt(&path, check))
        }
        Command::Validate { dir, deny_warnings } => {
            commands::policies_dir(dir).and_then(|dir| commands::validate(&dir, deny_warnings))
        }
        Command::Log {
            command: LogCommand::Verify { data },
        } => log_verify::verify(&data),
        Command::Serve(args) => serve(*args),
        Command::Abci(args) => abci(*args),
        Command::Backup {
            data,
            out,
            node,
            token,
        } => backup::backup(&backup::BackupSource { data, node, token }, &out),
        Command::Restore {
            backup,
            data,
            genesis,
            policies,
        } => backup::restore(&backup, &data, genesis, policies),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("accord: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
