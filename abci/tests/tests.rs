//! The ABCI application through ABCI's request and response types, in-process, and over a real
//! socket with a raw length-delimited protobuf client.
//!
//! - `handshake`: `InitChain` and `Info`, a restart (and a stop between `FinalizeBlock` and
//!   `Commit`) replaying exactly the missing block.
//! - `mempool`: `CheckTx` refusals and their codes.
//! - `proposals`: `PrepareProposal` drops, `ProcessProposal` rejects.
//! - `finalize`: results, events, activations, the app hash against `POST /v1/blocks`, the
//!   decision log, the sidecar.
//! - `query`: `abci_query` paths.
//! - `determinism`: two nodes fed the same blocks, core counts, concurrent evaluations.
//! - `socket`: the whole exchange over a Unix socket, as CometBFT speaks it.
//! - `bad_input`: garbage and oversized transactions, a block at the wrong height, `Commit`
//!   without `FinalizeBlock`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod bad_input;
mod determinism;
mod finalize;
mod handshake;
mod mempool;
mod proposals;
mod query;
mod socket;

use accord_abci::App;
use accord_engine::Bundle;
use accord_governance::message::sign;
use accord_governance::KeyFile;
use accord_server::{AppState, ServeConfig};
use bytes::Bytes;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tendermint::abci::{request, response};
use tendermint::block::Height;
use tendermint::{account, consensus, evidence, Hash, Time};

pub const CONSORTIUM: &str = "health-net-dev";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// The default bundle, compiled once for every test.
pub fn bundle() -> Arc<Bundle> {
    accord_engine::testing::shared_default_bundle()
}

/// The server state over `data` (the dev genesis, the default bundle), as `accord abci` opens it.
pub async fn open_state(data: &Path) -> AppState {
    let config = ServeConfig::with_defaults(root().join("policies"), data.to_path_buf());
    // sled releases its file lock when its flusher thread notices the last handle is gone.
    for _ in 0..100 {
        match AppState::open(&config, bundle()) {
            Ok(state) => return state,
            Err(e) if e.to_string().contains("lock") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("state opens: {e}"),
        }
    }
    panic!("the data directory stays locked");
}

pub async fn app(data: &Path) -> App {
    App::new(open_state(data).await)
}

/// Stops an app: its storage is flushed and released, as at a process exit.
pub async fn stop(app: App) {
    let state = app.state().clone();
    drop(app);
    if let Some(storage) = state.storage.swap(None) {
        let db = storage.db.clone();
        drop(storage);
        db.flush().unwrap();
    }
}

pub fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("examples").join(name)).expect("example");
    accord_engine::json::parse_str(&text).expect("example JSON")
}

pub fn with_id(mut tx: Value, id: &str) -> Value {
    tx["id"] = Value::String(id.into());
    tx
}

/// An allowed treatment read.
pub fn allow_tx(id: &str) -> Value {
    with_id(example("treatment-read.json"), id)
}

/// A denied export to the US.
pub fn deny_tx(id: &str) -> Value {
    with_id(example("export-to-us.json"), id)
}

/// A German physician shares a record with a clinic in Uruguay for treatment.
pub fn share_to_uruguay(id: &str) -> Value {
    with_id(example("share-to-uruguay.json"), id)
}

/// A consent revocation for a consent that was never granted: refused by the registry.
pub fn revoke_unknown(id: &str) -> Value {
    json!({ "id": id, "kind": "consent", "timestamp": "2026-02-15T09:00:00Z",
            "consent": { "id": "consent/never", "status": "revoked", "patient": "patient/d-4" } })
}

pub fn signed(id: &str, message: Value, member: &str) -> Value {
    let path = root().join(format!("governance/dev-keys/{member}.key.json"));
    let key = KeyFile::read(&path).unwrap();
    sign(&message, key.signing_key())
        .unwrap()
        .into_transaction(id, "2026-03-01T08:00:00Z")
}

/// Uruguay leaves the EU adequacy list.
pub fn tightening() -> Value {
    let bundle = bundle();
    let list: Vec<Value> = bundle
        .jurisdictions()
        .get("EU")
        .and_then(|j| j.parameters.get("adequacy"))
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .filter(|c| *c != "UY")
        .cloned()
        .collect();
    json!({ "type": "proposal", "consortium": CONSORTIUM, "proposer": "member/st-marys",
            "title": "Uruguay leaves the adequacy list", "base": bundle.version(),
            "change": { "kind": "set_jurisdiction_parameters", "jurisdiction": "EU",
                        "parameters": { "adequacy": list } } })
}

