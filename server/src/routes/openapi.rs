//! `GET /openapi.json`: the OpenAPI 3.1 document of the API, generated from the handlers'
//! `#[utoipa::path]` annotations (path, parameters, request body, answers, the role each needs)
//! and their examples ([`super::examples`]). The document is built once and served as text.

use super::Routes;
use crate::respond::json_response;
use axum::response::Response;
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

pub fn router() -> Routes {
    Routes::new().get("/openapi.json", openapi_json)
}

/// An RFC 9457 problem, as every error is answered (`Content-Type: application/problem+json`).
#[derive(utoipa::ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)] // a schema only: the answers are built by `crate::problem`
pub struct ProblemDetails {
    /// `https://accord.dev/problems/<code>`: stable, clients may dispatch on it.
    #[schema(rename = "type")]
    kind: String,
    /// Fixed per type.
    title: String,
    /// The HTTP status.
    status: u16,
    /// Names the field and the reason.
    detail: String,
    /// The offending field's path, when one is to blame (`transactions[3].actor.type`).
    field: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Accord sidecar",
        description = "The HTTP API of `accord serve` (docs/server.md): decisions for a ledger node's transactions, the block feed, governance, the decision log. Guarded operations need a bearer token carrying the role named in their security requirement (`ledger`, `evaluate`, `governance`, `audit`) when the server is configured with tokens.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::evaluate::evaluate,
        super::evaluate::evaluate_batch,
        super::authzen::evaluation,
        super::authzen::evaluations,
        super::authzen::configuration,
        super::blocks::blocks,
        super::governance::governance,
        super::governance::proposals,
        super::governance::proposal,
        super::governance::proposal_diff,
        super::governance::proposal_analysis,
        super::governance::policy_set,
        super::governance::members,
        super::consents::consents,
        super::audit::decisions,
        super::audit::verify,
        super::backup::backup,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
        openapi_json,
    ),
    components(schemas(ProblemDetails)),
    modifiers(&Guarded),
    tags(
        (name = "evaluate", description = "Decisions for access transactions (contract §1, §2)"),
        (name = "authzen", description = "The OpenID AuthZEN Authorization API 1.0"),
        (name = "ledger", description = "The block feed (contract §5)"),
        (name = "governance", description = "Signed governance messages and what they govern (contract §4)"),
        (name = "audit", description = "The decision log and consent state"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer-token scheme, and to every operation that requires it the 401 and 403
/// answers the token check gives.
struct Guarded;

impl Modify for Guarded {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "token",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "A token of the tokens file (`--tokens`); the operation's security requirement names the role it must carry",
                        ))
                        .build(),
                ),
            );
        }
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                if op.security.is_none() {
                    continue;
                }
                op.responses.responses.insert(
                    "401".into(),
                    problem("`unauthorized`: no bearer token, or none of the configured ones")
                        .into(),
                );
                op.responses.responses.insert(
                    "403".into(),
                    problem("`forbidden`: the token does not carry the role this operation needs")
                        .into(),
                );
            }
        }
    }
}

/// The document, built once.
pub fn document() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}

#[utoipa::path(
    get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document of the API", content_type = "application/json", body = Object)),
)]
async fn openapi_json() -> Response {
    json_response(document().to_owned())
}
