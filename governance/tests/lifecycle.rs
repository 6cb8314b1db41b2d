//! Proposal lifecycles beyond the happy path: expiry, rejection, cancellation, vote changes,
//! rollback, rules changes that abort proposals still voting, frozen membership, several
//! activations at one height, and the impact preview.

use crate::common::*;
use accord_governance::message::Change;
use accord_governance::state::Accepted;
use accord_governance::{GovernanceState, StateMachine, Status, TxResult};
use serde_json::{json, Value};

/// Proposes `change` as `proposer` at `height`; returns (id, content).
fn propose(
    state: &mut GovernanceState,
    proposer: &str,
    change: &Change,
    height: u64,
) -> (String, String) {
    let message = proposal_message(proposer, "t", change);
    let ids = ids_of(&message);
    assert_eq!(
        apply(state, &message, proposer, height).unwrap(),
        Accepted::Proposed {
            proposal: ids.0.clone()
        }
    );
    ids
}

fn vote(state: &mut GovernanceState, ids: &(String, String), voter: &str, choice: &str, h: u64) {
    apply(state, &vote_message(ids, voter, choice), voter, h).unwrap();
}

fn status(state: &GovernanceState, ids: &(String, String)) -> Status {
    state.proposals[&ids.0].status
}

// ---------------------------------------------------------------- closing a window

#[test]
fn without_quorum_a_proposal_expires_exactly_when_its_window_ends() {
    let mut state = dev_state();
    state.begin_block(1);
    let ids = propose(&mut state, MEMBERS[0], &rename(MEMBERS[2], "x"), 1);
    vote(&mut state, &ids, MEMBERS[0], "yes", 2);
    let p = &state.proposals[&ids.0];
    assert_eq!(p.voting_ends, 1 + 10, "created_at + voting_period");
    for h in 2..p.voting_ends {
        state.begin_block(h);
        assert_eq!(status(&state, &ids), Status::Voting, "still open at {h}");
    }
    state.begin_block(11);
    let p = &state.proposals[&ids.0];
    assert_eq!(p.status, Status::Expired, "1 of 3 is below the 1/2 quorum");
    assert_eq!(p.decided_at, Some(11));
    assert_eq!(p.activates_at, None);
}

#[test]
fn a_tie_with_quorum_is_rejected_at_close_not_before() {
    let mut state = dev_state();
    let ids = propose(&mut state, MEMBERS[0], &rename(MEMBERS[2], "x"), 1);
    vote(&mut state, &ids, MEMBERS[0], "yes", 2);
    vote(&mut state, &ids, MEMBERS[1], "no", 3);
    state.begin_block(10);
    assert_eq!(
        status(&state, &ids),
        Status::Voting,
        "the third vote could break the tie"
    );
    state.begin_block(11);
    assert_eq!(status(&state, &ids), Status::Rejected);
    assert_eq!(state.proposals[&ids.0].decided_at, Some(11));
}

#[test]
fn two_no_of_three_reject_early_in_the_block_of_the_second_no() {
    let mut state = dev_state();
    let ids = propose(&mut state, MEMBERS[0], &rename(MEMBERS[2], "x"), 1);
    vote(&mut state, &ids, MEMBERS[1], "no", 2);
    let second = apply(
        &mut state,
        &vote_message(&ids, MEMBERS[2], "no"),
        MEMBERS[2],
        3,
    );
    assert_eq!(
        second.unwrap(),
        Accepted::Voted {
            proposal: ids.0.clone(),
            status: Status::Rejected
        }
    );
    assert_eq!(state.proposals[&ids.0].decided_at, Some(3));
}

#[test]
fn a_cancelled_proposal_stays_cancelled_and_frees_its_slot() {
    let mut state = dev_state();
    let ids = propose(&mut state, MEMBERS[0], &rename(MEMBERS[2], "x"), 1);
    vote(&mut state, &ids, MEMBERS[0], "yes", 2);
    assert_eq!(
        apply(
            &mut state,
            &cancel_message(&ids.0, MEMBERS[0]),
            MEMBERS[0],
            3
        )
        .unwrap(),
        Accepted::Cancelled {
            proposal: ids.0.clone()
        }
    );
    let p = &state.proposals[&ids.0];
    assert_eq!((p.status, p.decided_at), (Status::Cancelled, Some(3)));
    state.begin_block(11);
    assert_eq!(
        status(&state, &ids),
        Status::Cancelled,
        "closing the window leaves it cancelled"
    );
}

// ---------------------------------------------------------------- changing a vote

