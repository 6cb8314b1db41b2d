//! The fuzz targets' governance invariants (fuzz/src/governance_checks.rs) on generated inputs,
//! so that every `cargo test` checks them: governance message sequences and blocks from the
//! dev consortium's lifecycle, with one structured mutation (fuzz/properties/mutate.rs), signed
//! with the dev keys where they ask to be (the signing dialect), and arbitrary bytes. Inputs
//! that once broke an invariant (fuzz/regressions/) are replayed here too.

#[allow(dead_code)]
#[path = "../../fuzz/src/engine_checks.rs"]
mod engine_checks;

#[allow(dead_code)]
#[path = "../../fuzz/src/governance_checks.rs"]
mod governance_checks;

#[allow(dead_code)]
#[path = "../../fuzz/properties/mutate.rs"]
mod mutate;

use governance_checks::Dev;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dev() -> &'static Dev {
    static DEV: OnceLock<Dev> = OnceLock::new();
    DEV.get_or_init(|| Dev::load(&repo()))
}

const C: &str = "health-net-dev";
const A: &str = "member/st-marys";
const B: &str = "member/acme-insurance";

fn signed(message: Value) -> Value {
    json!({ "message": message, "signature": "dev" })
}

/// A proposal (a cheap change: a member's new name), two votes, a cancel, and block starts.
fn lifecycle() -> Value {
    json!([
        signed(json!({ "type": "proposal", "consortium": C, "proposer": A, "title": "rename",
                       "change": { "kind": "update_member", "member": B, "name": "Acme" } })),
        signed(json!({ "type": "vote", "consortium": C, "proposal": "@0", "content": "@0",
                       "voter": A, "choice": "yes" })),
        { "begin": 3 },
        signed(json!({ "type": "vote", "consortium": C, "proposal": "@0", "content": "@0",
                       "voter": B, "choice": "no" })),
        signed(json!({ "type": "cancel", "consortium": C, "proposal": "@0", "proposer": A })),
        { "begin": 20 },
    ])
}

/// Blocks: a consent, accesses, and the lifecycle's messages as governance transactions.
fn block_sequence() -> Value {
    let share = {
        let text = std::fs::read_to_string(repo().join("examples/share-to-uruguay.json"))
            .expect("example");
        accord_engine::json::value_from_str(&text).expect("example parses")
    };
    let gov = |i: usize, g: Value| {
        json!({ "id": format!("g{i}"), "kind": "governance", "timestamp": "2026-03-02T08:00:00Z",
                "governance": g })
    };
    let items = lifecycle();
    let items = items.as_array().expect("array");
    json!([
        { "height": 1, "transactions": [gov(0, items[0].clone()), share.clone()] },
        { "height": 2, "transactions": [
            { "id": "c1", "kind": "consent", "timestamp": "2026-03-01T09:00:00Z",
              "consent": { "id": "consent/c-1", "status": "active", "patient": "patient/p-1",
                           "grantee": "org/uni-lab", "purposes": ["HRESCH"],
                           "actions": ["read"], "data_categories": ["general"] } },
            gov(1, items[1].clone()), gov(3, items[3].clone()), share ] },
        { "height": 3, "transactions": [gov(4, items[4].clone())] },
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_governance_messages_keep_every_invariant(bytes in mutate::near_valid(vec![lifecycle()])) {
        governance_checks::governance(&bytes, dev());
    }

    #[test]
    fn mutated_blocks_keep_every_invariant(bytes in mutate::near_valid(vec![block_sequence()])) {
        governance_checks::blocks(&bytes, dev());
    }

    #[test]
    fn arbitrary_bytes_never_break_the_governance_doors(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        governance_checks::governance(&bytes, dev());
        governance_checks::blocks(&bytes, dev());
    }
}

#[test]
fn the_unmutated_lifecycle_is_accepted() {
    // The dialect works: the proposal, both votes and the cancel are accepted, so that mutations
    // of it reach the state rules.
    let bytes = serde_json::to_vec(&lifecycle()).expect("serializes");
    assert_eq!(governance_checks::governance(&bytes, dev()), 4);
    let bytes = serde_json::to_vec(&block_sequence()).expect("serializes");
    assert_eq!(governance_checks::blocks(&bytes, dev()), 3);
}

#[test]
fn regression_inputs_keep_every_invariant() {
    for target in ["governance", "block"] {
        let dir = repo().join("fuzz/regressions").join(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for file in files {
            eprintln!("{}", file.display());
            let bytes = std::fs::read(&file).expect("readable");
            match target {
                "governance" => {
                    governance_checks::governance(&bytes, dev());
                }
                _ => {
                    governance_checks::blocks(&bytes, dev());
                }
            }
        }
    }
}
