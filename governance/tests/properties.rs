//! Properties of counting, checked on generated memberships, weights and vote sequences driven
//! through `GovernanceState::apply` with real signatures:
//! - the order of votes inside a window never changes the outcome;
//! - weight is conserved through any sequence of vote changes.

use crate::common::*;
use accord_governance::message::Choice;
use accord_governance::proposal::Status;
use accord_governance::tally::{Outcome, Tally};
use accord_governance::{Envelope, GovernanceState};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

const RULES: [((u64, u64), (u64, u64)); 4] = [
    ((1, 2), (1, 2)),
    ((2, 3), (1, 2)),
    ((1, 3), (2, 3)),
    ((1, 1), (0, 1)),
];

struct Setup {
    state: GovernanceState,
    ids: (String, String),
    keys: Vec<(String, SigningKey)>,
}

/// A consortium of `weights.len()` members with those weights and one open proposal (made at
/// height 1 by the first member).
fn setup(weights: &[u64], rules: usize) -> Setup {
    let keys: Vec<(String, SigningKey)> = (0..weights.len())
        .map(|i| (format!("member/m{i}"), numbered_key(100 + i as u64)))
        .collect();
    let members = keys
        .iter()
        .zip(weights)
        .map(|((id, k), w)| member_with(id, k, *w))
        .collect();
    let (q, t) = RULES[rules];
    let genesis = custom_genesis(members, voting(q, t, 10, 2, 3));
    let (_, bundle) = crate::common::genesis();
    let mut state = GovernanceState::from_genesis(&genesis, bundle);
    let message = proposal_message(&keys[0].0, "t", &rename(&keys[0].0, "renamed"));
    let ids = ids_of(&message);
    state
        .apply(&cached_envelope(&message, &keys[0].1), "tx-p", 1)
        .unwrap();
    Setup { state, ids, keys }
}

/// `verify_strict` takes ~14 ms in a debug build (signing ~0.4 ms), so sizes are kept small:
/// at most 5 members and 7 votes per case.
///
/// Signing is slow in debug builds and deterministic (ed25519), so each distinct message is
/// signed once per test binary: the keys and the proposal id do not depend on the weights.
fn cached_envelope(message: &serde_json::Value, key: &SigningKey) -> Envelope {
    static CACHE: OnceLock<Mutex<HashMap<String, Envelope>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let k = format!("{}|{}", hex_key(key), message);
    if let Some(env) = cache.lock().unwrap().get(&k) {
        return env.clone();
    }
    let env = envelope_with(message, key);
    cache.lock().unwrap().insert(k, env.clone());
    env
}

fn hex_key(key: &SigningKey) -> String {
    key.verifying_key()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn choice_of(c: u8) -> Choice {
    match c % 3 {
        0 => Choice::Yes,
        1 => Choice::No,
        _ => Choice::Abstain,
    }
}

fn word(c: Choice) -> &'static str {
    match c {
        Choice::Yes => "yes",
        Choice::No => "no",
        Choice::Abstain => "abstain",
    }
}

/// Members, their weights, who votes what (None: does not vote), and a shuffled voting order.
fn votes_and_order() -> impl Strategy<Value = (Vec<u64>, Vec<Option<u8>>, Vec<usize>, usize)> {
    (2usize..=5).prop_flat_map(|n| {
        (
            prop::collection::vec(
                prop_oneof![1u64..=5, Just(1_000_000_000_000u64), Just(u64::MAX / 16)],
                n,
            ),
            prop::collection::vec(prop::option::weighted(0.8, 0u8..3), n),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            0..RULES.len(),
        )
    })
}

