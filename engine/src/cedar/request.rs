//! Builds the Cedar request and entities straight from the typed transaction: no JSON, and no
//! expressions to evaluate — attribute values are built as Cedar core values.
//!
//! The shapes here must match `schema.cedarschema`; [`super::reference`] builds the same request
//! through Cedar's JSON path with schema checking, and tests assert that both decide alike.

use super::reads::AttributeReads;
use super::CedarPolicies;
use crate::consent::ConsentFacts;
use crate::jurisdiction::Applicable;
use crate::transaction::{AccessRequest, DataCategory};
use cedar_policy::{Context, Entities, EntityId, EntityUid, Request};
use cedar_policy_core::ast as core;
use ref_cast::RefCast;
use smol_str::SmolStr;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Facts the engine derived for a request, shared by Cedar and Rhai.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub applicable: &'a Applicable,
    pub consent: &'a ConsentFacts,
    /// The record's data categories, defaulted and sorted.
    pub categories: &'a [DataCategory],
}

/// One attribute value, independent of how it is encoded for Cedar.
pub(crate) enum Attr<'a> {
    Str(&'a str),
    Bool(bool),
    Strings(Vec<&'a str>),
}

/// The actor's attributes, in the order [`actor_attrs`] gives them.
pub(crate) const ACTOR_ATTRS: &[&str] = &["kind", "roles", "organization", "jurisdiction"];
/// The record's attributes, in the order [`record_attrs`] gives them.
pub(crate) const RECORD_ATTRS: &[&str] = &[
    "fhir_type",
    "data_categories",
    "patient",
    "jurisdiction",
    "fields",
];
/// The context's attributes, in the order [`context_attrs`] gives them.
pub(crate) const CONTEXT_ATTRS: &[&str] = &[
    "purpose",
    "legal_basis",
    "break_glass",
    "treating_relationship",
    "actor_is_subject",
    "recipient_id",
    "recipient_type",
    "recipient_country",
    "jurisdictions",
    "regimes",
    "holder_regimes",
    "consent_categories",
    "consent_withdrawn",
    "irb_waiver",
    "de_identified",
    "transfer_safeguard",
];

/// Context keys that the engine reads from `context.attributes`, with their types.
pub(crate) const TYPED_ATTRIBUTES: &[(&str, &str)] = &[
    ("irb_waiver", "boolean"),
    ("de_identified", "boolean"),
    ("transfer_safeguard", "string"),
];

fn attribute_bool(request: &AccessRequest, key: &str) -> bool {
    request
        .context
        .attributes
        .get(key)
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

fn attribute_str<'a>(request: &'a AccessRequest, key: &str) -> &'a str {
    request
        .context
        .attributes
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

pub(crate) fn actor_attrs(request: &AccessRequest) -> Vec<(&'static str, Attr<'_>)> {
    let actor = &request.actor;
    vec![
        ("kind", Attr::Str(actor.kind.as_str())),
        (
            "roles",
            Attr::Strings(actor.roles.iter().map(String::as_str).collect()),
        ),
        (
            "organization",
            Attr::Str(actor.organization.as_deref().unwrap_or("")),
        ),
        (
            "jurisdiction",
            Attr::Str(actor.jurisdiction.as_ref().map_or("", |j| j.as_str())),
        ),
    ]
}

pub(crate) fn record_attrs<'a>(
    request: &'a AccessRequest,
    facts: &RequestFacts<'a>,
) -> Vec<(&'static str, Attr<'a>)> {
    let resource = &request.resource;
    vec![
        ("fhir_type", Attr::Str(resource.kind.as_str())),
        (
            "data_categories",
            Attr::Strings(facts.categories.iter().map(|c| c.as_str()).collect()),
        ),
        ("patient", Attr::Str(request.patient_id().unwrap_or(""))),
        (
            "jurisdiction",
            Attr::Str(resource.jurisdiction.as_ref().map_or("", |j| j.as_str())),
        ),
        (
            "fields",
            Attr::Strings(
                resource
                    .fields
                    .iter()
                    .flatten()
                    .map(String::as_str)
                    .collect(),
            ),
        ),
    ]
}

