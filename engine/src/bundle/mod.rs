//! Policy bundles: a manifest, a Cedar schema and policies, Rhai modules, jurisdictions and tests.
//!
//! [`BundleFiles`] is a bundle's content (logical path → bytes), read from a directory or received
//! whole (a governance proposal carries one). Its [`version`](BundleFiles::version) depends only on
//! that content. [`Bundle`] is the compiled form: immutable, `Send + Sync`, and everything evaluation
//! needs is precomputed, so [`Bundle::decide`] only reads it.

mod decide;
mod err;
mod explain;
pub mod manifest;
mod review;

pub use err::BundleError;
pub use explain::{Explanation, RequiredPermit};
pub use manifest::{
    AttributeType, DeclaredAttributes, Manifest, ModuleEntry, ModuleKind, RegimeDefaults,
};
pub use review::{unnamed_files, Review};

use crate::cedar::{CedarPolicies, CedarSource, RequestFacts};
use crate::consent::{ConsentFacts, ConsentQuery, ConsentRegistry};
use crate::jurisdiction::{Applicable, JurisdictionError, JurisdictionTable};
use crate::relations::{AgreementQuery, RelationFacts, RepresentationQuery};
use crate::rules::{RhaiSource, RuleModules};
use crate::transaction::{AccessRequest, DataCategory};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Logical directory of jurisdiction files inside a bundle's content.
pub const JURISDICTIONS_DIR: &str = "jurisdictions/";

/// A bundle's content: logical path → bytes, ordered by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleFiles {
    files: BTreeMap<String, Vec<u8>>,
}

impl BundleFiles {
    pub fn new(files: BTreeMap<String, Vec<u8>>) -> Self {
        BundleFiles { files }
    }

    /// Reads the manifest in `dir`, then every file it names, and the jurisdiction directory.
    pub fn read_dir(dir: &Path) -> Result<Self, BundleError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| BundleError::Io {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        };
        let manifest_bytes = read(&dir.join(manifest::MANIFEST))?;
        let manifest = Manifest::parse(&manifest_bytes)?;
        let mut files = BTreeMap::new();
        let mut named = vec![(manifest.schema.clone(), "schema".to_owned())];
        for (i, m) in manifest.modules.iter().enumerate() {
            named.push((m.file.clone(), format!("modules[{i}].file")));
        }
        for (i, t) in manifest.tests.iter().enumerate() {
            named.push((t.clone(), format!("tests[{i}]")));
        }
        for (file, field) in named {
            let path = dir.join(&file);
            if !path.is_file() {
                return Err(BundleError::MissingFile {
                    path: path.display().to_string(),
                    field,
                });
            }
            files.insert(file, read(&path)?);
        }
        let jdir = dir.join(&manifest.jurisdictions);
        let entries = std::fs::read_dir(&jdir).map_err(|e| BundleError::Io {
            path: jdir.display().to_string(),
            reason: format!("jurisdiction directory (manifest.yaml field `jurisdictions`): {e}"),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let is_yaml = path.extension().is_some_and(|x| x == "yaml");
            if let (true, Some(name)) = (is_yaml, path.file_name().and_then(|n| n.to_str())) {
                files.insert(format!("{JURISDICTIONS_DIR}{name}"), read(&path)?);
            }
        }
        files.insert(manifest::MANIFEST.to_owned(), manifest_bytes);
        Ok(BundleFiles { files })
    }

