//! Accord's policy engine: decides health-data ledger transactions against HIPAA, GDPR and other
//! regimes written as Cedar policies and Rhai rule modules, per jurisdiction, deny-overrides and
//! fail-closed, with the legal citation of every rule that decided.
//!
//! - [`json`]: the one JSON reader every door uses; it refuses duplicate keys.
//! - [`transaction`]: the wire model of docs/contract.md §1, strictly parsed.
//! - [`jurisdiction`]: jurisdictions, their parents, regimes and parameters.
//! - [`bundle`]: loading, versioning and compiling a policy bundle; [`bundle::Bundle::decide`].
//! - [`cedar`] and [`rules`]: the two rule languages.
//! - [`consent`]: consent state, written by consent transactions.
//! - [`relations`]: personal representatives and data use agreements, kept with consent state.
//! - [`decision`]: the answer of docs/contract.md §2.
//! - [`cases`]: a bundle's own test cases.
//! - [`yaml`]: the YAML reader of bundles and messages; it refuses duplicate keys too.
//! - [`ledger`]: blocks as ledger nodes send them, their hash and canonical JSON.

pub mod bundle;
pub mod canonical;
pub mod cases;
pub mod cedar;
pub mod consent;
pub mod decision;
pub mod json;
pub mod jurisdiction;
pub mod ledger;
pub mod parallel;
pub mod relations;
pub mod rules;
pub mod symbolic;
pub mod transaction;
pub mod yaml;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use bundle::{Bundle, BundleError, BundleFiles};
pub use consent::{ConsentRegistry, InMemoryConsentRegistry};
pub use decision::{Decision, Effect};
pub use transaction::{AccessRequest, Transaction, TransactionError};
