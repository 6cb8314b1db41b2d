//! Fuzzing harness for every door through which Accord reads untrusted input: transactions,
//! blocks (and the block state machine), governance messages (and the governance state rules),
//! and policy bundles. CONTRIBUTING.md ("Fuzzing") says how to build and run it.
//!
//! - [`engine_checks`] and [`governance_checks`]: the invariants, one input at a time. The
//!   property tests of the engine and governance crates include these files, so that `cargo test
//!   --workspace` checks the same invariants on generated inputs.
//! - [`seeds`]: the seed corpus, built from the repository's examples, the default bundle and its
//!   test cases, the benchmark mix and the governance test vectors.
//! - `src/bin/`: one AFL target per door (feature `afl`, built by `cargo afl build`), and
//!   `fuzz-tool` to write seeds and replay inputs without AFL (for triage, with a stack trace).

pub mod engine_checks;
pub mod governance_checks;
pub mod seeds;

use accord_engine::{Bundle, BundleFiles};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The fuzz targets, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `AccessRequest::from_json`, `Transaction::from_json`, `json::from_slice`, then a decision.
    Transaction,
    /// `Block::from_json`, `PreparedBlock::from_raw`, `StateMachine::apply_block`.
    Block,
    /// `Envelope::from_value` and `GovernanceState::apply`.
    Governance,
    /// `Bundle::compile` of in-memory files, then the bundle's own test cases.
    Bundle,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target::Transaction,
        Target::Block,
        Target::Governance,
        Target::Bundle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Transaction => "transaction",
            Target::Block => "block",
            Target::Governance => "governance",
            Target::Bundle => "bundle",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Loads what the target reads once (so that an AFL target does it before the fork server
    /// starts).
    pub fn prepare(self) {
        match self {
            Target::Transaction => {
                default_bundle();
            }
            Target::Block | Target::Governance => {
                dev();
            }
            Target::Bundle => {
                default_files();
            }
        }
    }

    /// Checks one input; panics when an invariant does not hold.
    pub fn check(self, bytes: &[u8]) {
        match self {
            Target::Transaction => {
                engine_checks::transaction(bytes, default_bundle());
            }
            Target::Block => {
                governance_checks::blocks(bytes, dev());
            }
            Target::Governance => {
                governance_checks::governance(bytes, dev());
            }
            Target::Bundle => {
                engine_checks::bundle(engine_checks::bundle_files(bytes, default_files()));
            }
        }
    }
}

/// The repository: `ACCORD_REPO`, or the parent of this crate.
pub fn repo() -> PathBuf {
    match std::env::var_os("ACCORD_REPO") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}

/// The default bundle's files (policies/ with its jurisdictions).
pub fn default_files() -> &'static BundleFiles {
    static FILES: OnceLock<BundleFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        BundleFiles::read_dir(&repo().join("policies"))
            .unwrap_or_else(|e| panic!("the default bundle's files: {e}"))
    })
}

/// The default bundle, compiled.
pub fn default_bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        Bundle::compile(default_files().clone())
            .unwrap_or_else(|e| panic!("the default bundle: {e}"))
    })
}

/// The dev consortium (governance/genesis.dev.yaml and its keys).
pub fn dev() -> &'static governance_checks::Dev {
    static DEV: OnceLock<governance_checks::Dev> = OnceLock::new();
    DEV.get_or_init(|| governance_checks::Dev::load(&repo()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed and every regression input passes its target's checks (what a short fuzzing
    /// run starts from must not already fail).
    #[test]
    fn seeds_and_regressions_pass() {
        for target in Target::ALL {
            let mut inputs = seeds::seeds(target);
            inputs.extend(seeds::regressions(target));
            assert!(!inputs.is_empty(), "{}: no inputs", target.name());
            for (name, bytes) in inputs {
                eprintln!("{} {name}", target.name());
                target.check(&bytes);
            }
        }
    }
}
