//! What a proposal changes against the state it was built on, for voters: files added, removed and
//! changed; per Cedar policy (by `@id`) and per Rhai module the old and new text; jurisdiction
//! parameters as old → new values; voting rules field by field; the membership change as proposed.
//! Computed on demand from stored content; never part of the state root.

use crate::proposal::{Effect, Proposal};
use accord_engine::bundle::JURISDICTIONS_DIR;
use accord_engine::BundleFiles;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One item that differs: added (`old` absent), removed (`new` absent) or changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextChange {
    /// The file it is in.
    pub file: String,
    /// The policy's `@id` (policies), the module's file stem (modules), the path (other files).
    pub id: String,
    pub change: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// A value that differs, old → new (`null` where absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueChange {
    /// The jurisdiction code (parameters only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    pub name: String,
    pub old: Value,
    pub new: Value,
}

/// Files by path, compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileList {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// Two bundles compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BundleDiff {
    pub files: FileList,
    /// Cedar policies by `@id`.
    pub policies: Vec<TextChange>,
    /// Rhai modules by file.
    pub modules: Vec<TextChange>,
    /// Jurisdiction parameters.
    pub parameters: Vec<ValueChange>,
    /// Every other changed file (manifest, schema, tests, jurisdiction files beyond their
    /// parameters) with its old and new text.
    pub other: Vec<TextChange>,
    /// Files whose policies could not be read one by one (compared as whole files in `other`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unparsed: Vec<String>,
}

/// A proposal's change against its base.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposalDiff {
    pub proposal: String,
    pub kind: String,
    /// The state it was built on (policy-set version or voting-rules digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The policy-set version it activates (policy changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundleDiff>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub voting: Vec<ValueChange>,
    /// The membership change as proposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership: Option<Value>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn text_change(file: &str, id: &str, old: Option<String>, new: Option<String>) -> TextChange {
    let change = match (&old, &new) {
        (None, _) => ChangeKind::Added,
        (_, None) => ChangeKind::Removed,
        _ => ChangeKind::Changed,
    };
    TextChange {
        file: file.to_owned(),
        id: id.to_owned(),
        change,
        old,
        new,
    }
}

/// Compares two bundles' files.
pub fn bundle_diff(base: &BundleFiles, target: &BundleFiles) -> BundleDiff {
    let mut diff = BundleDiff::default();
    let paths: BTreeSet<&str> = base
        .iter()
        .map(|(p, _)| p)
        .chain(target.iter().map(|(p, _)| p))
        .collect();
    for path in paths {
        let (old, new) = (base.get(path), target.get(path));
        match (old, new) {
            (None, Some(_)) => diff.files.added.push(path.to_owned()),
            (Some(_), None) => diff.files.removed.push(path.to_owned()),
            (Some(a), Some(b)) if a != b => diff.files.changed.push(path.to_owned()),
            _ => continue,
        }
        let (old, new) = (old.map(text), new.map(text));
        if path.ends_with(".cedar") && !path.ends_with(".cedarschema") {
            match policies_diff(path, old.as_deref(), new.as_deref()) {
                Ok(changes) => diff.policies.extend(changes),
                Err(()) => {
                    diff.unparsed.push(path.to_owned());
                    diff.other.push(text_change(path, path, old, new));
                }
            }
        } else if path.ends_with(".rhai") {
            let stem = path
                .rsplit('/')
                .next()
                .unwrap_or(path)
                .trim_end_matches(".rhai");
            diff.modules.push(text_change(path, stem, old, new));
        } else if let Some(code) = path
            .strip_prefix(JURISDICTIONS_DIR)
            .and_then(|rest| rest.strip_suffix(".yaml"))
        {
            let (old_params, old_rest) = split_parameters(old.as_deref());
            let (new_params, new_rest) = split_parameters(new.as_deref());
            let names: BTreeSet<&String> = old_params.keys().chain(new_params.keys()).collect();
            for name in names {
                let (a, b) = (old_params.get(name), new_params.get(name));
                if a != b {
                    diff.parameters.push(ValueChange {
                        jurisdiction: Some(code.to_owned()),
                        name: name.clone(),
                        old: a.cloned().unwrap_or(Value::Null),
                        new: b.cloned().unwrap_or(Value::Null),
                    });
                }
            }
            if old_rest != new_rest {
                diff.other.push(text_change(path, path, old, new));
            }
        } else {
            diff.other.push(text_change(path, path, old, new));
        }
    }
    diff
}

/// The policies of one Cedar file compared by `@id`; `Err` when either side does not parse.
fn policies_diff(path: &str, old: Option<&str>, new: Option<&str>) -> Result<Vec<TextChange>, ()> {
    let parse = |text: Option<&str>| -> Result<BTreeMap<String, String>, ()> {
        match text {
            None => Ok(BTreeMap::new()),
            Some(t) => accord_engine::cedar::policies_by_id(t)
                .map(|v| v.into_iter().collect())
                .map_err(|_| ()),
        }
    };
    let (old, new) = (parse(old)?, parse(new)?);
    let ids: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    Ok(ids
        .into_iter()
        .filter(|id| old.get(*id) != new.get(*id))
        .map(|id| text_change(path, id, old.get(id).cloned(), new.get(id).cloned()))
        .collect())
}