#[test]
fn the_last_vote_counts_and_returning_to_an_earlier_choice_needs_a_nonce() {
    let mut state = dev_state();
    let ids = propose(&mut state, MEMBERS[0], &rename(MEMBERS[2], "x"), 1);
    vote(&mut state, &ids, MEMBERS[1], "yes", 2);
    vote(&mut state, &ids, MEMBERS[1], "no", 3);
    let p = &state.proposals[&ids.0];
    assert_eq!((p.tally.yes, p.tally.no, p.tally.abstain), (0, 1, 0));
    assert_eq!(p.votes[MEMBERS[1]].height, 3);
    // Back to yes with the very message signed before: that is a replay.
    let again = apply(
        &mut state,
        &vote_message(&ids, MEMBERS[1], "yes"),
        MEMBERS[1],
        4,
    );
    assert_eq!(again.unwrap_err().code(), "replayed");
    // With a nonce it is a new message.
    let mut with_nonce = vote_message(&ids, MEMBERS[1], "yes");
    with_nonce["nonce"] = json!("changed my mind again");
    apply(&mut state, &with_nonce, MEMBERS[1], 4).unwrap();
    let p = &state.proposals[&ids.0];
    assert_eq!((p.tally.yes, p.tally.no), (1, 0));
    assert_eq!(p.status, Status::Voting, "1 yes of 3 is not quorum");
    // A change can decide: st-marys' yes makes two of three.
    vote(&mut state, &ids, MEMBERS[0], "yes", 5);
    assert_eq!(status(&state, &ids), Status::Queued);
}

// ---------------------------------------------------------------- policy changes

/// Applies `blocks` (height = index + 1) to a fresh dev machine.
fn run(
    blocks: Vec<Vec<Value>>,
) -> (
    StateMachine,
    Vec<std::sync::Arc<accord_governance::BlockAnswer>>,
) {
    let (genesis, bundle) = genesis();
    let mut m = StateMachine::new(&genesis, bundle);
    let answers = blocks
        .into_iter()
        .enumerate()
        .map(|(i, txs)| m.apply_block(block(i as u64 + 1, txs)).unwrap())
        .collect();
    (m, answers)
}

fn allowed(answer: &accord_governance::BlockAnswer, tx: &str) -> bool {
    answer.decisions().find(|d| d.tx == tx).unwrap().is_allow()
}

fn votes(ids: &(String, String), tag: &str, voters: &[&str]) -> Vec<Value> {
    voters
        .iter()
        .map(|v| signed(&format!("{tag}-{v}"), vote_message(ids, v, "yes"), v))
        .collect()
}

#[test]
fn a_rollback_reactivates_the_genesis_set_and_decisions_flip_back() {
    let (_, bundle) = genesis();
    let genesis_version = bundle.version().to_owned();
    let tighten = proposal_message(MEMBERS[0], "tighten", &drop_uruguay_adequacy());
    let t = ids_of(&tighten);
    let rollback_change: Change =
        serde_json::from_value(json!({ "kind": "rollback", "version": genesis_version })).unwrap();
    let yes = [MEMBERS[0], MEMBERS[1]];
    // The rollback is built on the tightened set, in force from height 4.
    let (tightened, _) = run(vec![
        vec![signed("g-1", tighten.clone(), MEMBERS[0])],
        votes(&t, "v1", &yes),
        vec![],
        vec![],
    ]);
    let rollback = with_base(
        proposal_message(MEMBERS[1], "undo", &rollback_change),
        tightened.governance().active.version(),
    );
    let r = ids_of(&rollback);
    let (m, a) = run(vec![
        vec![signed("g-1", tighten, MEMBERS[0])],
        votes(&t, "v1", &yes), // queued at 2, active at 4
        vec![],
        vec![share_to_uruguay("a-4"), signed("g-2", rollback, MEMBERS[1])],
        votes(&r, "v2", &yes), // queued at 5, active at 7
        vec![share_to_uruguay("a-6")],
        vec![share_to_uruguay("a-7")],
    ]);
    assert!(!allowed(&a[3], "a-4"), "the tightened set denies");
    assert!(!allowed(&a[5], "a-6"), "still tightened at 6");
    assert!(allowed(&a[6], "a-7"), "the genesis set allows again at 7");
    assert_eq!(a[6].activated, vec![r.0.clone()]);
    let gov = m.governance();
    let versions: Vec<(&str, u64)> = gov
        .history
        .iter()
        .map(|h| (h.version.as_str(), h.activated_at_height))
        .collect();
    let tightened = gov.history[1].version.as_str();
    assert_eq!(
        versions,
        vec![
            (genesis_version.as_str(), 0),
            (tightened, 4),
            (genesis_version.as_str(), 7)
        ]
    );
    assert_eq!(gov.proposals[&t.0].status, Status::Superseded);
    assert_eq!(gov.proposals[&r.0].status, Status::Active);
    assert_eq!(gov.active.version(), genesis_version);
    // The rollback's impact preview saw the deny → allow flip at height 6.
    let impact = &gov.proposals[&r.0].impact;
    assert_eq!((impact.deny_to_allow, impact.allow_to_deny), (1, 0));
    assert_eq!(impact.examples[0].tx, "a-6");
    // The decision names the version and its new activation height.
    let d = a[6].decisions().next().unwrap();
    assert_eq!(d.policy_set.version, genesis_version);
    assert_eq!(d.policy_set.activated_at_height, 7);
}

