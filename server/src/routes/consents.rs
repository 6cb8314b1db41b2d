//! `GET /v1/consents?patient=…`: the consent state as of the last applied block.

use super::examples as ex;
use super::openapi::ProblemDetails;
use super::Routes;
use crate::extract::parse_query;
use crate::problem::{Problem, ProblemKind};
use crate::respond::json_response;
use crate::state::AppState;
use accord_engine::consent::ConsentRegistry;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Routes {
    Routes::new().get("/v1/consents", consents)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConsentsQuery {
    patient: Option<String>,
}

/// `GET /v1/consents?patient=…`: every consent of one patient, as of the last applied block.
#[utoipa::path(
    get, path = "/v1/consents", tag = "audit", operation_id = "consents",
    summary = "Every consent of one patient, as of the last applied block",
    params(("patient" = String, Query, description = "the patient's id", example = "patient/p-1")),
    responses(
        (status = 200, description = "`{patient, consents}`", content_type = "application/json", body = Object,
            examples(("patient" = (value = json!(ex::consents_answer()))))),
        (status = 400, description = "`invalid-request`: `patient` missing, or an unknown parameter", content_type = "application/problem+json", body = ProblemDetails),
    ),
    security(("token" = ["audit"]))
)]
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
