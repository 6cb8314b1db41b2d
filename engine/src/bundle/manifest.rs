//! `manifest.yaml`: what a bundle holds and where each module applies.

use super::BundleError;
use crate::transaction::{Action, PurposeOfUse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MANIFEST: &str = "manifest.yaml";

/// The HL7 v3 PurposeOfUse codes (value set 2.16.840.1.113883.1.11.20448, with its specialisations):
/// a module's `purposes` must name these, since a module gated on a code no transaction carries
/// never runs.
pub const KNOWN_PURPOSES: &[&str] = &[
    "BIORCH",
    "BTG",
    "CAREMGT",
    "CLINTRCH",
    "CLINTRCHNPC",
    "CLINTRCHPC",
    "CLINTRL",
    "CLMATTCH",
    "COC",
    "COVAUTH",
    "COVERAGE",
    "DECLASSIFY",
    "DISASTER",
    "DONAT",
    "DSRCH",
    "ELIGDTRM",
    "ELIGVER",
    "ENROLLM",
    "ERTREAT",
    "ETREAT",
    "FAMRQT",
    "FRAUD",
    "GOV",
    "HACCRED",
    "HCOMPL",
    "HDECD",
    "HDIRECT",
    "HDM",
    "HLEGAL",
    "HMARKT",
    "HOPERAT",
    "HOUTCOMS",
    "HPAYMT",
    "HPRGRP",
    "HQUALIMP",
    "HRESCH",
    "HSYSADMIN",
    "HTEST",
    "LABELING",
    "MEMADMIN",
    "METAMGT",
    "MILCDM",
    "MILDCRT",
    "PATADMIN",
    "PATRQT",
    "PATSFTY",
    "PERFMSR",
    "POARCH",
    "POPHLTH",
    "PRECLINTRCH",
    "PUBHLTH",
    "PWATRNY",
    "RECORDMGT",
    "REMITADV",
    "SUPNWK",
    "SYSDEV",
    "THREAT",
    "TRAIN",
    "TRANSRCH",
    "TREAT",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub schema: String,
    /// Directory of jurisdiction files, relative to the bundle (on disk).
    #[serde(default = "default_jurisdictions")]
    pub jurisdictions: String,
    /// What "no permit" means in each regime: the citation and message of the default deny.
    #[serde(default)]
    pub regimes: BTreeMap<String, RegimeDefaults>,
    pub modules: Vec<ModuleEntry>,
    #[serde(default)]
    pub tests: Vec<String>,
    /// The free-form attributes the bundle's rules read, with their types: a request whose
    /// attribute has another type is denied with the field named, rather than read as absent.
    #[serde(default, skip_serializing_if = "DeclaredAttributes::is_empty")]
    pub attributes: DeclaredAttributes,
}

/// Attributes by where they appear in a transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredAttributes {
    /// `actor.attributes.*`
    #[serde(default)]
    pub actor: BTreeMap<String, AttributeType>,
    /// `context.attributes.*`
    #[serde(default)]
    pub context: BTreeMap<String, AttributeType>,
}

impl DeclaredAttributes {
    pub fn is_empty(&self) -> bool {
        self.actor.is_empty() && self.context.is_empty()
    }
}

