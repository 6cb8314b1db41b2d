//! `POST /v1/blocks`: the ledger's block feed. Each block is applied to the state machine, its
//! decisions logged, and its answer (decisions and state root) sent once they are in the log.

use super::examples as ex;
use super::openapi::ProblemDetails;
use super::Routes;
use crate::decision_log::{Appended, DecisionLog, EntryParts, QueuedAppend, Record};
use crate::extract::{self, JsonBody};
use crate::metrics::DecisionTally;
use crate::node::{Claim, Node};
use crate::problem::{join, BlockRefusal, Problem, ProblemKind};
use crate::respond::json_response;
use crate::state::AppState;
use accord_engine::ledger::PreparedBlock;
use accord_engine::transaction::Transaction;
use accord_governance::BlockAnswer;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub fn router() -> Routes {
    Routes::new().post("/v1/blocks", blocks)
}

/// What the answer to a block waits for before it is sent: its decisions in the decision log.
pub enum BlockLogging {
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
    pub(super) fn writing(
        node: &Arc<Node>,
        height: u64,
        queued: (QueuedAppend, DecisionTally),
    ) -> Self {
        BlockLogging::Write(report_logging(node, height, queued.0), queued.1)
    }

    /// Waits until the decisions of block `height` are in the log; a 503 if they could not be
    /// written (the ledger sends the block again, and that replay writes them).
    pub async fn done(self, state: &AppState, height: u64) -> Result<(), Problem> {
        match self {
            BlockLogging::Write(written, tally) => {
                join("log task", written).await??;
                state.metrics.add(tally);
                Ok(())
            }
            BlockLogging::Wait if state.node()?.logging().wait(height).await => Ok(()),
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
    /// The proposals the block accepted, to analyse.
    proposals: Vec<String>,
    logging: BlockLogging,
}

/// `POST /v1/blocks`: the next block → its decisions and the state root (docs/contract.md §5).
///
/// The block is parsed, applied, prepared for the log and serialized on the blocking pool, every
/// step that is independent per transaction on every core. Its decisions are queued for the log
/// as soon as they are made, so that the log writer writes them while the block is stored; the
/// async worker awaits that group commit and sends the bytes.
#[utoipa::path(
    post, path = "/v1/blocks", tag = "ledger", operation_id = "blocks",
    summary = "Apply the next block",
    description = "Blocks strictly in height order (contract §5): decisions for access transactions, state changes for the others, the state root. A replay of an applied block answers the stored answer.",
    request_body(content = Object, content_type = "application/json", description = "`{height, previous?, transactions}`",
        examples(("first-block" = (summary = "Block 1 with one access transaction", value = json!(ex::first_block()))),
                 ("gap" = (summary = "A block far ahead", value = json!(ex::gap_block()))))),
    responses(
        (status = 200, description = "`{height, block_hash, activated, results, state_root}`", content_type = "application/json", body = Object,
            examples(("first-block" = (value = json!(ex::first_block_answer()))))),
        (status = 409, description = "`block-out-of-order` or `block-conflict`, with `expected_height`", content_type = "application/problem+json", body = ProblemDetails,
            examples(("gap" = (value = json!(ex::gap_block_problem()))))),
        (status = 422, description = "`invalid-block` naming the field; nothing of it applies", content_type = "application/problem+json", body = ProblemDetails),
        (status = 503, description = "`state-unavailable` or `decision-log-unavailable`; send the block again", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["ledger"]))
)]
async fn blocks(State(state): State<AppState>, body: JsonBody) -> Result<Response, Problem> {
    state.writable()?;
    let bytes = body.0;
    let log = Arc::clone(&state.storage()?.log);
    let (height, applied) = state
        .on_node(move |node| apply_block(node, &log, &bytes))
        .await?;
    if let Some(height) = height {
        tracing::Span::current().record("tx", format!("block {height}").as_str());
    }
    let applied = match applied {
        Ok(applied) => applied,
        Err(problem) => return Err(state.noted(problem)),
    };
    applied.logging.done(&state, applied.height).await?;
    state.analyse_later(applied.proposals);
    Ok(json_response(applied.text))
}

/// Parses and applies one block body; the block's height, once known, comes with the result.
fn apply_block(
    node: &Arc<Node>,
    log: &DecisionLog,
    bytes: &[u8],
) -> (Option<u64>, Result<AppliedBlock, Problem>) {
    let block = match extract::parse_as::<RawBlock<'_>>(bytes, ProblemKind::InvalidBlock) {
        Ok(raw) => PreparedBlock::from_raw(raw.height, raw.previous, raw.transactions),
        Err(problem) => return (None, Err(problem)),
    };
    let height = block.height;
    let applied = match apply_and_log(node, log, block) {
        Ok(applied) => applied,
        Err(refusal) => return (Some(height), Err(refusal.into())),
    };
    (
        Some(height),
        Ok(AppliedBlock {
            height: applied.answer.height,
            // Written when the block was stored.
            text: applied.answer.to_json().to_owned(),
            proposals: super::governance::accepted_proposals(&applied.answer),
            logging: applied.logging,
        }),
    )
}

/// A block applied (or replayed) and its decisions on their way to the decision log.
pub struct LoggedBlock {
    pub answer: Arc<BlockAnswer>,
    /// What to await ([`BlockLogging::done`]) before the answer may be sent.
    pub logging: BlockLogging,
}

/// Applies `block` to the node and queues its decisions for the decision log: the one path by
/// which a block from a ledger — `POST /v1/blocks`, or a consensus engine's finalized block —
/// changes the state. A replay of an applied block answers as before and logs its decisions only
/// if they never reached the log. Runs on the blocking pool ([`AppState::on_node`]).
pub fn apply_and_log(
    node: &Arc<Node>,
    log: &DecisionLog,
    block: PreparedBlock,
) -> Result<LoggedBlock, BlockRefusal> {
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
    let answer = result.map_err(|error| BlockRefusal {
        error,
        next_height: node.next_height(),
    })?;
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
    Ok(LoggedBlock { answer, logging })
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
