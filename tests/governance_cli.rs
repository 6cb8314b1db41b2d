//! End-to-end tests of the governance commands: `keygen`, `sign`, `propose`, and `replay` applying
//! the signed transactions they produce.

use crate::common::{accord, copy_dir, root, stderr, stdout};
use accord_engine::testing::default_bundle;
use serde_json::{json, Value};
use std::process::Output;

fn ok(o: Output) -> Output {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    o
}

fn dev_key(name: &str) -> String {
    root()
        .join(format!("governance/dev-keys/{name}.key.json"))
        .display()
        .to_string()
}

#[cfg(unix)]
#[test]
fn keygen_writes_a_private_key_file_and_refuses_to_overwrite_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    let p = path.display().to_string();
    let o = ok(accord(&["keygen", "--out", &p, "--member", "member/new"]));
    let printed: Value = accord_engine::json::value_from_str(stdout(&o).trim()).unwrap();
    let file: Value =
        accord_engine::json::value_from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(printed["public_key"], file["public_key"]);
    assert_eq!(file["member"], "member/new");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a secret key is readable by its owner only");
    // A second keygen must not destroy the first key silently.
    let again = accord(&["keygen", "--out", &p]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("k.json"), "{}", stderr(&again));
    let forced = ok(accord(&["keygen", "--out", &p, "--force"]));
    let replaced: Value = accord_engine::json::value_from_str(stdout(&forced).trim()).unwrap();
    assert_ne!(replaced["public_key"], file["public_key"]);
}

