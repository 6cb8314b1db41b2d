//! The API a rule module sees: the `tx` and `env` maps, and the functions registered for it.
//! Documented for policy authors in docs/policy-authoring.md.

use crate::cedar::RequestFacts;
use crate::jurisdiction::JurisdictionTable;
use crate::transaction::{AccessRequest, Timestamp};
use rhai::{Array, Dynamic, Engine, ImmutableString, Map};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Effective parameters of every jurisdiction (and country alias), converted once per bundle.
struct ParameterTable {
    table: Arc<JurisdictionTable>,
    params: BTreeMap<String, BTreeMap<String, Dynamic>>,
}

impl ParameterTable {
    fn new(table: Arc<JurisdictionTable>) -> Self {
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

    fn get(&self, code: &str, name: &str) -> Option<&Dynamic> {
        let code = self.table.resolve(code).map(|j| j.code.as_str())?;
        self.params.get(code).and_then(|p| p.get(name))
    }

    /// `name` from the most specific of `jurisdictions` in which `regime` applies and that defines
    /// it: the deepest (longest lineage), then the first in code order.
    fn for_regime(&self, jurisdictions: &[String], regime: &str, name: &str) -> Option<&Dynamic> {
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
        best.and_then(|(_, code)| self.get(code, name))
    }
}

/// What native functions may know of the request being decided, passed as the call's tag.
#[derive(Clone)]
pub(super) struct CallTag {
    pub jurisdictions: Arc<Vec<String>>,
}

pub(crate) fn json_to_dynamic(value: &Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => Dynamic::from_array(items.iter().map(json_to_dynamic).collect()),
        Value::Object(map) => Dynamic::from_map(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                .collect(),
        ),
    }
}

fn verdict(effect: &str, rule: &str, citation: &str, message: &str) -> Map {
    let mut map = Map::new();
    map.insert("effect".into(), effect.into());
    map.insert("rule".into(), rule.into());
    map.insert("citation".into(), citation.into());
    map.insert("message".into(), message.into());
    map
}

pub(super) fn register(engine: &mut Engine, table: Arc<JurisdictionTable>) {
    let params = Arc::new(ParameterTable::new(table.clone()));

    engine.register_fn("deny", |rule: &str, citation: &str, message: &str| {
        verdict("deny", rule, citation, message)
    });
    engine.register_fn("permit", |rule: &str, citation: &str, message: &str| {
        verdict("permit", rule, citation, message)
    });
    engine.register_fn(
        "obligation",
        |kind: &str, citation: &str, details: Map| -> Map {
            let mut map = details;
            map.insert("effect".into(), "obligation".into());
            map.insert("kind".into(), kind.into());
            map.insert("citation".into(), citation.into());
            map
        },
    );
    engine.register_fn("obligation", |kind: &str, citation: &str| -> Map {
        let mut map = Map::new();
        map.insert("effect".into(), "obligation".into());
        map.insert("kind".into(), kind.into());
        map.insert("citation".into(), citation.into());
        map
    });

    let p = params.clone();
    engine.register_fn("param", move |code: &str, name: &str| -> Dynamic {
        p.get(code, name).cloned().unwrap_or(Dynamic::UNIT)
    });
    let p = params.clone();
    engine.register_fn(
        "regime_param",
        move |ctx: rhai::NativeCallContext, regime: &str, name: &str| -> Dynamic {
            let Some(tag) = ctx.tag().and_then(|t| t.clone().try_cast::<CallTag>()) else {
                return Dynamic::UNIT;
            };
            p.for_regime(&tag.jurisdictions, regime, name)
                .cloned()
                .unwrap_or(Dynamic::UNIT)
        },
    );
    let p = params;
    engine.register_fn("has_param", move |code: &str, name: &str| -> bool {
        p.get(code, name).is_some()
    });
    let t = table.clone();
    engine.register_fn("parent", move |code: &str| -> ImmutableString {
        t.resolve(code)
            .and_then(|j| j.parent.clone())
            .unwrap_or_default()
            .into()
    });
    let t = table;
    engine.register_fn("in_regime", move |code: &str, regime: &str| -> bool {
        t.resolve(code).is_some_and(|j| j.regimes.contains(regime))
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
        need.iter().all(|n| {
            have.iter()
                .any(|h| h.type_id() == n.type_id() && h.to_string() == n.to_string())
        })
    });
    engine.register_fn("hours_after", |seconds: i64, hours: i64| -> Dynamic {
        hours
            .checked_mul(3600)
            .and_then(|h| seconds.checked_add(h))
            .and_then(Timestamp::format_unix)
            .map_or(Dynamic::UNIT, Dynamic::from)
    });
}

