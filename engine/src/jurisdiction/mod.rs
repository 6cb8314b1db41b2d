//! Jurisdictions: one YAML file each, with a parent, the regimes it adds and its parameters.
//!
//! A loaded [`JurisdictionTable`] guarantees: every parent exists, there is no parent cycle, codes
//! and country aliases are unique, and each jurisdiction's effective regimes and parameters (its own
//! over its ancestors') are precomputed, so lookups during evaluation never walk or fail.

mod err;

pub use err::JurisdictionError;

use crate::transaction::{AccessRequest, JurisdictionCode};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One jurisdiction file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JurisdictionFile {
    pub code: JurisdictionCode,
    pub name: String,
    #[serde(default)]
    pub parent: Option<JurisdictionCode>,
    /// The ISO 3166-1 country a bare two-letter code stands for (`DE` → `EU-DE`).
    #[serde(default)]
    pub country: Option<JurisdictionCode>,
    #[serde(default)]
    pub regimes: Vec<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, Value>,
}

/// A jurisdiction with its inherited regimes and parameters resolved.
#[derive(Debug, Clone)]
pub struct Jurisdiction {
    pub code: String,
    pub name: String,
    pub parent: Option<String>,
    /// This jurisdiction and its ancestors, nearest first.
    pub lineage: Vec<String>,
    /// Regimes of this jurisdiction and every ancestor.
    pub regimes: BTreeSet<String>,
    /// Parameters, a child's value overriding its ancestors'.
    pub parameters: BTreeMap<String, Value>,
}

/// The jurisdictions that apply to one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applicable {
    /// Codes, parents included, sorted.
    pub jurisdictions: Vec<String>,
    /// Union of their regimes, sorted.
    pub regimes: Vec<String>,
    /// Regimes of the actor's and the resource's jurisdictions only: the law that binds the party
    /// holding or using the record (a recipient's or a resident's law does not make a foreign
    /// holder a HIPAA covered entity). A subset of `regimes`, sorted.
    pub holder_regimes: Vec<String>,
    /// The jurisdiction of the patient's residence, if known.
    pub patient_jurisdiction: Option<String>,
}

/// All jurisdictions of a bundle, resolved.
#[derive(Debug, Clone, Default)]
pub struct JurisdictionTable {
    by_code: BTreeMap<String, Jurisdiction>,
    /// Country alias → jurisdiction code.
    by_country: BTreeMap<String, String>,
}

impl JurisdictionTable {
    /// Parses jurisdiction files given as `(path, bytes)`; each file's name must be its code.
    pub fn from_yaml<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, JurisdictionError> {
        let mut parsed = Vec::new();
        for (path, bytes) in files {
            let file = parse_file(path, bytes)?;
            let stem = Path::new(path)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("");
            if stem != file.code.as_str() {
                return Err(JurisdictionError::Invalid {
                    path: path.to_owned(),
                    field: "code".into(),
                    reason: format!("`{}` does not match the file name `{stem}`", file.code),
                });
            }
            parsed.push((path.to_owned(), file));
        }
        if parsed.is_empty() {
            return Err(JurisdictionError::Io {
                path: "jurisdictions/".into(),
                reason: "no jurisdiction files (*.yaml) found".into(),
            });
        }
        Self::from_files(parsed)
    }

    /// Builds the table from parsed files (`(shown path, file)`), checking parents and cycles.
    pub fn from_files(files: Vec<(String, JurisdictionFile)>) -> Result<Self, JurisdictionError> {
        let mut raw: BTreeMap<String, (String, JurisdictionFile)> = BTreeMap::new();
        let mut by_country = BTreeMap::new();
        for (path, file) in files {
            let code = file.code.as_str().to_owned();
            if let Some((first, _)) = raw.get(&code) {
                return Err(JurisdictionError::Invalid {
                    path,
                    field: "code".into(),
                    reason: format!("`{code}` is already defined in {first}"),
                });
            }
            if let Some(country) = &file.country {
                if let Some(other) = by_country.insert(country.as_str().to_owned(), code.clone()) {
                    return Err(JurisdictionError::Invalid {
                        path,
                        field: "country".into(),
                        reason: format!("`{country}` is already the country of `{other}`"),
                    });
                }
            }
            raw.insert(code, (path, file));
        }
        // An alias that is also a code would never be used: `resolve` prefers codes.
        for (country, code) in &by_country {
            if raw.contains_key(country) && country != code {
                let path = raw.get(code).map(|(p, _)| p.clone()).unwrap_or_default();
                return Err(JurisdictionError::Invalid {
                    path,
                    field: "country".into(),
                    reason: format!("`{country}` is the code of another jurisdiction"),
                });
            }
        }
        let mut by_code = BTreeMap::new();
        for (code, (path, file)) in &raw {
            let mut lineage = vec![code.clone()];
            let mut regimes: BTreeSet<String> = BTreeSet::new();
            let mut chain = vec![file];
            // The file whose `parent` field is being followed: errors name it.
            let mut current_path = path;
            let mut current = file.parent.as_ref();
            while let Some(parent) = current {
                let parent = parent.as_str();
                if let Some(start) = lineage.iter().position(|c| c == parent) {
                    let mut cycle = lineage[start..].to_vec();
                    cycle.push(parent.to_owned());
                    return Err(JurisdictionError::ParentCycle {
                        path: current_path.clone(),
                        cycle: cycle.join(" → "),
                    });
                }
                let Some((parent_path, parent_file)) = raw.get(parent) else {
                    return Err(JurisdictionError::UnknownParent {
                        path: current_path.clone(),
                        code: lineage.last().cloned().unwrap_or_default(),
                        parent: parent.to_owned(),
                    });
                };
                lineage.push(parent.to_owned());
                chain.push(parent_file);
                current_path = parent_path;
                current = parent_file.parent.as_ref();
            }
            let mut parameters = BTreeMap::new();
            // Farthest ancestor first, so nearer definitions override.
            for f in chain.iter().rev() {
                regimes.extend(f.regimes.iter().cloned());
                for (k, v) in &f.parameters {
                    parameters.insert(k.clone(), v.clone());
                }
            }
            by_code.insert(
                code.clone(),
                Jurisdiction {
                    code: code.clone(),
                    name: file.name.clone(),
                    parent: file.parent.as_ref().map(|p| p.as_str().to_owned()),
                    lineage,
                    regimes,
                    parameters,
                },
            );
        }
        Ok(JurisdictionTable {
            by_code,
            by_country,
        })
    }

