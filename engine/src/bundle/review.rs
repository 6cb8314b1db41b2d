//! What `accord validate` checks beyond what compiling a bundle refuses: files the manifest does
//! not name, test expectations naming rules or obligations nothing produces, test cases with a
//! purpose no module or policy could know, the Cedar validator's and the module checks' warnings,
//! and both evaluation paths of every module over every test case.
//!
//! Errors make the bundle invalid; warnings are shown, and fail `accord validate --deny-warnings`.

use super::manifest::{Manifest, KNOWN_PURPOSES, MANIFEST};
use super::{Bundle, BundleError};
use crate::rules::suggest;
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// What a review found, each line naming the file and, where it can, the line and the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Extensions of the files a bundle is made of: one the manifest does not name is ignored by the
/// engine, which is never what its author meant.
const BUNDLE_EXTENSIONS: [&str; 4] = ["cedar", "rhai", "cedarschema", "yaml"];

/// The files under `dir` (recursively, not the jurisdiction directory) of a kind a bundle is made
/// of that its manifest does not name, as errors.
pub fn unnamed_files(dir: &Path) -> Result<Vec<String>, BundleError> {
    let manifest_path = dir.join(MANIFEST);
    let bytes = std::fs::read(&manifest_path).map_err(|e| BundleError::Io {
        path: manifest_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let manifest = Manifest::parse(&bytes)?;
    let mut named: BTreeSet<String> = BTreeSet::new();
    named.insert(MANIFEST.to_owned());
    named.insert(manifest.schema.clone());
    named.extend(manifest.modules.iter().map(|m| m.file.clone()));
    named.extend(manifest.tests.iter().cloned());
    let jurisdictions = dir.join(&manifest.jurisdictions);
    let mut found = Vec::new();
    walk(dir, dir, &jurisdictions, &mut found);
    found.sort();
    Ok(found
        .into_iter()
        .filter(|f| !named.contains(f))
        .map(|f| {
            let what = match f.rsplit('.').next() {
                Some("cedar") => "Cedar policies the engine never loads",
                Some("rhai") => "a Rhai module the engine never runs",
                Some("yaml") => {
                    "a file the engine never reads (a test file must be listed under `tests`)"
                }
                _ => "a file the engine never reads",
            };
            format!("{f}: not named in manifest.yaml: {what}")
        })
        .collect())
}

fn walk(root: &Path, dir: &Path, skip: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if !same(&path, skip) {
                walk(root, &path, skip, out);
            }
            continue;
        }
        let kind = path.extension().and_then(|x| x.to_str()).unwrap_or("");
        if !BUNDLE_EXTENSIONS.contains(&kind) {
            continue;
        }
        if let Ok(relative) = path.strip_prefix(root) {
            let parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
}

impl Bundle {
    /// Reviews the compiled bundle (see the module documentation).
    pub fn review(&self) -> Review {
        let mut review = Review {
            errors: Vec::new(),
            warnings: self.cedar.warnings().to_vec(),
        };
        review
            .warnings
            .extend(self.rules.findings().warnings.iter().cloned());
        self.review_cases(&mut review);
        for input in crate::cases::case_inputs(self) {
            for d in crate::rules::disagreements(self, &input.request, &input.registry) {
                review
                    .errors
                    .push(format!("{}: case `{}`: {d}", input.file, input.name));
            }
        }
        review
    }

    /// Rule names, obligation kinds and purposes in the test files.
    fn review_cases(&self, review: &mut Review) {
        let findings = self.rules.findings();
        let mut rules: BTreeSet<String> = findings.rules.clone();
        rules.insert("no-permit".into());
        rules.insert("accord#no-permit".into());
        for (id, meta) in self.cedar.policies() {
            rules.insert(id);
            rules.insert(meta.rule.clone());
        }
        // Obligations are named by literal kinds in the modules (collected with the rules).
        let kinds = &findings.rules;
        for file in &self.manifest.tests {
            let Some(bytes) = self.files.get(file) else {
                continue;
            };
            // A file that does not parse is the test runner's to report.
            let Ok(parsed) = crate::yaml::parse::<Value>(bytes) else {
                continue;
            };
            let purpose = |access: Option<&Value>| {
                access
                    .and_then(|a| a.get("context"))
                    .and_then(|c| c.get("purpose_of_use"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let check_purpose = |at: String, code: Option<String>| {
                code.filter(|c| !KNOWN_PURPOSES.contains(&c.as_str()))
                    .map(|code| {
                        format!(
                            "{file}: {at}: `{code}` is not an HL7 v3 PurposeOfUse code{}",
                            suggest(&code, KNOWN_PURPOSES.iter().copied())
                        )
                    })
            };
            review.errors.extend(check_purpose(
                "defaults.access.context.purpose_of_use".into(),
                purpose(parsed.get("defaults").and_then(|d| d.get("access"))),
            ));
            // Jurisdiction codes the table does not know: the case is decided as a deny for an
            // unknown jurisdiction, whatever it meant to test.
            let check_codes = |at: &str, access: Option<&Value>| {
                let mut found = Vec::new();
                for path in [
                    ["actor", "jurisdiction", ""],
                    ["resource", "jurisdiction", ""],
                    ["resource", "patient", "residence"],
                ] {
                    let mut value = access;
                    for key in path.iter().filter(|k| !k.is_empty()) {
                        value = value.and_then(|v| v.get(*key));
                    }
                    let Some(code) = value.and_then(Value::as_str) else {
                        continue;
                    };
                    if self.jurisdictions.resolve(code).is_none() {
                        let field = path
                            .iter()
                            .filter(|k| !k.is_empty())
                            .copied()
                            .collect::<Vec<_>>()
                            .join(".");
                        found.push(format!(
                            "{file}: {at}.{field}: `{code}` is no jurisdiction of this bundle, so the case is decided as a deny for an unknown jurisdiction{}",
                            suggest(code, self.jurisdictions.iter().map(|j| j.code.as_str()))
                        ));
                    }
                }
                found
            };
            review.warnings.extend(check_codes(
                "defaults.access",
                parsed.get("defaults").and_then(|d| d.get("access")),
            ));
            let cases = parsed
                .get("cases")
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default();
            for (i, case) in cases.iter().enumerate() {
                review.warnings.extend(check_codes(
                    &format!("cases[{i}].access"),
                    case.get("access"),
                ));
                review.errors.extend(check_purpose(
                    format!("cases[{i}].access.context.purpose_of_use"),
                    purpose(case.get("access")),
                ));
                let Some(expect) = case.get("expect") else {
                    continue;
                };
                let names = |field: &str| -> Vec<String> {
                    expect
                        .get(field)
                        .and_then(Value::as_sequence)
                        .map(|s| {
                            s.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                for field in ["rules", "absent_rules"] {
                    for (j, rule) in names(field).into_iter().enumerate() {
                        let bare = rule.rsplit('#').next().unwrap_or(&rule);
                        if rules.contains(&rule)
                            || findings
                                .rule_prefixes
                                .iter()
                                .any(|p| bare.starts_with(p.as_str()))
                        {
                            continue;
                        }
                        let line = format!(
                            "{file}: cases[{i}].expect.{field}[{j}]: no policy or module has a rule `{rule}`{}",
                            suggest(&rule, rules.iter().map(String::as_str))
                        );
                        if findings.computed_rules {
                            review.warnings.push(format!(
                                "{line} (some module names its rules by computed values, so it may)"
                            ));
                        } else {
                            review.errors.push(line);
                        }
                    }
                }
                for field in ["obligations", "absent_obligations"] {
                    for (j, kind) in names(field).into_iter().enumerate() {
                        if !kinds.contains(&kind) {
                            review.warnings.push(format!(
                                "{file}: cases[{i}].expect.{field}[{j}]: no module attaches an obligation `{kind}` by that literal name{}",
                                suggest(&kind, kinds.iter().map(String::as_str))
                            ));
                        }
                    }
                }
            }
        }
    }
}
