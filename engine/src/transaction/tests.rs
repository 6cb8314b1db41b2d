use super::values::BirthDate;
use super::*;
use crate::consent::ConsentStatus;
use crate::testing;
use serde_json::json;
use time::macros::date;

/// The access transaction of docs/contract.md §1, verbatim.
const CONTRACT_EXAMPLE: &str = r#"{
  "id": "tx-000123",
  "kind": "access",
  "timestamp": "2026-03-01T10:00:00Z",
  "actor": {
    "id": "practitioner/alice",
    "type": "Practitioner",
    "organization": "org/st-marys",
    "roles": ["physician"],
    "jurisdiction": "US-CA",
    "attributes": {}
  },
  "action": "read",
  "resource": {
    "id": "Observation/obs-88",
    "type": "Observation",
    "patient": { "id": "patient/p-1", "birth_date": "2011-05-01", "residence": "DE" },
    "data_categories": ["general"],
    "jurisdiction": "EU-DE",
    "hash": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "location": "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
    "fields": ["code", "value", "subject"]
  },
  "context": {
    "purpose_of_use": "TREAT",
    "legal_basis": "consent",
    "recipient": { "id": "org/uni-lab", "type": "Organization", "country": "US" },
    "break_glass": false,
    "treating_relationship": true,
    "attributes": {}
  }
}"#;

fn parse(value: serde_json::Value) -> AccessRequest {
    AccessRequest::from_json(&value.to_string()).expect("transaction must parse")
}

fn parse_err(text: &str) -> TransactionError {
    match AccessRequest::from_json(text) {
        Ok(r) => panic!("must be refused, parsed as {r:?}"),
        Err(e) => e,
    }
}

/// `testing::access_json()` with `patch` merged over it, as text.
fn patched(patch: serde_json::Value) -> String {
    crate::cases::deep_merge(testing::access_json(), patch).to_string()
}

fn birth(text: &str) -> BirthDate {
    BirthDate::try_from(text.to_owned()).expect("valid birth date")
}

fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("valid timestamp")
}

#[test]
fn contract_example_parses_with_every_field() {
    let r =
        AccessRequest::from_json(CONTRACT_EXAMPLE).expect("docs/contract.md §1 example must parse");
    assert_eq!(r.id, "tx-000123");
    assert_eq!(r.timestamp.as_str(), "2026-03-01T10:00:00Z");
    assert_eq!(r.actor.kind, ActorType::Practitioner);
    assert_eq!(r.actor.organization.as_deref(), Some("org/st-marys"));
    assert_eq!(r.actor.roles, vec!["physician"]);
    assert_eq!(
        r.actor.jurisdiction.as_ref().map(|j| j.as_str()),
        Some("US-CA")
    );
    assert_eq!(r.action, Action::Read);
    assert_eq!(r.resource.kind.as_str(), "Observation");
    let patient = r.resource.patient.as_ref().expect("patient");
    assert_eq!(patient.id, "patient/p-1");
    assert_eq!(patient.birth_date, Some(birth("2011-05-01")));
    assert_eq!(patient.residence.as_ref().map(|j| j.as_str()), Some("DE"));
    assert_eq!(r.data_categories(), vec![DataCategory::General]);
    assert_eq!(
        r.resource.jurisdiction.as_ref().map(|j| j.as_str()),
        Some("EU-DE")
    );
    assert!(r.resource.hash.is_some());
    assert_eq!(r.resource.fields.as_ref().map(Vec::len), Some(3));
    assert_eq!(
        r.context.purpose_of_use.as_ref().map(|p| p.as_str()),
        Some("TREAT")
    );
    assert_eq!(r.context.legal_basis, Some(LegalBasis::Consent));
    let recipient = r.context.recipient.as_ref().expect("recipient");
    assert_eq!(recipient.id, "org/uni-lab");
    assert_eq!(recipient.kind, Some(ActorType::Organization));
    assert_eq!(recipient.country.as_ref().map(|c| c.as_str()), Some("US"));
    assert!(!r.context.break_glass);
    assert!(r.context.treating_relationship);
}

#[test]
fn contract_example_round_trips_through_serde() {
    let r = AccessRequest::from_json(CONTRACT_EXAMPLE).expect("parses");
    let text = serde_json::to_string(&r).expect("serializes");
    assert_eq!(AccessRequest::from_json(&text).expect("re-parses"), r);
}

