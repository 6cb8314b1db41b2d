//! The cost of open proposals: the budget on the bytes their bundles hold together, and the
//! sharing of one compiled candidate and one preview pass among proposals of the same bundle.

use crate::common::*;
use accord_engine::{BundleFiles, ConsentRegistry};
use accord_governance::bundles::bundle_bytes;
use accord_governance::machine::state_root;
use accord_governance::message::Change;
use accord_governance::params::DEFAULT_MAX_OPEN_BUNDLE_BYTES;
use accord_governance::{BlockAnswer, Genesis, StateMachine, Status, TxResult};
use serde_json::{json, Value};
use std::path::Path;

/// The bytes the budget counts for an `activate_bundle` change's bundle.
fn size_of(change: &Change) -> u64 {
    let Change::ActivateBundle { bundle } = change else {
        panic!("not an activate_bundle change");
    };
    bundle_bytes(&BundleFiles::new(
        bundle
            .iter()
            .map(|(p, t)| (p.clone(), t.clone().into_bytes()))
            .collect(),
    ))
}

fn version_of(change: &Change) -> String {
    let Change::ActivateBundle { bundle } = change else {
        panic!("not an activate_bundle change");
    };
    BundleFiles::new(
        bundle
            .iter()
            .map(|(p, t)| (p.clone(), t.clone().into_bytes()))
            .collect(),
    )
    .version()
}

/// The dev genesis with `voting.max_open_bundle_bytes` set.
fn genesis_with_budget(budget: u64) -> Genesis {
    let (mut genesis, _) = genesis();
    genesis.voting.max_open_bundle_bytes = Some(budget);
    genesis
}

fn machine(genesis: &Genesis) -> StateMachine {
    let (_, bundle) = crate::common::genesis();
    StateMachine::new(genesis, bundle)
}

fn accesses(tag: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| share_to_uruguay(&format!("{tag}-{i}")))
        .collect()
}

fn apply(m: &mut StateMachine, txs: Vec<Value>) -> BlockAnswer {
    let height = m.next_height();
    (*m.apply_block(block(height, txs)).unwrap()).clone()
}

/// The refusal of `tx` in `answer`: (code, field).
fn refusal(answer: &BlockAnswer, tx: &str) -> Option<(String, Option<String>)> {
    answer.results.iter().find_map(|r| match r {
        TxResult::Refused { tx: t, refused } if t == tx => {
            Some((refused.code.clone(), refused.field.clone()))
        }
        _ => None,
    })
}

fn propose(id: &str, proposer: &str, change: &Change, nonce: &str) -> (Value, (String, String)) {
    let mut message = proposal_message(proposer, id, change);
    message["nonce"] = json!(nonce);
    let ids = ids_of(&message);
    (signed(id, message, proposer), ids)
}

#[test]
fn two_proposals_of_one_bundle_compile_once_and_are_previewed_once_per_transaction() {
    let mut m = machine(&genesis().0);
    let same = default_bundle_variant("shared");
    let (a, a_ids) = propose("g-a", MEMBERS[0], &same, "a");
    let (b, b_ids) = propose("g-b", MEMBERS[1], &same, "b");
    apply(&mut m, vec![a, b]);
    assert_ne!(a_ids.0, b_ids.0, "two proposals");
    assert_eq!(
        m.work().bundle_compiles,
        1,
        "the second proposal reuses the first's"
    );
    let targets = m.governance().preview_targets();
    assert_eq!(targets.candidates.len(), 1);
    assert_eq!(targets.proposals.len(), 2);
    assert_eq!(targets.candidates[0].version(), version_of(&same));

    let before = m.work().preview_decisions;
    apply(&mut m, accesses("x", 10));
    assert_eq!(
        m.work().preview_decisions - before,
        10,
        "one pass per transaction"
    );
    let gov = m.governance();
    assert_eq!(gov.proposals[&a_ids.0].impact.evaluated, 10);
    assert_eq!(
        gov.proposals[&a_ids.0].impact,
        gov.proposals[&b_ids.0].impact
    );

    // A third proposal of another bundle is compiled and previewed on its own.
    let (c, _) = propose("g-c", MEMBERS[2], &default_bundle_variant("other"), "c");
    apply(&mut m, vec![c]);
    assert_eq!(m.work().bundle_compiles, 2);
    let before = m.work().preview_decisions;
    apply(&mut m, accesses("y", 10));
    assert_eq!(
        m.work().preview_decisions - before,
        20,
        "two candidates, three proposals"
    );
}

