//! The functions registered for rule modules (the `tx` and `env` maps are in [`super::fields`]).
//! Documented for policy authors in docs/policy-authoring.md.

use super::fields::json_to_dynamic;
use crate::jurisdiction::JurisdictionTable;
use crate::transaction::{BirthDate, Timestamp};
use rhai::{Array, Dynamic, Engine, FuncRegistration, ImmutableString, Map};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Effective parameters of every jurisdiction (and country alias), converted once per bundle.
pub(super) struct ParameterTable {
    table: Arc<JurisdictionTable>,
    params: BTreeMap<String, BTreeMap<String, Dynamic>>,
}

impl ParameterTable {
    pub(super) fn new(table: Arc<JurisdictionTable>) -> Self {
        let params = table
            .iter()
            .map(|j| {
                // Shared and read-only: `param` hands out a reference, not a deep copy of (say) a
                // 30-country list, and no module can change what the next one reads.
                let converted = j
                    .parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), json_to_dynamic(v).into_read_only().into_shared()))
                    .collect();
                (j.code.clone(), converted)
            })
            .collect();
        ParameterTable { table, params }
    }

    pub(super) fn get(&self, code: &str, name: &str) -> Option<&Dynamic> {
        let code = self.table.resolve(code).map(|j| j.code.as_str())?;
        self.params.get(code).and_then(|p| p.get(name))
    }

    /// `in_regime(code, regime)`.
    pub(super) fn in_regime(&self, code: &str, regime: &str) -> bool {
        self.table
            .resolve(code)
            .is_some_and(|j| j.regimes.contains(regime))
    }

    /// `parent(code)`: `""` for a root or an unknown code.
    pub(super) fn parent(&self, code: &str) -> String {
        self.table
            .resolve(code)
            .and_then(|j| j.parent.clone())
            .unwrap_or_default()
    }

    /// `name` from the most specific of `jurisdictions` in which `regime` applies and that defines
    /// it: the deepest (longest lineage), then the first in code order.
    pub(super) fn for_regime(
        &self,
        jurisdictions: &[String],
        regime: &str,
        name: &str,
    ) -> Option<&Dynamic> {
        self.regime_code(jurisdictions, regime, name)
            .and_then(|code| self.get(code, name))
    }

    /// A parameter as its jurisdiction file gives it: the value [`get`](Self::get) converted,
    /// read in place (the native evaluator reads it as Rhai reads the shared, read-only copy).
    pub(super) fn json(&self, code: &str, name: &str) -> Option<&serde_json::Value> {
        self.table.param(code, name)
    }

    /// [`for_regime`](Self::for_regime), as its jurisdiction file gives it.
    pub(super) fn json_for_regime(
        &self,
        jurisdictions: &[String],
        regime: &str,
        name: &str,
    ) -> Option<&serde_json::Value> {
        self.regime_code(jurisdictions, regime, name)
            .and_then(|code| self.json(code, name))
    }

    /// The jurisdiction whose `name` [`for_regime`](Self::for_regime) reads.
    fn regime_code<'j>(
        &self,
        jurisdictions: &'j [String],
        regime: &str,
        name: &str,
    ) -> Option<&'j str> {
        let mut best: Option<(usize, &str)> = None;
        for code in jurisdictions {
            let Some(j) = self.table.get(code) else {
                continue;
            };
            if !j.regimes.contains(regime) || !j.parameters.contains_key(name) {
                continue;
            }
            if best.is_none_or(|(depth, _)| j.lineage.len() > depth) {
                best = Some((j.lineage.len(), code));
            }
        }
        best.map(|(_, code)| code)
    }
}

/// What native functions may know of the request being decided, passed as the call's tag.
#[derive(Clone)]
pub(super) struct CallTag {
    pub jurisdictions: Arc<Vec<String>>,
}

/// What `deny`, `permit` (and [`obligation`]) return; the native evaluator builds the same.
pub(super) fn verdict(effect: &str, rule: &str, citation: &str, message: &str) -> Map {
    let mut map = Map::new();
    map.insert("effect".into(), effect.into());
    map.insert("rule".into(), rule.into());
    map.insert("citation".into(), citation.into());
    map.insert("message".into(), message.into());
    map
}

/// `obligation(kind, citation, details)`: the details with the verdict's keys added.
pub(super) fn obligation(kind: &str, citation: &str, details: Map) -> Map {
    let mut map = details;
    map.insert("effect".into(), "obligation".into());
    map.insert("kind".into(), kind.into());
    map.insert("citation".into(), citation.into());
    map
}

/// `hours_after(seconds, hours)`: the timestamp `hours` after `seconds`, `()` when out of range.
pub(super) fn hours_after(seconds: i64, hours: i64) -> Dynamic {
    hours
        .checked_mul(3600)
        .and_then(|h| seconds.checked_add(h))
        .and_then(Timestamp::format_unix)
        .map_or(Dynamic::UNIT, Dynamic::from)
}

/// `years_since(date, seconds)`: whole years from `date` (`YYYY-MM-DD`, or an RFC 3339
/// timestamp, whose UTC date counts) to the UTC date of `seconds`, counted as ages are; `()`
/// when `date` is neither or `seconds` is out of range.
pub(super) fn years_since(date: &str, seconds: i64) -> Dynamic {
    let start = match BirthDate::try_from(date.to_owned()) {
        Ok(d) => d,
        Err(_) => match Timestamp::parse(date)
            .ok()
            .and_then(|t| BirthDate::try_from(t.date_text()).ok())
        {
            Some(d) => d,
            None => return Dynamic::UNIT,
        },
    };
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(now) => Dynamic::from_int(start.age_on(now.date())),
        Err(_) => Dynamic::UNIT,
    }
}

