//! The seed corpus of each target, built from what the repository already holds: examples/,
//! the default bundle and its test cases, the benchmark mix, the governance test vectors and
//! example proposals. Built afresh on each run, so that it follows the repository.
//!
//! Regression inputs (fuzz/regressions/TARGET/) are inputs that once broke an invariant; they are
//! replayed by the crate's tests and by `fuzz/run.sh` before each run.

use crate::{default_bundle, default_files, repo, Target};
use accord_engine::cases::case_inputs;
use serde_json::{json, Value};
use std::path::Path;

/// A named seed.
pub type Seed = (String, Vec<u8>);

const CONSORTIUM: &str = "health-net-dev";
const MEMBERS: [&str; 3] = [
    "member/st-marys",
    "member/acme-insurance",
    "member/city-lab",
];

/// The seeds of `target`.
pub fn seeds(target: Target) -> Vec<Seed> {
    match target {
        Target::Transaction => transaction_seeds(),
        Target::Block => block_seeds(),
        Target::Governance => governance_seeds(),
        Target::Bundle => bundle_seeds(),
    }
}

/// The regression inputs of `target` (fuzz/regressions/TARGET/*), sorted by name.
pub fn regressions(target: Target) -> Vec<Seed> {
    let dir = repo().join("fuzz/regressions").join(target.name());
    let mut out: Vec<Seed> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_file())
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

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    accord_engine::json::value_from_str(&text).ok()
}

/// The JSON files of examples/, by file stem.
fn examples() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(repo().join("examples")) {
        for entry in rd.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "json") {
                if let Some(value) = read_json(&path) {
                    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                    out.push((stem.into_owned(), value));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The benchmark mix: its access transactions and its consent transactions.
fn mix() -> (Vec<Value>, Vec<Value>) {
    let Some(mix) = read_json(&repo().join("engine/benches/mix.json")) else {
        return (Vec::new(), Vec::new());
    };
    let list = |key: &str| mix[key].as_array().cloned().unwrap_or_default();
    (list("transactions"), list("consents"))
}

/// Every transaction the examples' blocks hold.
fn example_block_transactions() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (stem, value) in examples() {
        if let Value::Array(blocks) = value {
            for (b, block) in blocks.iter().enumerate() {
                for (t, tx) in block["transactions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    out.push((format!("{stem}-b{b}-t{t}"), tx.clone()));
                }
            }
        }
    }
    out
}

fn text(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

fn transaction_seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    for (stem, value) in examples() {
        if value.is_object() {
            out.push((format!("example-{stem}.json"), text(&value)));
        }
    }
    for (name, tx) in example_block_transactions() {
        out.push((format!("example-{name}.json"), text(&tx)));
    }
    let (transactions, consents) = mix();
    for (i, tx) in transactions.iter().enumerate() {
        out.push((format!("mix-{i:02}.json"), text(tx)));
    }
    for (i, tx) in consents.iter().enumerate() {
        out.push((format!("mix-consent-{i:02}.json"), text(tx)));
    }
    for (i, input) in case_inputs(default_bundle()).iter().enumerate() {
        let value = serde_json::to_value(&input.request).unwrap_or_default();
        out.push((format!("case-{i:03}.json"), text(&value)));
    }
    for (i, governance) in vector_governance().into_iter().enumerate() {
        let tx = json!({ "id": format!("tx-g{i}"), "kind": "governance",
                         "timestamp": "2026-03-02T08:00:00Z", "governance": governance });
        out.push((format!("governance-{i}.json"), text(&tx)));
    }
    out
}

/// The governance objects of the signing vectors (a message and its signature), as given.
fn vector_governance() -> Vec<Value> {
    let Some(vectors) = read_json(&repo().join("governance/tests/vectors/signing.json")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for key in ["vectors", "negative"] {
        for v in vectors[key].as_array().into_iter().flatten() {
            if let (Some(message), Some(signature)) = (v.get("message"), v.get("signature")) {
                out.push(json!({ "message": message, "signature": signature }));
            }
        }
    }
    out
}

/// A dev-signed governance object (the signing dialect of `governance_checks`).
fn dev_signed(message: Value) -> Value {
    json!({ "message": message, "signature": "dev" })
}

/// A proposal built on the dev genesis: a policy change names the default bundle's version as its
/// base, a voting-rule change the dev genesis's voting rules.
fn proposal(proposer: &str, title: &str, change: Value) -> Value {
    let mut message = json!({ "type": "proposal", "consortium": CONSORTIUM, "proposer": proposer,
                              "title": title, "change": change });
    match change["kind"].as_str() {
        Some("activate_bundle" | "rollback" | "set_jurisdiction_parameters") => {
            message["base"] = json!(default_bundle().version());
        }
        Some("set_voting_params") => {
            let genesis =
                accord_governance::Genesis::load(&repo().join("governance/genesis.dev.yaml"))
                    .unwrap_or_else(|e| panic!("dev genesis: {e}"));
            message["base"] = json!(genesis.voting.digest());
        }
        _ => {}
    }
    dev_signed(message)
}

fn vote(n: usize, voter: &str, choice: &str) -> Value {
    dev_signed(
        json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": format!("@{n}"),
                       "content": format!("@{n}"), "voter": voter, "choice": choice }),
    )
}

