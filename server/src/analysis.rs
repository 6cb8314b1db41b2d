//! Proposal analyses ([`accord_governance::analysis`]): the Cedar part of a policy proposal
//! compared with its base by the SMT solver, off consensus. A proposal the node accepts is
//! analysed in the background; `GET /v1/proposals/{id}/analysis` answers the stored analysis or
//! computes it. Analyses run one at a time, on a thread of their own (the solver is a separate
//! process), and are stored in the `accord-analysis` tree, outside the state root. One that could
//! not run (no solver) is not stored, so it runs once the solver is there.

use crate::problem::{join, Problem, ProblemKind};
use crate::state::AppState;
use accord_engine::symbolic::SolverSettings;
use accord_governance::analysis::{AnalysisInput, AnalysisStore};
use tokio::sync::Mutex;

/// The solver settings and the lock that keeps analyses to one at a time.
pub struct Analyses {
    pub settings: SolverSettings,
    running: Mutex<()>,
}

impl Analyses {
    pub fn new(settings: SolverSettings) -> Self {
        Analyses {
            settings,
            running: Mutex::new(()),
        }
    }
}

fn stored(store: &AnalysisStore, id: &str) -> Result<Option<String>, Problem> {
    let bytes = store.get(id).map_err(|e| {
        Problem::new(
            ProblemKind::StateUnavailable,
            format!("stored analysis of {id}: {e}"),
        )
    })?;
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

impl AppState {
    /// Starts the analysis of `proposals`, just accepted, in the background.
    pub fn analyse_later(&self, proposals: Vec<String>) {
        if proposals.is_empty() {
            return;
        }
        let state = self.clone();
        tokio::spawn(async move {
            for id in proposals {
                if let Err(problem) = state.analysis(&id).await {
                    tracing::warn!(proposal = %id, detail = %problem.detail, "proposal analysis");
                }
            }
        });
    }

    /// The analysis of proposal `id` as JSON text: the stored one, else computed (and stored
    /// when it ran). The work runs in a task of its own, so it completes and is stored even if the
    /// request that asked for it is dropped.
    pub async fn analysis(&self, id: &str) -> Result<String, Problem> {
        let storage = self.storage()?;
        let store = storage.analyses.clone();
        if let Some(text) = stored(&store, id)? {
            return Ok(text);
        }
        let input = storage.node.read(|gov, _| {
            gov.proposals
                .get(id)
                .map(|p| AnalysisInput::of(p, &gov.bundles))
        });
        let Some(input) = input else {
            return Err(Problem::at(
                ProblemKind::UnknownProposal,
                "id",
                format!("no proposal {id}"),
            ));
        };
        drop(storage);
        let state = self.clone();
        let id = id.to_owned();
        let task = tokio::spawn(async move {
            let _one_at_a_time = state.analyses.running.lock().await;
            if let Some(text) = stored(&store, &id)? {
                return Ok(text);
            }
            let settings = state.analyses.settings.clone();
            let analysis = join(
                "proposal analysis",
                tokio::task::spawn_blocking(move || input.run(&settings)),
            )
            .await?;
            let text = serde_json::to_string(&analysis)?;
            if state.health.writes_refused().is_none() {
                if let Err(e) = store.put(&analysis, text.as_bytes()) {
                    tracing::warn!(proposal = %id, error = %e, "the analysis could not be stored");
                }
            }
            Ok::<String, Problem>(text)
        });
        join("proposal analysis", task).await?
    }
}
