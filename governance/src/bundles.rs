//! Bundles known to governance, addressed by version: the genesis set, every set proposed, and
//! their compiled forms for the sets that are active or pending. Proposals naming the same
//! version share one compiled bundle.

use crate::err::Refusal;
use accord_engine::{Bundle, BundleError, BundleFiles};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A bundle's size as the open-proposal budget counts it: the bytes of its files' paths and
/// contents.
pub fn bundle_bytes(files: &BundleFiles) -> u64 {
    files
        .iter()
        .map(|(path, bytes)| (path.len() as u64).saturating_add(bytes.len() as u64))
        .fold(0, u64::saturating_add)
}

/// The distinct candidate bundles open (voting or queued) policy proposals hold, against the
/// budget `voting.max_open_bundle_bytes`.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenBundles {
    /// Versions held, each once.
    pub held: BTreeSet<String>,
    /// Versions held by a proposal whose bundle passed the complete check (compile and own
    /// tests) when it was proposed: a new proposal of the same content passes it alike.
    pub checked: BTreeSet<String>,
    /// Sum of [`bundle_bytes`] over `held`.
    pub bytes: u64,
    pub budget: u64,
}

impl OpenBundles {
    /// Refuses a bundle of `size` bytes that open proposals do not hold yet and that would
    /// take them over the budget; `field` is the message field that brings it.
    pub fn admit(&self, version: &str, size: u64, field: &str) -> Result<(), Refusal> {
        if self.held.contains(version) || self.bytes.saturating_add(size) <= self.budget {
            return Ok(());
        }
        Err(Refusal::BundleBudgetExceeded {
            field: field.to_owned(),
            version: version.to_owned(),
            size,
            held: self.bytes,
            budget: self.budget,
        })
    }
}

/// Content-addressed bundle content plus a cache of compiled bundles. Cloning is cheap (shared
/// `Arc`s), which is how a block stages its changes.
#[derive(Debug, Clone, Default)]
pub struct BundleStore {
    files: BTreeMap<String, Arc<BundleFiles>>,
    compiled: BTreeMap<String, Arc<Bundle>>,
    /// Versions added since the last [`BundleStore::take_unsaved`].
    unsaved: BTreeSet<String>,
    /// Bundles compiled through this store and its clones (staged copies included).
    compiles: Arc<AtomicU64>,
}

impl BundleStore {
    /// Records a compiled bundle (and its content) under its version.
    pub fn insert(&mut self, bundle: Arc<Bundle>) {
        let version = bundle.version().to_owned();
        if !self.files.contains_key(&version) {
            self.files
                .insert(version.clone(), Arc::new(bundle.files().clone()));
            self.unsaved.insert(version.clone());
        }
        self.compiled.insert(version, bundle);
    }

    /// Records content read back from storage, not compiled yet.
    pub fn restore(&mut self, files: BundleFiles) {
        self.files.insert(files.version(), Arc::new(files));
    }

    pub fn files(&self, version: &str) -> Option<&Arc<BundleFiles>> {
        self.files.get(version)
    }

    pub fn contains(&self, version: &str) -> bool {
        self.files.contains_key(version)
    }

    /// The compiled bundle of `version`, compiling (and caching) it if needed.
    pub fn compiled(&mut self, version: &str) -> Result<Arc<Bundle>, String> {
        if let Some(b) = self.compiled.get(version) {
            return Ok(b.clone());
        }
        let files = self
            .files
            .get(version)
            .ok_or_else(|| format!("no bundle with version {version} is stored"))?;
        let files = (**files).clone();
        let bundle = Arc::new(self.compile(files).map_err(|e| e.to_string())?);
        self.compiled.insert(version.to_owned(), bundle.clone());
        Ok(bundle)
    }

    /// Compiles `files` (without caching), counted in [`BundleStore::compiles`].
    pub fn compile(&self, files: BundleFiles) -> Result<Bundle, BundleError> {
        self.compiles.fetch_add(1, Ordering::Relaxed);
        Bundle::compile(files)
    }

    /// Bundles compiled so far by this store and the copies it shares its counter with.
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// [`bundle_bytes`] of the stored `version`, if it is stored.
    pub fn bytes(&self, version: &str) -> Option<u64> {
        self.files.get(version).map(|f| bundle_bytes(f))
    }

    /// The compiled bundle of `version` if it is in the cache.
    pub fn cached(&self, version: &str) -> Option<&Arc<Bundle>> {
        self.compiled.get(version)
    }

    /// Drops compiled bundles not in `keep` (content stays).
    pub fn retain_compiled(&mut self, keep: &BTreeSet<String>) {
        self.compiled.retain(|v, _| keep.contains(v));
    }

    /// Versions added since the last call, with their content, for persistence.
    pub fn take_unsaved(&mut self) -> Vec<(String, Arc<BundleFiles>)> {
        let versions = std::mem::take(&mut self.unsaved);
        versions
            .into_iter()
            .filter_map(|v| self.files.get(&v).map(|f| (v, f.clone())))
            .collect()
    }
}
