use super::*;
use crate::consent::{ConsentQuery, ConsentRegistry, InMemoryConsentRegistry};
use crate::transaction::{Action, Timestamp, Transaction};
use serde_json::{json, Value};

const PATIENT: &str = "patient/p-1";
const MOTHER: &str = "related/mother";

fn ts(text: &str) -> i64 {
    Timestamp::parse(text).expect("valid timestamp").unix()
}

fn purpose(code: &str) -> PurposeOfUse {
    PurposeOfUse::try_from(code.to_owned()).expect("valid purpose")
}

fn parse(value: Value) -> Result<Transaction, crate::transaction::TransactionError> {
    Transaction::from_value(value)
}

fn representation_tx(tx: &str, record: Value) -> RepresentationTransaction {
    match parse(
        json!({ "id": tx, "kind": "representation", "timestamp": "2026-02-01T09:00:00Z",
                        "representation": record }),
    ) {
        Ok(Transaction::Representation(r)) => r,
        other => panic!("fixture representation must parse: {other:?}"),
    }
}

fn agreement_tx(tx: &str, record: Value) -> AgreementTransaction {
    match parse(
        json!({ "id": tx, "kind": "agreement", "timestamp": "2026-02-01T09:00:00Z",
                        "agreement": record }),
    ) {
        Ok(Transaction::Agreement(a)) => a,
        other => panic!("fixture agreement must parse: {other:?}"),
    }
}

/// The mother of patient/p-1 as her personal representative, 2026-02-01 to 2027-02-01.
fn mother(tx: &str, patch: Value) -> RepresentationTransaction {
    let base = json!({ "id": "rep/1", "status": "active", "patient": PATIENT,
                       "representative": MOTHER, "basis": "parent",
                       "period": { "start": "2026-02-01T00:00:00Z", "end": "2027-02-01T00:00:00Z" } });
    representation_tx(tx, crate::cases::deep_merge(base, patch))
}

const ALL_ASSURANCES: [&str; 5] = [
    "no-other-use-or-disclosure",
    "safeguards",
    "report-violations",
    "agents-bound",
    "no-identification-or-contact",
];

/// A data use agreement between org/st-marys and org/uni-lab for research.
fn dua(tx: &str, patch: Value) -> AgreementTransaction {
    let base = json!({ "id": "dua/1", "status": "active", "type": "data-use-agreement",
                       "discloser": "org/st-marys", "recipient": "org/uni-lab",
                       "purposes": ["HRESCH"], "assurances": ALL_ASSURANCES });
    agreement_tx(tx, crate::cases::deep_merge(base, patch))
}

fn represents(
    relations: &InMemoryRelations,
    representative: &str,
    at: &str,
) -> RepresentationFacts {
    relations.representation_facts(&RepresentationQuery {
        patient: PATIENT,
        representative,
        at: ts(at),
    })
}

#[test]
fn representation_and_agreement_transactions_parse_strictly() {
    let unknown = parse(
        json!({ "id": "t", "kind": "representation", "timestamp": "2026-02-01T09:00:00Z",
        "representation": { "id": "rep/1", "status": "active", "patient": PATIENT,
                            "representative": MOTHER, "basis": "parent", "role": "mum" } }),
    )
    .expect_err("unknown field");
    assert_eq!(unknown.field, "representation.role");
    assert!(unknown.reason.contains("unknown field `role`"), "{unknown}");

    let basis = parse(
        json!({ "id": "t", "kind": "representation", "timestamp": "2026-02-01T09:00:00Z",
        "representation": { "id": "rep/1", "status": "active", "patient": PATIENT,
                            "representative": MOTHER, "basis": "aunt" } }),
    )
    .expect_err("unknown basis");
    assert_eq!(basis.field, "representation.basis");

    let kind = parse(
        json!({ "id": "t", "kind": "agreement", "timestamp": "2026-02-01T09:00:00Z",
        "agreement": { "id": "a", "status": "active", "type": "handshake" } }),
    )
    .expect_err("unknown agreement type");
    assert_eq!(kind.field, "agreement.type");

    let assurance = parse(
        json!({ "id": "t", "kind": "agreement", "timestamp": "2026-02-01T09:00:00Z",
        "agreement": { "id": "a", "status": "active", "assurances": ["best-efforts"] } }),
    )
    .expect_err("unknown assurance");
    assert_eq!(assurance.field, "agreement.assurances[0]");

    assert_eq!(
        mother("t", json!({})).representation.basis,
        Some(RepresentationBasis::Parent)
    );
    assert_eq!(
        parse(serde_json::to_value(dua("t", json!({}))).expect("serializes"))
            .expect("round trip")
            .kind(),
        "agreement"
    );
}

