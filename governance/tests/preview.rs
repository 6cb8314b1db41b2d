//! The impact preview with several pending policy changes, some proposing the same bundle: the
//! state roots of every block and each proposal's status and impact are pinned by a snapshot,
//! so that how the preview is computed cannot change what it reports. The genesis digest and the
//! genesis state root are pinned too: rules that leave the optional fields out keep them.

use crate::common::*;
use accord_engine::testing::benchmark_mix;
use accord_engine::ConsentRegistry;
use accord_governance::machine::state_root;
use accord_governance::{BlockAnswer, StateMachine};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The mix's access transactions with ids unique to `tag`, then shares to Uruguay and to a
/// country no list names (`ZZ`).
fn accesses(tag: &str) -> Vec<Value> {
    let mut txs: Vec<Value> = benchmark_mix()
        .transactions
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut t = t.clone();
            t["id"] = json!(format!("{tag}-mix-{i}"));
            t
        })
        .collect();
    for i in 0..3 {
        txs.push(share_to_uruguay(&format!("{tag}-uy-{i}")));
    }
    let mut elsewhere = share_to_uruguay(&format!("{tag}-zz"));
    elsewhere["context"]["recipient"]["country"] = json!("ZZ");
    txs.push(elsewhere);
    txs
}

/// `set_jurisdiction_parameters` adding `country` to the EU adequacy list.
fn add_adequacy(country: &str) -> accord_governance::Change {
    let (_, bundle) = genesis();
    let kept: Vec<Value> = bundle
        .jurisdictions()
        .get("EU")
        .and_then(|j| j.parameters.get("adequacy"))
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .cloned()
        .chain([json!(country)])
        .collect();
    serde_json::from_value(json!({
        "kind": "set_jurisdiction_parameters", "jurisdiction": "EU",
        "parameters": { "adequacy": kept } }))
    .unwrap()
}

/// Proposals: the Uruguay tightening twice (two proposers, one bundle), a manifest variant of
/// the default bundle, and `ZZ` joining the adequacy list; the first Uruguay one passes.
fn scenario() -> (StateMachine, Vec<BlockAnswer>, Vec<(String, String)>) {
    let uruguay = proposal_message(MEMBERS[0], "uruguay", &drop_uruguay_adequacy());
    let mut uruguay_again = proposal_message(MEMBERS[1], "uruguay again", &drop_uruguay_adequacy());
    uruguay_again["nonce"] = json!("again");
    let variant = proposal_message(MEMBERS[2], "variant", &default_bundle_variant("preview"));
    let elsewhere = proposal_message(MEMBERS[0], "elsewhere", &add_adequacy("ZZ"));
    let ids: Vec<(String, String)> = [&uruguay, &uruguay_again, &variant, &elsewhere]
        .iter()
        .map(|m| ids_of(m))
        .collect();
    let mut block1: Vec<Value> = benchmark_mix().consents;
    block1.extend(accesses("b1-before"));
    block1.push(signed("g-uruguay", uruguay, MEMBERS[0]));
    block1.push(signed("g-uruguay-again", uruguay_again, MEMBERS[1]));
    block1.push(signed("g-variant", variant, MEMBERS[2]));
    block1.push(signed("g-elsewhere", elsewhere, MEMBERS[0]));
    block1.extend(accesses("b1-after"));
    let mut block3 = accesses("b3-before");
    for (n, voter) in [MEMBERS[0], MEMBERS[1]].into_iter().enumerate() {
        block3.push(signed(
            &format!("v-{n}"),
            vote_message(&ids[0], voter, "yes"),
            voter,
        ));
    }
    block3.extend(accesses("b3-after"));
    let blocks = vec![
        block1,
        accesses("b2"),
        block3,
        accesses("b4"),
        accesses("b5"),
        accesses("b6"),
    ];
    let (genesis, bundle) = genesis();
    let mut machine = StateMachine::new(&genesis, bundle);
    let mut answers = Vec::new();
    for (i, txs) in blocks.into_iter().enumerate() {
        let answer = machine.apply_block(block(i as u64 + 1, txs)).unwrap();
        for r in &answer.results {
            assert!(
                !matches!(r, accord_governance::TxResult::Refused { .. }),
                "block {}: {r:?}",
                i + 1
            );
        }
        answers.push((*answer).clone());
    }
    (machine, answers, ids)
}

#[test]
fn previews_of_pending_changes_are_pinned_block_by_block() {
    let (machine, answers, ids) = scenario();
    let mut out = String::new();
    for a in &answers {
        writeln!(out, "block {}: {}", a.height, a.state_root).unwrap();
    }
    let gov = machine.governance();
    for (id, _) in &ids {
        let p = &gov.proposals[id];
        writeln!(
            out,
            "{} {} {}",
            p.title,
            p.status,
            serde_json::to_string(&p.impact).unwrap()
        )
        .unwrap();
    }
    // The scenario is what it says: the Uruguay proposal activated at height 5; every other
    // policy change was built on the set it replaced and was aborted then (its impact preview
    // stops at height 4).
    assert_eq!(answers[4].activated, vec![ids[0].0.clone()]);
    for other in &ids[1..] {
        assert_eq!(
            gov.proposals[&other.0].status,
            accord_governance::Status::Aborted
        );
    }
    assert!(gov.proposals[&ids[0].0].impact.allow_to_deny > 0);
    assert!(gov.proposals[&ids[3].0].impact.deny_to_allow > 0);
    insta::assert_snapshot!(out);
}

#[test]
fn the_genesis_digest_and_state_root_are_those_of_rules_without_optional_fields() {
    let (genesis, bundle) = genesis();
    let machine = StateMachine::new(&genesis, bundle.clone());
    let root = state_root(machine.governance(), &machine.consents().digest());
    insta::assert_snapshot!(format!(
        "genesis {}\nstate root {root}",
        genesis.digest(bundle.version())
    ));
}
