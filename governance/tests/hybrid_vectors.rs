//! Hybrid signing test vectors (governance/tests/vectors/hybrid-signing.json): the ed25519
//! signature of signing.json beside an ML-DSA-65 (FIPS 204) signature over the same signed bytes,
//! made with the context string `accord/governance/v1` and the deterministic variant of
//! ML-DSA.Sign (rnd = 32 zero bytes), so the signatures are reproducible from the seeds.
//!
//! The ed25519 seed is 0x01..0x20 (as in signing.json), the ML-DSA-65 seed 0x21..0x40 — test keys,
//! not dev keys. Regenerate the file with
//! `ACCORD_WRITE_VECTORS=1 cargo test -p accord-governance --test tests hybrid_vectors` (then
//! review it).

use accord_governance::message::{content_hash, proposal_id, signed_bytes, Change};
use accord_governance::signature_scheme::{
    self, ml_dsa_sign, parse_ml_dsa_public_key, ML_DSA_CONTEXT,
};
use accord_governance::{Envelope, KeyFile, SignatureFault, SignatureScheme};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::PathBuf;

const CONSORTIUM: &str = "health-net-example";
const VOTER: &str = "member/example-hospital";

fn ed25519_seed() -> [u8; 32] {
    std::array::from_fn(|i| i as u8 + 1)
}

fn ml_dsa_seed() -> [u8; 32] {
    std::array::from_fn(|i| i as u8 + 0x21)
}

fn key() -> KeyFile {
    KeyFile::new(
        ed25519_dalek::SigningKey::from_bytes(&ed25519_seed()),
        Some(VOTER.into()),
    )
    .with_ml_dsa_seed(ml_dsa_seed())
}

/// Another ML-DSA-65 key (seed 0x41..0x60), for the "other key" negative vector.
fn other_key() -> KeyFile {
    KeyFile::new(ed25519_dalek::SigningKey::from_bytes(&ed25519_seed()), None)
        .with_ml_dsa_seed(std::array::from_fn(|i| i as u8 + 0x41))
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/hybrid-signing.json")
}

fn ml_dsa_signature_of(key: &KeyFile, message: &Value) -> String {
    let signed = key.sign(message).unwrap();
    signed.ml_dsa_signature.unwrap()
}

fn generate() -> Value {
    let key = key();
    let change: Change =
        serde_json::from_value(json!({ "kind": "update_member", "member": VOTER, "weight": 2 }))
            .unwrap();
    let proposal = json!({
        "type": "proposal", "consortium": CONSORTIUM, "proposer": VOTER,
        "title": "Double our weight", "change": change,
    });
    let id = proposal_id(&signed_bytes(&proposal).unwrap());
    let vote = json!({
        "type": "vote", "consortium": CONSORTIUM, "proposal": id,
        "content": content_hash(&change), "voter": VOTER, "choice": "yes",
    });
    let positive = |name: &str, about: &str, message: &Value| {
        let signed = key.sign(message).unwrap();
        json!({
            "name": name,
            "about": about,
            "message": message,
            "signed_bytes_hex": hex::encode(signed_bytes(message).unwrap()),
            "signature": signed.signature,
            "ml_dsa_signature": signed.ml_dsa_signature,
        })
    };
    let good = key.sign(&vote).unwrap();
    let mut flipped = BASE64
        .decode(good.ml_dsa_signature.as_deref().unwrap())
        .unwrap();
    flipped[200] ^= 0x01;
    // FIPS 204 ML-DSA.Sign with an empty context: valid ML-DSA, but not Accord's domain.
    let no_context = key
        .ml_dsa_signing_key()
        .unwrap()
        .sign_deterministic(&signed_bytes(&vote).unwrap(), b"")
        .unwrap()
        .encode();
    let negative = |name: &str, why: &str, ml_dsa: Option<String>, fault: &str| {
        let mut v = json!({ "name": name, "why": why, "message": vote,
                            "signature": good.signature, "fault": fault });
        if let Some(sig) = ml_dsa {
            v["ml_dsa_signature"] = json!(sig);
        }
        v
    };
    json!({
        "about": "Accord hybrid governance signing vectors (genesis signature_scheme \
                  'ed25519+ml-dsa-65'). signed_bytes and the ed25519 signature are as in \
                  signing.json. ml_dsa_signature = ML-DSA-65 (FIPS 204 ML-DSA.Sign, deterministic \
                  variant: rnd = 32 zero bytes) over signed_bytes with the context string \
                  'accord/governance/v1'; a message is valid only if both signatures verify \
                  under the signer's public_key and ml_dsa_public_key. The ML-DSA-65 key is \
                  ML-DSA.KeyGen_internal(ml_dsa_seed). Negative vectors name the signature \
                  that fails (`fault`).",
        "ml_dsa_context_hex": hex::encode(ML_DSA_CONTEXT),
        "secret_seed_hex": hex::encode(ed25519_seed()),
        "public_key": key.public_key(),
        "ml_dsa_seed_hex": hex::encode(ml_dsa_seed()),
        "ml_dsa_public_key": key.ml_dsa_public_key(),
        "vectors": [
            positive("proposal", "signing.json's proposal, hybrid-signed", &proposal),
            positive("vote", "signing.json's vote, hybrid-signed", &vote),
        ],
        "negative": [
            negative("ml-dsa-missing",
                     "a valid ed25519 signature and no ML-DSA-65 signature",
                     None, "ml_dsa_missing"),
            negative("ml-dsa-flipped-bit",
                     "the vote's valid ML-DSA-65 signature with bit 0 of byte 200 flipped",
                     Some(BASE64.encode(flipped)), "ml_dsa"),
            negative("ml-dsa-other-key",
                     "an ML-DSA-65 signature of the same bytes by another key (seed 0x41..0x60)",
                     Some(ml_dsa_signature_of(&other_key(), &vote)), "ml_dsa"),
            negative("ml-dsa-empty-context",
                     "an ML-DSA-65 signature of the same bytes by the right key, with an empty \
                      context string instead of 'accord/governance/v1'",
                     Some(BASE64.encode(no_context.as_slice())), "ml_dsa"),
        ],
    })
}

