//! Hybrid signatures (genesis `signature_scheme: ed25519+ml-dsa-65`): every member has an ML-DSA-65
//! key, every message carries both signatures, and a message missing one, or with either failing,
//! is refused `bad_signature`. Under `ed25519`, an ML-DSA-65 signature is optional but checked.

use crate::common::*;
use accord_governance::message::{sign, Change};
use accord_governance::{
    Envelope, Genesis, GovernanceState, KeyFile, Refusal, SignatureFault, SignatureScheme,
    StateMachine, Status,
};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::Path;

/// Member `i` of the test consortium: `member/h<i>`.
fn id(i: u64) -> String {
    format!("member/h{i}")
}

/// Member `i`'s hybrid key file (test keys only).
fn hybrid_key(i: u64) -> KeyFile {
    KeyFile::new(numbered_key(i), Some(id(i))).with_ml_dsa_seed([i as u8 + 0x60; 32])
}

fn member(i: u64, key: &KeyFile) -> accord_governance::member::Member {
    let mut m = member_with(&id(i), key.signing_key(), 1);
    m.ml_dsa_public_key = key.ml_dsa_public_key().map(str::to_owned);
    m
}

/// Three members of weight 1 with hybrid keys; quorum and threshold 1/2, so two yes votes pass a
/// proposal early.
fn hybrid_genesis(scheme: SignatureScheme) -> Genesis {
    let members = (0..3).map(|i| member(i, &hybrid_key(i))).collect();
    let mut genesis = custom_genesis(members, voting((1, 2), (1, 2), 10, 1, 3));
    genesis.signature_scheme = scheme;
    genesis
}

fn state(scheme: SignatureScheme) -> GovernanceState {
    let (_, bundle) = genesis();
    GovernanceState::from_genesis(&hybrid_genesis(scheme), bundle)
}

fn parse(signed: &impl serde::Serialize) -> Envelope {
    Envelope::from_value(&serde_json::to_value(signed).unwrap()).unwrap()
}

/// `message` signed with both of member `i`'s keys.
fn both(message: &Value, i: u64) -> Envelope {
    parse(&hybrid_key(i).sign(message).unwrap())
}

/// `message` signed with member `i`'s ed25519 key alone.
fn ed25519_only(message: &Value, i: u64) -> Envelope {
    parse(&sign(message, hybrid_key(i).signing_key()).unwrap())
}

fn proposal() -> Value {
    proposal_message(&id(0), "rename", &rename(&id(2), "Lab"))
}

fn fault(result: Result<accord_governance::state::Accepted, Refusal>) -> SignatureFault {
    match result {
        Err(Refusal::BadSignature { fault, .. }) => fault,
        other => panic!("expected bad_signature, got {other:?}"),
    }
}

/// `message`'s hybrid signature with `edit` applied to the ML-DSA signature's bytes.
fn with_ml_dsa_signature(message: &Value, i: u64, edit: impl FnOnce(&mut Vec<u8>)) -> Envelope {
    let mut signed = hybrid_key(i).sign(message).unwrap();
    let mut raw = BASE64.decode(signed.ml_dsa_signature.unwrap()).unwrap();
    edit(&mut raw);
    signed.ml_dsa_signature = Some(BASE64.encode(raw));
    parse(&signed)
}

#[test]
fn a_proposal_passes_with_hybrid_votes_and_an_ed25519_only_vote_is_refused() {
    let mut s = state(SignatureScheme::Hybrid);
    let message = proposal();
    let ids = ids_of(&message);
    // The proposal itself needs both signatures.
    let refused = s.apply(&ed25519_only(&message, 0), "tx-0", 1);
    assert_eq!(fault(refused.clone()), SignatureFault::MlDsaMissing);
    let words = refused.unwrap_err().to_string();
    assert!(words.contains("`ml_dsa_signature` is missing"), "{words}");
    assert!(words.contains("`member/h0`"), "{words}");
    s.apply(&both(&message, 0), "tx-1", 1).unwrap();

    // An ed25519-only vote counts for nothing.
    let vote = vote_message(&ids, &id(1), "yes");
    let refused = s.apply(&ed25519_only(&vote, 1), "tx-2", 2);
    assert_eq!(fault(refused), SignatureFault::MlDsaMissing);
    assert!(s.proposals[&ids.0].votes.is_empty());

    s.apply(&both(&vote_message(&ids, &id(0), "yes"), 0), "tx-3", 2)
        .unwrap();
    let accepted = s.apply(&both(&vote, 1), "tx-4", 3).unwrap();
    assert_eq!(
        accepted,
        accord_governance::state::Accepted::Voted {
            proposal: ids.0.clone(),
            status: Status::Queued
        }
    );
    assert_eq!(s.begin_block(4), vec![ids.0.clone()]);
    assert_eq!(s.proposals[&ids.0].status, Status::Active);
    assert_eq!(s.membership.get(&id(2)).unwrap().name, "Lab");
}

