use super::*;
use crate::decision::Effect;
use crate::testing;
use serde_json::json;

fn ledger() -> Ledger {
    Ledger::new(Arc::new(testing::bundle()))
}

fn block(height: u64, previous: Option<&str>, transactions: Vec<Value>) -> Block {
    Block {
        height,
        previous: previous.map(str::to_owned),
        transactions,
    }
}

/// The fixture's treatment read (allowed), with id `id`.
fn read(id: &str) -> Value {
    crate::cases::deep_merge(testing::access_json(), json!({ "id": id }))
}

/// org/st-marys shares patient/p-1's general record with org/uni-lab for research. In the fixture
/// only `consented-share` can permit it, and only with a consent covering the record's categories.
fn share(id: &str) -> Value {
    crate::cases::deep_merge(
        testing::access_json(),
        json!({ "id": id, "action": "share",
                "context": { "purpose_of_use": "HRESCH", "treating_relationship": false,
                             "recipient": { "id": "org/uni-lab", "type": "Organization", "country": "US" } } }),
    )
}

fn grant(id: &str, consent_id: &str) -> Value {
    json!({ "id": id, "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
            "consent": { "id": consent_id, "status": "active", "patient": "patient/p-1",
                         "grantee": "org/uni-lab", "purposes": ["HRESCH"], "actions": ["share"],
                         "data_categories": ["general"],
                         "period": { "start": "2026-02-01T00:00:00Z", "end": "2027-02-01T00:00:00Z" } } })
}

fn revoke(id: &str, consent_id: &str) -> Value {
    json!({ "id": id, "kind": "consent", "timestamp": "2026-02-15T09:00:00Z",
            "consent": { "id": consent_id, "status": "revoked", "patient": "patient/p-1" } })
}

fn apply(ledger: &mut Ledger, block: Block) -> BlockAnswer {
    let height = block.height;
    ledger
        .apply(block)
        .unwrap_or_else(|e| panic!("block {height} must apply: {e}"))
}

fn decision(answer: &BlockAnswer, index: usize) -> &Decision {
    match &answer.outcomes[index] {
        TxOutcome::Decided(d) => d,
        other => panic!("outcome {index} must be a decision, got {other:?}"),
    }
}

fn refused(ledger: &mut Ledger, block: Block) -> LedgerError {
    let root = ledger.state_root();
    let height = ledger.height();
    let err = match ledger.apply(block) {
        Ok(a) => panic!("block must be refused, got {a:?}"),
        Err(e) => e,
    };
    assert_eq!(
        ledger.state_root(),
        root,
        "a refused block must leave the state unchanged"
    );
    assert_eq!(ledger.height(), height);
    err
}

#[test]
fn the_first_block_may_have_any_height() {
    let mut l = ledger();
    assert_eq!(l.height(), None);
    let answer = apply(&mut l, block(42, None, vec![read("tx-1")]));
    assert_eq!(answer.height, 42);
    assert_eq!(l.height(), Some(42));
    assert_eq!(decision(&answer, 0).decision, Effect::Allow);
    assert_eq!(decision(&answer, 0).tx, "tx-1");
    assert_eq!(
        answer.block_hash,
        block(42, None, vec![read("tx-1")]).hash()
    );
    assert_eq!(answer.state_root, l.state_root());
}

#[test]
fn an_empty_first_block_with_a_previous_hash_is_accepted() {
    // There is nothing to compare `previous` against before the first block.
    let mut l = ledger();
    let answer = apply(&mut l, block(7, Some("sha256:whatever"), vec![]));
    assert!(answer.outcomes.is_empty());
}

#[test]
fn a_gap_or_an_old_height_is_refused_out_of_order() {
    let mut l = ledger();
    apply(&mut l, block(42, None, vec![grant("tx-1", "consent/c-1")]));
    let gap = refused(&mut l, block(44, None, vec![grant("tx-2", "consent/c-2")]));
    assert_eq!(
        gap,
        LedgerError::OutOfOrder {
            expected: 43,
            got: 44
        }
    );
    let old = refused(&mut l, block(41, None, vec![]));
    assert_eq!(
        old,
        LedgerError::OutOfOrder {
            expected: 43,
            got: 41
        }
    );
    assert_eq!(
        l.consents().len(),
        1,
        "the refused block's consent was not applied"
    );
    insta::assert_snapshot!(format!("{gap}\n{old}"));
    // The next height still applies.
    apply(&mut l, block(43, None, vec![]));
}

