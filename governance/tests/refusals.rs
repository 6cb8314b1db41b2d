//! Every refusal a governance message can meet: its stable code, a message that names what is
//! wrong, and state left exactly as it was (governance digest, proposal records and bundle store),
//! also when the refused message sits in a block between accepted ones.

use crate::common::*;
use accord_governance::machine::governance_digest;
use accord_governance::message::{signed_bytes, Change};
use accord_governance::{Envelope, GovernanceState, Refusal, StateMachine, Status, TxResult};
use serde_json::{json, Value};

/// Applies `env` expecting a refusal with `code`; checks that nothing changed.
fn refuse(state: &mut GovernanceState, env: &Envelope, height: u64, code: &str) -> String {
    let digest = governance_digest(state);
    let proposals = state.proposals.clone();
    let (membership, params, history, next_seq) = (
        state.membership.clone(),
        state.params.clone(),
        state.history.clone(),
        state.next_seq,
    );
    let err = state
        .apply(env, "tx-refused", height)
        .expect_err("the message should be refused");
    assert_eq!(err.code(), code, "wrong code for: {err}");
    assert_eq!(governance_digest(state), digest, "{code}: state changed");
    assert_eq!(
        state.proposals, proposals,
        "{code}: a proposal record changed"
    );
    assert_eq!(state.membership, membership);
    assert_eq!(state.params, params);
    assert_eq!(state.history, history);
    assert_eq!(state.next_seq, next_seq);
    err.to_string()
}

/// The dev state with one open proposal by st-marys (made at height 1) and its (id, content).
fn with_open_proposal() -> (GovernanceState, (String, String)) {
    let mut state = dev_state();
    let message = proposal_message(MEMBERS[0], "rename", &rename(MEMBERS[2], "City Lab"));
    let ids = ids_of(&message);
    apply(&mut state, &message, MEMBERS[0], 1).unwrap();
    (state, ids)
}

fn malformed(governance: Value) -> Refusal {
    Envelope::from_value(&governance).expect_err("should be malformed")
}

const ZERO_ID: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

// ---------------------------------------------------------------- who signs

#[test]
fn a_proposal_by_a_non_member_is_refused() {
    let mut state = dev_state();
    let stranger = numbered_key(1);
    let message = proposal_message("member/stranger", "t", &rename(MEMBERS[0], "x"));
    let text = refuse(
        &mut state,
        &envelope_with(&message, &stranger),
        1,
        "not_a_member",
    );
    assert_eq!(text, "`member/stranger` is not a member");
}

#[test]
fn a_vote_by_a_non_member_names_the_proposals_membership_snapshot() {
    let (mut state, ids) = with_open_proposal();
    let message = vote_message(&ids, "member/stranger", "yes");
    let text = refuse(
        &mut state,
        &envelope_with(&message, &numbered_key(1)),
        2,
        "not_a_member",
    );
    assert!(
        text.contains("member/stranger") && text.contains(&ids.0),
        "{text}"
    );
}

#[test]
fn a_tampered_message_fails_its_signature() {
    let (mut state, ids) = with_open_proposal();
    // Signed as "yes", delivered as "no".
    let mut governance = serde_json::to_value(
        accord_governance::message::sign(&vote_message(&ids, MEMBERS[1], "yes"), &key(MEMBERS[1]))
            .unwrap(),
    )
    .unwrap();
    governance["message"]["choice"] = json!("no");
    let env = Envelope::from_value(&governance).unwrap();
    let text = refuse(&mut state, &env, 2, "bad_signature");
    assert_eq!(
        text,
        "signature does not verify against `member/acme-insurance`'s key"
    );
}

#[test]
fn a_message_signed_with_another_members_key_is_refused() {
    let (mut state, ids) = with_open_proposal();
    // acme's vote signed with st-marys' key: st-marys cannot vote for acme.
    let env = envelope(&vote_message(&ids, MEMBERS[1], "yes"), MEMBERS[0]);
    let text = refuse(&mut state, &env, 2, "bad_signature");
    assert!(text.contains(MEMBERS[1]), "{text}");
}

