//! Shared fixtures for governance tests: the dev genesis and its keys, signed messages, blocks.

use accord_engine::ledger::Block;
use accord_engine::Bundle;
use accord_governance::message::{content_hash, proposal_id, sign, signed_bytes, Change};
use accord_governance::{Genesis, KeyFile};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub const CONSORTIUM: &str = "health-net-dev";
pub const MEMBERS: [&str; 3] = [
    "member/st-marys",
    "member/acme-insurance",
    "member/city-lab",
];

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The dev genesis and its bundle, compiled once per test binary.
pub fn genesis() -> (Genesis, Arc<Bundle>) {
    static CELL: OnceLock<(Genesis, Arc<Bundle>)> = OnceLock::new();
    CELL.get_or_init(|| {
        let genesis = Genesis::load(&repo().join("governance/genesis.dev.yaml")).unwrap();
        let bundle = Arc::new(Bundle::load(&genesis.bundle_dir).unwrap());
        (genesis, bundle)
    })
    .clone()
}

/// A dev member's signing key (`member/st-marys` → governance/dev-keys/st-marys.key.json).
pub fn key(member: &str) -> SigningKey {
    let name = member.trim_start_matches("member/");
    let path = repo().join(format!("governance/dev-keys/{name}.key.json"));
    KeyFile::read(&path).unwrap().signing_key().clone()
}

/// A governance transaction carrying `message` signed by `signer`'s dev key.
pub fn signed(id: &str, message: Value, signer: &str) -> Value {
    signed_with(id, message, &key(signer))
}

/// A proposal message built on the dev genesis: a policy change names the dev bundle's version
/// as its base, a voting-rule change the dev genesis's voting rules (see [`with_base`]).
pub fn proposal_message(proposer: &str, title: &str, change: &Change) -> Value {
    let mut message = json!({ "type": "proposal", "consortium": CONSORTIUM, "proposer": proposer,
                              "title": title, "change": change });
    let (genesis, bundle) = genesis();
    if change.is_policy_change() {
        message["base"] = json!(bundle.version());
    } else if matches!(change, Change::SetVotingParams { .. }) {
        message["base"] = json!(genesis.voting.digest());
    }
    message
}

/// `message` naming `base` as the state its change was built on.
pub fn with_base(mut message: Value, base: &str) -> Value {
    message["base"] = json!(base);
    message
}

/// The id and content hash a proposal message will get.
pub fn ids_of(message: &Value) -> (String, String) {
    let change: Change = serde_json::from_value(message["change"].clone()).unwrap();
    (
        proposal_id(&signed_bytes(message).unwrap()),
        content_hash(&change),
    )
}

pub fn vote_message(proposal: &(String, String), voter: &str, choice: &str) -> Value {
    json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": proposal.0,
            "content": proposal.1, "voter": voter, "choice": choice })
}

pub fn cancel_message(proposal: &str, proposer: &str) -> Value {
    json!({ "type": "cancel", "consortium": CONSORTIUM, "proposal": proposal,
            "proposer": proposer })
}

pub fn block(height: u64, transactions: Vec<Value>) -> Block {
    Block {
        height,
        previous: None,
        transactions,
    }
}

