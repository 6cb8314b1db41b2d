//! Load benchmark of `accord serve` over loopback, beside a minimal axum handler that parses and
//! echoes the same JSON (the ceiling an HTTP JSON service can reach on this machine).
//!
//! Scenarios, each for `--secs` seconds (default 10) after a 1 s warm-up, with `--connections`
//! concurrent keep-alive connections (default 64):
//! - `echo single` / `evaluate single`: one transaction per request (`POST /v1/evaluate`);
//! - `echo batch100` / `evaluate batch100`: 100 transactions per request (`/v1/evaluate/batch`);
//! - `blocks500`: one client posts consecutive blocks of 500 access transactions
//!   (`POST /v1/blocks`, one block in flight: blocks are strictly ordered); blocks/s,
//!   decisions/s and latency per block. Answers are checked off the critical path;
//! - `impact preview`: blocks of the same 500 transactions applied to an in-memory state machine
//!   (no HTTP, no store) with K open policy proposals, K = 0 (the baseline), 1, 9 with distinct
//!   bundles and 9 proposing one bundle; time per block and its ratio to K = 0
//!   (`LOAD_ONLY=preview` runs only this, `--secs` seconds per K);
//! - `hot swap`: `evaluate single` again while a side task runs a full governance round over
//!   HTTP a third of the way into the measured window (proposal dropping "UY" from the EU
//!   adequacy list signed with the dev keys, two yes votes, empty blocks until it activates, three
//!   more), so the active set is swapped under load. Failures (non-200, or a decision with
//!   `errors`) and decisions per `policy_set.version` are counted; req/s is compared with
//!   `evaluate single`. Both evaluate-single scenarios parse every answer to check it;
//! - `governance junk`: a node of its own with one proposal open; a member on 127.0.0.2 re-casts
//!   a vote one message at a time, alone and then while `--connections` clients on 127.0.0.1 send
//!   junk (unsigned bodies, wrong-key signatures, non-members): junk answers per second (refused,
//!   or turned away by the refusal budget) and the member's latency in both halves
//!   (`LOAD_ONLY=junk` runs only this).
//!
//! The server runs in-process with the default bundle and the dev genesis, and the decision log
//! on and durable (sled at a temporary directory on disk, one flush per group commit). The
//! consents of the engine's benchmark mix are block 1. Client and server share the machine's
//! cores, as they would on a ledger node.
//!
//! Run: `cargo bench -p accord-server --bench load -- --secs 10 --connections 64` (or `LOAD_SECS`,
//! `LOAD_CONNECTIONS`; `LOAD_DATA_DIR` for where the data directory goes). `LOAD_SERVE=<secs>`
//! only starts both servers and keeps them up, for an outside client such as wrk
//! (`benches/wrk/`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use accord_engine::{Bundle, InMemoryConsentRegistry};
use accord_server::{self as server, AppState, ServeConfig};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

mod blocks;
mod client;
mod junk;
mod preview;
mod round;

use blocks::drive_blocks;
use client::{drive, Outcome};
use round::{governance_round, post_json};

// The same allocator as the `accord` binary, so the figures are the shipped binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    secs: u64,
    connections: usize,
}

fn options() -> Options {
    let mut o = Options {
        secs: 10,
        connections: 64,
    };
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = env("LOAD_SECS") {
        o.secs = n.max(1);
    }
    if let Some(n) = env("LOAD_CONNECTIONS") {
        o.connections = (n as usize).max(1);
    }
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let next = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), next) {
            ("--secs", Some(n)) => {
                o.secs = n.max(1);
                i += 1;
            }
            ("--connections", Some(n)) => {
                o.connections = (n as usize).max(1);
                i += 1;
            }
            _ => {} // `--bench` and anything else cargo passes
        }
        i += 1;
    }
    o
}

