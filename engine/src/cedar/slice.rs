//! Exact slicing of a policy set: for each kind of request, the policies that can match or fail.
//!
//! A policy leaves a request's slice only for a reason Cedar itself guarantees:
//! - its action scope excludes the request's action; or
//! - one of its *leading guards* is false for the request. Leading guards are the conjuncts at the
//!   start of the policy's first condition, when that condition is a `when`, that test an attribute
//!   Accord always provides, with an operation that cannot fail:
//!   `context.regimes.contains("R")` (also `holder_regimes`, a subset), `context.purpose == "P"`,
//!   `["P", ..].contains(context.purpose)`, the same two forms for `context.legal_basis` and
//!   `principal.kind`,
//!   `||` of such tests on the same attribute, a boolean context attribute `context.f` or `!context.f`,
//!   `context.consent_categories.containsAll(resource.data_categories)` or its negation (keyed as a
//!   flag), and `resource.data_categories.contains("C")` or its negation. The schema makes every one of
//!   these attributes required and of that type, and strict validation holds every policy to it, so
//!   none can fail. Cedar evaluates `&&` left to right and stops at the first false operand, so such
//!   a policy neither matches nor reports an error.
//!
//! A slice holds each policy specialised to its key: the action scope becomes `action` when the key's
//! action decides it exactly, and leading guards that the key decides exactly are dropped (they are
//! true for every request of the slice, and cannot fail, so `true && rest` is `rest`). What Cedar
//! then evaluates is shorter, and the policy keeps its id, annotations and effect, so the outcome and
//! the determining policies are the same.
//!
//! A slice is keyed by what the guards read: action, applicable regimes, purpose class (the purpose
//! itself when some guard names it, else "other"), legal-basis class (likewise), actor kind, the guarded flags and the record's data
//! categories. Slices are built on first use and cached; the cache is bounded, and a key past the
//! bound is sliced afresh each time (same result, just slower).

use super::guards::{
    attribute, attribute_test, category_test, flag_test, flatten_and, regime_test, Guards, Subject,
};
use super::reads::AttributeReads;
use crate::transaction::{Action, ActorType, DataCategory};
use cedar_policy::{ActionConstraint, EntityUid, Policy, PolicySet};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

const _: () = assert!(Action::ALL.len() <= 64, "actions are bits of a u64");

/// Key-space limits: past them a guard is ignored, which keeps more policies (never fewer).
const MAX_SLICED_REGIMES: usize = 8;
const MAX_SLICED_PURPOSES: usize = 254;
const MAX_SLICED_LEGAL_BASES: usize = 15;
const MAX_SLICED_FLAGS: usize = 16;
/// How many slices are cached.
const MAX_CACHED_SLICES: usize = 1 << 16;

/// What a request shows the guards: everything a slice is keyed by.
pub(super) struct RequestView<'a> {
    pub action: Action,
    pub regimes: &'a [String],
    /// As Cedar sees them: `""` when absent.
    pub purpose: &'a str,
    pub legal_basis: &'a str,
    pub kind: ActorType,
    /// The value of a boolean context attribute.
    pub flag: &'a dyn Fn(&str) -> bool,
    pub categories: &'a [DataCategory],
}

/// A policy as the bundle states it, its guards, and the form slices hold (see the module docs).
struct SlicedPolicy {
    /// As the bundle states it (the tests compare the specialised form with it).
    #[cfg(test)]
    policy: Policy,
    /// A bit per action (by its index in [`SliceIndex::action_uids`]) the action scope admits.
    actions: u64,
    guards: Guards,
    specialised: Policy,
    /// What `specialised` reads.
    reads: AttributeReads,
}

/// The policies that can match or fail on one kind of request, and the attributes they can read.
pub struct Slice {
    policies: PolicySet,
    reads: AttributeReads,
}

impl Slice {
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The ids of its policies, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .policies
            .policies()
            .map(|p| p.id().to_string())
            .collect();
        ids.sort();
        ids
    }

    pub(super) fn reads(&self) -> AttributeReads {
        self.reads
    }
}

/// The policies of a bundle with their guards, and the slices built from them on first use.
pub(super) struct SliceIndex {
    policies: Vec<SlicedPolicy>,
    action_uids: Vec<EntityUid>,
    /// Regimes that key the slices, sorted.
    regimes: Vec<String>,
    /// Purposes some guard names, sorted; any other purpose is class `purposes.len()`.
    purposes: Vec<String>,
    /// Legal bases some guard names, sorted; likewise.
    legal_bases: Vec<String>,
    /// Flags some guard reads, sorted.
    flags: Vec<String>,
    cache: RwLock<HashMap<u64, Arc<Slice>>>,
}