    /// `sha256:` over the canonical listing: for each file in path order, the path, a NUL, the
    /// length as 8 big-endian bytes, and the bytes.
    pub fn version(&self) -> String {
        let mut hasher = Sha256::new();
        for (path, bytes) in &self.files {
            hasher.update(path.as_bytes());
            hasher.update([0u8]);
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }

    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn text(&self, path: &str, field: &str) -> Result<&str, BundleError> {
        let bytes = self.get(path).ok_or_else(|| BundleError::MissingFile {
            path: path.to_owned(),
            field: field.to_owned(),
        })?;
        std::str::from_utf8(bytes).map_err(|e| BundleError::Encoding {
            path: path.to_owned(),
            reason: format!("not UTF-8: {e}"),
        })
    }
}

/// Facts derived for one request (see [`Bundle::derive`]).
#[derive(Debug, Clone)]
pub struct DerivedFacts {
    pub applicable: Applicable,
    pub consent: ConsentFacts,
    pub categories: Vec<DataCategory>,
    /// Authorizations, representations and data use agreements the ledger establishes.
    pub relations: RelationFacts,
    /// Whether the request fits the native evaluator's size bound, computed once per request
    /// when a module first asks (see `rules::native::within_limits`).
    pub native_fits: std::cell::OnceCell<bool>,
    /// What the rule modules' manifest filters test of the request, computed once per request
    /// when modules are first selected (see `rules::filter`).
    pub(crate) module_filter: std::cell::OnceCell<crate::rules::FilterBits>,
}

impl DerivedFacts {
    pub fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            applicable: &self.applicable,
            consent: &self.consent,
            categories: &self.categories,
            relations: &self.relations,
            native_fits: &self.native_fits,
            module_filter: &self.module_filter,
        }
    }
}

/// A compiled bundle. Immutable; evaluation only reads it.
pub struct Bundle {
    name: String,
    version: String,
    manifest: Manifest,
    files: BundleFiles,
    jurisdictions: Arc<JurisdictionTable>,
    cedar: CedarPolicies,
    rules: RuleModules,
    /// Module id → the regimes (or jurisdictions) its manifest entry names.
    module_regimes: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Bundle {
    /// Reads and compiles the bundle in `dir`.
    pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
        Bundle::compile(BundleFiles::read_dir(dir)?)
    }

