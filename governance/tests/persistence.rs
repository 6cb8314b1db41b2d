//! A node restarts where the last fully applied block left it: after a clean shutdown, and after
//! a SIGKILL in the middle of applying blocks (the store commits each block as one atomic sled
//! batch, so a restart sees the state after some block h, never part of a block).

use crate::common::*;
use accord_engine::ConsentRegistry;
use accord_governance::machine::state_root;
use accord_governance::{BlockAnswer, Genesis, StateMachine, Status};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn grant(id: &str, consent_id: &str) -> Value {
    json!({ "id": id, "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
            "consent": { "id": consent_id, "status": "active", "patient": "patient/d-4",
                         "grantee": "org/uni-lab", "purposes": ["HRESCH"], "actions": ["read"],
                         "data_categories": ["general"],
                         "period": { "start": "2026-02-01T00:00:00Z",
                                     "end": "2027-02-01T00:00:00Z" } } })
}

fn representation(id: &str) -> Value {
    json!({ "id": id, "kind": "representation", "timestamp": "2026-02-01T09:00:00Z",
            "representation": { "id": "rep/1", "status": "active", "patient": "patient/d-4",
                                "representative": "related/agent", "basis": "health-care-agent" } })
}

fn agreement(id: &str) -> Value {
    json!({ "id": id, "kind": "agreement", "timestamp": "2026-02-01T09:00:00Z",
            "agreement": { "id": "dua/1", "status": "active", "type": "data-use-agreement",
                           "discloser": "org/st-marys", "recipient": "org/uni-lab",
                           "purposes": ["HRESCH"],
                           "assurances": ["no-other-use-or-disclosure", "safeguards",
                                          "report-violations", "agents-bound",
                                          "no-identification-or-contact"] } })
}

/// The state root recomputed from what the machine holds (not the stored answer's copy).
fn recomputed_root(m: &StateMachine) -> String {
    state_root(m.governance(), &m.consents().digest())
}

fn open(
    genesis: &Genesis,
    dir: &std::path::Path,
) -> Result<(StateMachine, sled::Db), accord_governance::OpenError> {
    let (_, bundle) = crate::common::genesis();
    let db = sled::open(dir).unwrap();
    StateMachine::open(genesis, bundle, &db).map(|m| (m, db))
}

#[test]
fn a_restarted_node_resumes_exactly_where_it_stopped() {
    let (genesis, bundle) = genesis();
    let dir = tempfile::tempdir().unwrap();
    let tighten = proposal_message(MEMBERS[0], "tighten", &drop_uruguay_adequacy());
    let t = ids_of(&tighten);
    let rename = proposal_message(MEMBERS[1], "rename", &rename(MEMBERS[2], "Lab"));
    let r = ids_of(&rename);
    let blocks = vec![
        block(
            1,
            vec![
                grant("c-1", "consent/a"),
                signed("g-1", tighten, MEMBERS[0]),
            ],
        ),
        block(
            2,
            vec![
                signed("g-2", vote_message(&t, MEMBERS[0], "yes"), MEMBERS[0]),
                signed("g-3", vote_message(&t, MEMBERS[1], "yes"), MEMBERS[1]),
                share_to_uruguay("a-2"),
            ],
        ),
        block(
            3,
            vec![
                grant("c-2", "consent/b"),
                representation("r-1"),
                agreement("d-1"),
            ],
        ),
        block(4, vec![share_to_uruguay("a-4")]),
        block(
            5,
            vec![
                signed("g-4", rename, MEMBERS[1]),
                signed("g-5", vote_message(&r, MEMBERS[2], "no"), MEMBERS[2]),
                share_to_uruguay("a-5"),
            ],
        ),
    ];
    let next = block(6, vec![share_to_uruguay("a-6"), grant("c-3", "consent/c")]);

    let (before, answers) = {
        let (mut m, _db) = open(&genesis, dir.path()).unwrap();
        let answers: Vec<Arc<BlockAnswer>> = blocks
            .iter()
            .map(|b| m.apply_block(b.clone()).unwrap())
            .collect();
        let gov = m.governance();
        assert_eq!(gov.proposals[&t.0].status, Status::Active, "activated at 4");
        assert_eq!(gov.proposals[&r.0].status, Status::Voting);
        let snapshot = (
            m.height(),
            m.state_root(),
            gov.proposals.clone(),
            gov.history.clone(),
            gov.membership.clone(),
            gov.params.clone(),
            gov.next_seq,
            m.consents().digest(),
            m.consents().len(),
            gov.active.version().to_owned(),
        );
        (snapshot, answers)
        // The machine and the database are dropped here: a clean shutdown.
    };

    let (mut m, db) = open(&genesis, dir.path()).unwrap();
    let gov = m.governance();
    let after = (
        m.height(),
        m.state_root(),
        gov.proposals.clone(),
        gov.history.clone(),
        gov.membership.clone(),
        gov.params.clone(),
        gov.next_seq,
        m.consents().digest(),
        m.consents().len(),
        gov.active.version().to_owned(),
    );
    assert_eq!(after, before);
    assert_eq!(after.0, Some(5));
    assert!(
        m.consents().relations().representation("rep/1").is_some()
            && m.consents().relations().agreement("dua/1").is_some(),
        "representations and agreements are restored"
    );
    assert_eq!(
        recomputed_root(&m),
        before.1,
        "the restored state hashes to the stored root"
    );
    // The active set was rebuilt from the stored bundle of the activated proposal.
    assert_ne!(gov.active.version(), bundle.version());
    assert_eq!(gov.active.version(), gov.history[1].version);
    let published = m.published().policy.current();
    assert_eq!(
        (published.version(), published.activated_at_height),
        (gov.history[1].version.as_str(), 4)
    );
    // Replays return the stored answers, the last and an earlier one.
    assert_eq!(m.apply_block(blocks[4].clone()).unwrap(), answers[4]);
    assert_eq!(m.apply_block(blocks[1].clone()).unwrap(), answers[1]);
    // The next block applies exactly as on a node that never stopped.
    let mut memory = StateMachine::new(&genesis, bundle.clone());
    for b in &blocks {
        memory.apply_block(b.clone()).unwrap();
    }
    let resumed = m.apply_block(next.clone()).unwrap();
    let expected = memory.apply_block(next).unwrap();
    assert_eq!(resumed, expected);
    assert!(
        !resumed.decisions().next().unwrap().is_allow(),
        "still the tightened set"
    );
    let active = m.governance().active.version().to_owned();
    drop(m);

    // Bundles live in their own tree, content-addressed.
    {
        let bundles = db.open_tree("accord-bundles").unwrap();
        let stored: Vec<_> = bundles.iter().map(Result::unwrap).collect();
        assert_eq!(
            stored.len(),
            2,
            "the genesis bundle and the activated proposal's"
        );
        assert!(stored.iter().all(|(k, _)| k.starts_with(b"bundle/sha256:")));
    }
    drop(db);
    let (m, db) = open(&genesis, dir.path()).unwrap();
    assert_eq!(m.governance().active.version(), active);
    drop(m);
    drop(db);

    // Another genesis (other voting rules) may not reopen this data directory.
    let mut other = genesis.clone();
    other.voting.voting_period = 11;
    let err = open(&other, dir.path()).err().unwrap();
    assert!(err.to_string().contains("was made under genesis"), "{err}");
}

