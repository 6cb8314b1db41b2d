//! Memory under a long feed: `cargo bench -p accord-server --bench memory [-- --blocks N
//! --per-block M]` starts the server in-process on the default settings (the built-in bundle,
//! the default `--cache-capacity`, decision log on disk and durable) and posts N blocks (default
//! 5,000) of M access transactions each (default 200: 1,000,000 logged decisions) to
//! `/v1/blocks` over loopback, one in flight. Every 250 blocks, and at the end, it prints the
//! process's resident memory (`VmRSS`), its peak (`VmHWM`, from /proc/self/status), the data
//! directory's size and the time taken; at the end the bytes on disk per block and per decision,
//! and the decision log's length. `MEMORY_DATA_DIR` chooses where the data directory goes.

use accord_server::{self as server, AppState, ServeConfig};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    blocks: u64,
    per_block: usize,
}

fn options() -> Options {
    let mut opts = Options {
        blocks: 5_000,
        per_block: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok());
        match arg.as_str() {
            "--blocks" => opts.blocks = value().expect("--blocks N"),
            "--per-block" => opts.per_block = value().expect("--per-block M") as usize,
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    opts
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
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
    let (rss, _) = memory();
    println!("memory: process before start {:.1} MiB resident", mib(rss));
    let bundle = Arc::new(server::defaults::bundle().expect("built-in bundle"));
    let parent = std::env::var_os("MEMORY_DATA_DIR").map_or_else(std::env::temp_dir, Into::into);
    let data = tempfile::tempdir_in(parent).expect("data dir");
    // The default settings, as `accord serve` runs with when nothing is set (`MEMORY_CACHE`
    // sets `--cache-capacity`, to compare).
    let config = ServeConfig::resolve(server::ServeArgs {
        data: Some(data.path().to_path_buf()),
        listen: Some("127.0.0.1:0".into()),
        cache_capacity: std::env::var("MEMORY_CACHE").ok(),
        ..server::ServeArgs::default()
    })
    .expect("default settings");
    println!(
        "memory: {} blocks of {} access transactions ({} decisions), cache capacity {:.0} MiB, data in {}",
        opts.blocks,
        opts.per_block,
        opts.blocks * opts.per_block as u64,
        mib(config.cache_capacity),
        data.path().display()
    );
    let (rss, _) = memory();
    println!(
        "memory: built-in bundle compiled, {:.1} MiB resident",
        mib(rss)
    );
    let state = AppState::open(&config, bundle).expect("state");
    let (rss, _) = memory();
    println!("memory: data directory open, {:.1} MiB resident", mib(rss));
    let held = state.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let mix = accord_engine::testing::benchmark_mix();
    // Each transaction as text without its id, to prefix a fresh id cheaply.
    let tails: Vec<String> = (0..opts.per_block)
        .map(|i| {
            let mut t = mix.transactions[i % mix.transactions.len()].clone();
            t.as_object_mut().expect("transaction object").remove("id");
            t.to_string()[1..].to_owned()
        })
        .collect();
    let consents: Vec<String> = mix.consents.iter().map(Value::to_string).collect();
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/blocks");
    let started = Instant::now();
    let mut peak_rss = 0u64;
    let mut decisions = 0u64;
    for height in 1..=opts.blocks {
        let mut body = format!("{{\"height\":{height},\"transactions\":[");
        if height == 1 {
            // The mix's consents, so that its transactions decide as they do in production.
            for c in &consents {
                body.push_str(c);
                body.push(',');
            }
        }
        for (i, tail) in tails.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!("{{\"id\":\"b{height}-{i}\","));
            body.push_str(tail);
        }
        body.push_str("]}");
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("block request");
        let status = response.status();
        let answer = response.bytes().await.expect("answer");
        assert_eq!(
            status,
            200,
            "block {height}: {}",
            String::from_utf8_lossy(&answer)
        );
        decisions += opts.per_block as u64;
        let (rss, _) = memory();
        peak_rss = peak_rss.max(rss);
        if height % 250 == 0 || height == opts.blocks {
            let (rss, hwm) = memory();
            println!(
                "  block {height:>6}  decisions {decisions:>9}  rss {:>7.1} MiB  peak {:>7.1} MiB  data {:>8.1} MiB  {:>6.1} s",
                mib(rss),
                mib(hwm),
                mib(dir_size(data.path())),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let log = Arc::clone(&held.storage().expect("storage").log);
    let entries = log.len();
    drop(log);
    drop(held);
    let _ = stop.send(());
    task.await.expect("server task").expect("server stops");
    let (rss, hwm) = memory();
    let size = dir_size(data.path());
    println!(
        "memory: peak resident (VmHWM) {:.1} MiB, highest sampled after a block {:.1} MiB, {:.1} MiB after stop; \
         {entries} decisions logged in {:.1} s",
        mib(hwm),
        mib(peak_rss),
        mib(rss),
        started.elapsed().as_secs_f64()
    );
    println!(
        "data directory: {:.1} MiB, {:.0} bytes per block, {:.0} bytes per decision",
        mib(size),
        size as f64 / opts.blocks.max(1) as f64,
        size as f64 / decisions.max(1) as f64
    );
    assert_eq!(entries, decisions, "every decision is logged");
}
