//! The examples of the API document (`GET /openapi.json`): requests and the answers they get.
//!
//! Each request example has a name; the answer it gets is documented under the same name, under
//! the status it is answered with. The API document test sends every example request to a server
//! with a fresh data directory and checks the status, the content type and the answer's shape.
//! Transactions are the repository's `examples/` files, so the document shows what
//! `accord check` is shown.

use serde_json::{json, Value};

fn file(text: &str) -> Value {
    accord_engine::json::value_from_str(text).unwrap_or(Value::Null)
}

/// The allowed treatment read (`examples/treatment-read.json`, `tx-001`).
pub fn allow_tx() -> Value {
    file(include_str!("../../../examples/treatment-read.json"))
}

/// The denied export to the US (`examples/export-to-us.json`, `tx-014`).
pub fn deny_tx() -> Value {
    file(include_str!("../../../examples/export-to-us.json"))
}

/// `tx-001` with an actor type no transaction has.
pub fn invalid_tx() -> Value {
    let mut tx = allow_tx();
    tx["actor"]["type"] = json!("Robot");
    tx
}

const VERSION: &str = "sha256:4c1d3b0e9a7f25d6c8e1b2a3f4d5c6b7a8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3";
const HASH: &str = "sha256:9f2b5c0d1e3a4b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c";

fn policy_set() -> Value {
    json!({ "version": VERSION, "name": "accord-default", "activated_at_height": 0 })
}

/// The decision for [`allow_tx`].
pub fn allow_decision() -> Value {
    json!({
        "tx": "tx-001", "decision": "allow", "policy_set": policy_set(),
        "jurisdictions": ["US", "US-CA"],
        "reasons": [{ "module": "hipaa/privacy-rule", "rule": "treatment", "effect": "permit",
                      "citation": "45 CFR 164.506(c)(1)",
                      "message": "a health care provider may use PHI without authorization for its own treatment of a patient …" }],
        "obligations": [{ "kind": "audit", "citation": "45 CFR 164.312(b)", "module": "hipaa/audit",
                          "rule": "audit",
                          "message": "record this access attempt and its outcome in the audit log (who, what, when, purpose)" }],
        "errors": []
    })
}

/// The decision for [`deny_tx`].
pub fn deny_decision() -> Value {
    json!({
        "tx": "tx-014", "decision": "deny", "policy_set": policy_set(),
        "jurisdictions": ["DE", "EU"],
        "reasons": [{ "module": "gdpr/transfers", "rule": "third-country-transfer", "effect": "forbid",
                      "citation": "GDPR Art. 44", "message": "…" }],
        "obligations": [], "errors": []
    })
}

fn problem(code: &str, title: &str, status: u16, detail: &str, field: Option<&str>) -> Value {
    let mut p = json!({ "type": format!("https://accord.dev/problems/{code}"), "title": title,
                        "status": status, "detail": detail });
    if let Some(field) = field {
        p["field"] = json!(field);
    }
    p
}

/// The problem for [`invalid_tx`].
pub fn invalid_tx_problem() -> Value {
    problem(
        "invalid-transaction",
        "The transaction is invalid",
        422,
        "field `actor.type`: unknown variant `Robot`, expected one of `Practitioner`, …",
        Some("actor.type"),
    )
}

pub fn batch() -> Value {
    json!({ "transactions": [allow_tx(), deny_tx()] })
}

pub fn batch_answer() -> Value {
    json!({ "decisions": [allow_decision(), deny_decision()] })
}

pub fn batch_invalid() -> Value {
    json!({ "transactions": [allow_tx(), invalid_tx()] })
}

pub fn batch_invalid_problem() -> Value {
    problem(
        "invalid-transaction",
        "The transaction is invalid",
        422,
        "field `transactions[1].actor.type`: unknown variant `Robot`, expected one of `Practitioner`, …",
        Some("transactions[1].actor.type"),
    )
}

/// The AuthZEN form of the treatment read (docs/server.md, AuthZEN).
pub fn authzen_evaluation() -> Value {
    json!({
        "subject": { "type": "Practitioner", "id": "practitioner/alice",
                     "properties": { "organization": "org/st-marys", "roles": ["physician"],
                                     "jurisdiction": "US-CA" } },
        "action": { "name": "read" },
        "resource": { "type": "Observation", "id": "Observation/o1",
                      "properties": { "patient": { "id": "patient/p-1" }, "jurisdiction": "US-CA" } },
        "context": { "id": "tx-az-1", "timestamp": "2026-03-01T10:00:00Z",
                     "purpose_of_use": "TREAT", "treating_relationship": true }
    })
}

pub fn authzen_answer() -> Value {
    json!({
        "decision": true,
        "context": { "tx": "tx-az-1", "policy_set": policy_set(), "jurisdictions": ["US", "US-CA"],
                     "reasons": [{ "module": "hipaa/privacy-rule", "rule": "treatment", "effect": "permit",
                                   "citation": "45 CFR 164.506(c)(1)", "message": "…" }],
                     "obligations": [{ "kind": "audit", "citation": "45 CFR 164.312(b)",
                                       "module": "hipaa/audit", "rule": "audit", "message": "…" }],
                     "errors": [], "timestamp": "2026-03-01T10:00:00Z" }
    })
}

pub fn authzen_invalid() -> Value {
    let mut e = authzen_evaluation();
    e["subject"]["type"] = json!("Robot");
    e
}