fn cancel(n: usize, proposer: &str) -> Value {
    dev_signed(json!({ "type": "cancel", "consortium": CONSORTIUM,
                       "proposal": format!("@{n}"), "proposer": proposer }))
}

/// A small bundle (one Cedar module of the default bundle, its schema and every jurisdiction)
/// as the `bundle` map of an `activate_bundle` change.
fn small_bundle_map() -> Value {
    let files = default_files();
    let mut map = serde_json::Map::new();
    let manifest = small_manifest(Some(0), None);
    map.insert("manifest.yaml".into(), Value::String(manifest));
    for (path, bytes) in files.iter() {
        let keep = path.starts_with("jurisdictions/")
            || path.ends_with(".cedarschema")
            || Some(path) == first_module_file().as_deref();
        if keep {
            map.insert(
                path.to_owned(),
                Value::String(String::from_utf8_lossy(bytes).into_owned()),
            );
        }
    }
    Value::Object(map)
}

/// The default manifest, as YAML.
fn default_manifest() -> serde_yaml::Value {
    let bytes = default_files().get("manifest.yaml").unwrap_or_default();
    accord_engine::yaml::check_unique_keys(bytes)
        .ok()
        .and_then(|()| serde_yaml::Deserializer::from_slice(bytes).next())
        .and_then(|doc| serde::Deserialize::deserialize(doc).ok())
        .unwrap_or(serde_yaml::Value::Null)
}

fn first_module_file() -> Option<String> {
    default_manifest()["modules"][0]["file"]
        .as_str()
        .map(str::to_owned)
}

/// The default manifest keeping only module `module` and test file `test` (none when `None`).
fn small_manifest(module: Option<usize>, test: Option<usize>) -> String {
    let mut manifest = default_manifest();
    let pick = |list: &serde_yaml::Value, i: Option<usize>| {
        serde_yaml::Value::Sequence(i.and_then(|i| list.get(i).cloned()).into_iter().collect())
    };
    if let serde_yaml::Value::Mapping(map) = &mut manifest {
        let modules = pick(&map["modules"], module);
        let tests = pick(&map["tests"], test);
        map.insert("modules".into(), modules);
        map.insert("tests".into(), tests);
    }
    serde_yaml::to_string(&manifest).unwrap_or_default()
}

/// Message sequences that walk the proposal lifecycle with each kind of change.
fn lifecycles() -> Vec<(String, Vec<Value>)> {
    let [a, b, c] = MEMBERS;
    let adequacy = default_bundle()
        .jurisdictions()
        .get("EU")
        .and_then(|j| j.parameters.get("adequacy"))
        .and_then(Value::as_array)
        .map(|l| l.iter().filter(|c| *c != "UY").cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    let new_key = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
    let changes = vec![
        (
            "jurisdiction-parameters",
            json!({ "kind": "set_jurisdiction_parameters", "jurisdiction": "EU",
                    "parameters": { "adequacy": adequacy } }),
        ),
        (
            "voting-params",
            json!({ "kind": "set_voting_params", "params": { "quorum": "2/3", "threshold": "1/2",
                    "voting_period": 5, "activation_delay": 1, "max_open_proposals": 1 } }),
        ),
        (
            "add-member",
            json!({ "kind": "add_member", "member": { "id": "member/new-clinic",
                    "name": "New Clinic", "public_key": new_key, "weight": 2 } }),
        ),
        (
            "remove-member",
            json!({ "kind": "remove_member", "member": c }),
        ),
        (
            "update-member",
            json!({ "kind": "update_member", "member": b, "weight": 5, "name": "Acme" }),
        ),
        (
            "rollback",
            json!({ "kind": "rollback", "version": default_bundle().version() }),
        ),
        (
            "activate-bundle",
            json!({ "kind": "activate_bundle", "bundle": small_bundle_map() }),
        ),
    ];
    let mut out = Vec::new();
    for (name, change) in changes {
        out.push((
            format!("{name}-passes"),
            vec![
                proposal(a, name, change.clone()),
                vote(0, a, "yes"),
                vote(0, b, "yes"),
                json!({ "begin": 12 }),
                json!({ "begin": 13 }),
            ],
        ));
        out.push((
            format!("{name}-rejected-cancelled"),
            vec![
                proposal(b, name, change.clone()),
                vote(0, a, "no"),
                vote(0, c, "abstain"),
                vote(0, c, "no"),
                cancel(0, b),
                proposal(c, "again", change),
                cancel(1, c),
            ],
        ));
    }
    out
}

fn governance_seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    for (i, governance) in vector_governance().into_iter().enumerate() {
        out.push((format!("vector-{i}.json"), text(&governance)));
        // The same message for the dev consortium, signed by a dev member.
        let mut message = governance["message"].clone();
        message["consortium"] = json!(CONSORTIUM);
        for field in ["proposer", "voter"] {
            if message.get(field).is_some() {
                message[field] = json!(MEMBERS[0]);
            }
        }
        out.push((
            format!("vector-{i}-dev.json"),
            text(&json!([dev_signed(message)])),
        ));
    }
    for (name, items) in lifecycles() {
        out.push((format!("lifecycle-{name}.json"), text(&Value::Array(items))));
    }
    out
}

