//! The policy set that governs evaluation now, swapped atomically at an activation height.

use accord_engine::{AccessRequest, Bundle, ConsentRegistry, Decision};
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One compiled bundle together with the height from which it governs.
#[derive(Debug)]
pub struct ActiveSet {
    pub bundle: Arc<Bundle>,
    /// The first block height this set governed (0 for the genesis set).
    pub activated_at_height: u64,
}

impl ActiveSet {
    pub fn version(&self) -> &str {
        self.bundle.version()
    }

    pub fn decide(&self, request: &AccessRequest, consents: &dyn ConsentRegistry) -> Decision {
        self.bundle
            .decide(request, consents, self.activated_at_height)
    }

    /// Decides every request in order against one consent state, phase by phase
    /// ([`Bundle::decide_all`]); each decision is the one [`ActiveSet::decide`] gives.
    pub fn decide_all<R: std::borrow::Borrow<AccessRequest>>(
        &self,
        requests: &[R],
        consents: &dyn ConsentRegistry,
    ) -> Vec<Decision> {
        self.bundle
            .decide_all(requests, consents, self.activated_at_height)
    }
}

/// The active policy set, shared by every evaluating thread.
///
/// Guarantees: a reader takes a snapshot with [`ActivePolicySet::current`] without locking and
/// keeps evaluating on it even if a swap happens meanwhile; a swap publishes a fully compiled set
/// in one pointer store, so no reader ever sees a half-built set and none is blocked.
#[derive(Debug)]
pub struct ActivePolicySet {
    current: ArcSwap<ActiveSet>,
}

impl ActivePolicySet {
    pub fn new(set: ActiveSet) -> Self {
        ActivePolicySet {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// A snapshot of the set in force now.
    pub fn current(&self) -> Arc<ActiveSet> {
        self.current.load_full()
    }

    /// Decides on the set in force when called; the decision names that set's version.
    pub fn decide(&self, request: &AccessRequest, consents: &dyn ConsentRegistry) -> Decision {
        self.current.load().decide(request, consents)
    }

    /// Publishes `set`; evaluations already running finish on the set they loaded.
    pub fn swap(&self, set: ActiveSet) {
        self.current.store(Arc::new(set));
    }
}

/// One entry of the active-version history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    pub version: String,
    pub name: String,
    pub activated_at_height: u64,
    /// The proposal that activated it; `None` for the genesis set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<String>,
}