#[test]
fn optional_fields_may_be_left_out() {
    let minimal = json!({
        "id": "tx-2", "kind": "access", "timestamp": "2026-03-01T10:00:00Z",
        "actor": { "id": "device/pump-1", "type": "Device" },
        "action": "anchor",
        "resource": { "id": "Observation/1", "type": "Observation" }
    });
    let r = parse(minimal);
    assert_eq!(r.context, RequestContext::default());
    assert_eq!(r.patient_id(), None);
    assert_eq!(r.data_categories(), vec![DataCategory::General]);
}

/// Each bad input is refused with an error whose `field` names the offending field. The messages
/// are snapshotted together so a reviewer sees at a glance what a user would read.
#[test]
fn bad_inputs_are_refused_naming_the_field() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "malformed JSON",
            r#"{"id": "tx-1", "kind": "#.to_owned(),
            "kind",
        ),
        ("not an object", r#""tx-1""#.to_owned(), "."),
        (
            "unknown top-level field",
            patched(json!({ "extra": 1 })),
            "extra",
        ),
        (
            "unknown nested field",
            patched(json!({ "actor": { "foo": "bar" } })),
            "actor.foo",
        ),
        (
            "unknown context field",
            patched(json!({ "context": { "consent": true } })),
            "context.consent",
        ),
        (
            "missing timestamp",
            {
                let mut v = testing::access_json();
                v.as_object_mut().expect("object").remove("timestamp");
                v.to_string()
            },
            ".",
        ),
        (
            "wrong kind for access",
            patched(json!({ "kind": "consent" })),
            "kind",
        ),
        (
            "unknown action",
            patched(json!({ "action": "destroy" })),
            "action",
        ),
        (
            "unknown actor type",
            patched(json!({ "actor": { "type": "Nurse" } })),
            "actor.type",
        ),
        (
            "unknown data category",
            patched(json!({ "resource": { "data_categories": ["general", "psychiatric"] } })),
            "resource.data_categories[1]",
        ),
        (
            "lower-case FHIR type",
            patched(json!({ "resource": { "type": "observation" } })),
            "resource.type",
        ),
        (
            "timestamp month 13",
            patched(json!({ "timestamp": "2026-13-01T00:00:00Z" })),
            "timestamp",
        ),
        (
            "timestamp in words",
            patched(json!({ "timestamp": "yesterday" })),
            "timestamp",
        ),
        (
            "timestamp without offset",
            patched(json!({ "timestamp": "2026-03-01T10:00:00" })),
            "timestamp",
        ),
        (
            "birth date 30 Feb",
            patched(json!({ "resource": { "patient": { "birth_date": "2011-02-30" } } })),
            "resource.patient.birth_date",
        ),
        (
            "birth date not ISO",
            patched(json!({ "resource": { "patient": { "birth_date": "01/05/2011" } } })),
            "resource.patient.birth_date",
        ),
        (
            "jurisdiction of three letters",
            patched(json!({ "actor": { "jurisdiction": "usa" } })),
            "actor.jurisdiction",
        ),
        (
            "jurisdiction with empty subdivision",
            patched(json!({ "resource": { "jurisdiction": "US-" } })),
            "resource.jurisdiction",
        ),
        (
            "lower-case residence",
            patched(json!({ "resource": { "patient": { "residence": "de" } } })),
            "resource.patient.residence",
        ),
        (
            "recipient country too long",
            patched(json!({ "context": { "recipient": { "id": "org/x", "country": "USA" } } })),
            "context.recipient.country",
        ),
        (
            "hash with upper-case hex",
            patched(
                json!({ "resource": { "hash": "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08" } }),
            ),
            "resource.hash",
        ),
        (
            "hash of wrong length",
            patched(json!({ "resource": { "hash": "sha256:9f86d0" } })),
            "resource.hash",
        ),
        (
            "hash of other algorithm",
            patched(json!({ "resource": { "hash": "md5:9f86d081884c7d659a2feaa0c55ad015" } })),
            "resource.hash",
        ),
        (
            "lower-case purpose",
            patched(json!({ "context": { "purpose_of_use": "treat" } })),
            "context.purpose_of_use",
        ),
        (
            "unknown legal basis",
            patched(json!({ "context": { "legal_basis": "Consent" } })),
            "context.legal_basis",
        ),
        ("empty id", patched(json!({ "id": "" })), "id"),
        ("blank id", patched(json!({ "id": "   " })), "id"),
        (
            "empty actor id",
            patched(json!({ "actor": { "id": "" } })),
            "actor.id",
        ),
        (
            "empty resource id",
            patched(json!({ "resource": { "id": "" } })),
            "resource.id",
        ),
        (
            "empty patient id",
            patched(json!({ "resource": { "patient": { "id": "" } } })),
            "resource.patient.id",
        ),
        (
            "empty recipient id",
            patched(json!({ "context": { "recipient": { "id": "" } } })),
            "context.recipient.id",
        ),
        (
            "boolean attribute given as text",
            patched(json!({ "context": { "attributes": { "irb_waiver": "yes" } } })),
            "context.attributes.irb_waiver",
        ),
        (
            "string attribute given as boolean",
            patched(json!({ "context": { "attributes": { "transfer_safeguard": true } } })),
            "context.attributes.transfer_safeguard",
        ),
        (
            "legal instrument without its citation",
            patched(json!({ "context": { "legal_instrument": { "jurisdiction": "EU-DE" } } })),
            "context.legal_instrument",
        ),
        (
            "legal instrument with a blank citation",
            patched(
                json!({ "context": { "legal_instrument": { "jurisdiction": "EU-DE", "citation": " " } } }),
            ),
            "context.legal_instrument.citation",
        ),
        (
            "legal instrument of no jurisdiction",
            patched(
                json!({ "context": { "legal_instrument": { "jurisdiction": "Germany", "citation": "IfSG § 12" } } }),
            ),
            "context.legal_instrument.jurisdiction",
        ),
        (
            "legal claim in an unknown procedure",
            patched(
                json!({ "context": { "legal_claim": { "reference": "LG Köln 25 O 1/26", "procedure": "arbitrary" } } }),
            ),
            "context.legal_claim.procedure",
        ),
        (
            "legal claim with a blank reference",
            patched(
                json!({ "context": { "legal_claim": { "reference": "", "procedure": "judicial" } } }),
            ),
            "context.legal_claim.reference",
        ),
    ];
    let mut report = String::new();
    let mut wrong = Vec::new();
    for (name, text, field) in &cases {
        let err = parse_err(text);
        if err.field != *field {
            wrong.push(format!("{name}: expected field `{field}`, got {err}"));
        }
        // serde's " at line L column C" helps a user find the spot, but depends on the fixture's
        // layout; it is checked on its own in `syntax_errors_give_line_and_column`.
        report.push_str(&format!("{name}: {}\n", without_position(&err.to_string())));
    }
    assert!(wrong.is_empty(), "wrong fields:\n{}", wrong.join("\n"));
    insta::assert_snapshot!(report);
}

