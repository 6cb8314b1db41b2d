//! The `tx` and `env` maps a rule module sees, described once as a tree of fields.
//!
//! The same description builds the Rhai maps ([`Selection::build`]) and answers the native
//! evaluator ([`super::native`]), so the two cannot disagree on what a field holds. A [`Selection`]
//! keeps only the fields some module of the bundle can read ([`super::usage`]): a field left out is
//! one no module reads, so leaving it out changes nothing a module sees.

use crate::cedar::{RequestFacts, Strs};
use crate::transaction::AccessRequest;
use rhai::{Array, Dynamic, ImmutableString, Map};
use serde_json::Value;
use std::borrow::Cow;

/// One field's value for a request, before it becomes a Rhai value.
pub(super) enum Leaf<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Unit,
    Strings(Strs<'a>),
    /// A JSON object (`attributes`), converted with [`json_to_dynamic`].
    Object(&'a serde_json::Map<String, Value>),
}

/// Reads one field of a request.
pub(super) type Getter = for<'a, 'b> fn(&'a AccessRequest, &'b RequestFacts<'a>) -> Leaf<'a>;

/// A field: a value read from the request, or a record of named fields.
pub(super) enum Field {
    Leaf(Getter),
    Record(&'static [(&'static str, Field)]),
}

impl Field {
    /// The named child of a record; `None` for a leaf or an unknown name.
    pub(super) fn child(&self, name: &str) -> Option<&'static Field> {
        match self {
            Field::Record(fields) => fields.iter().find(|(n, _)| *n == name).map(|(_, f)| f),
            Field::Leaf(_) => None,
        }
    }
}

fn text(s: &str) -> Leaf<'_> {
    Leaf::Str(Cow::Borrowed(s))
}

fn opt(s: Option<&str>) -> Leaf<'_> {
    text(s.unwrap_or(""))
}

/// `tx`: the transaction with defaults filled in (absent strings `""`, absent lists `[]`). A leaf
/// added here or to [`ENV`] is weighed in the native evaluator's size bound too (`size_bound.rs`).
pub(super) static TX: Field = Field::Record(&[
    ("id", Field::Leaf(|r, _| text(&r.id))),
    ("kind", Field::Leaf(|_, _| text("access"))),
    ("timestamp", Field::Leaf(|r, _| text(r.timestamp.as_str()))),
    ("action", Field::Leaf(|r, _| text(r.action.as_str()))),
    (
        "actor",
        Field::Record(&[
            ("id", Field::Leaf(|r, _| text(&r.actor.id))),
            ("type", Field::Leaf(|r, _| text(r.actor.kind.as_str()))),
            (
                "organization",
                Field::Leaf(|r, _| opt(r.actor.organization.as_deref())),
            ),
            (
                "roles",
                Field::Leaf(|r, _| Leaf::Strings(Strs::Slice(&r.actor.roles))),
            ),
            (
                "jurisdiction",
                Field::Leaf(|r, _| opt(r.actor.jurisdiction.as_ref().map(|j| j.as_str()))),
            ),
            (
                "attributes",
                Field::Leaf(|r, _| Leaf::Object(&r.actor.attributes)),
            ),
        ]),
    ),
    (
        "resource",
        Field::Record(&[
            ("id", Field::Leaf(|r, _| text(&r.resource.id))),
            ("type", Field::Leaf(|r, _| text(r.resource.kind.as_str()))),
            (
                "patient",
                Field::Record(&[
                    (
                        "id",
                        Field::Leaf(|r, _| opt(r.resource.patient.as_ref().map(|p| p.id.as_str()))),
                    ),
                    (
                        "birth_date",
                        Field::Leaf(|r, _| {
                            let birth = r.resource.patient.as_ref().and_then(|p| p.birth_date);
                            Leaf::Str(Cow::Owned(birth.map(String::from).unwrap_or_default()))
                        }),
                    ),
                    (
                        "residence",
                        Field::Leaf(|r, _| {
                            let patient = r.resource.patient.as_ref();
                            opt(patient
                                .and_then(|p| p.residence.as_ref())
                                .map(|j| j.as_str()))
                        }),
                    ),
                ]),
            ),
            (
                "data_categories",
                Field::Leaf(|_, f| Leaf::Strings(Strs::Categories(f.categories))),
            ),
            (
                "jurisdiction",
                Field::Leaf(|r, _| opt(r.resource.jurisdiction.as_ref().map(|j| j.as_str()))),
            ),
            (
                "hash",
                Field::Leaf(|r, _| opt(r.resource.hash.as_ref().map(|h| h.as_str()))),
            ),
            (
                "location",
                Field::Leaf(|r, _| opt(r.resource.location.as_deref())),
            ),
            (
                "fields",
                Field::Leaf(|r, _| {
                    Leaf::Strings(Strs::Slice(r.resource.fields.as_deref().unwrap_or(&[])))
                }),
            ),
        ]),
    ),
    (
        "context",
        Field::Record(&[
            (
                "purpose_of_use",
                Field::Leaf(|r, _| opt(r.context.purpose_of_use.as_ref().map(|p| p.as_str()))),
            ),
            (
                "legal_basis",
                Field::Leaf(|r, _| opt(r.context.legal_basis.map(|b| b.as_str()))),
            ),
            (
                "recipient",
                Field::Record(&[
                    (
                        "id",
                        Field::Leaf(|r, _| {
                            opt(r.context.recipient.as_ref().map(|c| c.id.as_str()))
                        }),
                    ),
                    (
                        "type",
                        Field::Leaf(|r, _| {
                            let recipient = r.context.recipient.as_ref();
                            opt(recipient.and_then(|c| c.kind).map(|k| k.as_str()))
                        }),
                    ),
                    (
                        "country",
                        Field::Leaf(|r, _| {
                            let recipient = r.context.recipient.as_ref();
                            opt(recipient
                                .and_then(|c| c.country.as_ref())
                                .map(|c| c.as_str()))
                        }),
                    ),
                ]),
            ),
            (
                "break_glass",
                Field::Leaf(|r, _| Leaf::Bool(r.context.break_glass)),
            ),
            (
                "treating_relationship",
                Field::Leaf(|r, _| Leaf::Bool(r.context.treating_relationship)),
            ),
            (
                "legal_instrument",
                Field::Record(&[
                    (
                        "jurisdiction",
                        Field::Leaf(|r, _| {
                            let instrument = r.context.legal_instrument.as_ref();
                            opt(instrument.map(|i| i.jurisdiction.as_str()))
                        }),
                    ),
                    (
                        "citation",
                        Field::Leaf(|r, _| {
                            let instrument = r.context.legal_instrument.as_ref();
                            opt(instrument.map(|i| i.citation.as_str()))
                        }),
                    ),
                ]),
            ),
            (
                "legal_claim",
                Field::Record(&[
                    (
                        "reference",
                        Field::Leaf(|r, _| {
                            opt(r.context.legal_claim.as_ref().map(|c| c.reference.as_str()))
                        }),
                    ),
                    (
                        "procedure",
                        Field::Leaf(|r, _| {
                            opt(r.context.legal_claim.as_ref().map(|c| c.procedure.as_str()))
                        }),
                    ),
                ]),
            ),
            (
                "attributes",
                Field::Leaf(|r, _| Leaf::Object(&r.context.attributes)),
            ),
        ]),
    ),
]);