/// The type of a declared attribute: `boolean`, `string`, `integer`, `date` (a calendar date,
/// `YYYY-MM-DD`), or `{ one_of: [..] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeType {
    Named(NamedType),
    OneOf {
        /// One of these strings.
        one_of: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedType {
    Boolean,
    String,
    Integer,
    Date,
}

impl AttributeType {
    /// Why `value` is not of this type, if it is not.
    pub fn mismatch(&self, value: &serde_json::Value) -> Option<String> {
        let ok = match self {
            AttributeType::Named(NamedType::Boolean) => value.is_boolean(),
            AttributeType::Named(NamedType::String) => value.is_string(),
            AttributeType::Named(NamedType::Integer) => value.is_i64() || value.is_u64(),
            AttributeType::Named(NamedType::Date) => value
                .as_str()
                .is_some_and(|v| crate::transaction::BirthDate::try_from(v.to_owned()).is_ok()),
            AttributeType::OneOf { one_of } => value
                .as_str()
                .is_some_and(|v| one_of.iter().any(|o| o == v)),
        };
        if ok {
            return None;
        }
        Some(match self {
            AttributeType::Named(NamedType::Boolean) => "must be a boolean".to_owned(),
            AttributeType::Named(NamedType::String) => "must be a string".to_owned(),
            AttributeType::Named(NamedType::Integer) => "must be an integer".to_owned(),
            AttributeType::Named(NamedType::Date) => "must be a date YYYY-MM-DD".to_owned(),
            AttributeType::OneOf { one_of } => format!("must be one of {}", one_of.join(", ")),
        })
    }
}

fn default_jurisdictions() -> String {
    "../jurisdictions".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeDefaults {
    pub default_deny_citation: String,
    pub default_deny_message: String,
    /// The actions for which, when this regime binds the holder (the actor's or the record's
    /// jurisdiction), a permit from a rule of this regime is required: another regime's permission
    /// does not stand in for it. Empty for regimes that only restrict (e.g. 42 CFR Part 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permit_required_for: Vec<Action>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleKind {
    Cedar,
    Rhai,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleEntry {
    pub id: String,
    pub kind: ModuleKind,
    pub file: String,
    /// Regimes or jurisdiction codes the module applies to.
    pub regimes: Vec<String>,
    /// Rhai only: run for these actions alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<Action>>,
    /// Rhai only: run for these purposes of use alone (a request without a purpose never matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purposes: Option<Vec<PurposeOfUse>>,
    /// Rhai only: run only when the request carries at least one of these `context.attributes`
    /// (present, whatever its value): the module says nothing without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_attributes: Option<Vec<String>>,
    /// Rhai only: the module attaches obligations and never permits or denies. It runs after every
    /// other rule, and only when the decision is otherwise an allow unless `on_deny` is set; a
    /// `deny` or `permit` verdict from it is an error, so the decision fails closed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub obligations_only: bool,
    /// Rhai `obligations_only` modules only: the module also runs when the decision is a deny,
    /// for duties that come with every decision (`when: deny` or `always`, e.g. the audit record
    /// of every attempt, 45 CFR 164.312(b)).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_deny: bool,
    pub citation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest, BundleError> {
        let manifest: Manifest = crate::yaml::parse(bytes).map_err(|e| BundleError::Manifest {
            field: e.field,
            reason: e.reason,
        })?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), BundleError> {
        let bad = |field: String, reason: &str| {
            Err(BundleError::Manifest {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.name.trim().is_empty() {
            return bad("name".into(), "must not be empty");
        }
        check_relative(&self.schema).or_else(|r| bad("schema".into(), &r))?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in self.modules.iter().enumerate() {
            let at = |f: &str| format!("modules[{i}].{f}");
            let id_ok = !m.id.is_empty()
                && m.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-/_.".contains(&b));
            if !id_ok {
                return bad(
                    at("id"),
                    "must be lower-case letters, digits, `-`, `_`, `.` and `/`",
                );
            }
            if !seen.insert(m.id.as_str()) {
                return bad(at("id"), "module id is used twice");
            }
            check_relative(&m.file).or_else(|r| bad(at("file"), &r))?;
            if m.regimes.is_empty() {
                return bad(at("regimes"), "name at least one regime or jurisdiction");
            }
            if m.citation.trim().is_empty() {
                return bad(at("citation"), "every module cites its legal source");
            }
            if m.kind == ModuleKind::Cedar && m.actions.is_some() {
                return bad(
                    at("actions"),
                    "Cedar policies carry their own action scope; `actions` is for Rhai modules",
                );
            }
            if m.kind == ModuleKind::Cedar && m.obligations_only {
                return bad(
                    at("obligations_only"),
                    "Cedar policies permit or forbid; `obligations_only` is for Rhai modules",
                );
            }
            if m.on_deny && !m.obligations_only {
                return bad(
                    at("on_deny"),
                    "only an `obligations_only` Rhai module runs on denied decisions; a verdict module always runs",
                );
            }
            if m.kind == ModuleKind::Cedar && m.when_attributes.is_some() {
                return bad(
                    at("when_attributes"),
                    "Cedar policies state their own conditions; `when_attributes` is for Rhai modules",
                );
            }
            if m.when_attributes
                .as_ref()
                .is_some_and(|names| names.is_empty() || names.iter().any(|n| n.trim().is_empty()))
            {
                return bad(
                    at("when_attributes"),
                    "name at least one attribute, none of them empty (leave the field out to run always)",
                );
            }
            for (j, purpose) in m.purposes.iter().flatten().enumerate() {
                if !KNOWN_PURPOSES.contains(&purpose.as_str()) {
                    let hint =
                        crate::rules::suggest(purpose.as_str(), KNOWN_PURPOSES.iter().copied());
                    return bad(
                        format!("modules[{i}].purposes[{j}]"),
                        &format!(
                            "`{purpose}` is not an HL7 v3 PurposeOfUse code, so the module would never run{hint}"
                        ),
                    );
                }
            }
            if m.kind == ModuleKind::Cedar && m.purposes.is_some() {
                return bad(
                    at("purposes"),
                    "Cedar policies state their own conditions; `purposes` is for Rhai modules",
                );
            }
        }
        for (i, t) in self.tests.iter().enumerate() {
            check_relative(t).or_else(|r| bad(format!("tests[{i}]"), &r))?;
        }
        Ok(())
    }
}

/// Bundle file names stay inside the bundle: relative, no `..`, no empty segments.
fn check_relative(path: &str) -> Result<(), String> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{path}` must be a relative path inside the bundle"
        ))
    }
}
