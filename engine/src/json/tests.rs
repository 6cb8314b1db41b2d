use super::*;
use serde_json::json;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Doc {
    action: String,
    #[serde(default)]
    attributes: Object,
}

impl Strict for Doc {}

#[test]
fn a_valid_document_is_read() {
    let doc: Doc = from_str(r#"{"action":"read","attributes":{"a":1,"b":[{"c":2}]}}"#)
        .expect("valid document");
    assert_eq!(doc.action, "read");
    assert_eq!(doc.attributes["b"], json!([{"c": 2}]));
}

#[test]
fn a_repeated_top_level_key_is_refused_with_its_name() {
    let e = from_str::<Doc>(r#"{"action":"delete","action":"read"}"#).expect_err("duplicate");
    assert_eq!(e.kind, JsonErrorKind::DuplicateKey);
    assert_eq!(e.field, "action");
    assert_eq!(
        e.reason,
        "duplicate key `action`: an object may name a key only once"
    );
}

#[test]
fn a_repeated_key_in_free_form_attributes_is_refused_with_its_path() {
    // serde_json alone keeps the last value of a map: this was read as `false`.
    let text = r#"{"action":"read","attributes":{"objected":true,"objected":false}}"#;
    let e = from_str::<Doc>(text).expect_err("duplicate");
    assert_eq!(e.kind, JsonErrorKind::DuplicateKey);
    assert_eq!(e.field, "attributes.objected");
}

#[test]
fn repeated_keys_are_found_at_any_depth_and_inside_arrays() {
    let e = value_from_str(r#"{"a":[{"x":1},{"y":1,"y":2}]}"#).expect_err("duplicate");
    assert_eq!(e.field, "a[1].y");
    let e = value_from_str(r#"[[{"k":{"k":1,"k":2}}]]"#).expect_err("duplicate");
    assert_eq!(e.field, "[0][0].k.k");
}

#[test]
fn an_escaped_spelling_of_the_same_key_is_the_same_key() {
    let e = from_str::<Doc>(r#"{"action":"delete","a\u0063tion":"read"}"#).expect_err("same key");
    assert_eq!(e.kind, JsonErrorKind::DuplicateKey);
    assert!(e.reason.contains("`action`"), "{}", e.reason);
}

#[test]
fn large_objects_are_checked_too() {
    let mut text = String::from("{");
    for i in 0..100 {
        text.push_str(&format!("\"k{i}\":{i},"));
    }
    text.push_str("\"k57\":0}");
    let e = value_from_str(&text).expect_err("k57 twice");
    assert_eq!(e.field, "k57");
    // The same object without the repeat is fine.
    let ok = text.replace(",\"k57\":0}", "}");
    assert_eq!(
        value_from_str(&ok)
            .expect("unique keys")
            .as_object()
            .map(|m| m.len()),
        Some(100)
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = value_from_str("{\n  \"a\": ?\n}").expect_err("not JSON");
    assert!(e.kind == JsonErrorKind::Syntax && e.line == 2, "{e:?}");
    assert_eq!(e.field, "a", "the field the error interrupted");
    let e = value_from_str(r#"{"a":1} {"b":2}"#).expect_err("two documents");
    assert_eq!((e.kind, e.line, e.column), (JsonErrorKind::Syntax, 1, 9));
    assert_eq!(e.reason, "trailing characters");
}

#[test]
fn a_syntax_error_after_a_repeated_key_is_still_a_syntax_error() {
    // Whatever comes first in the text decides: here the repeat.
    let e = value_from_str(r#"{"a":1,"a":2,"#).expect_err("bad");
    assert_eq!(e.kind, JsonErrorKind::DuplicateKey);
    let e = value_from_str(r#"{"a":1,"b":?,"a":2}"#).expect_err("bad");
    assert_eq!(e.kind, JsonErrorKind::Syntax, "{e:?}");
}

#[test]
fn shape_errors_name_the_field() {
    let e = from_str::<Doc>(r#"{"action":7}"#).expect_err("wrong type");
    assert_eq!(e.kind, JsonErrorKind::Shape);
    assert_eq!(e.field, "action");
    let e = from_str::<Doc>(r#"{"action":"read","extra":1}"#).expect_err("unknown field");
    assert_eq!(e.field, "extra");
    assert!(
        e.reason.starts_with("unknown field `extra`"),
        "{}",
        e.reason
    );
}

#[test]
fn display_names_the_position_or_the_field() {
    let e = value_from_str("{").expect_err("eof");
    assert!(e.to_string().starts_with("line 1 column 1: "), "{e}");
    let e = value_from_str(r#"{"a":1,"a":1}"#).expect_err("dup");
    assert_eq!(
        e.to_string(),
        "field `a`: duplicate key `a`: an object may name a key only once"
    );
}

#[test]
fn every_repeated_key_of_a_transaction_is_refused_where_it_is() {
    let value = crate::cases::deep_merge(
        crate::testing::access_json(),
        json!({
            "actor": { "attributes": { "badge": "b-7" } },
            "resource": { "patient": { "residence": "US-CA" } },
            "context": {
                "recipient": { "id": "org/lab", "type": "Organization", "country": "US" },
                "attributes": { "irb_waiver": true, "nested": { "list": [{ "k": 1 }] } }
            }
        }),
    );
    let request = crate::AccessRequest::from_json(&value.to_string()).expect("the example parses");
    assert_eq!(request.id, "tx-1");
    let variants = with_each_key_repeated(&value);
    assert_eq!(variants.len(), 10, "every object of the document");
    for (path, variant) in variants {
        let e = crate::AccessRequest::from_json(&variant).expect_err(&path);
        assert_eq!(e.field, path, "{variant}");
        assert!(
            e.reason.starts_with("duplicate key `"),
            "{path}: {}",
            e.reason
        );
    }
}

#[test]
fn a_block_refuses_a_repeated_key_in_any_of_its_transactions() {
    let block = json!({"height": 1, "transactions": [crate::testing::access_json()]});
    for (path, variant) in with_each_key_repeated(&block) {
        let e = crate::ledger::Block::from_json(&variant).expect_err(&path);
        assert_eq!(e.field, path, "{variant}");
    }
}

#[test]
fn the_repetition_helper_repeats_each_objects_first_key_once() {
    let variants = with_each_key_repeated(&json!({"a": {"b": 1}, "c": [{"d": 2}]}));
    let paths: Vec<&str> = variants.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["a", "a.b", "c[0].d"]);
    assert_eq!(variants[1].1, r#"{"a":{"b":1,"b":1},"c":[{"d":2}]}"#);
}
