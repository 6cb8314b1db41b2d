//! The one JSON reader behind every door: the command line, `/v1/evaluate` and its batches,
//! AuthZEN, blocks, governance messages and consent transactions all read JSON text through
//! [`from_slice`] / [`from_str`] (or [`value_from_str`] where a free-form value is wanted).
//!
//! It refuses what `serde_json` alone accepts and a policy bypass needs: an object that names a
//! key twice (`{"action":"delete","action":"read"}`). `serde_json` keeps the last value, while a
//! gateway or ledger in front of Accord may read the first; the two would then see different
//! transactions. Duplicates are refused at every depth, free-form `attributes` included, and the
//! error names the key's path (`context.attributes.flag`).
//!
//! Errors are one of three kinds, so that each door can answer in its own terms: the text is not
//! JSON ([`JsonErrorKind::Syntax`], with line and column), a key appears twice
//! ([`JsonErrorKind::DuplicateKey`]), or the JSON does not have the expected shape
//! ([`JsonErrorKind::Shape`], naming the field).
//!
//! INVARIANT: a value this module returns was read from text in which no object repeats a key,
//! so every reader of the same bytes that follows RFC 8259's unique-name recommendation sees the
//! same document Accord decided.

mod strict;
mod unique;

pub use strict::Object;
pub use unique::check_unique_keys;

use serde::de::DeserializeSeed;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use strict::{StrictValue, DUPLICATE_KEY};

/// What kind of failure a [`JsonError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// Not JSON text (or trailing characters after the document).
    Syntax,
    /// An object names the same key twice; `field` is the path of the repeated key.
    DuplicateKey,
    /// Valid JSON of the wrong shape; `field` is the offending field's path.
    Shape,
}

/// Why JSON text could not be read, with the path of the offending field (`.` for the document).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct JsonError {
    pub kind: JsonErrorKind,
    /// Dotted path, e.g. `actor.type` or `transactions[3].context.attributes.flag`; `.` for the
    /// document itself.
    pub field: String,
    /// The reason, without serde_json's trailing position.
    pub reason: String,
    /// Where in the text reading stopped (1-based; 0 when unknown).
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            JsonErrorKind::Syntax => {
                write!(
                    f,
                    "line {} column {}: {}",
                    self.line, self.column, self.reason
                )
            }
            _ => write!(f, "field `{}`: {}", self.field, self.reason),
        }
    }
}

impl JsonError {
    fn at(kind: JsonErrorKind, field: String, e: &serde_json::Error) -> JsonError {
        JsonError {
            kind,
            field,
            reason: strip_position(&e.to_string()).to_owned(),
            line: e.line(),
            column: e.column(),
        }
    }
}

/// A type whose deserialization refuses a repeated key at every depth, so that [`from_slice`]
/// may read it in one pass.
///
/// INVARIANT: every object the type reads is either a `#[derive(Deserialize)]` struct (serde's
/// derive refuses a repeated field name), an [`Object`], or a value read through the strict
/// value reader; it holds no `serde_json::Value`, `serde_json::Map` or other map type, which
/// keep the last of two equal keys. The tests check each implementation against documents with
/// a key repeated at every depth.
pub trait Strict {}

impl Strict for Object {}
impl<T: Strict> Strict for Vec<T> {}
impl<T: Strict> Strict for Option<T> {}
impl<T: Strict> Strict for Box<T> {}
// A raw value is left unread: it is checked when it is read, through this module.
impl Strict for &serde_json::value::RawValue {}

/// Reads `T` from JSON bytes. Duplicate keys are refused at any depth ([`Strict`]).
///
/// A valid document is read in one pass without tracking paths; only a failing one is read again
/// to name the field, and the second read fails at the same spot.
pub fn from_slice<'a, T: Strict + Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, JsonError> {
    typed(|| serde_json::Deserializer::from_slice(bytes))
}

/// [`from_slice`] for text (which, being UTF-8 already, is not validated again).
pub fn from_str<'a, T: Strict + Deserialize<'a>>(text: &'a str) -> Result<T, JsonError> {
    typed(|| serde_json::Deserializer::from_str(text))
}

fn typed<'a, R: serde_json::de::Read<'a>, T: Deserialize<'a>>(
    reader: impl Fn() -> serde_json::Deserializer<R>,
) -> Result<T, JsonError> {
    let mut de = reader();
    match T::deserialize(&mut de).and_then(|v| de.end().map(|()| v)) {
        Ok(value) => Ok(value),
        Err(first) => Err(explain(&first, reader(), |de| {
            serde_path_to_error::deserialize::<_, T>(de).map(drop)
        })),
    }
}

/// For `#[serde(deserialize_with = "accord_engine::json::strict_value")]` on a free-form
/// `Value` field of a [`Strict`] type: the value refuses a repeated key at any depth.
pub fn strict_value<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    StrictValue.deserialize(deserializer)
}

