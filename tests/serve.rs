//! The real binary: `accord serve` picks a free port (from `ACCORD_LISTEN`), answers, and exits 0
//! on SIGTERM, its last log lines written.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `accord serve` on a free loopback port with `data` and `args`, standard output and error piped;
/// the process and the address it listens on.
fn serve(data: &Path, args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--data")
        .arg(data)
        .current_dir(crate::common::root())
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
