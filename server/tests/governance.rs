//! The block feed and governance over HTTP: a full round (propose, three votes, activation, a
//! decision that flips), block order and replay, refusals, reads, and restart.

use super::*;
use accord_governance::message::{sign, Change};
use accord_governance::KeyFile;
use ed25519_dalek::SigningKey;
use serde_json::json;

pub const CONSORTIUM: &str = "health-net-dev";

fn key(member: &str) -> SigningKey {
    let path = root().join(format!("governance/dev-keys/{member}.key.json"));
    KeyFile::read(&path).unwrap().signing_key().clone()
}

pub fn signed(id: &str, message: Value, member: &str) -> Value {
    sign(&message, &key(member))
        .unwrap()
        .into_transaction(id, "2026-03-01T08:00:00Z")
}

/// Uruguay leaves the EU adequacy list (a tightening no bundle test case depends on).
pub fn tightening() -> Value {
    let bundle = bundle();
    let list: Vec<Value> = bundle
        .jurisdictions()
        .get("EU")
        .and_then(|j| j.parameters.get("adequacy"))
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .filter(|c| *c != "UY")
        .cloned()
        .collect();
    let change: Change = serde_json::from_value(json!({
        "kind": "set_jurisdiction_parameters", "jurisdiction": "EU",
        "parameters": { "adequacy": list } }))
    .unwrap();
    json!({ "type": "proposal", "consortium": CONSORTIUM, "proposer": "member/st-marys",
            "title": "Uruguay leaves the adequacy list", "base": bundle.version(),
            "change": change })
}

/// A German physician shares a record with a clinic in Uruguay for treatment.
fn share_to_uruguay(id: &str) -> Value {
    with_id(example("share-to-uruguay.json"), id)
}

