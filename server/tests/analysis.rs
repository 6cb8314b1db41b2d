//! The advisory analysis of proposals over HTTP: computed beside the proposal, stored outside the
//! state root, and absent-solver safe. Needs cvc5 (`.ci/run` installs it).

use super::governance::{signed, tightening, CONSORTIUM};
use super::*;
use accord_engine::symbolic::SolverSettings;
use serde_json::json;
use std::collections::BTreeMap;

const FORBID: &str = "  context.legal_basis == \"\" &&\n  action != Accord::Action::\"delete\" &&";

/// The default bundle with UK GDPR's "no lawful basis" forbid extended to exports to Antarctica
/// (a tightening of `export` only, which no test case of the bundle exercises).
fn tightened_bundle() -> Value {
    let mut files: BTreeMap<String, String> = bundle()
        .files()
        .iter()
        .map(|(p, b)| (p.to_owned(), String::from_utf8(b.to_vec()).unwrap()))
        .collect();
    let cedar = files.get_mut("cedar/uk-gdpr.cedar").unwrap();
    assert!(cedar.contains(FORBID));
    *cedar = cedar.replacen(
        FORBID,
        "  (context.legal_basis == \"\" || (action == Accord::Action::\"export\" && \
         context.recipient_country == \"AQ\")) &&\n  action != Accord::Action::\"delete\" &&",
        1,
    );
    json!({ "type": "proposal", "consortium": CONSORTIUM, "proposer": "member/st-marys",
            "title": "No exports to Antarctica without a basis", "base": bundle().version(),
            "change": { "kind": "activate_bundle", "bundle": files } })
}

fn absent_solver() -> SolverSettings {
    SolverSettings {
        program: "/nonexistent/cvc5".into(),
        ..SolverSettings::default()
    }
}

/// Posts a signed proposal; its id.
async fn propose(server: &TestServer, tx: &str, message: Value, member: &str) -> String {
    let (status, _, body) = answer(
        server
            .post_json("/v1/governance", &signed(tx, message, member))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["applied"]["id"].as_str().unwrap().to_owned()
}

async fn analysis(server: &TestServer, id: &str) -> Value {
    let (status, _, body) = answer(server.get(&format!("/v1/proposals/{id}/analysis")).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn state_root(server: &TestServer) -> Value {
    answer(server.get("/v1/policy-set").await).await.2["state_root"].clone()
}

#[tokio::test]
async fn a_policy_proposal_is_analysed_per_action_and_stored_beside_it_outside_the_state_root() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let id = propose(&server, "g-1", tightened_bundle(), "st-marys").await;
    let root = state_root(&server).await;
    let a = analysis(&server, &id).await;
    assert_eq!(a["proposal"], id.as_str());
    assert_eq!(a["advisory"], true);
    assert_eq!(a["status"], "complete", "{a}");
    assert_eq!(a["base"], bundle().version());
    let (_, _, p) = answer(server.get(&format!("/v1/proposals/{id}")).await).await;
    assert_eq!(a["version"], p["effect"]["version"], "{p}");
    let cedar = &a["cedar"];
    assert!(cedar["solver"].as_str().unwrap().starts_with("cvc5 "));
    assert_eq!(cedar["query_limit_ms"], 10_000);
    assert_eq!(cedar["schema_changed"], false);
    let actions = cedar["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 8, "{a}");
    for action in actions {
        let expected = if action["action"] == "Accord::Action::\"export\"" {
            "stricter"
        } else {
            "equivalent"
        };
        assert_eq!(action["verdict"], expected, "{action}");
    }
    let export = actions
        .iter()
        .find(|a| a["action"] == "Accord::Action::\"export\"")
        .unwrap();
    assert_eq!(export["newly_allowed"], json!({ "result": "none" }));
    assert_eq!(export["newly_denied"]["result"], "found");
    let cex = &export["newly_denied"]["counterexample"];
    assert_eq!(cex["action"], "Accord::Action::\"export\"", "{cex}");
    assert_eq!(cex["context"]["recipient_country"], "AQ", "{cex}");
    assert!(
        cex["context"]["holder_regimes"]
            .to_string()
            .contains("UK-GDPR"),
        "{cex}"
    );
    // Computing and serving the analysis changed no state.
    assert_eq!(state_root(&server).await, root);
    assert_eq!(analysis(&server, &id).await, a);
    server.stop().await;

    // Stored: served after a restart by a node without the solver, unchanged.
    let server = TestServer::start_with(dir.path(), |c| c.solver = absent_solver()).await;
    assert_eq!(analysis(&server, &id).await, a);
    assert_eq!(state_root(&server).await, root);

    // A membership change is not a policy change; an unknown proposal is a 404.
    let remove = json!({ "type": "proposal", "consortium": CONSORTIUM,
        "proposer": "member/acme-insurance", "title": "City Lab leaves",
        "change": { "kind": "remove_member", "member": "member/city-lab" } });
    let member_change = propose(&server, "g-2", remove, "acme-insurance").await;
    let a = analysis(&server, &member_change).await;
    assert_eq!(a["status"], "not_applicable", "{a}");
    assert_eq!(a["reason"], "a remove_member change is not a policy change");
    assert!(a.get("cedar").is_none());
    problem(
        server.get("/v1/proposals/sha256:00/analysis").await,
        404,
        "unknown-proposal",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn without_the_solver_a_proposal_works_and_its_analysis_says_it_was_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), |c| c.solver = absent_solver()).await;
    let id = propose(&server, "g-1", tightening(), "st-marys").await;
    let a = analysis(&server, &id).await;
    assert_eq!(a["status"], "not_run", "{a}");
    assert_eq!(a["advisory"], true);
    let reason = a["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the SMT solver `/nonexistent/cvc5` could not be started"),
        "{reason}"
    );
    assert!(a.get("cedar").is_none());
    // The proposal is voted on as ever.
    let (_, _, p) = answer(server.get(&format!("/v1/proposals/{id}")).await).await;
    let vote = json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": id,
        "content": p["content"], "voter": "member/st-marys", "choice": "yes" });
    let (status, _, body) = answer(
        server
            .post_json("/v1/governance", &signed("v-1", vote, "st-marys"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;

    // Not stored: with the solver, the same node analyses it. A jurisdiction-parameter change
    // leaves every Cedar policy as it was: every action is proved equivalent.
    let server = TestServer::start(dir.path()).await;
    let a = analysis(&server, &id).await;
    assert_eq!(a["status"], "complete", "{a}");
    let verdicts: Vec<&str> = a["cedar"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, vec!["equivalent"; 8], "{a}");
    server.stop().await;
}