pub fn authzen_invalid_problem() -> Value {
    problem(
        "invalid-transaction",
        "The transaction is invalid",
        422,
        "field `subject.type`: unknown variant `Robot`, expected one of `Practitioner`, …",
        Some("subject.type"),
    )
}

/// Two reads by the same subject: defaults at the top, one resource per item.
pub fn authzen_evaluations() -> Value {
    let mut e = authzen_evaluation();
    let mut context = e["context"].take();
    if let Some(c) = context.as_object_mut() {
        c.remove("id");
    }
    json!({
        "subject": e["subject"], "action": e["action"], "context": context,
        "evaluations": [
            { "resource": e["resource"], "context": { "id": "tx-az-2", "timestamp": "2026-03-01T10:00:00Z",
                                                      "purpose_of_use": "TREAT", "treating_relationship": true } },
            { "resource": { "type": "Observation", "id": "Observation/o2",
                            "properties": { "patient": { "id": "patient/p-2" }, "jurisdiction": "US-CA" } },
              "context": { "id": "tx-az-3", "timestamp": "2026-03-01T10:00:00Z",
                           "purpose_of_use": "TREAT", "treating_relationship": true } }
        ]
    })
}

pub fn authzen_evaluations_answer() -> Value {
    let one = authzen_answer();
    json!({ "evaluations": [one.clone(), one] })
}

pub fn authzen_configuration() -> Value {
    json!({
        "policy_decision_point": "http://127.0.0.1:8181",
        "access_evaluation_endpoint": "http://127.0.0.1:8181/access/v1/evaluation",
        "access_evaluations_endpoint": "http://127.0.0.1:8181/access/v1/evaluations"
    })
}

/// The first block: one access transaction.
pub fn first_block() -> Value {
    json!({ "height": 1, "transactions": [allow_tx()] })
}

pub fn first_block_answer() -> Value {
    // `activated` is listed only when a proposal activated at the block's start.
    json!({ "height": 1, "block_hash": HASH, "results": [allow_decision()], "state_root": HASH })
}

/// A block far ahead of the chain.
pub fn gap_block() -> Value {
    json!({ "height": 7, "transactions": [] })
}

pub fn gap_block_problem() -> Value {
    let mut p = problem(
        "block-out-of-order",
        "The block is not the next height",
        409,
        "expected height 1, got 7",
        None,
    );
    p["expected_height"] = json!(1);
    p
}

/// A vote on a proposal that does not exist: refused, it takes no height.
pub fn unknown_proposal_vote() -> Value {
    json!({
        "id": "g-1", "kind": "governance", "timestamp": "2026-03-02T08:00:00Z",
        "governance": {
            "message": { "type": "vote", "consortium": "health-net-dev", "proposal": "p-0",
                         "content": HASH, "voter": "member/st-marys", "choice": "yes" },
            "signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
        }
    })
}

pub fn unknown_proposal_vote_problem() -> Value {
    let mut p = problem(
        "governance-refused",
        "The governance message was refused",
        422,
        "unknown_proposal: no proposal p-0",
        None,
    );
    p["code"] = json!("unknown_proposal");
    p["next_height"] = json!(1);
    p
}

pub fn proposals() -> Value {
    json!({ "proposals": [] })
}

pub fn unknown_proposal() -> Value {
    problem(
        "unknown-proposal",
        "No such proposal",
        404,
        "field `id`: no proposal p-unknown",
        Some("id"),
    )
}

pub fn policy_set_answer() -> Value {
    json!({
        "active": { "version": VERSION, "name": "accord-default", "activated_at_height": 0, "proposal": null },
        "history": [{ "version": VERSION, "activated_at_height": 0, "proposal": null }],
        "pending": [], "applied_height": null, "state_root": HASH
    })
}

pub fn members_answer() -> Value {
    json!({
        "consortium": "health-net-dev",
        "members": [{ "id": "member/st-marys", "weight": 1, "public_key": "…" }],
        "total_weight": 3,
        "voting": { "threshold": "2/3", "quorum": "1/2", "voting_period": 10, "activation_delay": 2 },
        "voting_digest": HASH
    })
}

pub fn consents_answer() -> Value {
    json!({ "patient": "patient/p-1", "consents": [] })
}

pub fn decisions_page() -> Value {
    json!({
        "decisions": [{ "seq": 1, "tx": "tx-001", "outcome": "allow", "patient": "patient/p-1",
                        "policy_version": VERSION, "reasons": [], "obligations": [], "errors": [],
                        "prev": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                        "hash": HASH }],
        "next_after": null
    })
}

pub fn verify_answer() -> Value {
    json!({ "ok": true, "length": 0, "head": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "checked_from": 1, "checked": 0, "full": true })
}

pub fn healthz_answer() -> Value {
    json!({ "status": "ok" })
}

pub fn readyz_answer() -> Value {
    json!({ "status": "ready", "insecure": false, "policy_set": policy_set(),
            "decision_log": { "entries": 0, "head": "sha256:0000000000000000000000000000000000000000000000000000000000000000" } })
}

pub fn metrics_answer() -> Value {
    json!("# TYPE accord_decisions_total counter\naccord_decisions_total{outcome=\"allow\"} 0\naccord_decisions_total{outcome=\"deny\"} 0\n")
}