/// A change that tightens the default bundle: Uruguay leaves the EU adequacy list, so a share
/// from Germany to a clinic in Uruguay, allowed under GDPR Art. 45(1), needs an Art. 46
/// safeguard afterwards (Art. 44). No test case of the bundle uses Uruguay.
pub fn drop_uruguay_adequacy() -> Change {
    let (_, bundle) = genesis();
    let list = bundle
        .jurisdictions()
        .get("EU")
        .and_then(|j| j.parameters.get("adequacy"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap();
    let kept: Vec<Value> = list.into_iter().filter(|c| c != "UY").collect();
    serde_json::from_value(json!({
        "kind": "set_jurisdiction_parameters",
        "jurisdiction": "EU",
        "parameters": { "adequacy": kept },
    }))
    .unwrap()
}

/// A physician in Germany shares a record with a clinic in Uruguay for treatment
/// (examples/share-to-uruguay.json with the id `id`).
pub fn share_to_uruguay(id: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples/share-to-uruguay.json")).unwrap();
    let mut tx: Value = accord_engine::json::value_from_str(&text).unwrap();
    tx["id"] = json!(id);
    tx
}

// ---------------------------------------------------------------- helpers added for the
// refusal, lifecycle, property, persistence and vector tests

use accord_governance::member::{Member, Membership};
use accord_governance::params::{Ratio, VotingParams};
use accord_governance::state::Accepted;
use accord_governance::{Envelope, GovernanceState, Refusal};
use std::collections::BTreeMap;

/// A fresh governance state at height 0 from the dev genesis.
pub fn dev_state() -> GovernanceState {
    let (genesis, bundle) = genesis();
    GovernanceState::from_genesis(&genesis, bundle)
}

/// `message` signed with `key`, parsed as the state machine parses a governance transaction.
pub fn envelope_with(message: &Value, key: &SigningKey) -> Envelope {
    let governance = serde_json::to_value(sign(message, key).unwrap()).unwrap();
    Envelope::from_value(&governance).unwrap()
}

/// `message` signed with `signer`'s dev key and parsed.
pub fn envelope(message: &Value, signer: &str) -> Envelope {
    envelope_with(message, &key(signer))
}

/// Signs `message` as `signer` (dev key) and applies it to `state` at `height`.
pub fn apply(
    state: &mut GovernanceState,
    message: &Value,
    signer: &str,
    height: u64,
) -> Result<Accepted, Refusal> {
    let tx = format!("tx-{height}-{}", state.next_seq);
    state.apply(&envelope(message, signer), &tx, height)
}

/// A cheap change to propose when the kind does not matter: rename a member (no bundle is
/// compiled). It is a membership change, so its activation aborts proposals still voting.
pub fn rename(member: &str, name: &str) -> Change {
    serde_json::from_value(json!({ "kind": "update_member", "member": member, "name": name }))
        .unwrap()
}

/// The default bundle's files as the text map an `activate_bundle` change carries.
pub fn default_bundle_files() -> BTreeMap<String, String> {
    let (_, bundle) = genesis();
    bundle
        .files()
        .iter()
        .map(|(path, bytes)| (path.to_owned(), String::from_utf8(bytes.to_vec()).unwrap()))
        .collect()
}

/// `activate_bundle` with the default bundle's files, `edit` applied to them.
pub fn activate_edited(edit: impl FnOnce(&mut BTreeMap<String, String>)) -> Change {
    let mut files = default_bundle_files();
    edit(&mut files);
    Change::ActivateBundle { bundle: files }
}

/// The default bundle with a comment appended to its manifest: same decisions, new version.
pub fn default_bundle_variant(tag: &str) -> Change {
    activate_edited(|files| {
        files
            .get_mut("manifest.yaml")
            .unwrap()
            .push_str(&format!("\n# variant {tag}\n"));
    })
}

/// A deterministic signing key from a number (test keys only, never the dev keys).
pub fn numbered_key(n: u64) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    seed[8..16].copy_from_slice(b"acc-test");
    SigningKey::from_bytes(&seed)
}

pub fn member_with(id: &str, key: &SigningKey, weight: u64) -> Member {
    Member {
        id: id.to_owned(),
        public_key: BASE64.encode(key.verifying_key().to_bytes()),
        ml_dsa_public_key: None,
        weight,
        name: id.trim_start_matches("member/").to_owned(),
    }
}

pub fn voting(
    quorum: (u64, u64),
    threshold: (u64, u64),
    voting_period: u64,
    activation_delay: u64,
    max_open_proposals: u32,
) -> VotingParams {
    VotingParams {
        quorum: Ratio::new(quorum.0, quorum.1).unwrap(),
        threshold: Ratio::new(threshold.0, threshold.1).unwrap(),
        voting_period,
        activation_delay,
        max_open_proposals,
        max_open_bundle_bytes: None,
        veto_threshold: None,
        emergency: None,
    }
}

/// A genesis built in code, on the dev bundle, for consortium [`CONSORTIUM`].
pub fn custom_genesis(members: Vec<Member>, params: VotingParams) -> Genesis {
    let (dev, _) = genesis();
    Genesis {
        consortium: CONSORTIUM.to_owned(),
        membership: Membership::new(members).unwrap(),
        voting: params,
        signature_scheme: accord_governance::SignatureScheme::Ed25519,
        bundle_dir: dev.bundle_dir,
        initial_height: 1,
    }
}

/// A governance transaction carrying `message` signed with `key`.
pub fn signed_with(id: &str, message: Value, key: &SigningKey) -> Value {
    sign(&message, key)
        .unwrap()
        .into_transaction(id, "2026-03-01T08:00:00Z")
}
