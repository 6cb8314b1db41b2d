//! `accord inspect TX.json` and `accord proposal show|diff`: a signed governance transaction, or a
//! proposal on a node, in readable form — who signed it, what it changes and against what, and
//! whether the signature verifies.

use crate::commands::{bad_input, print_line, Failure};
use crate::node_client::{proposal_path, NodeClient};
use accord_engine::{Bundle, BundleFiles};
use accord_governance::diff::{bundle_diff, BundleDiff};
use accord_governance::member::Member;
use accord_governance::message::{content_hash, proposal_id, Change, Envelope, Message};
use accord_governance::signature_scheme::{self, SignatureScheme};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;

/// Where the members' keys and the base bundle come from.
pub struct InspectSources<'a> {
    pub genesis: &'a crate::commands::GenesisSource,
    /// The bundle a change is compared with when it was built on it (default: the genesis's).
    pub policies: Option<&'a Path>,
    /// A node: its members' keys and its stored bundles are used instead.
    pub node: Option<&'a NodeClient>,
}

/// `accord inspect TX.json`: prints the transaction's readable form; exit 0 when the signature
/// verifies, 1 when it does not, 2 when the transaction cannot be read.
pub fn inspect(path: &Path, sources: &InspectSources<'_>) -> Result<ExitCode, Failure> {
    let (tx, envelope) = crate::governance::read_signed_transaction(path)?;
    let signer = envelope.message.signer().to_owned();
    let (valid, checked_against) = verify(&envelope, &signer, sources)?;
    let mut out = json!({
        "tx": tx.get("id"),
        "type": message_type(&envelope.message),
        "consortium": envelope.message.consortium(),
        "signer": signer,
        "signature": { "valid": valid, "checked_against": checked_against },
    });
    match &envelope.message {
        Message::Proposal(p) => {
            out["proposal"] = json!({
                "id": proposal_id(&envelope.signed_bytes),
                "content": content_hash(&p.change),
                "title": p.title,
                "description": p.description,
                "kind": change_kind(&p.change),
                "base": p.base,
                "changes": change_summary(&p.change, p.base.as_deref(), sources)?,
            });
        }
        Message::Vote(v) => {
            out["vote"] =
                json!({ "proposal": v.proposal, "content": v.content, "choice": v.choice });
        }
        Message::Cancel(c) => {
            out["cancel"] = json!({ "proposal": c.proposal });
        }
        Message::Veto(v) => {
            out["veto"] = json!({ "proposal": v.proposal, "content": v.content });
        }
    }
    print_line(&serde_json::to_string_pretty(&out).unwrap_or_default())?;
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::commands::FAILED)
    })
}

fn message_type(message: &Message) -> &'static str {
    match message {
        Message::Proposal(_) => "proposal",
        Message::Vote(_) => "vote",
        Message::Cancel(_) => "cancel",
        Message::Veto(_) => "veto",
    }
}

