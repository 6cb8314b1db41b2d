//! The manifest filters of every module (`applies_to`, `actions`, `purposes`, `when_attributes`),
//! read once when the bundle is compiled into bit sets, so that per request finding the modules
//! that apply compares no strings: the request's names, purpose and attributes become bits once
//! ([`Filters::present`]), and each module's filter is a few bit tests. [`Filters::admits`] answers
//! as [`super::applies`] does (a test compares them on every case of the default bundle).

use super::RuleModule;
use crate::cedar::RequestFacts;
use crate::transaction::{AccessRequest, Action};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

const _: () = assert!(Action::ALL.len() <= 64, "actions are bits of a u64");

/// Names as bits: bit `i` of word `i / 64` is `names[i]`.
type Bits = SmallVec<[u64; 2]>;

/// The precomputed filters of a bundle's modules, in module order.
pub(super) struct Filters {
    /// Distinct for every `Filters` built: what a request's [`Present`] was computed for.
    id: u64,
    /// Every regime or jurisdiction some module's `applies_to` names, sorted and distinct.
    names: Vec<String>,
    /// Every purpose some module's `purposes` names, sorted and distinct.
    purposes: Vec<String>,
    /// Every attribute some module's `when_attributes` names, sorted and distinct.
    attributes: Vec<String>,
    modules: Vec<ModuleFilter>,
}

struct ModuleFilter {
    /// A bit per [`Action::index`] the module runs for (every bit when it names no actions).
    actions: u64,
    /// Its `applies_to` names, as bits of [`Filters::names`].
    applies_to: Bits,
    /// Its `purposes` as bits of [`Filters::purposes`]; `None` when it names none.
    purposes: Option<Bits>,
    /// Its `when_attributes` as bits of [`Filters::attributes`]; `None` when it names none.
    when_attributes: Option<Bits>,
}

/// What of one request the filters test: which of a bundle's `applies_to` names apply to it, its
/// purpose among the modules' purposes, and which of the modules' attributes it carries. The same
/// for every stage, so computed once per request.
#[derive(Debug, Clone)]
pub(crate) struct Present {
    /// The [`Filters::id`] these bits are of.
    of: u64,
    names: Bits,
    purpose: Bits,
    attributes: Bits,
}

impl Filters {
    pub(super) fn new(modules: &[RuleModule]) -> Filters {
        let names = distinct(modules.iter().flat_map(|m| m.applies_to.iter().cloned()));
        let purposes = distinct(
            modules
                .iter()
                .flat_map(|m| m.purposes.iter().flatten())
                .map(|p| p.as_str().to_owned()),
        );
        let attributes = distinct(
            modules
                .iter()
                .flat_map(|m| m.when_attributes.iter().flatten().cloned()),
        );
        let modules = modules
            .iter()
            .map(|module| ModuleFilter {
                actions: module.actions.as_ref().map_or(u64::MAX, |actions| {
                    actions.iter().fold(0, |bits, a| bits | 1 << a.index())
                }),
                applies_to: bits_of(&names, module.applies_to.iter().map(String::as_str)),
                purposes: module
                    .purposes
                    .as_ref()
                    .map(|list| bits_of(&purposes, list.iter().map(|p| p.as_str()))),
                when_attributes: module
                    .when_attributes
                    .as_ref()
                    .map(|list| bits_of(&attributes, list.iter().map(String::as_str))),
            })
            .collect();
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Filters {
            id: NEXT_ID.fetch_add(1, AtomicOrdering::Relaxed),
            names,
            purposes,
            attributes,
            modules,
        }
    }

    /// What of a request the filters test: its regimes and jurisdictions, its purpose and the
    /// names of its context attributes.
    pub(super) fn present(&self, request: &AccessRequest, facts: &RequestFacts<'_>) -> Present {
        let applicable = facts.applicable;
        let found = applicable.regimes.iter().chain(&applicable.jurisdictions);
        let purpose = request.context.purpose_of_use.as_ref();
        Present {
            of: self.id,
            names: bits_of(&self.names, found.map(String::as_str)),
            purpose: bits_of(&self.purposes, purpose.map(|p| p.as_str()).into_iter()),
            attributes: bits_of(
                &self.attributes,
                request.context.attributes.keys().map(String::as_str),
            ),
        }
    }

    /// Whether `present` was computed by these filters (facts derived by one bundle may be run
    /// through another's modules, as a governance preview does).
    pub(super) fn computed(&self, present: &Present) -> bool {
        present.of == self.id
    }

    /// Whether the module at `index` (in the order [`Filters::new`] was given) applies to
    /// `request`, whose action is `action` and whose names, purpose and attributes are `present`.
    pub(super) fn admits(&self, index: usize, action: Action, present: &Present) -> bool {
        let filter = &self.modules[index];
        filter.actions & 1 << action.index() != 0
            && meets(&filter.applies_to, &present.names)
            && filter
                .purposes
                .as_ref()
                .is_none_or(|bits| meets(bits, &present.purpose))
            && filter
                .when_attributes
                .as_ref()
                .is_none_or(|bits| meets(bits, &present.attributes))
    }
}

/// Whether two bit sets over the same names share a bit.
fn meets(a: &Bits, b: &Bits) -> bool {
    a.iter().zip(b.iter()).any(|(a, b)| a & b != 0)
}

/// The names, sorted and distinct.
fn distinct(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names.collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The bits of the `found` names that are among `names`.
fn bits_of<'a>(names: &[String], found: impl Iterator<Item = &'a str>) -> Bits {
    let mut bits: Bits = SmallVec::from_elem(0, names.len().div_ceil(64));
    for name in found {
        if let Ok(i) = names.binary_search_by(|n| n.as_str().cmp(name)) {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use crate::rules::analysis_tests::default_bundle;

    #[test]
    fn the_precomputed_filters_admit_what_applies_admits_on_every_case_of_the_bundle() {
        let bundle = default_bundle();
        let rules = bundle.rules();
        let inputs = crate::cases::case_inputs(&bundle);
        assert!(inputs.len() > 100, "{} cases", inputs.len());
        let (mut admitted, mut refused) = (0, 0);
        for input in &inputs {
            let Ok(derived) = bundle.derive(&input.request, &input.registry) else {
                continue;
            };
            let facts = derived.facts();
            let present = rules.filters.present(&input.request, &facts);
            for (index, module) in rules.modules.iter().enumerate() {
                let applies = super::super::applies(module, &input.request, &facts);
                assert_eq!(
                    rules.filters.admits(index, input.request.action, &present),
                    applies,
                    "{} on {}",
                    module.id,
                    input.request.id
                );
                if applies {
                    admitted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        assert!(admitted > 1000 && refused > 1000, "{admitted} {refused}");
    }
}