#[test]
fn a_replayed_block_returns_the_same_answer_without_reapplying() {
    let mut l = ledger();
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
    let mut l = ledger();
    apply(&mut l, block(1, None, vec![read("tx-1")]));
    let err = refused(&mut l, block(1, None, vec![grant("tx-2", "consent/c-1")]));
    assert_eq!(err, LedgerError::Conflict { height: 1 });
    assert!(l.consents().is_empty());
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn previous_must_match_the_last_block_hash_when_given() {
    let mut l = ledger();
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
        LedgerError::PreviousMismatch {
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
    let mut l = ledger();
    apply(&mut l, block(1, None, vec![]));
    let bad = crate::cases::deep_merge(read("tx-3"), json!({ "actor": { "type": "Nurse" } }));
    // The consent before the bad transaction must not be applied either: a block is all or nothing.
    let err = refused(
        &mut l,
        block(2, None, vec![grant("tx-2", "consent/c-1"), bad]),
    );
    match &err {
        LedgerError::Transaction(e) => assert_eq!(e.field, "transactions[1].actor.type"),
        other => panic!("expected a transaction error, got {other:?}"),
    }
    assert!(l.consents().is_empty());
    insta::assert_snapshot!(err.to_string());
    // The refused block did not take height 2.
    apply(&mut l, block(2, None, vec![]));
}

#[test]
fn a_transaction_without_kind_is_named_by_its_place() {
    let mut l = ledger();
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
    let mut l = ledger();
    let answer = apply(
        &mut l,
        block(1, None, vec![grant("tx-1", "consent/c-1"), share("tx-2")]),
    );
    assert_eq!(answer.outcomes[0], TxOutcome::Applied { tx: "tx-1".into() });
    let d = decision(&answer, 1);
    assert_eq!(d.decision, Effect::Allow, "{}", d.to_json());
    assert_eq!(d.reasons[0].rule, "consented-share");
    assert_eq!(d.reasons[0].citation, "45 CFR 164.508(a)(1)");
}

#[test]
fn a_consent_later_in_the_block_does_not_cover_an_earlier_access() {
    // CONTRACT §3: transactions apply in ledger order; a disclosure made before the authorization
    // existed was not authorized, even if both are in one block.
    let mut l = ledger();
    let answer = apply(
        &mut l,
        block(1, None, vec![share("tx-1"), grant("tx-2", "consent/c-1")]),
    );
    let d = decision(&answer, 0);
    assert_eq!(d.decision, Effect::Deny, "{}", d.to_json());
    assert_eq!(answer.outcomes[1], TxOutcome::Applied { tx: "tx-2".into() });
    // From the next block on the consent is in force.
    let next = apply(&mut l, block(2, None, vec![share("tx-3")]));
    assert_eq!(decision(&next, 0).decision, Effect::Allow);
}

#[test]
fn a_revoked_consent_no_longer_covers() {
    // GDPR Art. 7(3) / 45 CFR 164.508(b)(5): revocation applies from that point on.
    let mut l = ledger();
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
    assert_eq!(answer.outcomes[2], TxOutcome::Applied { tx: "tx-3".into() });
    assert_eq!(decision(&answer, 3).decision, Effect::Deny);
    let later = apply(&mut l, block(2, None, vec![share("tx-5")]));
    assert_eq!(decision(&later, 0).decision, Effect::Deny);
}

#[test]
fn a_rejected_consent_is_reported_and_the_block_still_applies() {
    let mut l = ledger();
    let before = l.state_root();
    let answer = apply(
        &mut l,
        block(1, None, vec![revoke("tx-1", "consent/c-9"), read("tx-2")]),
    );
    match &answer.outcomes[0] {
        TxOutcome::Rejected { tx, reason } => {
            assert_eq!(tx, "tx-1");
            assert!(reason.contains("consent/c-9"), "{reason}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(decision(&answer, 1).decision, Effect::Allow);
    assert_eq!(l.height(), Some(1));
    assert_eq!(
        answer.state_root, before,
        "the rejected consent changed nothing"
    );
}

#[test]
fn governance_without_genesis_is_rejected_not_refused() {
    let mut l = ledger();
    let gov = json!({ "id": "tx-9", "kind": "governance", "timestamp": "2026-03-02T08:00:00Z",
                      "governance": { "message": { "type": "vote" }, "signature": "c2ln" } });
    let answer = apply(&mut l, block(1, None, vec![gov]));
    assert!(matches!(&answer.outcomes[0], TxOutcome::Rejected { tx, .. } if tx == "tx-9"));
}

#[test]
fn a_consent_changes_the_state_root() {
    let mut l = ledger();
    let empty = apply(&mut l, block(1, None, vec![])).state_root;
    let granted = apply(&mut l, block(2, None, vec![grant("tx-1", "consent/c-1")])).state_root;
    let revoked = apply(&mut l, block(3, None, vec![revoke("tx-2", "consent/c-1")])).state_root;
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
        let mut l = ledger();
        let mut previous: Option<String> = None;
        let mut answers = Vec::new();
        for (i, txs) in scenario().into_iter().enumerate() {
            let answer = apply(&mut l, block(10 + i as u64, previous.as_deref(), txs));
            previous = Some(answer.block_hash.clone());
            answers.push(answer);
        }
        (answers, l.state_root())
    };
    let (a, root_a) = run();
    let (b, root_b) = run();
    assert_eq!(a, b);
    assert_eq!(root_a, root_b);
    let json = |answers: &[BlockAnswer]| -> Vec<String> {
        answers
            .iter()
            .flat_map(|a| a.outcomes.iter())
            .filter_map(|o| match o {
                TxOutcome::Decided(d) => Some(d.to_json()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(json(&a), json(&b), "decision JSON is byte-identical");
    assert_eq!(json(&a).len(), 3);
}

#[test]
fn canonical_json_sorts_keys_at_every_level() {
    let value: Value = serde_json::from_str(
        r#"{ "b": 1, "a": { "z": [ { "y": true, "x": null } ], "c": "é\"" }, "A": 2.5 }"#,
    )
    .expect("valid JSON");
    assert_eq!(
        canonical_json(&value),
        r#"{"A":2.5,"a":{"c":"é\"","z":[{"x":null,"y":true}]},"b":1}"#
    );
}

#[test]
fn block_hash_does_not_depend_on_key_order() {
    let one = r#"{ "height": 3, "previous": "sha256:ab",
                   "transactions": [ { "id": "tx-1", "kind": "consent", "consent": { "id": "c", "patient": "p" } } ] }"#;
    let two = r#"{ "transactions": [ { "consent": { "patient": "p", "id": "c" }, "kind": "consent", "id": "tx-1" } ],
                   "previous": "sha256:ab", "height": 3 }"#;
    let parse = |text: &str| {
        Block::from_value(serde_json::from_str(text).expect("valid JSON")).expect("valid block")
    };
    let (a, b) = (parse(one), parse(two));
    assert_eq!(a.hash(), b.hash());
    assert!(a.hash().starts_with("sha256:"));
    // Content still counts: another height, another previous, another value differ.
    let mut c = a.clone();
    c.height = 4;
    assert_ne!(a.hash(), c.hash());
    let mut d = a.clone();
    d.previous = None;
    assert_ne!(a.hash(), d.hash());
    let e = parse(&one.replace("\"p\"", "\"q\""));
    assert_ne!(a.hash(), e.hash());
}

#[test]
fn a_replay_with_reordered_keys_is_a_replay_not_a_conflict() {
    let mut l = ledger();
    let txs = vec![grant("tx-1", "consent/c-1")];
    let first = apply(&mut l, block(1, None, txs));
    // The same consent with its keys written in another order (e.g. by another node's encoder).
    let reordered: Value = serde_json::from_str(
        r#"{ "consent": { "period": { "end": "2027-02-01T00:00:00Z", "start": "2026-02-01T00:00:00Z" },
                          "data_categories": ["general"], "actions": ["share"], "purposes": ["HRESCH"],
                          "grantee": "org/uni-lab", "patient": "patient/p-1", "status": "active", "id": "consent/c-1" },
             "timestamp": "2026-02-01T09:00:00Z", "kind": "consent", "id": "tx-1" }"#,
    )
    .expect("valid JSON");
    assert_eq!(apply(&mut l, block(1, None, vec![reordered])), first);
}

#[test]
fn block_from_value_is_strict() {
    let unknown = Block::from_value(json!({ "height": 1, "transactions": [], "hash": "x" }))
        .expect_err("unknown field");
    assert_eq!(unknown.field, "hash");
    let missing = Block::from_value(json!({ "height": 1 })).expect_err("missing transactions");
    let negative = Block::from_value(json!({ "height": -1, "transactions": [] }))
        .expect_err("negative height");
    assert_eq!(negative.field, "height");
    insta::assert_snapshot!(format!("{unknown}\n{missing}\n{negative}"));
}

#[test]
fn any_known_height_replays_its_answer_or_is_a_conflict() {
    // CONTRACT §5: a replayed block returns the same answer, a conflicting block at a known height
    // is refused — not only for the last block.
    let mut l = ledger();
    let first = apply(&mut l, block(1, None, vec![read("tx-1")]));
    apply(&mut l, block(2, None, vec![grant("tx-2", "consent/c-1")]));
    let root = l.state_root();
    assert_eq!(apply(&mut l, block(1, None, vec![read("tx-1")])), first);
    assert_eq!(
        refused(&mut l, block(1, None, vec![read("tx-other")])),
        LedgerError::Conflict { height: 1 }
    );
    assert_eq!(l.state_root(), root, "replays and conflicts change nothing");
    assert_eq!(l.height(), Some(2));
}