#[test]
fn invalid_records_are_refused_naming_the_field() {
    let mut relations = InMemoryRelations::new();
    let cases = [
        (
            mother("t", json!({ "representative": " " })),
            "representation.representative",
        ),
        (
            mother("t", json!({ "representative": PATIENT })),
            "representation.representative",
        ),
        (
            mother("t", json!({ "basis": null })),
            "representation.basis",
        ),
        (
            mother(
                "t",
                json!({ "period": { "start": "2027-02-01T00:00:00Z" } }),
            ),
            "representation.period.end",
        ),
        (
            mother("t", json!({ "patient": "" })),
            "representation.patient",
        ),
    ];
    for (tx, field) in cases {
        match relations.apply_representation(&tx) {
            Err(RelationError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected a refusal, got {other:?}"),
        }
    }
    let cases = [
        (dua("t", json!({ "type": null })), "agreement.type"),
        (
            dua("t", json!({ "discloser": null })),
            "agreement.discloser",
        ),
        (
            dua("t", json!({ "recipient": "org/st-marys" })),
            "agreement.recipient",
        ),
        (dua("t", json!({ "purposes": [] })), "agreement.purposes"),
        (
            dua("t", json!({ "assurances": ["safeguards"] })),
            "agreement.assurances",
        ),
    ];
    for (tx, field) in cases {
        match relations.apply_agreement(&tx) {
            Err(RelationError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected a refusal, got {other:?}"),
        }
    }
    let missing = relations
        .apply_agreement(&dua(
            "t",
            json!({ "assurances": ["safeguards", "agents-bound"] }),
        ))
        .expect_err("incomplete")
        .to_string();
    assert_eq!(
        missing,
        "agreement `dua/1`: field `agreement.assurances`: a data use agreement must contain every assurance of 45 CFR 164.514(e)(4)(ii)(C); missing: no-other-use-or-disclosure, report-violations, no-identification-or-contact"
    );
    assert_eq!(
        relations.digests(),
        InMemoryRelations::new().digests(),
        "nothing applied"
    );
}

#[test]
fn a_representation_in_force_names_its_representative_and_basis() {
    let mut relations = InMemoryRelations::new();
    relations
        .apply_representation(&mother("tx-1", json!({})))
        .expect("applies");
    relations
        .apply_representation(&representation_tx(
            "tx-2",
            json!({ "id": "rep/2", "status": "active", "patient": PATIENT,
                    "representative": MOTHER, "basis": "guardian" }),
        ))
        .expect("applies");
    let facts = represents(&relations, MOTHER, "2026-03-01T10:00:00Z");
    assert!(facts.represents());
    assert_eq!(
        facts.bases,
        vec![RepresentationBasis::Parent, RepresentationBasis::Guardian]
    );
    assert_eq!(facts.ids, vec!["rep/1", "rep/2"]);
    // Another person, another patient, or outside the period: not established.
    assert!(!represents(&relations, "related/uncle", "2026-03-01T10:00:00Z").represents());
    assert!(!relations
        .representation_facts(&RepresentationQuery {
            patient: "patient/p-2",
            representative: MOTHER,
            at: ts("2026-03-01T10:00:00Z"),
        })
        .represents());
    let later = represents(&relations, MOTHER, "2027-03-01T10:00:00Z");
    assert_eq!(later.ids, vec!["rep/2"], "rep/1 ended with its period");
}

#[test]
fn revocation_ends_a_representation_and_refusals_change_nothing() {
    let mut relations = InMemoryRelations::new();
    let unknown = relations.apply_representation(&representation_tx(
        "tx-0",
        json!({ "id": "rep/1", "status": "revoked", "patient": PATIENT }),
    ));
    assert!(
        matches!(unknown, Err(RelationError::Unknown { .. })),
        "{unknown:?}"
    );
    relations
        .apply_representation(&mother("tx-1", json!({})))
        .expect("applies");
    let other_patient = relations.apply_representation(&representation_tx(
        "tx-2",
        json!({ "id": "rep/1", "status": "revoked", "patient": "patient/p-2" }),
    ));
    assert!(matches!(other_patient, Err(RelationError::Mismatch { .. })));
    relations
        .apply_representation(&representation_tx(
            "tx-3",
            json!({ "id": "rep/1", "status": "revoked", "patient": PATIENT }),
        ))
        .expect("revokes");
    assert!(!represents(&relations, MOTHER, "2026-03-01T10:00:00Z").represents());
    let before = relations.digests();
    let again = relations.apply_representation(&mother("tx-4", json!({})));
    assert_eq!(
        again.expect_err("already revoked").to_string(),
        "representation `rep/1`: already ended by transaction `tx-3`; record a new one with a new id"
    );
    assert_eq!(relations.digests(), before);
    assert_eq!(
        relations
            .representation("rep/1")
            .and_then(|e| e.revoked_by.as_deref()),
        Some("tx-3")
    );
}

#[test]
fn a_data_use_agreement_binds_its_parties_for_its_purposes() {
    let mut relations = InMemoryRelations::new();
    relations
        .apply_agreement(&dua("tx-1", json!({})))
        .expect("applies");
    let research = purpose("HRESCH");
    let operations = purpose("HOPERAT");
    let at = ts("2026-03-01T10:00:00Z");
    let query = |relations: &InMemoryRelations,
                 disclosers: &[&str],
                 recipients: &[&str],
                 p: &PurposeOfUse| {
        relations
            .agreement_facts(&AgreementQuery {
                disclosers,
                recipients,
                purpose: Some(p),
                at,
            })
            .data_use_agreements
    };
    assert_eq!(
        query(&relations, &["org/st-marys"], &["org/uni-lab"], &research),
        vec!["dua/1"]
    );
    // The recipient's own use: any discloser.
    assert_eq!(
        query(
            &relations,
            &[],
            &["practitioner/x", "org/uni-lab"],
            &research
        ),
        vec!["dua/1"]
    );
    assert!(query(&relations, &["org/st-marys"], &["org/uni-lab"], &operations).is_empty());
    assert!(query(&relations, &["org/other"], &["org/uni-lab"], &research).is_empty());
    assert!(query(&relations, &["org/st-marys"], &["org/pharma"], &research).is_empty());

    let moved = relations.apply_agreement(&dua("tx-2", json!({ "recipient": "org/pharma" })));
    assert!(
        matches!(moved, Err(RelationError::Mismatch { .. })),
        "{moved:?}"
    );
    relations
        .apply_agreement(&agreement_tx(
            "tx-3",
            json!({ "id": "dua/1", "status": "terminated" }),
        ))
        .expect("terminates");
    assert!(query(&relations, &["org/st-marys"], &["org/uni-lab"], &research).is_empty());
}

#[test]
fn a_consent_combining_psychotherapy_notes_with_other_categories_is_no_authorization() {
    let consent = |tx: &str, id: &str, categories: Value| {
        Transaction::from_value(json!({ "id": tx, "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
            "consent": { "id": id, "status": "active", "patient": PATIENT, "grantee": "org/clinic",
                         "purposes": ["TREAT"], "actions": ["share"], "data_categories": categories } }))
        .expect("parses")
    };
    let mut registry = InMemoryConsentRegistry::new();
    registry
        .apply_state(&consent(
            "tx-1",
            "consent/compound",
            json!(["psychotherapy-notes", "general"]),
        ))
        .expect("applies");
    let treat = purpose("TREAT");
    let categories = [DataCategory::General, DataCategory::PsychotherapyNotes];
    let query = ConsentQuery {
        patient: PATIENT,
        grantee: "org/clinic",
        holder: "org/clinic",
        purpose: Some(&treat),
        action: Action::Share,
        categories: &categories,
        at: ts("2026-03-01T10:00:00Z"),
    };
    // The consent itself covers both categories; as a HIPAA authorization it covers nothing.
    assert_eq!(registry.facts(&query).categories, categories.to_vec());
    let authorization = registry.authorization(&query);
    assert!(authorization.categories.is_empty());
    assert_eq!(authorization.compound_ids, vec!["consent/compound"]);

    // Psychotherapy notes on their own, and the rest on its own, are two valid authorizations.
    registry
        .apply_state(&consent(
            "tx-2",
            "consent/notes",
            json!(["psychotherapy-notes"]),
        ))
        .expect("applies");
    registry
        .apply_state(&consent("tx-3", "consent/general", json!(["general"])))
        .expect("applies");
    let authorization = registry.authorization(&query);
    assert_eq!(authorization.categories, categories.to_vec());
    assert_eq!(authorization.compound_ids, vec!["consent/compound"]);
}

#[test]
fn a_psychotherapy_notes_authorization_covers_notes_only() {
    let mut registry = InMemoryConsentRegistry::new();
    registry
        .apply_state(
            &Transaction::from_value(json!({ "id": "tx-1", "kind": "consent",
                "timestamp": "2026-02-01T09:00:00Z",
                "consent": { "id": "consent/notes", "status": "active", "patient": PATIENT,
                             "grantee": "org/clinic", "purposes": ["TREAT"], "actions": ["read"],
                             "data_categories": ["psychotherapy-notes", "substance-use"] } }))
            .expect("parses"),
        )
        .expect("applies");
    let treat = purpose("TREAT");
    let query = |categories: &[DataCategory]| {
        registry
            .authorization(&ConsentQuery {
                patient: PATIENT,
                grantee: "org/clinic",
                holder: "org/clinic",
                purpose: Some(&treat),
                action: Action::Read,
                categories,
                at: ts("2026-03-01T10:00:00Z"),
            })
            .categories
    };
    // SUD counseling notes: both categories describe the notes.
    let notes = [DataCategory::PsychotherapyNotes, DataCategory::SubstanceUse];
    assert_eq!(query(&notes), notes.to_vec());
    // A SUD record that is not a note is outside an authorization for psychotherapy notes.
    assert!(query(&[DataCategory::SubstanceUse]).is_empty());
}

#[test]
fn entries_restore_equal_digests() {
    let mut relations = InMemoryRelations::new();
    relations
        .apply_representation(&mother("tx-1", json!({})))
        .expect("applies");
    relations
        .apply_agreement(&dua("tx-2", json!({})))
        .expect("applies");
    let restored = InMemoryRelations::from_entries(
        relations.representations().cloned(),
        relations.agreements().cloned(),
    );
    assert_eq!(restored.digests(), relations.digests());
    assert_eq!(restored.representations_of(PATIENT).len(), 1);
    let staged = {
        let mut copy = relations.clone();
        copy.apply_representation(&representation_tx(
            "tx-3",
            json!({ "id": "rep/1", "status": "revoked", "patient": PATIENT }),
        ))
        .expect("revokes");
        copy
    };
    assert_ne!(staged.digests(), relations.digests());
    assert!(represents(&relations, MOTHER, "2026-03-01T10:00:00Z").represents());
}
