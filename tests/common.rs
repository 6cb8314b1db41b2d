//! Helpers shared by the end-to-end tests of the `accord` binary: run it from the repository root
//! and read what it printed.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `accord` with `args` from the repository root.
pub fn accord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("accord runs")
}

/// As [`accord`], with `input` on standard input.
pub fn accord_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("accord starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("accord runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The allowed treatment read of the examples (tx-001).
pub fn allow_tx() -> serde_json::Value {
    let text =
        std::fs::read_to_string(root().join("examples/treatment-read.json")).expect("example");
    accord_engine::json::parse_str(&text).expect("example JSON")
}

/// Copies the directory tree `from` to `to` (a bundle and its jurisdictions, to edit a copy).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}
