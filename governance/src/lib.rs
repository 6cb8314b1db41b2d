//! Accord governance: consortium members hold ed25519 keys (and ML-DSA-65 keys under a hybrid
//! genesis) and run signed proposal-and-vote rounds
//! whose passed proposals change the active policy set, the voting rules or the membership at a
//! block height, the same on every node.
//!
//! - [`message`]: the signed messages and the bytes their signatures cover;
//!   [`signature_scheme`]: ed25519 alone or hybrid with ML-DSA-65, as the genesis requires.
//! - [`state`]: membership, rules, proposals and what a message or a new height does to them;
//!   [`tally`] counts votes with integer ratios ([`params`]).
//! - [`machine`]: the block state machine, with impact preview and the atomic hot swap of
//!   [`policy_set`]; persisted in sled by `store`. Both read and write the block's answer
//!   ([`BlockAnswer`]).
//! - [`genesis`]: the consortium's starting point.
//! - [`diff`] and [`analysis`], for voters, outside the state root: what a proposal changes
//!   against its base, and the advisory per-action comparison of its Cedar policies with the
//!   base's.

pub mod analysis;
mod answer;
pub mod bundles;
mod change;
pub mod diff;
pub mod err;
pub mod genesis;
pub mod key_file;
pub mod machine;
pub mod member;
pub mod message;
pub mod params;
pub mod policy_set;
pub mod proposal;
pub mod signature_scheme;
pub mod state;
mod store;
pub mod tally;

pub use err::Refusal;
pub use genesis::{Genesis, GenesisError};
pub use key_file::{KeyFile, KeyFileError};
pub use machine::{BlockAnswer, BlockError, OpenError, Published, StateMachine, TxResult, Work};
pub use message::{Change, Choice, Envelope, Message};
pub use policy_set::{Activation, ActivePolicySet, ActiveSet};
pub use proposal::{Proposal, Status};
pub use signature_scheme::{SignatureFault, SignatureScheme};
pub use state::GovernanceState;
pub use store::StoreError;
