// Temporary: Rhai cost per module on the bench mix (each module alone in a bundle).
use accord_engine::bundle::{BundleFiles, Manifest, ModuleKind};
use accord_engine::consent::ConsentRegistry;
use accord_engine::decision::DecisionBuilder;
use accord_engine::transaction::{AccessRequest, Transaction};
use accord_engine::{Bundle, InMemoryConsentRegistry};
use std::time::Instant;
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = BundleFiles::read_dir(&root.join("../policies")).unwrap();
    let manifest = Manifest::parse(files.get("manifest.yaml").unwrap()).unwrap();
    let mix: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("benches/mix.json")).unwrap())
            .unwrap();
    let mut reg = InMemoryConsentRegistry::new();
    for c in mix["consents"].as_array().unwrap() {
        if let Transaction::Consent(t) = Transaction::from_value(c.clone()).unwrap() {
            reg.apply(&t).unwrap();
        }
    }
    let reqs: Vec<AccessRequest> = mix["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| AccessRequest::from_json(&t.to_string()).unwrap())
        .collect();
    let mut entries: Vec<_> = manifest
        .modules
        .iter()
        .filter(|m| m.kind == ModuleKind::Rhai)
        .cloned()
        .collect();
    entries.insert(
        0,
        accord_engine::bundle::ModuleEntry {
            id: "empty".into(),
            kind: ModuleKind::Rhai,
            file: "rhai/empty.rhai".into(),
            regimes: vec!["HIPAA".into(), "GDPR".into()],
            actions: None,
            purposes: None,
            citation: "x".into(),
            description: None,
        },
    );
    for m in entries {
        let mut one = manifest.clone();
        one.modules.retain(|x| x.kind == ModuleKind::Cedar);
        one.modules.push(m.clone());
        one.tests.clear();
        let mut map: std::collections::BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(p, b)| (p.to_owned(), b.to_vec()))
            .collect();
        map.insert(
            "manifest.yaml".into(),
            serde_yaml::to_string(&one).unwrap().into_bytes(),
        );
        map.insert(
            "rhai/empty.rhai".into(),
            b"fn evaluate(tx, env) { [] }".to_vec(),
        );
        let b = Bundle::compile(BundleFiles::new(map)).unwrap();
        let n = 300;
        let t0 = Instant::now();
        for _ in 0..n {
            for r in &reqs {
                let d = b.derive(r, &reg).unwrap();
                let mut bd = DecisionBuilder::new();
                b.rules().run(r, &d.facts(), &mut bd);
                std::hint::black_box(bd);
            }
        }
        let per = t0.elapsed() / (n * reqs.len() as u32);
        println!("{:32} {:?} per request (avg over mix)", m.id, per);
    }
}
