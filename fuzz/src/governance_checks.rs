//! The invariants the governance doors must keep on any input: governance message decoding
//! (`Envelope::from_value`), the state rules behind `GovernanceState::apply`, and the block state
//! machine (`StateMachine::apply_block` / `apply_prepared`). Used by the AFL targets, the corpus
//! replay and the property tests (`governance/tests/fuzz_properties.rs` includes this file, beside
//! `engine_checks.rs`, which it expects as the sibling module `engine_checks`).
//!
//! ## The signing dialect
//!
//! A fuzzer cannot forge ed25519 signatures, so a governance object whose `signature` is the string
//! `"dev"` is signed here, before it is applied, with the dev key (governance/dev-keys/) of the
//! member its message names as signer; in such a message, a `proposal` or `content` field of the
//! form `"@N"` is replaced by the id or content hash of the N-th proposal signed so far (0-based,
//! in input order). Anything else (a real signature, a key the dev consortium does not hold) is
//! left as it is and goes through the ordinary checks.

use super::engine_checks;
use accord_engine::consent::ConsentRegistry;
use accord_engine::ledger::{Block, PreparedBlock};
use accord_engine::{Bundle, Transaction};
use accord_governance::machine::governance_digest;
use accord_governance::message::{content_hash, proposal_id, sign, signed_bytes};
use accord_governance::{Change, Envelope, Genesis, GovernanceState, StateMachine, TxResult};
use ed25519_dalek::SigningKey;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The dev consortium: its genesis, compiled bundle and members' keys.
pub struct Dev {
    pub genesis: Genesis,
    pub bundle: Arc<Bundle>,
    pub keys: BTreeMap<String, SigningKey>,
}

impl Dev {
    /// Loads governance/genesis.dev.yaml, its bundle and governance/dev-keys/ from the repository
    /// at `repo`.
    pub fn load(repo: &Path) -> Dev {
        let genesis = Genesis::load(&repo.join("governance/genesis.dev.yaml"))
            .unwrap_or_else(|e| panic!("dev genesis: {e}"));
        let bundle = Arc::new(
            Bundle::load(&genesis.bundle_dir).unwrap_or_else(|e| panic!("dev bundle: {e}")),
        );
        let mut keys = BTreeMap::new();
        let dir = repo.join("governance/dev-keys");
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let Ok(file) = accord_governance::KeyFile::read(&entry.path()) else {
                continue;
            };
            if let Some(member) = file.member() {
                keys.insert(member.to_owned(), file.signing_key().clone());
            }
        }
        assert!(!keys.is_empty(), "no dev keys in {}", dir.display());
        Dev {
            genesis,
            bundle,
            keys,
        }
    }

    pub fn machine(&self) -> StateMachine {
        StateMachine::new(&self.genesis, self.bundle.clone())
    }

    pub fn state(&self) -> GovernanceState {
        GovernanceState::from_genesis(&self.genesis, self.bundle.clone())
    }

    /// Applies the signing dialect (module documentation) to one governance object in place.
    /// `proposals` holds the (id, content hash) of the proposals signed so far.
    pub fn sign_dialect(&self, governance: &mut Value, proposals: &mut Vec<(String, String)>) {
        if governance.get("signature").and_then(Value::as_str) != Some("dev") {
            return;
        }
        let Some(message) = governance.get_mut("message") else {
            return;
        };
        for field in ["proposal", "content"] {
            let reference = message
                .get(field)
                .and_then(Value::as_str)
                .and_then(|s| s.strip_prefix('@'))
                .and_then(|n| n.parse::<usize>().ok());
            if let Some((id, content)) = reference.and_then(|n| proposals.get(n)) {
                let value = if field == "proposal" { id } else { content };
                message[field] = Value::String(value.clone());
            }
        }
        let signer = ["proposer", "voter"]
            .iter()
            .find_map(|f| message.get(*f).and_then(Value::as_str));
        let Some(key) = signer.and_then(|s| self.keys.get(s)) else {
            return;
        };
        let Ok(signed) = sign(message, key) else {
            return;
        };
        if message.get("type").and_then(Value::as_str) == Some("proposal") {
            let change = message
                .get("change")
                .cloned()
                .and_then(|c| serde_json::from_value::<Change>(c).ok());
            if let (Some(change), Ok(bytes)) = (change, signed_bytes(message)) {
                proposals.push((proposal_id(&bytes), content_hash(&change)));
            }
        }
        governance["signature"] = Value::String(signed.signature);
    }

    /// The dialect over every governance transaction of every block of `blocks` (a block, or an
    /// array of blocks), in order.
    pub fn sign_blocks(&self, blocks: &mut Value) {
        let mut proposals = Vec::new();
        let list: Vec<&mut Value> = match blocks {
            Value::Array(items) => items.iter_mut().collect(),
            other => vec![other],
        };
        for block in list {
            let Some(Value::Array(transactions)) = block.get_mut("transactions") else {
                continue;
            };
            for tx in transactions {
                if tx.get("kind").and_then(Value::as_str) == Some("governance") {
                    if let Some(governance) = tx.get_mut("governance") {
                        self.sign_dialect(governance, &mut proposals);
                    }
                }
            }
        }
    }
}