#[test]
fn of_policy_changes_due_at_one_height_the_first_activates_and_the_rest_abort() {
    // a and b replace the whole set; j changes EU parameters of the genesis set. All three are
    // built on the genesis set, pass in block 2 and are due at 4: a, the first made, activates;
    // b and j were built on the genesis set, which a replaced, so they are aborted rather than
    // silently undoing a.
    let a = proposal_message(MEMBERS[0], "a", &default_bundle_variant("a"));
    let b = proposal_message(MEMBERS[1], "b", &default_bundle_variant("b"));
    let j = proposal_message(MEMBERS[2], "j", &drop_uruguay_adequacy());
    let (ia, ib, ij) = (ids_of(&a), ids_of(&b), ids_of(&j));
    let yes = [MEMBERS[0], MEMBERS[2]];
    let mut block2 = votes(&ia, "va", &yes);
    block2.extend(votes(&ib, "vb", &yes));
    block2.extend(votes(&ij, "vj", &yes));
    let (m, ans) = run(vec![
        vec![
            signed("g-a", a, MEMBERS[0]),
            signed("g-b", b, MEMBERS[1]),
            signed("g-j", j, MEMBERS[2]),
        ],
        block2,
        vec![],
        vec![share_to_uruguay("a-4")],
    ]);
    let gov = m.governance();
    let seq: Vec<u64> = [&ia, &ib, &ij]
        .iter()
        .map(|i| gov.proposals[&i.0].seq)
        .collect();
    assert_eq!(seq, vec![0, 1, 2]);
    for i in [&ia, &ib, &ij] {
        assert_eq!(gov.proposals[&i.0].activates_at, Some(4));
    }
    assert_eq!(ans[3].activated, vec![ia.0.clone()]);
    assert_eq!(gov.proposals[&ia.0].status, Status::Active);
    for aborted in [&ib, &ij] {
        let p = &gov.proposals[&aborted.0];
        assert_eq!(p.status, Status::Aborted);
        assert_eq!(
            p.note.as_deref(),
            Some(
                format!(
                    "computed from a policy set that proposal {} replaced at height 4",
                    ia.0
                )
                .as_str()
            )
        );
    }
    let history: Vec<Option<&str>> = gov.history.iter().map(|h| h.proposal.as_deref()).collect();
    assert_eq!(history, vec![None, Some(ia.0.as_str())]);
    assert_eq!(gov.active.version(), gov.history[1].version);
    // a is the default bundle with a comment: Uruguay is still adequate.
    assert!(allowed(&ans[3], "a-4"));
    assert_eq!(
        m.published().policy.current().version(),
        gov.history[1].version
    );
}

