//! The advisory analysis of a policy proposal: the Cedar part of its change compared with its
//! base, action by action, by the Cedar symbolic compiler ([`accord_engine::symbolic`]): equivalent,
//! stricter, looser or incomparable, with a request for each direction that differs.
//!
//! It is computed off consensus, after the proposal is accepted, from stored bundle content, and
//! kept in a sled tree of its own ([`AnalysisStore`]) beside the proposal: never part of the
//! state root, never a reason to refuse or decide. Its answer depends on the solver installed and
//! on time limits, so two nodes may hold different analyses of the same proposal; without the
//! solver it says it was not run and the proposal works as always.

use crate::bundles::BundleStore;
use crate::proposal::{Effect, Proposal};
use accord_engine::symbolic::{self, CedarSide, PolicySetComparison, SolverSettings};
use accord_engine::{Bundle, BundleFiles};
use serde::Serialize;
use std::sync::Arc;

/// The sled tree analyses are stored in, by proposal id (outside the state the root covers).
pub const ANALYSIS_TREE: &str = "accord-analysis";

/// Whether the analysis ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisStatus {
    /// The comparison ran (each action's verdict says what it proved).
    Complete,
    /// The comparison could not run (the reason says why: the solver is not installed, say).
    NotRun,
    /// The change is not a policy change, or its base is unknown.
    NotApplicable,
}

/// What a node serves as a proposal's analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposalAnalysis {
    pub proposal: String,
    /// Always true: the analysis informs voters and binds nothing.
    pub advisory: bool,
    pub status: AnalysisStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The policy-set version the change was built on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The policy-set version it activates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cedar: Option<PolicySetComparison>,
}

/// A bundle as the store holds it: compiled when cached, else its content.
#[derive(Clone)]
enum Held {
    Compiled(Arc<Bundle>),
    Files(Arc<BundleFiles>),
}

impl Held {
    fn of(bundles: &BundleStore, version: &str) -> Option<Held> {
        match bundles.cached(version) {
            Some(b) => Some(Held::Compiled(Arc::clone(b))),
            None => bundles.files(version).map(|f| Held::Files(Arc::clone(f))),
        }
    }

    fn compiled(self) -> Result<Arc<Bundle>, String> {
        match self {
            Held::Compiled(b) => Ok(b),
            Held::Files(f) => Bundle::compile((*f).clone())
                .map(Arc::new)
                .map_err(|e| e.to_string()),
        }
    }
}

/// What the analysis of one proposal needs, taken from the state under the node's lock (cheap:
/// shared references to stored bundles); [`AnalysisInput::run`] does the work without it.
pub struct AnalysisInput {
    analysis: ProposalAnalysis,
    bundles: Option<(Held, Held)>,
}

impl AnalysisInput {
    pub fn of(p: &Proposal, bundles: &BundleStore) -> AnalysisInput {
        let mut analysis = ProposalAnalysis {
            proposal: p.id.clone(),
            advisory: true,
            status: AnalysisStatus::NotApplicable,
            reason: None,
            base: None,
            version: None,
            cedar: None,
        };
        let Effect::ActivatePolicySet { version, base, .. } = &p.effect else {
            analysis.reason = Some(format!("a {} change is not a policy change", p.kind));
            return AnalysisInput {
                analysis,
                bundles: None,
            };
        };
        analysis.version = Some(version.clone());
        analysis.base = base.clone();
        let held = |v: &str| Held::of(bundles, v);
        let pair = match base.as_deref() {
            None => Err("the change names no base".to_owned()),
            Some(b) => match (held(b), held(version)) {
                (Some(old), Some(new)) => Ok((old, new)),
                (None, _) => Err(format!("the base {b} is not stored on this node")),
                (_, None) => Err(format!("the version {version} is not stored on this node")),
            },
        };
        match pair {
            Ok(pair) => AnalysisInput {
                analysis,
                bundles: Some(pair),
            },
            Err(reason) => {
                analysis.reason = Some(reason);
                AnalysisInput {
                    analysis,
                    bundles: None,
                }
            }
        }
    }

    /// Whether running it asks the solver (a policy change with both bundles stored).
    pub fn compares(&self) -> bool {
        self.bundles.is_some()
    }

    /// Compares the two bundles' Cedar policies: blocking (compiles bundles not cached, runs
    /// the solver), to be called off the async runtime.
    pub fn run(self, settings: &SolverSettings) -> ProposalAnalysis {
        let mut analysis = self.analysis;
        let Some((base, target)) = self.bundles else {
            return analysis;
        };
        let compiled = base
            .compiled()
            .map_err(|e| format!("the base bundle does not compile: {e}"))
            .and_then(|b| {
                target
                    .compiled()
                    .map(|t| (b, t))
                    .map_err(|e| format!("the proposed bundle does not compile: {e}"))
            });
        let (base, target) = match compiled {
            Ok(pair) => pair,
            Err(reason) => {
                analysis.status = AnalysisStatus::NotRun;
                analysis.reason = Some(reason);
                return analysis;
            }
        };
        let (old, new) = (base.cedar(), target.cedar());
        let result = symbolic::compare(
            CedarSide {
                schema: old.schema(),
                policies: old.all(),
            },
            CedarSide {
                schema: new.schema(),
                policies: new.all(),
            },
            settings,
        );
        match result {
            Ok(comparison) => {
                analysis.status = AnalysisStatus::Complete;
                analysis.cedar = Some(comparison);
            }
            Err(not_run) => {
                analysis.status = AnalysisStatus::NotRun;
                analysis.reason = Some(not_run.reason);
            }
        }
        analysis
    }
}

/// Stored analyses, by proposal id, as the JSON text served.
#[derive(Clone)]
pub struct AnalysisStore {
    tree: sled::Tree,
}

impl AnalysisStore {
    pub fn open(db: &sled::Db) -> Result<AnalysisStore, sled::Error> {
        Ok(AnalysisStore {
            tree: db.open_tree(ANALYSIS_TREE)?,
        })
    }

    pub fn get(&self, proposal: &str) -> Result<Option<Vec<u8>>, sled::Error> {
        Ok(self.tree.get(proposal.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Keeps `analysis` if it ran: one not run (no solver yet) is computed again when next asked.
    pub fn put(&self, analysis: &ProposalAnalysis, json: &[u8]) -> Result<(), sled::Error> {
        if analysis.status == AnalysisStatus::NotRun {
            return Ok(());
        }
        self.tree.insert(analysis.proposal.as_bytes(), json)?;
        self.tree.flush()?;
        Ok(())
    }
}
