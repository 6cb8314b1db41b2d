//! `POST /v1/evaluate` and `POST /v1/evaluate/batch`: docs/contract.md §1 transactions in, docs/contract.md §2
//! decisions out, each decision logged durably before it is answered.

use super::examples as ex;
use super::openapi::ProblemDetails;
use super::Routes;
use crate::decision_log::{EntryParts, Record};
use crate::extract::{self, JsonBody};
use crate::metrics::DecisionTally;
use crate::problem::{Problem, ProblemKind};
use crate::respond::{json_response, outcome};
use crate::state::AppState;
use crate::storage::Storage;
use accord_engine::{AccessRequest, Decision};
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;

pub fn router() -> Routes {
    Routes::new()
        .post("/v1/evaluate", evaluate)
        .post("/v1/evaluate/batch", evaluate_batch)
}

/// One transaction → one decision (the engine's canonical JSON bytes).
#[utoipa::path(
    post, path = "/v1/evaluate", tag = "evaluate", operation_id = "evaluate",
    summary = "Decide one access transaction",
    description = "One access transaction (contract §1) → its decision (contract §2), logged durably before the answer. A deny is a 200.",
    request_body(content = Object, content_type = "application/json", description = "An access transaction",
        examples(("allow" = (summary = "A treatment read", value = json!(ex::allow_tx()))),
                 ("deny" = (summary = "An export to a third country", value = json!(ex::deny_tx()))),
                 ("invalid-transaction" = (summary = "An unknown actor type", value = json!(ex::invalid_tx()))))),
    responses(
        (status = 200, description = "The decision", content_type = "application/json", body = Object,
            examples(("allow" = (value = json!(ex::allow_decision()))), ("deny" = (value = json!(ex::deny_decision()))))),
        (status = 422, description = "`invalid-transaction` naming the field, or `not-an-access-transaction`", content_type = "application/problem+json", body = ProblemDetails,
            examples(("invalid-transaction" = (value = json!(ex::invalid_tx_problem()))))),
        (status = 503, description = "`decision-log-unavailable`, `overloaded` or `timeout`; nothing was answered", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["evaluate"]))
)]
async fn evaluate(State(state): State<AppState>, body: JsonBody) -> Result<Response, Problem> {
    let request = extract::access_request(&body.0, None)?;
    let span = tracing::Span::current();
    span.record("tx", request.id.as_str());
    let requests = [request];
    let storage = state.decision_storage()?;
    let decisions = storage.decide_all(&requests);
    state.record(&storage.log, &requests, &decisions).await?;
    let decision = decisions
        .into_iter()
        .next()
        .ok_or_else(|| Problem::new(ProblemKind::Internal, "no decision was made"))?;
    span.record("outcome", outcome(&decision));
    Ok(json_response(decision.to_json()))
}

/// The batch body. Unknown top-level fields are refused (docs/contract.md: a typo must not pass).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody<'a> {
    #[serde(borrow)]
    transactions: Vec<&'a RawValue>,
}

// INVARIANT (json::Strict): a derived struct; each item is read through the engine's reader.
impl accord_engine::json::Strict for BatchBody<'_> {}