#[test]
fn under_hybrid_either_signature_failing_is_refused_and_says_which() {
    let mut s = state(SignatureScheme::Hybrid);
    let message = proposal();
    // The ML-DSA signature with one bit flipped.
    let flipped = with_ml_dsa_signature(&message, 0, |raw| raw[100] ^= 0x01);
    assert_eq!(fault(s.apply(&flipped, "tx", 1)), SignatureFault::MlDsa);
    // A valid ML-DSA signature of the same message by another member's key.
    let mut signed = hybrid_key(0).sign(&message).unwrap();
    signed.ml_dsa_signature = hybrid_key(1).sign(&message).unwrap().ml_dsa_signature;
    let refused = s.apply(&parse(&signed), "tx", 1);
    assert_eq!(fault(refused.clone()), SignatureFault::MlDsa);
    let words = refused.unwrap_err().to_string();
    assert!(
        words.contains("`ml_dsa_signature` does not verify against `member/h0`'s ML-DSA-65 key"),
        "{words}"
    );
    // A valid ML-DSA signature beside a bad ed25519 one.
    let mut signed = hybrid_key(0).sign(&message).unwrap();
    signed.signature = sign(&message, hybrid_key(1).signing_key())
        .unwrap()
        .signature;
    let refused = s.apply(&parse(&signed), "tx", 1);
    assert_eq!(fault(refused.clone()), SignatureFault::Ed25519);
    assert_eq!(refused.unwrap_err().code(), "bad_signature");
    // An ML-DSA signature of another message (the same proposal for another consortium).
    let mut elsewhere = message.clone();
    elsewhere["consortium"] = json!("other-consortium");
    let mut signed = hybrid_key(0).sign(&message).unwrap();
    signed.ml_dsa_signature = hybrid_key(0).sign(&elsewhere).unwrap().ml_dsa_signature;
    assert_eq!(
        fault(s.apply(&parse(&signed), "tx", 1)),
        SignatureFault::MlDsa
    );
    assert!(s.proposals.is_empty(), "nothing was applied");
}

#[test]
fn under_ed25519_an_ml_dsa_signature_is_optional_but_checked() {
    let mut s = state(SignatureScheme::Ed25519);
    let message = proposal();
    let ids = ids_of(&message);
    // ed25519 alone suffices.
    s.apply(&ed25519_only(&message, 0), "tx-1", 1).unwrap();
    // A hybrid vote is checked: a bad ML-DSA signature is refused, a good one accepted.
    let vote = vote_message(&ids, &id(1), "yes");
    let flipped = with_ml_dsa_signature(&vote, 1, |raw| raw[0] ^= 0x80);
    assert_eq!(fault(s.apply(&flipped, "tx-2", 2)), SignatureFault::MlDsa);
    s.apply(&both(&vote, 1), "tx-3", 2).unwrap();

    // A member without an ML-DSA key cannot have an ML-DSA signature checked: refused.
    let plain = numbered_key(9);
    let genesis = custom_genesis(
        vec![member_with(&id(9), &plain, 1)],
        voting((1, 2), (1, 2), 10, 1, 3),
    );
    let (_, bundle) = crate::common::genesis();
    let mut s = GovernanceState::from_genesis(&genesis, bundle);
    let message = proposal_message(&id(9), "rename", &rename(&id(9), "Nine"));
    let foreign = KeyFile::new(plain.clone(), None).with_ml_dsa_seed([1; 32]);
    let refused = s.apply(&parse(&foreign.sign(&message).unwrap()), "tx", 1);
    assert_eq!(fault(refused.clone()), SignatureFault::MlDsaKeyMissing);
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("`member/h9` has no ML-DSA-65 key"));
    s.apply(&ed25519_only_with(&message, &plain), "tx", 1)
        .unwrap();
}

fn ed25519_only_with(message: &Value, key: &ed25519_dalek::SigningKey) -> Envelope {
    parse(&sign(message, key).unwrap())
}