fn without_position(message: &str) -> &str {
    match message.rsplit_once(" at line ") {
        Some((head, tail)) if tail.contains(" column ") => head,
        _ => message,
    }
}

#[test]
fn syntax_errors_give_line_and_column() {
    let err = parse_err("{\n  \"id\": \"tx-1\",\n  \"kind\": \"acces\"\n}");
    assert_eq!(err.field, "kind");
    assert!(
        err.reason.ends_with("at line 3 column 17"),
        "position must point at the bad value: {err}"
    );
}

#[test]
fn text_after_the_transaction_is_refused() {
    let text = format!("{} {{\"id\": \"tx-2\"}}", CONTRACT_EXAMPLE.trim());
    let err = parse_err(&text);
    assert_eq!(err.field, ".");
    assert_eq!(without_position(&err.reason), "trailing characters");
    // Whitespace after the object is fine.
    let padded = format!("{}\n\n", CONTRACT_EXAMPLE.trim());
    assert!(AccessRequest::from_json(&padded).is_ok());
}

#[test]
fn free_form_attributes_accept_any_keys() {
    // Only the engine's typed attributes are checked; everything else under `attributes` is free.
    let r = parse(crate::cases::deep_merge(
        testing::access_json(),
        json!({ "actor": { "attributes": { "badge": 7 } },
                "context": { "attributes": { "study": { "arm": "B" }, "irb_waiver": true } } }),
    ));
    assert_eq!(r.actor.attributes.get("badge"), Some(&json!(7)));
    assert_eq!(r.context.attributes.get("irb_waiver"), Some(&json!(true)));
}

fn from_value_err(value: serde_json::Value) -> TransactionError {
    match Transaction::from_value(value) {
        Ok(t) => panic!("must be refused, parsed as {t:?}"),
        Err(e) => e,
    }
}

#[test]
fn from_value_refuses_missing_or_unknown_kind() {
    let mut missing = testing::access_json();
    missing.as_object_mut().expect("object").remove("kind");
    let missing = from_value_err(missing);
    let not_string = from_value_err(crate::cases::deep_merge(
        testing::access_json(),
        json!({ "kind": 5 }),
    ));
    let unknown = from_value_err(crate::cases::deep_merge(
        testing::access_json(),
        json!({ "kind": "audit" }),
    ));
    for e in [&missing, &not_string, &unknown] {
        assert_eq!(e.field, "kind");
    }
    insta::assert_snapshot!(format!("{missing}\n{not_string}\n{unknown}"));
}