/// A jurisdiction file's `parameters` (as JSON values) and the rest of the document.
fn split_parameters(text: Option<&str>) -> (BTreeMap<String, Value>, Option<Value>) {
    let Some(text) = text else {
        return (BTreeMap::new(), None);
    };
    let whole = || (BTreeMap::new(), Some(Value::String(text.to_owned())));
    if accord_engine::yaml::check_unique_keys(text.as_bytes()).is_err() {
        return whole();
    }
    // Duplicate keys were refused just above.
    #[allow(clippy::disallowed_methods)]
    let Ok(mut doc) = serde_yaml::from_str::<Value>(text) else {
        return whole();
    };
    let params = doc
        .as_object_mut()
        .and_then(|m| m.remove("parameters"))
        .and_then(|p| match p {
            Value::Object(map) => Some(map.into_iter().collect()),
            _ => None,
        })
        .unwrap_or_default();
    (params, Some(doc))
}

/// `p`'s change against its base; `files` looks up stored bundle content by version.
pub fn proposal_diff<'a>(
    p: &Proposal,
    files: impl Fn(&str) -> Option<&'a BundleFiles>,
) -> ProposalDiff {
    let mut diff = ProposalDiff {
        proposal: p.id.clone(),
        kind: p.kind.clone(),
        base: None,
        version: None,
        bundle: None,
        voting: Vec::new(),
        membership: None,
    };
    match &p.effect {
        Effect::ActivatePolicySet { version, base, .. } => {
            diff.base = base.clone();
            diff.version = Some(version.clone());
            if let (Some(old), Some(new)) = (base.as_deref().and_then(&files), files(version)) {
                diff.bundle = Some(bundle_diff(old, new));
            }
        }
        Effect::SetVotingParams { params, base } => {
            diff.base = base.clone();
            let as_map = |v: &crate::params::VotingParams| -> BTreeMap<String, Value> {
                match serde_json::to_value(v) {
                    Ok(Value::Object(map)) => map.into_iter().collect(),
                    _ => BTreeMap::new(),
                }
            };
            let (old, new) = (as_map(&p.params), as_map(params));
            let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for name in names {
                if old.get(name) != new.get(name) {
                    diff.voting.push(ValueChange {
                        jurisdiction: None,
                        name: name.clone(),
                        old: old.get(name).cloned().unwrap_or(Value::Null),
                        new: new.get(name).cloned().unwrap_or(Value::Null),
                    });
                }
            }
        }
        Effect::AddMember { .. } | Effect::RemoveMember { .. } | Effect::UpdateMember(_) => {
            diff.membership = serde_json::to_value(&p.effect).ok();
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> BundleFiles {
        BundleFiles::new(
            entries
                .iter()
                .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
                .collect(),
        )
    }

    const A: &str = "@id(\"a\")\npermit(principal, action, resource);\n";
    const B: &str = "@id(\"b\")\nforbid(principal, action, resource);\n";

    #[test]
    fn every_kind_of_difference_is_reported_where_a_reviewer_looks_for_it() {
        let base = files(&[
            ("manifest.yaml", "name: x\n"),
            ("cedar/p.cedar", &format!("{A}{B}")),
            ("rhai/m.rhai", "fn evaluate(tx, env) { [] }\n"),
            ("rhai/gone.rhai", "fn evaluate(tx, env) { [] }\n"),
            (
                "jurisdictions/EU.yaml",
                "code: EU\nparameters:\n  age: 16\n  list: [a]\n",
            ),
        ]);
        let target = files(&[
            ("manifest.yaml", "name: y\n"),
            (
                "cedar/p.cedar",
                &format!("{B}@id(\"c\")\npermit(principal, action, resource);\n"),
            ),
            ("cedar/broken.cedar", "permit(\n"),
            ("rhai/m.rhai", "fn evaluate(tx, env) { [] } // v2\n"),
            (
                "jurisdictions/EU.yaml",
                "code: EU\nparameters:\n  age: 13\n  list: [a]\n  new: true\n",
            ),
        ]);
        let d = bundle_diff(&base, &target);
        assert_eq!(d.files.added, vec!["cedar/broken.cedar"]);
        assert_eq!(d.files.removed, vec!["rhai/gone.rhai"]);
        assert_eq!(
            d.files.changed,
            vec![
                "cedar/p.cedar",
                "jurisdictions/EU.yaml",
                "manifest.yaml",
                "rhai/m.rhai"
            ]
        );
        let policies: Vec<(&str, ChangeKind)> = d
            .policies
            .iter()
            .map(|c| (c.id.as_str(), c.change))
            .collect();
        assert_eq!(
            policies,
            vec![("a", ChangeKind::Removed), ("c", ChangeKind::Added)],
            "b is unchanged"
        );
        let modules: Vec<(&str, ChangeKind)> = d
            .modules
            .iter()
            .map(|c| (c.id.as_str(), c.change))
            .collect();
        assert_eq!(
            modules,
            vec![("gone", ChangeKind::Removed), ("m", ChangeKind::Changed)]
        );
        let params: Vec<(&str, Value, Value)> = d
            .parameters
            .iter()
            .map(|c| (c.name.as_str(), c.old.clone(), c.new.clone()))
            .collect();
        assert_eq!(
            params,
            vec![
                ("age", Value::from(16), Value::from(13)),
                ("new", Value::Null, Value::Bool(true))
            ]
        );
        assert!(d
            .parameters
            .iter()
            .all(|c| c.jurisdiction.as_deref() == Some("EU")));
        // The jurisdiction file differs only in its parameters: not repeated as a whole file.
        let other: Vec<&str> = d.other.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(other, vec!["cedar/broken.cedar", "manifest.yaml"]);
        assert_eq!(d.unparsed, vec!["cedar/broken.cedar"]);
        // Identical bundles differ in nothing.
        assert_eq!(bundle_diff(&base, &base), BundleDiff::default());
    }
}