// ---------------------------------------------------------------- stored answers

/// The sled key of the answer to block `height` (docs/governance.md).
fn answer_key(height: u64) -> Vec<u8> {
    let mut key = b"answer/".to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key
}

#[test]
fn answers_are_stored_compressed_and_replay_after_a_restart() {
    let (genesis, _) = genesis();
    let dir = tempfile::tempdir().unwrap();
    let blocks: Vec<_> = (1..=3)
        .map(|h| {
            let mut txs = vec![grant(&format!("c-{h}"), &format!("consent/{h}"))];
            txs.extend((0..40).map(|i| share_to_uruguay(&format!("a-{h}-{i}"))));
            block(h, txs)
        })
        .collect();
    let answers: Vec<Arc<BlockAnswer>> = {
        let (mut m, db) = open(&genesis, dir.path()).unwrap();
        let answers: Vec<Arc<BlockAnswer>> = blocks
            .iter()
            .map(|b| m.apply_block(b.clone()).unwrap())
            .collect();
        drop(m);
        let tree = db.open_tree("accord-state").unwrap();
        for a in &answers {
            let stored = tree.get(answer_key(a.height)).unwrap().unwrap();
            // Tag 1, then LZ4: 41 results of two shapes shrink several times.
            assert_eq!(stored[0], 1, "height {}", a.height);
            assert!(
                stored.len() * 4 < a.to_json().len(),
                "height {}: {} stored bytes for {} of JSON",
                a.height,
                stored.len(),
                a.to_json().len()
            );
        }
        answers
    };
    let (mut m, db) = open(&genesis, dir.path()).unwrap();
    for (b, a) in blocks.iter().zip(&answers) {
        let replayed = m.apply_block(b.clone()).unwrap();
        assert_eq!(&replayed, a, "height {}", a.height);
        assert_eq!(replayed.to_json(), a.to_json(), "height {}", a.height);
    }

    // A stored answer that cannot be read is an error naming it, never a made-up answer.
    let tree = db.open_tree("accord-state").unwrap();
    for (stored, reason) in [
        (vec![7u8, 1, 2], "unknown encoding 0x07".to_owned()),
        // Uncompressed JSON text is not an encoding the store writes.
        (
            answers[1].to_json().as_bytes().to_vec(),
            "unknown encoding 0x7b".to_owned(),
        ),
        (vec![1u8, 9], "truncated".to_owned()),
        (
            vec![1u8, 255, 255, 255, 255],
            "claims 4294967295 bytes".to_owned(),
        ),
        (
            vec![1u8, 100, 0, 0, 0, 0xf0],
            "expected another byte".to_owned(),
        ),
        (Vec::new(), "empty".to_owned()),
    ] {
        tree.insert(answer_key(1), stored.clone()).unwrap();
        let err = m.apply_block(blocks[0].clone()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("stored `answer/1` is unreadable: {reason}")),
            "{stored:?}: {err}"
        );
    }
}

