//! The OpenID AuthZEN Authorization API 1.0 over Accord: `POST /access/v1/evaluation`,
//! `POST /access/v1/evaluations` and `GET /.well-known/authzen-configuration`.
//!
//! Mapping (docs/server.md has the full table and an example):
//! - `subject.id` / `subject.type` → `actor.id` / `actor.type`; `subject.properties.*` → the other
//!   `actor` fields (`organization`, `roles`, `jurisdiction`, `attributes`).
//! - `action.name` → `action`.
//! - `resource.id` / `resource.type` → `resource.id` / `resource.type`; `resource.properties.*` →
//!   the other `resource` fields (`patient`, `data_categories`, `jurisdiction`, `hash`, ...).
//! - `context.id` → the transaction id (else `X-Request-ID`, else a generated one);
//!   `context.timestamp` → `timestamp` (else the server's clock, the one place it is read);
//!   every other `context` member → the transaction's `context`.
//!
//! The AuthZEN envelope ignores members it does not know, as the spec asks; the Accord content
//! (`properties`, `context`) is parsed as strictly as docs/contract.md §1, so a typo'd fact is refused
//! instead of silently read as "not established". The answer is `{"decision": bool, "context":
//! {...}}` where the context carries Accord's `tx`, `policy_set`, `jurisdictions`, `reasons`,
//! `obligations`, `errors` and the `timestamp` used. A deny is HTTP 200 with `decision: false`.

