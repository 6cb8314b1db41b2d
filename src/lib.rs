//! The library side of the `accord` binary: the sidecar server behind `accord serve` (issue 4).
//!
//! The offline commands (`check`, `replay`, `test`, `validate`) live in the binary; the server is a
//! library so that tests and the load benchmark can run it in-process.

pub mod server;
