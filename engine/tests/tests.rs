//! The engine's integration tests, one module per concern (one test binary for the crate).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod default_bundle;
mod docs;
mod explain;
mod fuzz_properties;
