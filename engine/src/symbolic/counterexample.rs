//! A counterexample as a reader can use it: the request (principal, action, resource, context)
//! and the entities it was decided with, as Cedar's JSON forms, in a stable order.

use cedar_policy::{Entity, EntityUid, Request};
use cedar_policy_symcc::Env;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;

/// A concrete request on which the two policy sets decide differently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// Entity uids as Cedar writes them (`Accord::Actor::"…"`).
    pub principal: String,
    pub action: String,
    pub resource: String,
    /// The context record, attribute by attribute (Cedar's JSON value forms).
    pub context: Value,
    /// Every entity of the request, in uid order, as Cedar's entity JSON.
    pub entities: Vec<Value>,
}

fn uid(uid: Option<&EntityUid>) -> String {
    uid.map_or_else(String::new, ToString::to_string)
}

/// The context record as JSON: written through an entity whose attributes are the context's, so
/// that every value takes Cedar's own JSON form.
fn context_json(request: &Request) -> Result<Value, String> {
    let Some(context) = request.context() else {
        return Ok(Value::Object(Default::default()));
    };
    let holder: EntityUid = r#"Accord::Context::"counterexample""#
        .parse()
        .map_err(|e| format!("context holder: {e}"))?;
    let attrs = context.clone().into_iter().collect();
    let entity = Entity::new(holder, attrs, HashSet::new())
        .map_err(|e| format!("context of the counterexample: {e}"))?;
    let json = entity
        .to_json_value()
        .map_err(|e| format!("context of the counterexample: {e}"))?;
    Ok(json.get("attrs").cloned().unwrap_or(Value::Null))
}

impl Counterexample {
    pub(crate) fn of(env: &Env) -> Result<Self, String> {
        let request = &env.request;
        let mut entities = env
            .entities
            .iter()
            .map(|e| {
                e.to_json_value()
                    .map(|json| (e.uid().to_string(), json))
                    .map_err(|err| format!("entity {}: {err}", e.uid()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        entities.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Counterexample {
            principal: uid(request.principal()),
            action: uid(request.action()),
            resource: uid(request.resource()),
            context: context_json(request)?,
            entities: entities.into_iter().map(|(_, json)| json).collect(),
        })
    }
}
