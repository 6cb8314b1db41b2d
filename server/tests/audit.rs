//! `GET /v1/audit/verify`: incremental verification from the checkpoint, `full=true`, tampering
//! on either side of the checkpoint, cancellation, one full verification at a time, the token.

use crate::*;
use accord_engine::{AccessRequest, InMemoryConsentRegistry};
use accord_server::decision_log::{
    Checkpoint, Record, Scope, CHECKPOINT_KEY, CHECKPOINT_TREE, TREE,
};
use accord_server::storage::StorageHealth;
use accord_server::DecisionLog;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Appends `n` entries (the allowed treatment read, decided once) straight to `log`.
fn append_to(log: &DecisionLog, n: usize) {
    let request = AccessRequest::from_json(&allow_tx().to_string()).expect("the example parses");
    let decision = bundle().decide(&request, &InMemoryConsentRegistry::default(), 0);
    let records: Vec<Record<'_>> = (0..n).map(|_| Record::new(&decision, &request)).collect();
    for chunk in records.chunks(500) {
        log.append_all(chunk).expect("append");
    }
}

async fn append(server: &TestServer, n: usize) {
    let log = server.log();
    tokio::task::spawn_blocking(move || append_to(&log, n))
        .await
        .expect("append task");
}

async fn verify(server: &TestServer, query: &str) -> Value {
    let (status, _, body) = answer(server.get(&format!("/v1/audit/verify{query}")).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// What a verification checked: (ok, length, checked_from, checked, full).
fn checked(v: &Value) -> (bool, u64, u64, u64, bool) {
    (
        v["ok"].as_bool().expect("ok"),
        v["length"].as_u64().expect("length"),
        v["checked_from"].as_u64().expect("checked_from"),
        v["checked"].as_u64().expect("checked"),
        v["full"].as_bool().expect("full"),
    )
}

/// Changes entry `seq`'s `tx` in its stored segment (its hash no longer matches).
fn tamper(data: &Path, seq: u64) {
    let db = open_db(data);
    let tree = db.open_tree(TREE).expect("tree");
    let (key, value) = tree
        .range(..=seq.to_be_bytes())
        .next_back()
        .expect("a segment holds the entry")
        .expect("read");
    let start = u64::from_be_bytes(key.as_ref().try_into().expect("8-byte key"));
    let text = String::from_utf8(value.to_vec()).expect("utf-8");
    let mut entries: Vec<String> = text.lines().map(str::to_owned).collect();
    let index = usize::try_from(seq - start).expect("index");
    assert!(
        entries[index].contains(&format!("\"seq\":{seq},")),
        "{text}"
    );
    entries[index] = entries[index].replacen("\"tx\":\"", "\"tx\":\"forged-", 1);
    let forged: String = entries.iter().map(|e| format!("{e}\n")).collect();
    tree.insert(key, forged.as_bytes()).expect("write");
    db.flush().expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_checks_only_the_entries_after_the_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let empty = verify(&server, "").await;
    assert_eq!(checked(&empty), (true, 0, 1, 0, true));
    append(&server, 300).await;
    // The first verification starts from the first entry.
    let first = verify(&server, "").await;
    assert_eq!(checked(&first), (true, 300, 1, 300, true), "{first}");
    assert_eq!(first["head"], server.log().head_hash());
    append(&server, 7).await;
    let next = verify(&server, "").await;
    assert_eq!(checked(&next), (true, 307, 301, 7, false), "{next}");
    assert_eq!(next["head"], server.log().head_hash());
    let again = verify(&server, "?full=false").await;
    assert_eq!(checked(&again), (true, 307, 308, 0, false), "{again}");
    let full = verify(&server, "?full=true").await;
    assert_eq!(checked(&full), (true, 307, 1, 307, true), "{full}");
    assert_eq!(full["head"], next["head"]);
    server.stop().await;

    // The checkpoint is durable.
    let server = TestServer::start(dir.path()).await;
    append(&server, 2).await;
    let after_restart = verify(&server, "").await;
    assert_eq!(checked(&after_restart), (true, 309, 308, 2, false));

    for (query, field) in [("?full=yes", Some("full")), ("?fulll=true", None)] {
        let body = problem(
            server.get(&format!("/v1/audit/verify{query}")).await,
            400,
            "invalid-request",
        )
        .await;
        match field {
            Some(field) => assert_eq!(body["field"], field, "{body}"),
            None => assert!(
                body["detail"].as_str().is_some_and(|d| d.contains("fulll")),
                "{body}"
            ),
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_entry_after_the_checkpoint_is_found_incrementally_one_before_only_in_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    append(&server, 10).await;
    assert_eq!(checked(&verify(&server, "").await), (true, 10, 1, 10, true));
    append(&server, 10).await;
    server.stop().await;
    tamper(dir.path(), 4);
    tamper(dir.path(), 15);

    let server = TestServer::start(dir.path()).await;
    let incremental = verify(&server, "").await;
    assert_eq!(
        checked(&incremental),
        (false, 14, 11, 4, false),
        "{incremental}"
    );
    assert_eq!(incremental["broken"]["seq"], 15);
    assert!(
        incremental["broken"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("hash mismatch")),
        "{incremental}"
    );
    let full = verify(&server, "?full=true").await;
    assert_eq!(checked(&full), (false, 3, 1, 3, true), "{full}");
    assert_eq!(full["broken"]["seq"], 4);
    // The full verification moved the checkpoint back before the entry it found broken: the
    // incremental verification now finds that entry too.
    let after = verify(&server, "").await;
    assert_eq!(checked(&after), (false, 3, 4, 0, false), "{after}");
    assert_eq!(after["broken"]["seq"], 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_verification_stops_when_its_client_goes_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let total = 8 * accord_server::decision_log::CHUNK_ENTRIES as usize;
    append(&server, total).await;
    let log = server.log();
    // Each chunk after the first waits 200 ms: run to its end, the verification would take
    // 1.4 s and check every entry.
    log.pace_verification(Duration::from_millis(200));
    let gone = server
        .client
        .get(server.url("/v1/audit/verify?full=true"))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(gone.is_err_and(|e| e.is_timeout()), "the client gave up");
    let mut waited = 0;
    while log.full_verification_running() {
        assert!(waited < 100, "the verification still runs after 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let stats = log.verify_stats();
    assert_eq!(stats.cancelled.load(Ordering::SeqCst), 1);
    let done = stats.entries_checked.load(Ordering::SeqCst);
    assert!(
        done < total as u64 / 2,
        "stopped after {done} of {total} entries"
    );
    log.pace_verification(Duration::ZERO);
    let full = verify(&server, "?full=true").await;
    assert_eq!(checked(&full), (true, total as u64, 1, total as u64, true));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_full_verification_runs_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let total = 4 * accord_server::decision_log::CHUNK_ENTRIES as usize;
    append(&server, total).await;
    let log = server.log();
    log.pace_verification(Duration::from_millis(150));
    let first = {
        let request = server.client.get(server.url("/v1/audit/verify?full=true"));
        tokio::spawn(async move { request.send().await })
    };
    let mut waited = 0;
    while !log.full_verification_running() {
        assert!(waited < 200, "the first verification did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    let refused = server.get("/v1/audit/verify?full=true").await;
    assert_eq!(
        refused.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let body = problem(refused, 429, "verification-in-progress").await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("full verification")),
        "{body}"
    );
    let (status, _, first) = answer(first.await.expect("task").expect("response")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(checked(&first), (true, total as u64, 1, total as u64, true));
    log.pace_verification(Duration::ZERO);
    assert_eq!(
        checked(&verify(&server, "?full=true").await),
        (true, total as u64, 1, total as u64, true)
    );
    let text = server.get("/metrics").await.text().await.expect("text");
    assert!(
        text.contains("accord_problems_total{type=\"verification-in-progress\"} 1"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_needs_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_with(dir.path(), |c| {
        c.tokens = Some(accord_server::tokens::Tokens::single("s3cret"))
    })
    .await;
    for query in ["", "?full=true"] {
        let url = server.url(&format!("/v1/audit/verify{query}"));
        problem(
            server.get(&format!("/v1/audit/verify{query}")).await,
            401,
            "unauthorized",
        )
        .await;
        let wrong = server.client.get(&url).bearer_auth("guess").send().await;
        problem(wrong.expect("response"), 401, "unauthorized").await;
        let right = server.client.get(&url).bearer_auth("s3cret").send().await;
        let (status, _, body) = answer(right.expect("response")).await;
        assert_eq!((status, body["ok"].clone()), (200, json!(true)), "{body}");
    }
    server.stop().await;
}

/// A log in `dir` with `n` entries, verified once (checkpoint at `n`).
fn verified_log(dir: &Path, n: usize) -> (sled::Db, DecisionLog) {
    let db = open_db(dir);
    let log = DecisionLog::open(&db, StorageHealth::new()).expect("log");
    append_to(&log, n);
    let v = log
        .verify_scope(Scope::SinceCheckpoint, &AtomicBool::new(false))
        .expect("verify")
        .expect("not cancelled");
    assert_eq!((v.ok, v.length), (true, n as u64));
    (db, log)
}

#[test]
fn the_checkpoint_entry_itself_must_still_be_the_one_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, log) = verified_log(dir.path(), 5);
    drop((log, db));
    tamper(dir.path(), 5);
    let db = open_db(dir.path());
    let log = DecisionLog::open(&db, StorageHealth::new()).expect("log");
    let v = log
        .verify_scope(Scope::SinceCheckpoint, &AtomicBool::new(false))
        .expect("verify")
        .expect("not cancelled");
    assert!(!v.ok);
    assert_eq!((v.length, v.checked_from, v.checked), (4, 6, 0));
    let broken = v.broken.expect("broken");
    assert_eq!(broken.seq, 5);
    assert!(
        broken.reason.starts_with("hash mismatch"),
        "{}",
        broken.reason
    );
}

#[test]
fn entries_removed_below_the_checkpoint_are_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, log) = verified_log(dir.path(), 3);
    drop(log);
    // One round wrote the three entries into one segment: keep only the first.
    let tree = db.open_tree(TREE).expect("tree");
    let keys: Vec<_> = tree.iter().keys().map(|k| k.expect("key")).collect();
    assert_eq!(keys.len(), 1, "one round, one segment");
    let value = tree.get(&keys[0]).expect("read").expect("segment");
    let text = String::from_utf8(value.to_vec()).expect("utf-8");
    let first: String = text
        .lines()
        .next()
        .map(|l| format!("{l}\n"))
        .expect("entry");
    let first_hash = accord_engine::json::value_from_str(&first).expect("JSON")["hash"].clone();
    tree.insert(&keys[0], first.as_bytes()).expect("write");
    db.flush().expect("flush");
    drop((tree, db));
    let db = open_db(dir.path());
    let log = DecisionLog::open(&db, StorageHealth::new()).expect("log");
    let v = log
        .verify_scope(Scope::SinceCheckpoint, &AtomicBool::new(false))
        .expect("verify")
        .expect("not cancelled");
    let broken = v.broken.expect("broken");
    assert_eq!((v.ok, v.length, broken.seq), (false, 1, 2));
    assert_eq!(
        broken.reason,
        "missing entry: the log ends at entry 1, before entry 3, which was verified"
    );
    assert_eq!(Some(v.head.as_str()), first_hash.as_str());
}

#[test]
fn an_unreadable_checkpoint_means_verifying_from_the_first_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, log) = verified_log(dir.path(), 4);
    db.open_tree(CHECKPOINT_TREE)
        .expect("tree")
        .insert(CHECKPOINT_KEY, &b"garbage"[..])
        .expect("write");
    assert_eq!(log.checkpoint().expect("read").0, Checkpoint::genesis());
    let v = log
        .verify_scope(Scope::SinceCheckpoint, &AtomicBool::new(false))
        .expect("verify")
        .expect("not cancelled");
    assert_eq!(
        (v.ok, v.length, v.checked_from, v.checked, v.full),
        (true, 4, 1, 4, true)
    );
    // ... and the checkpoint is whole again.
    assert_eq!(log.checkpoint().expect("read").0.seq, 4);
}