fn stored() -> Value {
    let text = std::fs::read_to_string(path()).unwrap();
    accord_engine::json::parse_str(&text).unwrap()
}

fn envelope(v: &Value) -> Envelope {
    let mut governance = json!({ "message": v["message"], "signature": v["signature"] });
    if let Some(sig) = v.get("ml_dsa_signature") {
        governance["ml_dsa_signature"] = sig.clone();
    }
    Envelope::from_value(&governance).unwrap()
}

fn fault_name(fault: SignatureFault) -> &'static str {
    match fault {
        SignatureFault::Ed25519 => "ed25519",
        SignatureFault::MlDsaMissing => "ml_dsa_missing",
        SignatureFault::MlDsa => "ml_dsa",
        SignatureFault::MlDsaKeyMissing => "ml_dsa_key_missing",
    }
}

#[test]
fn the_hybrid_vector_file_is_what_the_code_computes() {
    let generated = generate();
    if std::env::var_os("ACCORD_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(path(), text).unwrap();
    }
    assert_eq!(
        stored(),
        generated,
        "rerun with ACCORD_WRITE_VECTORS=1 and review"
    );
}

#[test]
fn hybrid_vectors_re_sign_deterministically_and_verify() {
    let doc = stored();
    let key = key();
    assert_eq!(doc["public_key"], key.public_key());
    assert_eq!(doc["ml_dsa_public_key"], key.ml_dsa_public_key().unwrap());
    let ed25519 =
        accord_governance::member::parse_public_key(doc["public_key"].as_str().unwrap()).unwrap();
    let ml_dsa = parse_ml_dsa_public_key(doc["ml_dsa_public_key"].as_str().unwrap()).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    // The same messages and ed25519 signatures as signing.json.
    let plain: Value = accord_engine::json::parse_str(
        &std::fs::read_to_string(path().with_file_name("signing.json")).unwrap(),
    )
    .unwrap();
    for (v, p) in vectors.iter().zip(plain["vectors"].as_array().unwrap()) {
        let name = v["name"].as_str().unwrap();
        assert_eq!(v["message"], p["message"], "{name}");
        assert_eq!(v["signature"], p["signature"], "{name}");
        let bytes = signed_bytes(&v["message"]).unwrap();
        assert_eq!(hex::encode(&bytes), v["signed_bytes_hex"], "{name}");
        // Deterministic: signing again from the seed gives the stored ML-DSA-65 signature.
        let again = ml_dsa_sign(key.ml_dsa_signing_key().unwrap(), &bytes).unwrap();
        assert_eq!(BASE64.encode(&again), v["ml_dsa_signature"], "{name}");
        let env = envelope(v);
        assert_eq!(
            signature_scheme::verify(SignatureScheme::Hybrid, &env, &ed25519, Some(&ml_dsa)),
            Ok(()),
            "{name}"
        );
    }
}

#[test]
fn hybrid_negative_vectors_are_refused_naming_the_failing_signature() {
    let doc = stored();
    let ed25519 =
        accord_governance::member::parse_public_key(doc["public_key"].as_str().unwrap()).unwrap();
    let ml_dsa = parse_ml_dsa_public_key(doc["ml_dsa_public_key"].as_str().unwrap()).unwrap();
    let negative = doc["negative"].as_array().unwrap();
    assert_eq!(negative.len(), 4);
    for v in negative {
        let name = v["name"].as_str().unwrap();
        let env = envelope(v);
        // The ed25519 half is valid in every negative vector.
        assert!(env.verify(&ed25519), "{name}");
        let verdict =
            signature_scheme::verify(SignatureScheme::Hybrid, &env, &ed25519, Some(&ml_dsa));
        assert_eq!(
            verdict.map_err(fault_name),
            Err(v["fault"].as_str().unwrap()),
            "{name}"
        );
    }
    // The missing case passes under ed25519, where the ML-DSA-65 signature is optional; the
    // others are still refused there, because a signature that is present is checked.
    for v in negative {
        let env = envelope(v);
        let verdict =
            signature_scheme::verify(SignatureScheme::Ed25519, &env, &ed25519, Some(&ml_dsa));
        assert_eq!(
            verdict.is_ok(),
            v["name"] == "ml-dsa-missing",
            "{}",
            v["name"]
        );
    }
    // The empty-context signature is a valid FIPS 204 signature, only not in Accord's domain.
    let no_context = &negative[3];
    let raw = BASE64
        .decode(no_context["ml_dsa_signature"].as_str().unwrap())
        .unwrap();
    let encoded = ml_dsa::EncodedSignature::<ml_dsa::MlDsa65>::try_from(raw.as_slice()).unwrap();
    let sig = ml_dsa::Signature::<ml_dsa::MlDsa65>::decode(&encoded).unwrap();
    let bytes = signed_bytes(&no_context["message"]).unwrap();
    assert!(ml_dsa.verify_with_context(&bytes, b"", &sig));
    assert!(!ml_dsa.verify_with_context(&bytes, ML_DSA_CONTEXT, &sig));
}
