//! Emergency brakes: a passed proposal vetoed during its activation delay never activates; an
//! emergency rollback to the previous set needs a higher threshold and activates sooner. The dev
//! consortium (three members of weight 1, quorum 1/2, threshold 1/2, delay 2) with the brakes
//! its genesis may add.

use crate::common::*;
use accord_governance::message::Change;
use accord_governance::params::{EmergencyParams, Ratio};
use accord_governance::proposal::Status;
use accord_governance::{GovernanceState, Refusal};
use serde_json::{json, Value};

fn state_with(veto: Option<(u64, u64)>, emergency: Option<((u64, u64), u64)>) -> GovernanceState {
    let (mut genesis, bundle) = genesis();
    genesis.voting.veto_threshold = veto.map(|(n, d)| Ratio::new(n, d).unwrap());
    genesis.voting.emergency = emergency.map(|((n, d), delay)| EmergencyParams {
        threshold: Ratio::new(n, d).unwrap(),
        activation_delay: delay,
    });
    genesis.voting.check().unwrap();
    GovernanceState::from_genesis(&genesis, bundle)
}

fn veto_message(ids: &(String, String), voter: &str) -> Value {
    json!({ "type": "veto", "consortium": CONSORTIUM, "proposal": ids.0, "content": ids.1,
            "voter": voter })
}

/// The Uruguay tightening proposed at 1 and passed at 2 by two yes votes: queued until 4.
fn passed_tightening(state: &mut GovernanceState) -> (String, String) {
    let message = proposal_message(MEMBERS[0], "tighten", &drop_uruguay_adequacy());
    let ids = ids_of(&message);
    apply(state, &message, MEMBERS[0], 1).unwrap();
    for voter in [MEMBERS[0], MEMBERS[1]] {
        apply(state, &vote_message(&ids, voter, "yes"), voter, 2).unwrap();
    }
    assert_eq!(state.proposals[&ids.0].status, Status::Queued);
    assert_eq!(state.proposals[&ids.0].activates_at, Some(4));
    ids
}

#[test]
fn a_veto_reaching_the_threshold_stops_a_passed_proposal_before_it_activates() {
    // One member in three may stop it: veto threshold 1/3.
    let mut state = state_with(Some((1, 3)), None);
    let genesis_version = state.active.version().to_owned();
    let ids = passed_tightening(&mut state);
    assert_eq!(state.begin_block(3), Vec::<String>::new());
    let accepted = apply(&mut state, &veto_message(&ids, MEMBERS[2]), MEMBERS[2], 3).unwrap();
    assert_eq!(
        accepted,
        accord_governance::state::Accepted::Vetoed {
            proposal: ids.0.clone(),
            status: Status::Vetoed
        }
    );
    let p = &state.proposals[&ids.0];
    assert_eq!(p.status, Status::Vetoed);
    assert_eq!(
        p.note.as_deref(),
        Some("vetoed at height 3 by weight 1 of 3")
    );
    // The activation height comes and goes: nothing activates, the genesis set stays.
    assert_eq!(state.begin_block(4), Vec::<String>::new());
    assert_eq!(state.active.version(), genesis_version);
    assert_eq!(state.proposals[&ids.0].status, Status::Vetoed);
}

