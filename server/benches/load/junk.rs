//! Junk flooding `POST /v1/governance`: how many junk messages the node refuses per second, and
//! what a member's messages cost meanwhile. A node of its own, on the dev consortium with a voting
//! window long enough for the whole run; one proposal open; a member (on 127.0.0.2) re-casts an
//! abstain vote (a new nonce each time, so each is accepted and takes a height), one at a time,
//! first alone, then while `connections` clients on 127.0.0.1 send junk: unsigned bodies,
//! signatures by the wrong key, votes by a non-member.

use super::client::percentiles;
use super::round::{post_json, signed, CONSORTIUM};
use accord_engine::Bundle;
use accord_server::{self as server, AppState, ServeConfig};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The member's votes: how many were accepted, and their latency.
struct MemberVotes {
    accepted: u64,
    failed: u64,
    p50: Duration,
    p99: Duration,
}

/// Votes by `city-lab` from 127.0.0.2, one at a time, for `secs` seconds; `nonce` numbers them.
async fn member_votes(
    root: &Path,
    url: &str,
    proposal: &(String, String),
    secs: u64,
    nonce: &AtomicU64,
) -> MemberVotes {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client");
    let started = Instant::now();
    let (mut accepted, mut failed, mut latencies) = (0, 0, Vec::new());
    while started.elapsed() < Duration::from_secs(secs) {
        let n = nonce.fetch_add(1, Ordering::Relaxed);
        let vote = signed(
            root,
            &format!("member-vote-{n}"),
            json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": proposal.0,
                    "content": proposal.1, "voter": "member/city-lab", "choice": "abstain",
                    "nonce": format!("{n}") }),
            "city-lab",
        );
        let t = Instant::now();
        let (status, _) = post_json(&client, url, &vote).await;
        let micros = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
        if status == 200 {
            accepted += 1;
            latencies.push(micros);
        } else {
            failed += 1;
        }
    }
    let (p50, p99) = percentiles(&mut latencies);
    MemberVotes {
        accepted,
        failed,
        p50,
        p99,
    }
}

/// Runs the scenario and prints two lines.
pub async fn junk_flood(root: &Path, bundle: &Arc<Bundle>, secs: u64, connections: usize) {
    // The dev genesis with a window that outlasts the run.
    let dir = tempfile::tempdir().expect("temp dir");
    let dev = std::fs::read_to_string(root.join("governance/genesis.dev.yaml")).expect("genesis");
    let genesis_text = dev
        .replace("voting_period: 10", "voting_period: 100000000")
        .replace(
            "bundle: ../policies",
            &format!("bundle: {}", root.join("policies").display()),
        );
    let genesis_path = dir.path().join("genesis.yaml");
    std::fs::write(&genesis_path, genesis_text).expect("genesis written");
    let mut config = ServeConfig::with_defaults(root.join("policies"), dir.path().join("data"));
    config.genesis = Some(genesis_path);
    config.max_concurrency = 4 * connections.max(1);
    let state = AppState::open(&config, Arc::clone(bundle)).expect("state");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let url = format!("{base}/v1/governance");

    // One open proposal (a membership rename: no bundle to check).
    let proposal = signed(
        root,
        "junk-proposal",
        json!({ "type": "proposal", "consortium": CONSORTIUM, "proposer": "member/st-marys",
                "title": "rename", "change": { "kind": "update_member",
                "member": "member/city-lab", "name": "City Lab" } }),
        "st-marys",
    );
    let (status, answer) = post_json(&reqwest::Client::new(), &url, &proposal).await;
    assert_eq!(status, 200, "proposal: {answer}");
    let ids = (
        answer["applied"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        answer["content"].as_str().unwrap_or_default().to_owned(),
    );
    let nonce = AtomicU64::new(0);
    let half = (secs / 2).max(1);
    let alone = member_votes(root, &url, &ids, half, &nonce).await;

    // The junk.
    let unsigned = json!({ "id": "j", "kind": "governance", "timestamp": "2026-03-01T08:00:00Z",
                           "governance": { "message": {}, "signature": "" } });
    let mut forged = signed(
        root,
        "j-forged",
        json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": ids.0, "content": ids.1,
                "voter": "member/acme-insurance", "choice": "no" }),
        "city-lab",
    );
    forged["governance"]["message"]["voter"] = json!("member/st-marys");
    let stranger = signed(
        root,
        "j-stranger",
        json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": ids.0, "content": ids.1,
                "voter": "member/nobody", "choice": "no" }),
        "city-lab",
    );
    let junk: Arc<Vec<String>> = Arc::new(
        [unsigned, forged, stranger]
            .iter()
            .map(Value::to_string)
            .collect(),
    );
    let running = Arc::new(AtomicBool::new(true));
    let (refused, limited, other) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let flooders: Vec<_> = (0..connections)
        .map(|i| {
            let (junk, running, url) = (Arc::clone(&junk), Arc::clone(&running), url.clone());
            let (refused, limited, other) = (
                Arc::clone(&refused),
                Arc::clone(&limited),
                Arc::clone(&other),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = i;
                while running.load(Ordering::Relaxed) {
                    let body = junk[n % junk.len()].clone();
                    n += 1;
                    let status = match client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let _ = r.bytes().await;
                            s
                        }
                        Err(_) => 0,
                    };
                    match status {
                        422 => refused.fetch_add(1, Ordering::Relaxed),
                        429 => limited.fetch_add(1, Ordering::Relaxed),
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let started = Instant::now();
    let flooded = member_votes(root, &url, &ids, half, &nonce).await;
    let elapsed = started.elapsed().as_secs_f64();
    running.store(false, Ordering::Relaxed);
    for f in flooders {
        let _ = f.await;
    }
    let (refused, limited, other) = (
        refused.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
    );
    println!(
        "governance junk, {connections} connections from one address for {half} s: {:.0} junk answers/s ({refused} refused 422 before the budget ran out, {limited} turned away 429, {other} other)",
        (refused + limited + other) as f64 / elapsed
    );
    println!(
        "  member votes from another address, one at a time: alone {} accepted, p50 {:.2} ms, p99 {:.2} ms; under the flood {} accepted, p50 {:.2} ms, p99 {:.2} ms ({} + {} failed)",
        alone.accepted,
        alone.p50.as_secs_f64() * 1e3,
        alone.p99.as_secs_f64() * 1e3,
        flooded.accepted,
        flooded.p50.as_secs_f64() * 1e3,
        flooded.p99.as_secs_f64() * 1e3,
        alone.failed,
        flooded.failed
    );
    let _ = stop.send(());
    let _ = task.await;
}
