//! Builds the Cedar request and entities straight from the typed transaction: no JSON, and no
//! expressions to evaluate — attribute values are built as Cedar core values.
//!
//! The shapes here must match `schema.cedarschema`; [`super::reference`] builds the same request
//! through Cedar's JSON path with schema checking, and tests assert that both decide alike.

use super::reads::AttributeReads;
use super::CedarPolicies;
use crate::consent::ConsentFacts;
use crate::jurisdiction::Applicable;
use crate::relations::RelationFacts;
use crate::transaction::relations::RepresentationBasis;
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
    /// Authorizations, representations and data use agreements the ledger establishes.
    pub relations: &'a RelationFacts,
    /// Whether the request fits the native evaluator's size bound, once known.
    pub native_fits: &'a std::cell::OnceCell<bool>,
    /// What the rule modules' manifest filters test of the request, once known.
    pub(crate) module_filter: &'a std::cell::OnceCell<crate::rules::FilterBits>,
}

/// One attribute value, independent of how it is encoded for Cedar.
pub(crate) enum Attr<'a> {
    Str(&'a str),
    Bool(bool),
    Strings(Strs<'a>),
}

/// A list of strings read from a request, borrowed: the request's `String`s, or the spellings of
/// its closed enumerations (nothing is collected to read one).
#[derive(Clone, Copy)]
pub(crate) enum Strs<'a> {
    Slice(&'a [String]),
    Categories(&'a [DataCategory]),
    Bases(&'a [RepresentationBasis]),
}

impl<'a> Strs<'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Strs::Slice(items) => items.len(),
            Strs::Categories(items) => items.len(),
            Strs::Bases(items) => items.len(),
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<&'a str> {
        match *self {
            Strs::Slice(items) => items.get(index).map(String::as_str),
            Strs::Categories(items) => items.get(index).map(|c| c.as_str()),
            Strs::Bases(items) => items.get(index).map(|b| b.as_str()),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// Reads one attribute of a request.
pub(crate) type AttrOf = for<'a> fn(&'a AccessRequest, &RequestFacts<'a>) -> Attr<'a>;

/// The actor's attributes (`principal`), by name.
pub(crate) const ACTOR: &[(&str, AttrOf)] = &[
    ("kind", |r, _| Attr::Str(r.actor.kind.as_str())),
    ("roles", |r, _| Attr::Strings(Strs::Slice(&r.actor.roles))),
    ("organization", |r, _| {
        Attr::Str(r.actor.organization.as_deref().unwrap_or(""))
    }),
    ("jurisdiction", |r, _| {
        Attr::Str(r.actor.jurisdiction.as_ref().map_or("", |j| j.as_str()))
    }),
];

/// The record's attributes (`resource`), by name.
pub(crate) const RECORD: &[(&str, AttrOf)] = &[
    ("fhir_type", |r, _| Attr::Str(r.resource.kind.as_str())),
    ("data_categories", |_, f| {
        Attr::Strings(Strs::Categories(f.categories))
    }),
    ("patient", |r, _| Attr::Str(r.patient_id().unwrap_or(""))),
    ("jurisdiction", |r, _| {
        Attr::Str(r.resource.jurisdiction.as_ref().map_or("", |j| j.as_str()))
    }),
    ("fields", |r, _| {
        Attr::Strings(Strs::Slice(r.resource.fields.as_deref().unwrap_or(&[])))
    }),
];

/// The context's attributes, by name.
pub(crate) const CONTEXT: &[(&str, AttrOf)] = &[
    ("purpose", |r, _| {
        Attr::Str(r.context.purpose_of_use.as_ref().map_or("", |p| p.as_str()))
    }),
    ("legal_basis", |r, _| {
        Attr::Str(r.context.legal_basis.map_or("", |b| b.as_str()))
    }),
    ("break_glass", |r, _| Attr::Bool(r.context.break_glass)),
    ("treating_relationship", |r, _| {
        Attr::Bool(r.context.treating_relationship)
    }),
    ("actor_is_subject", |r, _| Attr::Bool(r.actor_is_subject())),
    ("recipient_id", |r, _| {
        Attr::Str(r.context.recipient.as_ref().map_or("", |x| x.id.as_str()))
    }),
    ("recipient_type", |r, _| {
        let recipient = r.context.recipient.as_ref();
        Attr::Str(recipient.and_then(|x| x.kind).map_or("", |k| k.as_str()))
    }),
    ("recipient_country", |r, _| {
        let recipient = r.context.recipient.as_ref();
        Attr::Str(
            recipient
                .and_then(|x| x.country.as_ref())
                .map_or("", |c| c.as_str()),
        )
    }),
    ("jurisdictions", |_, f| {
        Attr::Strings(Strs::Slice(&f.applicable.jurisdictions))
    }),
    ("regimes", |_, f| {
        Attr::Strings(Strs::Slice(&f.applicable.regimes))
    }),
    ("holder_regimes", |_, f| {
        Attr::Strings(Strs::Slice(&f.applicable.holder_regimes))
    }),
    ("consent_categories", |_, f| {
        Attr::Strings(Strs::Categories(&f.consent.categories))
    }),
    ("consent_withdrawn", |_, f| Attr::Bool(f.consent.withdrawn)),
    ("consent_transfer_countries", |_, f| {
        Attr::Strings(Strs::Slice(&f.consent.transfer_countries))
    }),
    ("authorization_categories", |_, f| {
        Attr::Strings(Strs::Categories(&f.relations.authorization.categories))
    }),
    ("actor_represents_subject", |_, f| {
        Attr::Bool(f.relations.representation.represents())
    }),
    ("representation_bases", |_, f| {
        Attr::Strings(Strs::Bases(&f.relations.representation.bases))
    }),
    ("treatment_basis", |r, _| {
        Attr::Str(attribute_str(r, "treatment_basis"))
    }),
    ("irb_waiver", |r, _| {
        Attr::Bool(attribute_bool(r, "irb_waiver"))
    }),
    ("de_identified", |r, _| {
        Attr::Bool(attribute_bool(r, "de_identified"))
    }),
    ("transfer_safeguard", |r, _| {
        Attr::Str(attribute_str(r, "transfer_safeguard"))
    }),
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

/// Every attribute of `table`, in order (the reference path, which sends all of them).
pub(crate) fn attrs<'a>(
    table: &[(&'static str, AttrOf)],
    request: &'a AccessRequest,
    facts: &RequestFacts<'a>,
) -> Vec<(&'static str, Attr<'a>)> {
    table
        .iter()
        .map(|(name, of)| (*name, of(request, facts)))
        .collect()
}

/// The value of a boolean context attribute; `false` for any other name.
pub(crate) fn context_flag(request: &AccessRequest, facts: &RequestFacts<'_>, name: &str) -> bool {
    CONTEXT
        .iter()
        .find(|(n, _)| *n == name)
        .is_some_and(|(_, of)| matches!(of(request, facts), Attr::Bool(true)))
}

/// A core value for one attribute. Built directly, not through an expression that Cedar would
/// then have to evaluate: that evaluation was over half the cost of a request.
fn value(attr: Attr<'_>) -> core::Value {
    match attr {
        Attr::Str(s) => core::Value::from(s),
        Attr::Bool(b) => core::Value::from(b),
        Attr::Strings(list) => core::Value::set_of_lits(list.iter().map(core::Literal::from), None),
    }
}

/// The attributes of `table` whose bit is set in `reads` (see [`AttributeReads`]), each read
/// only then.
fn read<'a>(
    table: &'static [(&'static str, AttrOf)],
    request: &'a AccessRequest,
    facts: &'a RequestFacts<'a>,
    reads: u64,
) -> impl Iterator<Item = (SmolStr, core::Value)> + 'a {
    table
        .iter()
        .enumerate()
        .filter(move |(i, _)| AttributeReads::reads(reads, *i))
        .map(move |(_, (name, of))| (SmolStr::new_static(name), value(of(request, facts))))
}

fn entity(uid: EntityUid, attrs: impl Iterator<Item = (SmolStr, core::Value)>) -> core::Entity {
    core::Entity::new_with_attr_partial_value(
        uid.into(),
        attrs.map(|(k, v)| (k, core::PartialValue::Value(v))),
        HashSet::new(),
        HashSet::new(),
        [],
    )
}

fn context(attrs: impl Iterator<Item = (SmolStr, core::Value)>) -> Context {
    let record: BTreeMap<SmolStr, core::Value> = attrs.collect();
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
    reads: AttributeReads,
) -> Result<(Request, Entities), String> {
    let principal = actor_uid(policies, request);
    let resource = record_uid(policies, request);
    let actor = entity(principal.clone(), read(ACTOR, request, facts, reads.actor));
    let record = entity(resource.clone(), read(RECORD, request, facts, reads.record));
    // Two entities and no parents: the transitive closure is empty, so there is nothing to compute.
    let entities = cedar_policy_core::entities::Entities::from_entities(
        [actor, record],
        None::<&cedar_policy_core::entities::NoEntitiesSchema>,
        cedar_policy_core::entities::TCComputation::AssumeAlreadyComputed,
        cedar_policy_core::extensions::Extensions::none(),
    )
    .map(Entities::from)
    .map_err(|e| format!("building entities: {e}"))?;
    let context = context(read(CONTEXT, request, facts, reads.context));
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