fn block_seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    for (stem, value) in examples() {
        if let Value::Array(blocks) = &value {
            out.push((format!("example-{stem}.json"), text(&value)));
            for (i, block) in blocks.iter().enumerate() {
                out.push((format!("example-{stem}-{i}.json"), text(block)));
            }
        } else {
            let block = json!({ "height": 1, "transactions": [value] });
            out.push((format!("example-{stem}.json"), text(&block)));
        }
    }
    let (transactions, consents) = mix();
    let mut all = consents;
    all.extend(transactions);
    out.push((
        "mix.json".into(),
        text(&json!({ "height": 1, "transactions": all })),
    ));
    // Each lifecycle as blocks: one message per block, access transactions between.
    let share = examples()
        .into_iter()
        .find(|(stem, _)| stem == "share-to-uruguay")
        .map(|(_, v)| v);
    for (name, items) in lifecycles() {
        let mut blocks = Vec::new();
        let mut height = 1u64;
        for (i, item) in items.into_iter().enumerate() {
            if let Some(h) = item.get("begin").and_then(Value::as_u64) {
                while height < h {
                    blocks.push(json!({ "height": height, "transactions": [] }));
                    height += 1;
                }
                continue;
            }
            let mut transactions = vec![json!({ "id": format!("tx-{i}"), "kind": "governance",
                "timestamp": "2026-03-02T08:00:00Z", "governance": item })];
            if let Some(share) = &share {
                let mut access = share.clone();
                access["id"] = json!(format!("tx-{i}-share"));
                transactions.push(access);
            }
            blocks.push(json!({ "height": height, "transactions": transactions }));
            height += 1;
        }
        out.push((
            format!("lifecycle-{name}.json"),
            text(&Value::Array(blocks)),
        ));
    }
    out
}

fn bundle_seeds() -> Vec<Seed> {
    let files = default_files();
    let file = |path: &str| files.get(path).unwrap_or_default().to_vec();
    let input = |sections: Vec<(String, Vec<u8>)>| {
        crate::engine_checks::bundle_input(
            sections.iter().map(|(p, b)| (p.as_str(), b.as_slice())),
            true,
        )
    };
    let mut out = Vec::new();
    // (The default bundle as it is takes seconds to compile and test: too slow a seed. The property
    // tests load it through this door.)
    // Small bundles over the default one: the manifest cut down to one module or one test file,
    // given with that file, so that mutations reach the file and compile in milliseconds.
    let manifest = default_manifest();
    let list = |key: &str| -> Vec<String> {
        manifest[key]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|v| v.get("file").unwrap_or(v).as_str().map(str::to_owned))
            .collect()
    };
    for (i, path) in list("modules").into_iter().enumerate() {
        let small = small_manifest(Some(i), None).into_bytes();
        out.push((
            format!("module-{i:02}"),
            input(vec![
                ("manifest.yaml".into(), small),
                (path.clone(), file(&path)),
            ]),
        ));
    }
    for (i, path) in list("tests").into_iter().enumerate() {
        let small = small_manifest(None, Some(i)).into_bytes();
        out.push((
            format!("tests-{i:02}"),
            input(vec![
                ("manifest.yaml".into(), small),
                (path.clone(), file(&path)),
            ]),
        ));
    }
    let schema = manifest["schema"]
        .as_str()
        .unwrap_or("schema.cedarschema")
        .to_owned();
    let others = [
        schema,
        "jurisdictions/US.yaml".to_owned(),
        "jurisdictions/EU.yaml".to_owned(),
        "jurisdictions/EU-DE.yaml".to_owned(),
    ];
    for path in others {
        let small = small_manifest(Some(0), None).into_bytes();
        out.push((
            format!("file-{}", path.replace('/', "_")),
            input(vec![
                ("manifest.yaml".into(), small),
                (path.clone(), file(&path)),
            ]),
        ));
    }
    // A bundle from nothing: a manifest, a schema, one policy and one jurisdiction.
    let minimal = [
        (
            "manifest.yaml",
            "name: minimal\nschema: schema.cedarschema\njurisdictions: jurisdictions\n\
             modules:\n  - id: m/one\n    kind: cedar\n    file: one.cedar\n    regimes: [R]\n"
                .as_bytes(),
        ),
        (
            "schema.cedarschema",
            files.get("schema.cedarschema").unwrap_or_default(),
        ),
        (
            "one.cedar",
            b"@id(\"one\")\n@citation(\"Art. 1\")\npermit(principal, action, resource)\nwhen { context.regimes.contains(\"R\") };\n"
                .as_slice(),
        ),
        ("jurisdictions/XX.yaml", b"code: XX\nregimes: [R]\n".as_slice()),
    ];
    out.push((
        "minimal".into(),
        crate::engine_checks::bundle_input(minimal, false),
    ));
    out
}
