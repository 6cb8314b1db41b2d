//! Governance over HTTP: `POST /v1/governance` (one signed message, sequenced into this node's
//! next block in single-node mode) and reads of proposals, the policy set and the members.

use super::blocks::BlockLogging;
use super::examples as ex;
use super::openapi::ProblemDetails;
use super::Routes;
use crate::decision_log::{DecisionLog, EntryParts, Record};
use crate::extract::{self, parse_query, ClientAddr, JsonBody};
use crate::metrics::DecisionTally;
use crate::node::Node;
use crate::problem::{BlockRefusal, Problem, ProblemKind};
use crate::respond::json_response;
use crate::state::AppState;
use accord_governance::{BlockAnswer, BlockError, Envelope, Proposal, TxResult};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn router() -> Routes {
    Routes::new()
        .post("/v1/governance", governance)
        .get("/v1/proposals", proposals)
        .get("/v1/proposals/{id}", proposal)
        .get("/v1/proposals/{id}/diff", proposal_diff)
        .get("/v1/proposals/{id}/analysis", proposal_analysis)
        .get("/v1/policy-set", policy_set)
        .get("/v1/members", members)
}

/// Queues the decisions of `answer`, a block this request applied, for the log, and starts the
/// task that reports their write to the node ([`BlockLogging::writing`]). For blocks sequenced
/// from one governance message, which decide nothing, the log only learns that the height is done.
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

/// `POST /v1/governance`: one signed governance transaction, sequenced into this node's next
/// block (single-node mode) only if the state accepts it. A refused message is a 422 problem
/// carrying the refusal code; it takes no height and costs its client one refusal of its budget
/// ([`crate::refusal_budget`]; a client with none left is answered 429 after a hold). Malformed
/// messages are refused before the node is locked and before any signature work.
#[utoipa::path(
    post, path = "/v1/governance", tag = "governance", operation_id = "governance",
    summary = "Submit a signed governance transaction",
    description = "Checked completely against the state the node's next block starts from; an accepted message is sequenced into that block. A refused one takes no height.",
    request_body(content = Object, content_type = "application/json", description = "A `governance` transaction (contract §4)",
        examples(("unknown-proposal" = (summary = "A vote on a proposal that does not exist", value = json!(ex::unknown_proposal_vote()))))),
    responses(
        (status = 200, description = "`{tx, applied, content, height, activated, state_root, next_height}`", content_type = "application/json", body = Object),
        (status = 422, description = "`governance-refused` with the refusal `code` and `next_height`", content_type = "application/problem+json", body = ProblemDetails,
            examples(("unknown-proposal" = (value = json!(ex::unknown_proposal_vote_problem()))))),
        (status = 429, description = "`too-many-refusals` from this client lately; `Retry-After`", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["governance"]))
)]
async fn governance(
    State(state): State<AppState>,
    client: ClientAddr,
    body: JsonBody,
) -> Result<Response, Problem> {
    let charge = match state.refusals.take(client.0) {
        Ok(charge) => charge,
        Err(wait) => {
            let problem = Problem::new(
                ProblemKind::TooManyRefusals,
                format!(
                    "this client's governance messages were refused more than {} times in a \
                     burst; it regains {} per second",
                    crate::refusal_budget::BURST,
                    crate::refusal_budget::REFILL_PER_SECOND
                ),
            )
            .retry_after(wait.as_secs().max(1));
            let mut response = problem.into_response();
            response
                .extensions_mut()
                .insert(crate::refusal_budget::Held);
            return Ok(response);
        }
    };
    let refused = |problem: Problem| {
        charge.keep();
        problem
    };
    let tx = cheap_checks(&body.0).map_err(refused)?;
    let id = tx
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    tracing::Span::current().record("tx", id.as_str());
    state.writable()?;
    let log = Arc::clone(&state.storage()?.log);
    let (result, next) = state
        .on_node(move |node| {
            let result = node
                .sequence_governance(tx)
                .map(|answer| (log_sequenced(node, &log, &answer), answer));
            (result, node.next_height())
        })
        .await?;
    let (logging, answer) = match result {
        Ok(sequenced) => sequenced,
        Err(BlockError::Transaction(e)) => {
            return Err(refused(Problem::at(
                ProblemKind::InvalidTransaction,
                e.field.trim_start_matches("transactions[0]."),
                e.reason,
            )))
        }
        Err(error @ BlockError::NotSequenced { .. }) => {
            let refusal = BlockRefusal {
                error,
                next_height: next,
            };
            return Err(refused(refusal.into()));
        }
        Err(error) => {
            let refusal = BlockRefusal {
                error,
                next_height: next,
            };
            return Err(state.noted(refusal.into()));
        }
    };
    logging.done(&state, answer.height).await?;
    state.analyse_later(accepted_proposals(&answer));
    match answer.results.first() {
        Some(TxResult::Applied { tx, applied }) => Ok(json_response(
            json!({
                "tx": tx,
                "applied": applied,
                // What a vote must name besides the id.
                "content": state.node()?.read(|gov, _| gov.proposals.get(&applied.id).map(|p| p.content.clone())),
                "height": answer.height,
                "activated": answer.activated,
                "state_root": answer.state_root,
                "next_height": next,
            })
            .to_string(),
        )),
        _ => Err(Problem::new(
            ProblemKind::Internal,
            "the sequenced block holds no applied governance message",
        )),
    }
}

