//! `accord abci`: Accord as a CometBFT (v0.38) ABCI 2.0 application, over the same state
//! machine, store and decision log as `accord serve` (docs/abci.md).
//!
//! A crate of its own, between the binary and the server: it depends on `accord-server` for the
//! state, the block path (`routes::blocks::apply_and_log`) and the sidecar's routes, and nothing
//! depends on it, so the HTTP server builds and runs without the ABCI stack (`tower-abci`,
//! `tendermint`, `prost`).
//!
//! One module per concern: [`tx`] (transaction bytes, result codes), [`app`] (the ABCI methods
//! and the four `tower` services), [`events`] (results and events of a finalized block),
//! [`query`] (`abci_query` paths), [`committed`] (the last committed height), [`genesis`]
//! (CometBFT's `app_state`), [`sidecar`] (the HTTP routes next to a chain), [`run`] (flags,
//! sockets, the process).

pub mod app;
pub mod committed;
pub mod events;
pub mod genesis;
pub mod query;
pub mod run;
pub mod sidecar;
pub mod tx;

pub use app::App;
pub use run::{abci_server, listen, run, AbciAddr, AbciArgs};