pub(super) fn register(engine: &mut Engine, params: Arc<ParameterTable>) {
    engine.register_fn("deny", |rule: &str, citation: &str, message: &str| {
        verdict("deny", rule, citation, message)
    });
    engine.register_fn("permit", |rule: &str, citation: &str, message: &str| {
        verdict("permit", rule, citation, message)
    });
    engine.register_fn("obligation", obligation);
    engine.register_fn("obligation", |kind: &str, citation: &str| -> Map {
        obligation(kind, citation, Map::new())
    });

    // The three parameter functions are volatile: the optimizer never calls them at compile time.
    // `regime_param` and `regime_param_at` read the request being decided (through the call's
    // tag), which does not exist at compile time; and all three hand out shared values, which
    // Rhai's data-size check may not meet inside a constant it folds (it panics). Every other
    // function here depends on its arguments alone and returns plain values.
    let p = params.clone();
    FuncRegistration::new("param")
        .with_volatility(true)
        .register_into_engine(engine, move |code: &str, name: &str| -> Dynamic {
            p.get(code, name).cloned().unwrap_or(Dynamic::UNIT)
        });
    let p = params.clone();
    FuncRegistration::new("regime_param")
        .with_volatility(true)
        .register_into_engine(
            engine,
            move |ctx: rhai::NativeCallContext, regime: &str, name: &str| -> Dynamic {
                let Some(tag) = ctx.tag().and_then(|t| t.clone().try_cast::<CallTag>()) else {
                    return Dynamic::UNIT;
                };
                p.for_regime(&tag.jurisdictions, regime, name)
                    .cloned()
                    .unwrap_or(Dynamic::UNIT)
            },
        );
    // One entry of a large table parameter without copying the whole table into the script
    // (Rhai values are copied on return): `regime_param_at("HIPAA", "minimum_necessary", [purpose])`.
    let p = params.clone();
    FuncRegistration::new("regime_param_at")
        .with_volatility(true)
        .register_into_engine(
            engine,
            move |ctx: rhai::NativeCallContext,
                  regime: &str,
                  name: &str,
                  path: Array|
                  -> Result<Dynamic, Box<rhai::EvalAltResult>> {
                let Some(tag) = ctx.tag().and_then(|t| t.clone().try_cast::<CallTag>()) else {
                    return Ok(Dynamic::UNIT);
                };
                let missing = || format!("jurisdiction parameter `{name}` is missing").into();
                if path.is_empty() {
                    // The whole parameter, shared as `regime_param` hands it out.
                    return p
                        .for_regime(&tag.jurisdictions, regime, name)
                        .cloned()
                        .ok_or_else(missing);
                }
                let root = p
                    .json_for_regime(&tag.jurisdictions, regime, name)
                    .ok_or_else(missing)?;
                let keys = path.iter().map(|key| key.to_string());
                Ok(descend(root, name, keys)?.map_or(Dynamic::UNIT, json_to_dynamic))
            },
        );
    let p = params.clone();
    engine.register_fn("has_param", move |code: &str, name: &str| -> bool {
        p.get(code, name).is_some()
    });
    let p = params.clone();
    engine.register_fn("parent", move |code: &str| -> ImmutableString {
        p.parent(code).into()
    });
    let p = params;
    engine.register_fn("in_regime", move |code: &str, regime: &str| -> bool {
        p.in_regime(code, regime)
    });
    // Specialised for strings: the generic `contains` calls `==` through the engine per element.
    engine.register_fn(
        "contains",
        |list: &mut Array, item: ImmutableString| -> bool {
            list.iter().any(|x| {
                x.read_lock::<ImmutableString>()
                    .is_some_and(|s| s.as_str() == item.as_str())
            })
        },
    );
    engine.register_fn("contains_all", |have: &mut Array, need: Array| -> bool {
        need.iter().all(|n| have.iter().any(|h| same_value(h, n)))
    });
    engine.register_fn("hours_after", hours_after);
    engine.register_fn("years_since", |date: &str, seconds: i64| {
        years_since(date, seconds)
    });
}

/// `contains_all`'s element equality: same type and same text. Strings (every list a module
/// compares: categories, roles, codes) are compared in place; other values by their text, which
/// allocates.
fn same_value(a: &Dynamic, b: &Dynamic) -> bool {
    if a.type_id() != b.type_id() {
        return false;
    }
    if let (Some(x), Some(y)) = (
        a.read_lock::<ImmutableString>(),
        b.read_lock::<ImmutableString>(),
    ) {
        return x.as_str() == y.as_str();
    }
    a.to_string() == b.to_string()
}

/// The value under `keys` (map keys) in `root`, a parameter named `name`: `None` when a key is
/// absent, an error naming the key when a value on the way is not a map. Both evaluators descend
/// with it (`regime_param_at`).
pub(super) fn descend<'v, K: AsRef<str>>(
    root: &'v serde_json::Value,
    name: &str,
    keys: impl IntoIterator<Item = K>,
) -> Result<Option<&'v serde_json::Value>, String> {
    let mut value = root;
    for key in keys {
        let key = key.as_ref();
        let serde_json::Value::Object(map) = value else {
            return Err(format!(
                "jurisdiction parameter `{name}` is not a map where `{key}` is looked up"
            ));
        };
        match map.get(key) {
            Some(next) => value = next,
            None => return Ok(None),
        }
    }
    Ok(Some(value))
}
