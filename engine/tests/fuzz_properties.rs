//! The fuzz targets' engine invariants (fuzz/src/engine_checks.rs) on generated inputs, so that
//! every `cargo test` checks them: arbitrary bytes, and valid transactions, blocks and bundle
//! files with one structured mutation (fuzz/properties/mutate.rs). Inputs that once broke an
//! invariant (fuzz/regressions/) are replayed here too.

#[allow(dead_code)]
#[path = "../../fuzz/src/engine_checks.rs"]
mod engine_checks;

#[allow(dead_code)]
#[path = "../../fuzz/properties/mutate.rs"]
mod mutate;

use accord_engine::cases::case_inputs;
use accord_engine::{Bundle, BundleFiles};
use engine_checks::Outcome;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files() -> &'static BundleFiles {
    static FILES: OnceLock<BundleFiles> = OnceLock::new();
    FILES.get_or_init(|| BundleFiles::read_dir(&repo().join("policies")).expect("default bundle"))
}

fn bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| Bundle::compile(files().clone()).expect("default bundle compiles"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    accord_engine::json::value_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Valid transactions of every kind: the examples, their blocks' transactions, and a spread of
/// the default bundle's test cases.
fn transactions() -> &'static Vec<Value> {
    static TXS: OnceLock<Vec<Value>> = OnceLock::new();
    TXS.get_or_init(|| {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(repo().join("examples"))
            .expect("examples")
            .flatten()
        {
            if entry.path().extension().is_some_and(|x| x == "json") {
                match read_json(&entry.path()) {
                    Value::Array(items) => {
                        for item in items {
                            match item.get("transactions").and_then(Value::as_array) {
                                Some(txs) => out.extend(txs.iter().cloned()),
                                None => out.push(item),
                            }
                        }
                    }
                    tx => out.push(tx),
                }
            }
        }
        for input in case_inputs(bundle()).iter().step_by(7) {
            out.push(serde_json::to_value(&input.request).expect("serializes"));
        }
        out
    })
}

/// Valid blocks: examples/ledger.json's and those of the other block examples.
fn blocks() -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("examples"))
        .expect("examples")
        .flatten()
    {
        if entry.path().extension().is_some_and(|x| x == "json") {
            // An array of blocks (an example may also be an array of state transactions for
            // `accord check --state`, which are transactions, not blocks).
            if let Value::Array(items) = read_json(&entry.path()) {
                out.extend(items.into_iter().filter(|b| b.get("height").is_some()));
            }
        }
    }
    out
}

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = repo().join("fuzz/regressions").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    std::fs::read(e.path()).ok().map(|b| (name, b))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_break_the_transaction_doors(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        engine_checks::transaction(&bytes, bundle());
    }

    #[test]
    fn arbitrary_bytes_never_break_the_block_doors(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        engine_checks::block(&bytes);
    }

    #[test]
    fn near_valid_transactions_keep_every_invariant(bytes in mutate::near_valid(transactions().clone())) {
        engine_checks::transaction(&bytes, bundle());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn near_valid_blocks_keep_every_invariant(bytes in mutate::near_valid(blocks())) {
        engine_checks::block(&bytes);
    }
}