// ---------------------------------------------------------------- where and when

#[test]
fn a_message_for_another_consortium_is_refused() {
    let (mut state, ids) = with_open_proposal();
    let mut message = vote_message(&ids, MEMBERS[1], "yes");
    message["consortium"] = json!("other-net");
    let text = refuse(
        &mut state,
        &envelope(&message, MEMBERS[1]),
        2,
        "wrong_consortium",
    );
    assert_eq!(
        text,
        "message is for consortium `other-net`, this is `health-net-dev`"
    );
}

#[test]
fn the_same_vote_twice_is_a_replay() {
    let (mut state, ids) = with_open_proposal();
    let env = envelope(&vote_message(&ids, MEMBERS[1], "no"), MEMBERS[1]);
    state.apply(&env, "tx-v", 2).unwrap();
    let text = refuse(&mut state, &env, 3, "replayed");
    assert!(text.contains(&env.digest()), "{text}");
    // The first vote is the one recorded, at its own height.
    assert_eq!(state.proposals[&ids.0].votes[MEMBERS[1]].height, 2);
}

#[test]
fn a_vote_on_an_unknown_proposal_is_refused() {
    let (mut state, ids) = with_open_proposal();
    let unknown = (ZERO_ID.to_owned(), ids.1.clone());
    let text = refuse(
        &mut state,
        &envelope(&vote_message(&unknown, MEMBERS[1], "yes"), MEMBERS[1]),
        2,
        "unknown_proposal",
    );
    assert_eq!(text, format!("no proposal {ZERO_ID}"));
}

#[test]
fn a_vote_on_a_decided_proposal_is_refused_as_closed() {
    let (mut state, ids) = with_open_proposal();
    apply(
        &mut state,
        &vote_message(&ids, MEMBERS[0], "yes"),
        MEMBERS[0],
        2,
    )
    .unwrap();
    apply(
        &mut state,
        &vote_message(&ids, MEMBERS[1], "yes"),
        MEMBERS[1],
        2,
    )
    .unwrap();
    assert_eq!(state.proposals[&ids.0].status, Status::Queued);
    let env = envelope(&vote_message(&ids, MEMBERS[2], "no"), MEMBERS[2]);
    let text = refuse(&mut state, &env, 2, "proposal_closed");
    assert_eq!(
        text,
        format!("proposal {} is queued, not open for voting", ids.0)
    );
}

#[test]
fn a_vote_after_the_window_is_refused_as_closed_before_and_after_expiry() {
    let (mut state, ids) = with_open_proposal();
    let ends = state.proposals[&ids.0].voting_ends;
    assert_eq!(ends, 11, "made at 1 with a 10-block window");
    let env = envelope(&vote_message(&ids, MEMBERS[1], "yes"), MEMBERS[1]);
    // At the first height past the window, even before the block start closes it.
    let text = refuse(&mut state, &env, ends, "proposal_closed");
    assert!(text.contains("past its voting window"), "{text}");
    state.begin_block(ends);
    assert_eq!(state.proposals[&ids.0].status, Status::Expired);
    let text = refuse(&mut state, &env, ends, "proposal_closed");
    assert!(text.ends_with("is expired, not open for voting"), "{text}");
}

#[test]
fn a_vote_on_a_cancelled_proposal_is_refused() {
    let (mut state, ids) = with_open_proposal();
    apply(
        &mut state,
        &cancel_message(&ids.0, MEMBERS[0]),
        MEMBERS[0],
        2,
    )
    .unwrap();
    let env = envelope(&vote_message(&ids, MEMBERS[1], "yes"), MEMBERS[1]);
    let text = refuse(&mut state, &env, 3, "proposal_cancelled");
    assert_eq!(text, format!("proposal {} was cancelled", ids.0));
    // Cancelling twice: the proposal is no longer voting.
    let again = envelope(
        &json!({ "type": "cancel", "consortium": CONSORTIUM, "proposal": ids.0,
                 "proposer": MEMBERS[0], }),
        MEMBERS[0],
    );
    // Same bytes as the first cancel: still refused, as cancelled.
    refuse(&mut state, &again, 3, "proposal_cancelled");
}