/// What can be refused without the node: the body is a governance transaction whose signed
/// message decodes and whose signature has the shape of one. Signatures are checked later, under
/// the node's lock, against the membership the message is judged by.
fn cheap_checks(body: &[u8]) -> Result<Value, Problem> {
    let tx: Value = extract::value(body)?;
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
    let Some(signed) = tx.get("governance") else {
        return Err(Problem::at(
            ProblemKind::InvalidTransaction,
            "governance",
            "missing field `governance`",
        ));
    };
    if let Err(refusal) = Envelope::from_value(signed) {
        let mut problem = Problem::new(
            ProblemKind::GovernanceRefused,
            format!("{}: {refusal}", refusal.code()),
        )
        .with("code", refusal.code());
        problem.field = refusal.field().map(str::to_owned);
        return Err(problem);
    }
    Ok(tx)
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
#[utoipa::path(
    get, path = "/v1/proposals", tag = "governance", operation_id = "proposals",
    summary = "Every proposal, oldest first",
    params(("status" = Option<String>, Query, description = "only proposals with this status (`voting`, `queued`, `active`, …)", example = "voting")),
    responses(
        (status = 200, description = "`{\"proposals\":[…]}`: status, tally so far, impact counts", content_type = "application/json", body = Object,
            examples(("voting" = (value = json!(ex::proposals()))))),
        (status = 400, description = "`invalid-request`: an unknown status or parameter", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["governance"]))
)]
async fn proposals(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let q: ProposalsQuery = parse_query(raw.as_deref())?;
    let list = state.node()?.read(|gov, _| {
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
#[utoipa::path(
    get, path = "/v1/proposals/{id}", tag = "governance", operation_id = "proposal",
    summary = "One proposal",
    params(("id" = String, Path, description = "the proposal id", example = "p-unknown")),
    responses(
        (status = 200, description = "Title, description, votes, tally, frozen rules and membership, impact preview", content_type = "application/json", body = Object),
        (status = 404, description = "`unknown-proposal`", content_type = "application/problem+json", body = ProblemDetails,
            examples(("unknown" = (value = json!(ex::unknown_proposal()))))),
    ),
    security(("token" = ["governance"]))
)]
async fn proposal(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let found = state.node()?.read(|gov, _| {
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

/// `GET /v1/proposals/{id}/diff`: what the proposal changes against the state it was built on
/// ([`accord_governance::diff`]).
#[utoipa::path(
    get, path = "/v1/proposals/{id}/diff", tag = "governance", operation_id = "proposal_diff",
    summary = "What a proposal changes against its base",
    params(("id" = String, Path, description = "the proposal id", example = "p-unknown")),
    responses(
        (status = 200, description = "Files, Cedar policies by `@id`, Rhai modules, parameters, voting rules: old and new", content_type = "application/json", body = Object),
        (status = 404, description = "`unknown-proposal`", content_type = "application/problem+json", body = ProblemDetails,
            examples(("unknown" = (value = json!(ex::unknown_proposal()))))),
    ),
    security(("token" = ["governance"]))
)]
async fn proposal_diff(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let found = state.node()?.read(|gov, _| {
        gov.proposals.get(&id).map(|p| {
            let diff = accord_governance::diff::proposal_diff(p, |version| {
                gov.bundles.files(version).map(|f| &**f)
            });
            serde_json::to_string(&diff).unwrap_or_default()
        })
    });
    match found {
        Some(text) => Ok(json_response(text)),
        None => Err(Problem::at(
            ProblemKind::UnknownProposal,
            "id",
            format!("no proposal {id}"),
        )),
    }
}

/// `GET /v1/proposals/{id}/analysis`: the advisory comparison of the proposal's Cedar policies
/// with its base, per action ([`crate::analysis`]).
#[utoipa::path(
    get, path = "/v1/proposals/{id}/analysis", tag = "governance", operation_id = "proposal_analysis",
    summary = "The advisory analysis of a policy proposal",
    description = "Per action, whether the proposal's Cedar policies are equivalent to the base's, stricter, looser or incomparable, with a counterexample request for each direction that differs (the Cedar symbolic compiler and cvc5, a time limit per query). Advisory: outside the state root, never a reason to refuse. `status` is `not_run` (with the reason) when no solver is installed.",
    params(("id" = String, Path, description = "the proposal id", example = "p-unknown")),
    responses(
        (status = 200, description = "`{proposal, advisory, status, base, candidate, actions, ...}`", content_type = "application/json", body = Object),
        (status = 404, description = "`unknown-proposal`", content_type = "application/problem+json", body = ProblemDetails,
            examples(("unknown" = (value = json!(ex::unknown_proposal()))))),
    ),
    security(("token" = ["governance"]))
)]
async fn proposal_analysis(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(json_response(state.analysis(&id).await?))
}

