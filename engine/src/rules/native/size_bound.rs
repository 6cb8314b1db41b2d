//! Whether a request is small enough for the native evaluator: a bound on what Rhai's data-size
//! checks would count over `tx` and `env`, read straight from the request and its facts.

use crate::cedar::RequestFacts;
use crate::rules::fields::{Field, ENV, TX};
use crate::rules::limits;
use crate::transaction::AccessRequest;

/// Whether every value of `tx` and `env` together stays within half of each of Rhai's data-size
/// limits: string bytes, array elements and map entries, each counted over the whole of both
/// maps, nested values included, as Rhai's size check counts them. Rhai checks a value against the
/// limits when a function returns it, a method changes it or it is assigned, and throws past them;
/// the evaluator does not model those checks, so on a request past this bound no program runs and
/// every module is called in Rhai. Within it, no value read from the request, nor anything the
/// evaluator builds (which [`super::MAX_STEPS`] and its own count of what it built keep under the
/// other half), can reach a limit.
///
/// The totals are read from the request and its facts directly rather than through the field
/// getters of [`TX`] and [`ENV`] (which build lists); they never count less than those fields
/// hold (tests compare the two, and count the fields read here).
pub(in crate::rules) fn within_limits(request: &AccessRequest, facts: &RequestFacts<'_>) -> bool {
    let total = Sizes::bound(request, facts);
    total.strings <= limits::MAX_STRING_SIZE / 2
        && total.arrays <= limits::MAX_ARRAY_SIZE / 2
        && total.maps <= limits::MAX_MAP_SIZE / 2
}

/// The entries of every record of `tx` and `env` (the records themselves are fixed).
const RECORD_ENTRIES: usize = record_entries(&TX) + record_entries(&ENV);

const fn record_entries(field: &Field) -> usize {
    match field {
        Field::Leaf(_) => 0,
        Field::Record(fields) => {
            let mut total = fields.len();
            let mut i = 0;
            while i < fields.len() {
                total += record_entries(&fields[i].1);
                i += 1;
            }
            total
        }
    }
}

/// The leaves of `tx` and `env` that [`Sizes::bound`] accounts for, `tx`'s then `env`'s (booleans
/// and integers weigh nothing); a test compares this with the leaves the trees have, so a field
/// added there fails it until it is counted here.
#[cfg(test)]
const LEAVES_COUNTED: usize = 32 + 23;

/// Bytes of the longest birth date a request can hold written as `tx` holds it (`YYYY-MM-DD`,
/// with a sign and more digits for years past four, which the date type allows), rounded up.
const BIRTH_DATE_BYTES: usize = 16;

/// Running totals for [`within_limits`].
#[derive(Default, Debug)]
struct Sizes {
    strings: usize,
    arrays: usize,
    maps: usize,
}

impl Sizes {
    /// At least what the leaves of `tx` and `env` hold, field by field in their order.
    fn bound(r: &AccessRequest, f: &RequestFacts<'_>) -> Sizes {
        let opt = |s: Option<&str>| s.map_or(0, str::len);
        let mut n = Sizes {
            maps: RECORD_ENTRIES,
            ..Sizes::default()
        };
        // tx
        n.strings += r.id.len() + "access".len() + r.timestamp.as_str().len();
        n.strings += r.action.as_str().len();
        let actor = &r.actor;
        n.strings += actor.id.len() + actor.kind.as_str().len();
        n.strings += opt(actor.organization.as_deref());
        n.list(actor.roles.iter().map(String::as_str));
        n.strings += opt(actor.jurisdiction.as_ref().map(|j| j.as_str()));
        n.object(&actor.attributes);
        let resource = &r.resource;
        n.strings += resource.id.len() + resource.kind.as_str().len();
        if let Some(patient) = &resource.patient {
            n.strings += patient.id.len();
            n.strings += patient.birth_date.map_or(0, |_| BIRTH_DATE_BYTES);
            n.strings += opt(patient.residence.as_ref().map(|j| j.as_str()));
        }
        n.list(f.categories.iter().map(|c| c.as_str()));
        n.strings += opt(resource.jurisdiction.as_ref().map(|j| j.as_str()));
        n.strings += opt(resource.hash.as_ref().map(|h| h.as_str()));
        n.strings += opt(resource.location.as_deref());
        n.list(resource.fields.iter().flatten().map(String::as_str));
        let context = &r.context;
        n.strings += opt(context.purpose_of_use.as_ref().map(|p| p.as_str()));
        n.strings += opt(context.legal_basis.map(|b| b.as_str()));
        if let Some(recipient) = &context.recipient {
            n.strings += recipient.id.len();
            n.strings += opt(recipient.kind.map(|k| k.as_str()));
            n.strings += opt(recipient.country.as_ref().map(|c| c.as_str()));
        }
        if let Some(instrument) = &context.legal_instrument {
            n.strings += instrument.jurisdiction.as_str().len() + instrument.citation.len();
        }
        if let Some(claim) = &context.legal_claim {
            n.strings += claim.reference.len() + claim.procedure.as_str().len();
        }
        n.object(&context.attributes);
        // env
        let applicable = f.applicable;
        n.list(applicable.jurisdictions.iter().map(String::as_str));
        n.list(applicable.regimes.iter().map(String::as_str));
        n.list(applicable.holder_regimes.iter().map(String::as_str));
        n.strings += opt(applicable.patient_jurisdiction.as_deref());
        let consent = f.consent;
        n.list(consent.categories.iter().map(|c| c.as_str()));
        n.list(consent.consent_ids.iter().map(String::as_str));
        n.list(consent.transfer_countries.iter().map(String::as_str));
        n.strings += r.grantee().len();
        let relations = f.relations;
        n.list(
            relations
                .authorization
                .categories
                .iter()
                .map(|c| c.as_str()),
        );
        n.list(
            relations
                .authorization
                .compound_ids
                .iter()
                .map(String::as_str),
        );
        n.list(relations.representation.bases.iter().map(|b| b.as_str()));
        n.list(relations.representation.ids.iter().map(String::as_str));
        n.list(
            relations
                .agreements
                .data_use_agreements
                .iter()
                .map(String::as_str),
        );
        n
    }

