//! The governance crate's integration tests, one module per concern (one test binary for the
//! crate); `common` holds the fixtures they share.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod brakes;
mod common;
mod flip;
mod fuzz_properties;
mod hybrid;
mod hybrid_vectors;
mod lifecycle;
mod open_bundles;
mod persistence;
mod preview;
mod properties;
mod refusals;
mod vectors;
