//! The block state machine's routes: the block feed, governance messages (sequenced into this
//! node's next block in single-node mode), and reads of proposals, the policy set, members and
//! consents.

use crate::audit::parse_query;
use crate::body::{self, JsonBody};
use crate::decision_log::{Appended, DecisionLog, QueuedAppend, Record};
use crate::evaluate::json_response;
use crate::log_entry::EntryParts;
use crate::metrics::DecisionTally;
use crate::node::{Claim, Node};
use crate::problem::{Problem, ProblemKind};
use crate::state::{self, AppState};
use accord_engine::consent::ConsentRegistry;
use accord_engine::ledger::PreparedBlock;
use accord_engine::transaction::Transaction;
use accord_governance::{BlockAnswer, BlockError, Proposal, TxResult};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::task::JoinHandle;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/blocks", post(blocks))
        .route("/v1/governance", post(governance))
        .route("/v1/proposals", get(proposals))
        .route("/v1/proposals/{id}", get(proposal))
        .route("/v1/policy-set", get(policy_set))
        .route("/v1/members", get(members))
        .route("/v1/consents", get(consents))
}

fn node(state: &AppState) -> Result<Arc<Node>, Problem> {
    Ok(Arc::clone(&state.storage()?.node))
}

/// Refuses a request that writes state while the data directory refuses writes (fast, without
/// touching the database), and records a fault when storing state fails.
fn writable(state: &AppState) -> Result<(), Problem> {
    match state.health.writes_refused() {
        None => Ok(()),
        Some(reason) => Err(Problem::new(
            ProblemKind::StateUnavailable,
            format!("the data directory refuses writes ({reason}); nothing was applied"),
        )
        .retry_after(1)),
    }
}

/// Records a storage fault behind `problem`, if it is one.
fn noted(state: &AppState, problem: Problem) -> Problem {
    if problem.kind == ProblemKind::StateUnavailable {
        state.health.fail(&problem.detail);
    }
    problem
}

fn block_problem(e: BlockError, next: u64) -> Problem {
    match e {
        BlockError::OutOfOrder { expected, got } => Problem::at(
            ProblemKind::BlockOutOfOrder,
            "height",
            format!("expected height {expected}, got {got}"),
        )
        .with("expected_height", expected),
        BlockError::Conflict { height } => Problem::at(
            ProblemKind::BlockConflict,
            "height",
            format!("a different block was applied at height {height}"),
        )
        .with("expected_height", next),
        BlockError::PreviousMismatch { expected, .. } => Problem::at(
            ProblemKind::BlockConflict,
            "previous",
            format!("does not match the last block's hash {expected}"),
        )
        .with("expected_height", next),
        BlockError::Transaction(e) => Problem::at(ProblemKind::InvalidBlock, e.field, e.reason),
        BlockError::Store(reason) => {
            tracing::error!(%reason, "state store failed");
            Problem::new(ProblemKind::StateUnavailable, reason).retry_after(1)
        }
    }
}

/// Applies `work` on the blocking pool (a block may compile and test a proposed bundle). Once
/// started, `work` runs to its end even if the request is dropped meanwhile.
async fn on_node<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Arc<Node>) -> T + Send + 'static,
) -> Result<T, Problem> {
    let node = node(state)?;
    let _permit = state
        .compute
        .acquire()
        .await
        .map_err(|e| Problem::new(ProblemKind::Internal, e.to_string()))?;
    tokio::task::spawn_blocking(move || work(&node))
        .await
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("block task: {e}")))
}

/// Queues the decisions of `answer`, a block this request applied, for the log, and starts the
/// task that reports their write to the node ([`report_logging`]). For blocks sequenced from one
/// governance message, which decide nothing, the log only learns that the height is done.
fn log_sequenced(node: &Arc<Node>, log: &DecisionLog, answer: &BlockAnswer) -> BlockLogging {
    let parts = answer
        .decisions()
        .map(|decision| {
            EntryParts::new(&Record {
                decision,
                patient: None,
            })
        })
        .collect();
    let tally = DecisionTally::of(answer.decisions());
    BlockLogging::writing(
        node,
        answer.height,
        (log.queue_block(answer.height, parts), tally),
    )
}