#[test]
fn a_vote_naming_other_content_is_refused() {
    // The Tornado Cash lesson: a vote counts only for the content the voter saw.
    let (mut state, ids) = with_open_proposal();
    let other = accord_governance::message::content_hash(&rename(MEMBERS[2], "Evil Lab"));
    let message = vote_message(&(ids.0.clone(), other.clone()), MEMBERS[1], "yes");
    let text = refuse(
        &mut state,
        &envelope(&message, MEMBERS[1]),
        2,
        "content_mismatch",
    );
    assert!(text.contains(&other) && text.contains(&ids.1), "{text}");
}

// ---------------------------------------------------------------- proposals

#[test]
fn the_same_proposal_twice_is_a_duplicate() {
    let mut state = dev_state();
    let message = proposal_message(MEMBERS[0], "rename", &rename(MEMBERS[2], "City Lab"));
    let env = envelope(&message, MEMBERS[0]);
    state.apply(&env, "tx-1", 1).unwrap();
    let text = refuse(&mut state, &env, 2, "duplicate_proposal");
    assert_eq!(
        text,
        format!("proposal {} already exists", ids_of(&message).0)
    );
    // A nonce makes the same content a new proposal (used to re-propose after a rejection).
    let mut again = message.clone();
    again["nonce"] = json!("second try");
    assert!(state
        .apply(&envelope(&again, MEMBERS[0]), "tx-2", 2)
        .is_ok());
}

#[test]
fn a_bundle_with_a_cedar_type_error_is_invalid() {
    let mut state = dev_state();
    let change = activate_edited(|files| {
        let cedar = files.get_mut("cedar/part2.cedar").unwrap();
        *cedar = cedar.replacen(
            "context.holder_regimes.contains(\"42-CFR-Part-2\")",
            "context.holder_regimes.contains(42)",
            1,
        );
    });
    let version = bundle_version(&change);
    let message = proposal_message(MEMBERS[0], "typo", &change);
    let text = refuse(
        &mut state,
        &envelope(&message, MEMBERS[0]),
        1,
        "invalid_bundle",
    );
    assert!(text.starts_with("proposed bundle is invalid: "), "{text}");
    assert!(text.contains("part2"), "names the file or module: {text}");
    assert!(
        !state.bundles.contains(&version),
        "a refused bundle is not stored"
    );
}

#[test]
fn a_bundle_with_a_policy_missing_its_citation_is_invalid() {
    let mut state = dev_state();
    let change = activate_edited(|files| {
        let cedar = files.get_mut("cedar/part2.cedar").unwrap();
        *cedar = cedar.replacen("@citation(\"42 CFR 2.51(a)\")\n", "", 1);
    });
    let message = proposal_message(MEMBERS[0], "no citation", &change);
    let text = refuse(
        &mut state,
        &envelope(&message, MEMBERS[0]),
        1,
        "invalid_bundle",
    );
    assert!(text.contains("citation"), "{text}");
}

#[test]
fn a_bundle_failing_its_own_test_cases_is_refused() {
    let mut state = dev_state();
    let change = activate_edited(|files| {
        let tests = files.get_mut("tests/gdpr.yaml").unwrap();
        *tests = tests.replacen(
            "expect: { decision: allow, citations: [\"GDPR Art. 9(2)(h)\"], rules: [health-care]",
            "expect: { decision: deny, citations: [\"GDPR Art. 9(2)(h)\"], rules: [health-care]",
            1,
        );
    });
    let version = bundle_version(&change);
    let message = proposal_message(MEMBERS[0], "wrong expectation", &change);
    let text = refuse(
        &mut state,
        &envelope(&message, MEMBERS[0]),
        1,
        "bundle_tests_failed",
    );
    assert!(
        text.starts_with("proposed bundle fails 1 of its own test cases: tests/gdpr.yaml: "),
        "{text}"
    );
    assert!(!state.bundles.contains(&version));
}