/// What a governance state is, for "a refusal changes nothing".
fn fingerprint(state: &GovernanceState) -> ([u8; 32], String, usize) {
    (
        governance_digest(state),
        state.active.version().to_owned(),
        state.history.len(),
    )
}

/// Governance message decoding and state rules on `bytes`: a JSON array whose items are
/// governance objects (`{"message": …, "signature": …}`, the signing dialect applies) applied in
/// order at the current height, or `{"begin": h}`, which starts block `h` when `h` is above the
/// current height (closing windows, activating what is due). A bare object is one item.
/// - decoding refuses with a typed refusal (a code and a message) or gives a message that
///   re-serializes and re-parses to itself;
/// - a refused message leaves the state exactly as it was (its digest, active set and history);
/// - starting a block never panics and never moves the active set backwards in its history.
///
/// Returns how many messages were accepted.
pub fn governance(bytes: &[u8], dev: &Dev) -> usize {
    let Ok(value) = accord_engine::json::value_from_slice(bytes) else {
        return 0;
    };
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut state = dev.state();
    let mut height = 1u64;
    let mut proposals = Vec::new();
    let mut accepted = 0;
    for (i, mut item) in items.into_iter().enumerate() {
        if let Some(h) = item.get("begin").and_then(Value::as_u64) {
            if h > height {
                let history = state.history.len();
                // Heights the genesis cannot reach are not a state's concern.
                let h = h.min(1 << 62);
                state.begin_block(h);
                height = h;
                assert!(
                    state.history.len() >= history,
                    "begin_block shrank the history"
                );
            }
            continue;
        }
        dev.sign_dialect(&mut item, &mut proposals);
        let env = match Envelope::from_value(&item) {
            Ok(env) => env,
            Err(refusal) => {
                assert!(!refusal.code().is_empty());
                assert!(!refusal.to_string().trim().is_empty(), "{refusal:?}");
                continue;
            }
        };
        let text = serde_json::to_string(&env.message).expect("a message serializes");
        let again: accord_governance::Message = accord_engine::json::parse_str(&text)
            .unwrap_or_else(|e| panic!("re-serialized message does not re-parse: {e}\n{text}"));
        assert_eq!(env.message, again, "re-parsed message differs\n{text}");
        let before = fingerprint(&state);
        match state.apply(&env, &format!("tx-{i}"), height) {
            Ok(_) => accepted += 1,
            Err(refusal) => {
                assert!(!refusal.to_string().trim().is_empty(), "{refusal:?}");
                assert_eq!(
                    before,
                    fingerprint(&state),
                    "a refused message ({}) changed the governance state",
                    refusal.code()
                );
            }
        }
    }
    accepted
}

/// A block as the server reads it (see engine_checks).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlock<'a> {
    height: u64,
    #[serde(default)]
    previous: Option<String>,
    #[serde(borrow)]
    transactions: Vec<&'a RawValue>,
}

// INVARIANT (json::Strict): a derived struct whose transactions are read later by the engine's
// reader (`PreparedBlock::from_raw`).
impl accord_engine::json::Strict for RawBlock<'_> {}

/// What a machine is, for "a refused block changes nothing".
fn machine_fingerprint(m: &StateMachine) -> (Option<u64>, String, [u8; 32], [u8; 32]) {
    (
        m.height(),
        m.state_root(),
        governance_digest(m.governance()),
        m.consents().digest(),
    )
}

