//! `consent.part2`: the single TPO consent and the consent to SUD counseling notes (42 CFR 2.31,
//! 2.33).

use super::*;
use crate::transaction::Transaction;
use serde_json::{json, Value};

const PATIENT: &str = "patient/p-5";
const PROGRAM: &str = "org/harbor-otp";
const NOW: &str = "2026-03-01T10:00:00Z";

fn consent_tx(tx_id: &str, consent: Value) -> Result<ConsentTransaction, String> {
    let value = json!({ "id": tx_id, "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
                        "consent": consent });
    match Transaction::from_value(value) {
        Ok(Transaction::Consent(c)) => Ok(c),
        Ok(_) => Err("not a consent transaction".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The single TPO consent given to the program; `patch` is merged over it.
fn tpo(patch: Value) -> Value {
    crate::cases::deep_merge(
        json!({ "id": "consent/tpo", "status": "active", "patient": PATIENT, "grantee": PROGRAM,
                "purposes": ["TREAT", "HPAYMT", "HOPERAT"], "actions": ["read", "share"],
                "data_categories": ["substance-use"], "part2": "tpo" }),
        patch,
    )
}

/// A consent to the SUD counseling notes, given to the program.
fn notes(patch: Value) -> Value {
    crate::cases::deep_merge(
        json!({ "id": "consent/notes", "status": "active", "patient": PATIENT, "grantee": PROGRAM,
                "purposes": ["TREAT"], "actions": ["read"],
                "data_categories": ["substance-use", "psychotherapy-notes"],
                "part2": "counseling-notes" }),
        patch,
    )
}

fn registry_with(consents: &[Value]) -> InMemoryConsentRegistry {
    let mut registry = InMemoryConsentRegistry::new();
    for (i, c) in consents.iter().enumerate() {
        let tx = consent_tx(&format!("tx-{i}"), c.clone()).expect("fixture consent parses");
        registry.apply(&tx).expect("fixture consent applies");
    }
    registry
}

fn facts(
    registry: &InMemoryConsentRegistry,
    grantee: &str,
    holder: &str,
    purpose: &str,
    action: Action,
    categories: &[DataCategory],
) -> ConsentFacts {
    let purpose = PurposeOfUse::try_from(purpose.to_owned()).expect("valid purpose");
    registry.facts(&ConsentQuery {
        patient: PATIENT,
        grantee,
        holder,
        purpose: Some(&purpose),
        action,
        categories,
        at: Timestamp::parse(NOW).expect("valid timestamp").unix(),
    })
}

const SUD: &[DataCategory] = &[DataCategory::SubstanceUse];
// In `DataCategory` order, as the registry reports covered categories.
const NOTES: &[DataCategory] = &[DataCategory::PsychotherapyNotes, DataCategory::SubstanceUse];

#[test]
fn an_unknown_part2_kind_is_refused_when_parsing() {
    let err = consent_tx("tx-1", tpo(json!({ "part2": "general" })))
        .expect_err("an unknown kind must not parse");
    assert!(err.contains("consent.part2"), "{err}");
    assert!(err.contains("unknown variant"), "{err}");
}

#[test]
fn a_record_claiming_a_part2_kind_is_checked_naming_the_field() {
    let cases = [
        (
            "TPO consent without HOPERAT",
            tpo(json!({ "purposes": ["TREAT", "HPAYMT"] })),
            "consent.purposes",
            "2.33(a)(2)",
        ),
        (
            "TPO consent combined with proceedings",
            tpo(json!({ "purposes": ["TREAT", "HPAYMT", "HOPERAT", "HLEGAL"] })),
            "consent.purposes",
            "2.31(d)",
        ),
        (
            "TPO consent without SUD records",
            tpo(json!({ "data_categories": ["general"] })),
            "consent.data_categories",
            "2.31(a)(3)",
        ),
        (
            "TPO consent combined with counseling notes",
            tpo(json!({ "data_categories": ["substance-use", "psychotherapy-notes"] })),
            "consent.data_categories",
            "2.31(b)(2)",
        ),
        (
            "counseling-notes consent combined with other records",
            notes(
                json!({ "data_categories": ["substance-use", "psychotherapy-notes", "general"] }),
            ),
            "consent.data_categories",
            "2.31(b)(2)",
        ),
        (
            "counseling-notes consent without the notes",
            notes(json!({ "data_categories": ["substance-use"] })),
            "consent.data_categories",
            "2.31(b)(2)",
        ),
        (
            "counseling-notes consent for proceedings and treatment",
            notes(json!({ "purposes": ["HLEGAL", "TREAT"] })),
            "consent.purposes",
            "2.31(d)",
        ),
    ];
    for (name, consent, field, cite) in cases {
        let tx = consent_tx("tx-1", consent).expect("parses");
        let mut registry = InMemoryConsentRegistry::new();
        match registry.apply(&tx) {
            Err(ConsentError::Invalid {
                field: f, reason, ..
            }) => {
                assert_eq!(f, field, "{name}");
                assert!(reason.contains(cite), "{name}: {reason}");
            }
            other => panic!("{name}: expected Invalid, got {other:?}"),
        }
        assert!(registry.is_empty(), "{name}");
    }
    // A counseling-notes consent for proceedings alone is a valid consent; a revocation needs no
    // more than before.
    registry_with(&[notes(json!({ "purposes": ["HLEGAL"] }))]);
    let mut registry = registry_with(&[tpo(json!({}))]);
    let revoke = consent_tx(
        "tx-r",
        json!({ "id": "consent/tpo", "status": "revoked", "patient": PATIENT, "part2": "tpo" }),
    )
    .expect("parses");
    registry.apply(&revoke).expect("revocation applies");
}

#[test]
fn the_tpo_fact_names_the_holder_whatever_the_purpose_and_recipient() {
    let registry = registry_with(&[tpo(json!({}))]);
    // The program shares with a provider the consent does not name, and discloses for a purpose it
    // does not name: the consent is still the holder's single TPO consent.
    let share = facts(
        &registry,
        "org/valley",
        PROGRAM,
        "TREAT",
        Action::Share,
        SUD,
    );
    assert!(share.part2_tpo && share.holder_tpo);
    assert!(
        share.categories.is_empty(),
        "the recipient is not the grantee"
    );
    let other = facts(
        &registry,
        "org/wa-doh",
        PROGRAM,
        "PUBHLTH",
        Action::Share,
        SUD,
    );
    assert!(other.part2_tpo);
    // Another holder, counseling notes, and a record without SUD data are not reached.
    assert!(
        !facts(
            &registry,
            "org/x",
            "org/valley",
            "TREAT",
            Action::Share,
            SUD
        )
        .part2_tpo
    );
    assert!(!facts(&registry, "org/x", PROGRAM, "TREAT", Action::Share, NOTES).part2_tpo);
    assert!(
        !facts(
            &registry,
            "org/x",
            PROGRAM,
            "TREAT",
            Action::Share,
            &[DataCategory::General]
        )
        .part2_tpo
    );
    // The same consent without the Part 2 kind is no TPO consent.
    let plain = registry_with(&[tpo(json!({ "part2": null }))]);
    assert!(!facts(&plain, "org/valley", PROGRAM, "TREAT", Action::Share, SUD).part2_tpo);
}

#[test]
fn a_revoked_or_expired_tpo_consent_is_no_fact() {
    let mut registry = registry_with(&[tpo(json!({}))]);
    let revoke = consent_tx(
        "tx-r",
        json!({ "id": "consent/tpo", "status": "revoked", "patient": PATIENT }),
    )
    .expect("parses");
    registry.apply(&revoke).expect("revocation applies");
    assert!(
        !facts(
            &registry,
            "org/valley",
            PROGRAM,
            "TREAT",
            Action::Share,
            SUD
        )
        .part2_tpo
    );
    let expired = registry_with(&[tpo(
        json!({ "period": { "start": "2025-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z" } }),
    )]);
    assert!(!facts(&expired, "org/valley", PROGRAM, "TREAT", Action::Share, SUD).part2_tpo);
}

#[test]
fn a_counseling_notes_consent_covers_the_notes_and_nothing_else() {
    let registry = registry_with(&[notes(json!({}))]);
    let on_notes = facts(&registry, PROGRAM, PROGRAM, "TREAT", Action::Read, NOTES);
    assert!(on_notes.counseling_notes);
    assert_eq!(on_notes.categories, NOTES.to_vec());
    let on_record = facts(&registry, PROGRAM, PROGRAM, "TREAT", Action::Read, SUD);
    assert!(!on_record.counseling_notes);
    assert!(on_record.categories.is_empty());
    // A consent that names both categories without the Part 2 kind covers the categories but is
    // not a consent given for the counseling notes.
    let plain = registry_with(&[notes(json!({ "part2": null }))]);
    let f = facts(&plain, PROGRAM, PROGRAM, "TREAT", Action::Read, NOTES);
    assert_eq!(f.categories, NOTES.to_vec());
    assert!(!f.counseling_notes);
}

#[test]
fn any_consent_for_treatment_payment_or_operations_tells_the_holder_received_the_records() {
    // A payment consent naming a hospital: the hospital received the records for payment.
    let registry = registry_with(&[tpo(
        json!({ "id": "consent/pay", "grantee": "org/hospital", "purposes": ["HPAYMT"], "part2": null }),
    )]);
    let f = facts(
        &registry,
        "org/wa-doh",
        "org/hospital",
        "PUBHLTH",
        Action::Share,
        SUD,
    );
    assert!(f.holder_tpo);
    assert!(!f.part2_tpo, "not the single TPO consent");
    // A research consent does not.
    let research = registry_with(&[tpo(
        json!({ "id": "consent/res", "grantee": "org/hospital", "purposes": ["HRESCH"], "part2": null }),
    )]);
    assert!(
        !facts(
            &research,
            "org/x",
            "org/hospital",
            "PUBHLTH",
            Action::Share,
            SUD
        )
        .holder_tpo
    );
    // The single TPO consent is one.
    let single = registry_with(&[tpo(json!({}))]);
    let f = facts(&single, "org/x", PROGRAM, "PUBHLTH", Action::Share, SUD);
    assert!(f.holder_tpo && f.part2_tpo);
}