/// The proposals a block accepted, for their analysis.
pub fn accepted_proposals(answer: &BlockAnswer) -> Vec<String> {
    answer
        .results
        .iter()
        .filter_map(|r| match r {
            TxResult::Applied { applied, .. } if applied.kind == "proposal" => {
                Some(applied.id.clone())
            }
            _ => None,
        })
        .collect()
}

/// `GET /v1/policy-set`: the active set, its history, and pending changes.
#[utoipa::path(
    get, path = "/v1/policy-set", tag = "governance", operation_id = "policy_set",
    summary = "The active policy set, its history and pending changes",
    responses(
        (status = 200, description = "`{active, history, pending, applied_height, state_root}`", content_type = "application/json", body = Object,
            examples(("genesis" = (value = json!(ex::policy_set_answer()))))),
    ),
    security(("token" = ["governance"]))
)]
async fn policy_set(State(state): State<AppState>) -> Result<Response, Problem> {
    let body = state.node()?.read(|gov, machine| {
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

/// `GET /v1/members`: the consortium, its members and the voting rules in force, with their digest.
#[utoipa::path(
    get, path = "/v1/members", tag = "governance", operation_id = "members",
    summary = "The consortium, its members and the voting rules in force",
    responses(
        (status = 200, description = "`{consortium, members, total_weight, voting, voting_digest}`", content_type = "application/json", body = Object,
            examples(("genesis" = (value = json!(ex::members_answer()))))),
    ),
    security(("token" = ["governance"]))
)]
async fn members(State(state): State<AppState>) -> Result<Response, Problem> {
    let body = state.node()?.read(|gov, _| {
        json!({
            "consortium": gov.consortium,
            // Which signatures a message must carry (the genesis's choice).
            "signature_scheme": gov.signature_scheme,
            "members": gov.membership.iter().collect::<Vec<_>>(),
            "total_weight": gov.membership.total_weight(),
            "voting": gov.params,
            // What a voting-rule change names as its base.
            "voting_digest": gov.params.digest(),
        })
    });
    Ok(json_response(body.to_string()))
}