#[test]
fn only_the_proposer_may_cancel() {
    let (mut state, ids) = with_open_proposal();
    let env = envelope(&cancel_message(&ids.0, MEMBERS[1]), MEMBERS[1]);
    let text = refuse(&mut state, &env, 2, "not_proposer");
    assert_eq!(
        text,
        format!(
            "only the proposer `member/st-marys` may cancel proposal {}",
            ids.0
        )
    );
}

#[test]
fn the_open_proposal_cap_is_per_member_and_counts_open_proposals_only() {
    let mut state = dev_state();
    let mut first = None;
    for i in 0..3 {
        let message = proposal_message(
            MEMBERS[0],
            "rename",
            &rename(MEMBERS[2], &format!("Lab {i}")),
        );
        first.get_or_insert(ids_of(&message));
        apply(&mut state, &message, MEMBERS[0], 1).unwrap();
    }
    let fourth = proposal_message(MEMBERS[0], "rename", &rename(MEMBERS[2], "Lab 3"));
    let text = refuse(
        &mut state,
        &envelope(&fourth, MEMBERS[0]),
        1,
        "proposal_cap_reached",
    );
    assert_eq!(
        text,
        "`member/st-marys` already has 3 open proposals (cap 3)"
    );
    // Another member is not affected.
    let other = proposal_message(MEMBERS[1], "rename", &rename(MEMBERS[2], "Lab 3"));
    apply(&mut state, &other, MEMBERS[1], 1).unwrap();
    // Cancelling one frees a slot.
    let first = first.unwrap();
    apply(
        &mut state,
        &cancel_message(&first.0, MEMBERS[0]),
        MEMBERS[0],
        2,
    )
    .unwrap();
    assert!(apply(&mut state, &fourth, MEMBERS[0], 2).is_ok());
}

#[test]
fn a_rollback_to_an_unknown_version_is_refused() {
    let mut state = dev_state();
    let change: Change =
        serde_json::from_value(json!({ "kind": "rollback", "version": ZERO_ID })).unwrap();
    let message = proposal_message(MEMBERS[0], "rollback", &change);
    let text = refuse(
        &mut state,
        &envelope(&message, MEMBERS[0]),
        1,
        "unknown_version",
    );
    assert_eq!(
        text,
        format!("no earlier policy set with version {ZERO_ID}")
    );
}