use super::examples as ex;
use super::openapi::ProblemDetails;
use super::Routes;
use crate::extract::{self, JsonBody};
use crate::problem::{Problem, ProblemKind};
use crate::respond::{json_response, outcome};
use crate::state::AppState;
use accord_engine::json;
use accord_engine::{AccessRequest, Decision, Transaction};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// A subject or resource: `type`, `id`, `properties`; other members are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
struct Entity {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    properties: Option<json::Object>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ActionIn {
    name: Option<String>,
}

/// One evaluation (also the defaults of an `evaluations` request).
#[derive(Debug, Clone, Default, Deserialize)]
struct EvaluationIn {
    subject: Option<Entity>,
    action: Option<ActionIn>,
    resource: Option<Entity>,
    context: Option<json::Object>,
}

#[derive(Debug, Default, Deserialize)]
struct OptionsIn {
    evaluations_semantic: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct EvaluationsIn {
    subject: Option<Entity>,
    action: Option<ActionIn>,
    resource: Option<Entity>,
    context: Option<json::Object>,
    evaluations: Option<Vec<EvaluationIn>>,
    options: Option<OptionsIn>,
}

// INVARIANT (json::Strict): derived structs whose free-form members are `json::Object`s.
impl json::Strict for EvaluationIn {}
impl json::Strict for EvaluationsIn {}

/// `options.evaluations_semantic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

/// The two evaluation endpoints; the guarded router of [`crate::routes`] holds them.
pub fn router() -> Routes {
    Routes::new()
        .post("/access/v1/evaluation", evaluation)
        .post("/access/v1/evaluations", evaluations)
}

/// The discovery document, open like the health endpoints.
pub fn discovery_router() -> Routes {
    Routes::new().get("/.well-known/authzen-configuration", configuration)
}

/// `POST /access/v1/evaluation`.
#[utoipa::path(
    post, path = "/access/v1/evaluation", tag = "authzen", operation_id = "authzen_evaluation",
    summary = "AuthZEN access evaluation",
    description = "An OpenID AuthZEN 1.0 access evaluation → `{\"decision\": bool, \"context\": {…}}` with Accord's decision in `context`.",
    request_body(content = Object, content_type = "application/json", description = "AuthZEN subject, action, resource, context",
        examples(("allow" = (summary = "A treatment read", value = json!(ex::authzen_evaluation()))),
                 ("invalid" = (summary = "An unknown subject type", value = json!(ex::authzen_invalid()))))),
    responses(
        (status = 200, description = "The decision", content_type = "application/json", body = Object,
            examples(("allow" = (value = json!(ex::authzen_answer()))))),
        (status = 422, description = "What maps onto a transaction does not check; `field` names the AuthZEN member", content_type = "application/problem+json", body = ProblemDetails,
            examples(("invalid" = (value = json!(ex::authzen_invalid_problem()))))),
        (status = 503, description = "`decision-log-unavailable`, `overloaded` or `timeout`", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["evaluate"]))
)]
async fn evaluation(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, Problem> {
    let input: EvaluationIn = extract::parse(&body.0)?;
    let fallback_id = request_id(&headers).unwrap_or_else(generated_id);
    let (request, timestamp) = to_access(&input, &fallback_id)?;
    let span = tracing::Span::current();
    span.record("tx", request.id.as_str());
    let requests = [request];
    let storage = state.decision_storage()?;
    let decisions = storage.decide_all(&requests);
    state.record(&storage.log, &requests, &decisions).await?;
    let mut answer = Value::Null;
    if let Some(d) = decisions.first() {
        span.record("outcome", outcome(d));
        answer = response(d, &timestamp);
    }
    Ok(json_response(answer.to_string()))
}

/// `POST /access/v1/evaluations`.
#[utoipa::path(
    post, path = "/access/v1/evaluations", tag = "authzen", operation_id = "authzen_evaluations",
    summary = "AuthZEN access evaluations",
    description = "Top-level members are defaults for each item of `evaluations`; results in request order. `options.evaluations_semantic`: `execute_all` (default), `deny_on_first_deny`, `permit_on_first_permit`.",
    request_body(content = Object, content_type = "application/json", description = "AuthZEN defaults and `evaluations`",
        examples(("execute-all" = (summary = "Two reads by one subject", value = json!(ex::authzen_evaluations()))))),
    responses(
        (status = 200, description = "One result per evaluated item", content_type = "application/json", body = Object,
            examples(("execute-all" = (value = json!(ex::authzen_evaluations_answer()))))),
        (status = 413, description = "`batch-too-large`: more than `--max-batch` items", content_type = "application/problem+json", body = ProblemDetails),
        (status = 503, description = "`decision-log-unavailable`, `overloaded` or `timeout`", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["evaluate"]))
)]
async fn evaluations(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, Problem> {
    let input: EvaluationsIn = extract::parse(&body.0)?;
    let semantic = match input
        .options
        .as_ref()
        .and_then(|o| o.evaluations_semantic.as_deref())
    {
        None | Some("execute_all") => Semantic::ExecuteAll,
        Some("deny_on_first_deny") => Semantic::DenyOnFirstDeny,
        Some("permit_on_first_permit") => Semantic::PermitOnFirstPermit,
        Some(other) => {
            return Err(Problem::at(
                ProblemKind::InvalidRequest,
                "options.evaluations_semantic",
                format!("unknown semantic `{other}`, expected one of `execute_all`, `deny_on_first_deny`, `permit_on_first_permit`"),
            ))
        }
    };
    let defaults = EvaluationIn {
        subject: input.subject,
        action: input.action,
        resource: input.resource,
        context: input.context,
    };
    let base_id = request_id(&headers).unwrap_or_else(generated_id);
    let items = input.evaluations.unwrap_or_default();
    // No `evaluations`: one evaluation of the defaults, answered in the single-evaluation shape.
    if items.is_empty() {
        let (request, timestamp) = to_access(&defaults, &base_id)?;
        let requests = [request];
        let storage = state.decision_storage()?;
        let decisions = storage.decide_all(&requests);
        state.record(&storage.log, &requests, &decisions).await?;
        let answer = decisions
            .first()
            .map(|d| response(d, &timestamp))
            .unwrap_or(Value::Null);
        return Ok(json_response(answer.to_string()));
    }
    let max = state.limits.max_batch;
    if items.len() > max {
        return Err(Problem::at(
            ProblemKind::BatchTooLarge,
            "evaluations",
            format!(
                "{} evaluations, at most {max} per request (--max-batch)",
                items.len()
            ),
        ));
    }
    // One snapshot of policy and consent for the whole request; decide in order, stopping where
    // the semantic says; every decision made is logged before anything is answered.
    let storage = state.decision_storage()?;
    let set = storage.policy.current();
    let consents = storage.consents.load();
    let mut results: Vec<Result<(usize, String), Problem>> = Vec::with_capacity(items.len());
    let mut requests = Vec::with_capacity(items.len());
    let mut decisions: Vec<Decision> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let merged = EvaluationIn {
            subject: item.subject.or_else(|| defaults.subject.clone()),
            action: item.action.or_else(|| defaults.action.clone()),
            resource: item.resource.or_else(|| defaults.resource.clone()),
            context: item.context.or_else(|| defaults.context.clone()),
        };
        let allowed = match to_access(&merged, &format!("{base_id}#{i}")) {
            Ok((request, timestamp)) => {
                let decision = set.decide(&request, &**consents);
                let allow = decision.is_allow();
                results.push(Ok((decisions.len(), timestamp)));
                requests.push(request);
                decisions.push(decision);
                allow
            }
            Err(mut problem) => {
                problem.field = problem.field.map(|f| format!("evaluations[{i}].{f}"));
                results.push(Err(problem));
                false
            }
        };
        let stop = match semantic {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !allowed,
            Semantic::PermitOnFirstPermit => allowed,
        };
        if stop {
            break;
        }
    }
    state.record(&storage.log, &requests, &decisions).await?;
    let answers: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok((index, timestamp)) => decisions
                .get(index)
                .map(|d| response(d, &timestamp))
                .unwrap_or(Value::Null),
            Err(problem) => json!({ "decision": false, "context": { "error": problem.body() } }),
        })
        .collect();
    tracing::Span::current().record("outcome", format!("{} evaluated", answers.len()).as_str());
    Ok(json_response(json!({ "evaluations": answers }).to_string()))
}