/// A proposal signed by the wrong member: a bad signature.
pub fn forged(id: &str) -> Value {
    let mut message = tightening();
    message["title"] = json!("forged");
    let mut tx = signed(id, message, "acme-insurance");
    tx["governance"]["message"]["proposer"] = json!("member/st-marys");
    tx
}

/// A proposal by someone who is not a member.
pub fn stranger_proposal(id: &str) -> Value {
    let mut message = tightening();
    message["proposer"] = json!("member/nobody");
    signed(id, message, "city-lab")
}

/// A member's yes vote on proposal `proposal` with content hash `content`.
pub fn vote(id: &str, member: &str, proposal: &str, content: &str) -> Value {
    signed(
        id,
        json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": proposal,
                "content": content, "voter": format!("member/{member}"), "choice": "yes" }),
        member,
    )
}

pub fn tx(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}

pub fn txs(values: &[Value]) -> Vec<Bytes> {
    values.iter().map(tx).collect()
}

pub fn height(h: u64) -> Height {
    Height::try_from(h).unwrap()
}

pub fn init_chain(app_state: &[u8], initial_height: u64) -> request::InitChain {
    request::InitChain {
        time: Time::unix_epoch(),
        chain_id: "accord-test".into(),
        consensus_params: consensus::Params {
            block: tendermint::block::Size {
                max_bytes: 22_020_096,
                max_gas: -1,
                time_iota_ms: 1000,
            },
            evidence: evidence::Params {
                max_age_num_blocks: 100_000,
                max_age_duration: evidence::Duration(Duration::from_secs(172_800)),
                max_bytes: 1_048_576,
            },
            validator: consensus::params::ValidatorParams {
                pub_key_types: vec![tendermint::public_key::Algorithm::Ed25519],
            },
            version: None,
            abci: Default::default(),
        },
        validators: Vec::new(),
        app_state_bytes: Bytes::copy_from_slice(app_state),
        initial_height: height(initial_height),
    }
}

pub fn finalize(h: u64, txs: Vec<Bytes>) -> request::FinalizeBlock {
    request::FinalizeBlock {
        txs,
        decided_last_commit: tendermint::abci::types::CommitInfo {
            round: 0u8.into(),
            votes: Vec::new(),
        },
        misbehavior: Vec::new(),
        hash: Hash::None,
        height: height(h),
        time: Time::unix_epoch(),
        next_validators_hash: Hash::None,
        proposer_address: account::Id::new([0; 20]),
    }
}

pub fn prepare(h: u64, txs: Vec<Bytes>, max_tx_bytes: i64) -> request::PrepareProposal {
    request::PrepareProposal {
        max_tx_bytes,
        txs,
        local_last_commit: None,
        misbehavior: Vec::new(),
        height: height(h),
        time: Time::unix_epoch(),
        next_validators_hash: Hash::None,
        proposer_address: account::Id::new([0; 20]),
    }
}

pub fn process(h: u64, txs: Vec<Bytes>) -> request::ProcessProposal {
    request::ProcessProposal {
        txs,
        proposed_last_commit: None,
        misbehavior: Vec::new(),
        hash: Hash::None,
        height: height(h),
        time: Time::unix_epoch(),
        next_validators_hash: Hash::None,
        proposer_address: account::Id::new([0; 20]),
    }
}

pub fn query(path: &str) -> request::Query {
    request::Query {
        data: Bytes::new(),
        path: path.into(),
        height: 0u32.into(),
        prove: false,
    }
}

/// Starts a chain on `app` and runs blocks `1..` with `blocks`, each finalized and committed.
pub async fn run_blocks(app: &App, blocks: &[Vec<Value>]) -> Vec<response::FinalizeBlock> {
    if app.info().await.unwrap().last_block_height.value() == 0 {
        app.init_chain(init_chain(b"", 1)).await.unwrap();
    }
    let start = app.info().await.unwrap().last_block_height.value() + 1;
    let mut answers = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let answer = app
            .finalize_block(finalize(start + i as u64, txs(block)))
            .await
            .unwrap();
        app.commit().await.unwrap();
        answers.push(answer);
    }
    answers
}

/// The attributes of the first event of type `kind`, as `key=value` pairs.
pub fn attributes(events: &[tendermint::abci::Event], kind: &str) -> Vec<(String, String)> {
    events
        .iter()
        .find(|e| e.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {events:?}"))
        .attributes
        .iter()
        .map(|a| {
            (
                a.key_str().unwrap().to_owned(),
                a.value_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The JSON of a result's `data` or a query's `value`.
pub fn json_of(bytes: &[u8]) -> Value {
    accord_engine::json::value_from_slice(bytes).expect("JSON")
}

/// The JSON of a result's log.
pub fn log_of(log: &str) -> Value {
    accord_engine::json::value_from_str(log).expect("the log is JSON")
}