#[test]
fn membership_changes_under_hybrid_need_an_ml_dsa_key() {
    let mut s = state(SignatureScheme::Hybrid);
    let newcomer = KeyFile::new(numbered_key(5), None).with_ml_dsa_seed([5; 32]);
    let mut without = member_with(&id(5), newcomer.signing_key(), 1);
    let add = |m: &accord_governance::member::Member| {
        proposal_message(&id(0), "add", &Change::AddMember { member: m.clone() })
    };
    match s.apply(&both(&add(&without), 0), "tx", 1) {
        Err(Refusal::InvalidChange { field, reason }) => {
            assert_eq!(field, "message.change.member.ml_dsa_public_key");
            assert!(
                reason.contains("member `member/h5` has no `ml_dsa_public_key`"),
                "{reason}"
            );
            assert!(reason.contains("ed25519+ml-dsa-65"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A key that is not one.
    without.ml_dsa_public_key = Some("AAAA".into());
    match s.apply(&both(&add(&without), 0), "tx", 1) {
        Err(Refusal::InvalidChange { field, reason }) => {
            assert_eq!(field, "message.change");
            assert!(
                reason.contains("ML-DSA-65 public key has 3 bytes, expected 1952"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    without.ml_dsa_public_key = newcomer.ml_dsa_public_key().map(str::to_owned);
    s.apply(&both(&add(&without), 0), "tx", 1).unwrap();

    // update_member may replace the ML-DSA key alone; a malformed one is refused by name.
    let update = |key: &str| {
        let change: Change = serde_json::from_value(
            json!({ "kind": "update_member", "member": id(1), "ml_dsa_public_key": key }),
        )
        .unwrap();
        proposal_message(&id(1), "rotate", &change)
    };
    match s.apply(&both(&update("!!"), 1), "tx", 1) {
        Err(Refusal::InvalidChange { field, reason }) => {
            assert_eq!(field, "message.change.ml_dsa_public_key");
            assert!(reason.contains("not base64"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let rotated = newcomer.ml_dsa_public_key().unwrap().to_owned();
    s.apply(&both(&update(&rotated), 1), "tx", 1).unwrap();
}

#[test]
fn malformed_ml_dsa_signatures_are_refused_before_any_signature_work() {
    let message = proposal();
    let signed = hybrid_key(0).sign(&message).unwrap();
    let mut value = serde_json::to_value(&signed).unwrap();
    for (bad, expected) in [
        (json!("!!"), "not base64"),
        (json!("AAAA"), "3 bytes, expected 3309"),
        (json!(7), "invalid type"),
    ] {
        value["ml_dsa_signature"] = bad;
        match Envelope::from_value(&value) {
            Err(Refusal::Malformed { field, reason }) => {
                assert_eq!(field, "ml_dsa_signature");
                assert!(reason.contains(expected), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Right length, not a decodable signature: a bad signature, not a malformed envelope.
    let broken = with_ml_dsa_signature(&message, 0, |raw| raw.fill(0xff));
    let mut s = state(SignatureScheme::Hybrid);
    assert_eq!(fault(s.apply(&broken, "tx", 1)), SignatureFault::MlDsa);
}

const HYBRID_GENESIS: &str = r#"
consortium: health-net-hybrid
signature_scheme: ed25519+ml-dsa-65
members:
  - id: member/h0
    name: H0
    public_key: "PUBLIC0"
    ml_dsa_public_key: "MLDSA0"
    weight: 1
  - id: member/h1
    name: H1
    public_key: "PUBLIC1"
    ml_dsa_public_key: "MLDSA1"
    weight: 1
voting: { quorum: "1/2", threshold: "1/2", voting_period: 10, activation_delay: 1,
          max_open_proposals: 3 }
bundle: ../policies
"#;

fn genesis_text(edit: impl Fn(String) -> String) -> String {
    let mut text = HYBRID_GENESIS.to_owned();
    for i in 0..2 {
        let key = hybrid_key(i);
        text = text
            .replace(&format!("PUBLIC{i}"), key.public_key())
            .replace(&format!("MLDSA{i}"), key.ml_dsa_public_key().unwrap());
    }
    edit(text)
}

fn parse_genesis(text: &str) -> Result<Genesis, accord_governance::GenesisError> {
    Genesis::parse(text.as_bytes(), "hybrid.yaml", Path::new("."))
}

#[test]
fn a_hybrid_genesis_needs_an_ml_dsa_key_for_every_member() {
    let hybrid = parse_genesis(&genesis_text(|t| t)).unwrap();
    assert_eq!(hybrid.signature_scheme, SignatureScheme::Hybrid);
    let without = genesis_text(|t| {
        let line = t
            .lines()
            .find(|l| {
                l.contains("ml_dsa_public_key")
                    && l.contains(hybrid_key(1).ml_dsa_public_key().unwrap())
            })
            .unwrap()
            .to_owned();
        t.replace(&format!("{line}\n"), "")
    });
    let err = parse_genesis(&without).unwrap_err();
    assert_eq!(err.field, "members[1].ml_dsa_public_key");
    assert!(
        err.reason
            .contains("member `member/h1` has no `ml_dsa_public_key`"),
        "{err}"
    );
    let short = genesis_text(|t| t.replace(hybrid_key(0).ml_dsa_public_key().unwrap(), "AAAA"));
    let err = parse_genesis(&short).unwrap_err();
    assert_eq!(err.field, "members");
    assert!(
        err.reason
            .contains("member `member/h0`: ML-DSA-65 public key has 3 bytes"),
        "{err}"
    );
    let unknown = genesis_text(|t| t.replace("ed25519+ml-dsa-65", "hybrid"));
    let err = parse_genesis(&unknown).unwrap_err();
    assert_eq!(err.field, "signature_scheme");
    assert!(err.reason.contains("unknown variant `hybrid`"), "{err}");

    // Under ed25519 the ML-DSA keys are allowed, not required; the scheme enters the genesis
    // digest only when it is not ed25519, so a genesis without it keeps its digest.
    let plain = parse_genesis(&genesis_text(|t| {
        t.replace("signature_scheme: ed25519+ml-dsa-65\n", "")
    }))
    .unwrap();
    let explicit =
        parse_genesis(&genesis_text(|t| t.replace("ed25519+ml-dsa-65", "ed25519"))).unwrap();
    assert_eq!(plain.signature_scheme, SignatureScheme::Ed25519);
    assert_eq!(plain.digest("v"), explicit.digest("v"));
    assert_ne!(plain.digest("v"), hybrid.digest("v"));
    let no_ml_dsa = parse_genesis(&without.replace("signature_scheme: ed25519+ml-dsa-65\n", ""));
    assert!(no_ml_dsa.is_ok());
}

#[test]
fn a_restarted_hybrid_node_still_requires_both_signatures() {
    let genesis = hybrid_genesis(SignatureScheme::Hybrid);
    let (_, bundle) = crate::common::genesis();
    let dir = tempfile::tempdir().unwrap();
    let message = proposal();
    let ids = ids_of(&message);
    let tx = |id: &str, signed: accord_governance::message::SignedMessage| {
        signed.into_transaction(id, "2026-03-01T08:00:00Z")
    };
    let root = {
        let db = sled::open(dir.path()).unwrap();
        let mut m = StateMachine::open(&genesis, bundle.clone(), &db).unwrap();
        m.apply_block(block(
            1,
            vec![tx("p", hybrid_key(0).sign(&message).unwrap())],
        ))
        .unwrap();
        m.state_root().to_owned()
    };
    let db = sled::open(dir.path()).unwrap();
    let mut m = StateMachine::open(&genesis, bundle, &db).unwrap();
    assert_eq!(m.state_root(), root);
    assert_eq!(m.governance().signature_scheme, SignatureScheme::Hybrid);
    let vote = vote_message(&ids, &id(1), "yes");
    let answer = m
        .apply_block(block(
            2,
            vec![
                tx("v1", sign(&vote, hybrid_key(1).signing_key()).unwrap()),
                tx(
                    "v2",
                    hybrid_key(2)
                        .sign(&vote_message(&ids, &id(2), "yes"))
                        .unwrap(),
                ),
            ],
        ))
        .unwrap();
    let text = serde_json::to_string(&*answer).unwrap();
    assert!(text.contains("bad_signature"), "{text}");
    assert!(text.contains("`ml_dsa_signature` is missing"), "{text}");
    let votes = &m.governance().proposals[&ids.0].votes;
    assert_eq!(votes.keys().collect::<Vec<_>>(), vec![&id(2)]);
    // The state root of a hybrid consortium states its scheme: it differs from the same state
    // under ed25519.
    let mut as_ed25519 = m.governance().clone();
    as_ed25519.signature_scheme = SignatureScheme::Ed25519;
    assert_ne!(
        accord_governance::machine::governance_digest(m.governance()),
        accord_governance::machine::governance_digest(&as_ed25519)
    );
}
