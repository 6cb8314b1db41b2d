// Temporary: Rhai per-call overhead (N empty modules).
use accord_engine::bundle::{BundleFiles, Manifest, ModuleEntry, ModuleKind};
use accord_engine::decision::DecisionBuilder;
use accord_engine::transaction::AccessRequest;
use accord_engine::{Bundle, InMemoryConsentRegistry};
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = BundleFiles::read_dir(&root.join("../policies")).unwrap();
    let manifest = Manifest::parse(files.get("manifest.yaml").unwrap()).unwrap();
    let mix: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("benches/mix.json")).unwrap())
            .unwrap();
    let r = AccessRequest::from_json(&mix["transactions"][0].to_string()).unwrap();
    let reg = InMemoryConsentRegistry::new();
    for n in [1usize] {
        let mut one = manifest.clone();
        one.modules.retain(|x| x.kind == ModuleKind::Cedar);
        one.tests.clear();
        for i in 0..n {
            one.modules.push(ModuleEntry {
                id: format!("e{i}"),
                kind: ModuleKind::Rhai,
                file: "rhai/empty.rhai".into(),
                regimes: vec!["HIPAA".into()],
                actions: None,
                purposes: None,
                citation: "x".into(),
                description: None,
            });
        }
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
        let d = b.derive(&r, &reg).unwrap();
        let t0 = std::time::Instant::now();
        for _ in 0..200000 {
            let mut bd = DecisionBuilder::new();
            b.rules().run(&r, &d.facts(), &mut bd);
            std::hint::black_box(bd);
        }
        println!("{n} empty modules: {:?}", t0.elapsed() / 200000);
    }
}