/// A manifest of the default bundle keeping one module and no tests, as JSON (YAML's superset),
/// so that a mutated bundle compiles quickly.
fn small_manifests() -> Vec<Value> {
    let bytes = files().get("manifest.yaml").expect("manifest");
    accord_engine::yaml::check_unique_keys(bytes)
        .unwrap_or_else(|e| panic!("manifest: {}", e.reason));
    let manifest =
        <Value as serde::Deserialize>::deserialize(serde_yaml::Deserializer::from_slice(bytes))
            .expect("manifest parses");
    let modules = manifest["modules"].as_array().cloned().unwrap_or_default();
    modules
        .into_iter()
        .step_by(5)
        .map(|m| {
            let mut small = manifest.clone();
            small["modules"] = Value::Array(vec![m]);
            small["tests"] = Value::Array(Vec::new());
            small
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// A mutated manifest over the default bundle's files compiles or is refused with a typed
    /// error.
    #[test]
    fn near_valid_manifests_load_or_are_refused(manifest in mutate::near_valid(small_manifests())) {
        let input = engine_checks::bundle_input([("manifest.yaml", manifest.as_slice())], true);
        engine_checks::bundle(engine_checks::bundle_files(&input, files()));
    }

    /// A jurisdiction file, a Rhai module or a Cedar policy with bytes spliced in, truncated or
    /// cut short: the bundle compiles or is refused with a typed error.
    #[test]
    fn mangled_bundle_files_load_or_are_refused(
        which in 0usize..3,
        at in 0.0f64..1.0,
        cut in prop::option::of(0.0f64..1.0),
        stray in prop::collection::vec(any::<u8>(), 0..12),
    ) {
        let manifest = serde_json::to_string(&small_manifests()[which % 2]).expect("json");
        let module_file = small_manifests()[which % 2]["modules"][0]["file"].as_str().unwrap_or("").to_owned();
        let target = match which {
            0 => "jurisdictions/US.yaml".to_owned(),
            _ => module_file,
        };
        let mut bytes = files().get(&target).unwrap_or_default().to_vec();
        let pos = ((bytes.len() as f64) * at) as usize;
        bytes.splice(pos..pos, stray);
        if let Some(cut) = cut {
            bytes.truncate(((bytes.len() as f64) * cut) as usize);
        }
        let input = engine_checks::bundle_input(
            [("manifest.yaml", manifest.as_bytes()), (target.as_str(), bytes.as_slice())],
            true,
        );
        engine_checks::bundle(engine_checks::bundle_files(&input, files()));
    }
}

#[test]
fn generated_transactions_get_past_the_parser() {
    // A generator whose every document is refused tests only the refusals: most mutated
    // transactions must still parse, so that the decision invariants are exercised.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = mutate::near_valid(transactions().clone());
    let mut accepted = 0;
    for _ in 0..200 {
        let bytes = strategy.new_tree(&mut runner).expect("a value").current();
        if engine_checks::transaction(&bytes, bundle()) == Outcome::Accepted {
            accepted += 1;
        }
    }
    assert!(
        accepted >= 40,
        "only {accepted} of 200 mutated transactions parsed"
    );
}

#[test]
fn the_examples_and_test_cases_keep_every_invariant() {
    for tx in transactions() {
        let bytes = serde_json::to_vec(tx).expect("serializes");
        assert_eq!(
            engine_checks::transaction(&bytes, bundle()),
            Outcome::Accepted,
            "{tx}"
        );
    }
    for block in blocks() {
        let bytes = serde_json::to_vec(&block).expect("serializes");
        assert!(engine_checks::block(&bytes).is_some(), "{block}");
    }
}

#[test]
fn the_default_bundle_loads_through_the_fuzz_door() {
    let input = engine_checks::bundle_input(
        [(
            "manifest.yaml",
            files().get("manifest.yaml").expect("manifest"),
        )],
        true,
    );
    assert_eq!(
        engine_checks::bundle(engine_checks::bundle_files(&input, files())),
        Outcome::Accepted
    );
}

#[test]
fn regression_inputs_keep_every_invariant() {
    for (name, bytes) in regressions("transaction") {
        eprintln!("transaction/{name}");
        engine_checks::transaction(&bytes, bundle());
    }
    for (name, bytes) in regressions("block") {
        eprintln!("block/{name}");
        engine_checks::block(&bytes);
    }
    for (name, bytes) in regressions("bundle") {
        eprintln!("bundle/{name}");
        engine_checks::bundle(engine_checks::bundle_files(&bytes, files()));
    }
}

/// Found by the `transaction` target: a transaction with an unknown top-level field whose name is
/// empty (`"": "US-CA"`) was refused through `Transaction::from_json` (the door of blocks,
/// consents and test cases) naming the field `` (nothing at all), and inside a block
/// `transactions[0].`, where `AccessRequest::from_json` named `.`. An unknown field is named by
/// its path; the empty path is the document, `.`, at every door.
#[test]
fn an_unknown_top_level_field_is_refused_naming_its_path() {
    let example = read_json(&repo().join("examples/treatment-read.json"));
    for (key, field, in_block) in [
        ("", ".", "transactions[0]"),
        ("foo", "foo", "transactions[0].foo"),
    ] {
        let mut tx = example.clone();
        tx[key] = Value::from("US-CA");
        let text = tx.to_string();
        for e in [
            accord_engine::Transaction::from_json(&text).expect_err("refused"),
            accord_engine::AccessRequest::from_json(&text).expect_err("refused"),
        ] {
            assert_eq!(e.field, field, "{key:?}: {e}");
            assert!(e.reason.contains("unknown field"), "{e}");
        }
        engine_checks::transaction(text.as_bytes(), bundle());
        let block = serde_json::json!({ "height": 1, "transactions": [tx] }).to_string();
        let prepared = accord_engine::ledger::Block::from_json(&block)
            .expect("a block")
            .prepare();
        let e = prepared.transactions.expect_err("refused");
        assert_eq!(e.field, in_block, "{key:?}: {e}");
    }
}

/// Found by `near_valid_blocks_keep_every_invariant`: serde_json's default reading of numbers is
/// not correctly rounded, so `-1.6678555217004281e+69` read, written out and read again became
/// `-1.667855521700428e+69`: a block re-serialized on its way hashed differently, and two
/// readers of one transaction could see two numbers. Numbers are now read exactly
/// (`float_roundtrip`).
#[test]
fn a_number_reads_back_as_itself() {
    for text in [
        "-1.6678555217004281e+69",
        "1.9460352244400384e+236",
        "5e-324",
        "0.30000000000000004",
        "2.2250738585072014e-308",
        "1.7976931348623157e308",
    ] {
        let value = accord_engine::json::value_from_str(text).expect("a number");
        let again = accord_engine::json::value_from_str(&value.to_string()).expect("a number");
        assert_eq!(value, again, "{text} read back as {again}");
    }
    for (name, bytes) in regressions("block") {
        if name.starts_with("float") {
            let block = engine_checks::block(&bytes).expect("a block");
            assert!(!block.transactions.is_empty());
        }
    }
}
