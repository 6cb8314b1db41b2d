//! The AuthZEN Authorization API 1.0 shapes.

use crate::*;
use insta::assert_json_snapshot;
use serde_json::json;

/// tx-001 (allowed treatment read) in AuthZEN form.
fn allow_eval() -> Value {
    json!({
        "subject": { "type": "Practitioner", "id": "practitioner/alice",
                     "properties": { "organization": "org/st-marys", "roles": ["physician"], "jurisdiction": "US-CA" } },
        "action": { "name": "read" },
        "resource": { "type": "Observation", "id": "Observation/o1",
                      "properties": { "patient": { "id": "patient/p-1" }, "jurisdiction": "US-CA" } },
        "context": { "id": "tx-az-1", "timestamp": "2026-03-01T10:00:00Z",
                     "purpose_of_use": "TREAT", "treating_relationship": true }
    })
}

/// The same practitioner exporting the record to an ad company for marketing: denied.
fn deny_eval() -> Value {
    let mut e = allow_eval();
    e["action"] = json!({ "name": "export" });
    e["context"] = json!({ "id": "tx-az-2", "timestamp": "2026-03-01T10:00:00Z",
                           "purpose_of_use": "HMARKT",
                           "recipient": { "id": "org/ads", "type": "Organization", "country": "US" } });
    e
}

