//! End to end: three members pass a proposal that tightens a rule; it activates at the expected
//! height and an access decision flips at exactly that height, identically on two nodes.

use crate::common::*;
use accord_governance::{StateMachine, Status, TxResult};

fn decision_of(answer: &accord_governance::BlockAnswer, tx: &str) -> (String, String) {
    answer
        .decisions()
        .find(|d| d.tx == tx)
        .map(|d| (format!("{:?}", d.decision), d.policy_set.version.clone()))
        .unwrap()
}

#[test]
fn a_passed_tightening_flips_a_decision_at_its_activation_height_on_every_node() {
    let (genesis, bundle) = genesis();
    let mut nodes = [
        StateMachine::new(&genesis, bundle.clone()),
        StateMachine::new(&genesis, bundle.clone()),
    ];
    let proposal = proposal_message(
        MEMBERS[0],
        "Uruguay leaves the adequacy list",
        &drop_uruguay_adequacy(),
    );
    let ids = ids_of(&proposal);
    let blocks = vec![
        block(
            1,
            vec![share_to_uruguay("a-1"), signed("g-1", proposal, MEMBERS[0])],
        ),
        block(
            2,
            vec![
                signed("g-2", vote_message(&ids, MEMBERS[0], "yes"), MEMBERS[0]),
                signed("g-3", vote_message(&ids, MEMBERS[1], "yes"), MEMBERS[1]),
                share_to_uruguay("a-2"),
            ],
        ),
        block(
            3,
            vec![
                signed("g-4", vote_message(&ids, MEMBERS[2], "no"), MEMBERS[2]),
                share_to_uruguay("a-3"),
            ],
        ),
        block(4, vec![share_to_uruguay("a-4")]),
        block(5, vec![share_to_uruguay("a-5")]),
    ];
    let mut answers = [Vec::new(), Vec::new()];
    for (n, node) in nodes.iter_mut().enumerate() {
        for b in &blocks {
            answers[n].push(node.apply_block(b.clone()).unwrap());
        }
    }
    assert_eq!(
        answers[0], answers[1],
        "two nodes fed the same blocks answer the same"
    );
    let a = &answers[0];
    // The text a node stores and sends is serde's serialization of the answer, byte for byte,
    // for every kind of result: decisions, applied and refused messages, an activation.
    for answer in a {
        assert_eq!(
            answer.to_json(),
            serde_json::to_string(&**answer).expect("serializes"),
            "block {}",
            answer.height
        );
    }
    // Two yes of three equal weights decide it in block 2 (the third vote cannot change it):
    // queued to activate at 2 + activation_delay (2) = 4.
    let gov = nodes[0].governance();
    let p = &gov.proposals[&ids.0];
    assert_eq!(p.decided_at, Some(2));
    assert_eq!(p.activates_at, Some(4));
    assert_eq!(p.status, Status::Active);
    // The third vote came after the decision: refused as closed.
    assert!(
        matches!(&a[2].results[0], TxResult::Refused { refused, .. } if refused.code == "proposal_closed")
    );
    assert_eq!(a[3].activated, vec![ids.0.clone()]);
    let genesis_version = bundle.version().to_owned();
    for (height, expect) in [
        (1, "Allow"),
        (2, "Allow"),
        (3, "Allow"),
        (4, "Deny"),
        (5, "Deny"),
    ] {
        let (effect, version) = decision_of(&a[height - 1], &format!("a-{height}"));
        assert_eq!(effect, expect, "block {height}");
        assert_eq!(
            version != genesis_version,
            height >= 4,
            "block {height} names the version it used"
        );
    }
    // The impact preview saw the flips while the proposal was pending (blocks 2 and 3).
    assert_eq!(p.impact.allow_to_deny, 2);
    assert_eq!(p.impact.deny_to_allow, 0);
    assert_eq!(nodes[0].state_root(), nodes[1].state_root());
    // The published set swapped at height 4.
    assert_eq!(nodes[0].published().policy.current().activated_at_height, 4);
}