#[test]
fn changes_that_could_never_apply_are_invalid() {
    let mut state = dev_state();
    let active = state.active_activation().version.clone();
    let weak_key = base64_of(&[0u8; 32]);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "kind": "add_member", "member": { "id": MEMBERS[1], "weight": 1, "name": "again",
                     "public_key": base64_of(&numbered_key(2).verifying_key().to_bytes()) } }),
            "already a member",
        ),
        (
            json!({ "kind": "add_member", "member": { "id": "member/zero", "weight": 0, "name": "z",
                     "public_key": base64_of(&numbered_key(2).verifying_key().to_bytes()) } }),
            "weight must be at least 1",
        ),
        (
            json!({ "kind": "add_member", "member": { "id": "nobody", "weight": 1, "name": "n",
                     "public_key": base64_of(&numbered_key(2).verifying_key().to_bytes()) } }),
            "must look like `member/<name>`",
        ),
        (
            json!({ "kind": "remove_member", "member": "member/nobody" }),
            "`member/nobody` is not a member",
        ),
        (
            json!({ "kind": "update_member", "member": MEMBERS[1] }),
            "changes nothing",
        ),
        (
            json!({ "kind": "update_member", "member": MEMBERS[1], "public_key": weak_key }),
            "small order",
        ),
        (
            json!({ "kind": "update_member", "member": MEMBERS[1], "weight": 0 }),
            "weight must be at least 1",
        ),
        (
            json!({ "kind": "update_member", "member": MEMBERS[1], "weight": u64::MAX }),
            "overflows",
        ),
        (
            json!({ "kind": "set_voting_params", "params": { "quorum": "0/1", "threshold": "1/2",
                     "voting_period": 10, "activation_delay": 2, "max_open_proposals": 3 } }),
            "field `message.change.params.quorum`: must be more than 0",
        ),
        (
            // A share above 1 is readable: it is an invalid change, not a malformed message.
            json!({ "kind": "set_voting_params", "params": { "quorum": "4/3", "threshold": "1/2",
                     "voting_period": 10, "activation_delay": 2, "max_open_proposals": 3 } }),
            "field `message.change.params.quorum`: `4/3`: a share cannot exceed 1",
        ),
        (
            json!({ "kind": "set_voting_params", "params": { "quorum": "1/2", "threshold": "1/0",
                     "voting_period": 10, "activation_delay": 2, "max_open_proposals": 3 } }),
            "field `message.change.params.threshold`: `1/0`: the denominator must be positive",
        ),
        (
            json!({ "kind": "set_voting_params", "params": { "quorum": "1/2", "threshold": "1/2",
                     "voting_period": 10, "activation_delay": 0, "max_open_proposals": 3 } }),
            "field `message.change.params.activation_delay`: must be at least 1 block",
        ),
        (
            json!({ "kind": "rollback", "version": active }),
            "is the active policy set already",
        ),
        (
            serde_json::to_value(Change::ActivateBundle {
                bundle: default_bundle_files(),
            })
            .unwrap(),
            "is the active policy set already",
        ),
        (
            json!({ "kind": "set_jurisdiction_parameters", "jurisdiction": "XX",
                     "parameters": { "a": 1 } }),
            "the active bundle has no jurisdiction `XX`",
        ),
        (
            json!({ "kind": "set_jurisdiction_parameters", "jurisdiction": "EU",
                     "parameters": {} }),
            "no parameters given",
        ),
    ];
    for (change, expect) in cases {
        let change: Change = serde_json::from_value(change).unwrap();
        let message = proposal_message(MEMBERS[0], "bad", &change);
        let text = refuse(
            &mut state,
            &envelope(&message, MEMBERS[0]),
            1,
            "invalid_change",
        );
        assert!(text.starts_with("invalid change: "), "{text}");
        assert!(text.contains(expect), "{change:?}: {text}");
    }
}

// ---------------------------------------------------------------- malformed

#[test]
fn malformed_messages_name_the_field() {
    let (_, ids) = with_open_proposal();
    let good = sign_value(&vote_message(&ids, MEMBERS[1], "yes"), MEMBERS[1]);

    let mut missing = good.clone();
    missing["message"].as_object_mut().unwrap().remove("choice");
    let err = malformed(missing);
    assert_eq!(err.code(), "malformed");
    assert!(err.to_string().contains("choice"), "{err}");

    let mut unknown_field = good.clone();
    unknown_field["message"]["weight"] = json!(5);
    let err = malformed(unknown_field);
    assert!(err.to_string().contains("weight"), "{err}");

    let mut bad_choice = good.clone();
    bad_choice["message"]["choice"] = json!("maybe");
    assert!(malformed(bad_choice).to_string().contains("maybe"));

    let mut bad_type = good.clone();
    bad_type["message"]["type"] = json!("veto");
    assert_eq!(malformed(bad_type).code(), "malformed");

    // A floating-point number anywhere is refused (canonical bytes must not depend on float
    // printing), with its path.
    let change: Change = serde_json::from_value(json!({
        "kind": "set_jurisdiction_parameters", "jurisdiction": "EU",
        "parameters": { "breach_hours": 72.5 } }))
    .unwrap();
    let message = proposal_message(MEMBERS[0], "float", &change);
    let float = json!({ "message": message, "signature": good["signature"] });
    let err = malformed(float);
    assert_eq!(
        err,
        Refusal::Malformed {
            field: "message.change.parameters.breach_hours".into(),
            reason: "floating-point numbers are not allowed in governance messages".into()
        }
    );

    // A message that is not an object is `message`, not `message.` plus an empty path.
    let mut not_an_object = good.clone();
    not_an_object["message"] = json!("vote yes");
    let err = malformed(not_an_object);
    assert_eq!(err.field(), Some("message"), "{err}");
    assert!(err.to_string().starts_with("field `message`: "), "{err}");

    let mut not_base64 = good.clone();
    not_base64["signature"] = json!("not base64!");
    let err = malformed(not_base64);
    assert!(
        err.to_string().starts_with("field `signature`: not base64"),
        "{err}"
    );

    let mut short = good.clone();
    short["signature"] = json!(base64_of(&[7u8; 10]));
    assert_eq!(
        malformed(short).to_string(),
        "field `signature`: 10 bytes, expected 64"
    );

    let mut no_signature = good.clone();
    no_signature.as_object_mut().unwrap().remove("signature");
    assert!(malformed(no_signature).to_string().contains("signature"));
}

