//! The evaluator's values, and what Rhai does with them: conversions to and from Rhai values,
//! equality, list access, `+`, and each value's weight in Rhai's size checks.

use super::verdict::Verdict;
use crate::cedar::Strs;
use crate::rules::fields::{Field, Leaf};
use crate::rules::limits;
use rhai::{Array, Dynamic, ImmutableString, Map};
use serde_json::Value;
use smallvec::SmallVec;
use std::borrow::Cow;

/// A value during evaluation.
#[derive(Clone)]
pub(super) enum Val<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    /// A float: its value is never needed, since nothing involving one is modelled.
    Float,
    Unit,
    /// A list of strings read from the request (a shared, read-only array in Rhai).
    Strings(Strs<'a>),
    /// A JSON array of an attribute map (shared, read-only in Rhai).
    JsonArray(&'a [Value]),
    /// A JSON attribute map (shared, read-only in Rhai).
    Object(&'a serde_json::Map<String, Value>),
    /// A record of `tx` or `env` (a shared, read-only map in Rhai).
    Record(&'static Field),
    /// An array the module built.
    Array(Vec<Val<'a>>),
    /// A verdict of the rule API (a map in Rhai).
    Verdict(Box<Verdict<'a>>),
    /// A map or array from a constant or a parameter.
    Dyn(Dynamic),
}

/// What a comparison sees of a value's type.
#[derive(PartialEq, Clone, Copy)]
pub(super) enum Kind {
    Str,
    Bool,
    Int,
    Float,
    Unit,
    Array,
    Map,
    Other,
}

impl Val<'_> {
    pub(super) fn kind(&self) -> Kind {
        match self {
            Val::Str(_) => Kind::Str,
            Val::Bool(_) => Kind::Bool,
            Val::Int(_) => Kind::Int,
            Val::Float => Kind::Float,
            Val::Unit => Kind::Unit,
            Val::Strings(_) | Val::JsonArray(_) | Val::Array(_) => Kind::Array,
            Val::Object(_) | Val::Record(_) | Val::Verdict(_) => Kind::Map,
            Val::Dyn(d) if d.is_array() => Kind::Array,
            Val::Dyn(d) if d.is_map() => Kind::Map,
            Val::Dyn(_) => Kind::Other,
        }
    }
}

/// A Rhai value as an evaluation value: scalars become themselves, anything else stays a
/// [`Val::Dyn`].
pub(super) fn from_dynamic<'a>(value: Dynamic) -> Val<'a> {
    if value.is_unit() {
        Val::Unit
    } else if let Ok(b) = value.as_bool() {
        Val::Bool(b)
    } else if let Ok(i) = value.as_int() {
        Val::Int(i)
    } else if value.is_float() {
        Val::Float
    } else if value.is_string() {
        let s = value.read_lock::<ImmutableString>().map(|s| s.to_string());
        Val::Str(Cow::Owned(s.unwrap_or_default()))
    } else if value.is_array() && !value.is_shared() {
        // A plain array (a constant, say) is the module's own: it can grow.
        let items = value.into_array().unwrap_or_default();
        Val::Array(items.into_iter().map(from_dynamic).collect())
    } else {
        Val::Dyn(value)
    }
}

pub(super) fn json(value: &Value) -> Val<'_> {
    match value {
        Value::Null => Val::Unit,
        Value::Bool(b) => Val::Bool(*b),
        // As `json_to_dynamic` converts numbers: integers when they fit, floats otherwise.
        Value::Number(n) => n.as_i64().map_or(Val::Float, Val::Int),
        Value::String(s) => Val::Str(Cow::Borrowed(s)),
        Value::Array(items) => Val::JsonArray(items),
        Value::Object(map) => Val::Object(map),
    }
}

pub(super) fn leaf(value: Leaf<'_>) -> Val<'_> {
    match value {
        Leaf::Str(s) => Val::Str(s),
        Leaf::Bool(b) => Val::Bool(b),
        Leaf::Int(i) => Val::Int(i),
        Leaf::Unit => Val::Unit,
        Leaf::Strings(items) => Val::Strings(items),
        Leaf::Object(map) => Val::Object(map),
    }
}

/// The value as a plain Rhai value, for the module's result or a container. Values that are shared
/// in Rhai (read from the request or a parameter) are not converted: Rhai treats them apart inside
/// containers (its data-size check may even panic), so they are left to Rhai.
pub(super) fn to_dynamic(value: Val<'_>) -> Option<Dynamic> {
    match value {
        Val::Str(s) => Some(Dynamic::from(ImmutableString::from(s.as_ref()))),
        Val::Bool(b) => Some(Dynamic::from_bool(b)),
        Val::Int(i) => Some(Dynamic::from_int(i)),
        Val::Unit => Some(Dynamic::UNIT),
        Val::Array(items) => {
            let items = items
                .into_iter()
                .map(to_dynamic)
                .collect::<Option<Array>>()?;
            Some(Dynamic::from_array(items))
        }
        Val::Verdict(v) => Some(Dynamic::from_map(v.into_map())),
        Val::Dyn(d) if !d.is_shared() => Some(d),
        Val::Float
        | Val::Strings(_)
        | Val::JsonArray(_)
        | Val::Object(_)
        | Val::Record(_)
        | Val::Dyn(_) => None,
    }
}

/// A value's weight in Rhai's data-size check: one per element or entry, plus string bytes.
pub(super) fn size(value: &Val<'_>) -> usize {
    match value {
        Val::Str(s) => s.len(),
        Val::Array(items) => items.iter().map(|v| 1 + size(v)).sum(),
        Val::Verdict(v) => v.size(),
        Val::Dyn(d) => dynamic_size(d),
        _ => 0,
    }
}

/// [`size`] of a Rhai value, read in place.
pub(super) fn dynamic_size(value: &Dynamic) -> usize {
    if let Some(s) = value.read_lock::<ImmutableString>() {
        s.len()
    } else if let Some(items) = value.read_lock::<Array>() {
        items.iter().map(|v| 1 + dynamic_size(v)).sum()
    } else if let Some(map) = value.read_lock::<Map>() {
        map.values().map(|v| 1 + dynamic_size(v)).sum()
    } else {
        0
    }
}

/// Whether [`to_dynamic`] converts the value.
pub(super) fn plain(value: &Val<'_>) -> bool {
    match value {
        Val::Str(_) | Val::Bool(_) | Val::Int(_) | Val::Unit | Val::Verdict(_) => true,
        Val::Array(items) => items.iter().all(plain),
        Val::Dyn(d) => !d.is_shared(),
        Val::Float | Val::Strings(_) | Val::JsonArray(_) | Val::Object(_) | Val::Record(_) => false,
    }
}

/// The engine's `==` for the values modelled: like types compare, and `()` is equal only to `()`
/// (the absence test). Unlike types, neither `()`, are a type error in the engine
/// ([`crate::rules::strict`]), left to Rhai, which raises it; so are two lists, two maps or two
/// numbers of different types.
pub(super) fn equal(a: &Val<'_>, b: &Val<'_>) -> Option<bool> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Some(x == y),
        (Val::Bool(x), Val::Bool(y)) => Some(x == y),
        (Val::Int(x), Val::Int(y)) => Some(x == y),
        (Val::Unit, Val::Unit) => Some(true),
        (Val::Unit, other) | (other, Val::Unit) if other.kind() != Kind::Other => Some(false),
        _ => None,
    }
}

/// [`equal`] of a value and a string.
pub(super) fn equal_text(value: &Val<'_>, text: &str) -> Option<bool> {
    match value {
        Val::Str(s) => Some(s == text),
        // `()` against a string: not equal.
        Val::Unit => Some(false),
        _ => None,
    }
}

/// The elements of a list, each as a value; `None` for anything else.
pub(super) fn elements<'a>(list: &Val<'a>) -> Option<Vec<Val<'a>>> {
    match list {
        Val::Strings(items) => Some(items.iter().map(|s| Val::Str(Cow::Borrowed(s))).collect()),
        Val::JsonArray(items) => Some(items.iter().map(json).collect()),
        Val::Array(items) => Some(items.clone()),
        Val::Dyn(d) => {
            let items = d.read_lock::<Array>()?;
            Some(items.iter().map(|v| from_dynamic(v.clone())).collect())
        }
        _ => None,
    }
}