async fn block(server: &TestServer, height: u64, txs: Vec<Value>) -> Value {
    let (status, _, body) = answer(
        server
            .post_json(
                "/v1/blocks",
                &json!({ "height": height, "transactions": txs }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn a_governance_round_over_http_flips_a_decision_at_the_activation_height() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let b1 = block(&server, 1, vec![share_to_uruguay("s-1")]).await;
    assert_eq!(
        b1["results"][0]["decision"], "allow",
        "adequacy covers Uruguay"
    );

    // Single-node mode: the proposal is sequenced into block 2.
    let (status, _, proposed) = answer(
        server
            .post_json("/v1/governance", &signed("g-1", tightening(), "st-marys"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{proposed}");
    assert_eq!(proposed["height"], 2);
    assert_eq!(proposed["applied"]["status"], "voting");
    let id = proposed["applied"]["id"].as_str().unwrap().to_owned();
    let content = proposed["content"].as_str().unwrap().to_owned();
    let vote = |member: &str, n: u32| {
        signed(
            &format!("v-{n}"),
            json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": id,
            "content": content, "voter": format!("member/{member}"), "choice": "yes" }),
            member,
        )
    };
    let (s, _, v1) = answer(
        server
            .post_json("/v1/governance", &vote("st-marys", 1))
            .await,
    )
    .await;
    assert_eq!(
        (s, v1["applied"]["status"].as_str()),
        (200, Some("voting")),
        "{v1}"
    );
    let (s, _, v2) = answer(
        server
            .post_json("/v1/governance", &vote("acme-insurance", 2))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{v2}");
    // Two of three equal weights decide it at height 4: queued until 4 + 2.
    assert_eq!(v2["height"], 4);
    assert_eq!(v2["applied"]["status"], "queued");
    let late = problem(
        server
            .post_json("/v1/governance", &vote("city-lab", 3))
            .await,
        422,
        "governance-refused",
    )
    .await;
    assert_eq!(late["code"], "proposal_closed");
    assert_eq!(late["next_height"], 5, "a refused message takes no height");
    assert!(late.get("height").is_none(), "{late}");

    // While queued, the impact preview counts the would-be flips.
    let b5 = block(&server, 5, vec![share_to_uruguay("s-5")]).await;
    assert_eq!(b5["results"][0]["decision"], "allow", "not active yet");
    let b6 = block(&server, 6, vec![share_to_uruguay("s-6")]).await;
    assert_eq!(
        b6["activated"],
        json!([id]),
        "activates at the start of block 6"
    );
    assert_eq!(
        b6["results"][0]["decision"], "deny",
        "the tightened set governs block 6"
    );
    assert_eq!(b6["results"][0]["policy_set"]["activated_at_height"], 6);

    let (_, _, p) = answer(server.get(&format!("/v1/proposals/{id}")).await).await;
    assert_eq!(p["status"], "active");
    assert_eq!(p["tally"]["yes"], 2);
    assert_eq!(p["votes"].as_object().unwrap().len(), 2);
    assert!(p.get("seen").is_none());
    let (_, _, list) = answer(server.get("/v1/proposals?status=active").await).await;
    assert_eq!(list["proposals"].as_array().unwrap().len(), 1);
    let (_, _, set) = answer(server.get("/v1/policy-set").await).await;
    assert_eq!(set["active"]["activated_at_height"], 6);
    assert_eq!(set["active"]["proposal"], id.as_str());
    assert_eq!(set["history"].as_array().unwrap().len(), 2);
    assert_eq!(set["applied_height"], 6);

    // /v1/evaluate now decides on the new set too.
    let (_, _, d) = answer(
        server
            .post_json("/v1/evaluate", &share_to_uruguay("e-1"))
            .await,
    )
    .await;
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["policy_set"]["version"], set["active"]["version"]);

    // Block decisions are in the decision log.
    let (_, _, logged) = answer(server.get("/v1/decisions?tx=s-6").await).await;
    assert_eq!(logged["decisions"][0]["outcome"], "deny", "{logged}");
    let (_, _, metrics) = answer(server.get("/metrics").await).await;
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("accord_proposals{state=\"active\"} 1"),
        "{text}"
    );
    assert!(text.contains("accord_applied_height 6"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn blocks_apply_in_order_replay_and_refuse_gaps_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let first = block(&server, 1, vec![with_id(allow_tx(), "b-1")]).await;
    // The same block again: the same answer, and its decision is not logged twice.
    let again = block(&server, 1, vec![with_id(allow_tx(), "b-1")]).await;
    assert_eq!(first, again);
    let (_, _, logged) = answer(server.get("/v1/decisions?tx=b-1").await).await;
    assert_eq!(logged["decisions"].as_array().unwrap().len(), 1);
    let gap = problem(
        server
            .post_json("/v1/blocks", &json!({ "height": 3, "transactions": [] }))
            .await,
        409,
        "block-out-of-order",
    )
    .await;
    assert_eq!(gap["expected_height"], 2);
    insta::assert_json_snapshot!("block_gap", gap);
    let conflict = problem(
        server
            .post_json("/v1/blocks", &json!({ "height": 1, "transactions": [] }))
            .await,
        409,
        "block-conflict",
    )
    .await;
    assert_eq!(conflict["expected_height"], 2);
    let previous = problem(
        server
            .post_json(
                "/v1/blocks",
                &json!({ "height": 2, "previous": "sha256:00", "transactions": [] }),
            )
            .await,
        409,
        "block-conflict",
    )
    .await;
    assert_eq!(previous["field"], "previous");
    let bad = problem(
        server
            .post_json(
                "/v1/blocks",
                &json!({ "height": 2, "transactions": [{ "id": "x", "kind": "access" }] }),
            )
            .await,
        422,
        "invalid-block",
    )
    .await;
    assert!(
        bad["field"]
            .as_str()
            .unwrap()
            .starts_with("transactions[0]"),
        "{bad}"
    );
    // A block long enough to be parsed on every core still names its first invalid transaction
    // in block order, and applies nothing.
    let mut long: Vec<Value> = (0..120)
        .map(|i| with_id(allow_tx(), &format!("long-{i}")))
        .collect();
    long[70] = json!({ "id": "bad-70", "kind": "access" });
    long[110] = json!({ "id": "bad-110", "kind": "sideways" });
    let first_bad = problem(
        server
            .post_json("/v1/blocks", &json!({ "height": 2, "transactions": long }))
            .await,
        422,
        "invalid-block",
    )
    .await;
    assert!(
        first_bad["field"]
            .as_str()
            .unwrap()
            .starts_with("transactions[70]"),
        "{first_bad}"
    );
    let (_, _, logged) = answer(server.get("/v1/decisions?tx=long-0").await).await;
    assert_eq!(logged["decisions"].as_array().unwrap().len(), 0, "{logged}");
    let shape = problem(
        server
            .post_json(
                "/v1/blocks",
                &json!({ "height": "two", "transactions": [] }),
            )
            .await,
        422,
        "invalid-block",
    )
    .await;
    assert_eq!(shape["field"], "height");
    // A block in array form (which serde would read field by field) is not an object.
    let array = problem(
        server.post_json("/v1/blocks", &json!([2, null, []])).await,
        400,
        "invalid-request",
    )
    .await;
    assert_eq!(array["field"], ".", "{array}");
    let broken = problem(
        server
            .post_raw(
                "/v1/blocks",
                "application/json",
                r#"{"height": 2, "transactions": ["#,
            )
            .await,
        400,
        "malformed-json",
    )
    .await;
    assert!(broken["detail"].as_str().is_some(), "{broken}");
    // After all the refusals, height 2 is still next and chains on block 1.
    let prev = first["block_hash"].as_str().unwrap();
    let b2 = answer(
        server
            .post_json(
                "/v1/blocks",
                &json!({ "height": 2, "previous": prev, "transactions": [] }),
            )
            .await,
    )
    .await;
    assert_eq!(b2.0, 200, "{}", b2.2);
    server.stop().await;
}

#[tokio::test]
async fn governance_refusals_and_reads_are_problems_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    // Signed by the wrong key: refused with the governance code, state unchanged.
    let mut forged = tightening();
    forged["proposer"] = json!("member/acme-insurance");
    let refused = problem(
        server
            .post_json("/v1/governance", &signed("g-1", forged, "st-marys"))
            .await,
        422,
        "governance-refused",
    )
    .await;
    assert_eq!(refused["code"], "bad_signature");
    insta::assert_json_snapshot!("governance_refused", refused);
    let (_, _, list) = answer(server.get("/v1/proposals").await).await;
    assert_eq!(list["proposals"], json!([]));
    // Not a governance transaction.
    let wrong = problem(
        server.post_json("/v1/governance", &allow_tx()).await,
        422,
        "invalid-transaction",
    )
    .await;
    assert_eq!(wrong["field"], "kind");
    // Unknown proposal.
    let missing = problem(
        server.get("/v1/proposals/sha256:00").await,
        404,
        "unknown-proposal",
    )
    .await;
    assert_eq!(missing["field"], "id");
    // Consents need a patient.
    let no_patient = problem(server.get("/v1/consents").await, 400, "invalid-request").await;
    assert_eq!(no_patient["field"], "patient");
    let (_, _, members) = answer(server.get("/v1/members").await).await;
    assert_eq!(members["consortium"], CONSORTIUM);
    assert_eq!(members["total_weight"], 3);
    server.stop().await;
}

#[tokio::test]
async fn a_restart_on_the_same_data_keeps_consents_governance_and_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let grant = json!({ "id": "c-1", "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
        "consent": { "id": "consent/c-1", "status": "active", "patient": "patient/d-4",
                     "grantee": "org/uni-lab", "purposes": ["HRESCH"], "actions": ["read"],
                     "data_categories": ["general"] } });
    block(&server, 1, vec![grant]).await;
    let (s, _, proposed) = answer(
        server
            .post_json("/v1/governance", &signed("g-1", tightening(), "st-marys"))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{proposed}");
    let (_, _, before) = answer(server.get("/v1/policy-set").await).await;
    server.stop().await;

    let server = TestServer::start(dir.path()).await;
    let (_, _, after) = answer(server.get("/v1/policy-set").await).await;
    assert_eq!(
        before, after,
        "height, state root, active set and pending proposals survive"
    );
    let (_, _, consents) = answer(server.get("/v1/consents?patient=patient/d-4").await).await;
    assert_eq!(consents["consents"][0]["record"]["id"], "consent/c-1");
    let (_, _, list) = answer(server.get("/v1/proposals?status=voting").await).await;
    assert_eq!(list["proposals"][0]["id"], proposed["applied"]["id"]);
    // The chain continues at height 3.
    let gap = problem(
        server
            .post_json("/v1/blocks", &json!({ "height": 5, "transactions": [] }))
            .await,
        409,
        "block-out-of-order",
    )
    .await;
    assert_eq!(gap["expected_height"], 3);
    server.stop().await;
}

#[tokio::test]
async fn a_data_directory_refuses_to_open_under_another_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    block(&server, 1, vec![]).await;
    server.stop().await;
    // The dev genesis with another consortium id.
    let text = std::fs::read_to_string(root().join("governance/genesis.dev.yaml")).unwrap();
    let other = text
        .replace("consortium: health-net-dev", "consortium: other-net")
        .replace(
            "bundle: ../policies",
            &format!("bundle: {}", root().join("policies").display()),
        );
    let genesis = dir.path().join("other-genesis.yaml");
    std::fs::write(&genesis, other).unwrap();
    let mut config = ServeConfig::with_defaults(root().join("policies"), dir.path().to_path_buf());
    config.genesis = Some(genesis);
    let mut tries = 0;
    let err = loop {
        match AppState::open(&config, bundle()) {
            Ok(_) => panic!("a data directory made under another genesis must be refused"),
            Err(e) if tries < 100 && e.to_string().contains("lock") => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => break e.to_string(),
        }
    };
    assert!(err.contains("was made under genesis"), "{err}");
    assert!(err.contains("use another data directory"), "{err}");
}

#[tokio::test]
async fn a_long_block_is_decided_and_logged_in_ledger_order() {
    // 240 access transactions: parsed, decided and prepared for the log on every core.
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let txs: Vec<Value> = (0..240)
        .map(|i| {
            let tx = if i % 3 == 0 { deny_tx() } else { allow_tx() };
            with_id(tx, &format!("long-{i}"))
        })
        .collect();
    let expected: Vec<(String, &str)> = (0..240)
        .map(|i| {
            let outcome = if i % 3 == 0 { "deny" } else { "allow" };
            (format!("long-{i}"), outcome)
        })
        .collect();
    let answer_of = block(&server, 1, txs.clone()).await;
    let results = answer_of["results"].as_array().unwrap();
    let got: Vec<(String, &str)> = results
        .iter()
        .map(|r| {
            (
                r["tx"].as_str().unwrap().to_owned(),
                r["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    // The log holds them in the same order, each with its patient.
    let (_, _, page) = answer(server.get("/v1/decisions?limit=500").await).await;
    let logged: Vec<(String, String, String)> = page["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["tx"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
                e["patient"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let patient = |tx: &Value| tx["resource"]["patient"]["id"].as_str().unwrap().to_owned();
    let want: Vec<(String, String, String)> = expected
        .iter()
        .zip(&txs)
        .map(|((id, outcome), tx)| (id.clone(), (*outcome).to_owned(), patient(tx)))
        .collect();
    assert_eq!(logged, want);
    // A replay of it answers the same bytes and logs nothing more.
    let again = block(&server, 1, txs).await;
    assert_eq!(again, answer_of);
    let (_, _, page) = answer(server.get("/v1/decisions?limit=500").await).await;
    assert_eq!(page["decisions"].as_array().unwrap().len(), 240);
    server.stop().await;
}

#[tokio::test]
async fn a_refused_change_names_its_field_and_the_documented_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(dir.path()).await;
    let (_, _, members) = answer(server.get("/v1/members").await).await;
    let message = json!({ "type": "proposal", "consortium": CONSORTIUM,
        "proposer": "member/st-marys", "title": "quorum above one",
        "base": members["voting_digest"],
        "change": { "kind": "set_voting_params", "params": { "quorum": "4/3", "threshold": "1/2",
                    "voting_period": 10, "activation_delay": 2, "max_open_proposals": 3 } } });
    let p = problem(
        server
            .post_json("/v1/governance", &signed("g-1", message, "st-marys"))
            .await,
        422,
        "governance-refused",
    )
    .await;
    assert_eq!(p["code"], "invalid_change", "{p}");
    assert_eq!(p["field"], "message.change.params.quorum", "{p}");
    server.stop().await;
}

/// A client on another loopback address than the test's default client (127.0.0.1).
fn client_from(addr: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(addr))
        .build()
        .unwrap()
}

#[tokio::test]
async fn junk_flooding_the_governance_endpoint_takes_no_height_and_starves_no_member() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (status, _, proposed) = answer(
        server
            .post_json("/v1/governance", &signed("g-1", tightening(), "st-marys"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{proposed}");
    assert_eq!(proposed["height"], 1);
    let id = proposed["applied"]["id"].as_str().unwrap().to_owned();
    let content = proposed["content"].as_str().unwrap().to_owned();
    let (_, _, before) = answer(server.get(&format!("/v1/proposals/{id}")).await).await;

    // The flood, from one client: unsigned and malformed bodies, a forged signature, a non-member,
    // a vote on no proposal. Each is refused without a height until the client's refusal budget
    // runs out; then it is turned away with 429, held back for a second (a tarpit).
    let unsigned = json!({ "id": "j", "kind": "governance", "timestamp": "2026-03-01T08:00:00Z",
                           "governance": { "message": {}, "signature": "" } });
    let mut forged = tightening();
    forged["title"] = json!("forged");
    let forged = {
        let mut tx = signed("j-forged", forged, "acme-insurance");
        tx["governance"]["message"]["proposer"] = json!("member/st-marys");
        tx
    };
    let stranger = signed(
        "j-stranger",
        json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": id, "content": content,
                "voter": "member/nobody", "choice": "no" }),
        "city-lab",
    );
    let nowhere = signed(
        "j-nowhere",
        json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": "sha256:00",
                "content": content, "voter": "member/city-lab", "choice": "no" }),
        "city-lab",
    );
    let junk = [unsigned, forged, stranger, nowhere];
    let send_junk = |i: usize| {
        let request = server
            .client
            .post(server.url("/v1/governance"))
            .header("content-type", "application/json")
            .body(junk[i % junk.len()].to_string());
        async move {
            let (status, _, body) = answer(request.send().await.expect("junk request")).await;
            (status, body, std::time::Instant::now())
        }
    };
    // One at a time until the budget is spent.
    let mut refused = std::collections::BTreeMap::<String, u32>::new();
    let mut i = 0;
    loop {
        let (status, body, _) = send_junk(i).await;
        i += 1;
        match status {
            422 => {
                assert_eq!(body["next_height"].as_u64().unwrap_or(2), 2, "{body}");
                *refused
                    .entry(body["code"].as_str().unwrap_or("?").to_owned())
                    .or_default() += 1;
            }
            429 => break,
            other => panic!("junk answered {other}: {body}"),
        }
        assert!(i <= 40, "the budget never ran out: {refused:?}");
    }
    assert!(
        i > 10,
        "a burst of refusals is allowed before the budget runs out: {i}"
    );
    for code in [
        "malformed",
        "bad_signature",
        "not_a_member",
        "unknown_proposal",
    ] {
        assert!(refused.contains_key(code), "{code} not seen: {refused:?}");
    }

    // Nothing moved: no height taken, the proposal as it was.
    let (_, _, set) = answer(server.get("/v1/policy-set").await).await;
    assert_eq!(set["applied_height"], 1, "{set}");
    let (_, _, after) = answer(server.get(&format!("/v1/proposals/{id}")).await).await;
    assert_eq!(after, before);
    assert_eq!(after["status"], "voting");

    // Then 100 at once: every one is turned away and held back for the tarpit's second, while a
    // member on another address is served at once, at the next height.
    let mut flood = tokio::task::JoinSet::new();
    let sent = std::time::Instant::now();
    for i in 0..100 {
        flood.spawn(send_junk(i));
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let vote = signed(
        "v-1",
        json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": id, "content": content,
                "voter": "member/acme-insurance", "choice": "yes" }),
        "acme-insurance",
    );
    let response = client_from([127, 0, 0, 2])
        .post(server.url("/v1/governance"))
        .header("content-type", "application/json")
        .body(vote.to_string())
        .send()
        .await
        .unwrap();
    let (status, _, voted) = answer(response).await;
    let member_answered = std::time::Instant::now();
    assert_eq!(status, 200, "{voted}");
    assert_eq!(voted["height"], 2);
    assert_eq!(voted["applied"]["status"], "voting");
    let mut held = 0;
    while let Some(junk) = flood.join_next().await {
        let (status, body, answered) = junk.expect("junk task");
        if status == 422 {
            // The budget regains five refusals a second: one may have come back meanwhile.
            continue;
        }
        held += 1;
        assert_eq!(status, 429, "{body}");
        assert_eq!(
            body["type"], "https://accord.dev/problems/too-many-refusals",
            "{body}"
        );
        assert!(
            answered.duration_since(sent) >= std::time::Duration::from_millis(950),
            "a client in debt is held back: answered after {:?}",
            answered.duration_since(sent)
        );
        assert!(
            answered > member_answered,
            "the member was served while the flood was held back"
        );
    }
    assert!(held >= 90, "the flood was turned away: {held} of 100");
    let (_, _, set) = answer(server.get("/v1/policy-set").await).await;
    assert_eq!(
        set["applied_height"], 2,
        "only the member's vote took a height: {set}"
    );

    server.stop().await;
}

#[tokio::test]
async fn a_change_built_on_a_replaced_policy_set_is_refused_and_a_pending_one_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let post = |tx: Value| {
        let server = &server;
        async move { answer(server.post_json("/v1/governance", &tx).await).await }
    };
    // Without a base: refused, naming the version in force.
    let mut unbased = tightening();
    unbased.as_object_mut().unwrap().remove("base");
    let (status, _, p) = post(signed("g-0", unbased, "st-marys")).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("missing_base")),
        "{p}"
    );
    assert_eq!(p["field"], "message.base");
    assert!(
        p["detail"].as_str().unwrap().contains(bundle().version()),
        "{p}"
    );
    // Two changes built on the genesis set: both accepted while it is in force.
    let (status, _, a) = post(signed("g-1", tightening(), "st-marys")).await;
    assert_eq!(status, 200, "{a}");
    let mut other = tightening();
    other["title"] = json!("the same list, proposed again");
    other["nonce"] = json!("2");
    other["proposer"] = json!("member/acme-insurance");
    let (status, _, b) = post(signed("g-2", other, "acme-insurance")).await;
    assert_eq!(status, 200, "{b}");
    let vote = |n: u32, p: &Value, member: &str| {
        signed(
            &format!("v-{n}"),
            json!({ "type": "vote", "consortium": CONSORTIUM, "proposal": p["applied"]["id"],
                    "content": p["content"], "voter": format!("member/{member}"),
                    "choice": "yes" }),
            member,
        )
    };
    // Votes interleaved, so that both are queued before either activates.
    for (n, p, member) in [
        (1, &a, "st-marys"),
        (2, &b, "st-marys"),
        (3, &a, "acme-insurance"),
        (4, &b, "acme-insurance"),
    ] {
        let (status, _, v) = post(vote(n, p, member)).await;
        assert_eq!(status, 200, "{v}");
    }
    // Both queued; the first activates, the second (built on the replaced set) is aborted.
    let (_, _, set) = answer(server.get("/v1/policy-set").await).await;
    let next = set["applied_height"].as_u64().unwrap() + 1;
    let mut activated = Value::Null;
    for h in next..next + 4 {
        let answer = block(&server, h, vec![]).await;
        if answer["activated"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            activated = answer["activated"].clone();
        }
    }
    assert_eq!(activated, json!([a["applied"]["id"]]));
    let (_, _, later) = answer(
        server
            .get(&format!(
                "/v1/proposals/{}",
                b["applied"]["id"].as_str().unwrap()
            ))
            .await,
    )
    .await;
    assert_eq!(later["status"], "aborted", "{later}");
    assert!(
        later["note"]
            .as_str()
            .unwrap()
            .contains("replaced at height"),
        "{later}"
    );
    // A new change on the old base is refused as stale; on the new one it is accepted.
    let (_, _, set) = answer(server.get("/v1/policy-set").await).await;
    let mut stale = tightening();
    stale["nonce"] = json!("3");
    stale["proposer"] = json!("member/city-lab");
    let (status, _, p) = post(signed("g-3", stale, "city-lab")).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (422, Some("stale_base")),
        "{p}"
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains(set["active"]["version"].as_str().unwrap()),
        "{p}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_voter_reads_what_a_proposal_changes_against_its_base() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    // A parameter change, with a description.
    let mut message = tightening();
    message["description"] = json!("Uruguay's adequacy decision is under review.\n\n- drop `UY`");
    let (status, _, proposed) = answer(
        server
            .post_json("/v1/governance", &signed("g-1", message, "st-marys"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{proposed}");
    let id = proposed["applied"]["id"].as_str().unwrap().to_owned();
    let (_, _, p) = answer(server.get(&format!("/v1/proposals/{id}")).await).await;
    assert_eq!(
        p["description"],
        "Uruguay's adequacy decision is under review.\n\n- drop `UY`"
    );
    let (status, _, diff) = answer(server.get(&format!("/v1/proposals/{id}/diff")).await).await;
    assert_eq!(status, 200, "{diff}");
    assert_eq!(diff["kind"], "set_jurisdiction_parameters");
    assert_eq!(diff["base"], bundle().version());
    assert_eq!(
        diff["bundle"]["files"]["changed"],
        json!(["jurisdictions/EU.yaml"])
    );
    assert_eq!(diff["bundle"]["files"]["added"], json!([]));
    assert_eq!(diff["bundle"]["policies"], json!([]));
    assert_eq!(diff["bundle"]["modules"], json!([]));
    let params = diff["bundle"]["parameters"].as_array().unwrap();
    assert_eq!(params.len(), 1, "{diff}");
    assert_eq!(params[0]["jurisdiction"], "EU");
    assert_eq!(params[0]["name"], "adequacy");
    assert!(params[0]["old"].as_array().unwrap().contains(&json!("UY")));
    assert!(!params[0]["new"].as_array().unwrap().contains(&json!("UY")));
    assert_eq!(
        params[0]["old"].as_array().unwrap().len(),
        params[0]["new"].as_array().unwrap().len() + 1
    );

    // A whole bundle: one Cedar policy's message reworded, one Rhai module commented.
    let mut files: std::collections::BTreeMap<String, String> = bundle()
        .files()
        .iter()
        .map(|(p, b)| (p.to_owned(), String::from_utf8(b.to_vec()).unwrap()))
        .collect();
    let cedar = files.get_mut("cedar/ch-fadp.cedar").unwrap();
    let start = cedar.find("@id(\"ch-consent\")").unwrap();
    let at = start + cedar[start..].find("@message(\"").unwrap() + "@message(\"".len();
    cedar.insert_str(at, "Reworded: ");
    files
        .get_mut("rhai/gdpr-erasure.rhai")
        .unwrap()
        .push_str("\n// reviewed\n");
    let change: Change =
        serde_json::from_value(json!({ "kind": "activate_bundle", "bundle": files })).unwrap();
    let message = json!({ "type": "proposal", "consortium": CONSORTIUM,
        "proposer": "member/acme-insurance", "title": "Reworded", "base": bundle().version(),
        "change": change });
    let (status, _, proposed) = answer(
        server
            .post_json("/v1/governance", &signed("g-2", message, "acme-insurance"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{proposed}");
    let id = proposed["applied"]["id"].as_str().unwrap();
    let (_, _, diff) = answer(server.get(&format!("/v1/proposals/{id}/diff")).await).await;
    let b = &diff["bundle"];
    assert_eq!(b["files"]["added"], json!([]), "{diff}");
    assert_eq!(
        b["files"]["changed"],
        json!(["cedar/ch-fadp.cedar", "rhai/gdpr-erasure.rhai"])
    );
    let policies = b["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 1, "only the reworded policy: {diff}");
    assert_eq!(policies[0]["id"], "ch-consent");
    assert_eq!(policies[0]["change"], "changed");
    assert!(policies[0]["new"].as_str().unwrap().contains("Reworded: "));
    assert!(!policies[0]["old"].as_str().unwrap().contains("Reworded: "));
    assert_eq!(b["modules"][0]["id"], "gdpr-erasure");
    assert!(b["modules"][0]["new"]
        .as_str()
        .unwrap()
        .ends_with("// reviewed\n"));
    assert_eq!(b["other"], json!([]));
    // An unknown proposal is a 404.
    problem(
        server.get("/v1/proposals/sha256:00/diff").await,
        404,
        "unknown-proposal",
    )
    .await;
    // An oversized or empty description is refused before the node is asked.
    let mut long = tightening();
    long["nonce"] = json!("long");
    long["description"] = json!("x".repeat(16 * 1024 + 1));
    let p = problem(
        server
            .post_json("/v1/governance", &signed("g-3", long, "st-marys"))
            .await,
        422,
        "governance-refused",
    )
    .await;
    assert_eq!(
        (p["code"].as_str(), p["field"].as_str()),
        (Some("malformed"), Some("message.description"))
    );
    let mut blank = tightening();
    blank["title"] = json!("  ");
    let p = problem(
        server
            .post_json("/v1/governance", &signed("g-4", blank, "st-marys"))
            .await,
        422,
        "governance-refused",
    )
    .await;
    assert_eq!(p["field"], "message.title", "{p}");
    server.stop().await;
}