// ---------------------------------------------------------------- no replay across contexts

#[test]
fn a_signature_is_bound_to_its_consortium_proposal_and_message_type() {
    let mut state = dev_state();
    let a = proposal_message(MEMBERS[0], "a", &rename(MEMBERS[2], "A"));
    let b = proposal_message(MEMBERS[0], "b", &rename(MEMBERS[2], "B"));
    let (ia, ib) = (ids_of(&a), ids_of(&b));
    apply(&mut state, &a, MEMBERS[0], 1).unwrap();
    apply(&mut state, &b, MEMBERS[0], 1).unwrap();

    // A vote signed for another consortium, presented as ours.
    let mut foreign = vote_message(&ia, MEMBERS[1], "yes");
    foreign["consortium"] = json!("other-net");
    let mut moved = sign_value(&foreign, MEMBERS[1]);
    moved["message"]["consortium"] = json!(CONSORTIUM);
    refuse(&mut state, &parse(&moved), 2, "bad_signature");

    // A vote on proposal a, moved to proposal b (same voter and choice).
    let mut moved = sign_value(&vote_message(&ia, MEMBERS[1], "yes"), MEMBERS[1]);
    moved["message"] = vote_message(&ib, MEMBERS[1], "yes");
    refuse(&mut state, &parse(&moved), 2, "bad_signature");

    // A cancel's signature under a vote, and a vote's under a cancel: the type is signed.
    let cancel = cancel_message(&ia.0, MEMBERS[0]);
    let vote = vote_message(&ia, MEMBERS[0], "no");
    let mut moved = sign_value(&cancel, MEMBERS[0]);
    moved["message"] = vote.clone();
    refuse(&mut state, &parse(&moved), 2, "bad_signature");
    let mut moved = sign_value(&vote, MEMBERS[0]);
    moved["message"] = cancel.clone();
    refuse(&mut state, &parse(&moved), 2, "bad_signature");

    // Same fields, different type: the signed bytes differ.
    let mut as_other_type = cancel.clone();
    as_other_type["type"] = json!("proposal");
    assert_ne!(
        signed_bytes(&cancel).unwrap(),
        signed_bytes(&as_other_type).unwrap()
    );
    // Both proposals are still open with no votes.
    assert!(state
        .proposals
        .values()
        .all(|p| p.status == Status::Voting && p.votes.is_empty()));
}

// ---------------------------------------------------------------- in a block

#[test]
fn refused_transactions_in_a_block_leave_the_rest_of_the_block_applied_and_nothing_else() {
    let (genesis, bundle) = genesis();
    let proposal = proposal_message(MEMBERS[0], "rename", &rename(MEMBERS[2], "City Lab"));
    let ids = ids_of(&proposal);
    let mut bad_sig = signed("g-bad", vote_message(&ids, MEMBERS[1], "no"), MEMBERS[0]);
    bad_sig["id"] = json!("g-bad");
    let mut not_base64 = signed("g-b64", vote_message(&ids, MEMBERS[2], "no"), MEMBERS[2]);
    not_base64["governance"]["signature"] = json!("???");
    let good = [
        signed("g-1", proposal.clone(), MEMBERS[0]),
        signed("g-2", vote_message(&ids, MEMBERS[0], "yes"), MEMBERS[0]),
    ];
    let refused = [
        bad_sig,
        not_base64,
        signed_with(
            "g-stranger",
            vote_message(&ids, "member/stranger", "no"),
            &numbered_key(3),
        ),
        signed("g-dup", proposal.clone(), MEMBERS[0]),
    ];
    let mut with = StateMachine::new(&genesis, bundle.clone());
    let mut without = StateMachine::new(&genesis, bundle.clone());
    let mut txs = vec![good[0].clone()];
    txs.extend(refused.iter().cloned());
    txs.push(good[1].clone());
    let answer = with.apply_block(block(1, txs)).unwrap();
    without.apply_block(block(1, good.to_vec())).unwrap();
    let codes: Vec<(String, String)> = answer
        .results
        .iter()
        .filter_map(|r| match r {
            TxResult::Refused { tx, refused } => Some((tx.clone(), refused.code.clone())),
            _ => None,
        })
        .collect();
    let expect = [
        ("g-bad", "bad_signature"),
        ("g-b64", "malformed"),
        ("g-stranger", "not_a_member"),
        ("g-dup", "duplicate_proposal"),
    ];
    assert_eq!(
        codes,
        expect
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        with.state_root(),
        without.state_root(),
        "refused transactions change nothing"
    );
    let p = &with.governance().proposals[&ids.0];
    assert_eq!((p.tally.yes, p.tally.no), (1, 0));
}