/// CPU seconds this process has used (user + system), from /proc; 0 where unavailable.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn report(name: &str, o: &Outcome, per_request: u64) {
    println!(
        "{name:<22} {:>10.0} req/s {:>12.0} items/s   p50 {:>6.2} ms   p99 {:>6.2} ms   {:.2} cores busy  ({} requests, {} errors)",
        o.per_sec(),
        o.per_sec() * per_request as f64,
        o.p50.as_secs_f64() * 1e3,
        o.p99.as_secs_f64() * 1e3,
        o.cores,
        o.requests,
        o.errors
    );
}

/// Single-thread figures of the parts: the engine from JSON text, and the decision log appending
/// and flushing batches of 100 entries.
fn building_blocks(policies: &Path, transactions: &[Value], consents: &InMemoryConsentRegistry) {
    let bundle = Bundle::load(policies).expect("bundle");
    let texts: Vec<String> = transactions.iter().map(|t| t.to_string()).collect();
    let started = Instant::now();
    let mut decisions = Vec::new();
    let mut n = 0usize;
    while started.elapsed() < Duration::from_secs(2) {
        let request =
            accord_engine::AccessRequest::from_json(&texts[n % texts.len()]).expect("tx parses");
        let d = bundle.decide(&request, consents, 0);
        if decisions.len() < 100 {
            decisions.push((d, request));
        }
        n += 1;
    }
    println!(
        "engine alone, 1 thread: {:.0} decisions/s (parse + decide)",
        n as f64 / started.elapsed().as_secs_f64()
    );
    // The same on every core at once: does the engine scale?
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let total: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (bundle, consents, texts) = (&bundle, consents, &texts);
                scope.spawn(move || {
                    let mut n = t;
                    while started.elapsed() < Duration::from_secs(2) {
                        let request =
                            accord_engine::AccessRequest::from_json(&texts[n % texts.len()])
                                .expect("tx parses");
                        std::hint::black_box(bundle.decide(&request, consents, 0));
                        n += 1;
                    }
                    n - t
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "engine alone, {threads} threads: {:.0} decisions/s, {:.2} cores busy",
        total as f64 / secs,
        (cpu_seconds() - cpu_before) / secs
    );
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("dir");
    let db = sled::open(dir.path()).expect("sled");
    let log = accord_server::DecisionLog::open(&db, accord_server::storage::StorageHealth::new())
        .expect("log");
    let records: Vec<accord_server::decision_log::Record<'_>> = decisions
        .iter()
        .map(|(d, r)| accord_server::decision_log::Record::new(d, r))
        .collect();
    let started = Instant::now();
    let mut batches = 0u64;
    let mut flush_time = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(2) {
        let appending = Instant::now();
        log.append_all(&records).expect("append");
        flush_time += appending.elapsed();
        batches += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "decision log alone, batches of {}: {:.0} entries/s, {:.0} flushes/s, mean append+flush {:.2} ms",
        records.len(),
        batches as f64 * records.len() as f64 / secs,
        batches as f64 / secs,
        flush_time.as_secs_f64() * 1e3 / batches.max(1) as f64
    );
}

fn log_rounds(log: &accord_server::DecisionLog) -> (u64, u64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let s = log.stats();
    (
        s.rounds.load(Relaxed),
        s.write_micros.load(Relaxed),
        s.flush_micros.load(Relaxed),
        log.len(),
    )
}

fn print_rounds(log: &accord_server::DecisionLog, before: (u64, u64, u64, u64)) {
    let now = log_rounds(log);
    let rounds = (now.0 - before.0).max(1);
    println!(
        "  decision log: {} group commits, {:.1} entries each, mean write {:.2} ms, mean flush {:.2} ms",
        rounds,
        (now.3 - before.3) as f64 / rounds as f64,
        (now.1 - before.1) as f64 / 1e3 / rounds as f64,
        (now.2 - before.2) as f64 / 1e3 / rounds as f64
    );
}

async fn echo(Json(value): Json<Value>) -> Json<Value> {
    Json(value)
}

fn main() {
    let opts = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(opts));
}

