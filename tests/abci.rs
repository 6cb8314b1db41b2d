//! The real binary: `accord abci` prints CometBFT's `app_state`, refuses a bad ABCI address, and
//! serves the ABCI socket and the HTTP sidecar until SIGTERM.

use accord_engine::Bundle;
use accord_governance::Genesis;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn print_app_state_names_the_genesis_and_policy_set_by_digest() {
    let out = crate::common::accord(&["abci", "--print-app-state"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let printed: serde_json::Value =
        accord_engine::json::value_from_str(&crate::common::stdout(&out)).expect("JSON");
    let root = crate::common::root();
    let genesis = Genesis::load(&root.join("governance/genesis.dev.yaml")).expect("genesis");
    let bundle = Bundle::load(&root.join("policies")).expect("bundle");
    assert_eq!(
        printed,
        serde_json::json!({ "accord_genesis": genesis.digest(bundle.version()) })
    );
}

#[test]
fn a_bad_abci_address_is_a_usage_error_naming_the_setting() {
    let out = crate::common::accord(&["abci", "--listen", "tcp://127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::common::stderr(&out);
    assert!(err.starts_with("accord: abci:"), "{err}");
    assert!(err.contains("listen"), "{err}");
}

#[test]
fn abci_serves_the_socket_and_the_sidecar_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("abci.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["abci", "--http", "127.0.0.1:0", "--listen"])
        .arg(format!("unix://{}", socket.display()))
        .arg("--data")
        .arg(dir.path().join("data"))
        .current_dir(crate::common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("accord abci starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let listening: serde_json::Value = accord_engine::json::value_from_str(&line).expect("JSON");
    assert_eq!(
        listening["abci"],
        format!("unix://{}", socket.display()),
        "{line}"
    );

    // ABCI Echo "hi", protobuf with a varint length prefix, as CometBFT writes it: Request
    // field 1 (echo) holding RequestEcho field 1 (message). The answer is Response field 2 (echo).
    let started = Instant::now();
    let mut stream = loop {
        if let Ok(stream) = std::os::unix::net::UnixStream::connect(&socket) {
            break stream;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the ABCI socket does not accept"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    stream
        .write_all(&[0x06, 0x0a, 0x04, 0x0a, 0x02, b'h', b'i'])
        .expect("write");
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).expect("read");
    assert_eq!(answer, [0x06, 0x12, 0x04, 0x0a, 0x02, b'h', b'i']);

    // The sidecar answers beside it.
    let addr = listening["listening"].as_str().expect("address");
    let mut http = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        http,
        "GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    http.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

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
    assert!(exit.success(), "{exit:?}");
}
