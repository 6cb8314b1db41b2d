//! Accord governance: consortium members hold ed25519 keys and run signed proposal-and-vote rounds
//! whose passed proposals change the active policy set, the voting rules or the membership at a
//! block height, the same on every node.

pub mod policy_set;

pub use policy_set::{Activation, ActivePolicySet, ActiveSet};