#[test]
fn a_candidate_no_open_proposal_holds_is_released_and_checked_again_when_proposed_again() {
    let mut m = machine(&genesis().0);
    let change = default_bundle_variant("released");
    let version = version_of(&change);
    let (a, a_ids) = propose("g-a", MEMBERS[0], &change, "a");
    apply(&mut m, vec![a]);
    assert!(m.governance().bundles.cached(&version).is_some());
    apply(
        &mut m,
        vec![signed(
            "c-a",
            cancel_message(&a_ids.0, MEMBERS[0]),
            MEMBERS[0],
        )],
    );
    assert_eq!(m.governance().proposals[&a_ids.0].status, Status::Cancelled);
    assert!(
        m.governance().bundles.cached(&version).is_none(),
        "nothing holds the compiled candidate any more"
    );
    assert!(
        m.governance().bundles.contains(&version),
        "its content stays"
    );
    let before = m.work().preview_decisions;
    apply(&mut m, accesses("x", 5));
    assert_eq!(
        m.work().preview_decisions,
        before,
        "no candidate, no preview"
    );
    let (again, _) = propose("g-again", MEMBERS[0], &change, "again");
    apply(&mut m, vec![again]);
    assert_eq!(m.work().bundle_compiles, 2, "checked anew");
}

#[test]
fn a_proposal_over_the_bundle_budget_is_refused_naming_its_field_and_changes_nothing() {
    let first = default_bundle_variant("one");
    let second = default_bundle_variant("two");
    let size = size_of(&first);
    // Room for one bundle, not two.
    let mut m = machine(&genesis_with_budget(size + size / 2));
    let (a, _) = propose("g-a", MEMBERS[0], &first, "a");
    let (same, _) = propose("g-same", MEMBERS[1], &first, "same");
    let answer = apply(&mut m, vec![a, same]);
    assert!(
        answer
            .results
            .iter()
            .all(|r| matches!(r, TxResult::Applied { .. })),
        "a bundle already held counts once: {:?}",
        answer.results
    );
    let root = m.state_root();
    let seq = m.governance().next_seq;
    let compiles = m.work().bundle_compiles;
    let (b, b_ids) = propose("g-b", MEMBERS[2], &second, "b");
    let answer = apply(&mut m, vec![b]);
    assert_eq!(
        refusal(&answer, "g-b"),
        Some((
            "bundle_budget_exceeded".to_owned(),
            Some("message.change.bundle".to_owned())
        ))
    );
    let TxResult::Refused { refused, .. } = &answer.results[0] else {
        unreachable!()
    };
    assert!(
        refused.message.contains("voting.max_open_bundle_bytes"),
        "{}",
        refused.message
    );
    assert_eq!(answer.state_root, root, "the refusal changed nothing");
    assert_eq!(m.governance().next_seq, seq);
    assert!(!m.governance().proposals.contains_key(&b_ids.0));
    assert!(!m.governance().bundles.contains(&version_of(&second)));
    assert_eq!(
        m.work().bundle_compiles,
        compiles,
        "refused before compiling"
    );

    // A jurisdiction change brings a bundle too: refused naming its parameters.
    let (j, _) = propose("g-j", MEMBERS[2], &drop_uruguay_adequacy(), "j");
    let answer = apply(&mut m, vec![j]);
    assert_eq!(
        refusal(&answer, "g-j"),
        Some((
            "bundle_budget_exceeded".to_owned(),
            Some("message.change.parameters".to_owned())
        ))
    );

    // Cancelling the holders frees the budget.
    let cancels: Vec<Value> = m
        .governance()
        .proposals
        .values()
        .filter(|p| p.status == Status::Voting)
        .map(|p| {
            signed(
                &format!("c-{}", p.title),
                cancel_message(&p.id, &p.proposer),
                &p.proposer,
            )
        })
        .collect();
    assert_eq!(cancels.len(), 2);
    apply(&mut m, cancels);
    let (b, b_ids) = propose("g-b2", MEMBERS[2], &second, "b2");
    apply(&mut m, vec![b]);
    assert_eq!(m.governance().proposals[&b_ids.0].status, Status::Voting);
}