impl SliceIndex {
    pub(super) fn new(all: &PolicySet, action_uids: Vec<EntityUid>, regimes: &[String]) -> Self {
        let guarded: Vec<(Policy, Guards)> =
            all.policies().map(|p| (p.clone(), Guards::of(p))).collect();
        // Only a regime some guard names can tell slices apart. Keying on the others (say a
        // state's regimes that only rule modules read) would multiply identical slices and, past
        // MAX_SLICED_REGIMES, crowd out the regimes the guards do name.
        let named: BTreeSet<&str> = guarded
            .iter()
            .flat_map(|(_, g)| g.regimes.iter().map(String::as_str))
            .collect();
        let mut regimes: Vec<String> = regimes
            .iter()
            .filter(|r| named.contains(r.as_str()))
            .cloned()
            .collect();
        regimes.sort();
        regimes.dedup();
        regimes.truncate(MAX_SLICED_REGIMES);
        let purposes: BTreeSet<String> = guarded
            .iter()
            .flat_map(|(_, g)| g.purposes.iter().flatten().cloned())
            .collect();
        let legal_bases: BTreeSet<String> = guarded
            .iter()
            .flat_map(|(_, g)| g.legal_bases.iter().flatten().cloned())
            .collect();
        let flags: BTreeSet<String> = guarded
            .iter()
            .flat_map(|(_, g)| g.flags.iter().map(|(f, _)| f.clone()))
            .collect();
        let mut index = SliceIndex {
            policies: Vec::new(),
            action_uids,
            regimes,
            purposes: purposes.into_iter().take(MAX_SLICED_PURPOSES).collect(),
            legal_bases: legal_bases
                .into_iter()
                .take(MAX_SLICED_LEGAL_BASES)
                .collect(),
            flags: flags.into_iter().take(MAX_SLICED_FLAGS).collect(),
            cache: RwLock::new(HashMap::new()),
        };
        index.policies = guarded
            .into_iter()
            .map(|(policy, guards)| {
                let specialised = index.specialise(&policy).unwrap_or_else(|| policy.clone());
                SlicedPolicy {
                    actions: action_bits(&policy, &index.action_uids),
                    reads: AttributeReads::of(&specialised),
                    specialised,
                    #[cfg(test)]
                    policy,
                    guards,
                }
            })
            .collect();
        index
    }

    /// `policy` with what every request of its slices makes certain taken out: an action scope the
    /// key's action decides, and leading guards the key decides. `None` when nothing changes (or
    /// Cedar's JSON form does not round-trip, which keeps the policy as it is: sound, just slower).
    fn specialise(&self, policy: &Policy) -> Option<Policy> {
        let mut json = policy.to_json().ok()?;
        let mut changed = false;
        let scope_exact = match policy.action_constraint() {
            ActionConstraint::Any => false,
            ActionConstraint::Eq(a) => self.action_uids.contains(&a),
            ActionConstraint::In(list) => list.iter().all(|a| self.action_uids.contains(a)),
        };
        if scope_exact {
            json["action"] = serde_json::json!({ "op": "All" });
            changed = true;
        }
        let first = json
            .get_mut("conditions")
            .and_then(Value::as_array_mut)
            .and_then(|c| c.first_mut())
            .filter(|c| c.get("kind").and_then(Value::as_str) == Some("when"));
        if let Some(body) = first.and_then(|c| c.get_mut("body")) {
            let mut conjuncts = Vec::new();
            flatten_and(body, &mut conjuncts);
            let leading = conjuncts
                .iter()
                .take_while(|c| self.guard_of(c).is_some())
                .count();
            let kept: Vec<Value> = conjuncts
                .iter()
                .enumerate()
                .filter(|(i, c)| *i >= leading || self.guard_of(c) != Some(true))
                .map(|(_, c)| (*c).clone())
                .collect();
            if kept.len() < conjuncts.len() {
                *body = kept
                    .into_iter()
                    .reduce(
                        |left, right| serde_json::json!({ "&&": { "left": left, "right": right } }),
                    )
                    .unwrap_or_else(|| serde_json::json!({ "Value": true }));
                changed = true;
            }
        }
        if !changed {
            return None;
        }
        Policy::from_json(Some(policy.id().clone()), json).ok()
    }

