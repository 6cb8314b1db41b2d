use super::*;
use serde_json::json;

#[test]
fn canonical_json_sorts_keys_at_every_level() {
    let value: Value = crate::json::value_from_str(
        r#"{ "b": 1, "a": { "z": [ { "y": true, "x": null } ], "c": "é\"" }, "A": 2.5 }"#,
    )
    .expect("valid JSON");
    assert_eq!(
        canonical_json(&value),
        r#"{"A":2.5,"a":{"c":"é\"","z":[{"x":null,"y":true}]},"b":1}"#
    );
}

#[test]
fn block_hash_does_not_depend_on_key_order() {
    let one = r#"{ "height": 3, "previous": "sha256:ab",
                   "transactions": [ { "id": "tx-1", "kind": "consent", "consent": { "id": "c", "patient": "p" } } ] }"#;
    let two = r#"{ "transactions": [ { "consent": { "patient": "p", "id": "c" }, "kind": "consent", "id": "tx-1" } ],
                   "previous": "sha256:ab", "height": 3 }"#;
    let parse = |text: &str| {
        Block::from_value(crate::json::parse_str(text).expect("valid JSON")).expect("valid block")
    };
    let (a, b) = (parse(one), parse(two));
    assert_eq!(a.hash(), b.hash());
    assert!(a.hash().starts_with("sha256:"));
    // Content still counts: another height, another previous, another value differ.
    let mut c = a.clone();
    c.height = 4;
    assert_ne!(a.hash(), c.hash());
    let mut d = a.clone();
    d.previous = None;
    assert_ne!(a.hash(), d.hash());
    let e = parse(&one.replace("\"p\"", "\"q\""));
    assert_ne!(a.hash(), e.hash());
}

#[test]
fn block_from_value_is_strict() {
    let unknown = Block::from_value(json!({ "height": 1, "transactions": [], "hash": "x" }))
        .expect_err("unknown field");
    assert_eq!(unknown.field, "hash");
    let missing = Block::from_value(json!({ "height": 1 })).expect_err("missing transactions");
    let negative = Block::from_value(json!({ "height": -1, "transactions": [] }))
        .expect_err("negative height");
    assert_eq!(negative.field, "height");
    insta::assert_snapshot!(format!("{unknown}\n{missing}\n{negative}"));
}

#[test]
fn block_hash_is_the_hash_of_the_blocks_canonical_json() {
    // The hash writes the block field by field; it must equal hashing the block's canonical JSON.
    use sha2::{Digest, Sha256};
    let block = Block {
        height: 7,
        previous: Some("sha256:ab\"c".into()),
        transactions: vec![json!({ "z": 1, "a": ["é", null] }), json!({ "id": "tx" })],
    };
    for b in [
        block.clone(),
        Block {
            previous: None,
            ..block
        },
    ] {
        let value = serde_json::to_value(&b).expect("serializes");
        let mut hasher = Sha256::new();
        hasher.update(b"accord/block/v1\0");
        hasher.update(canonical_json(&value).as_bytes());
        assert_eq!(
            b.hash(),
            format!("sha256:{}", hex::encode(hasher.finalize()))
        );
    }
}

/// A block of `n` consent grants (cheap to parse, each different).
fn grants(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({ "id": format!("tx-{i}"), "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
                "consent": { "id": format!("consent/c-{i}"), "status": "active",
                "patient": "patient/p", "grantee": "org/o", "purposes": ["TREAT"],
                "actions": ["read"], "data_categories": ["general"] } })
        })
        .collect()
}

#[test]
fn a_prepared_block_has_the_blocks_hash_and_its_transactions_in_order() {
    // Long enough to be split over threads; the hash and the order must not depend on it.
    for n in [0, 1, 5, 200] {
        let block = Block {
            height: 9,
            previous: Some("sha256:ff".into()),
            transactions: grants(n),
        };
        let hash = block.hash();
        let text = serde_json::to_string(&block.transactions).expect("serializes");
        let raws: Vec<&serde_json::value::RawValue> =
            crate::json::from_str(&text).expect("raw values");
        let from_raw = PreparedBlock::from_raw(9, Some("sha256:ff".into()), raws);
        let prepared = block.prepare();
        for p in [&prepared, &from_raw] {
            assert_eq!(p.hash, hash, "n={n}");
            let ids: Vec<String> = p
                .transactions
                .as_ref()
                .expect("valid")
                .iter()
                .map(|t| match t {
                    Transaction::Consent(c) => c.id.clone(),
                    other => panic!("not a consent: {other:?}"),
                })
                .collect();
            assert_eq!(ids, (0..n).map(|i| format!("tx-{i}")).collect::<Vec<_>>());
        }
    }
}

#[test]
fn a_prepared_block_names_its_first_invalid_transaction_in_block_order() {
    let mut transactions = grants(200);
    transactions[150] = json!({ "id": "late", "kind": "sideways" });
    transactions[120] = json!({ "id": "early", "kind": "consent" });
    let block = Block {
        height: 1,
        previous: None,
        transactions,
    };
    let hash = block.hash();
    let prepared = block.prepare();
    // The hash covers the block as received, invalid or not (a replay check needs it).
    assert_eq!(prepared.hash, hash);
    let err = prepared
        .transactions
        .expect_err("transaction 120 is invalid");
    assert!(err.field.starts_with("transactions[120]"), "{err}");
}