/// What the answer to a block waits for before it is sent: its decisions in the decision log.
enum BlockLogging {
    /// This request writes them: the task that awaits the write (see [`report_logging`]), and
    /// their count for the metrics.
    Write(JoinHandle<Appended>, DecisionTally),
    /// Another request writes them (a replay arrived while the block's first answer was being
    /// logged): wait for that write.
    Wait,
    /// They are in the log.
    Logged,
}

impl BlockLogging {
    /// This request writes the decisions of block `height`, `queued` for the log.
    fn writing(node: &Arc<Node>, height: u64, queued: (QueuedAppend, DecisionTally)) -> Self {
        BlockLogging::Write(report_logging(node, height, queued.0), queued.1)
    }

    /// Waits until the decisions of block `height` are in the log; a 503 if they could not be
    /// written (the ledger sends the block again, and that replay writes them).
    async fn done(self, state: &AppState, height: u64) -> Result<(), Problem> {
        match self {
            BlockLogging::Write(written, tally) => {
                written
                    .await
                    .map_err(|e| Problem::new(ProblemKind::Internal, format!("log task: {e}")))?
                    .map_err(state::log_problem)?;
                state.metrics.add(tally);
                Ok(())
            }
            BlockLogging::Wait if node(state)?.logging().wait(height).await => Ok(()),
            BlockLogging::Wait => Err(Problem::new(
                ProblemKind::DecisionLogUnavailable,
                format!(
                    "the decisions of block {height} could not be logged; send the block again"
                ),
            )
            .retry_after(1)),
            BlockLogging::Logged => Ok(()),
        }
    }
}

/// Spawns the task that awaits `queued`, the decisions of block `height` that this request
/// writes, and reports the outcome to the node. It is started where the block was applied and
/// runs on its own: a request dropped meanwhile (its client gone, its time up) cannot leave the
/// block's logging unresolved, which would hold the block's replays until they time out.
fn report_logging(node: &Arc<Node>, height: u64, queued: QueuedAppend) -> JoinHandle<Appended> {
    let node = Arc::clone(node);
    tokio::spawn(async move {
        let written = queued.written().await;
        node.logging().finish(height, written.is_ok());
        written
    })
}

/// A block as received, its transactions left as JSON text to be parsed on every core.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlock<'a> {
    height: u64,
    #[serde(default)]
    previous: Option<String>,
    #[serde(borrow)]
    transactions: Vec<&'a RawValue>,
}

// INVARIANT (json::Strict): a derived struct; each transaction is read through the engine's reader.
impl accord_engine::json::Strict for RawBlock<'_> {}

/// A block applied, ready to answer once its decisions are logged.
struct AppliedBlock {
    height: u64,
    /// The answer's JSON text.
    text: String,
    logging: BlockLogging,
}

/// `POST /v1/blocks`: the next block → its decisions and the state root (docs/contract.md §5).
///
/// The block is parsed, applied, prepared for the log and serialized on the blocking pool, every
/// step that is independent per transaction on every core. Its decisions are queued for the log
/// as soon as they are made, so that the log writer writes them while the block is stored; the
/// async worker awaits that group commit and sends the bytes.
async fn blocks(State(state): State<AppState>, body: JsonBody) -> Result<Response, Problem> {
    writable(&state)?;
    let bytes = body.0;
    let log = Arc::clone(&state.storage()?.log);
    let (height, applied) = on_node(&state, move |node| apply_block(node, &log, &bytes)).await?;
    if let Some(height) = height {
        tracing::Span::current().record("tx", format!("block {height}").as_str());
    }
    let applied = applied.map_err(|p| noted(&state, p))?;
    applied.logging.done(&state, applied.height).await?;
    Ok(json_response(applied.text))
}

