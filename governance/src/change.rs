//! Checking a proposed change and resolving it into the [`Effect`] it will have: a bundle is
//! parsed, validated, compiled and must pass its own test cases before any vote is cast.

use crate::bundles::{bundle_bytes, BundleStore, OpenBundles};
use crate::err::Refusal;
use crate::member::{parse_public_key, Membership, MembershipChange};
use crate::message::Change;
use crate::proposal::Effect;
use crate::signature_scheme::{parse_ml_dsa_public_key, SignatureScheme};
use crate::Activation;
use accord_engine::bundle::JURISDICTIONS_DIR;
use accord_engine::cases::run_bundle_tests;
use accord_engine::BundleFiles;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the state knows when a proposal arrives.
pub(crate) struct Context<'a> {
    pub membership: &'a Membership,
    /// The consortium's signature scheme: under hybrid, every member needs an ML-DSA-65 key.
    pub signature_scheme: SignatureScheme,
    pub active: &'a Activation,
    pub history: &'a [Activation],
    pub bundles: &'a mut BundleStore,
    /// The bundles open proposals hold, and their budget.
    pub open: &'a OpenBundles,
}

/// Resolves `change`, refusing it when it could never be applied.
pub(crate) fn resolve(change: &Change, cx: Context<'_>) -> Result<Effect, Refusal> {
    match change {
        Change::ActivateBundle { bundle } => {
            let files = BundleFiles::new(
                bundle
                    .iter()
                    .map(|(path, text)| (path.clone(), text.clone().into_bytes()))
                    .collect(),
            );
            activate(files, None, "message.change.bundle", cx)
        }
        Change::Rollback { version, emergency } => {
            if *emergency {
                // The set active before the current one.
                let previous = cx.history.iter().rev().nth(1).map(|a| &a.version);
                if previous != Some(version) {
                    return Err(Refusal::invalid_change(
                        "message.change.version",
                        format!(
                            "an emergency rollback returns to the previous policy set ({}), not {version}",
                            previous.map_or("none", String::as_str)
                        ),
                    ));
                }
            }
            if version == &cx.active.version {
                return Err(Refusal::invalid_change(
                    "message.change.version",
                    format!("{version} is the active policy set already"),
                ));
            }
            let earlier = cx
                .history
                .iter()
                .find(|a| &a.version == version)
                .ok_or_else(|| Refusal::UnknownVersion {
                    version: version.clone(),
                })?;
            let size = cx.bundles.bytes(version).unwrap_or(0);
            cx.open.admit(version, size, "message.change.version")?;
            // Compiled now so the impact preview can run on it while the vote is open.
            cx.bundles
                .compiled(version)
                .map_err(|reason| Refusal::InvalidBundle { reason })?;
            Ok(Effect::ActivatePolicySet {
                version: version.clone(),
                name: earlier.name.clone(),
                base: None,
            })
        }
        Change::SetJurisdictionParameters {
            jurisdiction,
            parameters,
        } => {
            let base = cx.active.version.clone();
            let files = cx.bundles.files(&base).ok_or_else(|| {
                Refusal::invalid_change(
                    "message.change",
                    format!("the active bundle {base} is not stored"),
                )
            })?;
            let files = with_parameters(files, jurisdiction, parameters)?;
            activate(files, Some(base), "message.change.parameters", cx)
        }
        Change::SetVotingParams { params } => {
            params.check().map_err(|(field, reason)| {
                Refusal::invalid_change(format!("message.change.params.{field}"), reason)
            })?;
            Ok(Effect::SetVotingParams {
                params: params.clone(),
                base: None,
            })
        }
        Change::AddMember { member } => {
            member.check_scheme(cx.signature_scheme).map_err(|reason| {
                Refusal::invalid_change("message.change.member.ml_dsa_public_key", reason)
            })?;
            check_membership(cx.membership, MembershipChange::Add(member))?;
            Ok(Effect::AddMember {
                member: member.clone(),
            })
        }
        Change::RemoveMember { member } => {
            check_membership(cx.membership, MembershipChange::Remove(member))?;
            Ok(Effect::RemoveMember {
                member: member.clone(),
            })
        }
        Change::UpdateMember(update) => {
            if update.weight.is_none()
                && update.public_key.is_none()
                && update.ml_dsa_public_key.is_none()
                && update.name.is_none()
            {
                return Err(Refusal::invalid_change(
                    "message.change",
                    "update_member changes nothing: give weight, public_key, ml_dsa_public_key \
                     or name",
                ));
            }
            if let Some(key) = &update.public_key {
                parse_public_key(key).map_err(|reason| {
                    Refusal::invalid_change("message.change.public_key", reason)
                })?;
            }
            if let Some(key) = &update.ml_dsa_public_key {
                parse_ml_dsa_public_key(key).map_err(|reason| {
                    Refusal::invalid_change("message.change.ml_dsa_public_key", reason)
                })?;
            }
            check_membership(cx.membership, MembershipChange::Update(update))?;
            Ok(Effect::UpdateMember(update.clone()))
        }
    }
}

