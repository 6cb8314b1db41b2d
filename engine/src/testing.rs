//! Test fixtures: a small bundle built in memory over the real schema, transaction builders, the
//! default bundle and the benchmark mix. Compiled for the engine's own tests and, with the
//! `testing` feature, for other crates' tests and benches.

use crate::bundle::{Bundle, BundleFiles};
use crate::consent::InMemoryConsentRegistry;
use crate::transaction::AccessRequest;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const SCHEMA: &str = include_str!("../../policies/schema.cedarschema");

pub const MANIFEST: &str = r#"
name: mini
schema: schema.cedarschema
regimes:
  HIPAA: { default_deny_citation: "45 CFR 164.502(a)", default_deny_message: "no HIPAA permission" }
  GDPR: { default_deny_citation: "GDPR Art. 6(1)", default_deny_message: "no lawful basis" }
modules:
  - { id: test/hipaa, kind: cedar, file: cedar/hipaa.cedar, regimes: [HIPAA], citation: "45 CFR 164" }
  - { id: test/gdpr, kind: cedar, file: cedar/gdpr.cedar, regimes: [GDPR], citation: "GDPR" }
  - { id: test/rules, kind: rhai, file: rhai/rules.rhai, regimes: [HIPAA], citation: "45 CFR 164.312(b)" }
tests: [tests/cases.yaml]
attributes:
  context:
    legal_process: { one_of: [court-order, subpoena] }
    remuneration: boolean
    # Read by the engine's own tests of rule modules.
    flag: boolean
    basis: string
    n: string
    k: integer
"#;

pub const HIPAA_CEDAR: &str = r#"
@id("treatment")
@citation("45 CFR 164.506(c)(1)")
@message("treatment by a provider")
permit (principal, action in [Accord::Action::"read", Accord::Action::"write"], resource)
when { context.regimes.contains("HIPAA") && context.purpose == "TREAT" && principal.kind == "Practitioner" };

@id("psychotherapy-notes")
@citation("45 CFR 164.508(a)(2)")
@message("psychotherapy notes need an authorization")
forbid (principal, action, resource)
when { context.regimes.contains("HIPAA") && resource.data_categories.contains("psychotherapy-notes") }
unless { context.consent_categories.contains("psychotherapy-notes") };

@id("consented-share")
@citation("45 CFR 164.508(a)(1)")
@message("disclosure under an authorization")
permit (principal, action == Accord::Action::"share", resource)
when { context.regimes.contains("HIPAA") && context.consent_categories.containsAll(resource.data_categories) };
"#;

pub const GDPR_CEDAR: &str = r#"
@id("health-care")
@citation("GDPR Art. 9(2)(h)")
@message("provision of health care")
permit (principal, action == Accord::Action::"read", resource)
when { context.regimes.contains("GDPR") && context.purpose == "TREAT" };
"#;

pub const RULES_RHAI: &str = r#"
fn evaluate(tx, env) {
    let out = [];
    if tx.context.purpose_of_use == "HMARKT" {
        out.push(deny("marketing", "45 CFR 164.508(a)(3)", "marketing needs an authorization"));
    }
    let hours = param(env.jurisdictions[0], "review_hours");
    out.push(obligation("audit", "45 CFR 164.312(b)", #{ within_hours: hours }));
    out
}
"#;

pub const CASES: &str = r#"
defaults:
  access:
    timestamp: "2026-03-01T10:00:00Z"
    actor: { id: practitioner/alice, type: Practitioner, organization: org/st-marys, jurisdiction: US-CA }
    resource: { id: Observation/1, type: Observation, patient: { id: patient/p-1 }, jurisdiction: US }
cases:
  - name: treatment read
    why: 164.506(c)(1)
    access: { action: read, context: { purpose_of_use: TREAT } }
    expect: { decision: allow, citations: ["45 CFR 164.506(c)(1)"], obligations: [audit] }
  - name: marketing
    why: 164.508(a)(3)
    access: { action: read, context: { purpose_of_use: HMARKT } }
    expect: { decision: deny, citations: ["45 CFR 164.508(a)(3)"] }
"#;

pub fn jurisdiction_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("jurisdictions/US.yaml", "code: US\nname: United States\nregimes: [HIPAA]\nparameters: { review_hours: 24 }\n"),
        ("jurisdictions/US-CA.yaml", "code: US-CA\nname: California\nparent: US\n"),
        ("jurisdictions/EU.yaml", "code: EU\nname: European Union\nregimes: [GDPR]\nparameters: { review_hours: 72, adequacy: [CH, JP] }\n"),
        ("jurisdictions/EU-DE.yaml", "code: EU-DE\nname: Germany\nparent: EU\ncountry: DE\nparameters: { digital_consent_age: 16 }\n"),
    ]
}