/// Parses and applies one block body; the block's height, once known, comes with the result.
fn apply_block(
    node: &Arc<Node>,
    log: &DecisionLog,
    bytes: &[u8],
) -> (Option<u64>, Result<AppliedBlock, Problem>) {
    let block = match body::parse_as::<RawBlock<'_>>(bytes, ProblemKind::InvalidBlock) {
        Ok(raw) => PreparedBlock::from_raw(raw.height, raw.previous, raw.transactions),
        Err(problem) => return (None, Err(problem)),
    };
    let height = block.height;
    let patients: Vec<Option<String>> = block
        .transactions
        .iter()
        .flatten()
        .filter_map(|tx| match tx {
            Transaction::Access(request) => Some(request.patient_id().map(str::to_owned)),
            _ => None,
        })
        .collect();
    // A new block's decisions are queued for the log before the block is stored. Should storing
    // it fail then, the log holds decisions of a block not applied, and applying it again logs
    // them again: the log may hold a decision that no answer carried, never the reverse.
    let mut queued = None;
    let result = node.apply(block, |answer| {
        queued = Some(queue_decisions(log, answer, &patients));
    });
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => return (Some(height), Err(block_problem(e, node.next_height()))),
    };
    // The reporting task starts only now that the node knows this request writes the block's
    // decisions: a report before that would be lost.
    let logging = match queued {
        Some(queued) => BlockLogging::writing(node, answer.height, queued),
        // A replay: it writes the block's decisions only if they did not reach the log and no
        // other request is writing them.
        None => match node.logging().claim(answer.height) {
            Claim::Write => BlockLogging::writing(
                node,
                answer.height,
                queue_decisions(log, &answer, &patients),
            ),
            Claim::Wait => BlockLogging::Wait,
            Claim::Logged => BlockLogging::Logged,
        },
    };
    (
        Some(height),
        Ok(AppliedBlock {
            height: answer.height,
            // Written when the block was stored.
            text: answer.to_json().to_owned(),
            logging,
        }),
    )
}

/// Prepares the log entries of a block's decisions on every core and queues them.
fn queue_decisions(
    log: &DecisionLog,
    answer: &BlockAnswer,
    patients: &[Option<String>],
) -> (QueuedAppend, DecisionTally) {
    let records: Vec<Record<'_>> = answer
        .decisions()
        .zip(patients)
        .map(|(decision, patient)| Record {
            decision,
            patient: patient.as_deref(),
        })
        .collect();
    let entries = accord_engine::parallel::map_chunks(&records, 32, |part| {
        part.iter().map(EntryParts::new).collect()
    });
    (
        log.queue_block(answer.height, entries),
        DecisionTally::of(answer.decisions()),
    )
}

/// `POST /v1/governance`: one signed governance transaction, sequenced into this node's next
/// block (single-node mode). A refused message is a 422 problem carrying the refusal code.
async fn governance(State(state): State<AppState>, body: JsonBody) -> Result<Response, Problem> {
    let tx: Value = body::value(&body.0)?;
    match tx.get("kind").and_then(Value::as_str) {
        Some("governance") => {}
        other => {
            return Err(Problem::at(
                ProblemKind::InvalidTransaction,
                "kind",
                format!("expected `governance`, got {other:?}"),
            ))
        }
    }
    let id = tx
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    tracing::Span::current().record("tx", id.as_str());
    writable(&state)?;
    let log = Arc::clone(&state.storage()?.log);
    let (result, next) = on_node(&state, move |node| {
        let result = node
            .sequence(tx)
            .map(|answer| (log_sequenced(node, &log, &answer), answer));
        (result, node.next_height())
    })
    .await?;
    let (logging, answer) = result.map_err(|e| match e {
        BlockError::Transaction(e) => Problem::at(
            ProblemKind::InvalidTransaction,
            e.field.trim_start_matches("transactions[0]."),
            e.reason,
        ),
        other => noted(&state, block_problem(other, next)),
    })?;
    logging.done(&state, answer.height).await?;
    match answer.results.first() {
        Some(TxResult::Refused { refused, .. }) => {
            let mut problem = Problem::new(
                ProblemKind::GovernanceRefused,
                format!("{}: {}", refused.code, refused.message),
            )
            .with("code", refused.code.as_str())
            .with("height", answer.height);
            problem.field = refused.field.clone();
            Err(problem)
        }
        Some(TxResult::Applied { tx, applied }) => Ok(json_response(
            json!({
                "tx": tx,
                "applied": applied,
                // What a vote must name besides the id.
                "content": node(&state)?.read(|gov, _| gov.proposals.get(&applied.id).map(|p| p.content.clone())),
                "height": answer.height,
                "activated": answer.activated,
                "state_root": answer.state_root,
                "next_height": next,
            })
            .to_string(),
        )),
        _ => Err(Problem::new(
            ProblemKind::Internal,
            "the sequenced block holds no governance result",
        )),
    }
}