/// As [`strict_value`], for a `Vec<Value>` field.
pub fn strict_values<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Value>, D::Error> {
    struct Values;
    impl<'de> serde::de::Visitor<'de> for Values {
        type Value = Vec<Value>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of JSON values")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<Value>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(StrictValue)? {
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_seq(Values)
}

/// Reads any `T` through a free-form value read strictly: for types that are not [`Strict`]
/// (stored records, test fixtures). Costs a value's allocation more than [`from_slice`].
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let value = value_from_slice(bytes)?;
    match T::deserialize(&value) {
        Ok(parsed) => Ok(parsed),
        Err(_) => match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(parsed) => Ok(parsed),
            Err(e) => Err(JsonError {
                kind: JsonErrorKind::Shape,
                field: path_or_dot(e.path().to_string()),
                reason: strip_position(&e.into_inner().to_string()).to_owned(),
                line: 0,
                column: 0,
            }),
        },
    }
}

/// [`parse`] for text.
pub fn parse_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    parse(text.as_bytes())
}

/// A free-form JSON value, refusing duplicate keys at any depth.
pub fn value_from_str(text: &str) -> Result<Value, JsonError> {
    value(|| serde_json::Deserializer::from_str(text))
}

/// A free-form JSON value from bytes, refusing duplicate keys at any depth.
pub fn value_from_slice(bytes: &[u8]) -> Result<Value, JsonError> {
    value(|| serde_json::Deserializer::from_slice(bytes))
}

fn value<'a, R: serde_json::de::Read<'a>>(
    reader: impl Fn() -> serde_json::Deserializer<R>,
) -> Result<Value, JsonError> {
    let mut de = reader();
    match StrictValue
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
    {
        Ok(value) => Ok(value),
        Err(first) => Err(explain(&first, reader(), |de| {
            let mut track = serde_path_to_error::Track::new();
            let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
            StrictValue
                .deserialize(tracked)
                .map(drop)
                .map_err(|e| serde_path_to_error::Error::new(track.path(), e))
        })),
    }
}

/// Explains why a document failed to read (`first`): `again` reads it once more from `de`,
/// tracking the path, and fails at the same spot.
fn explain<'a, R: serde_json::de::Read<'a>>(
    first: &serde_json::Error,
    mut de: serde_json::Deserializer<R>,
    again: impl FnOnce(
        &mut serde_json::Deserializer<R>,
    ) -> Result<(), serde_path_to_error::Error<serde_json::Error>>,
) -> JsonError {
    match again(&mut de) {
        // Trailing characters: found only after the document.
        Ok(()) => JsonError::at(JsonErrorKind::Syntax, ".".to_owned(), first),
        Err(e) => {
            let path = path_or_dot(e.path().to_string());
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                // A syntax error names the field it interrupted as well as its position.
                return JsonError::at(JsonErrorKind::Syntax, path, &inner);
            }
            let message = inner.to_string();
            // serde's derive refuses a repeated struct field before reading its value, so the
            // path tracked is the struct's: the field is added here.
            if let Some(name) = message
                .strip_prefix("duplicate field `")
                .and_then(|rest| rest.split('`').next())
            {
                let field = if path == "." {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                let mut err = JsonError::at(JsonErrorKind::DuplicateKey, field, &inner);
                err.reason = format!("{DUPLICATE_KEY}`{name}`: an object may name a key only once");
                return err;
            }
            let kind = if message.starts_with(DUPLICATE_KEY) {
                JsonErrorKind::DuplicateKey
            } else {
                JsonErrorKind::Shape
            };
            JsonError::at(kind, path, &inner)
        }
    }
}

fn path_or_dot(path: String) -> String {
    if path.is_empty() {
        ".".to_owned()
    } else {
        path
    }
}

/// serde_json appends " at line L column C"; a syntax error carries them as numbers.
fn strip_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
}

/// For each object in `value`, the path of its first key and the document's text with that key
/// written a second time (after the others): the documents a [`Strict`] type must refuse, each
/// naming that path. A test aid for every door's reader.
#[cfg(any(test, feature = "testing"))]
pub fn with_each_key_repeated(value: &Value) -> Vec<(String, String)> {
    let mut paths = Vec::new();
    first_key_paths(value, "", &mut paths);
    paths
        .into_iter()
        .enumerate()
        .map(|(target, path)| {
            let mut text = String::new();
            write_repeating(value, target, &mut 0, &mut text);
            (path, text)
        })
        .collect()
}

/// The path of each non-empty object's first key, objects in document order.
#[cfg(any(test, feature = "testing"))]
fn first_key_paths(value: &Value, path: &str, out: &mut Vec<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(map) => {
            if let Some((first, _)) = map.iter().next() {
                out.push(join(first));
            }
            for (k, v) in map {
                first_key_paths(v, &join(k), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                first_key_paths(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Writes `value`, repeating the first entry of the `target`-th non-empty object (`seen` counts
/// them in document order, as [`first_key_paths`] does).
#[cfg(any(test, feature = "testing"))]
fn write_repeating(value: &Value, target: usize, seen: &mut usize, out: &mut String) {
    let entry = |k: &str, out: &mut String| {
        out.push_str(&Value::String(k.to_owned()).to_string());
        out.push(':');
    };
    match value {
        Value::Object(map) => {
            let this = (!map.is_empty()).then(|| {
                *seen += 1;
                *seen - 1
            });
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                entry(k, out);
                write_repeating(v, target, seen, out);
            }
            if this == Some(target) {
                if let Some((k, v)) = map.iter().next() {
                    out.push(',');
                    entry(k, out);
                    out.push_str(&v.to_string());
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_repeating(v, target, seen, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests;
