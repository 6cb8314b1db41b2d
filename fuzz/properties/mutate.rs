//! Generators of near-valid JSON for the property tests (`engine/tests/fuzz_properties.rs`,
//! `governance/tests/fuzz_properties.rs` include this file): a valid document with one structured
//! mutation — a field set to a value of another type, removed, or given twice; the text truncated
//! or spliced with stray bytes; a value nested deeply, a very long string, a huge or odd number,
//! unicode escapes (lone surrogates included), NUL bytes.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Odd values a field may be set to.
pub fn odd_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(-0.0)),
        Just(Value::from(1e308)),
        Just(Value::from(5e-324)),
        "\\PC{0,24}".prop_map(Value::String),
        Just(Value::String(String::new())),
        Just(Value::String(" ".into())),
        Just(Value::String("\u{0}".into())),
        Just(Value::String("a\u{0}b".into())),
        Just(Value::String("\u{202e}\u{feff}\u{10ffff}".into())),
        (1usize..200_000).prop_map(|n| Value::String("x".repeat(n))),
        Just(Value::String("2026-02-30T25:61:61Z".into())),
        Just(Value::String("9999-12-31T23:59:60+23:59".into())),
        Just(Value::String("0000-01-01T00:00:00Z".into())),
        Just(Value::String("US-".into())),
        Just(Value::String("sha256:".into())),
        Just(Value::String("read".into())),
        Just(Value::String("TREAT".into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Every path to a value in `value` (object keys and array indexes), the root included.
pub fn paths(value: &Value) -> Vec<Vec<PathStep>> {
    fn walk(value: &Value, at: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    at.push(PathStep::Key(k.clone()));
                    walk(v, at, out);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    at.push(PathStep::Index(i));
                    walk(v, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

fn at_mut<'a>(value: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    let mut here = value;
    for step in path {
        here = match (step, here) {
            (PathStep::Key(k), Value::Object(map)) => map.get_mut(k)?,
            (PathStep::Index(i), Value::Array(items)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(here)
}

/// One structured mutation.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Set the value at the chosen path.
    Set(Value),
    /// Remove the chosen field (or array item).
    Remove,
    /// Add a field of this name and value to the chosen object (or the nearest one above).
    Add(String, Value),
    /// Write the chosen object's first key a second time, with this value.
    Duplicate(Value),
    /// Wrap the chosen value in this many arrays or objects.
    Nest(usize, bool),
    /// Cut the text at this fraction of its length.
    Truncate(f64),
    /// Put these bytes at this fraction of the text.
    Splice(f64, Vec<u8>),
    /// Replace the chosen string by the same text written with `\u` escapes (or an escape that
    /// is no character: a lone surrogate).
    Escape(bool),
    /// Set a free-form attribute (in the first `attributes` object found, or a new
    /// `context.attributes`) to this value.
    Attribute(String, Value),
    /// Keep the document as it is.
    Nothing,
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let stray = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..8),
        Just(b"\0".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"{".to_vec()),
        Just(b"]".to_vec()),
        Just(b",".to_vec()),
        Just(b"\\u0000".to_vec()),
        Just(b"\\ud800".to_vec()),
        Just("\u{feff}".as_bytes().to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"1e99999".to_vec()),
        Just(b"-".to_vec()),
    ];
    prop_oneof![
        3 => odd_value().prop_map(Mutation::Set),
        2 => Just(Mutation::Remove),
        2 => ("[a-z_]{1,16}", odd_value()).prop_map(|(k, v)| Mutation::Add(k, v)),
        2 => odd_value().prop_map(Mutation::Duplicate),
        1 => (1usize..300, any::<bool>()).prop_map(|(n, o)| Mutation::Nest(n, o)),
        1 => (0.0f64..1.0).prop_map(Mutation::Truncate),
        2 => (0.0f64..1.0, stray).prop_map(|(at, b)| Mutation::Splice(at, b)),
        1 => any::<bool>().prop_map(Mutation::Escape),
        4 => ("[a-z_]{1,16}", odd_value()).prop_map(|(k, v)| Mutation::Attribute(k, v)),
        1 => Just(Mutation::Nothing),
    ]
}

/// `document` with `mutation` applied at its `pick`-th path (modulo the number of paths), as
/// JSON text.
pub fn apply(document: &Value, mutation: &Mutation, pick: usize) -> Vec<u8> {
    let mut value = document.clone();
    let all = paths(&value);
    let path = all[pick % all.len()].clone();
    match mutation {
        Mutation::Set(v) => {
            if let Some(here) = at_mut(&mut value, &path) {
                *here = v.clone();
            }
        }
        Mutation::Remove => {
            if let Some((last, parent)) = path.split_last() {
                match (last, at_mut(&mut value, parent)) {
                    (PathStep::Key(k), Some(Value::Object(map))) => {
                        map.remove(k);
                    }
                    (PathStep::Index(i), Some(Value::Array(items))) => {
                        items.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        Mutation::Add(k, v) => {
            let mut at = path.clone();
            loop {
                if let Some(Value::Object(map)) = at_mut(&mut value, &at) {
                    map.insert(k.clone(), v.clone());
                    break;
                }
                if at.pop().is_none() {
                    break;
                }
            }
        }
        Mutation::Duplicate(v) => {
            let mut at = path.clone();
            loop {
                if let Some(Value::Object(map)) = at_mut(&mut value, &at) {
                    if let Some(first) = map.keys().next().cloned() {
                        // A marker the text replacement below turns into a repeated key.
                        map.insert(MARKER.into(), Value::String(first));
                        let marked = value.to_string();
                        return duplicate_marked(&marked, v);
                    }
                }
                if at.pop().is_none() {
                    break;
                }
            }
        }
        Mutation::Nest(n, object) => {
            if let Some(here) = at_mut(&mut value, &path) {
                let mut v = here.take();
                for _ in 0..*n {
                    v = if *object {
                        Value::Object([("x".to_owned(), v)].into_iter().collect())
                    } else {
                        Value::Array(vec![v])
                    };
                }
                *here = v;
            }
        }
        Mutation::Truncate(f) => {
            let text = value.to_string().into_bytes();
            let cut = ((text.len() as f64) * f) as usize;
            return text[..cut.min(text.len())].to_vec();
        }
        Mutation::Splice(f, bytes) => {
            let mut text = value.to_string().into_bytes();
            let at = (((text.len() as f64) * f) as usize).min(text.len());
            text.splice(at..at, bytes.iter().copied());
            return text;
        }
        Mutation::Escape(lone) => {
            if let Some(Value::String(s)) = at_mut(&mut value, &path) {
                let original = Value::String(s.clone()).to_string();
                let escaped: String = if *lone {
                    format!("\"\\udc00{}", &original[1..])
                } else {
                    let mut out = String::from("\"");
                    for unit in s.encode_utf16() {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                    out.push('"');
                    out
                };
                *s = MARKER.into();
                let text = value.to_string();
                return text
                    .replacen(&Value::String(MARKER.into()).to_string(), &escaped, 1)
                    .into_bytes();
            }
        }
        Mutation::Attribute(k, v) => {
            let found = all
                .iter()
                .find(|p| matches!(p.last(), Some(PathStep::Key(name)) if name == "attributes"));
            let attributes = match found {
                Some(p) => at_mut(&mut value, p),
                None => match value.get_mut("context") {
                    Some(Value::Object(context)) => Some(
                        context
                            .entry("attributes")
                            .or_insert_with(|| Value::Object(Map::new())),
                    ),
                    _ => None,
                },
            };
            if let Some(Value::Object(map)) = attributes {
                map.insert(k.clone(), v.clone());
            }
        }
        Mutation::Nothing => {}
    }
    value.to_string().into_bytes()
}

const MARKER: &str = "\u{1}accord-fuzz-marker\u{1}";

/// The text of `marked` with the marker entry `"MARKER":"key"` turned into `"key":value`.
fn duplicate_marked(marked: &str, v: &Value) -> Vec<u8> {
    let marker = Value::String(MARKER.into()).to_string();
    let Some(start) = marked.find(&marker) else {
        return marked.as_bytes().to_vec();
    };
    let after = &marked[start + marker.len() + 1..];
    // The marker's value is a JSON string: read it back to find where it ends.
    let mut de = serde_json::Deserializer::from_str(after).into_iter::<Value>();
    let Some(Ok(Value::String(key))) = de.next() else {
        return marked.as_bytes().to_vec();
    };
    let end = start + marker.len() + 1 + de.byte_offset();
    let entry = format!("{}:{}", Value::String(key), v);
    format!("{}{}{}", &marked[..start], entry, &marked[end..]).into_bytes()
}

/// A document of `bases` with a mutation (or two): as JSON bytes.
pub fn near_valid(bases: Vec<Value>) -> impl Strategy<Value = Vec<u8>> {
    let n = bases.len();
    (
        0..n,
        mutation(),
        any::<usize>(),
        prop::option::of((mutation(), any::<usize>())),
    )
        .prop_map(move |(i, m, pick, second)| {
            let once = apply(&bases[i], &m, pick);
            match second {
                // A second mutation applies to the first's result when that is still JSON.
                Some((m2, pick2)) => match accord_engine::json::value_from_slice(&once) {
                    Ok(v) if !matches!(m, Mutation::Duplicate(_)) => apply(&v, &m2, pick2),
                    _ => once,
                },
                None => once,
            }
        })
}
