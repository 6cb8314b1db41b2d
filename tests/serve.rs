//! The real binary: `accord serve` picks a free port (from `ACCORD_LISTEN`), answers, and exits 0
//! on SIGTERM, its last log lines written.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `accord serve` on a free loopback port with `data` and `args`, standard output and error piped;
/// the process and the address it listens on.
fn serve(data: &Path, args: &[&str]) -> (Child, String) {
    serve_in(&crate::common::root(), data, args)
}

/// [`serve`], run from the directory `cwd`.
pub fn serve_in(cwd: &Path, data: &Path, args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--data")
        .arg(data)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("accord serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let listening: serde_json::Value =
        accord_engine::json::value_from_str(&line).expect("JSON line");
    let addr = listening["listening"].as_str().expect("address").to_owned();
    (child, addr)
}

#[test]
fn serve_exits_zero_on_sigterm() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = serve(data.path(), &["--log-format", "json"]);

    // One real request over TCP.
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    let body = crate::common::allow_tx().to_string();
    write!(
        stream,
        "POST /v1/evaluate HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"decision\":\"allow\""), "{response}");
    // The request came without an id: the answer carries the one the server made for it.
    let request_id = response
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("an X-Request-ID on the answer")
        .to_owned();
    // The process log is written by a thread of its own, which reports the lines it dropped.
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .expect("write");
    let mut metrics = String::new();
    stream.read_to_string(&mut metrics).expect("read");
    assert!(
        metrics.contains("\naccord_log_lines_dropped_total 0\n"),
        "{metrics}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert_eq!(exit.code(), Some(0), "stderr: {stderr}");
    // JSON logs: every line is an object; the request span carried the tx and outcome.
    assert!(
        stderr
            .lines()
            .all(|l| l.trim().is_empty() || l.starts_with('{')),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"tx\":\"tx-001\"") && stderr.contains("\"outcome\":\"allow\""),
        "{stderr}"
    );
    assert!(stderr.contains("data flushed"), "{stderr}");
    // ... and the log line of the request carries the same id.
    assert!(
        stderr.contains(&format!("\"request_id\":\"{request_id}\"")),
        "{request_id}: {stderr}"
    );
}

