//! The decision log through the API: paging and filters, verification, restart, tampering;
//! metrics and readiness.

use crate::*;
use accord_server::decision_log::{DOMAIN, GENESIS_PREV, TREE};
use serde_json::json;
use sha2::{Digest, Sha256};

async fn fill(server: &TestServer) {
    // 5 entries: allow, deny, and a batch of allow, deny, allow.
    assert_eq!(
        server
            .post_json("/v1/evaluate", &allow_tx())
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        server
            .post_json("/v1/evaluate", &deny_tx())
            .await
            .status()
            .as_u16(),
        200
    );
    let batch = json!({ "transactions": [with_id(allow_tx(), "tx-a2"), with_id(deny_tx(), "tx-d2"), with_id(allow_tx(), "tx-a3")] });
    assert_eq!(
        server
            .post_json("/v1/evaluate/batch", &batch)
            .await
            .status()
            .as_u16(),
        200
    );
}

fn seqs(body: &Value) -> Vec<u64> {
    body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_page_and_filter_and_the_chain_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    fill(&server).await;

    let (status, _, all) = answer(server.get("/v1/decisions").await).await;
    assert_eq!(status, 200);
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5]);
    assert_eq!(all["next_after"], Value::Null);
    let first = &all["decisions"][0];
    assert_eq!(first["prev"], GENESIS_PREV);
    assert_eq!(first["patient"], "patient/p-1");
    insta::assert_json_snapshot!("log_entry", first, {
        ".policy_version" => "[version]", ".hash" => "[hash]"
    });
    // Each entry links to the one before and hashes as documented.
    for pair in all["decisions"].as_array().expect("entries").windows(2) {
        assert_eq!(pair[1]["prev"], pair[0]["hash"]);
    }
    let mut unhashed = first.clone();
    unhashed.as_object_mut().expect("object").remove("hash");
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(accord_engine::canonical::to_string(&unhashed).as_bytes());
    assert_eq!(
        first["hash"],
        format!("sha256:{}", hex::encode(hasher.finalize()))
    );

    let (_, _, page) = answer(server.get("/v1/decisions?limit=2").await).await;
    assert_eq!(
        (seqs(&page), page["next_after"].clone()),
        (vec![1, 2], json!(2))
    );
    let (_, _, page) = answer(server.get("/v1/decisions?after=2&limit=2").await).await;
    assert_eq!(seqs(&page), [3, 4]);
    let (_, _, page) = answer(server.get("/v1/decisions?outcome=deny").await).await;
    assert_eq!(seqs(&page), [2, 4]);
    let (_, _, page) = answer(server.get("/v1/decisions?tx=tx-a3").await).await;
    assert_eq!(seqs(&page), [5]);
    let (_, _, page) = answer(server.get("/v1/decisions?patient=patient%2Fd-1").await).await;
    assert_eq!(seqs(&page), [2, 4]);
    let version = all["decisions"][0]["policy_version"]
        .as_str()
        .expect("version")
        .to_owned();
    let (_, _, page) = answer(
        server
            .get(&format!("/v1/decisions?version={version}"))
            .await,
    )
    .await;
    assert_eq!(seqs(&page).len(), 5);
    let (_, _, page) = answer(server.get("/v1/decisions?version=sha256:other").await).await;
    assert_eq!(seqs(&page).len(), 0);

    let body = problem(
        server.get("/v1/decisions?pateint=x").await,
        400,
        "invalid-request",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("pateint")),
        "{body}"
    );
    let body = problem(
        server.get("/v1/decisions?limit=lots").await,
        400,
        "invalid-request",
    )
    .await;
    assert_eq!(body["field"], "limit");
    let body = problem(
        server.get("/v1/decisions?outcome=maybe").await,
        400,
        "invalid-request",
    )
    .await;
    assert_eq!(body["field"], "outcome");

    let (status, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(status, 200);
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["length"], 5);
    assert_eq!(verify["head"], all["decisions"][4]["hash"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_log_and_continues_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    fill(&server).await;
    let (_, _, before) = answer(server.get("/v1/audit/verify").await).await;
    server.stop().await;

    let server = TestServer::start(dir.path()).await;
    assert_eq!(
        server
            .post_json("/v1/evaluate", &with_id(allow_tx(), "tx-after"))
            .await
            .status()
            .as_u16(),
        200
    );
    let (_, _, page) = answer(server.get("/v1/decisions?after=5").await).await;
    assert_eq!(seqs(&page), [6]);
    assert_eq!(page["decisions"][0]["prev"], before["head"]);
    let (_, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(
        (verify["ok"].clone(), verify["length"].clone()),
        (json!(true), json!(6))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_entry_is_found_at_its_sequence_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    fill(&server).await;
    server.stop().await;

    // Turn entry 4's deny into an allow, directly in its stored segment.
    {
        let db = open_db(dir.path());
        let tree = db.open_tree(TREE).expect("tree");
        let (key, value) = tree
            .range(..=4u64.to_be_bytes())
            .next_back()
            .expect("a segment holds entry 4")
            .expect("read");
        let start = u64::from_be_bytes(key.as_ref().try_into().expect("8-byte key"));
        let text = String::from_utf8(value.to_vec()).expect("utf-8");
        let mut entries: Vec<String> = text.lines().map(str::to_owned).collect();
        let index = usize::try_from(4 - start).expect("index");
        assert!(entries[index].contains("\"seq\":4"), "{text}");
        assert!(entries[index].contains("\"outcome\":\"deny\""), "{text}");
        entries[index] = entries[index].replace("\"outcome\":\"deny\"", "\"outcome\":\"allow\"");
        let forged: String = entries.iter().map(|e| format!("{e}\n")).collect();
        tree.insert(key, forged.as_bytes()).expect("write");
        db.flush().expect("flush");
    }

    let server = TestServer::start(dir.path()).await;
    let (status, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(status, 200);
    assert_eq!(verify["ok"], false);
    assert_eq!(
        verify["length"], 3,
        "three sound entries before the broken one"
    );
    assert_eq!(verify["broken"]["seq"], 4);
    assert!(
        verify["broken"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("hash mismatch")),
        "{verify}"
    );
    server.stop().await;

    // Removing entries is found too: the next key is not the expected sequence number. Entry 2
    // was answered alone (`fill`), so its segment holds it alone.
    {
        let db = open_db(dir.path());
        db.open_tree(TREE)
            .expect("tree")
            .remove(2u64.to_be_bytes())
            .expect("remove")
            .expect("entry 2 starts a segment");
        db.flush().expect("flush");
    }
    // Entry 2 is inside the prefix verified before (up to entry 3, the last sound one): the
    // incremental verification still stops at entry 4, only a full one finds the gap.
    let server = TestServer::start(dir.path()).await;
    let (_, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(verify["broken"]["seq"], 4, "{verify}");
    let (_, _, verify) = answer(server.get("/v1/audit/verify?full=true").await).await;
    assert_eq!(verify["broken"]["seq"], 2, "{verify}");
    assert_eq!(verify["length"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_spans_several_segments_and_reads_across_them() {
    use accord_server::decision_log::SEGMENT_ENTRIES;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    // One request, one write round: more entries than one segment holds.
    let n = SEGMENT_ENTRIES + 6;
    let transactions: Vec<Value> = (0..n)
        .map(|i| with_id(allow_tx(), &format!("tx-s{i}")))
        .collect();
    let status = server
        .post_json(
            "/v1/evaluate/batch",
            &json!({ "transactions": transactions }),
        )
        .await
        .status();
    assert_eq!(status.as_u16(), 200);
    server.stop().await;

    // The round was stored as consecutive segments (split by entry count or by size).
    let keys: Vec<u64> = {
        let db = open_db(dir.path());
        let tree = db.open_tree(TREE).expect("tree");
        tree.iter()
            .keys()
            .map(|k| u64::from_be_bytes(k.expect("key").as_ref().try_into().expect("8 bytes")))
            .collect()
    };
    assert!(keys.len() >= 2 && keys[0] == 1, "{keys:?}");
    let second = keys[1];
    assert!(second <= SEGMENT_ENTRIES as u64 + 1, "{keys:?}");

    // A page that starts inside the first segment and ends inside the second.
    let server = TestServer::start(dir.path()).await;
    let after = second - 3;
    let (_, _, page) = answer(
        server
            .get(&format!("/v1/decisions?after={after}&limit=4"))
            .await,
    )
    .await;
    assert_eq!(seqs(&page), (after + 1..after + 5).collect::<Vec<u64>>());
    for pair in page["decisions"].as_array().expect("entries").windows(2) {
        assert_eq!(pair[1]["prev"], pair[0]["hash"], "linked across segments");
    }
    let (_, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(
        (verify["ok"].clone(), verify["length"].clone()),
        (json!(true), json!(n))
    );
    server.stop().await;

    // Cutting a segment's final newline makes it unreadable. In the first segment, verification
    // names its first entry; in the last one, the log refuses to open (it cannot recover the chain
    // head) and says which entry.
    let cut = |key: u64| {
        let db = open_db(dir.path());
        let tree = db.open_tree(TREE).expect("tree");
        let value = tree.get(key.to_be_bytes()).expect("read").expect("segment");
        tree.insert(key.to_be_bytes(), &value[..value.len() - 1])
            .expect("write");
        db.flush().expect("flush");
    };
    cut(1);
    let server = TestServer::start(dir.path()).await;
    // The first segment was verified before: only a full verification reads it again.
    let (_, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(verify["ok"], true, "{verify}");
    let (_, _, verify) = answer(server.get("/v1/audit/verify?full=true").await).await;
    assert_eq!(verify["ok"], false);
    assert_eq!(verify["length"], 0);
    assert_eq!(verify["broken"]["seq"], 1);
    assert_eq!(
        verify["broken"]["reason"],
        "segment does not end with a newline"
    );
    server.stop().await;
    let last = *keys.last().expect("keys");
    cut(last);
    let db = open_db(dir.path());
    let refused =
        accord_server::DecisionLog::open(&db, accord_server::storage::StorageHealth::new())
            .map(|_| ());
    assert_eq!(
        refused.map_err(|e| e.to_string()),
        Err(format!(
            "decision log entry {last} is corrupt: last segment: segment does not end with a newline"
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_readiness_and_health() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    fill(&server).await;
    let _ = server.post_raw("/v1/evaluate", "text/plain", "x").await;
    let (status, _, health) = answer(server.get("/healthz").await).await;
    assert_eq!((status, health), (200, json!({ "status": "ok" })));
    let (status, _, ready) = answer(server.get("/readyz").await).await;
    assert_eq!(status, 200);
    assert_eq!(ready["decision_log"]["entries"], 5);
    assert_eq!(ready["policy_set"]["name"], "accord-default");

    let response = server.get("/metrics").await;
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")));
    let text = response.text().await.expect("text");
    for line in [
        "accord_decisions_total{outcome=\"allow\"} 3",
        "accord_decisions_total{outcome=\"deny\"} 2",
        "accord_request_duration_seconds_count{endpoint=\"evaluate\"} 3",
        "accord_request_duration_seconds_count{endpoint=\"evaluate_batch\"} 1",
        "accord_problems_total{type=\"unsupported-media-type\"} 1",
        "accord_applied_height 0",
        "accord_decision_log_entries 5",
        "# HELP accord_decisions_total Decisions made, by outcome.\n# TYPE accord_decisions_total counter\n",
        "# TYPE accord_request_duration_seconds histogram\n",
        "# HELP accord_members Consortium members.\n# TYPE accord_members gauge\naccord_members 3\n",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(text.contains("accord_policy_set_info{name=\"accord-default\",version=\"sha256:"));
    assert!(
        text.contains(
            "accord_module_decisions_total{module=\"gdpr/cross-border\",outcome=\"deny\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains("accord_request_duration_seconds_count{endpoint=\"blocks\"} 0"));

    // Blocks get their own latency series (not `other`).
    let status = server
        .post_json("/v1/blocks", &json!({ "height": 1, "transactions": [] }))
        .await
        .status();
    assert_eq!(status.as_u16(), 200);
    let text = server.get("/metrics").await.text().await.expect("text");
    for line in [
        "accord_request_duration_seconds_count{endpoint=\"blocks\"} 1",
        "accord_request_duration_seconds_count{endpoint=\"governance\"} 0",
        "accord_applied_height 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    server.stop().await;
}

/// The value of the one sample of `name` in a Prometheus text, after its `# TYPE` line of `kind`.
fn sample(text: &str, name: &str, kind: &str) -> f64 {
    assert!(
        text.contains(&format!("# TYPE {name} {kind}\n{name} ")),
        "no {kind} `{name}` in\n{text}"
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("`{name}` has no number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_process_the_build_and_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    fill(&server).await;
    let text = server.get("/metrics").await.text().await.expect("text");
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let peak_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    // The server runs in this process: its series are this process's.
    let resident = sample(&text, "process_resident_memory_bytes", "gauge");
    let peak = sample(&text, "process_resident_memory_max_bytes", "gauge");
    assert!(resident > 1e6 && resident <= peak, "{resident} {peak}");
    assert!(
        peak <= peak_kib * 1024.0 * 1.5 && peak >= peak_kib * 1024.0 * 0.5,
        "{peak}"
    );
    assert!(sample(&text, "process_virtual_memory_bytes", "gauge") >= resident);
    let fds = sample(&text, "process_open_fds", "gauge");
    let max_fds = sample(&text, "process_max_fds", "gauge");
    assert!(fds >= 3.0 && fds <= max_fds, "{fds} {max_fds}");
    assert!(sample(&text, "process_threads", "gauge") >= 2.0);
    let cpu = sample(&text, "process_cpu_seconds_total", "counter");
    assert!(cpu > 0.0, "{cpu}");
    let started = sample(&text, "process_start_time_seconds", "gauge");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        started <= now + 1.0 && started > now - 3600.0,
        "{started} {now}"
    );
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    assert!(
        text.contains(&format!(
            "accord_build_info{{version=\"{}\",profile=\"{profile}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    let size = sample(&text, "accord_data_size_bytes", "gauge");
    assert!(size > 0.0, "{size}");
    // CPU time only grows.
    let status = server
        .post_json("/v1/evaluate", &with_id(allow_tx(), "tx-more"))
        .await
        .status();
    assert_eq!(status.as_u16(), 200);
    let later = server.get("/metrics").await.text().await.expect("text");
    assert!(sample(&later, "process_cpu_seconds_total", "counter") >= cpu);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_that_cannot_be_logged_is_not_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    fill(&server).await;
    server.health.inject_fault(true);
    let refused = server
        .post_json("/v1/evaluate", &with_id(allow_tx(), "tx-unlogged"))
        .await;
    assert_eq!(
        refused.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let body = problem(refused, 503, "decision-log-unavailable").await;
    insta::assert_json_snapshot!("problem_decision_log_unavailable", body);
    let batch = json!({ "transactions": [with_id(allow_tx(), "tx-unlogged-2")] });
    problem(
        server.post_json("/v1/evaluate/batch", &batch).await,
        503,
        "decision-log-unavailable",
    )
    .await;
    server.health.inject_fault(false);
    // The fault heals by itself once writes succeed again (the data directory is reopened).
    server.wait_ready().await;
    // The chain is whole and holds neither refused decision; appending works again.
    assert_eq!(
        server
            .post_json("/v1/evaluate", &with_id(allow_tx(), "tx-later"))
            .await
            .status()
            .as_u16(),
        200
    );
    let (_, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(
        (verify["ok"].clone(), verify["length"].clone()),
        (json!(true), json!(6))
    );
    let (_, _, page) = answer(server.get("/v1/decisions?tx=tx-unlogged").await).await;
    assert_eq!(seqs(&page).len(), 0);
    server.stop().await;
}

/// Block `height` of `n` allowed access transactions with ids `{prefix}-{i}`, applied while the
/// decision log refuses writes: the node applied and stored it, the answer was a 503, and none of
/// its decisions is logged. The block's body, to replay it.
async fn apply_unlogged(server: &TestServer, height: u64, prefix: &str, n: usize) -> Value {
    let txs: Vec<Value> = (0..n)
        .map(|i| with_id(allow_tx(), &format!("{prefix}-{i}")))
        .collect();
    let body = json!({ "height": height, "transactions": txs });
    server.log().fail_writes(true);
    problem(
        server.post_json("/v1/blocks", &body).await,
        503,
        "decision-log-unavailable",
    )
    .await;
    // The fault heals by itself: the data directory is reopened with a new log, and the block
    // stored before the log failed is found unlogged.
    server.wait_ready().await;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_whose_decisions_cannot_be_logged_is_applied_and_its_replay_logs_them_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let body = apply_unlogged(&server, 1, "blk", 3).await;
    // The block was applied (the ledger's state moved on) but nothing of it was logged: its
    // replay answers it and logs its decisions, and a second replay logs nothing more.
    let (status, _, first) = answer(server.post_json("/v1/blocks", &body).await).await;
    assert_eq!(status, 200, "{first}");
    let (_, _, again) = answer(server.post_json("/v1/blocks", &body).await).await;
    assert_eq!(first, again);
    for i in 0..3 {
        let (_, _, page) = answer(server.get(&format!("/v1/decisions?tx=blk-{i}")).await).await;
        assert_eq!(seqs(&page).len(), 1, "blk-{i}: {page}");
    }
    let (_, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(
        (verify["ok"].clone(), verify["length"].clone()),
        (json!(true), json!(3))
    );
    let (status, _, next) = answer(
        server
            .post_json("/v1/blocks", &json!({ "height": 2, "transactions": [] }))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{next}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replays_of_an_unlogged_block_log_its_decisions_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let body = apply_unlogged(&server, 1, "race", 200).await;
    // A ledger node that retries on several connections at once: one replay logs the block's
    // decisions, the others wait for that write (an answer means its decisions are logged) and
    // log nothing themselves.
    let replays: Vec<_> = (0..8)
        .map(|_| {
            let request = server
                .client
                .post(server.url("/v1/blocks"))
                .header("content-type", "application/json")
                .body(body.to_string());
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    let mut answers = Vec::new();
    for replay in replays {
        let response = replay.await.expect("task").expect("response");
        let (status, _, text) = answer(response).await;
        assert_eq!(status, 200, "{text}");
        answers.push(text);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "one answer");
    let (_, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(
        (verify["ok"].clone(), verify["length"].clone()),
        (json!(true), json!(200)),
        "each decision logged once: {verify}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_stored_but_not_logged_before_a_restart_is_logged_by_its_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let logged = json!({ "height": 1, "transactions": [with_id(allow_tx(), "before-crash")] });
    let (status, _, _) = answer(server.post_json("/v1/blocks", &logged).await).await;
    assert_eq!(status, 200);
    // The block is stored but its decisions never reach the log: what a crash between the
    // store's flush and the log's leaves on disk.
    let body = apply_unlogged(&server, 2, "crash", 3).await;
    server.stop().await;

    // The ledger node got no answer and sends the block again to the restarted node, whose
    // answer must not come before the block's decisions are in the log.
    let server = TestServer::start(dir.path()).await;
    let (status, _, replayed) = answer(server.post_json("/v1/blocks", &body).await).await;
    assert_eq!(status, 200, "{replayed}");
    let (_, _, again) = answer(server.post_json("/v1/blocks", &body).await).await;
    assert_eq!(replayed, again);
    for tx in ["before-crash", "crash-0", "crash-1", "crash-2"] {
        let (_, _, page) = answer(server.get(&format!("/v1/decisions?tx={tx}")).await).await;
        assert_eq!(seqs(&page).len(), 1, "{tx}: {page}");
    }
    server.stop().await;

    // The record of the last logged block, damaged, is a start-up error naming where it is.
    let db = open_db(dir.path());
    let log = accord_server::DecisionLog::open(&db, accord_server::storage::StorageHealth::new())
        .expect("log opens");
    assert_eq!(log.logged_block().map_err(|e| e.to_string()), Ok(Some(2)));
    db.open_tree(accord_server::decision_log::BLOCKS_TREE)
        .expect("tree")
        .insert(accord_server::decision_log::LOGGED_BLOCK, &[0u8, 2][..])
        .expect("write");
    assert_eq!(
        log.logged_block().map_err(|e| e.to_string()),
        Err("decision log storage: tree `decisions-blocks`, key `logged-block`: 2 bytes, expected 8".into())
    );
}
