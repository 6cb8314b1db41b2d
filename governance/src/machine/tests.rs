//! Block semantics of the state machine: order, replay, conflicts, all-or-nothing blocks and
//! consent in ledger order. Governance flows have their own tests under governance/tests/.

use super::*;
use accord_engine::cases::deep_merge;
use accord_engine::decision::Effect;
use accord_engine::Decision;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::OnceLock;

fn fixture() -> &'static (Genesis, Arc<Bundle>, Vec<Value>) {
    static CELL: OnceLock<(Genesis, Arc<Bundle>, Vec<Value>)> = OnceLock::new();
    CELL.get_or_init(|| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let genesis = Genesis::load(&repo.join("governance/genesis.dev.yaml")).expect("genesis");
        let bundle = Arc::new(Bundle::load(&genesis.bundle_dir).expect("bundle"));
        let blocks: Vec<Value> = accord_engine::json::parse(
            &std::fs::read(repo.join("examples/ledger.json")).expect("examples/ledger.json"),
        )
        .expect("JSON");
        let txs = blocks
            .iter()
            .flat_map(|b| b["transactions"].as_array().cloned().unwrap_or_default())
            .collect();
        (genesis, bundle, txs)
    })
}

fn machine() -> StateMachine {
    let (genesis, bundle, _) = fixture();
    StateMachine::new(genesis, bundle.clone())
}

fn example(id: &str) -> Value {
    fixture()
        .2
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("examples/ledger.json has no {id}"))
}

fn block(height: u64, previous: Option<&str>, transactions: Vec<Value>) -> Block {
    Block {
        height,
        previous: previous.map(str::to_owned),
        transactions,
    }
}

/// A physician's treatment read under HIPAA (allowed), with id `id`.
fn read(id: &str) -> Value {
    deep_merge(example("tx-001"), json!({ "id": id }))
}

/// A researcher at org/uni-lab reads patient/d-4's record in Germany for research: GDPR
/// Art. 9(2)(a) needs the patient's explicit consent, which only the registry can supply.
fn share(id: &str) -> Value {
    deep_merge(example("tx-019"), json!({ "id": id }))
}

fn grant(id: &str, consent_id: &str) -> Value {
    json!({ "id": id, "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
            "consent": { "id": consent_id, "status": "active", "patient": "patient/d-4",
                         "grantee": "org/uni-lab", "purposes": ["HRESCH"], "actions": ["read"],
                         "data_categories": ["general"],
                         "period": { "start": "2026-02-01T00:00:00Z", "end": "2027-02-01T00:00:00Z" } } })
}

fn revoke(id: &str, consent_id: &str) -> Value {
    json!({ "id": id, "kind": "consent", "timestamp": "2026-02-15T09:00:00Z",
            "consent": { "id": consent_id, "status": "revoked", "patient": "patient/d-4" } })
}

fn applied(tx: &str, consent: &str) -> TxResult {
    TxResult::Applied {
        tx: tx.into(),
        applied: Applied {
            kind: "consent".into(),
            id: consent.into(),
            status: None,
        },
    }
}

fn apply(machine: &mut StateMachine, block: Block) -> Arc<BlockAnswer> {
    let height = block.height;
    machine
        .apply_block(block)
        .unwrap_or_else(|e| panic!("block {height} must apply: {e}"))
}

fn decision(answer: &BlockAnswer, index: usize) -> &Decision {
    match &answer.results[index] {
        TxResult::Decided(d) => d,
        other => panic!("result {index} must be a decision, got {other:?}"),
    }
}

fn refused(machine: &mut StateMachine, block: Block) -> BlockError {
    let root = machine.state_root();
    let height = machine.height();
    let err = match machine.apply_block(block) {
        Ok(a) => panic!("block must be refused, got {a:?}"),
        Err(e) => e,
    };
    assert_eq!(
        machine.state_root(),
        root,
        "a refused block must leave the state unchanged"
    );
    assert_eq!(machine.height(), height);
    err
}