async fn run(opts: Options) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository");
    let bundle = Arc::new(Bundle::load(&root.join("policies")).expect("default bundle"));
    let mix = accord_engine::testing::benchmark_mix();
    let transactions = mix.transactions.clone();

    // Bodies: single transactions (unique ids), and batches of 100.
    let single: Vec<String> = (0..1000)
        .map(|i| {
            let mut t = transactions[i % transactions.len()].clone();
            t["id"] = Value::String(format!("bench-{i}"));
            t.to_string()
        })
        .collect();
    let batches: Vec<String> = (0..20)
        .map(|b| {
            let txs: Vec<Value> = (0..100)
                .map(|i| {
                    let mut t = transactions[(b * 100 + i) % transactions.len()].clone();
                    t["id"] = Value::String(format!("bench-{b}-{i}"));
                    t
                })
                .collect();
            serde_json::json!({ "transactions": txs }).to_string()
        })
        .collect();
    let single = Arc::new(single);
    let batches = Arc::new(batches);

    // The Accord server, decision log on disk.
    // LOAD_DATA_DIR=/dev/shm puts the log in memory: shows what the disk's flushes cost.
    let parent = std::env::var_os("LOAD_DATA_DIR").map_or_else(std::env::temp_dir, Into::into);
    let data = tempfile::tempdir_in(parent).expect("data dir");
    let mut config = ServeConfig::with_defaults(root.join("policies"), data.path().to_path_buf());
    config.max_concurrency = 4 * opts.connections;
    let state = AppState::open(&config, Arc::clone(&bundle)).expect("state");
    let log = Arc::clone(&state.storage().expect("storage is open").log);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let accord = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop_accord, stopped) = tokio::sync::oneshot::channel::<()>();
    let accord_task = tokio::spawn(server::serve(listener, state, async {
        let _ = stopped.await;
    }));

    // The ceiling: parse and echo the same JSON.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let echo_url = format!("http://{}/echo", listener.local_addr().expect("addr"));
    let echo_app = Router::new()
        .route("/echo", post(echo))
        .layer(axum::extract::DefaultBodyLimit::max(8 * 1024 * 1024));
    let echo_task = tokio::spawn(async move { axum::serve(listener, echo_app).await });

    // The mix's consents are block 1: the node's consent state is what evaluations read.
    let (status, answer) = post_json(
        &reqwest::Client::new(),
        &format!("{accord}/v1/blocks"),
        &serde_json::json!({ "height": 1, "transactions": mix.consents }),
    )
    .await;
    assert_eq!(status, 200, "consent block: {answer}");

    building_blocks(&root.join("policies"), &transactions, &mix.registry);

    println!(
        "load: {} s per scenario after 1 s warm-up, {} connections, {} cores; decision log at {}",
        opts.secs,
        opts.connections,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        data.path().display()
    );
    let c = opts.connections;
    let s = opts.secs;
    // Blocks of 500: the mix cycled, one block in flight.
    let block_txs: Vec<Value> = (0..500)
        .map(|i| transactions[i % transactions.len()].clone())
        .collect();
    if let Some(secs) = std::env::var("LOAD_SERVE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        // For an outside load generator (wrk): both servers stay up for `secs` seconds.
        println!("serving: accord {accord} (consents applied at height 1), echo {echo_url}");
        tokio::time::sleep(Duration::from_secs(secs)).await;
        return;
    }
    if let Ok(only) = std::env::var("LOAD_ONLY") {
        // Profiling aid: one scenario, e.g. LOAD_ONLY=/v1/evaluate, LOAD_ONLY=/v1/blocks or
        // LOAD_ONLY=preview.
        if only == "junk" {
            junk::junk_flood(root, &bundle, s, c).await;
            return;
        }
        if only == "preview" {
            let (root, bundle) = (root.to_path_buf(), Arc::clone(&bundle));
            tokio::task::spawn_blocking(move || {
                preview::preview_cost(&root, &bundle, &mix.consents, &block_txs, s)
            })
            .await
            .expect("preview scenario");
            return;
        }
        if only == "/v1/blocks" {
            let blocks = drive_blocks(&accord, &block_txs, 2, s).await;
            println!(
                "blocks500: {:.0} decisions/s",
                blocks.decisions as f64 / blocks.run.elapsed.as_secs_f64()
            );
            return;
        }
        let bodies = if only.ends_with("batch") {
            batches.clone()
        } else {
            single.clone()
        };
        let o = drive(&format!("{accord}{only}"), bodies, c, s, false).await;
        report(&only, &o, 1);
        return;
    }
    let echo_single = drive(&echo_url, single.clone(), c, s, false).await;
    report("echo single", &echo_single, 1);
    let rounds_before = log_rounds(&log);
    let eval_single = drive(&format!("{accord}/v1/evaluate"), single.clone(), c, s, true).await;
    report("evaluate single", &eval_single, 1);
    print_rounds(&log, rounds_before);
    eval_single.versions.print("  ");
    let echo_batch = drive(&echo_url, batches.clone(), c, s, false).await;
    report("echo batch100", &echo_batch, 100);
    let rounds_before = log_rounds(&log);
    let eval_batch = drive(
        &format!("{accord}/v1/evaluate/batch"),
        batches.clone(),
        c,
        s,
        false,
    )
    .await;
    report("evaluate batch100", &eval_batch, 100);
    print_rounds(&log, rounds_before);

    let rounds_before = log_rounds(&log);
    let blocks = drive_blocks(&accord, &block_txs, 2, s).await;
    let b = &blocks.run;
    println!(
        "{:<22} {:>10.1} blocks/s {:>10.0} decisions/s   p50 {:>6.2} ms   p99 {:>6.2} ms   {:.2} cores busy  ({} blocks, heights {}..{}, {} failed)",
        "blocks500",
        b.per_sec(),
        blocks.decisions as f64 / b.elapsed.as_secs_f64(),
        b.p50.as_secs_f64() * 1e3,
        b.p99.as_secs_f64() * 1e3,
        b.cores,
        b.requests,
        2,
        blocks.next_height - 1,
        b.errors
    );
    print_rounds(&log, rounds_before);

    // The impact preview's cost per block with K open proposals, K = 0 as the baseline.
    {
        let (root, bundle, consents, block_txs) = (
            root.to_path_buf(),
            Arc::clone(&bundle),
            mix.consents.clone(),
            block_txs.clone(),
        );
        let per_k = (s / 2).max(2);
        tokio::task::spawn_blocking(move || {
            preview::preview_cost(&root, &bundle, &consents, &block_txs, per_k)
        })
        .await
        .expect("preview scenario");
    }

    junk::junk_flood(root, &bundle, s, c).await;

    // Hot swap: evaluate single while a governance round swaps the active set.
    let side = {
        let (root, base, bundle) = (root.to_path_buf(), accord.clone(), Arc::clone(&bundle));
        let delay = Duration::from_secs(1) + Duration::from_secs_f64(s as f64 / 3.0);
        tokio::spawn(async move { governance_round(&root, &base, &bundle, delay).await })
    };
    let rounds_before = log_rounds(&log);
    let hot = drive(&format!("{accord}/v1/evaluate"), single.clone(), c, s, true).await;
    let round = side.await.expect("governance round");
    report("evaluate hot swap", &hot, 1);
    print_rounds(&log, rounds_before);
    hot.versions.print("  ");
    println!(
        "  governance round: proposal {} at height {}, decided at {}, activated at {} ({}), last block {}; started {:.2} s after the scenario began (warm-up 1 s), took {:.0} ms, {} failed round requests",
        round.proposal,
        round.proposed_at,
        round.decided_at,
        round.activated_at.map_or("never".to_owned(), |h| h.to_string()),
        round
            .activated_after
            .map_or("-".to_owned(), |d| format!("{:.2} s after the scenario began", d.as_secs_f64())),
        round.last_height,
        round.started_after.as_secs_f64(),
        round.took.as_secs_f64() * 1e3,
        round.failures
    );

    // The single ratio again in alternating slices, so that the machine's drift (its speed moved
    // by a third within minutes on the development machines) falls on both sides alike.
    let slices = 4;
    let slice_secs = (s / 2).max(2);
    let (mut echo_sum, mut eval_sum, mut per_slice) = (0.0, 0.0, Vec::new());
    let mut eval_p99 = Duration::ZERO;
    for _ in 0..slices {
        let e = drive(&echo_url, single.clone(), c, slice_secs, false).await;
        let v = drive(
            &format!("{accord}/v1/evaluate"),
            single.clone(),
            c,
            slice_secs,
            false,
        )
        .await;
        echo_sum += e.per_sec();
        eval_sum += v.per_sec();
        eval_p99 = eval_p99.max(v.p99);
        per_slice.push(format!(
            "{:.0}/{:.0} = {:.1}%",
            v.per_sec(),
            e.per_sec(),
            100.0 * v.per_sec() / e.per_sec().max(1.0)
        ));
    }
    let interleaved = eval_sum / echo_sum.max(1.0);
    println!(
        "ratio evaluate/echo single, {slices} alternating slices of {slice_secs} s: {:.1}% (evaluate/echo req/s per slice: {}; worst p99 {:.2} ms)",
        interleaved * 100.0,
        per_slice.join(", "),
        eval_p99.as_secs_f64() * 1e3
    );

    let single_ratio = eval_single.per_sec() / echo_single.per_sec().max(1.0);
    let batch_ratio = eval_batch.per_sec() / echo_batch.per_sec().max(1.0);
    let decisions_per_sec = eval_batch.per_sec() * 100.0;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("ratio evaluate/echo single: {:.1}%", single_ratio * 100.0);
    println!("ratio evaluate/echo batch100: {:.1}%", batch_ratio * 100.0);
    println!(
        "ratio blocks500 decisions/s / evaluate batch100 decisions/s: {:.1}%",
        blocks.decisions as f64 / blocks.run.elapsed.as_secs_f64() / decisions_per_sec.max(1.0)
            * 100.0
    );
    let hot_ratio = hot.per_sec() / eval_single.per_sec().max(1.0);
    println!(
        "ratio evaluate hot swap/evaluate single: {:.1}%",
        hot_ratio * 100.0
    );
    let versions = hot.versions.distinct().len();
    println!(
        "target hot swap: 0 failed requests and the version changes mid-run: {} ({} failed evaluations, {} failed round requests, {} versions seen)",
        verdict(hot.errors == 0 && round.failures == 0 && versions >= 2 && round.activated_at.is_some()),
        hot.errors,
        round.failures,
        versions
    );
    println!(
        "target single >= 50% of echo and p99 < 5 ms: {} ({:.1}% in one run, {:.1}% in alternating slices, p99 {:.2} ms)",
        verdict(
            single_ratio.min(interleaved) >= 0.5 && eval_single.p99 < Duration::from_millis(5)
        ),
        single_ratio * 100.0,
        interleaved * 100.0,
        eval_single.p99.as_secs_f64() * 1e3
    );
    println!(
        "target batch >= 50,000 decisions/s, log durable: {} ({decisions_per_sec:.0} decisions/s)",
        verdict(decisions_per_sec >= 50_000.0)
    );
    let blocks_per_sec = blocks.decisions as f64 / blocks.run.elapsed.as_secs_f64();
    println!(
        "target blocks >= 50,000 decisions/s, log durable: {} ({blocks_per_sec:.0} decisions/s)",
        verdict(blocks_per_sec >= 50_000.0)
    );
    // Context, not a target: the targets were set where an axum echo served 61,000 req/s with wrk
    // on 2 cores. Scaled by this run's echo, 50,000 decisions/s there is this much here.
    let scaled = 50_000.0 * echo_single.per_sec() / 61_000.0;
    println!(
        "scaled to this machine (echo {:.0} req/s here, 61,000 on the reference machine): 50,000 decisions/s there is {scaled:.0} here; batch {decisions_per_sec:.0}, blocks {blocks_per_sec:.0}",
        echo_single.per_sec()
    );
    println!(
        "decision log: {} entries; chain verifies: {}",
        log.len(),
        log.verify().map(|v| v.ok).unwrap_or(false)
    );
    drop(log);
    let _ = stop_accord.send(());
    let _ = accord_task.await;
    echo_task.abort();
}