#[cfg(unix)]
#[test]
fn keygen_hybrid_writes_an_ml_dsa_key_and_sign_adds_both_signatures() {
    use accord_governance::signature_scheme::{self, parse_ml_dsa_public_key};
    use accord_governance::{Envelope, KeyFile, SignatureScheme};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.json");
    let p = path.display().to_string();
    let o = ok(accord(&[
        "keygen", "--out", &p, "--member", "member/h", "--hybrid",
    ]));
    let printed: Value = accord_engine::json::value_from_str(stdout(&o).trim()).unwrap();
    let key = KeyFile::read(&path).unwrap();
    assert_eq!(
        printed["ml_dsa_public_key"],
        key.ml_dsa_public_key().unwrap()
    );
    assert_eq!(printed["public_key"], key.public_key());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let msg = dir.path().join("m.json");
    std::fs::write(&msg, r#"{"type":"cancel","consortium":"c","proposal":"p"}"#).unwrap();
    let o = ok(accord(&["sign", &msg.display().to_string(), "--key", &p]));
    let tx: Value = accord_engine::json::value_from_str(&stdout(&o)).unwrap();
    let env = Envelope::from_value(&tx["governance"]).unwrap();
    assert!(env.ml_dsa_signature.is_some());
    let ml_dsa = parse_ml_dsa_public_key(key.ml_dsa_public_key().unwrap()).unwrap();
    let verdict = signature_scheme::verify(
        SignatureScheme::Hybrid,
        &env,
        &key.signing_key().verifying_key(),
        Some(&ml_dsa),
    );
    assert_eq!(verdict, Ok(()));
    // Without --hybrid, the key file and the signed message have no ML-DSA part.
    let plain = dir.path().join("p.json");
    ok(accord(&[
        "keygen",
        "--out",
        &plain.display().to_string(),
        "--member",
        "member/p",
    ]));
    let text = std::fs::read_to_string(&plain).unwrap();
    assert!(!text.contains("ml_dsa"), "{text}");
    let o = ok(accord(&[
        "sign",
        &msg.display().to_string(),
        "--key",
        &plain.display().to_string(),
    ]));
    assert!(!stdout(&o).contains("ml_dsa_signature"), "{}", stdout(&o));
}

#[test]
fn inspect_checks_both_signatures_of_a_hybrid_consortium() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("h.json");
    let k = key.display().to_string();
    let o = ok(accord(&[
        "keygen", "--out", &k, "--member", "member/h", "--hybrid",
    ]));
    let printed: Value = accord_engine::json::value_from_str(stdout(&o).trim()).unwrap();
    // A consortium of one hybrid member that requires both signatures.
    let genesis = dir.path().join("genesis.yaml");
    std::fs::write(
        &genesis,
        format!(
            "consortium: hybrid-net\nsignature_scheme: ed25519+ml-dsa-65\nmembers:\n  - id: member/h\n    name: H\n    public_key: \"{}\"\n    ml_dsa_public_key: \"{}\"\n    weight: 1\nvoting:\n  quorum: \"1/2\"\n  threshold: \"1/2\"\n  voting_period: 10\n  activation_delay: 2\n  max_open_proposals: 3\nbundle: {}\n",
            printed["public_key"].as_str().unwrap(),
            printed["ml_dsa_public_key"].as_str().unwrap(),
            root().join("policies").display()
        ),
    )
    .unwrap();
    let g = genesis.display().to_string();
    let msg = dir.path().join("m.json");
    std::fs::write(
        &msg,
        r#"{"type":"cancel","consortium":"hybrid-net","proposal":"sha256:00"}"#,
    )
    .unwrap();
    let signed = ok(accord(&["sign", &msg.display().to_string(), "--key", &k]));
    let file = dir.path().join("tx.json");
    std::fs::write(&file, stdout(&signed)).unwrap();
    let f = file.display().to_string();
    let shown = ok(accord(&["inspect", &f, "--genesis", &g]));
    let v: Value = accord_engine::json::value_from_str(&stdout(&shown)).unwrap();
    assert_eq!(v["signature"]["valid"], true, "{v}");

    // The ed25519 signature alone is not enough where the genesis requires both.
    let mut tx: Value = accord_engine::json::value_from_str(&stdout(&signed)).unwrap();
    let ml_dsa = tx["governance"]["ml_dsa_signature"].take();
    tx["governance"]
        .as_object_mut()
        .unwrap()
        .remove("ml_dsa_signature");
    std::fs::write(&file, tx.to_string()).unwrap();
    let o = accord(&["inspect", &f, "--genesis", &g]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = accord_engine::json::value_from_str(&stdout(&o)).unwrap();
    assert_eq!(v["signature"]["valid"], false);
    assert!(
        v["signature"]["checked_against"]
            .as_str()
            .unwrap()
            .contains("`ml_dsa_signature` is missing"),
        "{v}"
    );
    // A forged ML-DSA signature beside a valid ed25519 one: invalid.
    use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
    let mut forged = BASE64.decode(ml_dsa.as_str().unwrap()).unwrap();
    forged[0] ^= 1;
    tx["governance"]["ml_dsa_signature"] = json!(BASE64.encode(forged));
    std::fs::write(&file, tx.to_string()).unwrap();
    let o = accord(&["inspect", &f, "--genesis", &g]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = accord_engine::json::value_from_str(&stdout(&o)).unwrap();
    assert_eq!(v["signature"]["valid"], false, "{v}");
}

#[test]
fn sign_refuses_a_key_file_whose_public_key_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut file: Value =
        accord_engine::json::value_from_slice(&std::fs::read(dev_key("st-marys")).unwrap())
            .unwrap();
    let other: Value =
        accord_engine::json::value_from_slice(&std::fs::read(dev_key("city-lab")).unwrap())
            .unwrap();
    file["public_key"] = other["public_key"].clone();
    let key = dir.path().join("bad.json");
    std::fs::write(&key, file.to_string()).unwrap();
    let msg = dir.path().join("m.json");
    std::fs::write(&msg, r#"{"type":"cancel","consortium":"c","proposal":"p"}"#).unwrap();
    let o = accord(&[
        "sign",
        &msg.display().to_string(),
        "--key",
        &key.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("field `public_key` does not match"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sign_refuses_an_unknown_message_type() {
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("m.yaml");
    std::fs::write(&msg, "type: ballot\nconsortium: c\n").unwrap();
    let o = accord(&[
        "sign",
        &msg.display().to_string(),
        "--key",
        &dev_key("st-marys"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("field `type`"), "{}", stderr(&o));
}

#[test]
fn propose_refuses_a_bundle_that_fails_its_own_tests() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("policies"), &dir.path().join("policies"));
    copy_dir(
        &root().join("jurisdictions"),
        &dir.path().join("jurisdictions"),
    );
    // Germany's Art. 8 age set to 13 contradicts the bundle's own Art. 8 test cases.
    let de = dir.path().join("jurisdictions/EU-DE.yaml");
    let text = std::fs::read_to_string(&de).unwrap();
    std::fs::write(
        &de,
        text.replace("digital_consent_age: 16", "digital_consent_age: 13"),
    )
    .unwrap();
    let o = accord(&[
        "propose",
        &dir.path().join("policies").display().to_string(),
        "--key",
        &dev_key("st-marys"),
        "--consortium",
        "health-net-dev",
        "--title",
        "lower the age",
    ]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("test cases fail"), "{}", stderr(&o));
    assert!(
        stdout(&o).is_empty(),
        "no transaction is printed for a failing bundle"
    );
}

/// The whole governance round through the command line: propose a tightened bundle, three
/// signed votes, and a replay in which a decision flips at the activation height.
#[test]
fn a_proposal_signed_on_the_command_line_flips_a_decision_in_replay() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("policies"), &dir.path().join("policies"));
    copy_dir(
        &root().join("jurisdictions"),
        &dir.path().join("jurisdictions"),
    );
    let eu = dir.path().join("jurisdictions/EU.yaml");
    let text = std::fs::read_to_string(&eu).unwrap();
    let tightened: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("- UY"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(text, tightened, "Uruguay was on the list");
    std::fs::write(&eu, tightened).unwrap();
    let proposed = ok(accord(&[
        "propose",
        &dir.path().join("policies").display().to_string(),
        "--key",
        &dev_key("st-marys"),
        "--consortium",
        "health-net-dev",
        "--title",
        "Uruguay leaves the adequacy list",
        "--base",
        default_bundle().version(),
        "--id",
        "gov-1",
        "--timestamp",
        "2026-03-01T08:00:00Z",
    ]));
    let proposal_tx: Value = accord_engine::json::value_from_str(&stdout(&proposed)).unwrap();
    let err = stderr(&proposed);
    let field = |prefix: &str| {
        err.lines()
            .find_map(|l| l.split(prefix).nth(1))
            .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
            .unwrap_or_else(|| panic!("no `{prefix}` in {err}"))
    };
    let (id, content) = (field("proposal id "), field("content "));
    assert_eq!(
        proposal_tx["governance"]["message"]["base"],
        default_bundle().version()
    );
    let proposal_file = dir.path().join("proposal.json");
    std::fs::write(&proposal_file, stdout(&proposed)).unwrap();
    let mut votes = Vec::new();
    for (i, member) in ["st-marys", "acme-insurance", "city-lab"]
        .iter()
        .enumerate()
    {
        // The id and content hash from the signed proposal file, or given.
        let from: Vec<String> = if i < 2 {
            vec![
                "--proposal-file".into(),
                proposal_file.display().to_string(),
            ]
        } else {
            vec![id.clone(), "--content".into(), content.clone()]
        };
        let mut args: Vec<&str> = vec!["vote"];
        args.extend(from.iter().map(String::as_str));
        let key = dev_key(member);
        let tx_id = format!("vote-{i}");
        args.extend([
            "--choice",
            "yes",
            "--key",
            &key,
            "--consortium",
            "health-net-dev",
            "--id",
            &tx_id,
            "--timestamp",
            "2026-03-01T09:00:00Z",
        ]);
        let o = ok(accord(&args));
        let vote: Value = accord_engine::json::value_from_str(&stdout(&o)).unwrap();
        let message = &vote["governance"]["message"];
        assert_eq!(message["proposal"], id.as_str());
        assert_eq!(message["content"], content.as_str());
        assert_eq!(message["voter"], format!("member/{member}"));
        votes.push(vote);
    }
    let access = |n: u32| {
        let text = std::fs::read_to_string(root().join("examples/share-to-uruguay.json")).unwrap();
        let mut tx: Value = accord_engine::json::value_from_str(&text).unwrap();
        tx["id"] = json!(format!("share-{n}"));
        tx
    };
    let blocks = json!([
        { "height": 1, "transactions": [proposal_tx, access(1)] },
        { "height": 2, "transactions": [votes[0], votes[1], access(2)] },
        { "height": 3, "transactions": [votes[2], access(3)] },
        { "height": 4, "transactions": [access(4)] },
    ]);
    let path = dir.path().join("blocks.json");
    std::fs::write(&path, blocks.to_string()).unwrap();
    let out = ok(accord(&["replay", &path.display().to_string()]));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| accord_engine::json::parse_str(l).unwrap())
        .collect();
    let decision = |tx: &str| {
        lines
            .iter()
            .find(|l| l["tx"] == tx && l.get("decision").is_some())
            .map(|l| l["decision"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(decision("share-1"), "allow");
    assert_eq!(
        decision("share-3"),
        "allow",
        "decided at 2, queued until 2 + 2"
    );
    assert_eq!(
        decision("share-4"),
        "deny",
        "the tightened set governs block 4"
    );
    let proposal_line = lines.iter().find(|l| l["tx"] == "gov-1").unwrap();
    assert_eq!(proposal_line["applied"]["id"], id.as_str());
    let late_vote = lines.iter().find(|l| l["tx"] == "vote-2").unwrap();
    assert_eq!(late_vote["refused"]["code"], "proposal_closed");
    let h4 = lines.iter().find(|l| l["height"] == 4).unwrap();
    assert_eq!(h4["activated"], json!([id]));
}

#[test]
fn sign_refuses_a_message_that_names_a_key_twice() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "m.json",
            r#"{"type":"cancel","type":"vote","consortium":"c","proposal":"p"}"#,
        ),
        (
            "m.yaml",
            "type: cancel\nconsortium: c\nproposal: p\ntype: vote\n",
        ),
    ] {
        let msg = dir.path().join(name);
        std::fs::write(&msg, text).unwrap();
        let o = accord(&[
            "sign",
            &msg.display().to_string(),
            "--key",
            &dev_key("st-marys"),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
        let err = stderr(&o);
        assert!(err.contains(name), "{err}");
        assert!(err.contains("field `type`: duplicate key `type`"), "{err}");
        assert!(stdout(&o).is_empty(), "nothing signed");
    }
}

#[test]
fn sign_refuses_what_every_node_would_refuse_as_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // No consortium in the message and no --consortium: every node refuses it.
        (
            "no-consortium.yaml",
            "type: cancel\nproposal: p\n",
            "missing field `consortium`",
        ),
        // A vote without the content hash it must name.
        (
            "no-content.yaml",
            "type: vote\nconsortium: c\nproposal: p\nchoice: yes\n",
            "missing field `content`",
        ),
        (
            "bad-choice.yaml",
            "type: vote\nconsortium: c\nproposal: p\ncontent: x\nchoice: yea\n",
            "unknown variant `yea`",
        ),
    ];
    for (name, text, needle) in cases {
        let msg = dir.path().join(name);
        std::fs::write(&msg, text).unwrap();
        let o = accord(&[
            "sign",
            &msg.display().to_string(),
            "--key",
            &dev_key("st-marys"),
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.contains("a node would refuse this message (malformed)"),
            "{err}"
        );
        assert!(err.contains(needle), "{name}: {err}");
        assert!(stdout(&o).is_empty(), "nothing signed");
    }
}

#[test]
fn a_change_without_a_base_is_not_signed_and_the_error_says_how_to_give_it() {
    let example = root().join("examples/governance/drop-uruguay.yaml");
    let o = accord(&[
        "sign",
        &example.display().to_string(),
        "--key",
        &dev_key("st-marys"),
        "--consortium",
        "health-net-dev",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("drop-uruguay.yaml") && err.contains("the active policy-set version"),
        "{err}"
    );
    assert!(err.contains("--base") && err.contains("--node"), "{err}");
    assert!(stdout(&o).is_empty(), "nothing signed");
    // With --base, the base is part of the signed message.
    let o = ok(accord(&[
        "sign",
        &example.display().to_string(),
        "--key",
        &dev_key("st-marys"),
        "--consortium",
        "health-net-dev",
        "--base",
        "sha256:1234",
    ]));
    let tx: Value = accord_engine::json::value_from_str(&stdout(&o)).unwrap();
    assert_eq!(tx["governance"]["message"]["base"], "sha256:1234");
}

#[test]
fn vote_refuses_what_it_cannot_name() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["vote"];
        all.extend_from_slice(args);
        all.extend(["--choice", "yes", "--key"]);
        let key = dev_key("st-marys");
        let mut owned: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        owned.push(key);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        let o = accord(&refs);
        assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
        assert!(stdout(&o).is_empty(), "nothing signed");
        stderr(&o)
    };
    // No content hash and no node to read it from.
    let err = run(&["sha256:ab", "--consortium", "c"]);
    assert!(
        err.contains("no content hash")
            && err.contains("--proposal-file")
            && err.contains("--node"),
        "{err}"
    );
    // No consortium and no node.
    let err = run(&["sha256:ab", "--content", "sha256:cd"]);
    assert!(err.contains("no consortium"), "{err}");
    // A proposal file that is not the proposal named.
    let message = dir.path().join("m.yaml");
    std::fs::write(
        &message,
        "type: proposal\ntitle: t\nchange: {kind: remove_member, member: member/city-lab}\n",
    )
    .unwrap();
    let signed = ok(accord(&[
        "sign",
        &message.display().to_string(),
        "--key",
        &dev_key("st-marys"),
        "--consortium",
        "c",
    ]));
    let file = dir.path().join("p.json");
    std::fs::write(&file, stdout(&signed)).unwrap();
    let err = run(&["sha256:ab", "--proposal-file", &file.display().to_string()]);
    assert!(
        err.contains("this is proposal sha256:") && err.contains("not sha256:ab"),
        "{err}"
    );
    // A node that is not there.
    let err = run(&[
        "sha256:ab",
        "--node",
        "http://127.0.0.1:9",
        "--consortium",
        "c",
    ]);
    assert!(err.contains("127.0.0.1:9"), "{err}");
    // An invalid choice is clap's to refuse.
    let o = accord(&[
        "vote",
        "sha256:ab",
        "--choice",
        "yea",
        "--key",
        &dev_key("st-marys"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("yea"), "{}", stderr(&o));
}

#[test]
fn inspect_shows_a_signed_proposal_and_whether_its_signature_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("examples/governance/drop-uruguay.yaml");
    let base = default_bundle().version().to_owned();
    let signed = ok(accord(&[
        "sign",
        &example.display().to_string(),
        "--key",
        &dev_key("st-marys"),
        "--consortium",
        "health-net-dev",
        "--base",
        &base,
        "--id",
        "gov-1",
    ]));
    let file = dir.path().join("p.json");
    std::fs::write(&file, stdout(&signed)).unwrap();
    let shown = ok(accord(&["inspect", &file.display().to_string()]));
    let v: Value = accord_engine::json::value_from_str(&stdout(&shown)).unwrap();
    assert_eq!(v["tx"], "gov-1");
    assert_eq!(v["type"], "proposal");
    assert_eq!(v["signer"], "member/st-marys");
    assert_eq!(v["signature"]["valid"], true);
    assert_eq!(v["proposal"]["kind"], "set_jurisdiction_parameters");
    assert_eq!(v["proposal"]["base"], base.as_str());
    // Built on the genesis bundle, which is at hand: the parameters old → new.
    let change = &v["proposal"]["changes"]["parameters"][0];
    assert_eq!(change["name"], "adequacy");
    assert!(change["old"].as_array().unwrap().contains(&json!("UY")));
    assert!(!change["new"].as_array().unwrap().contains(&json!("UY")));
    // `proposal show FILE` is the same.
    let again = ok(accord(&["proposal", "show", &file.display().to_string()]));
    assert_eq!(stdout(&again), stdout(&shown));

    // Tampered after signing: shown, signature invalid, exit 1.
    let mut tx: Value = accord_engine::json::value_from_str(&stdout(&signed)).unwrap();
    tx["governance"]["message"]["title"] = json!("something else");
    std::fs::write(&file, tx.to_string()).unwrap();
    let o = accord(&["inspect", &file.display().to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = accord_engine::json::value_from_str(&stdout(&o)).unwrap();
    assert_eq!(v["signature"]["valid"], false);
    // Signed by someone the genesis does not know.
    tx["governance"]["message"]["proposer"] = json!("member/nobody");
    std::fs::write(&file, tx.to_string()).unwrap();
    let o = accord(&["inspect", &file.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("`member/nobody` is not a member"),
        "{}",
        stdout(&o)
    );
    // Not decodable: what a node would refuse, exit 2.
    tx["governance"]["signature"] = json!("AAAA");
    std::fs::write(&file, tx.to_string()).unwrap();
    let o = accord(&["inspect", &file.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("malformed"), "{}", stderr(&o));
    // An id without a node.
    let o = accord(&["proposal", "show", "sha256:ab"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--node"), "{}", stderr(&o));
    let o = accord(&["proposal", "diff", "sha256:ab"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--node"), "{}", stderr(&o));
    let o = accord(&["proposal", "analyse", "sha256:ab"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--node"), "{}", stderr(&o));
}