/// `GET /.well-known/authzen-configuration`: the PDP's base URL (from the `Host` header) and its
/// endpoints.
#[utoipa::path(
    get, path = "/.well-known/authzen-configuration", tag = "authzen", operation_id = "authzen_configuration",
    summary = "AuthZEN PDP metadata",
    responses(
        (status = 200, description = "The PDP's base URL and endpoints", content_type = "application/json", body = Object,
            examples(("metadata" = (value = json!(ex::authzen_configuration()))))),
    ),
)]
async fn configuration(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    let base = format!("http://{host}");
    json_response(
        json!({
            "policy_decision_point": base,
            "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
            "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
        })
        .to_string(),
    )
}

/// The AuthZEN answer for one decision.
fn response(decision: &Decision, timestamp: &str) -> Value {
    let mut context = match serde_json::to_value(decision) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    context.shift_remove("decision");
    context.insert("timestamp".into(), Value::String(timestamp.to_owned()));
    json!({ "decision": decision.is_allow(), "context": context })
}

/// Maps one AuthZEN evaluation onto an Accord access transaction; returns it with the timestamp
/// it carries.
fn to_access(e: &EvaluationIn, fallback_id: &str) -> Result<(AccessRequest, String), Problem> {
    let subject = e.subject.as_ref().ok_or_else(|| missing("subject"))?;
    let resource = e.resource.as_ref().ok_or_else(|| missing("resource"))?;
    let action = e
        .action
        .as_ref()
        .and_then(|a| a.name.clone())
        .ok_or_else(|| missing("action.name"))?;
    let actor = entity(subject, "subject")?;
    let resource = entity(resource, "resource")?;
    let mut context = e.context.clone().unwrap_or_default();
    let id = match context.remove("id") {
        None => fallback_id.to_owned(),
        Some(Value::String(id)) => id,
        Some(_) => {
            return Err(Problem::at(
                ProblemKind::InvalidTransaction,
                "context.id",
                "must be a string",
            ))
        }
    };
    let timestamp = match context.remove("timestamp") {
        None => now_rfc3339(),
        Some(Value::String(t)) => t,
        Some(_) => {
            return Err(Problem::at(
                ProblemKind::InvalidTransaction,
                "context.timestamp",
                "must be an RFC 3339 string",
            ))
        }
    };
    let tx = json!({
        "id": id,
        "kind": "access",
        "timestamp": timestamp,
        "actor": actor,
        "action": action,
        "resource": resource,
        "context": context,
    });
    match Transaction::from_value(tx) {
        Ok(Transaction::Access(request)) => Ok((*request, timestamp)),
        Ok(_) => Err(Problem::new(
            ProblemKind::Internal,
            "an AuthZEN request mapped to a non-access transaction",
        )),
        Err(e) => Err(Problem::at(
            ProblemKind::InvalidTransaction,
            authzen_field(&e.field),
            &e.reason,
        )),
    }
}

