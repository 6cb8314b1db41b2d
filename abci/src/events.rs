//! A finalized block's results as CometBFT records and indexes them: one `ExecTxResult` per
//! transaction, with the decision or outcome as JSON in `data` and as typed events, and the
//! block's own events (activations, the state root).

use crate::tx::{TxFault, CODESPACE};
use accord_engine::Decision;
use accord_governance::{BlockAnswer, TxResult};
use tendermint::abci::types::ExecTxResult;
use tendermint::abci::{Event, EventAttributeIndexExt};

/// `accord.decision`: an access transaction's decision.
pub const DECISION: &str = "accord.decision";
/// `accord.reason`: one rule that decided it (module, rule, effect, citation).
pub const REASON: &str = "accord.reason";
/// `accord.applied`: a consent, representation, agreement or governance transaction applied.
pub const APPLIED: &str = "accord.applied";
/// `accord.refused`: a transaction the state refused.
pub const REFUSED: &str = "accord.refused";
/// `accord.activation`: a proposal whose policy set became active at the start of the block.
pub const ACTIVATION: &str = "accord.activation";
/// `accord.block`: the Accord block's hash and state root.
pub const BLOCK: &str = "accord.block";

/// The result of a transaction in the Accord block.
pub fn exec_result(result: &TxResult) -> ExecTxResult {
    match result {
        TxResult::Decided(decision) => ExecTxResult {
            data: decision.to_json().into_bytes().into(),
            events: decision_events(decision),
            ..Default::default()
        },
        TxResult::Applied { tx, applied } => {
            let mut attributes = vec![
                ("tx", tx.as_str()).index(),
                ("kind", applied.kind.as_str()).index(),
                ("id", applied.id.as_str()).index(),
            ];
            if let Some(status) = &applied.status {
                attributes.push(("status", status.as_str()).index());
            }
            ExecTxResult {
                data: json_bytes(result),
                events: vec![Event::new(APPLIED, attributes)],
                ..Default::default()
            }
        }
        TxResult::Refused { tx, refused } => {
            let fault = TxFault::refused(refused);
            let mut attributes = vec![
                ("tx", tx.as_str()).index(),
                ("code", refused.code.as_str()).index(),
            ];
            if let Some(field) = &refused.field {
                attributes.push(("field", field.as_str()).no_index());
            }
            ExecTxResult {
                code: fault.code.into(),
                data: json_bytes(result),
                log: fault.log,
                codespace: CODESPACE.to_owned(),
                events: vec![Event::new(REFUSED, attributes)],
                ..Default::default()
            }
        }
    }
}

/// The result of a transaction that is not in the Accord block.
pub fn fault_result(fault: &TxFault) -> ExecTxResult {
    ExecTxResult {
        code: fault.code.into(),
        log: fault.log.clone(),
        codespace: CODESPACE.to_owned(),
        ..Default::default()
    }
}

/// `accord.decision` and one `accord.reason` per rule that decided.
fn decision_events(decision: &Decision) -> Vec<Event> {
    let mut events = vec![Event::new(
        DECISION,
        [
            ("tx", decision.tx.clone()).index(),
            ("decision", decision.decision.as_str().to_owned()).index(),
            ("policy_version", decision.policy_set.version.clone()).index(),
            ("jurisdictions", decision.jurisdictions.join(",")).index(),
        ],
    )];
    events.extend(decision.reasons.iter().map(|reason| {
        Event::new(
            REASON,
            [
                ("tx", decision.tx.as_str()).index(),
                ("module", reason.module.as_str()).index(),
                ("rule", reason.rule.as_str()).index(),
                ("effect", reason.effect.as_str()).index(),
                ("citation", reason.citation.as_str()).index(),
            ],
        )
    }));
    events
}

/// The block's events: each activation, then the Accord block's hash and state root.
pub fn block_events(answer: &BlockAnswer) -> Vec<Event> {
    let mut events: Vec<Event> = answer
        .activated
        .iter()
        .map(|proposal| Event::new(ACTIVATION, [("proposal", proposal.as_str()).index()]))
        .collect();
    events.push(Event::new(
        BLOCK,
        [
            ("height", answer.height.to_string()).index(),
            ("block_hash", answer.block_hash.clone()).no_index(),
            ("state_root", answer.state_root.clone()).index(),
        ],
    ));
    events
}

/// serde's JSON of a result (plain strings and structs: it cannot fail).
fn json_bytes(result: &TxResult) -> bytes::Bytes {
    serde_json::to_vec(result).unwrap_or_default().into()
}