    /// Compiles a bundle's content: parses, validates and slices everything evaluation needs.
    pub fn compile(files: BundleFiles) -> Result<Bundle, BundleError> {
        let manifest_bytes = files
            .get(manifest::MANIFEST)
            .ok_or(BundleError::MissingFile {
                path: manifest::MANIFEST.into(),
                field: "(the bundle's manifest)".into(),
            })?;
        let manifest = Manifest::parse(manifest_bytes)?;
        let jurisdictions =
            Arc::new(JurisdictionTable::from_yaml(files.iter().filter(
                |(p, _)| p.starts_with(JURISDICTIONS_DIR) && p.ends_with(".yaml"),
            ))?);
        for (i, m) in manifest.modules.iter().enumerate() {
            for name in &m.regimes {
                if !jurisdictions.knows_regime(name) && jurisdictions.get(name).is_none() {
                    return Err(BundleError::UnknownRegime {
                        field: format!("modules[{i}].regimes"),
                        name: name.clone(),
                    });
                }
            }
        }
        for name in manifest.regimes.keys() {
            if !jurisdictions.knows_regime(name) {
                return Err(BundleError::UnknownRegime {
                    field: "regimes".into(),
                    name: name.clone(),
                });
            }
        }
        let field_of = |i: usize| format!("modules[{i}].file");
        let mut cedar_sources = Vec::new();
        let mut rhai_sources = Vec::new();
        for (i, m) in manifest.modules.iter().enumerate() {
            let text = files.text(&m.file, &field_of(i))?;
            match m.kind {
                ModuleKind::Cedar => cedar_sources.push(CedarSource {
                    module: &m.id,
                    path: &m.file,
                    text,
                }),
                ModuleKind::Rhai => rhai_sources.push(RhaiSource {
                    module: &m.id,
                    path: &m.file,
                    text,
                    applies_to: &m.regimes,
                    actions: m.actions.as_deref(),
                    purposes: m.purposes.as_deref(),
                    when_attributes: m.when_attributes.as_deref(),
                    obligations_only: m.obligations_only,
                    on_deny: m.on_deny,
                }),
            }
        }
        let schema_text = files.text(&manifest.schema, "schema")?;
        let regimes: Vec<String> = jurisdictions
            .iter()
            .flat_map(|j| j.regimes.iter().cloned())
            .collect();
        let cedar =
            CedarPolicies::compile(&manifest.schema, schema_text, &cedar_sources, &regimes)?;
        let rules =
            RuleModules::compile(jurisdictions.clone(), &rhai_sources, &manifest.attributes)?;
        for (i, t) in manifest.tests.iter().enumerate() {
            files.text(t, &format!("tests[{i}]"))?;
        }
        let module_regimes = manifest
            .modules
            .iter()
            .map(|m| (m.id.clone(), m.regimes.clone()))
            .collect();
        Ok(Bundle {
            name: manifest.name.clone(),
            version: files.version(),
            module_regimes,
            manifest,
            files,
            jurisdictions,
            cedar,
            rules,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn files(&self) -> &BundleFiles {
        &self.files
    }

    pub fn jurisdictions(&self) -> &JurisdictionTable {
        &self.jurisdictions
    }

    pub fn cedar(&self) -> &CedarPolicies {
        &self.cedar
    }

    pub fn rules(&self) -> &RuleModules {
        &self.rules
    }

    /// The first attribute of `request` whose type differs from the manifest's declaration.
    fn check_attributes(&self, request: &AccessRequest) -> Option<String> {
        let declared = &self.manifest.attributes;
        let places = [
            ("actor", &declared.actor, &request.actor.attributes),
            ("context", &declared.context, &request.context.attributes),
        ];
        for (place, types, given) in places {
            for (name, value) in given {
                if let Some(reason) = types.get(name).and_then(|t| t.mismatch(value)) {
                    return Some(format!("field `{place}.attributes.{name}`: {reason}"));
                }
            }
        }
        None
    }

    /// What the engine derives for a request before any rule runs: the applicable jurisdictions
    /// and regimes, the consent facts from the registry, and the record's data categories.
    pub fn derive(
        &self,
        request: &AccessRequest,
        consents: &dyn ConsentRegistry,
    ) -> Result<DerivedFacts, JurisdictionError> {
        let applicable = self.jurisdictions.applicable(request)?;
        let categories = request.data_categories();
        let at = request.timestamp.unix();
        let mut relations = RelationFacts::default();
        let consent = match request.patient_id() {
            Some(patient) => {
                let query = ConsentQuery {
                    patient,
                    grantee: request.grantee(),
                    holder: request
                        .actor
                        .organization
                        .as_deref()
                        .unwrap_or(request.actor.id.as_str()),
                    purpose: request.context.purpose_of_use.as_ref(),
                    action: request.action,
                    categories: &categories,
                    at,
                };
                relations.authorization = consents.authorization(&query);
                relations.representation = consents.representation(&RepresentationQuery {
                    patient,
                    representative: &request.actor.id,
                    at,
                });
                consents.facts(&query)
            }
            None => ConsentFacts::default(),
        };
        // A data use agreement binds the discloser (the actor or its organization) and the
        // recipient for a disclosure; for a use, the actor (or its organization) is the recipient.
        // Built on the stack: most requests meet no agreement at all.
        let actor = request.actor.id.as_str();
        let organization = request.actor.organization.as_deref();
        let own_parties = [actor, organization.unwrap_or(actor)];
        let own = &own_parties[..if organization.is_some() { 2 } else { 1 }];
        let recipient = request.context.recipient.as_ref().map(|r| r.id.as_str());
        let recipient_party = [recipient.unwrap_or("")];
        let (disclosers, recipients): (&[&str], &[&str]) = match request.action {
            crate::transaction::Action::Share | crate::transaction::Action::Export => (
                own,
                &recipient_party[..if recipient.is_some() { 1 } else { 0 }],
            ),
            _ => (&[], own),
        };
        relations.agreements = consents.agreements(&AgreementQuery {
            disclosers,
            recipients,
            purpose: request.context.purpose_of_use.as_ref(),
            at,
        });
        Ok(DerivedFacts {
            applicable,
            consent,
            categories,
            relations,
            native_fits: std::cell::OnceCell::new(),
            module_filter: std::cell::OnceCell::new(),
        })
    }
}

#[cfg(test)]
mod tests;