/// Nested values are shared and read-only: `let ctx = tx.context;` in a module then costs a
/// reference count, not a deep copy, and nothing a module does is seen by the next.
fn frozen(value: Dynamic) -> Dynamic {
    value.into_read_only().into_shared()
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Dynamic {
    frozen(Dynamic::from_array(
        items.into_iter().map(string).collect::<Array>(),
    ))
}

fn map(map: Map) -> Dynamic {
    frozen(Dynamic::from_map(map))
}

fn string(s: &str) -> Dynamic {
    Dynamic::from(s.to_owned())
}

fn object(object: &serde_json::Map<String, Value>) -> Dynamic {
    map(object
        .iter()
        .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
        .collect())
}

/// A map from `(key, value)` pairs: sorted and bulk-built, cheaper than inserting one by one.
fn record<const N: usize>(pairs: [(&'static str, Dynamic); N]) -> Dynamic {
    map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// `tx`: the transaction with defaults filled in (absent strings `""`, absent lists `[]`).
pub(super) fn tx_value(request: &AccessRequest, facts: &RequestFacts<'_>) -> Dynamic {
    let actor = &request.actor;
    let resource = &request.resource;
    let ctx = &request.context;
    let opt = |o: Option<&str>| string(o.unwrap_or(""));
    let p = resource.patient.as_ref();
    let rc = ctx.recipient.as_ref();

    let actor_value = record([
        ("id", string(&actor.id)),
        ("type", string(actor.kind.as_str())),
        ("organization", opt(actor.organization.as_deref())),
        ("roles", strings(actor.roles.iter().map(String::as_str))),
        (
            "jurisdiction",
            opt(actor.jurisdiction.as_ref().map(|j| j.as_str())),
        ),
        ("attributes", object(&actor.attributes)),
    ]);
    let patient = record([
        ("id", opt(p.map(|p| p.id.as_str()))),
        (
            "birth_date",
            string(
                &p.and_then(|p| p.birth_date)
                    .map(String::from)
                    .unwrap_or_default(),
            ),
        ),
        (
            "residence",
            opt(p.and_then(|p| p.residence.as_ref()).map(|r| r.as_str())),
        ),
    ]);
    let resource_value = record([
        ("id", string(&resource.id)),
        ("type", string(resource.kind.as_str())),
        ("patient", patient),
        (
            "data_categories",
            strings(facts.categories.iter().map(|c| c.as_str())),
        ),
        (
            "jurisdiction",
            opt(resource.jurisdiction.as_ref().map(|j| j.as_str())),
        ),
        ("hash", opt(resource.hash.as_ref().map(|h| h.as_str()))),
        ("location", opt(resource.location.as_deref())),
        (
            "fields",
            strings(resource.fields.iter().flatten().map(String::as_str)),
        ),
    ]);
    let recipient = record([
        ("id", opt(rc.map(|r| r.id.as_str()))),
        ("type", opt(rc.and_then(|r| r.kind).map(|k| k.as_str()))),
        (
            "country",
            opt(rc.and_then(|r| r.country.as_ref()).map(|c| c.as_str())),
        ),
    ]);
    let context = record([
        (
            "purpose_of_use",
            opt(ctx.purpose_of_use.as_ref().map(|p| p.as_str())),
        ),
        ("legal_basis", opt(ctx.legal_basis.map(|b| b.as_str()))),
        ("recipient", recipient),
        ("break_glass", Dynamic::from_bool(ctx.break_glass)),
        (
            "treating_relationship",
            Dynamic::from_bool(ctx.treating_relationship),
        ),
        ("attributes", object(&ctx.attributes)),
    ]);
    record([
        ("id", string(&request.id)),
        ("kind", string("access")),
        ("timestamp", string(request.timestamp.as_str())),
        ("actor", actor_value),
        ("action", string(request.action.as_str())),
        ("resource", resource_value),
        ("context", context),
    ])
}

/// `env`: what the engine derived (jurisdictions, regimes, ledger time, age, consent facts).
pub(super) fn env_value(request: &AccessRequest, facts: &RequestFacts<'_>) -> Dynamic {
    let age = request
        .resource
        .patient
        .as_ref()
        .and_then(|p| p.birth_date)
        .map_or(Dynamic::UNIT, |b| {
            Dynamic::from_int(b.age_on(request.timestamp.date()))
        });
    let applicable = facts.applicable;
    record([
        (
            "jurisdictions",
            strings(applicable.jurisdictions.iter().map(String::as_str)),
        ),
        (
            "regimes",
            strings(applicable.regimes.iter().map(String::as_str)),
        ),
        (
            "holder_regimes",
            strings(applicable.holder_regimes.iter().map(String::as_str)),
        ),
        ("now", Dynamic::from_int(request.timestamp.unix())),
        ("patient_age", age),
        (
            "patient_jurisdiction",
            string(applicable.patient_jurisdiction.as_deref().unwrap_or("")),
        ),
        (
            "consent_categories",
            strings(facts.consent.categories.iter().map(|c| c.as_str())),
        ),
        (
            "consent_ids",
            strings(facts.consent.consent_ids.iter().map(String::as_str)),
        ),
        (
            "consent_withdrawn",
            Dynamic::from_bool(facts.consent.withdrawn),
        ),
        ("grantee", string(request.grantee())),
    ])
}
