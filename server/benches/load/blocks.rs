//! The block scenario's client: consecutive blocks, one in flight, answers checked aside.

use super::client::{percentiles, CheckedVersion, Outcome, Versions};
use super::cpu_seconds;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Block answers as the check reads them: per result, whether it is a decision and its errors.
#[derive(serde::Deserialize)]
struct CheckedBlock<'a> {
    pub height: u64,
    #[serde(borrow)]
    pub results: Vec<CheckedResult<'a>>,
}

// INVARIANT (json::Strict): derived structs; the members they skip are not read.
impl accord_engine::json::Strict for CheckedBlock<'_> {}

#[derive(serde::Deserialize)]
struct CheckedResult<'a> {
    #[serde(borrow, default)]
    pub decision: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub policy_set: Option<CheckedVersion<'a>>,
    #[serde(default)]
    pub errors: Vec<serde::de::IgnoredAny>,
}

/// What the block driver measured.
pub struct BlockOutcome {
    pub run: Outcome,
    /// Decisions in the measured blocks' answers.
    pub decisions: u64,
    /// The height the next block must have.
    pub next_height: u64,
}

/// One client posting consecutive blocks of `txs` (ids made unique per block) to `base`, one in
/// flight, from `first_height`, for `secs` seconds after a 1 s warm-up. Answers are checked by a
/// separate task so the next block goes out as soon as an answer has arrived.
pub async fn drive_blocks(base: &str, txs: &[Value], first_height: u64, secs: u64) -> BlockOutcome {
    // Each transaction as text without its id, to prefix a fresh id cheaply.
    let tails: Vec<String> = txs
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.as_object_mut().expect("transaction object").remove("id");
            let text = t.to_string();
            text[1..].to_owned()
        })
        .collect();
    let body = |height: u64| {
        let mut out = String::with_capacity(tails.iter().map(|t| t.len() + 24).sum::<usize>());
        out.push_str(&format!("{{\"height\":{height},\"transactions\":["));
        for (i, tail) in tails.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{{\"id\":\"blk{height}-{i}\","));
            out.push_str(tail);
        }
        out.push_str("]}");
        out
    };
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/blocks");
    let expected = txs.len();
    // The checker: (height, answer, measured) → failures, decisions, versions.
    let (to_check, mut checking) =
        tokio::sync::mpsc::unbounded_channel::<(u64, axum::body::Bytes, bool)>();
    let checker = tokio::spawn(async move {
        let (mut failures, mut decisions, mut versions) = (0u64, 0u64, Versions::default());
        while let Some((height, bytes, measured)) = checking.recv().await {
            let ok = match accord_engine::json::from_slice::<CheckedBlock>(&bytes) {
                Ok(b) => {
                    let mut ok = b.height == height && b.results.len() == expected;
                    for r in &b.results {
                        match (&r.decision, &r.policy_set) {
                            (Some(d), Some(p)) if r.errors.is_empty() => {
                                if measured {
                                    decisions += 1;
                                    versions.add(&p.version, d, 1);
                                }
                            }
                            _ => ok = false,
                        }
                    }
                    ok
                }
                Err(_) => false,
            };
            if !ok && measured {
                failures += 1;
            }
        }
        (failures, decisions, versions)
    });
    let mut height = first_height;
    let mut latencies: Vec<u32> = Vec::new();
    let mut transport_failures = 0u64;
    let warm_up = Instant::now();
    let mut measured_from: Option<(Instant, f64)> = None;
    loop {
        let now = Instant::now();
        if measured_from.is_none() && now.duration_since(warm_up) >= Duration::from_secs(1) {
            measured_from = Some((now, cpu_seconds()));
        }
        if let Some((from, _)) = measured_from {
            if now.duration_since(from) >= Duration::from_secs(secs) {
                break;
            }
        }
        let text = body(height);
        let started = Instant::now();
        let answer = match client
            .post(&url)
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.bytes().await.ok(),
            Ok(r) => {
                // A refused block stops the scenario: the chain cannot continue past it.
                eprintln!(
                    "block {height} refused: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
                None
            }
            Err(e) => {
                eprintln!("block {height}: {e}");
                None
            }
        };
        let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let measured = measured_from.is_some();
        match answer {
            Some(bytes) => {
                if measured {
                    latencies.push(micros);
                }
                let _ = to_check.send((height, bytes, measured));
                height += 1;
            }
            None => {
                transport_failures += 1;
                break;
            }
        }
    }
    let (from, cpu_before) = measured_from.unwrap_or((Instant::now(), cpu_seconds()));
    let elapsed = from.elapsed();
    let cores = (cpu_seconds() - cpu_before) / elapsed.as_secs_f64();
    drop(to_check);
    let (failures, decisions, versions) = checker.await.expect("checker");
    let (p50, p99) = percentiles(&mut latencies);
    BlockOutcome {
        run: Outcome {
            cores,
            requests: latencies.len() as u64,
            errors: failures + transport_failures,
            elapsed,
            p50,
            p99,
            versions,
        },
        decisions,
        next_height: height,
    }
}
