//! `abci_query` paths: a block's answer, the decision log, proposals, consents, the policy set and
//! the members; failures carry the HTTP status as their code.

use super::*;

#[tokio::test]
async fn query_paths_answer_blocks_decisions_governance_and_consents() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let grant = json!({ "id": "c-1", "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
        "consent": { "id": "consent/c-1", "status": "active", "patient": "patient/d-4",
                     "grantee": "org/uni-lab", "purposes": ["HRESCH"], "actions": ["read"],
                     "data_categories": ["general"],
                     "period": { "start": "2026-02-01T00:00:00Z", "end": "2027-02-01T00:00:00Z" } } });
    let answers = run_blocks(
        &app,
        &[
            vec![allow_tx("a-1"), grant],
            vec![signed("g-1", tightening(), "st-marys")],
        ],
    )
    .await;

    let block = app.query(query("/block/1")).await;
    assert_eq!(block.code.value(), 0, "{}", block.log);
    assert_eq!(
        block.height.value(),
        2,
        "answered at the last committed height"
    );
    let block = json_of(&block.value);
    assert_eq!(block["height"], 1);
    assert_eq!(block["results"][0]["decision"], "allow");
    assert_eq!(
        accord_abci::app::app_hash(block["state_root"].as_str().unwrap()).unwrap(),
        answers[0].app_hash
    );

    let decisions = json_of(&app.query(query("/decisions?tx=a-1")).await.value);
    assert_eq!(decisions["decisions"][0]["outcome"], "allow", "{decisions}");
    let proposals = json_of(&app.query(query("/proposals")).await.value);
    let id = proposals["proposals"][0]["id"].as_str().unwrap().to_owned();
    let proposal = app.query(query(&format!("/proposals/{id}"))).await;
    assert_eq!(proposal.code.value(), 0, "{}", proposal.log);
    assert_eq!(json_of(&proposal.value)["status"], "voting");
    let consents = json_of(
        &app.query(query("/consents?patient=patient/d-4"))
            .await
            .value,
    );
    assert_eq!(
        consents["consents"][0]["record"]["id"], "consent/c-1",
        "{consents}"
    );
    let set = json_of(&app.query(query("/policy-set")).await.value);
    assert_eq!(set["applied_height"], 2, "{set}");
    let members = json_of(&app.query(query("/members")).await.value);
    assert_eq!(members["members"].as_array().unwrap().len(), 3, "{members}");
}

#[tokio::test]
async fn a_failed_query_has_the_http_status_as_its_code_and_the_problem_as_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    run_blocks(&app, &[vec![allow_tx("a-1")]]).await;
    let cases = [
        ("/block/9", 404, "no block 9"),
        ("/block/x", 400, "not a block height"),
        ("/proposals/sha256:00", 404, "sha256:00"),
        ("/evaluate", 404, "no query path `/evaluate`"),
        ("/audit/verify", 404, "no query path"),
        ("/decisions?limit=nope", 400, "limit"),
    ];
    for (path, code, detail) in cases {
        let answer = app.query(query(path)).await;
        assert_eq!(answer.code.value(), code, "{path}: {}", answer.log);
        assert_eq!(answer.codespace, "accord");
        assert!(answer.log.contains(detail), "{path}: {}", answer.log);
        let problem = json_of(&answer.value);
        assert_eq!(problem["status"], code, "{path}: {problem}");
    }
    let mut old = query("/policy-set");
    old.height = 7u32.into();
    let answer = app.query(old).await;
    assert_eq!(answer.code.value(), 400);
    assert!(
        answer.log.contains("only the latest state"),
        "{}",
        answer.log
    );
    let mut latest = query("/policy-set");
    latest.height = 1u32.into();
    assert_eq!(
        app.query(latest).await.code.value(),
        0,
        "the committed height is the latest"
    );
}
