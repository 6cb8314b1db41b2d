//! The naive path, kept as a baseline and an oracle: entities and context go through Cedar's JSON
//! parsers with the schema, and the whole policy set is evaluated. The fast path
//! ([`CedarPolicies::authorize`]) must give the same decision and determining policies.

use super::request::{attrs, Attr, ACTOR, CONTEXT, RECORD};
use super::{CedarOutcome, CedarPolicies, RequestFacts};
use crate::transaction::AccessRequest;
use cedar_policy::{Context, Entities, Request};
use serde_json::{json, Map, Value};

fn to_json(attrs: Vec<(&'static str, Attr<'_>)>) -> Value {
    let mut map = Map::new();
    for (k, v) in attrs {
        let value = match v {
            Attr::Str(s) => Value::from(s),
            Attr::Bool(b) => Value::from(b),
            Attr::Strings(list) => Value::from(list.iter().collect::<Vec<_>>()),
        };
        map.insert(k.to_owned(), value);
    }
    Value::Object(map)
}

/// The entities JSON a client of plain Cedar would send for `request`.
pub fn entities_json(
    policies: &CedarPolicies,
    request: &AccessRequest,
    facts: &RequestFacts<'_>,
) -> Value {
    let actor = super::request::actor_uid(policies, request);
    let record = super::request::record_uid(policies, request);
    json!([
        { "uid": actor.to_json_value().unwrap_or_default(), "attrs": to_json(attrs(ACTOR, request, facts)), "parents": [] },
        { "uid": record.to_json_value().unwrap_or_default(), "attrs": to_json(attrs(RECORD, request, facts)), "parents": [] },
    ])
}

/// The context JSON for `request`.
pub fn context_json(request: &AccessRequest, facts: &RequestFacts<'_>) -> Value {
    to_json(attrs(CONTEXT, request, facts))
}

impl CedarPolicies {
    /// Decides `request` the naive way: JSON entities and context checked against the schema,
    /// and every policy of the bundle evaluated.
    pub fn authorize_reference(
        &self,
        request: &AccessRequest,
        facts: &RequestFacts<'_>,
    ) -> Result<CedarOutcome, String> {
        let entities =
            Entities::from_json_value(entities_json(self, request, facts), Some(&self.schema))
                .map_err(|e| e.to_string())?;
        let action = self.action_uid(request.action);
        let context =
            Context::from_json_value(context_json(request, facts), Some((&self.schema, action)))
                .map_err(|e| e.to_string())?;
        let cedar_request = Request::new(
            super::request::actor_uid(self, request),
            action.clone(),
            super::request::record_uid(self, request),
            context,
            Some(&self.schema),
        )
        .map_err(|e| e.to_string())?;
        let response = self
            .authorizer
            .is_authorized(&cedar_request, &self.all, &entities);
        Ok(self.outcome(&response))
    }
}