// ---------------------------------------------------------------- kill -9 in the middle

/// The environment variable that turns `killed_child_applies_blocks_until_killed` into the
/// child process of `a_node_killed_mid_block_restarts_on_the_last_whole_block`.
const CHILD_DIR: &str = "ACCORD_KILL_CHILD_DIR";
const LAST_HEIGHT: u64 = 400;

/// Block `h` of the kill test, the same in parent and child: a consent, an access decision, and
/// governance traffic (a policy change activating at 5, renames passing every 7 blocks).
fn kill_block(h: u64) -> accord_engine::ledger::Block {
    let mut txs = vec![
        grant(&format!("c-{h}"), &format!("consent/{h}")),
        share_to_uruguay(&format!("a-{h}")),
    ];
    let tighten = proposal_message(MEMBERS[0], "tighten", &drop_uruguay_adequacy());
    let proposer = MEMBERS[(h / 7 % 3) as usize];
    let rename_at = |at: u64| {
        let mut m = proposal_message(
            proposer,
            "rename",
            &rename(MEMBERS[2], &format!("Lab {at}")),
        );
        m["nonce"] = json!(at.to_string());
        m
    };
    match h {
        1 => txs.push(signed("g-t", tighten, MEMBERS[0])),
        2 => {
            let ids = ids_of(&tighten);
            for v in [MEMBERS[0], MEMBERS[1]] {
                txs.push(signed(&format!("g-t-{v}"), vote_message(&ids, v, "yes"), v));
            }
        }
        h if h >= 7 && h % 7 == 0 => txs.push(signed(&format!("g-{h}"), rename_at(h), proposer)),
        h if h >= 7 && h % 7 == 1 => {
            let ids = ids_of(&rename_at(h - 1));
            for v in [MEMBERS[1], MEMBERS[2]] {
                txs.push(signed(
                    &format!("g-{h}-{v}"),
                    vote_message(&ids, v, "yes"),
                    v,
                ));
            }
        }
        _ => {}
    }
    block(h, txs)
}

/// In the child process only: applies kill blocks to the sled database in `ACCORD_KILL_CHILD_DIR`
/// from where it stands, printing each committed height, until killed. Run normally, it returns.
#[test]
fn killed_child_applies_blocks_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let (genesis, _) = genesis();
    let (mut m, _db) = open(&genesis, std::path::Path::new(&dir)).unwrap();
    let start = m.next_height();
    println!("resumed at {start}");
    for h in start..=LAST_HEIGHT {
        m.apply_block(kill_block(h)).unwrap();
        println!("applied {h}");
    }
    println!("done");
}

fn pseudo_random(bound: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos.wrapping_mul(6364136223846793005).rotate_left(17) % bound
}

#[test]
fn a_node_killed_mid_block_restarts_on_the_last_whole_block() {
    let (genesis, bundle) = genesis();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // One in-memory reference, fed block by block as far as the restarts reach.
    let mut memory = StateMachine::new(&genesis, bundle.clone());
    let mut reference: Vec<String> = Vec::new();
    let mut last_h = 0;
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "persistence::killed_child_applies_blocks_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the child has committed a few more blocks, then kill it after a short
        // random delay: usually in the middle of a block.
        let target = last_h + 3 + pseudo_random(12);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(h) = line.strip_prefix("applied ") {
                seen = h.parse().unwrap();
                if seen >= target {
                    break;
                }
            }
            assert_ne!(line, "done", "the child finished before it was killed");
        }
        std::thread::sleep(Duration::from_millis(pseudo_random(40)));
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        drop(lines);

        let (m, db) = open(&genesis, dir.path()).unwrap();
        let h = m.height().unwrap();
        eprintln!("round {round}: the child reported block {seen}, the store holds {h}");
        assert!(
            h >= seen,
            "round {round}: block {seen} was reported committed, the store is at {h}"
        );
        while reference.len() < h as usize {
            let next = reference.len() as u64 + 1;
            let answer = memory.apply_block(kill_block(next)).unwrap();
            reference.push(answer.state_root.clone());
        }
        assert_eq!(
            recomputed_root(&m),
            reference[h as usize - 1],
            "round {round}: the restored state after block {h} equals a node fed blocks 1..={h}"
        );
        assert_eq!(m.state_root(), reference[h as usize - 1]);
        assert_eq!(
            m.governance().active.version(),
            memory.governance().active.version()
        );
        assert_eq!(m.consents().len(), h as usize, "one consent per block");
        last_h = h;
        drop(m);
        drop(db);
    }
    assert!(
        last_h >= 9,
        "three rounds got past the policy activation at 5"
    );
}