fn check_membership(membership: &Membership, change: MembershipChange<'_>) -> Result<(), Refusal> {
    membership
        .with(change)
        .map(|_| ())
        .map_err(|reason| Refusal::invalid_change("message.change", reason))
}

/// Checks `files` against the open-proposal budget (`field` brings them), compiles them, runs the
/// bundle's own tests, and records it in the store. A version an open proposal holds already
/// passed these checks, which depend on the content alone: its compiled bundle is shared.
fn activate(
    files: BundleFiles,
    base: Option<String>,
    field: &str,
    cx: Context<'_>,
) -> Result<Effect, Refusal> {
    let version = files.version();
    if version == cx.active.version {
        return Err(Refusal::invalid_change(
            "message.change",
            format!("{version} is the active policy set already"),
        ));
    }
    cx.open.admit(&version, bundle_bytes(&files), field)?;
    if cx.open.checked.contains(&version) {
        if let Some(shared) = cx.bundles.cached(&version) {
            return Ok(Effect::ActivatePolicySet {
                name: shared.name().to_owned(),
                version,
                base,
            });
        }
    }
    let bundle = cx
        .bundles
        .compile(files)
        .map_err(|e| Refusal::InvalidBundle {
            reason: e.to_string(),
        })?;
    let failed: Vec<_> = run_bundle_tests(&bundle)
        .into_iter()
        .filter(|r| !r.passed())
        .collect();
    if let Some(first) = failed.first() {
        return Err(Refusal::BundleTestsFailed {
            failed: failed.len(),
            first: format!(
                "{}: {}: {}",
                first.file,
                first.name,
                first.failures.join("; ")
            ),
        });
    }
    let name = bundle.name().to_owned();
    cx.bundles.insert(Arc::new(bundle));
    Ok(Effect::ActivatePolicySet {
        version,
        name,
        base,
    })
}

/// `files` with `parameters` set in jurisdiction `code`'s file (other parameters unchanged).
fn with_parameters(
    files: &BundleFiles,
    code: &str,
    parameters: &BTreeMap<String, Value>,
) -> Result<BundleFiles, Refusal> {
    let invalid = |reason: String| Refusal::invalid_change("message.change.parameters", reason);
    if parameters.is_empty() {
        return Err(invalid("no parameters given".into()));
    }
    let path = format!("{JURISDICTIONS_DIR}{code}.yaml");
    let bytes = files.get(&path).ok_or_else(|| {
        Refusal::invalid_change(
            "message.change.jurisdiction",
            format!("the active bundle has no jurisdiction `{code}`"),
        )
    })?;
    // The file was loaded through the engine's YAML reader (duplicate keys refused) when the
    // active bundle was; this reads it again only to edit it.
    #[allow(clippy::disallowed_methods)]
    let mut doc: serde_yaml::Value =
        serde_yaml::from_slice(bytes).map_err(|e| invalid(format!("{path}: not YAML: {e}")))?;
    let map = doc
        .as_mapping_mut()
        .ok_or_else(|| invalid(format!("{path}: not a mapping")))?;
    let key = serde_yaml::Value::from("parameters");
    if !map.contains_key(&key) {
        map.insert(key.clone(), serde_yaml::Value::Mapping(Default::default()));
    }
    let params = map
        .get_mut(&key)
        .and_then(serde_yaml::Value::as_mapping_mut)
        .ok_or_else(|| invalid(format!("{path}: `parameters` is not a mapping")))?;
    for (name, value) in parameters {
        let value =
            serde_yaml::to_value(value).map_err(|e| invalid(format!("parameters.{name}: {e}")))?;
        params.insert(serde_yaml::Value::from(name.as_str()), value);
    }
    let text = serde_yaml::to_string(&doc).map_err(|e| invalid(format!("{path}: {e}")))?;
    let mut all: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(p, b)| (p.to_owned(), b.to_vec()))
        .collect();
    all.insert(path, text.into_bytes());
    Ok(BundleFiles::new(all))
}
