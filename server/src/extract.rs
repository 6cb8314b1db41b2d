//! What handlers read from a request. Bodies: the content type must be JSON, the size within
//! `--body-limit`, and parse errors become problems that name the line and column (syntax) or the
//! field (shape). Query strings: strictly percent-encoded, each parameter checked by its type.

use crate::problem::{Problem, ProblemKind};
use crate::state::AppState;
use accord_engine::json::{self, JsonError, JsonErrorKind};
use accord_engine::{AccessRequest, Transaction};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;

/// The client's IP address, when the server was started with connection info (`serve` is; a
/// router driven directly in a test is not).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<crate::listener::PeerAddr>>()
                .map(|info| info.0 .0.ip()),
        ))
    }
}

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

/// Parses `bytes` as `T` through the engine's one JSON reader ([`accord_engine::json`]), which
/// refuses duplicate keys at any depth. Syntax errors are `malformed-json` with line and column;
/// a repeated key or a shape error is `invalid-request` naming the field. The document must be
/// an object.
pub fn parse<'a, T: json::Strict + serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Problem> {
    parse_as(bytes, ProblemKind::InvalidRequest)
}

/// As [`parse`], with the problem kind of an object of the wrong shape (e.g. `invalid-block`); a
/// body that is not an object is `invalid-request` whatever the endpoint.
pub fn parse_as<'a, T: json::Strict + serde::Deserialize<'a>>(
    bytes: &'a [u8],
    kind: ProblemKind,
) -> Result<T, Problem> {
    if !first_non_space_is(bytes, b'{') {
        if let Err(e) = json::value_from_slice(bytes) {
            return Err(json_problem(e, kind, None));
        }
        return Err(Problem::at(
            ProblemKind::InvalidRequest,
            ".",
            "the body must be a JSON object",
        ));
    }
    json::from_slice(bytes).map_err(|e| json_problem(e, kind, None))
}

/// A free-form JSON object body, read as strictly as [`parse`].
pub fn value(bytes: &[u8]) -> Result<serde_json::Value, Problem> {
    parse::<json::Object>(bytes).map(|object| serde_json::Value::Object(object.into()))
}

fn first_non_space_is(bytes: &[u8], c: u8) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == c)
}

/// A reading error as a problem: a syntax error is `malformed-json` (400); a repeated key or a
/// shape error is `kind`, its field prefixed with `at` (a batch item's `transactions[3]`).
pub fn json_problem(e: JsonError, kind: ProblemKind, at: Option<&str>) -> Problem {
    match e.kind {
        JsonErrorKind::Syntax => {
            let mut p = Problem::new(ProblemKind::MalformedJson, e.to_string());
            p.field = None;
            p
        }
        JsonErrorKind::DuplicateKey | JsonErrorKind::Shape => {
            Problem::at(kind, within(at, &e.field), e.reason)
        }
    }
}

/// `field` under the path `at`.
fn within(at: Option<&str>, field: &str) -> String {
    match at {
        None => field.to_owned(),
        Some(at) if field == "." => at.to_owned(),
        Some(at) if field.starts_with('[') => format!("{at}{field}"),
        Some(at) => format!("{at}.{field}"),
    }
}

/// Parses one access transaction. `at` prefixes the field path (`transactions[3]`).
///
/// Fast path: the engine's strict parser straight from the text. Only when that fails is the
/// text read again as a value, to tell a syntax error (400) from an invalid transaction (422)
/// and from a consent or governance transaction (422, field `kind`).
pub fn access_request(text: &[u8], at: Option<&str>) -> Result<AccessRequest, Problem> {
    if let Ok(s) = std::str::from_utf8(text) {
        if let Ok(request) = AccessRequest::from_json(s) {
            return Ok(request);
        }
    }
    let value = json::value_from_slice(text)
        .map_err(|e| json_problem(e, ProblemKind::InvalidTransaction, at))?;
    if !value.is_object() {
        return Err(Problem::at(
            ProblemKind::InvalidTransaction,
            within(at, "."),
            "a transaction must be a JSON object",
        ));
    }
    match Transaction::from_value(value) {
        Err(e) => Err(Problem::at(
            ProblemKind::InvalidTransaction,
            within(at, &e.field),
            &e.reason,
        )),
        Ok(Transaction::Access(request)) => Ok(*request),
        Ok(other) => {
            let kind = other.kind();
            Err(Problem::at(
                ProblemKind::NotAnAccessTransaction,
                within(at, "kind"),
                format!(
                    "a `{kind}` transaction changes state and gets no decision; send it in a block (POST /v1/blocks)"
                ),
            ))
        }
    }
}

/// Refuses a query whose `%` escapes are not two hex digits, or decode to bytes that are not
/// UTF-8: the form decoder would otherwise keep `%ZZ` as text, or replace the bytes, and answer
/// for a value the client did not send.
fn check_percent_encoding(raw: &str) -> Result<(), Problem> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                    let shown: String = raw[i..].chars().take(3).collect();
                    return Err(Problem::new(
                        ProblemKind::InvalidRequest,
                        format!("query: `{shown}` is not a percent-encoded byte (`%` and two hex digits)"),
                    ));
                };
                decoded.push(byte);
                i += 3;
            }
            b => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            "query: the percent-encoded bytes are not UTF-8",
        ));
    }
    Ok(())
}

/// Parses a query string into `T`; a bad parameter is an `invalid-request` problem naming it.
pub fn parse_query<T: serde::de::DeserializeOwned + Default>(
    raw: Option<&str>,
) -> Result<T, Problem> {
    match raw {
        None | Some("") => Ok(T::default()),
        Some(raw) => {
            check_percent_encoding(raw)?;
            let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
            serde_path_to_error::deserialize(de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner().to_string();
                if field == "." {
                    Problem::new(ProblemKind::InvalidRequest, format!("query: {inner}"))
                } else {
                    Problem::at(ProblemKind::InvalidRequest, field, inner)
                }
            })
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
        let p = value(b"{\n  \"a\": ?\n}").expect_err("malformed");
        assert_eq!(p.kind, ProblemKind::MalformedJson);
        assert!(p.detail.starts_with("line 2 column"), "{}", p.detail);
    }

    #[test]
    fn text_after_the_document_is_malformed_json() {
        let p = value(b"{\"a\": 1} {\"b\": 2}").expect_err("two documents");
        assert_eq!(p.kind, ProblemKind::MalformedJson);
        assert_eq!(p.detail, "line 1 column 10: trailing characters");
        assert!(value(b"{\"a\": 1}\n").is_ok());
    }

    #[test]
    fn a_shape_error_names_the_field_as_before() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            items: Vec<u32>,
        }
        impl json::Strict for Body {}
        let p = parse::<Body>(br#"{"items": [1, "two"]}"#).expect_err("bad item");
        assert_eq!(p.kind, ProblemKind::InvalidRequest);
        assert_eq!(p.field.as_deref(), Some("items[1]"));
    }
}