    /// For a leading guard, whether a slice's key decides it exactly (`Some(true)`) or the slice
    /// only narrows by it, or ignores it (`Some(false)`); `None` for a conjunct that is no guard.
    /// Kept in step with [`Guards::of`] and [`SliceIndex::build`].
    fn guard_of(&self, conjunct: &Value) -> Option<bool> {
        if let Some(regime) = regime_test(conjunct) {
            // `holder_regimes` is only narrowed by `regimes`, its superset.
            let on_regimes = conjunct
                .get("contains")
                .and_then(|c| c.get("left"))
                .and_then(attribute)
                .is_some_and(|(_, attr)| attr == "regimes");
            return Some(on_regimes && self.regimes.contains(&regime));
        }
        if let Some((flag, _)) = flag_test(conjunct) {
            return Some(self.flags.contains(&flag));
        }
        if category_test(conjunct).is_some() {
            return Some(true);
        }
        if let Some((subject, values)) = attribute_test(conjunct) {
            return Some(match subject {
                Subject::Purpose => values.iter().all(|p| self.purposes.contains(p)),
                Subject::LegalBasis => values.iter().all(|b| self.legal_bases.contains(b)),
                Subject::Kind => true,
            });
        }
        None
    }

    /// The slice for a request.
    pub(super) fn slice(&self, view: &RequestView<'_>) -> Arc<Slice> {
        let key = self.key(view);
        if let Some(slice) = self.cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            return slice;
        }
        let slice = Arc::new(self.build(view));
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() < MAX_CACHED_SLICES {
                cache.insert(key, slice.clone());
            }
        }
        slice
    }

    fn regime_mask(&self, regimes: &[String]) -> u64 {
        let mut mask = 0;
        for (bit, regime) in self.regimes.iter().enumerate() {
            if regimes.iter().any(|r| r == regime) {
                mask |= 1 << bit;
            }
        }
        mask
    }

    /// The index of `value` in the sorted key-space list `named`, or `named.len()` ("other").
    fn class(named: &[String], value: &str) -> u64 {
        named
            .binary_search_by(|x| x.as_str().cmp(value))
            .unwrap_or(named.len()) as u64
    }

    /// Packs everything the guards read: action 4 bits, regimes 8, purpose class 8, kind 4,
    /// flags 16, categories 8, legal-basis class 4.
    fn key(&self, view: &RequestView<'_>) -> u64 {
        let kind = ActorType::ALL
            .iter()
            .position(|k| *k == view.kind)
            .unwrap_or(0) as u64;
        let mut flags = 0u64;
        for (bit, flag) in self.flags.iter().enumerate() {
            if (view.flag)(flag) {
                flags |= 1 << bit;
            }
        }
        let mut categories = 0u64;
        for c in view.categories {
            categories |= 1 << (*c as u64);
        }
        (view.action.index() as u64)
            | self.regime_mask(view.regimes) << 4
            | Self::class(&self.purposes, view.purpose) << 12
            | kind << 20
            | flags << 24
            | categories << 40
            | Self::class(&self.legal_bases, view.legal_basis) << 48
    }

    fn build(&self, view: &RequestView<'_>) -> Slice {
        let action = 1u64 << view.action.index();
        let mask = self.regime_mask(view.regimes);
        let purpose = view.purpose;
        let kind = view.kind.as_str();
        let mut slice = PolicySet::new();
        let mut slice_reads = AttributeReads::default();
        for SlicedPolicy {
            actions,
            guards,
            specialised,
            reads,
            ..
        } in &self.policies
        {
            if actions & action == 0 {
                continue;
            }
            let regimes_ok = guards.regimes.iter().all(|r| {
                match self.regimes.iter().position(|x| x == r) {
                    Some(bit) => mask & (1 << bit) != 0,
                    // A regime outside the key space: keep the policy.
                    None => true,
                }
            });
            // A guard naming a value outside the key space is ignored (kept).
            let purposes_ok = guards
                .purposes
                .iter()
                .all(|set| set.iter().any(|p| !self.purposes.contains(p)) || set.contains(purpose));
            let legal_bases_ok = guards.legal_bases.iter().all(|set| {
                set.iter().any(|b| !self.legal_bases.contains(b)) || set.contains(view.legal_basis)
            });
            let kinds_ok = guards.kinds.iter().all(|set| set.contains(kind));
            let flags_ok = guards.flags.iter().all(|(flag, expected)| {
                !self.flags.contains(flag) || (view.flag)(flag) == *expected
            });
            let categories_ok = guards.categories.iter().all(|(category, expected)| {
                let has = view.categories.iter().any(|c| c.as_str() == category);
                has == *expected
            });
            if regimes_ok && purposes_ok && legal_bases_ok && kinds_ok && flags_ok && categories_ok
            {
                // Ids are unique in `all`, so adding to a fresh set cannot fail.
                let _ = slice.add(specialised.clone());
                slice_reads = slice_reads.union(*reads);
            }
        }
        Slice {
            policies: slice,
            reads: slice_reads,
        }
    }
}