fn change_kind(change: &Change) -> String {
    serde_json::to_value(change)
        .ok()
        .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// Whether the signatures verify, under the consortium's signature scheme, against the signer's
/// keys in the node's or the genesis's membership, and which membership that was (with the
/// fault when they do not).
fn verify(
    envelope: &Envelope,
    signer: &str,
    sources: &InspectSources<'_>,
) -> Result<(bool, String), Failure> {
    let (member, scheme, against) = match sources.node {
        Some(node) => {
            let members = node.get("/v1/members")?;
            let member = members["members"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["id"] == signer)
                .map(|m| serde_json::from_value::<Member>(m.clone()))
                .transpose()
                .map_err(|e| bad_input(format!("the node's member `{signer}`: {e}")))?;
            let scheme = match members.get("signature_scheme") {
                Some(scheme) => serde_json::from_value::<SignatureScheme>(scheme.clone())
                    .map_err(|e| bad_input(format!("the node's signature scheme: {e}")))?,
                None => SignatureScheme::default(),
            };
            (member, scheme, "the node's members".to_owned())
        }
        None => {
            let genesis = sources.genesis.load()?;
            let member = genesis.membership.get(signer).cloned();
            (
                member,
                genesis.signature_scheme,
                format!("the members of {}", sources.genesis.shown()),
            )
        }
    };
    let Some(member) = member else {
        return Ok((false, format!("{against}: `{signer}` is not a member")));
    };
    let key = member.key().map_err(bad_input)?;
    let ml_dsa_key = member.ml_dsa_key().map_err(bad_input)?;
    Ok(
        match signature_scheme::verify(scheme, envelope, &key, ml_dsa_key.as_ref()) {
            Ok(()) => (true, against),
            Err(fault) => (false, format!("{against}: {}", fault.describe(signer))),
        },
    )
}

/// What a change does, against its base where the base is at hand.
fn change_summary(
    change: &Change,
    base: Option<&str>,
    sources: &InspectSources<'_>,
) -> Result<Value, Failure> {
    let base_files = || -> Result<Option<BundleFiles>, Failure> {
        if sources.node.is_some() {
            // The node compares a sequenced proposal itself (`accord proposal diff`).
            return Ok(None);
        }
        let files = match sources.policies {
            Some(dir) => BundleFiles::read_dir(dir)
                .map_err(|e| bad_input(format!("policy bundle {}: {e}", dir.display())))?,
            None => sources.genesis.bundle_files()?,
        };
        Ok((Some(files.version().as_str()) == base).then_some(files))
    };
    Ok(match change {
        Change::ActivateBundle { bundle } => {
            let files = BundleFiles::new(
                bundle
                    .iter()
                    .map(|(p, t)| (p.clone(), t.clone().into_bytes()))
                    .collect(),
            );
            let mut summary = json!({ "version": files.version(), "files": files.len() });
            match base_files()? {
                Some(old) => summary["diff"] = diff_summary(&bundle_diff(&old, &files)),
                None => summary["diff"] = json!("the base bundle is not at hand (--policies DIR)"),
            }
            summary
        }
        Change::SetJurisdictionParameters {
            jurisdiction,
            parameters,
        } => {
            let old = base_files()?.and_then(|files| {
                Bundle::compile(files).ok().and_then(|b| {
                    b.jurisdictions()
                        .get(jurisdiction)
                        .map(|j| j.parameters.clone())
                })
            });
            let changes: Vec<Value> = parameters
                .iter()
                .map(|(name, new)| {
                    let old = old
                        .as_ref()
                        .map(|p| p.get(name).cloned().unwrap_or(Value::Null));
                    json!({ "jurisdiction": jurisdiction, "name": name, "old": old, "new": new })
                })
                .collect();
            json!({ "parameters": changes })
        }
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    })
}

/// A bundle diff without the texts: which files, policies, modules and parameters change.
fn diff_summary(diff: &BundleDiff) -> Value {
    let ids = |changes: &[accord_governance::diff::TextChange]| -> Vec<Value> {
        changes
            .iter()
            .map(|c| json!({ "id": c.id, "file": c.file, "change": c.change }))
            .collect()
    };
    json!({
        "files": diff.files,
        "policies": ids(&diff.policies),
        "modules": ids(&diff.modules),
        "parameters": diff.parameters,
        "other": ids(&diff.other),
    })
}

/// `accord proposal show ID --node URL`: the proposal as the node holds it, with a summary of
/// its diff and of its analysis (the verdict per action). `accord proposal show FILE` is `accord inspect FILE`.
pub fn show(target: &str, sources: &InspectSources<'_>) -> Result<ExitCode, Failure> {
    if Path::new(target).is_file() || target == "-" {
        return inspect(Path::new(target), sources);
    }
    let node = sources.node.ok_or_else(|| {
        bad_input(format!(
            "{target}: not a file; to read a proposal by id, give --node URL"
        ))
    })?;
    let mut proposal = node.get(&proposal_path(target, ""))?;
    let diff = node.get(&proposal_path(target, "/diff"))?;
    if let Value::Object(map) = &mut proposal {
        map.remove("seen");
        map.remove("membership");
        map.insert("diff".into(), summarise_node_diff(&diff));
        let analysis = node.get(&proposal_path(target, "/analysis")).map_or_else(
            |e| json!({ "status": "unavailable", "reason": e.message }),
            |a| summarise_analysis(&a),
        );
        map.insert("analysis".into(), analysis);
    }
    print_line(&serde_json::to_string_pretty(&proposal).unwrap_or_default())?;
    Ok(ExitCode::SUCCESS)
}

fn summarise_node_diff(diff: &Value) -> Value {
    let mut diff = diff.clone();
    if let Some(bundle) = diff.get_mut("bundle").and_then(Value::as_object_mut) {
        for key in ["policies", "modules", "other"] {
            if let Some(list) = bundle.get_mut(key).and_then(Value::as_array_mut) {
                for item in list {
                    if let Some(item) = item.as_object_mut() {
                        item.remove("old");
                        item.remove("new");
                    }
                }
            }
        }
    }
    diff
}

/// An analysis as `proposal show` summarises it: status, reason, and the verdict per action.
fn summarise_analysis(analysis: &Value) -> Value {
    let mut summary = serde_json::Map::new();
    for key in ["advisory", "status", "reason"] {
        if let Some(v) = analysis.get(key) {
            summary.insert(key.into(), v.clone());
        }
    }
    if let Some(actions) = analysis.pointer("/cedar/actions").and_then(Value::as_array) {
        let verdicts: serde_json::Map<String, Value> = actions
            .iter()
            .filter_map(|a| {
                let action = a.get("action")?.as_str()?;
                Some((action.to_owned(), a.get("verdict")?.clone()))
            })
            .collect();
        summary.insert("verdicts".into(), Value::Object(verdicts));
    }
    Value::Object(summary)
}

/// `accord proposal analyse ID --node URL`: the node's advisory analysis of the proposal.
pub fn analyse(id: &str, node: Option<&NodeClient>) -> Result<ExitCode, Failure> {
    let node = node.ok_or_else(|| {
        bad_input("give --node URL: the analysis is computed by the node that holds the proposal")
    })?;
    let analysis = node.get(&proposal_path(id, "/analysis"))?;
    print_line(&serde_json::to_string_pretty(&analysis).unwrap_or_default())?;
    Ok(ExitCode::SUCCESS)
}

/// `accord proposal diff ID --node URL`: what the proposal changes against its base, texts
/// included.
pub fn diff(id: &str, node: Option<&NodeClient>) -> Result<ExitCode, Failure> {
    let node = node.ok_or_else(|| {
        bad_input("give --node URL: the diff is computed by the node that holds the proposal")
    })?;
    let diff = node.get(&proposal_path(id, "/diff"))?;
    print_line(&serde_json::to_string_pretty(&diff).unwrap_or_default())?;
    Ok(ExitCode::SUCCESS)
}