/// Secure by default: an address other hosts reach is refused without TLS and tokens (exit 2,
/// naming the setting); `--insecure` starts it, loudly, and `/readyz` says so.
#[test]
fn serving_beyond_loopback_without_protection_needs_insecure() {
    let data = tempfile::tempdir().expect("tempdir");
    let refused = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(data.path())
        .current_dir(crate::common::root())
        .output()
        .expect("accord serve runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("setting `listen`") && stderr.contains("--insecure"),
        "{stderr}"
    );
    let opened = std::fs::read_dir(data.path()).expect("data dir").count();
    assert_eq!(opened, 0, "nothing was opened");

    let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["serve", "--listen", "0.0.0.0:0", "--insecure", "--data"])
        .arg(data.path())
        .current_dir(crate::common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("accord serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let listening: serde_json::Value =
        accord_engine::json::value_from_str(&line).expect("JSON line");
    let port = listening["listening"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .expect("address")
        .to_owned();
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .expect("write");
    let mut ready = String::new();
    stream.read_to_string(&mut ready).expect("read");
    assert!(ready.contains("\"insecure\":true"), "{ready}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let exit = child.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert_eq!(exit.code(), Some(0), "{stderr}");
    assert!(stderr.contains("INSECURE"), "{stderr}");
}

/// Every request logs a line at the default level; a log pipe nobody reads (a stalled log
/// shipper) fills after a few hundred of them. Requests must go on being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_log_pipe_does_not_stall_requests() {
    let data = tempfile::tempdir().expect("tempdir");
    // Standard error is piped and never read.
    let (mut child, addr) = serve(data.path(), &[]);
    let url = format!("http://{addr}/v1/evaluate");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let body = crate::common::allow_tx().to_string();
    // About 250 bytes of log per request: 2,000 requests are several times a pipe's 64 KiB.
    for i in 0..2000 {
        let status = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"))
            .status();
        assert_eq!(status, 200, "request {i}");
    }
    let _ = child.kill();
    let _ = child.wait();
    // What the pipe holds: text lines, without terminal colours (stderr is not a terminal).
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(stderr.contains("answered status=200"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

/// GETs `path` from the node at `addr`; the status and the answer.
pub fn get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let response = reqwest::blocking::get(format!("http://{addr}{path}")).expect("request");
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    (
        status,
        accord_engine::json::value_from_str(&text).expect("JSON"),
    )
}

/// Stops `child` with SIGTERM; its exit code and what it wrote on standard error.
pub fn stop(mut child: Child) -> (Option<i32>, String) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    (exit.code(), stderr)
}

/// POSTs `body` to the node at `addr`; the status and the answer.
pub fn post(addr: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    (
        status,
        accord_engine::json::value_from_str(&text).expect("JSON"),
    )
}

/// The README's governance round with the binary: `sign` reads the proposal's base from the node,
/// `vote` its content hash, and the votes pass it.
#[test]
fn sign_and_vote_read_what_they_must_name_from_the_node() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = serve(data.path(), &[]);
    let node = format!("http://{addr}");
    let key = |m: &str| {
        crate::common::root()
            .join(format!("governance/dev-keys/{m}.key.json"))
            .display()
            .to_string()
    };
    let example = crate::common::root().join("examples/governance/drop-uruguay.yaml");
    let signed = crate::common::accord(&[
        "sign",
        &example.display().to_string(),
        "--key",
        &key("st-marys"),
        "--node",
        &node,
        "--consortium",
        "health-net-dev",
    ]);
    assert_eq!(
        signed.status.code(),
        Some(0),
        "{}",
        crate::common::stderr(&signed)
    );
    let (status, proposed) = post(&addr, "/v1/governance", &crate::common::stdout(&signed));
    assert_eq!(status, 200, "{proposed}");
    let id = proposed["applied"]["id"].as_str().expect("id").to_owned();
    // What a voter reads: the diff against the base, and the proposal with its summary.
    let diff = crate::common::accord(&["proposal", "diff", &id, "--node", &node]);
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}",
        crate::common::stderr(&diff)
    );
    let diff: serde_json::Value =
        accord_engine::json::value_from_str(&crate::common::stdout(&diff)).expect("JSON");
    assert_eq!(
        diff["bundle"]["parameters"][0]["name"], "adequacy",
        "{diff}"
    );
    assert_eq!(
        diff["bundle"]["files"]["changed"],
        serde_json::json!(["jurisdictions/EU.yaml"])
    );
    let show = crate::common::accord(&["proposal", "show", &id, "--node", &node]);
    assert_eq!(
        show.status.code(),
        Some(0),
        "{}",
        crate::common::stderr(&show)
    );
    let show: serde_json::Value =
        accord_engine::json::value_from_str(&crate::common::stdout(&show)).expect("JSON");
    assert_eq!(show["status"], "voting");
    assert_eq!(
        show["diff"]["bundle"]["parameters"][0]["jurisdiction"],
        "EU"
    );
    // The analysis: a parameter change leaves every Cedar policy as it was (needs cvc5).
    assert_eq!(show["analysis"]["status"], "complete", "{show}");
    assert_eq!(
        show["analysis"]["verdicts"]["Accord::Action::\"read\""], "equivalent",
        "{show}"
    );
    let analysed = crate::common::accord(&["proposal", "analyse", &id, "--node", &node]);
    assert_eq!(
        analysed.status.code(),
        Some(0),
        "{}",
        crate::common::stderr(&analysed)
    );
    let analysed: serde_json::Value =
        accord_engine::json::value_from_str(&crate::common::stdout(&analysed)).expect("JSON");
    assert_eq!(analysed["proposal"], id.as_str());
    assert_eq!(analysed["advisory"], true);
    assert_eq!(
        analysed["cedar"]["actions"].as_array().map(Vec::len),
        Some(8)
    );
    // The signed proposal, inspected against the node's members.
    let inspected = crate::common::accord_stdin(
        &["inspect", "-", "--node", &node],
        &crate::common::stdout(&signed),
    );
    assert_eq!(
        inspected.status.code(),
        Some(0),
        "{}",
        crate::common::stderr(&inspected)
    );
    let inspected: serde_json::Value =
        accord_engine::json::value_from_str(&crate::common::stdout(&inspected)).expect("JSON");
    assert_eq!(inspected["signature"]["valid"], true);
    assert_eq!(
        inspected["signature"]["checked_against"],
        "the node's members"
    );
    assert_eq!(inspected["proposal"]["id"], id.as_str());
    for (n, member) in ["st-marys", "acme-insurance"].iter().enumerate() {
        let vote = crate::common::accord(&[
            "vote",
            &id,
            "--choice",
            "yes",
            "--key",
            &key(member),
            "--node",
            &node,
        ]);
        assert_eq!(
            vote.status.code(),
            Some(0),
            "{}",
            crate::common::stderr(&vote)
        );
        let (status, voted) = post(&addr, "/v1/governance", &crate::common::stdout(&vote));
        assert_eq!(status, 200, "{voted}");
        assert_eq!(
            voted["applied"]["status"],
            if n == 0 { "voting" } else { "queued" },
            "{voted}"
        );
    }
    child.kill().expect("kill");
    let _ = child.wait();
}

/// `--cache-capacity`, `ACCORD_CACHE_CAPACITY` and the file's `cache_capacity`: a bad value stops
/// the start with exit 2, naming the setting; a good one serves.
#[test]
fn a_bad_cache_capacity_is_refused_at_start_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.display().to_string();
    let file = dir.path().join("accord.toml");
    std::fs::write(&file, "cache_capacity = \"lots\"\n").expect("write");
    let file = file.display().to_string();
    let run = |args: &[&str], env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_accord"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data", &data])
            .args(args)
            .current_dir(crate::common::root());
        if let Some(value) = env {
            command.env("ACCORD_CACHE_CAPACITY", value);
        }
        command.output().expect("accord runs")
    };
    for (args, env, reason) in [
        (&["--cache-capacity", "512KiB"][..], None, "at least 1MiB"),
        (&["--cache-capacity", "0"][..], None, "between 1 byte"),
        (&[][..], Some("1TB"), "unknown unit"),
        (&["--config", file.as_str()][..], None, "expected a size"),
    ] {
        let o = run(args, env);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(
            err.contains("setting `cache-capacity`") && err.contains(reason),
            "{args:?} {env:?}: {err}"
        );
    }
    let (child, addr) = serve(Path::new(&data), &["--cache-capacity", "8MiB"]);
    let (status, ready) = get(&addr, "/readyz");
    assert_eq!(status, 200, "{ready}");
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
}