/// The actions (bits by index in `action_uids`) whose requests `policy`'s action scope admits. Our
/// schema has no action groups, so `in` is membership; a name that is not one of our actions
/// admits every action (sound: the policy is kept).
fn action_bits(policy: &Policy, action_uids: &[EntityUid]) -> u64 {
    let constraint = policy.action_constraint();
    action_uids
        .iter()
        .enumerate()
        .filter(|(_, uid)| match &constraint {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(a) => a == *uid,
            ActionConstraint::In(list) => {
                list.iter().any(|a| a == *uid || !action_uids.contains(a))
            }
        })
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cedar::guards;
    use std::str::FromStr;

    fn index_of(src: &str) -> SliceIndex {
        let set = PolicySet::from_str(src).expect("policies parse");
        let actions = ["read", "write", "share"]
            .iter()
            .map(|a| EntityUid::from_str(&format!("Accord::Action::\"{a}\"")).expect("uid"))
            .collect();
        SliceIndex::new(&set, actions, &["HIPAA".to_owned(), "GDPR".to_owned()])
    }

    fn specialised(index: &SliceIndex) -> Value {
        index.policies[0].specialised.to_json().expect("json")
    }

    #[test]
    fn a_slice_holds_policies_without_what_its_key_decides() {
        let index = index_of(
            r#"permit(principal, action in [Accord::Action::"read", Accord::Action::"write"], resource)
               when {
                 context.regimes.contains("HIPAA") &&
                 context.holder_regimes.contains("HIPAA") &&
                 context.purpose == "TREAT" &&
                 resource.fhir_type == "Claim" &&
                 principal.kind == "Practitioner"
               };"#,
        );
        let expected = index_of(
            r#"permit(principal, action, resource)
               when { context.holder_regimes.contains("HIPAA") && resource.fhir_type == "Claim" && principal.kind == "Practitioner" };"#,
        );
        let json = specialised(&index);
        assert_eq!(json["action"], serde_json::json!({ "op": "All" }));
        // `regimes` and purpose are decided by the key; `holder_regimes` only narrowed by it; and
        // the kind test after a non-guard conjunct is no leading guard, so it stays.
        assert_eq!(
            json["conditions"],
            expected.policies[0].policy.to_json().expect("json")["conditions"]
        );
        assert_eq!(
            index.policies[0].specialised.id(),
            index.policies[0].policy.id()
        );
    }

    #[test]
    fn only_regimes_a_guard_names_key_the_slices() {
        let set = PolicySet::from_str(
            r#"permit(principal, action, resource) when { context.holder_regimes.contains("HIPAA") };
               permit(principal, action, resource) when { context.regimes.contains("GDPR") };"#,
        )
        .expect("policies parse");
        let actions = vec![EntityUid::from_str(r#"Accord::Action::"read""#).expect("uid")];
        // More regimes than the key has room for, most sorting before the named ones.
        let mut regimes: Vec<String> = (0..12).map(|i| format!("AA-STATE-{i}")).collect();
        regimes.extend([
            "HIPAA".to_owned(),
            "GDPR".to_owned(),
            "42-CFR-Part-2".to_owned(),
        ]);
        let index = SliceIndex::new(&set, actions, &regimes);
        assert_eq!(index.regimes, vec!["GDPR".to_owned(), "HIPAA".to_owned()]);
    }

    #[test]
    fn a_scope_naming_an_unknown_action_and_an_all_guard_body_are_handled() {
        let index = index_of(
            r#"forbid(principal, action in [Accord::Action::"read", Accord::Action::"purge"], resource)
               when { context.regimes.contains("GDPR") && resource.data_categories.contains("hiv") };"#,
        );
        let json = specialised(&index);
        // `purge` is no action of ours: the slice kept the policy without deciding its scope.
        assert_ne!(json["action"], serde_json::json!({ "op": "All" }));
        assert_eq!(
            json["conditions"][0]["body"],
            serde_json::json!({ "Value": true })
        );
        // Nothing to take out: the policy stays as written.
        let plain = index_of(
            r#"permit(principal, action, resource) when { resource.fhir_type == "Claim" };"#,
        );
        assert_eq!(
            specialised(&plain),
            plain.policies[0].policy.to_json().expect("json")
        );
    }

    fn view<'a>(purpose: &'a str, legal_basis: &'a str, regimes: &'a [String]) -> RequestView<'a> {
        RequestView {
            action: Action::Read,
            regimes,
            purpose,
            legal_basis,
            kind: ActorType::Practitioner,
            flag: &|_| false,
            categories: &[],
        }
    }

    fn slice_ids(index: &SliceIndex, view: &RequestView<'_>) -> Vec<String> {
        index.slice(view).ids()
    }

    #[test]
    fn legal_basis_guards_slice_like_purpose_guards() {
        let index = index_of(
            r#"@id("consent") forbid(principal, action, resource)
                 when { context.regimes.contains("GDPR") && context.legal_basis == "consent" && resource.fhir_type == "Claim" };
               @id("none") forbid(principal, action, resource)
                 when { ["", "vital-interests"].contains(context.legal_basis) && resource.fhir_type == "Claim" };"#,
        );
        let gdpr = ["GDPR".to_owned()];
        assert_eq!(
            index.policies[0].guards.legal_bases,
            vec![BTreeSet::from(["consent".to_owned()])]
        );
        assert_eq!(
            slice_ids(&index, &view("", "consent", &gdpr)),
            vec!["policy0"]
        );
        assert_eq!(
            slice_ids(&index, &view("", "contract", &gdpr)),
            Vec::<String>::new()
        );
        // An absent basis is `""` to Cedar, so a guard naming `""` keeps the policy.
        assert_eq!(slice_ids(&index, &view("", "", &gdpr)), vec!["policy1"]);
        // The key decides the guard exactly, so the slice holds the policy without it.
        let json = index.policies[0].specialised.to_json().expect("json");
        assert_eq!(
            json["conditions"][0]["body"],
            index_of(
                r#"permit(principal, action, resource) when { resource.fhir_type == "Claim" };"#
            )
            .policies[0]
                .policy
                .to_json()
                .expect("json")["conditions"][0]["body"]
        );
    }

    #[test]
    fn consent_coverage_guards_slice_like_a_flag() {
        let index = index_of(
            r#"@id("covered") permit(principal, action, resource)
                 when { context.consent_categories.containsAll(resource.data_categories) && resource.fhir_type == "Claim" };
               @id("uncovered") forbid(principal, action, resource)
                 when { !context.consent_categories.containsAll(resource.data_categories) && resource.fhir_type == "Claim" };
               @id("reversed") permit(principal, action, resource)
                 when { resource.data_categories.containsAll(context.consent_categories) };"#,
        );
        assert_eq!(
            index.policies[0].guards.flags,
            vec![(guards::CONSENT_COVERS_RECORD.to_owned(), true)]
        );
        assert_eq!(
            index.policies[1].guards.flags,
            vec![(guards::CONSENT_COVERS_RECORD.to_owned(), false)]
        );
        // The other direction is no coverage test: not a guard.
        assert_eq!(index.policies[2].guards, Guards::default());
        let none: [String; 0] = [];
        let covered = |covers: bool| {
            let flag = move |name: &str| name == guards::CONSENT_COVERS_RECORD && covers;
            slice_ids(
                &index,
                &RequestView {
                    flag: &flag,
                    ..view("", "", &none)
                },
            )
        };
        assert_eq!(covered(true), vec!["policy0", "policy2"]);
        assert_eq!(covered(false), vec!["policy1", "policy2"]);
    }

    #[test]
    fn an_absent_purpose_is_the_empty_string_cedar_sees() {
        let index = index_of(
            r#"permit(principal, action, resource) when { context.purpose == "" && resource.fhir_type == "Claim" };"#,
        );
        let none: [String; 0] = [];
        assert_eq!(slice_ids(&index, &view("", "", &none)), vec!["policy0"]);
        assert_eq!(
            slice_ids(&index, &view("TREAT", "", &none)),
            Vec::<String>::new()
        );
    }
}