/// A proposal without its membership snapshot and vote-replay digests: what a list shows.
fn summary(p: &Proposal) -> Value {
    json!({
        "id": p.id, "title": p.title, "kind": p.kind, "proposer": p.proposer,
        "status": p.status, "created_at": p.created_at, "voting_ends": p.voting_ends,
        "decided_at": p.decided_at, "activates_at": p.activates_at, "tally": p.tally,
        "impact": { "evaluated": p.impact.evaluated, "allow_to_deny": p.impact.allow_to_deny,
                    "deny_to_allow": p.impact.deny_to_allow },
        "note": p.note,
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProposalsQuery {
    status: Option<accord_governance::proposal::Status>,
}

/// `GET /v1/proposals[?status=voting]`: every proposal, oldest first.
async fn proposals(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let q: ProposalsQuery = parse_query(raw.as_deref())?;
    let list = node(&state)?.read(|gov, _| {
        let mut all: Vec<&Proposal> = gov
            .proposals
            .values()
            .filter(|p| q.status.is_none_or(|s| p.status == s))
            .collect();
        all.sort_by_key(|p| p.seq);
        all.into_iter().map(summary).collect::<Vec<_>>()
    });
    Ok(json_response(json!({ "proposals": list }).to_string()))
}

/// `GET /v1/proposals/{id}`: status, tally so far, votes, frozen rules, impact preview.
async fn proposal(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let found = node(&state)?.read(|gov, _| {
        gov.proposals.get(&id).map(|p| {
            let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut v {
                map.remove("seen");
            }
            v
        })
    });
    match found {
        Some(v) => Ok(json_response(v.to_string())),
        None => Err(Problem::at(
            ProblemKind::UnknownProposal,
            "id",
            format!("no proposal {id}"),
        )),
    }
}

/// `GET /v1/policy-set`: the active set, its history, and pending changes.
async fn policy_set(State(state): State<AppState>) -> Result<Response, Problem> {
    let body = node(&state)?.read(|gov, machine| {
        let pending: Vec<Value> = gov
            .proposals
            .values()
            .filter(|p| p.is_pending() && p.effect.policy_version().is_some())
            .map(|p| {
                json!({ "proposal": p.id, "version": p.effect.policy_version(),
                             "status": p.status, "activates_at": p.activates_at })
            })
            .collect();
        json!({
            "active": gov.active_activation(),
            "history": gov.history,
            "pending": pending,
            "applied_height": machine.height(),
            "state_root": machine.state_root(),
        })
    });
    Ok(json_response(body.to_string()))
}

/// `GET /v1/members`: the consortium, its members and the voting rules in force.
async fn members(State(state): State<AppState>) -> Result<Response, Problem> {
    let body = node(&state)?.read(|gov, _| {
        json!({
            "consortium": gov.consortium,
            "members": gov.membership.iter().collect::<Vec<_>>(),
            "total_weight": gov.membership.total_weight(),
            "voting": gov.params,
        })
    });
    Ok(json_response(body.to_string()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConsentsQuery {
    patient: Option<String>,
}

/// `GET /v1/consents?patient=…`: every consent of one patient, as of the last applied block.
async fn consents(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let q: ConsentsQuery = parse_query(raw.as_deref())?;
    let patient = q
        .patient
        .ok_or_else(|| Problem::at(ProblemKind::InvalidRequest, "patient", "missing"))?;
    let entries = state.storage()?.consents.load().of_patient(&patient);
    Ok(json_response(
        json!({ "patient": patient, "consents": entries }).to_string(),
    ))
}
