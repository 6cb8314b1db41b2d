//! The hot-swap scenario's side task: a full governance round over HTTP, signed with the dev keys.

use accord_engine::Bundle;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the governance round of the hot-swap scenario saw.
pub struct Round {
    /// Non-200 answers to the round's own requests (governance messages and blocks).
    pub failures: u64,
    pub proposal: String,
    /// Heights: the proposal, the deciding vote, the activation, the last block posted.
    pub proposed_at: u64,
    pub decided_at: u64,
    pub activated_at: Option<u64>,
    pub last_height: u64,
    /// When the round started and the proposal activated, from the side task's start.
    pub started_after: Duration,
    pub activated_after: Option<Duration>,
    /// The whole round, first message to last block.
    pub took: Duration,
}

pub const CONSORTIUM: &str = "health-net-dev";

fn dev_key(root: &Path, member: &str) -> ed25519_dalek::SigningKey {
    let path = root.join(format!("governance/dev-keys/{member}.key.json"));
    accord_governance::KeyFile::read(&path)
        .expect("dev key")
        .signing_key()
        .clone()
}

/// A governance transaction carrying `message` signed with `member`'s dev key.
pub fn signed(root: &Path, id: &str, message: Value, member: &str) -> Value {
    accord_governance::message::sign(&message, &dev_key(root, member))
        .expect("sign")
        .into_transaction(id, "2026-03-01T08:00:00Z")
}

/// The proposal: Uruguay leaves the EU adequacy list.
fn tightening(bundle: &Bundle) -> Value {
    let list: Vec<Value> = bundle
        .jurisdictions()
        .get("EU")
        .and_then(|j| j.parameters.get("adequacy"))
        .and_then(Value::as_array)
        .expect("EU adequacy list")
        .iter()
        .filter(|c| *c != "UY")
        .cloned()
        .collect();
    serde_json::json!({ "type": "proposal", "consortium": CONSORTIUM, "proposer": "member/st-marys",
        "title": "Uruguay leaves the adequacy list", "base": bundle.version(),
        "change": { "kind": "set_jurisdiction_parameters", "jurisdiction": "EU",
                    "parameters": { "adequacy": list } } })
}

pub async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    match client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            (
                status,
                accord_engine::json::value_from_str(&text).unwrap_or(Value::String(text)),
            )
        }
        Err(e) => (0, Value::String(e.to_string())),
    }
}

/// After `delay`, a full governance round over HTTP: propose, two yes votes (deciding), empty
/// blocks until the proposal activates, then three more.
pub async fn governance_round(root: &Path, base: &str, bundle: &Bundle, delay: Duration) -> Round {
    let begun = Instant::now();
    tokio::time::sleep(delay).await;
    let client = reqwest::Client::new();
    let started_after = begun.elapsed();
    let start = Instant::now();
    let governance = format!("{base}/v1/governance");
    let blocks = format!("{base}/v1/blocks");
    let mut failures = 0u64;
    let (s, proposed) = post_json(
        &client,
        &governance,
        &signed(root, "g-hotswap", tightening(bundle), "st-marys"),
    )
    .await;
    if s != 200 {
        eprintln!("proposal refused: {s} {proposed}");
    }
    let id = proposed["applied"]["id"].as_str().unwrap_or("").to_owned();
    let content = proposed["content"].as_str().unwrap_or("").to_owned();
    let proposed_at = proposed["height"].as_u64().unwrap_or(0);
    let mut next = proposed["next_height"].as_u64().unwrap_or(0);
    failures += u64::from(s != 200);
    let mut decided_at = 0;
    for (n, member) in ["st-marys", "acme-insurance"].into_iter().enumerate() {
        let vote = serde_json::json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": id,
            "content": content, "voter": format!("member/{member}"), "choice": "yes" });
        let (s, v) = post_json(
            &client,
            &governance,
            &signed(root, &format!("v-hotswap-{n}"), vote, member),
        )
        .await;
        if s != 200 {
            eprintln!("vote refused: {s} {v}");
        }
        failures += u64::from(s != 200);
        decided_at = v["height"].as_u64().unwrap_or(0);
        next = v["next_height"].as_u64().unwrap_or(next);
    }
    let (mut activated_at, mut activated_after, mut after) = (None, None, 0);
    // Empty blocks until the activation (2 blocks after the deciding vote), then three more.
    for _ in 0..20 {
        let (s, b) = post_json(
            &client,
            &blocks,
            &serde_json::json!({ "height": next, "transactions": [] }),
        )
        .await;
        if s != 200 {
            eprintln!("block {next} refused: {s} {b}");
            failures += 1;
            break;
        }
        let activated = b["activated"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p == id.as_str()));
        if activated {
            activated_at = Some(next);
            activated_after = Some(begun.elapsed());
        }
        next += 1;
        if activated_at.is_some() {
            after += 1;
            if after > 3 {
                break;
            }
        }
    }
    Round {
        failures,
        proposal: id,
        proposed_at,
        decided_at,
        activated_at,
        last_height: next - 1,
        started_after,
        activated_after,
        took: start.elapsed(),
    }
}