#[test]
fn the_first_block_has_the_genesis_initial_height() {
    let mut l = machine();
    assert_eq!(l.height(), None);
    assert_eq!(
        l.next_height(),
        1,
        "a genesis without initial_height starts at 1"
    );
    for got in [0, 2, 42, u64::MAX] {
        let err = refused(&mut l, block(got, None, vec![read("tx-0")]));
        assert_eq!(err, BlockError::OutOfOrder { expected: 1, got });
    }
    let answer = apply(&mut l, block(1, None, vec![read("tx-1")]));
    assert_eq!(answer.height, 1);
    assert_eq!(l.height(), Some(1));
    assert_eq!(decision(&answer, 0).decision, Effect::Allow);
    assert_eq!(decision(&answer, 0).tx, "tx-1");
    assert_eq!(answer.block_hash, block(1, None, vec![read("tx-1")]).hash());
    assert_eq!(answer.state_root, l.state_root());

    // A chain that starts later (CometBFT's `initial_height`) says so in its genesis.
    let (genesis, bundle, _) = fixture();
    let mut later = genesis.clone();
    later.initial_height = 42;
    let mut l = StateMachine::new(&later, bundle.clone());
    let err = refused(&mut l, block(1, None, vec![]));
    assert_eq!(
        err,
        BlockError::OutOfOrder {
            expected: 42,
            got: 1
        }
    );
    apply(&mut l, block(42, None, vec![]));
    assert_eq!(l.next_height(), 43);
}

#[test]
fn an_empty_first_block_with_a_previous_hash_is_accepted() {
    // There is nothing to compare `previous` against before the first block.
    let mut l = machine();
    let answer = apply(&mut l, block(1, Some("sha256:whatever"), vec![]));
    assert!(answer.results.is_empty());
}

#[test]
fn a_gap_or_an_old_height_is_refused_out_of_order() {
    let mut l = machine();
    apply(&mut l, block(1, None, vec![grant("tx-1", "consent/c-1")]));
    apply(&mut l, block(2, None, vec![]));
    let gap = refused(&mut l, block(4, None, vec![grant("tx-2", "consent/c-2")]));
    assert_eq!(
        gap,
        BlockError::OutOfOrder {
            expected: 3,
            got: 4
        }
    );
    let old = refused(&mut l, block(0, None, vec![]));
    assert_eq!(
        old,
        BlockError::OutOfOrder {
            expected: 3,
            got: 0
        }
    );
    let far = refused(&mut l, block(u64::MAX, None, vec![]));
    assert_eq!(
        far,
        BlockError::OutOfOrder {
            expected: 3,
            got: u64::MAX
        }
    );
    assert_eq!(
        l.consents().len(),
        1,
        "the refused block's consent was not applied"
    );
    insta::assert_snapshot!(format!("{gap}\n{old}\n{far}"));
    // The next height still applies.
    apply(&mut l, block(3, None, vec![]));
}

#[test]
fn a_replayed_block_returns_the_same_answer_without_reapplying() {
    let mut l = machine();
    let b = block(1, None, vec![grant("tx-1", "consent/c-1"), share("tx-2")]);
    let first = apply(&mut l, b.clone());
    let root = l.state_root();
    let again = apply(&mut l, b);
    assert_eq!(again, first);
    assert_eq!(l.state_root(), root);
    assert_eq!(l.consents().len(), 1);
}