// ---------------------------------------------------------------- helpers

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sign_value(message: &Value, signer: &str) -> Value {
    serde_json::to_value(accord_governance::message::sign(message, &key(signer)).unwrap()).unwrap()
}

fn parse(governance: &Value) -> Envelope {
    Envelope::from_value(governance).unwrap()
}

fn bundle_version(change: &Change) -> String {
    let Change::ActivateBundle { bundle } = change else {
        panic!("not a bundle");
    };
    accord_engine::BundleFiles::new(
        bundle
            .iter()
            .map(|(p, t)| (p.clone(), t.clone().into_bytes()))
            .collect(),
    )
    .version()
}

// ---------------------------------------------------------------- base

#[test]
fn a_change_of_shared_state_names_the_state_in_force() {
    let mut state = dev_state();
    let (genesis, bundle) = genesis();
    let tighten = proposal_message(MEMBERS[0], "tighten", &drop_uruguay_adequacy());
    let rules: Change = serde_json::from_value(json!({ "kind": "set_voting_params",
        "params": { "quorum": "1/2", "threshold": "1/2", "voting_period": 12,
                    "activation_delay": 2, "max_open_proposals": 3 } }))
    .unwrap();
    let rules = proposal_message(MEMBERS[0], "rules", &rules);
    assert_eq!(tighten["base"], json!(bundle.version()));
    assert_eq!(rules["base"], json!(genesis.voting.digest()));
    // Missing: the refusal names the state in force.
    for (message, current) in [
        (&tighten, bundle.version().to_owned()),
        (&rules, genesis.voting.digest()),
    ] {
        let mut unbased = message.clone();
        unbased.as_object_mut().unwrap().remove("base");
        let text = refuse(
            &mut state,
            &envelope(&unbased, MEMBERS[0]),
            1,
            "missing_base",
        );
        assert!(text.contains(&current), "{text}");
        // Stale: another version or other rules.
        let stale = with_base(message.clone(), "sha256:0000");
        let text = refuse(&mut state, &envelope(&stale, MEMBERS[0]), 1, "stale_base");
        assert!(
            text.contains("built on") && text.contains("sha256:0000") && text.contains(&current),
            "{text}"
        );
    }
    // The two bases are not interchangeable.
    let crossed = with_base(tighten.clone(), &genesis.voting.digest());
    refuse(&mut state, &envelope(&crossed, MEMBERS[0]), 1, "stale_base");
    // A membership change names no base.
    let rename = with_base(
        proposal_message(MEMBERS[0], "rename", &rename(MEMBERS[2], "City Lab")),
        bundle.version(),
    );
    let err = state
        .apply(&envelope(&rename, MEMBERS[0]), "tx", 1)
        .expect_err("refused");
    assert_eq!(
        (err.code(), err.field()),
        ("unexpected_base", Some("message.base"))
    );
    // Named right, each is accepted.
    for message in [&tighten, &rules] {
        state
            .apply(&envelope(message, MEMBERS[0]), "tx", 1)
            .expect("accepted");
    }
}