/// Applies the votes in `order`, then closes the window. Returns the final status, tally and
/// whether the decision came before the window closed.
fn outcome(
    base: &Setup,
    envs: &BTreeMap<usize, Envelope>,
    order: &[usize],
) -> (Status, Tally, bool) {
    let mut state = base.state.clone();
    for i in order {
        if let Some(env) = envs.get(i) {
            let result = state.apply(env, &format!("tx-{i}"), 2);
            // A vote after an early decision is refused as closed; nothing else may fail.
            if let Err(e) = result {
                assert_eq!(e.code(), "proposal_closed", "{e}");
            }
        }
    }
    let early = state.proposals[&base.ids.0].status != Status::Voting;
    if !early {
        let ends = state.proposals[&base.ids.0].voting_ends;
        state.begin_block(ends);
    }
    let p = &state.proposals[&base.ids.0];
    (p.status, p.tally, early)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any order of the same votes gives the status of member order (counted on a bare tally,
    /// to spare half the debug-build signature checks); when it was not decided early the
    /// tallies are equal too (an early decision stops counting, so later votes are refused, but
    /// it is taken only when no remaining vote could change it, so every order takes it).
    #[test]
    fn vote_order_never_changes_the_outcome(
        (weights, choices, order, rules) in votes_and_order()
    ) {
        let base = setup(&weights, rules);
        let envs: BTreeMap<usize, Envelope> = choices
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|c| (i, c)))
            .map(|(i, c)| {
                let (id, key) = &base.keys[i];
                let message = vote_message(&base.ids, id, word(choice_of(c)));
                (i, cached_envelope(&message, key))
            })
            .collect();
        // Reference: the same votes counted in member order on a bare tally, with the state's
        // rule (stop at the first certain outcome, else decide at close).
        let (q, t) = RULES[rules];
        let params = voting(q, t, 10, 2, 3);
        let mut reference = Tally::new(weights.iter().sum());
        let mut early1 = None;
        for (i, c) in choices.iter().enumerate() {
            if let (Some(c), None) = (c, early1) {
                reference.add(choice_of(*c), weights[i]);
                early1 = match reference.decided(&params) {
                    Outcome::Passed => Some(Status::Queued),
                    Outcome::Rejected => Some(Status::Rejected),
                    _ => None,
                };
            }
        }
        let s1 = early1.unwrap_or(match reference.at_close(&params) {
            Outcome::Passed => Status::Queued,
            Outcome::Rejected => Status::Rejected,
            _ => Status::Expired,
        });
        // The state, fed the votes in the shuffled order.
        let (s2, t2, early2) = outcome(&base, &envs, &order);
        prop_assert_eq!(s1, s2);
        prop_assert_eq!(early1.is_some(), early2, "early in one order iff in every order");
        if !early2 {
            prop_assert_eq!(reference, t2);
            // And the window closed on the full tally.
            let cast: u64 = envs.keys().map(|i| weights[*i]).sum();
            prop_assert_eq!(t2.yes + t2.no + t2.abstain, cast);
        }
    }

    /// Through any sequence of votes and vote changes, yes + no + abstain equals the summed
    /// weights of the members whose vote is recorded, never exceeds the total, and each recorded
    /// choice is that member's last accepted vote.
    #[test]
    fn weight_is_conserved_through_vote_changes(
        weights in prop::collection::vec(1u64..=1000, 2..=5),
        sequence in prop::collection::vec((0usize..5, 0u8..3), 1..8),
        rules in 0..RULES.len(),
    ) {
        let mut base = setup(&weights, rules);
        let mut last: BTreeMap<String, Choice> = BTreeMap::new();
        for (n, (who, c)) in sequence.into_iter().enumerate() {
            let (id, key) = &base.keys[who % weights.len()];
            let mut message = vote_message(&base.ids, id, word(choice_of(c)));
            message["nonce"] = json!(n.to_string());
            let env = cached_envelope(&message, key);
            match base.state.apply(&env, &format!("tx-{n}"), 2) {
                Ok(_) => {
                    last.insert(id.clone(), choice_of(c));
                }
                Err(e) => prop_assert_eq!(e.code(), "proposal_closed"),
            }
            let p = &base.state.proposals[&base.ids.0];
            let t = p.tally;
            let recorded: u64 = p.votes.values().map(|v| v.weight).sum();
            prop_assert_eq!(t.yes + t.no + t.abstain, recorded);
            prop_assert!(recorded <= t.total);
            prop_assert_eq!(t.total, weights.iter().sum::<u64>());
            let by_choice = |c: Choice| -> u64 {
                p.votes.values().filter(|v| v.choice == c).map(|v| v.weight).sum()
            };
            prop_assert_eq!(
                (t.yes, t.no, t.abstain),
                (by_choice(Choice::Yes), by_choice(Choice::No), by_choice(Choice::Abstain))
            );
            let recorded_choices: BTreeMap<String, Choice> =
                p.votes.iter().map(|(k, v)| (k.clone(), v.choice)).collect();
            prop_assert_eq!(&recorded_choices, &last);
        }
    }
}
