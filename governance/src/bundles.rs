//! Bundles known to governance, addressed by version: the genesis set, every set proposed, and
//! their compiled forms for the sets that are active or pending.

use accord_engine::{Bundle, BundleFiles};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Content-addressed bundle content plus a cache of compiled bundles. Cloning is cheap (shared
/// `Arc`s), which is how a block stages its changes.
#[derive(Debug, Clone, Default)]
pub struct BundleStore {
    files: BTreeMap<String, Arc<BundleFiles>>,
    compiled: BTreeMap<String, Arc<Bundle>>,
    /// Versions added since the last [`BundleStore::take_unsaved`].
    unsaved: BTreeSet<String>,
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
        let bundle = Arc::new(Bundle::compile((**files).clone()).map_err(|e| e.to_string())?);
        self.compiled.insert(version.to_owned(), bundle.clone());
        Ok(bundle)
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
