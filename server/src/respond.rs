//! What handlers answer besides problems: a JSON body already serialized, and a decision's
//! outcome as the request's span records it.

use accord_engine::Decision;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// A 200 with a JSON body already serialized.
pub fn json_response(body: String) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `allow` or `deny`, for the request's span.
pub fn outcome(decision: &Decision) -> &'static str {
    if decision.is_allow() {
        "allow"
    } else {
        "deny"
    }
}