/// Blocks through two state machines from the dev genesis, one fed as the command line feeds it
/// (`Block::from_json`, `apply_block`), one as the server does (`PreparedBlock::from_raw`,
/// `apply_prepared`). `bytes` is a JSON array of blocks (or one block); the signing dialect
/// applies to their governance transactions, and each block is then written out as text.
/// - every block passes [`engine_checks::block`];
/// - both machines accept or refuse each block alike, and answer alike, byte for byte;
/// - a refused block leaves the machine's height, state root, governance and consent state
///   unchanged;
/// - an accepted block moves the height to its own, the state root is the answer's, every
///   decision has the shape of a decision, and replaying the block returns the same answer and
///   changes nothing.
///
/// Returns how many blocks were accepted.
pub fn blocks(bytes: &[u8], dev: &Dev) -> usize {
    let Ok(mut value) = accord_engine::json::value_from_slice(bytes) else {
        // Not JSON: still a block input for the decoders.
        engine_checks::block(bytes);
        return 0;
    };
    dev.sign_blocks(&mut value);
    let texts: Vec<String> = match &value {
        Value::Array(items) => items.iter().map(Value::to_string).collect(),
        other => vec![other.to_string()],
    };
    let mut cli = dev.machine();
    let mut server = dev.machine();
    let mut accepted = 0;
    for text in &texts {
        engine_checks::block(text.as_bytes());
        let before = machine_fingerprint(&cli);
        assert_eq!(
            before,
            machine_fingerprint(&server),
            "the two machines diverged"
        );
        let by_cli = Block::from_json(text).map(|b| cli.apply_block(b));
        let prepared = accord_engine::json::from_str::<RawBlock<'_>>(text)
            .map(|raw| PreparedBlock::from_raw(raw.height, raw.previous, raw.transactions));
        let prepared_txs = prepared
            .as_ref()
            .ok()
            .and_then(|p| p.transactions.as_ref().ok().cloned());
        let by_server = prepared.map(|p| server.apply_prepared(p));
        match (by_cli, by_server) {
            (Ok(Ok(a)), Ok(Ok(b))) => {
                assert_eq!(a.to_json(), b.to_json(), "the two doors answer differently");
                let height = a.height;
                if before.0.is_some_and(|last| height <= last) {
                    // A replay: the stored answer, nothing changed.
                    assert_eq!(
                        before,
                        machine_fingerprint(&cli),
                        "a replay changed the state"
                    );
                } else {
                    assert_eq!(cli.height(), Some(height), "the height is not the block's");
                    assert_eq!(
                        cli.state_root(),
                        a.state_root,
                        "the root is not the answer's"
                    );
                    accepted += 1;
                }
                if let Some(transactions) = prepared_txs {
                    assert_eq!(
                        transactions.len(),
                        a.results.len(),
                        "one result per transaction"
                    );
                    for (tx, result) in transactions.iter().zip(&a.results) {
                        match (tx, result) {
                            (Transaction::Access(r), TxResult::Decided(d)) => {
                                engine_checks::check_decision(r, d)
                            }
                            (Transaction::Access(_), other) => {
                                panic!("an access transaction was not decided: {other:?}")
                            }
                            (_, TxResult::Decided(d)) => {
                                panic!("a state transaction got a decision: {d:?}")
                            }
                            _ => {}
                        }
                    }
                }
                let after = machine_fingerprint(&cli);
                let block = Block::from_json(text).expect("parsed once");
                let replay = cli
                    .apply_block(block)
                    .unwrap_or_else(|e| panic!("replaying an applied block was refused: {e}"));
                assert_eq!(
                    replay.to_json(),
                    a.to_json(),
                    "a replay answers differently"
                );
                assert_eq!(
                    after,
                    machine_fingerprint(&cli),
                    "a replay changed the state"
                );
            }
            (Ok(Err(a)), Ok(Err(b))) => {
                assert_eq!(a, b, "the two doors refuse for different reasons");
                assert!(!a.to_string().trim().is_empty());
            }
            (Err(_), Ok(Err(_))) | (Err(_), Err(_)) => {}
            // The known divergence of `engine_checks::nests_near_the_limit`: the machines part.
            (Err(e), Ok(Ok(_))) if engine_checks::nests_near_the_limit(&e) => return accepted,
            (cli_result, server_result) => panic!(
                "the doors disagree on a block: command line {:?}, server {:?}",
                cli_result.map(|r| r.map(|a| a.height)),
                server_result
                    .map(|r| r.map(|a| a.height))
                    .map_err(|e| e.to_string())
            ),
        }
        let after_cli = machine_fingerprint(&cli);
        let after_server = machine_fingerprint(&server);
        if after_cli.0 == before.0 {
            assert_eq!(before, after_cli, "a refused block changed the state");
        }
        assert_eq!(after_cli, after_server, "the two machines diverged");
    }
    accepted
}
