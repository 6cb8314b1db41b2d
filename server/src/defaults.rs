//! What the binary carries with it: the default policy bundle (the repository's `policies/` and
//! `jurisdictions/`) and the development genesis, embedded at build time (`build.rs`), so that
//! `accord serve` needs no file of the build directory. `accord init` writes the same bundle to
//! disk, where it can be edited and served with `--policies`.

use accord_engine::bundle::manifest::{Manifest, MANIFEST};
use accord_engine::bundle::JURISDICTIONS_DIR;
use accord_engine::{Bundle, BundleError, BundleFiles};
use accord_governance::{Genesis, GenesisError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The development genesis: three demo members whose secret keys are published in the
/// repository (`governance/dev-keys/`). For demos and tests only.
pub const DEV_GENESIS: &str = include_str!("../../governance/genesis.dev.yaml");

/// How the embedded development genesis is named in messages.
pub const DEV_GENESIS_NAME: &str = "the built-in dev genesis";

/// What the log (at start) and `/readyz` say while the node serves a genesis with the published
/// demo keys ([`is_dev_genesis`]).
pub const DEV_GENESIS_WARNING: &str = "DEV GENESIS: members have the published demo keys, so \
     anyone can sign governance messages as them; never for real use (`accord init DIR` makes a \
     consortium with fresh keys)";

/// The directory of the embedded bundle inside [`EMBEDDED`].
const BUNDLE_ROOT: &str = "policies";

/// The embedded file at `path` (relative to the repository; `..` components are resolved).
fn embedded(path: &str) -> Option<&'static [u8]> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    let wanted = parts.join("/");
    EMBEDDED
        .binary_search_by(|(p, _)| (*p).cmp(wanted.as_str()))
        .ok()
        .map(|i| EMBEDDED[i].1)
}

/// The default bundle's content, exactly as [`BundleFiles::read_dir`] reads it from the
/// repository's `policies/` (the same files, so the same version).
pub fn bundle_files() -> Result<BundleFiles, BundleError> {
    let missing = |path: &str, field: &str| BundleError::MissingFile {
        path: format!("(built-in bundle) {path}"),
        field: field.to_owned(),
    };
    let manifest_bytes = embedded(&format!("{BUNDLE_ROOT}/{MANIFEST}"))
        .ok_or_else(|| missing(MANIFEST, "(the bundle's manifest)"))?;
    let manifest = Manifest::parse(manifest_bytes)?;
    let mut named = vec![(manifest.schema.clone(), "schema".to_owned())];
    for (i, m) in manifest.modules.iter().enumerate() {
        named.push((m.file.clone(), format!("modules[{i}].file")));
    }
    for (i, t) in manifest.tests.iter().enumerate() {
        named.push((t.clone(), format!("tests[{i}]")));
    }
    let mut files = BTreeMap::new();
    for (file, field) in named {
        let bytes =
            embedded(&format!("{BUNDLE_ROOT}/{file}")).ok_or_else(|| missing(&file, &field))?;
        files.insert(file, bytes.to_vec());
    }
    let jurisdictions = format!("{BUNDLE_ROOT}/{}/", manifest.jurisdictions);
    let jurisdictions = normalized_dir(&jurisdictions);
    for (path, bytes) in EMBEDDED {
        let Some(name) = path.strip_prefix(jurisdictions.as_str()) else {
            continue;
        };
        // `read_dir` reads the directory's YAML files, not its subdirectories.
        if name.ends_with(".yaml") && !name.contains('/') {
            files.insert(format!("{JURISDICTIONS_DIR}{name}"), bytes.to_vec());
        }
    }
    files.insert(MANIFEST.to_owned(), manifest_bytes.to_vec());
    Ok(BundleFiles::new(files))
}

/// `dir/` with `..` resolved, ending with `/`.
fn normalized_dir(dir: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("{}/", parts.join("/"))
}

/// The default bundle, compiled.
pub fn bundle() -> Result<Bundle, BundleError> {
    Bundle::compile(bundle_files()?)
}

/// The development genesis. Its `bundle` names no directory of this machine: the default bundle
/// ([`bundle`]) is its initial bundle.
pub fn dev_genesis() -> Result<Genesis, GenesisError> {
    Genesis::parse(DEV_GENESIS.as_bytes(), DEV_GENESIS_NAME, Path::new(""))
}

/// Whether `genesis` gives any member a key of the development genesis, whose secret keys are
/// public: anyone can sign as that member.
pub fn is_dev_genesis(genesis: &Genesis) -> bool {
    let Ok(dev) = dev_genesis() else {
        return false;
    };
    genesis
        .membership
        .iter()
        .any(|m| dev.membership.iter().any(|d| d.public_key == m.public_key))
}

/// Writes the default bundle under `dir`: `dir/policies/` (the bundle) and `dir/jurisdictions/`
/// (which its manifest names as `../jurisdictions`). Returns the bundle directory. Refuses to
/// write over an existing file.
pub fn write_bundle(dir: &Path) -> std::io::Result<PathBuf> {
    for (path, bytes) in EMBEDDED {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", target.display())))?;
        std::io::Write::write_all(&mut file, bytes)?;
    }
    Ok(dir.join(BUNDLE_ROOT))
}