#[test]
fn vetoes_below_the_threshold_leave_it_to_activate_and_every_wrong_veto_is_refused() {
    // Two of three must veto.
    let mut state = state_with(Some((2, 3)), None);
    // Not passed yet: still voting.
    let message = proposal_message(MEMBERS[0], "tighten", &drop_uruguay_adequacy());
    let ids = ids_of(&message);
    apply(&mut state, &message, MEMBERS[0], 1).unwrap();
    let early = apply(&mut state, &veto_message(&ids, MEMBERS[2]), MEMBERS[2], 1).unwrap_err();
    assert_eq!(early.code(), "not_vetoable");
    assert!(early.to_string().contains("it is voting"), "{early}");
    for voter in [MEMBERS[0], MEMBERS[1]] {
        apply(&mut state, &vote_message(&ids, voter, "yes"), voter, 2).unwrap();
    }
    // Wrong content, a stranger, then one veto (1 of 3: below 2/3), then the same member again.
    let wrong = veto_message(&(ids.0.clone(), "sha256:00".into()), MEMBERS[2]);
    assert_eq!(
        apply(&mut state, &wrong, MEMBERS[2], 3).unwrap_err().code(),
        "content_mismatch"
    );
    let stranger = numbered_key(7);
    let mut forged = veto_message(&ids, "member/stranger");
    forged["voter"] = json!("member/stranger");
    let refused = state
        .apply(&envelope_with(&forged, &stranger), "tx-x", 3)
        .unwrap_err();
    assert!(matches!(refused, Refusal::NotAMember { .. }), "{refused}");
    apply(&mut state, &veto_message(&ids, MEMBERS[2]), MEMBERS[2], 3).unwrap();
    assert_eq!(state.proposals[&ids.0].status, Status::Queued);
    assert_eq!(state.proposals[&ids.0].vetoes.len(), 1);
    let again = apply(&mut state, &veto_message(&ids, MEMBERS[2]), MEMBERS[2], 3).unwrap_err();
    assert_eq!(again.code(), "not_vetoable");
    assert!(again.to_string().contains("vetoed it already"), "{again}");
    // It activates at 4 as decided; a veto after that is too late.
    assert_eq!(state.begin_block(4), vec![ids.0.clone()]);
    let late = apply(&mut state, &veto_message(&ids, MEMBERS[1]), MEMBERS[1], 4).unwrap_err();
    assert_eq!(late.code(), "not_vetoable");
    assert!(late.to_string().contains("it is active"), "{late}");
}

#[test]
fn without_a_veto_threshold_in_the_rules_no_veto_is_taken() {
    let mut state = state_with(None, None);
    let ids = passed_tightening(&mut state);
    let refused = apply(&mut state, &veto_message(&ids, MEMBERS[2]), MEMBERS[2], 3).unwrap_err();
    assert_eq!(refused.code(), "not_vetoable");
    assert!(refused.to_string().contains("allow no veto"), "{refused}");
    assert_eq!(state.proposals[&ids.0].status, Status::Queued);
}

fn rollback(version: &str, emergency: bool) -> Change {
    serde_json::from_value(
        json!({ "kind": "rollback", "version": version, "emergency": emergency }),
    )
    .unwrap()
}

#[test]
fn an_emergency_rollback_needs_the_higher_threshold_and_activates_sooner() {
    // Emergency: yes must exceed 2/3 of yes + no, and it activates 1 block after the decision.
    let mut state = state_with(None, Some(((2, 3), 1)));
    let genesis_version = state.active.version().to_owned();
    let ids = passed_tightening(&mut state);
    assert_eq!(state.begin_block(4), vec![ids.0.clone()]);
    let tightened = state.active.version().to_owned();
    // Two yes and one no: enough for an ordinary rollback (2/3 > 1/2), not for an emergency
    // one (2/3 is not more than 2/3).
    let votes = |state: &mut GovernanceState, ids: &(String, String), at: u64| {
        for (voter, choice) in [(MEMBERS[0], "yes"), (MEMBERS[1], "yes"), (MEMBERS[2], "no")] {
            apply(state, &vote_message(ids, voter, choice), voter, at).unwrap();
        }
    };
    let emergency = with_base(
        proposal_message(MEMBERS[1], "emergency", &rollback(&genesis_version, true)),
        &tightened,
    );
    let e = ids_of(&emergency);
    apply(&mut state, &emergency, MEMBERS[1], 5).unwrap();
    let frozen = &state.proposals[&e.0].params;
    assert_eq!(frozen.threshold, Ratio::new(2, 3).unwrap());
    assert_eq!(frozen.activation_delay, 1);
    votes(&mut state, &e, 5);
    assert_eq!(state.proposals[&e.0].status, Status::Rejected);

    let ordinary = with_base(
        proposal_message(MEMBERS[1], "ordinary", &rollback(&genesis_version, false)),
        &tightened,
    );
    let o = ids_of(&ordinary);
    apply(&mut state, &ordinary, MEMBERS[1], 6).unwrap();
    // Two yes decide it already (the third, even no, could not change it); the no is too late.
    for voter in [MEMBERS[0], MEMBERS[1]] {
        apply(&mut state, &vote_message(&o, voter, "yes"), voter, 6).unwrap();
    }
    assert_eq!(state.proposals[&o.0].status, Status::Queued);
    assert_eq!(
        state.proposals[&o.0].activates_at,
        Some(8),
        "ordinary delay 2"
    );

    // Unanimous, the emergency rollback passes and activates one block after its decision.
    let mut again = with_base(
        proposal_message(
            MEMBERS[2],
            "emergency again",
            &rollback(&genesis_version, true),
        ),
        &tightened,
    );
    again["nonce"] = json!("2");
    let a = ids_of(&again);
    apply(&mut state, &again, MEMBERS[2], 6).unwrap();
    for voter in MEMBERS {
        apply(&mut state, &vote_message(&a, voter, "yes"), voter, 6).unwrap();
    }
    assert_eq!(
        state.proposals[&a.0].activates_at,
        Some(7),
        "emergency delay 1"
    );
    assert_eq!(state.begin_block(7), vec![a.0.clone()]);
    assert_eq!(state.active.version(), genesis_version);
    // The ordinary one, built on the set the emergency rollback replaced, is aborted.
    assert_eq!(state.proposals[&o.0].status, Status::Aborted);
}

