//! `GET /openapi.json`: every served route is in the document with its role, every operation in
//! the document is served, and every example request is answered as documented.

use crate::TestServer;
use accord_server::routes::route_table;
use accord_server::tokens::Tokens;
use serde_json::Value;
use std::collections::BTreeSet;

const TOKEN: &str = "openapi-test-token";

async fn document(server: &TestServer) -> Value {
    let response = server.get("/openapi.json").await;
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("body");
    accord_engine::json::value_from_str(&text).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_with_its_role_and_nothing_else_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let doc = document(&server).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut served = BTreeSet::new();
    for route in route_table() {
        let method = route.method.as_str().to_ascii_lowercase();
        let what = format!("{} {}", route.method, route.path);
        let op = &paths
            .get(route.path)
            .unwrap_or_else(|| panic!("{what} is not in the document"))[&method];
        assert!(op.is_object(), "{what} is not in the document");
        let roles: Vec<&str> = op["security"]
            .as_array()
            .map(|reqs| {
                reqs.iter()
                    .filter_map(|r| r["token"].as_array())
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect()
            })
            .unwrap_or_default();
        let expected: Vec<&str> = route.role.map(|r| r.name()).into_iter().collect();
        assert_eq!(roles, expected, "{what}: the documented role");
        if route.role.is_some() {
            for status in ["401", "403"] {
                assert!(op["responses"][status].is_object(), "{what}: {status}");
            }
        }
        served.insert((method, route.path.to_owned()));
    }
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            assert!(
                served.contains(&(method.clone(), path.clone())),
                "{method} {path} is documented but not served"
            );
        }
    }
    server.stop().await;
}

/// One documented example: the request to send and the answer documented for it.
struct Example {
    name: String,
    target: String,
    method: String,
    body: Option<Value>,
    status: u16,
    content_type: String,
    answer: Value,
}

/// Every example of the document. An operation with a request body has one request example per
/// answer example, of the same name; one without sends its parameters' `example` values and has
/// at most one answer example.
fn examples(doc: &Value) -> Vec<Example> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let mut target = path.clone();
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().expect("parameter name");
                let value = match &p["example"] {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                match p["in"].as_str() {
                    Some("path") => target = target.replace(&format!("{{{name}}}"), &value),
                    Some("query") => query.push(format!("{name}={value}")),
                    other => panic!("{method} {path}: parameter in {other:?}"),
                }
            }
            if !query.is_empty() {
                target = format!("{target}?{}", query.join("&"));
            }
            let requests = op["requestBody"]["content"]["application/json"]["examples"]
                .as_object()
                .cloned();
            let mut answered = BTreeSet::new();
            for (status, response) in op["responses"].as_object().expect("responses") {
                for (content_type, content) in response["content"].as_object().into_iter().flatten()
                {
                    for (name, example) in content["examples"].as_object().into_iter().flatten() {
                        let body = requests.as_ref().map(|requests| {
                            requests.get(name).unwrap_or_else(|| {
                                panic!("{method} {path}: no request example `{name}`")
                            })["value"]
                                .clone()
                        });
                        answered.insert(name.clone());
                        all.push(Example {
                            name: name.clone(),
                            target: target.clone(),
                            method: method.clone(),
                            body,
                            status: status.parse().expect("a status"),
                            content_type: content_type.clone(),
                            answer: example["value"].clone(),
                        });
                    }
                }
            }
            match &requests {
                Some(requests) => {
                    let names: BTreeSet<String> = requests.keys().cloned().collect();
                    assert_eq!(
                        names, answered,
                        "{method} {path}: every request example is answered"
                    );
                }
                None => assert!(
                    answered.len() <= 1,
                    "{method} {path}: a request without a body has one example at most"
                ),
            }
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_is_answered_as_documented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        TestServer::start_with(dir.path(), |c| c.tokens = Some(Tokens::single(TOKEN))).await;
    let doc = document(&server).await;
    let examples = examples(&doc);
    assert!(examples.len() >= 20, "{} examples", examples.len());
    for ex in &examples {
        let what = format!("{} {} `{}`", ex.method, ex.target, ex.name);
        let mut req = server
            .client
            .request(
                ex.method.to_ascii_uppercase().parse().expect("method"),
                server.url(&ex.target),
            )
            .bearer_auth(TOKEN);
        if let Some(body) = &ex.body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = req.send().await.expect("request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.expect("body");
        assert_eq!(status, ex.status, "{what}: {text}");
        assert!(
            content_type.starts_with(&ex.content_type),
            "{what}: {content_type}"
        );
        if !ex.content_type.contains("json") {
            continue;
        }
        let got = accord_engine::json::value_from_str(&text).expect("a JSON answer");
        // The answer has every member the example shows; a problem's type and a decision's
        // outcome are the documented ones.
        for (key, value) in ex.answer.as_object().expect("an object example") {
            assert!(got.get(key).is_some(), "{what}: no `{key}` in {got}");
            if ["type", "decision", "status", "code"].contains(&key.as_str()) {
                assert_eq!(&got[key], value, "{what}: `{key}` in {got}");
            }
        }
    }
    server.stop().await;
}