fn missing(field: &str) -> Problem {
    Problem::at(ProblemKind::InvalidRequest, field, "missing")
}

/// `{type, id, properties}` → the Accord object: properties plus `id` and `type`.
fn entity(e: &Entity, place: &str) -> Result<Map<String, Value>, Problem> {
    let id =
        e.id.clone()
            .ok_or_else(|| missing(&format!("{place}.id")))?;
    let kind = e
        .kind
        .clone()
        .ok_or_else(|| missing(&format!("{place}.type")))?;
    let mut map: Map<String, Value> = e.properties.clone().unwrap_or_default().into();
    for reserved in ["id", "type"] {
        if map.contains_key(reserved) {
            return Err(Problem::at(
                ProblemKind::InvalidTransaction,
                format!("{place}.properties.{reserved}"),
                format!("give it as `{place}.{reserved}`"),
            ));
        }
    }
    map.insert("id".into(), Value::String(id));
    map.insert("type".into(), Value::String(kind));
    Ok(map)
}

/// An Accord field path (`actor.organization`) in AuthZEN terms (`subject.properties.organization`).
fn authzen_field(field: &str) -> String {
    let split = field.find(['.', '[']).unwrap_or(field.len());
    let (head, rest) = field.split_at(split);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    let entity = |place: &str| -> String {
        if rest.is_empty() {
            return place.to_owned();
        }
        let key_end = rest.find(['.', '[']).unwrap_or(rest.len());
        match &rest[..key_end] {
            "id" | "type" => format!("{place}.{rest}"),
            _ => format!("{place}.properties.{rest}"),
        }
    };
    match head {
        "actor" => entity("subject"),
        "resource" => entity("resource"),
        "action" => "action.name".to_owned(),
        "id" => "context.id".to_owned(),
        "timestamp" => "context.timestamp".to_owned(),
        _ => field.to_owned(),
    }
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .map(str::to_owned)
}

static GENERATED: AtomicU64 = AtomicU64::new(0);

fn generated_id() -> String {
    let n = GENERATED.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("authzen/{nanos:x}-{n}")
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::authzen_field;

    #[test]
    fn accord_fields_map_back_to_authzen_members() {
        assert_eq!(authzen_field("actor.type"), "subject.type");
        assert_eq!(
            authzen_field("actor.roles[0]"),
            "subject.properties.roles[0]"
        );
        assert_eq!(authzen_field("actor"), "subject");
        assert_eq!(
            authzen_field("resource.patient.birth_date"),
            "resource.properties.patient.birth_date"
        );
        assert_eq!(authzen_field("resource.id"), "resource.id");
        assert_eq!(authzen_field("action"), "action.name");
        assert_eq!(authzen_field("timestamp"), "context.timestamp");
        assert_eq!(
            authzen_field("context.purpose_of_use"),
            "context.purpose_of_use"
        );
    }
}