#[test]
fn a_rollback_counts_the_bundle_it_would_bring_back() {
    // The state API: activate a variant, then roll back to the genesis set under a budget the
    // genesis bundle exceeds.
    let mut state = dev_state();
    let (_, genesis_bundle) = genesis();
    let change = default_bundle_variant("active");
    let message = proposal_message(MEMBERS[0], "variant", &change);
    let ids = ids_of(&message);
    crate::common::apply(&mut state, &message, MEMBERS[0], 1).unwrap();
    for voter in [MEMBERS[0], MEMBERS[1]] {
        crate::common::apply(&mut state, &vote_message(&ids, voter, "yes"), voter, 1).unwrap();
    }
    assert_eq!(state.begin_block(3), vec![ids.0.clone()]);
    state.params.max_open_bundle_bytes = Some(bundle_bytes(genesis_bundle.files()) - 1);
    let rollback: Change =
        serde_json::from_value(json!({ "kind": "rollback", "version": genesis_bundle.version() }))
            .unwrap();
    let before = state.proposals.len();
    let back = with_base(
        proposal_message(MEMBERS[0], "back", &rollback),
        &state.active_activation().version.clone(),
    );
    let refused = crate::common::apply(&mut state, &back, MEMBERS[0], 3).unwrap_err();
    assert_eq!(refused.code(), "bundle_budget_exceeded");
    assert_eq!(refused.field(), Some("message.change.version"));
    assert_eq!(state.proposals.len(), before);
    state.params.max_open_bundle_bytes = Some(bundle_bytes(genesis_bundle.files()));
    crate::common::apply(&mut state, &back, MEMBERS[0], 3).unwrap();
}

#[test]
fn the_budget_defaults_to_64_mib_and_must_be_at_least_one_byte() {
    let (genesis, bundle) = genesis();
    assert_eq!(genesis.voting.max_open_bundle_bytes, None);
    assert_eq!(genesis.voting.open_bundle_budget(), 64 * 1024 * 1024);
    assert_eq!(DEFAULT_MAX_OPEN_BUNDLE_BYTES, 64 * 1024 * 1024);

    // In a genesis file: written, it is read; zero is refused naming it.
    let text = std::fs::read_to_string(repo().join("governance/genesis.dev.yaml")).unwrap();
    let with = |value: &str| {
        text.replace(
            "  max_open_proposals: 3",
            &format!("  max_open_proposals: 3\n  max_open_bundle_bytes: {value}"),
        )
    };
    let base = repo().join("governance");
    let set = Genesis::parse(with("1048576").as_bytes(), "g.yaml", &base).unwrap();
    assert_eq!(set.voting.max_open_bundle_bytes, Some(1 << 20));
    assert_ne!(
        set.digest(bundle.version()),
        genesis.digest(bundle.version()),
        "a written budget is part of the genesis digest"
    );
    let zero = Genesis::parse(with("0").as_bytes(), "g.yaml", &base).unwrap_err();
    assert_eq!(zero.field, "voting.max_open_bundle_bytes");
    let negative = Genesis::parse(with("-1").as_bytes(), "g.yaml", &base).unwrap_err();
    assert!(
        negative.field.contains("max_open_bundle_bytes"),
        "{negative}"
    );

    // In a voting-parameter change: zero is an invalid change naming it.
    let mut state = dev_state();
    let change: Change = serde_json::from_value(json!({ "kind": "set_voting_params", "params": {
        "quorum": "1/2", "threshold": "1/2", "voting_period": 10, "activation_delay": 2,
        "max_open_proposals": 3, "max_open_bundle_bytes": 0 } }))
    .unwrap();
    let refused = crate::common::apply(
        &mut state,
        &proposal_message(MEMBERS[0], "zero", &change),
        MEMBERS[0],
        1,
    )
    .unwrap_err();
    assert_eq!(refused.code(), "invalid_change");
    assert_eq!(
        refused.field(),
        Some("message.change.params.max_open_bundle_bytes")
    );
}

#[test]
fn a_written_budget_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_with_budget(5 << 20);
    let open = |dir: &Path| {
        let (_, bundle) = crate::common::genesis();
        let db = sled::open(dir).unwrap();
        StateMachine::open(&genesis, bundle, &db).map(|m| (m, db))
    };
    let (mut m, db) = open(dir.path()).unwrap();
    let (a, _) = propose("g-a", MEMBERS[0], &default_bundle_variant("kept"), "a");
    apply(&mut m, vec![a]);
    let root = m.state_root();
    drop(m);
    drop(db);
    let (m, _db) = open(dir.path()).unwrap();
    assert_eq!(m.governance().params.max_open_bundle_bytes, Some(5 << 20));
    assert_eq!(m.state_root(), root);
    assert_eq!(
        state_root(m.governance(), &m.consents().digest()),
        root,
        "the restored state hashes to the stored root"
    );
    assert_eq!(m.governance().preview_targets().candidates.len(), 1);
}