/// The strings of a list whose elements are all strings, if it is within the sandbox limits (a
/// method's object is size-checked after the call, and Rhai throws past them).
pub(super) fn strings<'v>(list: &'v Val<'_>) -> Option<SmallVec<[Cow<'v, str>; 8]>> {
    let items: SmallVec<[Cow<'v, str>; 8]> = match list {
        Val::Strings(items) => items.iter().map(Cow::Borrowed).collect(),
        Val::JsonArray(items) => items
            .iter()
            .map(|v| v.as_str().map(Cow::Borrowed))
            .collect::<Option<_>>()?,
        Val::Array(items) => items
            .iter()
            .map(|v| match v {
                Val::Str(s) => Some(Cow::Borrowed(s.as_ref())),
                _ => None,
            })
            .collect::<Option<_>>()?,
        Val::Dyn(d) => {
            let items = d.read_lock::<Array>()?;
            items
                .iter()
                .map(|v| {
                    v.read_lock::<ImmutableString>()
                        .map(|s| Cow::Owned(s.as_str().to_owned()))
                })
                .collect::<Option<_>>()?
        }
        _ => return None,
    };
    let bytes: usize = items.iter().map(|s| s.len()).sum();
    (items.len() < limits::MAX_ARRAY_SIZE && bytes < limits::MAX_STRING_SIZE).then_some(items)
}

/// Whether a list of strings holds `item`: [`strings`] and a search, without collecting the
/// list. `None` where [`strings`] is.
pub(super) fn contains(list: &Val<'_>, item: &str) -> Option<bool> {
    let mut found = false;
    let (mut count, mut bytes) = (0usize, 0usize);
    let mut see = |s: &str| {
        found |= s == item;
        count += 1;
        bytes += s.len();
    };
    match list {
        Val::Strings(items) => items.iter().for_each(see),
        Val::JsonArray(items) => {
            for v in items.iter() {
                see(v.as_str()?);
            }
        }
        Val::Array(items) => {
            for v in items {
                let Val::Str(s) = v else { return None };
                see(s);
            }
        }
        other => return Some(strings(other)?.iter().any(|s| s == item)),
    }
    (count < limits::MAX_ARRAY_SIZE && bytes < limits::MAX_STRING_SIZE).then_some(found)
}

/// `+` on two strings, two integers, or a string and an integer (which Rhai writes in decimal);
/// anything else is not modelled.
pub(super) fn add<'a>(a: Val<'a>, b: Val<'a>) -> Option<Val<'a>> {
    match (a, b) {
        (Val::Str(a), Val::Int(b)) => add(Val::Str(a), Val::Str(Cow::Owned(b.to_string()))),
        (Val::Int(a), Val::Str(b)) => add(Val::Str(Cow::Owned(a.to_string())), Val::Str(b)),
        (Val::Str(a), Val::Str(b)) => {
            if a.len() + b.len() >= limits::MAX_STRING_SIZE {
                return None;
            }
            let mut s = a.into_owned();
            s.push_str(&b);
            Some(Val::Str(Cow::Owned(s)))
        }
        (Val::Int(a), Val::Int(b)) => a.checked_add(b).map(Val::Int),
        _ => None,
    }
}