#[test]
fn the_impact_preview_counts_flips_and_keeps_the_first_examples_in_ledger_order() {
    let tighten = proposal_message(MEMBERS[0], "tighten", &drop_uruguay_adequacy());
    let t = ids_of(&tighten);
    let mut japan = share_to_uruguay("a-jp");
    japan["context"]["recipient"]["country"] = json!("JP");
    let mut block2: Vec<Value> = (0..12)
        .map(|i| share_to_uruguay(&format!("a-{i}")))
        .collect();
    block2.insert(5, japan);
    let (m, ans) = run(vec![
        vec![
            share_to_uruguay("before"),
            signed("g-1", tighten, MEMBERS[0]),
        ],
        block2,
        vec![share_to_uruguay("a-12")],
    ]);
    assert!(allowed(&ans[1], "a-jp") && allowed(&ans[1], "a-0"));
    let impact = &m.governance().proposals[&t.0].impact;
    // "before" preceded the proposal in block 1: not evaluated. Block 2: 12 flips and Japan
    // (still adequate, no flip); block 3: one more flip.
    assert_eq!(impact.evaluated, 14);
    assert_eq!((impact.allow_to_deny, impact.deny_to_allow), (13, 0));
    let examples: Vec<(&str, u64, &str, &str)> = impact
        .examples
        .iter()
        .map(|f| (f.tx.as_str(), f.height, f.from.as_str(), f.to.as_str()))
        .collect();
    let expect: Vec<String> = (0..10).map(|i| format!("a-{i}")).collect();
    assert_eq!(
        examples,
        expect
            .iter()
            .map(|tx| (tx.as_str(), 2, "allow", "deny"))
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------- rules changes

fn rules_change_aborts_voting_and_spares_queued(change: Change, check: impl Fn(&GovernanceState)) {
    let mut state = dev_state();
    state.begin_block(1);
    let rules = propose(&mut state, MEMBERS[0], &change, 1);
    let queued = propose(&mut state, MEMBERS[1], &rename(MEMBERS[0], "St Mary's"), 1);
    let open = propose(&mut state, MEMBERS[1], &rename(MEMBERS[0], "other"), 1);
    state.begin_block(2);
    vote(&mut state, &rules, MEMBERS[0], "yes", 2);
    vote(&mut state, &rules, MEMBERS[1], "yes", 2);
    state.begin_block(3);
    // city-lab's yes is part of the queued proposal's tally (it may be removed at 4).
    vote(&mut state, &queued, MEMBERS[2], "yes", 3);
    vote(&mut state, &queued, MEMBERS[1], "yes", 3);
    vote(&mut state, &open, MEMBERS[0], "yes", 3);
    assert_eq!(state.proposals[&rules.0].activates_at, Some(4));
    assert_eq!(state.proposals[&queued.0].activates_at, Some(5));
    assert_eq!(state.begin_block(4), vec![rules.0.clone()]);
    check(&state);
    let o = &state.proposals[&open.0];
    assert_eq!(o.status, Status::Aborted, "{}", rules.0);
    assert_eq!(o.decided_at, Some(4));
    assert!(o.note.as_deref().unwrap().contains(&rules.0));
    assert_eq!(
        status(&state, &queued),
        Status::Queued,
        "decided under the old rules"
    );
    assert_eq!(state.begin_block(5), vec![queued.0.clone()]);
    let q = &state.proposals[&queued.0];
    assert_eq!(q.status, Status::Active);
    assert_eq!(
        (q.tally.yes, q.tally.total),
        (2, 3),
        "its snapshot tally is kept"
    );
    assert_eq!(state.membership.get(MEMBERS[0]).unwrap().name, "St Mary's");
}

#[test]
fn a_voting_params_change_aborts_proposals_still_voting() {
    let change: Change = serde_json::from_value(json!({ "kind": "set_voting_params",
        "params": { "quorum": "2/3", "threshold": "1/2", "voting_period": 5,
                    "activation_delay": 1, "max_open_proposals": 1 } }))
    .unwrap();
    rules_change_aborts_voting_and_spares_queued(change, |state| {
        assert_eq!(state.params.voting_period, 5);
        assert_eq!(state.params.quorum.to_string(), "2/3");
    });
}

#[test]
fn adding_a_member_aborts_proposals_still_voting() {
    let newcomer = member_with("member/new-clinic", &numbered_key(10), 2);
    let change = Change::AddMember {
        member: newcomer.clone(),
    };
    rules_change_aborts_voting_and_spares_queued(change, |state| {
        assert_eq!(state.membership.get("member/new-clinic"), Some(&newcomer));
        assert_eq!(state.membership.total_weight(), 5);
    });
}

#[test]
fn removing_a_member_aborts_proposals_still_voting() {
    let change: Change =
        serde_json::from_value(json!({ "kind": "remove_member", "member": MEMBERS[2] })).unwrap();
    rules_change_aborts_voting_and_spares_queued(change, |state| {
        assert!(state.membership.get(MEMBERS[2]).is_none());
        assert_eq!(state.membership.total_weight(), 2);
    });
}

#[test]
fn updating_a_member_aborts_proposals_still_voting() {
    let change: Change = serde_json::from_value(
        json!({ "kind": "update_member", "member": MEMBERS[1], "weight": 5 }),
    )
    .unwrap();
    rules_change_aborts_voting_and_spares_queued(change, |state| {
        assert_eq!(state.membership.get(MEMBERS[1]).unwrap().weight, 5);
    });
}

#[test]
fn a_proposals_membership_is_frozen_when_it_is_made() {
    let mut state = dev_state();
    let newcomer_key = numbered_key(11);
    let newcomer = member_with("member/new-clinic", &newcomer_key, 1);
    let add = propose(
        &mut state,
        MEMBERS[0],
        &Change::AddMember {
            member: newcomer.clone(),
        },
        1,
    );
    let remove: Change =
        serde_json::from_value(json!({ "kind": "remove_member", "member": MEMBERS[2] })).unwrap();
    let remove = propose(&mut state, MEMBERS[1], &remove, 1);
    let old = propose(&mut state, MEMBERS[2], &rename(MEMBERS[0], "old"), 1);
    for (ids, voters) in [
        (&add, [MEMBERS[0], MEMBERS[1]]),
        (&remove, [MEMBERS[0], MEMBERS[1]]),
        // city-lab votes on the old proposal before it is removed.
        (&old, [MEMBERS[2], MEMBERS[1]]),
    ] {
        for v in voters {
            vote(&mut state, ids, v, "yes", 2);
        }
    }
    // All three are queued at 2 and due at 4: add, then remove, then old (seq order).
    assert_eq!(
        state.begin_block(4),
        vec![add.0.clone(), remove.0.clone(), old.0.clone()]
    );
    assert!(state.membership.get("member/new-clinic").is_some());
    assert!(state.membership.get(MEMBERS[2]).is_none());
    // The removed member's vote still counts in the old proposal's frozen tally.
    let o = &state.proposals[&old.0];
    assert_eq!(o.votes[MEMBERS[2]].weight, 1);
    assert_eq!((o.tally.yes, o.tally.total), (2, 3));
    assert_eq!(o.status, Status::Active);
    // The newcomer cannot vote on a proposal made before it joined...
    let late = vote_message(&old, "member/new-clinic", "no");
    let err = state
        .apply(&envelope_with(&late, &newcomer_key), "tx-late", 4)
        .unwrap_err();
    assert_eq!(err.code(), "not_a_member");
    assert!(err.to_string().contains(&old.0), "{err}");
    // ...but votes on a new one, where the removed member cannot.
    let new = propose(&mut state, MEMBERS[0], &rename(MEMBERS[1], "Acme"), 4);
    let p = &state.proposals[&new.0];
    assert_eq!(p.tally.total, 3, "st-marys, acme and the newcomer");
    state
        .apply(
            &envelope_with(
                &vote_message(&new, "member/new-clinic", "yes"),
                &newcomer_key,
            ),
            "tx-n",
            5,
        )
        .unwrap();
    let removed = apply(
        &mut state,
        &vote_message(&new, MEMBERS[2], "yes"),
        MEMBERS[2],
        5,
    );
    assert_eq!(removed.unwrap_err().code(), "not_a_member");
    // A removed member cannot propose either.
    let proposal = proposal_message(MEMBERS[2], "t", &rename(MEMBERS[0], "y"));
    assert_eq!(
        apply(&mut state, &proposal, MEMBERS[2], 5)
            .unwrap_err()
            .code(),
        "not_a_member"
    );
}

#[test]
fn a_queued_membership_change_that_no_longer_applies_fails_without_changing_anything() {
    // Two proposals remove the same member; both pass; the second finds it gone.
    let mut state = dev_state();
    let change: Change =
        serde_json::from_value(json!({ "kind": "remove_member", "member": MEMBERS[2] })).unwrap();
    let first = propose(&mut state, MEMBERS[0], &change, 1);
    let second = propose(&mut state, MEMBERS[1], &change, 1);
    for ids in [&first, &second] {
        vote(&mut state, ids, MEMBERS[0], "yes", 2);
        vote(&mut state, ids, MEMBERS[1], "yes", 2);
    }
    let members_before = state.membership.len();
    assert_eq!(state.begin_block(4), vec![first.0.clone()]);
    assert_eq!(state.membership.len(), members_before - 1);
    let s = &state.proposals[&second.0];
    assert_eq!(s.status, Status::Failed);
    assert!(s.note.as_deref().unwrap().contains("is not a member"));
}

#[test]
fn results_of_a_lifecycle_through_blocks_report_each_status() {
    // The machine's answer reports the status a vote left the proposal in.
    let p = proposal_message(MEMBERS[0], "t", &rename(MEMBERS[2], "x"));
    let ids = ids_of(&p);
    let (_, a) = run(vec![
        vec![signed("g-1", p, MEMBERS[0])],
        vec![
            signed("g-2", vote_message(&ids, MEMBERS[0], "yes"), MEMBERS[0]),
            signed("g-3", vote_message(&ids, MEMBERS[1], "yes"), MEMBERS[1]),
        ],
    ]);
    let statuses: Vec<Option<String>> = a[1]
        .results
        .iter()
        .map(|r| match r {
            TxResult::Applied { applied, .. } => applied.status.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        vec![Some("voting".to_owned()), Some("queued".to_owned())]
    );
}