pub(crate) fn context_attrs<'a>(
    request: &'a AccessRequest,
    facts: &RequestFacts<'a>,
) -> Vec<(&'static str, Attr<'a>)> {
    let ctx = &request.context;
    let recipient = ctx.recipient.as_ref();
    vec![
        (
            "purpose",
            Attr::Str(ctx.purpose_of_use.as_ref().map_or("", |p| p.as_str())),
        ),
        (
            "legal_basis",
            Attr::Str(ctx.legal_basis.map_or("", |b| b.as_str())),
        ),
        ("break_glass", Attr::Bool(ctx.break_glass)),
        (
            "treating_relationship",
            Attr::Bool(ctx.treating_relationship),
        ),
        ("actor_is_subject", Attr::Bool(request.actor_is_subject())),
        (
            "recipient_id",
            Attr::Str(recipient.map_or("", |r| r.id.as_str())),
        ),
        (
            "recipient_type",
            Attr::Str(recipient.and_then(|r| r.kind).map_or("", |k| k.as_str())),
        ),
        (
            "recipient_country",
            Attr::Str(
                recipient
                    .and_then(|r| r.country.as_ref())
                    .map_or("", |c| c.as_str()),
            ),
        ),
        (
            "jurisdictions",
            Attr::Strings(
                facts
                    .applicable
                    .jurisdictions
                    .iter()
                    .map(String::as_str)
                    .collect(),
            ),
        ),
        (
            "regimes",
            Attr::Strings(
                facts
                    .applicable
                    .regimes
                    .iter()
                    .map(String::as_str)
                    .collect(),
            ),
        ),
        (
            "holder_regimes",
            Attr::Strings(
                facts
                    .applicable
                    .holder_regimes
                    .iter()
                    .map(String::as_str)
                    .collect(),
            ),
        ),
        (
            "consent_categories",
            Attr::Strings(
                facts
                    .consent
                    .categories
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
            ),
        ),
        ("consent_withdrawn", Attr::Bool(facts.consent.withdrawn)),
        (
            "irb_waiver",
            Attr::Bool(attribute_bool(request, "irb_waiver")),
        ),
        (
            "de_identified",
            Attr::Bool(attribute_bool(request, "de_identified")),
        ),
        (
            "transfer_safeguard",
            Attr::Str(attribute_str(request, "transfer_safeguard")),
        ),
    ]
}

/// A core value for one attribute. Built directly, not through an expression that Cedar would
/// then have to evaluate: that evaluation was over half the cost of a request.
fn value(attr: Attr<'_>) -> core::Value {
    match attr {
        Attr::Str(s) => core::Value::from(s),
        Attr::Bool(b) => core::Value::from(b),
        Attr::Strings(list) => {
            core::Value::set_of_lits(list.into_iter().map(core::Literal::from), None)
        }
    }
}

/// The attributes whose bit is set in `reads` (see [`AttributeReads`]).
fn read<'a>(
    attrs: Vec<(&'static str, Attr<'a>)>,
    reads: u64,
) -> impl Iterator<Item = (&'static str, Attr<'a>)> {
    attrs
        .into_iter()
        .enumerate()
        .filter(move |(i, _)| AttributeReads::reads(reads, *i))
        .map(|(_, a)| a)
}

fn entity(uid: EntityUid, attrs: Vec<(&'static str, Attr<'_>)>, reads: u64) -> core::Entity {
    core::Entity::new_with_attr_partial_value(
        uid.into(),
        read(attrs, reads)
            .map(|(k, v)| (SmolStr::new_static(k), core::PartialValue::Value(value(v)))),
        HashSet::new(),
        HashSet::new(),
        [],
    )
}

fn context(attrs: Vec<(&'static str, Attr<'_>)>, reads: u64) -> Context {
    let record: BTreeMap<SmolStr, core::Value> = read(attrs, reads)
        .map(|(k, v)| (SmolStr::new_static(k), value(v)))
        .collect();
    // `Context` is a transparent wrapper of the core context (`#[repr(transparent)]`, RefCast).
    Context::ref_cast(&core::Context::Value(Arc::new(record))).clone()
}

pub(crate) fn actor_uid(policies: &CedarPolicies, request: &AccessRequest) -> EntityUid {
    EntityUid::from_type_name_and_id(
        policies.actor_type.clone(),
        EntityId::new(&request.actor.id),
    )
}

pub(crate) fn record_uid(policies: &CedarPolicies, request: &AccessRequest) -> EntityUid {
    EntityUid::from_type_name_and_id(
        policies.record_type.clone(),
        EntityId::new(&request.resource.id),
    )
}

/// The request and its two entities (actor and record), with the attributes in `reads`. Errors are
/// reported, never panicked on.
pub(super) fn build(
    policies: &CedarPolicies,
    request: &AccessRequest,
    facts: &RequestFacts<'_>,
    context_attrs: Vec<(&'static str, Attr<'_>)>,
    reads: AttributeReads,
) -> Result<(Request, Entities), String> {
    let principal = actor_uid(policies, request);
    let resource = record_uid(policies, request);
    let actor = entity(principal.clone(), actor_attrs(request), reads.actor);
    let record = entity(resource.clone(), record_attrs(request, facts), reads.record);
    // Two entities and no parents: the transitive closure is empty, so there is nothing to compute.
    let entities = cedar_policy_core::entities::Entities::from_entities(
        [actor, record],
        None::<&cedar_policy_core::entities::NoEntitiesSchema>,
        cedar_policy_core::entities::TCComputation::AssumeAlreadyComputed,
        cedar_policy_core::extensions::Extensions::none(),
    )
    .map(Entities::from)
    .map_err(|e| format!("building entities: {e}"))?;
    let context = context(context_attrs, reads.context);
    let cedar_request = Request::new(
        principal,
        policies.action_uid(request.action).clone(),
        resource,
        context,
        None,
    )
    .map_err(|e| format!("building request: {e}"))?;
    Ok((cedar_request, entities))
}