#[test]
fn from_value_parses_access_and_runs_its_checks() {
    let tx = Transaction::from_value(testing::access_json()).expect("access parses");
    assert!(matches!(&tx, Transaction::Access(r) if r.id == "tx-1"));
    assert_eq!(tx.id(), "tx-1");
    // The checks serde cannot express run on this path too, not only in `from_json`.
    let bad = crate::cases::deep_merge(
        testing::access_json(),
        json!({ "context": { "attributes": { "irb_waiver": "yes" } } }),
    );
    assert_eq!(from_value_err(bad).field, "context.attributes.irb_waiver");
    assert_eq!(
        from_value_err(crate::cases::deep_merge(
            testing::access_json(),
            json!({ "id": "" })
        ))
        .field,
        "id"
    );
}

#[test]
fn from_value_parses_consent_kind_as_consent_transaction() {
    // docs/contract.md §3 example.
    let value = json!({ "id": "tx-7", "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
      "consent": { "id": "consent/c-1", "status": "active", "patient": "patient/p-1",
                   "grantee": "org/uni-lab", "purposes": ["HRESCH"], "actions": ["read", "share"],
                   "data_categories": ["general", "genetic"],
                   "period": { "start": "2026-02-01T00:00:00Z", "end": "2027-02-01T00:00:00Z" } } });
    let tx = Transaction::from_value(value).expect("consent parses");
    assert_eq!(tx.id(), "tx-7");
    let Transaction::Consent(c) = tx else {
        panic!("kind consent must give Transaction::Consent, got {tx:?}");
    };
    assert_eq!(c.consent.id, "consent/c-1");
    assert_eq!(c.consent.status, ConsentStatus::Active);
    assert_eq!(c.consent.grantee.as_deref(), Some("org/uni-lab"));
    assert_eq!(c.consent.actions, vec![Action::Read, Action::Share]);
    assert_eq!(
        c.consent.data_categories,
        vec![DataCategory::General, DataCategory::Genetic]
    );
    let period = c.consent.period.expect("period");
    assert_eq!(
        period.start.map(|s| s.unix()),
        Some(ts("2026-02-01T00:00:00Z").unix())
    );
}

#[test]
fn consent_transaction_with_unknown_field_is_refused() {
    let value = json!({ "id": "tx-7", "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
      "consent": { "id": "consent/c-1", "status": "revoked", "patient": "patient/p-1", "reason": "moved" } });
    let err = from_value_err(value);
    assert_eq!(err.field, "consent.reason");
    let bad_status = json!({ "id": "tx-7", "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
      "consent": { "id": "consent/c-1", "status": "paused", "patient": "patient/p-1" } });
    assert_eq!(from_value_err(bad_status).field, "consent.status");
}

#[test]
fn from_value_keeps_governance_message_whole() {
    let governance = json!({ "message": { "type": "vote", "consortium": "health-net",
                                          "proposal": "p-1", "voter": "member/st-marys", "choice": "yes" },
                             "signature": "c2lnbmF0dXJl" });
    let value = json!({ "id": "tx-9", "kind": "governance", "timestamp": "2026-03-02T08:00:00Z",
                        "governance": governance.clone() });
    let tx = Transaction::from_value(value).expect("governance parses");
    assert_eq!(tx.id(), "tx-9");
    let Transaction::Governance(g) = tx else {
        panic!("kind governance must give Transaction::Governance, got {tx:?}");
    };
    assert_eq!(
        g.governance, governance,
        "the engine must not reinterpret the message"
    );
}

#[test]
fn within_prefixes_the_field_path() {
    let e = TransactionError::new("actor.type", "bad").within("transactions[1]");
    assert_eq!(e.field, "transactions[1].actor.type");
    // The document itself (`.`) becomes the parent path, not `transactions[1]..`.
    let e = TransactionError::new(".", "bad").within("transactions[0]");
    assert_eq!(e.field, "transactions[0]");
    assert_eq!(e.to_string(), "field `transactions[0]`: bad");
}

#[test]
fn data_categories_default_to_general_and_are_sorted_and_deduplicated() {
    let absent = parse(crate::cases::deep_merge(
        testing::access_json(),
        json!({ "resource": { "data_categories": null } }),
    ));
    assert_eq!(absent.data_categories(), vec![DataCategory::General]);
    let empty = testing::access(json!({ "resource": { "data_categories": [] } }));
    assert_eq!(empty.data_categories(), vec![DataCategory::General]);
    let messy = testing::access(
        json!({ "resource": { "data_categories": ["hiv", "general", "hiv", "mental-health"] } }),
    );
    // Sorted by declaration order of the enum (docs/contract.md §1's listing), duplicates dropped.
    assert_eq!(
        messy.data_categories(),
        vec![
            DataCategory::General,
            DataCategory::MentalHealth,
            DataCategory::Hiv
        ]
    );
    // A record that names only special categories does not gain `general`.
    let special = testing::access(json!({ "resource": { "data_categories": ["genetic"] } }));
    assert_eq!(special.data_categories(), vec![DataCategory::Genetic]);
}

