//! The HTTP client of the single and batch scenarios: connections driven for a time, latencies
//! and answers counted.

use super::cpu_seconds;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Outcome {
    /// Cores this process kept busy on average (client and server together).
    pub cores: f64,
    pub requests: u64,
    /// Failed requests: transport errors, non-2xx answers, and (when answers are checked) a
    /// decision with `errors` or an answer that is not a decision.
    pub errors: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// Checked answers per (`policy_set.version`, decision), in the measured window.
    pub versions: Versions,
}

impl Outcome {
    pub fn per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Counts per (policy set version, decision).
#[derive(Default)]
pub struct Versions(Vec<(String, String, u64)>);

impl Versions {
    pub fn add(&mut self, version: &str, decision: &str, n: u64) {
        match self
            .0
            .iter_mut()
            .find(|(v, d, _)| v == version && d == decision)
        {
            Some(entry) => entry.2 += n,
            None => self.0.push((version.to_owned(), decision.to_owned(), n)),
        }
    }

    pub fn merge(&mut self, other: Versions) {
        for (v, d, n) in other.0 {
            self.add(&v, &d, n);
        }
    }

    /// Distinct versions, in order of first appearance.
    pub fn distinct(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (v, _, _) in &self.0 {
            if !out.contains(&v.as_str()) {
                out.push(v);
            }
        }
        out
    }

    pub fn print(&self, indent: &str) {
        for version in self.distinct() {
            let per: Vec<String> = self
                .0
                .iter()
                .filter(|(v, _, _)| v == version)
                .map(|(_, d, n)| format!("{n} {d}"))
                .collect();
            let total: u64 = self
                .0
                .iter()
                .filter(|(v, _, _)| v == version)
                .map(|e| e.2)
                .sum();
            println!(
                "{indent}policy_set.version {version}: {total} decisions ({})",
                per.join(", ")
            );
        }
    }
}

/// The parts of a decision an answer check reads (the rest is skipped, not built).
// INVARIANT (json::Strict): derived structs; the members they skip are not read.
impl accord_engine::json::Strict for CheckedDecision<'_> {}

#[derive(serde::Deserialize)]
struct CheckedDecision<'a> {
    #[serde(borrow)]
    pub decision: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub policy_set: CheckedVersion<'a>,
    pub errors: Vec<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
pub struct CheckedVersion<'a> {
    #[serde(borrow)]
    pub version: std::borrow::Cow<'a, str>,
}

/// Drives `url` with `bodies` (cycled) from `connections` tasks for `secs` seconds. With `check`,
/// every answer must be a decision without `errors`; decisions are counted per version.
pub async fn drive(
    url: &str,
    bodies: Arc<Vec<String>>,
    connections: usize,
    secs: u64,
    check: bool,
) -> Outcome {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let client = client.clone();
        let url = url.to_owned();
        let bodies = Arc::clone(&bodies);
        let (measuring, stop, errors) = (measuring.clone(), stop.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(200_000);
            let mut versions = Versions::default();
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let started = Instant::now();
                let answer = match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.bytes().await.ok(),
                    _ => None,
                };
                let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                if !measuring.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                    continue;
                }
                let ok = match (&answer, check) {
                    (None, _) => false,
                    (Some(_), false) => true,
                    (Some(bytes), true) => {
                        match accord_engine::json::from_slice::<CheckedDecision>(bytes) {
                            Ok(d) => {
                                versions.add(&d.policy_set.version, &d.decision, 1);
                                d.errors.is_empty()
                            }
                            Err(_) => false,
                        }
                    }
                };
                if ok {
                    latencies.push(micros);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            (latencies, versions)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let cores = (cpu_seconds() - cpu_before) / elapsed.as_secs_f64();
    let mut all: Vec<u32> = Vec::new();
    let mut versions = Versions::default();
    for t in tasks {
        let (latencies, v) = t.await.expect("driver task");
        all.extend(latencies);
        versions.merge(v);
    }
    let (p50, p99) = percentiles(&mut all);
    Outcome {
        cores,
        requests: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        p50,
        p99,
        versions,
    }
}

/// p50 and p99 of latencies in microseconds.
pub fn percentiles(all: &mut [u32]) -> (Duration, Duration) {
    all.sort_unstable();
    let pct = |p: f64| -> Duration {
        if all.is_empty() {
            return Duration::ZERO;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        Duration::from_micros(u64::from(all[i]))
    };
    (pct(0.50), pct(0.99))
}
