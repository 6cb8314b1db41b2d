//! Signing test vectors (governance/tests/vectors/signing.json) for other implementations of the
//! governance encoding: signed bytes are `accord/governance/v1`, a NUL, then the message's
//! canonical JSON (keys sorted by UTF-8 bytes at every level, no insignificant white space,
//! strings escaped as serde_json writes them: only `"`, `\` and control characters; non-ASCII
//! as raw UTF-8); the signature is ed25519 over those bytes, checked with `verify_strict`.
//!
//! The key is derived from the seed 0x01..0x20 — a test key, not a dev key. Regenerate the file
//! with `ACCORD_WRITE_VECTORS=1 cargo test -p accord-governance --test tests vectors::` (then review it).

use accord_governance::message::{content_hash, proposal_id, signed_bytes, Change, SIGNING_DOMAIN};
use accord_governance::Envelope;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{json, Value};
use std::path::PathBuf;

const CONSORTIUM: &str = "health-net-example";
const VOTER: &str = "member/example-hospital";

fn seed() -> [u8; 32] {
    std::array::from_fn(|i| i as u8 + 1)
}

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&seed())
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/signing.json")
}

/// The group order L of ed25519, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// `s + L` as 32 little-endian bytes (s < L, so the sum fits in 253 bits).
fn plus_l(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s[i]) + u16::from(L[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    out
}

fn sign(message: &Value) -> Signature {
    signing_key().sign(&signed_bytes(message).unwrap())
}

fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// The whole vector document, computed from the code.
fn generate() -> Value {
    let key = signing_key();
    let public = key.verifying_key().to_bytes();

    let small_change: Change =
        serde_json::from_value(json!({ "kind": "update_member", "member": VOTER, "weight": 2 }))
            .unwrap();
    let proposal = json!({
        "type": "proposal", "consortium": CONSORTIUM, "proposer": VOTER,
        "title": "Double our weight", "change": small_change,
    });
    let proposal_ids = (
        proposal_id(&signed_bytes(&proposal).unwrap()),
        content_hash(&small_change),
    );
    let vote = json!({
        "type": "vote", "consortium": CONSORTIUM, "proposal": proposal_ids.0,
        "content": proposal_ids.1, "voter": VOTER, "choice": "yes",
    });
    let cancel = json!({
        "type": "cancel", "consortium": CONSORTIUM, "proposal": proposal_ids.0,
        "proposer": VOTER,
    });
    // Keys deliberately out of order at every level, non-ASCII text, escapes and a nonce.
    let unicode = json!({
        "title": "Überprüfung der Angemessenheit – São Paulo, 東京 \"quoted\"\ttab",
        "nonce": "é/\u{7}",
        "change": {
            "parameters": {
                "zeta": { "b": [3, -1, 0], "a": "ü" },
                "Zeta": true,
                "alpha": { "nested": { "y": null, "x": "日本" } }
            },
            "kind": "set_jurisdiction_parameters",
            "jurisdiction": "EU"
        },
        "proposer": VOTER,
        "consortium": CONSORTIUM,
        "type": "proposal"
    });
    let unicode_change: Change = serde_json::from_value(unicode["change"].clone()).unwrap();

    let positive = |name: &str, about: &str, message: &Value, ids: Option<(String, String)>| {
        let bytes = signed_bytes(message).unwrap();
        let mut v = json!({
            "name": name,
            "about": about,
            "message": message,
            "signed_bytes_hex": hex::encode(&bytes),
            "signature": b64(&sign(message).to_bytes()),
        });
        if let Some((id, content)) = ids {
            v["proposal_id"] = json!(id);
            v["content_hash"] = json!(content);
        }
        v
    };

    // Negative vectors: each must be refused by verify_strict.
    let mut elsewhere = vote.clone();
    elsewhere["consortium"] = json!("other-consortium");
    let mut flipped = sign(&vote).to_bytes();
    flipped[40] ^= 0x01;
    let good = sign(&vote).to_bytes();
    let mut non_canonical = good;
    non_canonical[32..].copy_from_slice(&plus_l(&good[32..]));
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut small_order_sig = [0u8; 64];
    small_order_sig[0] = 1; // R = the identity point, s = 0
    let negative = |name: &str, why: &str, key: &[u8], message: &Value, sig: &[u8]| {
        json!({ "name": name, "why": why, "public_key": b64(key), "message": message,
                "signature": b64(sig) })
    };

    json!({
        "about": "Accord governance signing vectors. signed_bytes = the ASCII domain \
                  'accord/governance/v1', one NUL byte, then the canonical JSON of `message` \
                  (object keys sorted by UTF-8 bytes at every level, no white space between \
                  tokens, strings escaped as serde_json writes them: only '\"', '\\\\' and \
                  control characters, with \\b \\f \\n \\r \\t or \\u00XX; non-ASCII as raw \
                  UTF-8; integers only). signature = ed25519 (RFC 8032) over signed_bytes, \
                  verified with the strict rule (canonical s < L, no small-order key or R). \
                  proposal_id = 'sha256:' + hex sha256('accord/proposal-id/v1' NUL signed_bytes); \
                  content_hash = 'sha256:' + hex sha256('accord/proposal-content/v1' NUL \
                  canonical JSON of message.change).",
        "domain_hex": hex::encode(SIGNING_DOMAIN),
        "secret_seed_hex": hex::encode(seed()),
        "public_key": b64(&public),
        "public_key_hex": hex::encode(public),
        "vectors": [
            positive("proposal", "a proposal with a small change", &proposal,
                     Some(proposal_ids.clone())),
            positive("vote", "a yes vote on that proposal, naming its id and content hash",
                     &vote, None),
            positive("cancel", "the proposer cancels it", &cancel, None),
            positive("proposal-unicode-unordered",
                     "non-ASCII strings, escapes, a nonce and keys out of order at every \
                      level: the signed bytes sort them and keep the UTF-8 raw",
                     &unicode,
                     Some((proposal_id(&signed_bytes(&unicode).unwrap()),
                           content_hash(&unicode_change)))),
        ],
        "negative": [
            negative("other-consortium",
                     "the signature was made over the same vote for consortium \
                      'other-consortium': a signature is valid for one consortium only",
                     &public, &vote, &sign(&elsewhere).to_bytes()),
            negative("flipped-bit", "the vote's valid signature with bit 0 of byte 40 flipped",
                     &public, &vote, &flipped),
            negative("non-canonical-s",
                     "the vote's valid signature with s replaced by s + L: the same point \
                      equation holds, but s is not reduced, so it is refused",
                     &public, &vote, &non_canonical),
            negative("small-order-key",
                     "public key = the identity point (small order), R = identity, s = 0: \
                      the unbatched cofactorless equation [s]B = R + [k]A holds for every \
                      message, so lenient verifiers accept it (ed25519-dalek `verify`, OpenSSL 3); \
                      verify_strict refuses it",
                     &identity, &vote, &small_order_sig),
        ],
    })
}

fn verifying_key(text: &str) -> VerifyingKey {
    let bytes: [u8; 32] = BASE64.decode(text).unwrap().try_into().unwrap();
    VerifyingKey::from_bytes(&bytes).unwrap()
}

fn signature(text: &str) -> Signature {
    let bytes: [u8; 64] = BASE64.decode(text).unwrap().try_into().unwrap();
    Signature::from_bytes(&bytes)
}

fn stored() -> Value {
    let text = std::fs::read_to_string(path()).unwrap();
    accord_engine::json::parse_str(&text).unwrap()
}

#[test]
fn the_vector_file_is_what_the_code_computes() {
    let generated = generate();
    if std::env::var_os("ACCORD_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::create_dir_all(path().parent().unwrap()).unwrap();
        std::fs::write(path(), text).unwrap();
    }
    assert_eq!(
        stored(),
        generated,
        "rerun with ACCORD_WRITE_VECTORS=1 and review"
    );
}

#[test]
fn positive_vectors_recompute_and_verify_strictly() {
    let doc = stored();
    let key = verifying_key(doc["public_key"].as_str().unwrap());
    assert_eq!(
        key,
        signing_key().verifying_key(),
        "public key from the seed"
    );
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let message = &v["message"];
        let bytes = signed_bytes(message).unwrap();
        assert_eq!(hex::encode(&bytes), v["signed_bytes_hex"], "{name}");
        // The bytes are the domain, a NUL, then JSON that is already canonical.
        assert!(bytes.starts_with(b"accord/governance/v1\0"), "{name}");
        let json_part = std::str::from_utf8(&bytes[SIGNING_DOMAIN.len()..]).unwrap();
        let reparsed: Value = accord_engine::json::value_from_str(json_part).unwrap();
        assert_eq!(&reparsed, message, "{name}: same content");
        assert_eq!(
            accord_engine::ledger::canonical_json(&reparsed),
            json_part,
            "{name}: canonical"
        );
        // ed25519 is deterministic: signing again gives the stored signature.
        let sig = signature(v["signature"].as_str().unwrap());
        assert_eq!(
            b64(&signing_key().sign(&bytes).to_bytes()),
            v["signature"],
            "{name}"
        );
        assert!(key.verify_strict(&bytes, &sig).is_ok(), "{name}");
        // The state machine's parser accepts it and verifies it the same way.
        let env = Envelope::from_value(&json!({ "message": message, "signature": v["signature"] }))
            .unwrap();
        assert_eq!(env.signed_bytes, bytes);
        assert!(env.verify(&key), "{name}");
        if let Some(id) = v.get("proposal_id") {
            assert_eq!(proposal_id(&bytes), *id, "{name}");
            let change: Change = serde_json::from_value(message["change"].clone()).unwrap();
            assert_eq!(content_hash(&change), v["content_hash"], "{name}");
        }
    }
    // The vote names the proposal vector's id and content hash.
    assert_eq!(vectors[1]["message"]["proposal"], vectors[0]["proposal_id"]);
    assert_eq!(vectors[1]["message"]["content"], vectors[0]["content_hash"]);
}