#[test]
fn grantee_is_recipient_for_share_and_export() {
    let recipient = json!({ "context": { "recipient": { "id": "org/uni-lab", "country": "US" } } });
    for action in ["share", "export"] {
        let r = testing::access(crate::cases::deep_merge(
            recipient.clone(),
            json!({ "action": action }),
        ));
        assert_eq!(r.grantee(), "org/uni-lab", "{action}");
    }
    // A share without a recipient names nobody, so no consent (whose grantee is never empty) matches.
    let r = testing::access(json!({ "action": "share" }));
    assert_eq!(r.grantee(), "");
}

#[test]
fn grantee_is_actor_organization_otherwise() {
    let with_recipient = json!({ "context": { "recipient": { "id": "org/uni-lab" } } });
    for action in ["read", "write", "amend", "delete", "de-identify", "anchor"] {
        let r = testing::access(crate::cases::deep_merge(
            with_recipient.clone(),
            json!({ "action": action }),
        ));
        assert_eq!(r.grantee(), "org/st-marys", "{action}");
    }
    // An actor without an organization (e.g. an independent researcher) is the grantee itself.
    let r = testing::access(json!({ "actor": { "organization": null } }));
    assert_eq!(r.grantee(), "practitioner/alice");
}

#[test]
fn actor_is_subject_only_when_actor_is_the_patient() {
    let own = testing::access(json!({ "actor": { "id": "patient/p-1", "type": "Patient" } }));
    assert!(own.actor_is_subject());
    let other = testing::access(json!({}));
    assert!(!other.actor_is_subject());
    let no_patient = testing::access(json!({ "actor": { "id": "patient/p-1", "type": "Patient" },
                                             "resource": { "patient": null } }));
    assert!(
        !no_patient.actor_is_subject(),
        "no named patient means not established"
    );
}

#[test]
fn age_on_counts_completed_years() {
    let born = birth("2011-05-01");
    assert_eq!(
        born.age_on(date!(2027 - 04 - 30)),
        15,
        "day before the 16th birthday"
    );
    assert_eq!(
        born.age_on(date!(2027 - 05 - 01)),
        16,
        "on the 16th birthday"
    );
    assert_eq!(born.age_on(date!(2027 - 05 - 02)), 16);
    assert_eq!(born.age_on(date!(2011 - 05 - 01)), 0, "day of birth");
}

#[test]
fn age_on_leap_day_birthday_advances_on_first_of_march_in_common_years() {
    let born = birth("2008-02-29");
    assert_eq!(born.age_on(date!(2024 - 02 - 28)), 15);
    assert_eq!(
        born.age_on(date!(2024 - 02 - 29)),
        16,
        "leap year: the birthday itself"
    );
    assert_eq!(
        born.age_on(date!(2025 - 02 - 28)),
        16,
        "common year: not yet on 28 Feb"
    );
    assert_eq!(
        born.age_on(date!(2025 - 03 - 01)),
        17,
        "common year: on 1 March"
    );
}

#[test]
fn birth_date_round_trips_as_iso_text() {
    assert_eq!(String::from(birth("0999-01-09")), "0999-01-09");
}

#[test]
fn timestamp_offsets_normalise_to_the_same_instant() {
    let plus_one = ts("2026-03-01T11:00:00+01:00");
    let utc = ts("2026-03-01T10:00:00Z");
    assert_eq!(plus_one.unix(), utc.unix());
    assert_eq!(utc.unix(), 1_772_359_200);
    // The caller's text is kept for output.
    assert_eq!(plus_one.as_str(), "2026-03-01T11:00:00+01:00");
    // The date is the UTC date, so a rule on "days" does not depend on the caller's offset.
    assert_eq!(
        ts("2026-03-01T00:30:00+01:00").date(),
        date!(2026 - 02 - 28)
    );
}

#[test]
fn format_unix_writes_utc_rfc3339() {
    assert_eq!(
        Timestamp::format_unix(1_772_359_200).as_deref(),
        Some("2026-03-01T10:00:00Z")
    );
    assert_eq!(Timestamp::format_unix(i64::MAX), None);
}