#[test]
fn an_emergency_rollback_goes_to_the_previous_set_and_only_where_the_rules_allow_one() {
    let mut plain = state_with(None, None);
    let ids = passed_tightening(&mut plain);
    assert_eq!(plain.begin_block(4), vec![ids.0]);
    let tightened = plain.active.version().to_owned();
    let genesis_version = plain.history[0].version.clone();
    let message = with_base(
        proposal_message(MEMBERS[0], "e", &rollback(&genesis_version, true)),
        &tightened,
    );
    let refused = apply(&mut plain, &message, MEMBERS[0], 5).unwrap_err();
    assert_eq!(
        (refused.code(), refused.field()),
        ("invalid_change", Some("message.change.emergency"))
    );

    let mut state = state_with(None, Some(((2, 3), 1)));
    let ids = passed_tightening(&mut state);
    assert_eq!(state.begin_block(4), vec![ids.0]);
    // The active set itself, or any version but the previous one, is refused.
    let message = with_base(
        proposal_message(MEMBERS[0], "e", &rollback("sha256:0123", true)),
        state.active.version(),
    );
    let refused = apply(&mut state, &message, MEMBERS[0], 5).unwrap_err();
    assert_eq!(refused.code(), "invalid_change");
    assert!(
        refused.to_string().contains("previous policy set"),
        "{refused}"
    );
}

type Edit = Box<dyn Fn(&mut accord_governance::params::VotingParams)>;

#[test]
fn brake_rules_are_checked() {
    let (genesis, _) = genesis();
    let base = genesis.voting.clone();
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|p| p.veto_threshold = Some(Ratio::new(0, 1).unwrap())),
            "veto_threshold",
        ),
        (
            Box::new(|p| {
                p.emergency = Some(EmergencyParams {
                    threshold: Ratio::new(1, 2).unwrap(),
                    activation_delay: 1,
                })
            }),
            "emergency.threshold",
        ),
        (
            Box::new(|p| {
                p.emergency = Some(EmergencyParams {
                    threshold: Ratio::new(1, 1).unwrap(),
                    activation_delay: 1,
                })
            }),
            "emergency.threshold",
        ),
        (
            Box::new(|p| {
                p.emergency = Some(EmergencyParams {
                    threshold: Ratio::new(3, 4).unwrap(),
                    activation_delay: 2,
                })
            }),
            "emergency.activation_delay",
        ),
        (
            Box::new(|p| {
                p.emergency = Some(EmergencyParams {
                    threshold: Ratio::new(3, 4).unwrap(),
                    activation_delay: 0,
                })
            }),
            "emergency.activation_delay",
        ),
    ];
    for (edit, field) in cases {
        let mut p = base.clone();
        edit(&mut p);
        assert_eq!(p.check().unwrap_err().0, field);
    }
    // Written brakes are part of the rules' digest; absent ones leave it as it was.
    let mut with = base.clone();
    with.veto_threshold = Some(Ratio::new(1, 3).unwrap());
    assert_ne!(with.digest(), base.digest());
    let text = serde_json::to_string(&base).unwrap();
    assert!(
        !text.contains("veto") && !text.contains("emergency"),
        "{text}"
    );
}