const SNAPSHOT_REDACTIONS: &str = ".**.version";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluation_maps_subject_action_resource_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let mut allow = allow_eval();
    allow["subject"]["unknown_member"] = json!("ignored, as AuthZEN asks");
    allow["extra"] = json!({ "also": "ignored" });
    let response = server
        .client
        .post(server.url("/access/v1/evaluation"))
        .header("content-type", "application/json")
        .header("x-request-id", "az-7")
        .body(allow.to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"az-7"[..])
    );
    let (status, _, body) = answer(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], true);
    assert_eq!(body["context"]["tx"], "tx-az-1");
    insta::with_settings!({}, {
        assert_json_snapshot!("authzen_allow", body, { SNAPSHOT_REDACTIONS => "[version]" });
    });

    let (status, _, body) = answer(
        server
            .post_json("/access/v1/evaluation", &deny_eval())
            .await,
    )
    .await;
    assert_eq!(status, 200, "a deny is HTTP 200 with decision false");
    assert_eq!(body["decision"], false, "{body}");
    assert_json_snapshot!("authzen_deny", body, { SNAPSHOT_REDACTIONS => "[version]" });

    // Without context.id and context.timestamp: the request id names the tx, the clock the time.
    let mut bare = allow_eval();
    bare["context"] = json!({ "purpose_of_use": "TREAT", "treating_relationship": true });
    let response = server
        .client
        .post(server.url("/access/v1/evaluation"))
        .header("content-type", "application/json")
        .header("x-request-id", "az-8")
        .body(bare.to_string())
        .send()
        .await
        .expect("request");
    let (_, _, body) = answer(response).await;
    assert_eq!(body["context"]["tx"], "az-8");
    assert!(body["context"]["timestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluation_problems_name_the_authzen_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let mut e = allow_eval();
    e["subject"]["type"] = json!("Robot");
    let body = problem(
        server.post_json("/access/v1/evaluation", &e).await,
        422,
        "invalid-transaction",
    )
    .await;
    assert_eq!(body["field"], "subject.type");
    assert_json_snapshot!("authzen_problem_subject_type", body);

    let mut e = allow_eval();
    e["resource"]["properties"]["data_categories"] = json!(["gossip"]);
    let body = problem(
        server.post_json("/access/v1/evaluation", &e).await,
        422,
        "invalid-transaction",
    )
    .await;
    assert_eq!(body["field"], "resource.properties.data_categories[0]");

    let mut e = allow_eval();
    e["context"]["purpose_of_use"] = json!("treat");
    let body = problem(
        server.post_json("/access/v1/evaluation", &e).await,
        422,
        "invalid-transaction",
    )
    .await;
    assert_eq!(body["field"], "context.purpose_of_use");

    let mut e = allow_eval();
    e.as_object_mut().expect("object").remove("subject");
    let body = problem(
        server.post_json("/access/v1/evaluation", &e).await,
        400,
        "invalid-request",
    )
    .await;
    assert_eq!(body["field"], "subject");

    let mut e = allow_eval();
    e["action"] = json!({ "name": 7 });
    let body = problem(
        server.post_json("/access/v1/evaluation", &e).await,
        400,
        "invalid-request",
    )
    .await;
    assert_eq!(body["field"], "action.name");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_apply_defaults_and_semantics_in_request_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let allow = allow_eval();
    let deny = deny_eval();
    // Defaults at the top level; items override whole members.
    let request = |semantic: Option<&str>| {
        let mut r = json!({
            "subject": allow["subject"],
            "resource": allow["resource"],
            "context": allow["context"],
            "evaluations": [
                { "action": { "name": "read" } },
                { "action": deny["action"], "context": deny["context"] },
                { "action": { "name": "read" }, "subject": { "type": "Robot", "id": "r2" } },
                { "action": { "name": "read" } },
            ],
        });
        if let Some(s) = semantic {
            r["options"] = json!({ "evaluations_semantic": s });
        }
        r
    };
    let decisions = |body: &Value| -> Vec<Value> {
        body["evaluations"]
            .as_array()
            .expect("evaluations")
            .iter()
            .map(|e| e["decision"].clone())
            .collect()
    };
    let (status, _, all) = answer(
        server
            .post_json("/access/v1/evaluations", &request(None))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        decisions(&all),
        [json!(true), json!(false), json!(false), json!(true)]
    );
    assert_eq!(
        all["evaluations"][2]["context"]["error"]["field"],
        "evaluations[2].subject.type"
    );
    assert_json_snapshot!("authzen_evaluations_execute_all", all, { SNAPSHOT_REDACTIONS => "[version]" });

    let (_, _, first_deny) = answer(
        server
            .post_json(
                "/access/v1/evaluations",
                &request(Some("deny_on_first_deny")),
            )
            .await,
    )
    .await;
    assert_eq!(decisions(&first_deny), [json!(true), json!(false)]);
    let (_, _, first_permit) = answer(
        server
            .post_json(
                "/access/v1/evaluations",
                &request(Some("permit_on_first_permit")),
            )
            .await,
    )
    .await;
    assert_eq!(decisions(&first_permit), [json!(true)]);
    let (_, _, explicit) = answer(
        server
            .post_json("/access/v1/evaluations", &request(Some("execute_all")))
            .await,
    )
    .await;
    assert_eq!(decisions(&explicit).len(), 4);

    let body = problem(
        server
            .post_json("/access/v1/evaluations", &request(Some("whatever")))
            .await,
        400,
        "invalid-request",
    )
    .await;
    assert_eq!(body["field"], "options.evaluations_semantic");

    // No `evaluations`: one evaluation of the top level, in the single-evaluation shape.
    let (_, _, single) = answer(server.post_json("/access/v1/evaluations", &allow).await).await;
    assert_eq!(single["decision"], true, "{single}");

    // 3 + 2 + 1 + 3 + 1 decisions logged: the refused item (Robot) was never decided.
    let (_, _, verify) = answer(server.get("/v1/audit/verify").await).await;
    assert_eq!(verify["length"], 3 + 2 + 1 + 3 + 1, "{verify}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_known_configuration_names_the_endpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let (status, _, body) = answer(server.get("/.well-known/authzen-configuration").await).await;
    assert_eq!(status, 200);
    let base = server.base.clone();
    assert_eq!(
        body,
        json!({
            "policy_decision_point": base,
            "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
            "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
        })
    );
    server.stop().await;
}