#[test]
fn a_different_block_at_the_same_height_is_a_conflict() {
    let mut l = machine();
    apply(&mut l, block(1, None, vec![read("tx-1")]));
    let err = refused(&mut l, block(1, None, vec![grant("tx-2", "consent/c-1")]));
    assert_eq!(err, BlockError::Conflict { height: 1 });
    assert!(l.consents().is_empty());
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn previous_must_match_the_last_block_hash_when_given() {
    let mut l = machine();
    let first = apply(&mut l, block(1, None, vec![]));
    let err = refused(
        &mut l,
        block(
            2,
            Some("sha256:not-the-hash"),
            vec![grant("tx-1", "consent/c-1")],
        ),
    );
    assert_eq!(
        err,
        BlockError::PreviousMismatch {
            height: 2,
            expected: first.block_hash.clone()
        }
    );
    assert!(err.to_string().contains(&first.block_hash), "{err}");
    apply(&mut l, block(2, Some(&first.block_hash), vec![]));
    // Left out, it is not checked (hand-written scenarios).
    apply(&mut l, block(3, None, vec![]));
}

#[test]
fn a_malformed_transaction_refuses_the_whole_block() {
    let mut l = machine();
    apply(&mut l, block(1, None, vec![]));
    let bad = deep_merge(read("tx-3"), json!({ "actor": { "type": "Nurse" } }));
    // The consent before the bad transaction must not be applied either: a block is all or nothing.
    let err = refused(
        &mut l,
        block(2, None, vec![grant("tx-2", "consent/c-1"), bad]),
    );
    match &err {
        BlockError::Transaction(e) => assert_eq!(e.field, "transactions[1].actor.type"),
        other => panic!("expected a transaction error, got {other:?}"),
    }
    assert!(l.consents().is_empty());
    insta::assert_snapshot!(err.to_string());
    // Where the block stands comes first: a gap with a malformed transaction is still a gap.
    let bad = deep_merge(read("tx-4"), json!({ "actor": { "type": "Nurse" } }));
    assert_eq!(
        refused(&mut l, block(5, None, vec![bad])),
        BlockError::OutOfOrder {
            expected: 2,
            got: 5
        }
    );
    // The refused block did not take height 2.
    apply(&mut l, block(2, None, vec![]));
}

#[test]
fn a_transaction_without_kind_is_named_by_its_place() {
    let mut l = machine();
    let err = refused(
        &mut l,
        block(1, None, vec![read("tx-1"), json!({ "id": "tx-2" })]),
    );
    assert_eq!(
        err.to_string(),
        "field `transactions[1].kind`: missing field"
    );
}

#[test]
fn a_consent_earlier_in_the_block_covers_a_later_access() {
    let mut l = machine();
    let answer = apply(
        &mut l,
        block(1, None, vec![grant("tx-1", "consent/c-1"), share("tx-2")]),
    );
    assert_eq!(answer.results[0], applied("tx-1", "consent/c-1"));
    let d = decision(&answer, 1);
    assert_eq!(d.decision, Effect::Allow, "{}", d.to_json());
    assert_eq!(d.reasons[0].rule, "explicit-consent");
    assert_eq!(d.reasons[0].citation, "GDPR Art. 9(2)(a)");
}

#[test]
fn a_consent_later_in_the_block_does_not_cover_an_earlier_access() {
    // docs/contract.md §3: transactions apply in ledger order; a disclosure made before the authorization
    // existed was not authorized, even if both are in one block.
    let mut l = machine();
    let answer = apply(
        &mut l,
        block(1, None, vec![share("tx-1"), grant("tx-2", "consent/c-1")]),
    );
    let d = decision(&answer, 0);
    assert_eq!(d.decision, Effect::Deny, "{}", d.to_json());
    assert_eq!(answer.results[1], applied("tx-2", "consent/c-1"));
    // From the next block on the consent is in force.
    let next = apply(&mut l, block(2, None, vec![share("tx-3")]));
    assert_eq!(decision(&next, 0).decision, Effect::Allow);
}

#[test]
fn a_revoked_consent_no_longer_covers() {
    // GDPR Art. 7(3) / 45 CFR 164.508(b)(5): revocation applies from that point on.
    let mut l = machine();
    let answer = apply(
        &mut l,
        block(
            1,
            None,
            vec![
                grant("tx-1", "consent/c-1"),
                share("tx-2"),
                revoke("tx-3", "consent/c-1"),
                share("tx-4"),
            ],
        ),
    );
    assert_eq!(decision(&answer, 1).decision, Effect::Allow);
    assert_eq!(answer.results[2], applied("tx-3", "consent/c-1"));
    assert_eq!(decision(&answer, 3).decision, Effect::Deny);
    let later = apply(&mut l, block(2, None, vec![share("tx-5")]));
    assert_eq!(decision(&later, 0).decision, Effect::Deny);
}

#[test]
fn a_rejected_consent_is_reported_and_the_block_still_applies() {
    let mut l = machine();
    let before = l.state_root();
    let answer = apply(
        &mut l,
        block(1, None, vec![revoke("tx-1", "consent/c-9"), read("tx-2")]),
    );
    match &answer.results[0] {
        TxResult::Refused { tx, refused } => {
            assert_eq!(tx, "tx-1");
            assert_eq!(refused.code, "consent_refused");
            assert!(
                refused.message.contains("consent/c-9"),
                "{}",
                refused.message
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(decision(&answer, 1).decision, Effect::Allow);
    assert_eq!(l.height(), Some(1));
    assert_eq!(
        answer.state_root, before,
        "the rejected consent changed nothing"
    );
}

#[test]
fn a_malformed_governance_message_is_refused_not_the_block() {
    let mut l = machine();
    let gov = json!({ "id": "tx-9", "kind": "governance", "timestamp": "2026-03-02T08:00:00Z",
                      "governance": { "message": { "type": "vote" }, "signature": "c2ln" } });
    let answer = apply(&mut l, block(1, None, vec![gov]));
    assert!(
        matches!(&answer.results[0], TxResult::Refused { tx, refused } if tx == "tx-9" && refused.code == "malformed"),
        "{:?}",
        answer.results[0]
    );
}

#[test]
fn a_consent_changes_the_state_root() {
    let mut l = machine();
    let empty = apply(&mut l, block(1, None, vec![])).state_root.clone();
    let granted = apply(&mut l, block(2, None, vec![grant("tx-1", "consent/c-1")]))
        .state_root
        .clone();
    let revoked = apply(&mut l, block(3, None, vec![revoke("tx-2", "consent/c-1")]))
        .state_root
        .clone();
    assert_ne!(empty, granted);
    assert_ne!(granted, revoked);
    assert_ne!(
        empty, revoked,
        "a revoked consent is still part of the state"
    );
    assert!(empty.starts_with("sha256:"));
}

fn scenario() -> Vec<Vec<Value>> {
    vec![
        vec![read("tx-1"), grant("tx-2", "consent/c-1")],
        vec![share("tx-3"), revoke("tx-4", "consent/c-9")],
        vec![revoke("tx-5", "consent/c-1"), share("tx-6")],
    ]
}

#[test]
fn independent_ledgers_fed_the_same_blocks_agree() {
    let run = || {
        let mut l = machine();
        let mut previous: Option<String> = None;
        let mut answers = Vec::new();
        for (i, txs) in scenario().into_iter().enumerate() {
            let answer = apply(&mut l, block(1 + i as u64, previous.as_deref(), txs));
            previous = Some(answer.block_hash.clone());
            answers.push(answer);
        }
        (answers, l.state_root())
    };
    let (a, root_a) = run();
    let (b, root_b) = run();
    assert_eq!(a, b);
    assert_eq!(root_a, root_b);
    let json = |answers: &[Arc<BlockAnswer>]| -> Vec<String> {
        answers
            .iter()
            .flat_map(|a| a.results.iter())
            .filter_map(|o| match o {
                TxResult::Decided(d) => Some(d.to_json()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(json(&a), json(&b), "decision JSON is byte-identical");
    assert_eq!(json(&a).len(), 3);
}

#[test]
fn a_replay_with_reordered_keys_is_a_replay_not_a_conflict() {
    let mut l = machine();
    let txs = vec![grant("tx-1", "consent/c-1")];
    let first = apply(&mut l, block(1, None, txs));
    // The same consent with its keys written in another order (e.g. by another node's encoder).
    let reordered: Value = accord_engine::json::value_from_str(
        r#"{ "consent": { "period": { "end": "2027-02-01T00:00:00Z", "start": "2026-02-01T00:00:00Z" },
                          "data_categories": ["general"], "actions": ["read"], "purposes": ["HRESCH"],
                          "grantee": "org/uni-lab", "patient": "patient/d-4", "status": "active", "id": "consent/c-1" },
             "timestamp": "2026-02-01T09:00:00Z", "kind": "consent", "id": "tx-1" }"#,
    )
    .expect("valid JSON");
    assert_eq!(apply(&mut l, block(1, None, vec![reordered])), first);
}

#[test]
fn any_known_height_replays_its_answer_or_is_a_conflict() {
    // docs/contract.md §5: a replayed block returns the same answer, a conflicting block at a known height
    // is refused — not only for the last block.
    let mut l = machine();
    let first = apply(&mut l, block(1, None, vec![read("tx-1")]));
    apply(&mut l, block(2, None, vec![grant("tx-2", "consent/c-1")]));
    let root = l.state_root();
    assert_eq!(apply(&mut l, block(1, None, vec![read("tx-1")])), first);
    assert_eq!(
        refused(&mut l, block(1, None, vec![read("tx-other")])),
        BlockError::Conflict { height: 1 }
    );
    assert_eq!(l.state_root(), root, "replays and conflicts change nothing");
    assert_eq!(l.height(), Some(2));
}

#[test]
fn single_node_sequencing_makes_the_next_chained_block() {
    let mut l = machine();
    let first = l.sequence(vec![read("tx-1")]).expect("sequenced");
    assert_eq!(first.height, 1, "the first own block is height 1");
    let second = l
        .sequence(vec![grant("tx-2", "consent/c-1")])
        .expect("sequenced");
    assert_eq!(second.height, 2);
    // The same block, sent by a ledger with `previous` set, would be a replay of it.
    let again = block(
        2,
        Some(&first.block_hash),
        vec![grant("tx-2", "consent/c-1")],
    );
    assert_eq!(apply(&mut l, again), second);
    // A replay answers the very answer the node keeps, not a copy.
    assert!(Arc::ptr_eq(
        &apply(
            &mut l,
            block(
                2,
                Some(&first.block_hash),
                vec![grant("tx-2", "consent/c-1")]
            )
        ),
        &second
    ));
}

#[test]
fn long_runs_decided_in_parallel_keep_ledger_order_and_consent_positions() {
    // 2 × 40 accesses (enough to be split across threads) around one consent grant: the first run
    // is decided without the consent, the second with it, each decision in its own place.
    let mut txs: Vec<Value> = (0..40).map(|i| share(&format!("before-{i}"))).collect();
    txs.push(grant("tx-g", "consent/c-1"));
    txs.extend((0..40).map(|i| share(&format!("after-{i}"))));
    let mut l = machine();
    let answer = apply(&mut l, block(1, None, txs.clone()));
    assert_eq!(answer.results.len(), 81);
    for i in 0..40 {
        let d = decision(&answer, i);
        assert_eq!(d.tx, format!("before-{i}"));
        assert_eq!(d.decision, Effect::Deny, "no consent yet");
        let d = decision(&answer, 41 + i);
        assert_eq!(d.tx, format!("after-{i}"));
        assert_eq!(d.decision, Effect::Allow, "the grant precedes it");
    }
    // Identical to deciding them one by one.
    let mut single = machine();
    for (h, tx) in txs.into_iter().enumerate() {
        let one = apply(&mut single, block(h as u64 + 1, None, vec![tx]));
        assert_eq!(one.results[0], answer.results[h]);
    }
}

#[test]
fn an_answers_json_text_is_its_serialization_and_does_not_count_in_equality() {
    let mut l = machine();
    let answer = apply(
        &mut l,
        block(1, None, vec![read("tx-1"), grant("tx-2", "c")]),
    );
    let fresh = answer.as_ref().clone();
    let text = answer.to_json().to_owned();
    assert_eq!(text, serde_json::to_string(&*answer).expect("serializes"));
    // One with its text written and one without are the same answer.
    assert_eq!(*answer, fresh);
    let back: BlockAnswer = accord_engine::json::parse_str(&text).expect("parses");
    assert_eq!(back, *answer);
    assert_eq!(back.to_json(), text);
    // A long answer is serialized on every core, to the same text.
    let mut txs: Vec<Value> = (0..150).map(|i| share(&format!("a-{i}"))).collect();
    txs.push(grant("tx-g", "consent/c-1"));
    txs.push(revoke("tx-r", "consent/unknown"));
    txs.extend((0..150).map(|i| read(&format!("b-{i}"))));
    let long = apply(&mut l, block(2, None, txs));
    assert_eq!(long.results.len(), 302);
    assert!(
        matches!(&long.results[151], TxResult::Refused { .. }),
        "an unknown consent's revocation is refused: {:?}",
        long.results[151]
    );
    assert_eq!(
        long.to_json(),
        serde_json::to_string(&*long).expect("serializes")
    );
}

#[test]
fn the_decided_hook_sees_a_new_blocks_answer_before_it_is_returned_and_never_a_replays() {
    let mut l = machine();
    let b = block(1, None, vec![grant("tx-1", "consent/c-1"), share("tx-2")]);
    let mut seen = Vec::new();
    let answer = l
        .apply_prepared_with(b.clone().prepare(), |a| seen.push(a.clone()))
        .expect("applies");
    assert_eq!(seen, vec![answer.as_ref().clone()]);
    // A replay answers from what is known: nothing new was decided.
    let replay = l
        .apply_prepared_with(b.prepare(), |_| panic!("a replay decides nothing"))
        .expect("replays");
    assert_eq!(replay, answer);
    // Nor does a block refused before its transactions ran.
    let gap = l.apply_prepared_with(block(3, None, vec![read("tx-3")]).prepare(), |_| {
        panic!("a refused block decides nothing")
    });
    assert!(matches!(gap, Err(BlockError::OutOfOrder { .. })), "{gap:?}");
}

/// A parent's read of her child's record (US-CA): allowed only while the ledger names her as the
/// child's personal representative (45 CFR 164.502(g)).
fn parent_read(id: &str) -> Value {
    json!({ "id": id, "kind": "access", "timestamp": "2026-03-01T10:00:00Z",
            "actor": { "id": "related/maria", "type": "RelatedPerson", "jurisdiction": "US-CA" },
            "action": "read",
            "resource": { "id": "Immunization/imm-3", "type": "Immunization", "jurisdiction": "US-CA",
                          "patient": { "id": "patient/p-9", "birth_date": "2015-06-01" } },
            "context": { "purpose_of_use": "PATRQT" } })
}

fn representation(id: &str, status: &str) -> Value {
    let mut record = json!({ "id": "rep/maria-p9", "status": status, "patient": "patient/p-9" });
    if status == "active" {
        record["representative"] = json!("related/maria");
        record["basis"] = json!("parent");
    }
    json!({ "id": id, "kind": "representation", "timestamp": "2026-02-01T09:00:00Z",
            "representation": record })
}

#[test]
fn representations_apply_in_ledger_order_and_change_the_state_root() {
    let mut l = machine();
    let empty = l.state_root();
    let answer = apply(
        &mut l,
        block(
            1,
            None,
            vec![
                parent_read("tx-1"),
                representation("tx-2", "active"),
                parent_read("tx-3"),
                representation("tx-4", "revoked"),
                parent_read("tx-5"),
            ],
        ),
    );
    assert_eq!(
        decision(&answer, 0).decision,
        Effect::Deny,
        "not yet on the ledger"
    );
    assert_eq!(
        answer.results[1],
        TxResult::Applied {
            tx: "tx-2".into(),
            applied: Applied {
                kind: "representation".into(),
                id: "rep/maria-p9".into(),
                status: None,
            },
        }
    );
    assert_eq!(decision(&answer, 2).decision, Effect::Allow);
    assert_eq!(decision(&answer, 4).decision, Effect::Deny, "revoked");
    assert_ne!(answer.state_root, empty);
    assert!(l
        .consents()
        .relations()
        .representation("rep/maria-p9")
        .is_some());
}

#[test]
fn a_refused_representation_or_agreement_is_reported_and_changes_nothing() {
    let mut l = machine();
    let before = l.state_root();
    let incomplete = json!({ "id": "tx-2", "kind": "agreement", "timestamp": "2026-02-01T09:00:00Z",
        "agreement": { "id": "dua/1", "status": "active", "type": "data-use-agreement",
                       "discloser": "org/st-marys", "recipient": "org/uni-lab", "purposes": ["HRESCH"],
                       "assurances": ["safeguards"] } });
    let answer = apply(
        &mut l,
        block(1, None, vec![representation("tx-1", "revoked"), incomplete]),
    );
    let codes: Vec<&str> = answer
        .results
        .iter()
        .map(|r| match r {
            TxResult::Refused { refused, .. } => refused.code.as_str(),
            other => panic!("expected a refusal, got {other:?}"),
        })
        .collect();
    assert_eq!(codes, ["representation_refused", "agreement_refused"]);
    assert_eq!(answer.state_root, before);
}

#[test]
fn a_dry_run_answers_as_the_block_would_and_changes_nothing() {
    let mut l = machine();
    let b = block(
        1,
        None,
        vec![
            grant("tx-1", "consent/c-1"),
            share("tx-2"),
            revoke("tx-3", "consent/c-9"),
        ],
    );
    let root = l.state_root();
    let trial = l.dry_run(b.clone().prepare()).expect("dry run");
    assert_eq!(l.state_root(), root, "a dry run installs nothing");
    assert_eq!(l.height(), None);
    assert!(l.consents().is_empty());
    assert_eq!(l.work().preview_decisions, 0);
    let applied = apply(&mut l, b);
    assert_eq!(trial, *applied, "the trial's answer is the block's");
    assert_eq!(l.answer(1).expect("answer").as_deref(), Some(&*applied));
    assert_eq!(l.answer(2).expect("answer"), None);
}

#[test]
fn a_dry_run_of_another_height_is_out_of_order() {
    let mut l = machine();
    let err = l
        .dry_run(block(2, None, vec![]).prepare())
        .expect_err("height 2 before 1");
    assert_eq!(
        err,
        BlockError::OutOfOrder {
            expected: 1,
            got: 2
        }
    );
}