    pub fn get(&self, code: &str) -> Option<&Jurisdiction> {
        self.by_code.get(code)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Jurisdiction> {
        self.by_code.values()
    }

    /// Resolves a code from a transaction: an exact jurisdiction code, or a country alias.
    pub fn resolve(&self, code: &str) -> Option<&Jurisdiction> {
        self.by_code
            .get(code)
            .or_else(|| self.by_country.get(code).and_then(|c| self.by_code.get(c)))
    }

    /// A parameter of `code`, inherited from its ancestors when not its own.
    pub fn param(&self, code: &str, name: &str) -> Option<&Value> {
        self.resolve(code).and_then(|j| j.parameters.get(name))
    }

    /// The jurisdictions that apply to `request`: those of the actor, the resource, the patient's
    /// residence and the recipient's country, with their parents. The actor's and the resource's
    /// jurisdictions must be known (the bundle cannot judge a law it does not hold); a residence or
    /// recipient country outside the table adds nothing (it is a third country with no modelled
    /// regime, and transfer rules see its code in the transaction).
    pub fn applicable<'t>(
        &'t self,
        request: &AccessRequest,
    ) -> Result<Applicable, JurisdictionError> {
        // Gathered borrowed, then sorted and deduplicated: each name is copied once.
        let mut codes: Vec<&str> = Vec::new();
        let mut regimes: Vec<&str> = Vec::new();
        // A jurisdiction named twice (the actor's and the record's, say) adds nothing the second
        // time.
        let mut seen: Vec<&Jurisdiction> = Vec::with_capacity(4);
        let mut add =
            |j: &'t Jurisdiction, codes: &mut Vec<&'t str>, regimes: &mut Vec<&'t str>| {
                if !seen.iter().any(|s| std::ptr::eq(*s, j)) {
                    seen.push(j);
                    codes.extend(j.lineage.iter().map(String::as_str));
                    regimes.extend(j.regimes.iter().map(String::as_str));
                }
            };
        let required = [
            ("actor.jurisdiction", request.actor.jurisdiction.as_ref()),
            (
                "resource.jurisdiction",
                request.resource.jurisdiction.as_ref(),
            ),
        ];
        for (field, code) in required {
            let Some(code) = code else { continue };
            let Some(j) = self.resolve(code.as_str()) else {
                return Err(JurisdictionError::UnknownInTransaction {
                    field: field.to_owned(),
                    code: code.as_str().to_owned(),
                });
            };
            add(j, &mut codes, &mut regimes);
        }
        let holder_regimes = owned_sorted(regimes.clone());
        let residence = request
            .resource
            .patient
            .as_ref()
            .and_then(|p| p.residence.as_ref())
            .and_then(|c| self.resolve(c.as_str()));
        let recipient = request
            .context
            .recipient
            .as_ref()
            .and_then(|r| r.country.as_ref())
            .and_then(|c| self.resolve(c.as_str()));
        for j in residence.into_iter().chain(recipient) {
            add(j, &mut codes, &mut regimes);
        }
        Ok(Applicable {
            jurisdictions: owned_sorted(codes),
            regimes: owned_sorted(regimes),
            holder_regimes,
            patient_jurisdiction: residence.map(|j| j.code.clone()),
        })
    }

    /// Whether `name` is a regime of some jurisdiction.
    pub fn knows_regime(&self, name: &str) -> bool {
        self.by_code.values().any(|j| j.regimes.contains(name))
    }
}

/// The names sorted and distinct, as owned strings.
fn owned_sorted(mut names: Vec<&str>) -> Vec<String> {
    // Often already sorted and distinct (one jurisdiction's own list).
    if !names.is_sorted_by(|a, b| a < b) {
        names.sort_unstable();
        names.dedup();
    }
    names.into_iter().map(str::to_owned).collect()
}

fn parse_file(path: &str, bytes: &[u8]) -> Result<JurisdictionFile, JurisdictionError> {
    crate::yaml::parse(bytes).map_err(|e| JurisdictionError::Invalid {
        path: path.to_owned(),
        field: e.field,
        reason: e.reason,
    })
}

#[cfg(test)]
mod tests;
