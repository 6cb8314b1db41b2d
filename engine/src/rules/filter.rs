//! The manifest filters of every module (`applies_to`, `actions`), read once when the bundle is
//! compiled into bit sets, so that per request finding the modules that apply compares no strings.
//! [`Filters::admits`] answers as [`super::applies`] does (a test compares them on every case of
//! the default bundle).

use super::RuleModule;
use crate::cedar::RequestFacts;
use crate::transaction::{AccessRequest, Action};
use smallvec::SmallVec;

const _: () = assert!(Action::ALL.len() <= 64, "actions are bits of a u64");

/// Names as bits: bit `i` of word `i / 64` is `names[i]`.
type Bits = SmallVec<[u64; 2]>;

/// The precomputed filters of a bundle's modules, in module order.
pub(super) struct Filters {
    /// Every regime or jurisdiction some module's `applies_to` names, sorted and distinct.
    names: Vec<String>,
    modules: Vec<ModuleFilter>,
}

struct ModuleFilter {
    /// A bit per [`Action::index`] the module runs for (every bit when it names no actions).
    actions: u64,
    /// Its `applies_to` names, as bits of [`Filters::names`].
    applies_to: Bits,
}

/// Which of a bundle's `applies_to` names apply to one request.
pub(super) struct Present(Bits);

impl Filters {
    pub(super) fn new(modules: &[RuleModule]) -> Filters {
        let mut names: Vec<String> = modules
            .iter()
            .flat_map(|m| m.applies_to.iter().cloned())
            .collect();
        names.sort_unstable();
        names.dedup();
        let modules = modules
            .iter()
            .map(|module| ModuleFilter {
                actions: module.actions.as_ref().map_or(u64::MAX, |actions| {
                    actions.iter().fold(0, |bits, a| bits | 1 << a.index())
                }),
                applies_to: bits_of(&names, module.applies_to.iter().map(String::as_str)),
            })
            .collect();
        Filters { names, modules }
    }

    /// The names that apply to a request: its regimes and jurisdictions.
    pub(super) fn present(&self, facts: &RequestFacts<'_>) -> Present {
        let applicable = facts.applicable;
        let found = applicable.regimes.iter().chain(&applicable.jurisdictions);
        Present(bits_of(&self.names, found.map(String::as_str)))
    }

    /// Whether the module at `index` (in the order [`Filters::new`] was given) applies to
    /// `request`, whose names are `present`.
    pub(super) fn admits(
        &self,
        index: usize,
        module: &RuleModule,
        request: &AccessRequest,
        present: &Present,
    ) -> bool {
        let filter = &self.modules[index];
        filter.actions & 1 << request.action.index() != 0
            && filter
                .applies_to
                .iter()
                .zip(present.0.iter())
                .any(|(a, b)| a & b != 0)
            && super::context_admits(module, request)
    }
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
            let present = rules.filters.present(&facts);
            for (index, module) in rules.modules.iter().enumerate() {
                let applies = super::super::applies(module, &input.request, &facts);
                assert_eq!(
                    rules
                        .filters
                        .admits(index, module, &input.request, &present),
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