    fn list<'a>(&mut self, items: impl Iterator<Item = &'a str>) {
        for item in items {
            self.arrays += 1;
            self.strings += item.len();
        }
    }

    fn object(&mut self, map: &serde_json::Map<String, serde_json::Value>) {
        self.maps += map.len();
        for value in map.values() {
            self.json(value);
        }
    }

    fn json(&mut self, value: &serde_json::Value) {
        match value {
            serde_json::Value::String(s) => self.strings += s.len(),
            serde_json::Value::Array(items) => {
                self.arrays += items.len();
                items.iter().for_each(|v| self.json(v));
            }
            serde_json::Value::Object(map) => self.object(map),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Sizes, LEAVES_COUNTED};
    use crate::cedar::RequestFacts;
    use crate::consent::InMemoryConsentRegistry;
    use crate::rules::analysis_tests::default_bundle;
    use crate::rules::fields::{Field, Leaf, ENV, TX};
    use crate::testing::access;
    use crate::transaction::AccessRequest;
    use serde_json::json;

    /// What the leaves of `tx` and `env` hold for a request, read through their getters.
    fn exact(request: &AccessRequest, facts: &RequestFacts<'_>) -> Sizes {
        fn walk(n: &mut Sizes, field: &'static Field, r: &AccessRequest, f: &RequestFacts<'_>) {
            match field {
                Field::Record(fields) => {
                    n.maps += fields.len();
                    fields.iter().for_each(|(_, child)| walk(n, child, r, f));
                }
                Field::Leaf(get) => match get(r, f) {
                    Leaf::Str(s) => n.strings += s.len(),
                    Leaf::Strings(items) => n.list(items.iter()),
                    Leaf::Object(map) => n.object(map),
                    Leaf::Bool(_) | Leaf::Int(_) | Leaf::Unit => {}
                },
            }
        }
        let mut n = Sizes::default();
        walk(&mut n, &TX, request, facts);
        walk(&mut n, &ENV, request, facts);
        n
    }

    fn leaves(field: &Field) -> usize {
        match field {
            Field::Leaf(_) => 1,
            Field::Record(fields) => fields.iter().map(|(_, f)| leaves(f)).sum(),
        }
    }

    fn assert_bounds(request: &AccessRequest, facts: &RequestFacts<'_>) {
        let (bound, exact) = (Sizes::bound(request, facts), exact(request, facts));
        assert!(
            bound.strings >= exact.strings
                && bound.arrays >= exact.arrays
                && bound.maps >= exact.maps,
            "{bound:?} under {exact:?} for {}",
            request.id
        );
    }

    #[test]
    fn every_leaf_of_tx_and_env_is_counted() {
        assert_eq!(leaves(&TX) + leaves(&ENV), LEAVES_COUNTED);
    }

    #[test]
    fn the_bound_is_never_under_what_the_fields_hold_on_any_case_of_the_bundle() {
        let bundle = default_bundle();
        let inputs = crate::cases::case_inputs(&bundle);
        assert!(inputs.len() > 100, "{} cases", inputs.len());
        for input in &inputs {
            let Ok(derived) = bundle.derive(&input.request, &input.registry) else {
                continue;
            };
            assert_bounds(&input.request, &derived.facts());
        }
    }

    #[test]
    fn the_bound_is_never_under_what_the_fields_hold_with_every_field_given() {
        let bundle = default_bundle();
        let long = "x".repeat(300);
        let request = access(json!({
            "actor": { "organization": long, "roles": [long, "nurse"], "jurisdiction": "US-CA",
                       "attributes": { "a": [long, { "b": long }], "n": 1 } },
            "action": "share",
            "resource": { "patient": { "id": long, "birth_date": "1900-12-31", "residence": "US-NY" },
                          "data_categories": ["general", "reproductive"],
                          "hash": format!("sha256:{}", "a".repeat(64)),
                          "location": long, "fields": [long, "name"] },
            "context": { "purpose_of_use": "TREAT", "legal_basis": "consent",
                         "recipient": { "id": long, "type": "Organization", "country": "DE" },
                         "legal_instrument": { "jurisdiction": "EU", "citation": long },
                         "legal_claim": { "reference": long, "procedure": "judicial" },
                         "attributes": { "k": long } }
        }));
        let derived = bundle
            .derive(&request, &InMemoryConsentRegistry::new())
            .expect("derives");
        let facts = derived.facts();
        assert_bounds(&request, &facts);
        let exact = exact(&request, &facts);
        assert!(exact.strings > 300 * 9, "{exact:?}");
    }
}
