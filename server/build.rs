//! Embeds the default policy bundle (`policies/`, `jurisdictions/`) and the development genesis
//! in the crate (`src/defaults.rs`): writes `$OUT_DIR/embedded.rs`, a sorted list of every file
//! under the two directories (path relative to the repository, bytes by `include_bytes!`), and
//! asks Cargo to build again whenever one of them changes.

use std::path::{Path, PathBuf};

fn main() {
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by Cargo"));
    let repository = crate_dir.parent().expect("server/ sits in the repository");
    let mut files = Vec::new();
    for dir in ["policies", "jurisdictions"] {
        let root = repository.join(dir);
        println!("cargo:rerun-if-changed={}", root.display());
        collect(&root, &mut files);
    }
    println!(
        "cargo:rerun-if-changed={}",
        repository.join("governance/genesis.dev.yaml").display()
    );
    files.sort();
    let mut out = String::from(
        "/// Every file of the default bundle: path relative to the repository, bytes.\n\
         pub static EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for path in &files {
        let relative = path
            .strip_prefix(repository)
            .expect("collected under the repository");
        let relative: Vec<_> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        out.push_str(&format!(
            "    ({:?}, include_bytes!({:?})),\n",
            relative.join("/"),
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let target =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by Cargo")).join("embedded.rs");
    std::fs::write(target, out).expect("write embedded.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.is_file() {
            files.push(path);
        }
    }
}