/// `env`: what the engine derived (jurisdictions, regimes, ledger time, age, consent facts, and
/// the representations and data use agreements on the ledger).
pub(super) static ENV: Field = Field::Record(&[
    (
        "jurisdictions",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Slice(&f.applicable.jurisdictions))),
    ),
    (
        "regimes",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Slice(&f.applicable.regimes))),
    ),
    (
        "holder_regimes",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Slice(&f.applicable.holder_regimes))),
    ),
    ("now", Field::Leaf(|r, _| Leaf::Int(r.timestamp.unix()))),
    (
        "patient_age",
        Field::Leaf(|r, _| {
            let birth = r.resource.patient.as_ref().and_then(|p| p.birth_date);
            birth.map_or(Leaf::Unit, |b| Leaf::Int(b.age_on(r.timestamp.date())))
        }),
    ),
    (
        "patient_jurisdiction",
        Field::Leaf(|_, f| opt(f.applicable.patient_jurisdiction.as_deref())),
    ),
    (
        "consent_categories",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Categories(&f.consent.categories))),
    ),
    (
        "consent_ids",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Slice(&f.consent.consent_ids))),
    ),
    (
        "consent_withdrawn",
        Field::Leaf(|_, f| Leaf::Bool(f.consent.withdrawn)),
    ),
    (
        "consent_transfer_countries",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Slice(&f.consent.transfer_countries))),
    ),
    (
        "consent_given_at",
        Field::Leaf(|_, f| f.consent.given_at.map_or(Leaf::Unit, Leaf::Int)),
    ),
    (
        "patient_age_at_consent",
        Field::Leaf(|r, f| {
            let birth = r.resource.patient.as_ref().and_then(|p| p.birth_date);
            let given = f.consent.given_at.and_then(|t| {
                time::OffsetDateTime::from_unix_timestamp(t)
                    .ok()
                    .map(|d| d.date())
            });
            match (birth, given) {
                (Some(b), Some(d)) => Leaf::Int(b.age_on(d)),
                _ => Leaf::Unit,
            }
        }),
    ),
    (
        "consent_term_hours",
        Field::Leaf(|_, f| f.consent.term_hours.map_or(Leaf::Unit, Leaf::Int)),
    ),
    ("grantee", Field::Leaf(|r, _| text(r.grantee()))),
    (
        "part2_tpo_consent",
        Field::Leaf(|_, f| Leaf::Bool(f.consent.part2_tpo)),
    ),
    (
        "holder_tpo_consent",
        Field::Leaf(|_, f| Leaf::Bool(f.consent.holder_tpo)),
    ),
    (
        "counseling_notes_consent",
        Field::Leaf(|_, f| Leaf::Bool(f.consent.counseling_notes)),
    ),
    (
        "authorization_categories",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Categories(&f.relations.authorization.categories))),
    ),
    (
        "compound_consent_ids",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Slice(&f.relations.authorization.compound_ids))),
    ),
    (
        "actor_represents_subject",
        Field::Leaf(|_, f| Leaf::Bool(f.relations.representation.represents())),
    ),
    (
        "representation_bases",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Bases(&f.relations.representation.bases))),
    ),
    (
        "representation_ids",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Slice(&f.relations.representation.ids))),
    ),
    (
        "data_use_agreement_ids",
        Field::Leaf(|_, f| Leaf::Strings(Strs::Slice(&f.relations.agreements.data_use_agreements))),
    ),
]);

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