#[test]
fn the_unordered_unicode_vector_sorts_keys_and_keeps_utf8_raw() {
    let doc = stored();
    let v = &doc["vectors"][3];
    let bytes = hex::decode(v["signed_bytes_hex"].as_str().unwrap()).unwrap();
    let text = std::str::from_utf8(&bytes[SIGNING_DOMAIN.len()..]).unwrap();
    // Keys sorted by bytes: upper case before lower case; nested levels too.
    assert!(text.starts_with(
        r#"{"change":{"jurisdiction":"EU","kind":"set_jurisdiction_parameters","parameters":{"Zeta":true,"alpha":{"nested":{"x":"日本","y":null}},"zeta":{"a":"ü","b":[3,-1,0]}}},"consortium":"#
    ), "{text}");
    // Raw UTF-8, escaped quote and tab, a control character as \u0007, '/' left alone.
    assert!(text.contains(r#""nonce":"é/\u0007""#), "{text}");
    assert!(
        text.contains("São Paulo, 東京 \\\"quoted\\\"\\ttab"),
        "{text}"
    );
    // The file itself keeps the message's keys out of order (the parser must not rely on it).
    let keys: Vec<&String> = v["message"].as_object().unwrap().keys().collect();
    assert_eq!(keys[0], "title");
}

#[test]
fn negative_vectors_are_refused_by_verify_strict() {
    let doc = stored();
    let negative = doc["negative"].as_array().unwrap();
    assert_eq!(negative.len(), 4);
    for v in negative {
        let name = v["name"].as_str().unwrap();
        let key = verifying_key(v["public_key"].as_str().unwrap());
        let bytes = signed_bytes(&v["message"]).unwrap();
        let sig = signature(v["signature"].as_str().unwrap());
        assert!(key.verify_strict(&bytes, &sig).is_err(), "{name}");
        let env =
            Envelope::from_value(&json!({ "message": v["message"], "signature": v["signature"] }))
                .unwrap();
        assert!(!env.verify(&key), "{name}");
    }
    // The small-order case is exactly where lenient verification differs: plain `verify`
    // accepts it, which is why Accord pins verify_strict and refuses weak member keys.
    let small = &negative[3];
    let key = verifying_key(small["public_key"].as_str().unwrap());
    let sig = signature(small["signature"].as_str().unwrap());
    let bytes = signed_bytes(&small["message"]).unwrap();
    assert!(key.verify(&bytes, &sig).is_ok());
    assert!(key.verify(b"any other message", &sig).is_ok());
    assert!(key.is_weak());
    assert!(
        accord_governance::member::parse_public_key(small["public_key"].as_str().unwrap())
            .unwrap_err()
            .contains("small order")
    );
    // The non-canonical s is s + L of the valid signature, with the same R.
    let valid = signing_key()
        .sign(&signed_bytes(&negative[2]["message"]).unwrap())
        .to_bytes();
    let odd = BASE64
        .decode(negative[2]["signature"].as_str().unwrap())
        .unwrap();
    assert_eq!(odd[..32], valid[..32]);
    assert_eq!(odd[32..], plus_l(&valid[32..]));
}