/// `{"transactions":[...]}` → `{"decisions":[...]}` in the same order.
///
/// All or nothing: an invalid item fails the whole request with a 422 problem whose field starts
/// with the item's index (`transactions[3].actor.type`), and nothing is decided or logged. A
/// ledger node batches one block's worth of transactions; a partly answered batch would leave it
/// to match answers to questions.
///
/// A large batch is parsed, decided, prepared for the log and serialized on the blocking pool (see
/// [`AppState::compute`]), so that what it allocates is freed on the thread that allocated it and
/// the async workers only move bytes; a small one is handled in place (moving it costs more than
/// it saves).
#[utoipa::path(
    post, path = "/v1/evaluate/batch", tag = "evaluate", operation_id = "evaluate_batch",
    summary = "Decide a batch of access transactions, all or nothing",
    description = "`{\"transactions\":[…]}` (at most `--max-batch`) → `{\"decisions\":[…]}` in the same order. An invalid item fails the whole batch and nothing is decided or logged.",
    request_body(content = Object, content_type = "application/json", description = "`{\"transactions\":[…]}`",
        examples(("batch" = (summary = "An allow and a deny", value = json!(ex::batch()))),
                 ("invalid-item" = (summary = "The second item is invalid", value = json!(ex::batch_invalid()))))),
    responses(
        (status = 200, description = "The decisions, in request order", content_type = "application/json", body = Object,
            examples(("batch" = (value = json!(ex::batch_answer()))))),
        (status = 413, description = "`batch-too-large` or `payload-too-large`", content_type = "application/problem+json", body = ProblemDetails),
        (status = 422, description = "An item is invalid; `field` starts with its index", content_type = "application/problem+json", body = ProblemDetails,
            examples(("invalid-item" = (value = json!(ex::batch_invalid_problem()))))),
        (status = 503, description = "`decision-log-unavailable`, `overloaded` or `timeout`", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["evaluate"]))
)]
async fn evaluate_batch(
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Response, Problem> {
    let storage = state.decision_storage()?;
    let decided = if body.0.len() < BLOCKING_BATCH_BYTES {
        decide_batch(&state, &storage, &body.0)?
    } else {
        let bytes = body.0;
        let on_pool = Arc::clone(&storage);
        state
            .compute(move |state| decide_batch(state, &on_pool, &bytes))
            .await??
    };
    let span = tracing::Span::current();
    span.record("tx", decided.span_tx.as_str());
    storage.log.append_parts(decided.entries).await?;
    span.record(
        "outcome",
        format!(
            "{} allow, {} deny",
            decided.tally.allowed(),
            decided.tally.denied()
        )
        .as_str(),
    );
    state.metrics.add(decided.tally);
    Ok(json_response(decided.answer))
}

/// Bodies at least this long (about eight transactions) are decided on the blocking pool.
const BLOCKING_BATCH_BYTES: usize = 8 * 1024;

/// A batch decided, ready to log and answer.
struct DecidedBatch {
    /// The decision-log entries, in order.
    entries: Vec<EntryParts>,
    tally: DecisionTally,
    /// The answer's JSON text.
    answer: String,
    /// `first..last (n)`, for the request's span.
    span_tx: String,
}

fn decide_batch(state: &AppState, storage: &Storage, body: &[u8]) -> Result<DecidedBatch, Problem> {
    let batch: BatchBody<'_> = extract::parse(body)?;
    let max = state.limits.max_batch;
    if batch.transactions.len() > max {
        return Err(Problem::at(
            ProblemKind::BatchTooLarge,
            "transactions",
            format!(
                "{} transactions, at most {max} per request (--max-batch)",
                batch.transactions.len()
            ),
        ));
    }
    let requests = batch
        .transactions
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            extract::access_request(raw.get().as_bytes(), Some(&format!("transactions[{i}]")))
        })
        .collect::<Result<Vec<AccessRequest>, Problem>>()?;
    let span_tx = match (requests.first(), requests.last()) {
        (Some(first), Some(last)) => format!("{}..{} ({})", first.id, last.id, requests.len()),
        _ => String::new(),
    };
    let decisions = storage.decide_all(&requests);
    let entries = decisions
        .iter()
        .zip(&requests)
        .map(|(d, r)| EntryParts::new(&Record::new(d, r)))
        .collect();
    Ok(DecidedBatch {
        entries,
        tally: DecisionTally::of(&decisions),
        answer: decisions_json(&decisions),
        span_tx,
    })
}

/// `{"decisions":[d1,d2,...]}` from each decision's canonical bytes.
fn decisions_json(decisions: &[Decision]) -> String {
    let mut out = String::with_capacity(decisions.len() * 512 + 16);
    out.push_str("{\"decisions\":[");
    for (i, d) in decisions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&d.to_json());
    }
    out.push_str("]}");
    out
}