/// Nested values are shared and read-only: `let ctx = tx.context;` in a module then costs a
/// reference count, not a deep copy, and nothing a module does is seen by the next.
fn frozen(value: Dynamic) -> Dynamic {
    value.into_read_only().into_shared()
}

impl Leaf<'_> {
    fn into_dynamic(self) -> Dynamic {
        match self {
            // Straight into Rhai's shared string: `Dynamic::from(String)` would copy it again.
            Leaf::Str(s) => Dynamic::from(ImmutableString::from(s.as_ref())),
            Leaf::Bool(b) => Dynamic::from_bool(b),
            Leaf::Int(i) => Dynamic::from_int(i),
            Leaf::Unit => Dynamic::UNIT,
            Leaf::Strings(items) => frozen(Dynamic::from_array(
                items
                    .iter()
                    .map(|s| Dynamic::from(ImmutableString::from(s)))
                    .collect::<Array>(),
            )),
            Leaf::Object(object) => frozen(Dynamic::from_map(
                object
                    .iter()
                    .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                    .collect(),
            )),
        }
    }
}

/// A set of fields of `tx` and `env`: the nodes of both trees (records and leaves), numbered in
/// preorder, `tx` first. A record is in the set when something below it is; a node past the
/// 128th is always in it, so the set can only grow what is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct FieldSet(u128);

impl FieldSet {
    /// Every field.
    pub(super) const ALL: FieldSet = FieldSet(u128::MAX);

    /// The fields `wanted` reads whole or reaches into; `wanted(path)` says whether the subtree at
    /// `path` is read whole and `on_route(path)` whether something strictly below it is read.
    pub(super) fn new(
        roots: &[(&'static str, &'static Field); 2],
        wanted: &dyn Fn(&[&'static str]) -> bool,
        on_route: &dyn Fn(&[&'static str]) -> bool,
    ) -> FieldSet {
        let mut set = FieldSet::default();
        let mut index = 0;
        for (name, field) in roots {
            set.mark(field, &mut vec![*name], false, &mut index, wanted, on_route);
        }
        set
    }

    fn mark(
        &mut self,
        field: &'static Field,
        path: &mut Vec<&'static str>,
        whole: bool,
        index: &mut usize,
        wanted: &dyn Fn(&[&'static str]) -> bool,
        on_route: &dyn Fn(&[&'static str]) -> bool,
    ) {
        let whole = whole || wanted(path);
        if (whole || on_route(path)) && *index < 128 {
            self.0 |= 1 << *index;
        }
        *index += 1;
        if let Field::Record(fields) = field {
            for (name, child) in fields.iter() {
                path.push(name);
                self.mark(child, path, whole, index, wanted, on_route);
                path.pop();
            }
        }
    }

    pub(super) fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    fn contains(self, index: usize) -> bool {
        index >= 128 || self.0 & (1 << index) != 0
    }

    /// The Rhai values of `roots` with the fields in this set; records become read-only shared
    /// maps (see [`frozen`]). A root is a map even when none of its fields is in the set.
    pub(super) fn build(
        self,
        roots: &[(&'static str, &'static Field); 2],
        request: &AccessRequest,
        facts: &RequestFacts<'_>,
    ) -> [Dynamic; 2] {
        let mut index = 0;
        roots.map(|(_, field)| {
            let root = index;
            let value = self.build_field(field, &mut index, request, facts);
            value.unwrap_or_else(|| {
                debug_assert!(!self.contains(root));
                frozen(Dynamic::from_map(Map::new()))
            })
        })
    }

    fn build_field(
        self,
        field: &'static Field,
        index: &mut usize,
        request: &AccessRequest,
        facts: &RequestFacts<'_>,
    ) -> Option<Dynamic> {
        let selected = self.contains(*index);
        *index += 1;
        match field {
            Field::Leaf(get) => selected.then(|| get(request, facts).into_dynamic()),
            Field::Record(fields) => {
                // Children are walked even when unselected, to keep the numbering.
                let map: Map = fields
                    .iter()
                    .filter_map(|(name, child)| {
                        let value = self.build_field(child, index, request, facts)?;
                        Some(((*name).into(), value))
                    })
                    .collect();
                selected.then(|| frozen(Dynamic::from_map(map)))
            }
        }
    }
}