/// The fixture bundle's files; `overrides` replace (or add) files by path.
pub fn files_with(overrides: &[(&str, &str)]) -> BundleFiles {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let base = [
        ("manifest.yaml", MANIFEST),
        ("schema.cedarschema", SCHEMA),
        ("cedar/hipaa.cedar", HIPAA_CEDAR),
        ("cedar/gdpr.cedar", GDPR_CEDAR),
        ("rhai/rules.rhai", RULES_RHAI),
        ("tests/cases.yaml", CASES),
    ];
    for (path, text) in base.into_iter().chain(jurisdiction_files()) {
        files.insert(path.to_owned(), text.as_bytes().to_vec());
    }
    for (path, text) in overrides {
        files.insert((*path).to_owned(), text.as_bytes().to_vec());
    }
    BundleFiles::new(files)
}

pub fn bundle() -> Bundle {
    match Bundle::compile(files_with(&[])) {
        Ok(b) => b,
        Err(e) => panic!("fixture bundle must compile: {e}"),
    }
}

/// A valid access transaction: a California physician reads a US observation for treatment.
pub fn access_json() -> Value {
    json!({
        "id": "tx-1",
        "kind": "access",
        "timestamp": "2026-03-01T10:00:00Z",
        "actor": { "id": "practitioner/alice", "type": "Practitioner", "organization": "org/st-marys",
                   "roles": ["physician"], "jurisdiction": "US-CA" },
        "action": "read",
        "resource": { "id": "Observation/obs-88", "type": "Observation",
                      "patient": { "id": "patient/p-1", "birth_date": "2011-05-01" },
                      "data_categories": ["general"], "jurisdiction": "US" },
        "context": { "purpose_of_use": "TREAT", "treating_relationship": true }
    })
}

/// `access_json()` with `patch` deep-merged over it, parsed.
pub fn access(patch: Value) -> AccessRequest {
    let value = crate::cases::deep_merge(access_json(), patch);
    match AccessRequest::from_json(&value.to_string()) {
        Ok(r) => r,
        Err(e) => panic!("fixture transaction must parse: {e}"),
    }
}

/// The default policy bundle (`policies/` at the repository root).
pub fn default_bundle() -> Bundle {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    match Bundle::load(&dir) {
        Ok(b) => b,
        Err(e) => panic!("the default bundle must load: {e}"),
    }
}

/// The default bundle, compiled once per test binary and shared by every test in it (compiling
/// it takes seconds).
pub fn shared_default_bundle() -> std::sync::Arc<Bundle> {
    static BUNDLE: std::sync::OnceLock<std::sync::Arc<Bundle>> = std::sync::OnceLock::new();
    std::sync::Arc::clone(BUNDLE.get_or_init(|| std::sync::Arc::new(default_bundle())))
}

/// The benchmark mix (`engine/benches/mix.json`): its access transactions and a registry holding
/// its consents.
pub struct BenchmarkMix {
    /// Each access transaction as JSON, in file order.
    pub transactions: Vec<Value>,
    /// The consent transactions, in file order.
    pub consents: Vec<Value>,
    /// Each access transaction as JSON text, in file order.
    pub texts: Vec<String>,
    /// The same transactions, parsed.
    pub requests: Vec<AccessRequest>,
    /// A registry to which every consent transaction of the mix was applied.
    pub registry: InMemoryConsentRegistry,
}

/// Reads the benchmark mix.
pub fn benchmark_mix() -> BenchmarkMix {
    let mix = match crate::json::value_from_str(include_str!("../benches/mix.json")) {
        Ok(v) => v,
        Err(e) => panic!("mix.json must be JSON: {e}"),
    };
    let Some(consents) = mix["consents"].as_array().cloned() else {
        panic!("mix.json: `consents` must be an array");
    };
    let registry = match InMemoryConsentRegistry::from_transactions(&consents) {
        Ok(r) => r,
        Err(e) => panic!("mix.json: the consents must apply: {e}"),
    };
    let Some(transactions) = mix["transactions"].as_array().cloned() else {
        panic!("mix.json: `transactions` must be an array");
    };
    let texts: Vec<String> = transactions.iter().map(Value::to_string).collect();
    let requests = texts
        .iter()
        .map(|t| match AccessRequest::from_json(t) {
            Ok(r) => r,
            Err(e) => panic!("mix.json: a transaction must parse: {e}"),
        })
        .collect();
    BenchmarkMix {
        transactions,
        consents,
        texts,
        requests,
        registry,
    }
}
