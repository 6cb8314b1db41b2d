//! Request bodies: the content type must be JSON, the size within `--body-limit`, and parse errors
//! become problems that name the line and column (syntax) or the field (shape).

use crate::server::problem::{Problem, ProblemKind};
use crate::server::state::AppState;
use accord_engine::{AccessRequest, Transaction};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A request body that claims to be JSON, read whole within the body limit.
pub struct JsonBody(pub Bytes);

impl FromRequest<AppState> for JsonBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            let shown = if content_type.is_empty() {
                "none".to_owned()
            } else {
                format!("`{content_type}`")
            };
            return Err(Problem::new(
                ProblemKind::UnsupportedMediaType,
                format!("content type {shown}: send `application/json`"),
            ));
        }
        let limit = state.limits.body_limit;
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    ProblemKind::PayloadTooLarge,
                    format!("the body is larger than the limit of {limit} bytes (--body-limit)"),
                )
            } else {
                Problem::new(ProblemKind::MalformedJson, format!("reading the body: {e}"))
            }
        })?;
        Ok(JsonBody(bytes))
    }
}

/// `application/json`, or any `application/*+json`, with parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as `T`. Syntax errors are `malformed-json` with line and column; shape errors
/// are `invalid-request` naming the field. The document must be an object.
pub fn parse<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Problem> {
    if let Some(value) = typed(bytes) {
        return Ok(value);
    }
    if !first_non_space_is(bytes, b'{') {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return Err(syntax(&e));
        }
        return Err(Problem::at(
            ProblemKind::InvalidRequest,
            ".",
            "the body must be a JSON object",
        ));
    }
    // The path is tracked only to explain a failure (tracking costs a fifth of parsing): `typed`
    // above read the body without it, and this second pass fails at the same spot.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(shape)?;
    de.end().map_err(|e| syntax(&e))?;
    Ok(value)
}

/// As [`parse`], for owned targets.
pub fn parse_owned<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    parse(bytes)
}

/// `bytes` as `T` when they are a JSON object of that shape; `None` otherwise, with no problem
/// built: [`parse`], or the caller's own parse, then explains the failure. For bodies whose full
/// parse goes through an intermediate value (a block) that a valid body need not pay for.
pub fn typed<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    if !first_non_space_is(bytes, b'{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    T::deserialize(&mut de)
        .and_then(|v| de.end().map(|_| v))
        .ok()
}

fn first_non_space_is(bytes: &[u8], c: u8) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == c)
}

fn syntax(e: &serde_json::Error) -> Problem {
    let mut p = Problem::new(
        ProblemKind::MalformedJson,
        format!(
            "line {} column {}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        ),
    );
    p.field = None;
    p
}

fn shape(e: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let field = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return syntax(&inner);
    }
    Problem::at(
        ProblemKind::InvalidRequest,
        field,
        strip_position(&inner.to_string()),
    )
}

/// serde_json appends " at line L column C"; the detail says it first.
fn strip_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
}

/// Parses one access transaction. `at` prefixes the field path (`transactions[3]`).
///
/// Fast path: the engine's strict parser straight from the text. Only when that fails is the
/// text parsed again to tell a syntax error (400) from an invalid transaction (422) and from a
/// consent or governance transaction (422, field `kind`).
pub fn access_request(text: &[u8], at: Option<&str>) -> Result<AccessRequest, Problem> {
    let within = |field: &str| match at {
        None => field.to_owned(),
        Some(at) if field == "." => at.to_owned(),
        Some(at) if field.starts_with('[') => format!("{at}{field}"),
        Some(at) => format!("{at}.{field}"),
    };
    if let Ok(s) = std::str::from_utf8(text) {
        if let Ok(request) = AccessRequest::from_json(s) {
            return Ok(request);
        }
    }
    let value: Value = serde_json::from_slice(text).map_err(|e| syntax(&e))?;
    if !value.is_object() {
        return Err(Problem::at(
            ProblemKind::InvalidTransaction,
            within("."),
            "a transaction must be a JSON object",
        ));
    }
    match Transaction::from_value(value) {
        Err(e) => Err(Problem::at(
            ProblemKind::InvalidTransaction,
            within(&e.field),
            &e.reason,
        )),
        Ok(Transaction::Access(request)) => Ok(*request),
        Ok(other) => {
            let kind = other.kind();
            Err(Problem::at(
                ProblemKind::NotAnAccessTransaction,
                within("kind"),
                format!(
                    "a `{kind}` transaction changes state and gets no decision; send it in a block (POST /v1/blocks)"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("Application/JSON"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let p = parse_owned::<Value>(b"{\n  \"a\": ?\n}").expect_err("malformed");
        assert_eq!(p.kind, ProblemKind::MalformedJson);
        assert!(p.detail.starts_with("line 2 column"), "{}", p.detail);
    }

    #[test]
    fn text_after_the_document_is_malformed_json() {
        let p = parse_owned::<Value>(b"{\"a\": 1} {\"b\": 2}").expect_err("two documents");
        assert_eq!(p.kind, ProblemKind::MalformedJson);
        assert_eq!(p.detail, "line 1 column 10: trailing characters");
        assert!(parse_owned::<Value>(b"{\"a\": 1}\n").is_ok());
    }

    #[test]
    fn a_shape_error_names_the_field_as_before() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            items: Vec<u32>,
        }
        let p = parse_owned::<Body>(br#"{"items": [1, "two"]}"#).expect_err("bad item");
        assert_eq!(p.kind, ProblemKind::InvalidRequest);
        assert_eq!(p.field.as_deref(), Some("items[1]"));
    }
}
