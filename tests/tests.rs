//! End-to-end tests of the `accord` binary and of the default bundle's decisions.
//!
//! - `cli`: exit codes, one-line errors and output shapes of the commands.
//! - `governance_cli`: `keygen`, `sign`, `propose`, and `replay` applying what they produce.
//! - `decisions`: snapshots of the default bundle's decisions on representative transactions.
//! - `validate`: `accord validate` (and `test`, `check`) on bundles with one mistake each.
//! - `serve`: the real binary serves, and stops on SIGTERM with exit 0.
//! - `abci`: `accord abci` prints CometBFT's `app_state`, serves its socket and sidecar, stops on
//!   SIGTERM.
//! - `init`: `accord init` and the built-in bundle and dev genesis.
//! - `backup`: `accord backup` (running and stopped node) and `accord restore`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod abci;
mod backup;
mod cli;
mod common;
mod decisions;
mod governance_cli;
mod init;
mod serve;
mod validate;
