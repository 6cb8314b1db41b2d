use super::*;
use crate::transaction::Transaction;
use serde_json::{json, Value};

const PATIENT: &str = "patient/p-1";
const GRANTEE: &str = "org/uni-lab";
/// Ledger time of the queries: 2026-03-01T10:00:00Z.
const NOW: &str = "2026-03-01T10:00:00Z";

fn ts(text: &str) -> i64 {
    Timestamp::parse(text).expect("valid timestamp").unix()
}

fn purpose(code: &str) -> PurposeOfUse {
    PurposeOfUse::try_from(code.to_owned()).expect("valid purpose")
}

/// A consent transaction `tx_id` carrying `consent` (the `consent` object of docs/contract.md §3).
fn consent_tx(tx_id: &str, consent: Value) -> ConsentTransaction {
    let value = json!({ "id": tx_id, "kind": "consent", "timestamp": "2026-02-01T09:00:00Z",
                        "consent": consent });
    match Transaction::from_value(value) {
        Ok(Transaction::Consent(c)) => c,
        other => panic!("fixture consent transaction must parse: {other:?}"),
    }
}

/// An active grant of `id` to org/uni-lab: HRESCH; read and share; general and genetic data;
/// 2026-02-01 to 2027-02-01. `patch` is merged over it.
fn grant(tx_id: &str, id: &str, patch: Value) -> ConsentTransaction {
    let base = json!({ "id": id, "status": "active", "patient": PATIENT, "grantee": GRANTEE,
                       "purposes": ["HRESCH"], "actions": ["read", "share"],
                       "data_categories": ["general", "genetic"],
                       "period": { "start": "2026-02-01T00:00:00Z", "end": "2027-02-01T00:00:00Z" } });
    consent_tx(tx_id, crate::cases::deep_merge(base, patch))
}

fn revoke(tx_id: &str, id: &str, patient: &str) -> ConsentTransaction {
    consent_tx(
        tx_id,
        json!({ "id": id, "status": "revoked", "patient": patient }),
    )
}

fn registry_with(txs: &[ConsentTransaction]) -> InMemoryConsentRegistry {
    let mut registry = InMemoryConsentRegistry::new();
    for tx in txs {
        registry
            .apply(tx)
            .unwrap_or_else(|e| panic!("fixture transaction {} must apply: {e}", tx.id));
    }
    registry
}

/// Owned parts of a query, so a test can vary one field at a time.
struct Q {
    patient: &'static str,
    grantee: &'static str,
    purpose: Option<PurposeOfUse>,
    action: Action,
    categories: Vec<DataCategory>,
    at: i64,
}

impl Q {
    /// org/uni-lab reads patient/p-1's general data for research, now.
    fn new() -> Self {
        Q {
            patient: PATIENT,
            grantee: GRANTEE,
            purpose: Some(purpose("HRESCH")),
            action: Action::Read,
            categories: vec![DataCategory::General],
            at: ts(NOW),
        }
    }

    fn facts(&self, registry: &InMemoryConsentRegistry) -> ConsentFacts {
        registry.facts(&ConsentQuery {
            patient: self.patient,
            grantee: self.grantee,
            holder: self.grantee,
            purpose: self.purpose.as_ref(),
            action: self.action,
            categories: &self.categories,
            at: self.at,
        })
    }
}

fn refused(registry: &mut InMemoryConsentRegistry, tx: &ConsentTransaction) -> ConsentError {
    let before = registry.digest();
    let entries_before: Vec<ConsentEntry> = registry.entries().cloned().collect();
    let err = match registry.apply(tx) {
        Ok(()) => panic!("transaction {} must be refused", tx.id),
        Err(e) => e,
    };
    assert_eq!(
        registry.digest(),
        before,
        "a refused transaction must leave the state unchanged"
    );
    assert_eq!(
        registry.entries().cloned().collect::<Vec<_>>(),
        entries_before
    );
    err
}

#[test]
fn grant_covers_a_matching_query() {
    let registry = registry_with(&[grant("tx-1", "consent/c-1", json!({}))]);
    let facts = Q::new().facts(&registry);
    assert_eq!(
        facts,
        ConsentFacts {
            categories: vec![DataCategory::General],
            consent_ids: vec!["consent/c-1".into()],
            withdrawn: false,
            // The period starts before the grant was recorded: given then.
            given_at: Some(ts("2026-02-01T00:00:00Z")),
            transfer_countries: vec![],
            term_hours: Some(8760),
            ..ConsentFacts::default()
        }
    );
    // Every category the consent names is covered when the record has them all.
    let both = Q {
        categories: vec![DataCategory::General, DataCategory::Genetic],
        action: Action::Share,
        ..Q::new()
    };
    assert_eq!(
        both.facts(&registry).categories,
        vec![DataCategory::General, DataCategory::Genetic]
    );
}

#[test]
fn a_mismatch_in_any_named_fact_gives_no_coverage() {
    let registry = registry_with(&[grant("tx-1", "consent/c-1", json!({}))]);
    let cases = [
        (
            "other patient",
            Q {
                patient: "patient/p-2",
                ..Q::new()
            },
        ),
        (
            "other grantee",
            Q {
                grantee: "org/st-marys",
                ..Q::new()
            },
        ),
        (
            "other purpose",
            Q {
                purpose: Some(purpose("HMARKT")),
                ..Q::new()
            },
        ),
        // A request that states no purpose cannot be matched to a purpose-bound consent.
        (
            "no purpose",
            Q {
                purpose: None,
                ..Q::new()
            },
        ),
        (
            "other action",
            Q {
                action: Action::Export,
                ..Q::new()
            },
        ),
        (
            "other category",
            Q {
                categories: vec![DataCategory::Hiv],
                ..Q::new()
            },
        ),
    ];
    for (name, query) in cases {
        assert_eq!(query.facts(&registry), ConsentFacts::default(), "{name}");
    }
}

#[test]
fn partial_category_coverage_names_only_the_covered_categories() {
    let registry = registry_with(&[grant("tx-1", "consent/c-1", json!({}))]);
    let query = Q {
        categories: vec![DataCategory::General, DataCategory::Hiv],
        ..Q::new()
    };
    let facts = query.facts(&registry);
    // The regime's rule decides whether partial coverage suffices (e.g. Part 2 needs every
    // category covered); the registry only reports which ones are.
    assert_eq!(facts.categories, vec![DataCategory::General]);
    assert_eq!(facts.consent_ids, vec!["consent/c-1"]);
    assert!(!facts.withdrawn, "nothing was revoked");
}

#[test]
fn categories_are_combined_across_consents() {
    let registry = registry_with(&[
        grant("tx-1", "consent/c-2", json!({ "data_categories": ["hiv"] })),
        grant(
            "tx-2",
            "consent/c-1",
            json!({ "data_categories": ["general"] }),
        ),
    ]);
    let query = Q {
        categories: vec![DataCategory::General, DataCategory::Hiv],
        ..Q::new()
    };
    let facts = query.facts(&registry);
    assert_eq!(
        facts.categories,
        vec![DataCategory::General, DataCategory::Hiv]
    );
    assert_eq!(
        facts.consent_ids,
        vec!["consent/c-1", "consent/c-2"],
        "sorted by id"
    );
}

#[test]
fn period_start_is_inclusive_and_end_exclusive() {
    let registry = registry_with(&[grant("tx-1", "consent/c-1", json!({}))]);
    let start = ts("2026-02-01T00:00:00Z");
    let end = ts("2027-02-01T00:00:00Z");
    let covered = |at: i64| !Q { at, ..Q::new() }.facts(&registry).categories.is_empty();
    assert!(!covered(start - 1), "one second before start");
    assert!(covered(start), "at start");
    assert!(covered(end - 1), "one second before end");
    assert!(!covered(end), "at end");
}

#[test]
fn open_period_bounds_and_no_period_always_cover() {
    let registry = registry_with(&[
        grant("tx-1", "consent/c-1", json!({ "period": null })),
        grant(
            "tx-2",
            "consent/c-2",
            json!({ "patient": "patient/p-2", "period": { "end": null } }),
        ),
    ]);
    let far_past = ts("1990-01-01T00:00:00Z");
    let far_future = ts("2999-01-01T00:00:00Z");
    for at in [far_past, far_future] {
        assert!(!Q { at, ..Q::new() }.facts(&registry).categories.is_empty());
    }
    // Open end: covered from start on, never before.
    let p2 = |at| {
        Q {
            patient: "patient/p-2",
            at,
            ..Q::new()
        }
        .facts(&registry)
    };
    assert!(!p2(far_future).categories.is_empty());
    assert!(p2(far_past).categories.is_empty());
}

#[test]
fn expiry_is_judged_by_ledger_time_not_the_wall_clock() {
    // A consent that ended long ago still covers a query whose ledger time is inside its period:
    // every node replaying history must decide as the first one did.
    let registry = registry_with(&[grant(
        "tx-1",
        "consent/c-1",
        json!({ "period": { "start": "2000-01-01T00:00:00Z", "end": "2001-01-01T00:00:00Z" } }),
    )]);
    let then = Q {
        at: ts("2000-06-01T00:00:00Z"),
        ..Q::new()
    };
    assert_eq!(
        then.facts(&registry).categories,
        vec![DataCategory::General]
    );
    // An expired consent is not a withdrawn one.
    let now = Q::new().facts(&registry);
    assert_eq!(now, ConsentFacts::default());
}

#[test]
fn revocation_withdraws_from_then_on() {
    // GDPR Art. 7(3): withdrawal does not affect what was done before it, but applies to every
    // query after it in ledger order, whatever timestamp that query carries.
    let mut registry = registry_with(&[grant("tx-1", "consent/c-1", json!({}))]);
    registry
        .apply(&revoke("tx-2", "consent/c-1", PATIENT))
        .expect("revocation applies");
    let facts = Q::new().facts(&registry);
    assert!(facts.categories.is_empty());
    assert!(facts.consent_ids.is_empty());
    assert!(
        facts.withdrawn,
        "a revoked consent naming the query is reported as withdrawn"
    );
    let entry = &registry.of_patient(PATIENT)[0];
    assert_eq!(entry.granted_by, "tx-1");
    assert_eq!(entry.revoked_by.as_deref(), Some("tx-2"));
    // The grant's scope is kept (for audit); only its force ends.
    assert_eq!(entry.record.status, ConsentStatus::Active);
}

#[test]
fn revocation_is_not_withdrawn_when_another_consent_still_covers() {
    let mut registry = registry_with(&[
        grant("tx-1", "consent/c-1", json!({})),
        grant(
            "tx-2",
            "consent/c-2",
            json!({ "data_categories": ["general"] }),
        ),
    ]);
    registry
        .apply(&revoke("tx-3", "consent/c-1", PATIENT))
        .expect("revocation applies");
    let facts = Q::new().facts(&registry);
    assert_eq!(facts.categories, vec![DataCategory::General]);
    assert_eq!(facts.consent_ids, vec!["consent/c-2"]);
    assert!(!facts.withdrawn, "every category is still covered by c-2");
    // For genetic data only the revoked c-1 applied: withdrawn.
    let genetic = Q {
        categories: vec![DataCategory::General, DataCategory::Genetic],
        ..Q::new()
    };
    let facts = genetic.facts(&registry);
    assert_eq!(facts.categories, vec![DataCategory::General]);
    assert!(facts.withdrawn);
}

#[test]
fn revocation_of_an_unrelated_consent_is_not_withdrawal() {
    let mut registry = registry_with(&[grant(
        "tx-1",
        "consent/c-1",
        json!({ "grantee": "org/other" }),
    )]);
    registry
        .apply(&revoke("tx-2", "consent/c-1", PATIENT))
        .expect("revocation applies");
    assert_eq!(Q::new().facts(&registry), ConsentFacts::default());
}

#[test]
fn restating_an_active_consent_replaces_its_scope() {
    let mut registry = registry_with(&[grant("tx-1", "consent/c-1", json!({}))]);
    registry
        .apply(&grant(
            "tx-2",
            "consent/c-1",
            json!({ "actions": ["share"] }),
        ))
        .expect("re-statement applies");
    assert!(
        Q::new().facts(&registry).categories.is_empty(),
        "read is no longer granted"
    );
    let share = Q {
        action: Action::Share,
        ..Q::new()
    };
    assert_eq!(
        share.facts(&registry).categories,
        vec![DataCategory::General]
    );
    assert_eq!(registry.len(), 1);
    assert_eq!(registry.of_patient(PATIENT)[0].granted_by, "tx-2");
}

#[test]
fn revocation_refusals_leave_state_unchanged() {
    let mut registry = registry_with(&[
        grant("tx-1", "consent/c-1", json!({})),
        grant("tx-2", "consent/c-2", json!({})),
    ]);
    registry
        .apply(&revoke("tx-3", "consent/c-2", PATIENT))
        .expect("revocation applies");

    let unknown = refused(&mut registry, &revoke("tx-4", "consent/c-9", PATIENT));
    assert!(
        matches!(unknown, ConsentError::UnknownConsent { .. }),
        "{unknown:?}"
    );
    let wrong_patient = refused(&mut registry, &revoke("tx-5", "consent/c-1", "patient/p-2"));
    assert!(
        matches!(wrong_patient, ConsentError::PatientMismatch { .. }),
        "{wrong_patient:?}"
    );
    let twice = refused(&mut registry, &revoke("tx-6", "consent/c-2", PATIENT));
    assert!(
        matches!(twice, ConsentError::AlreadyRevoked { .. }),
        "{twice:?}"
    );
    // A withdrawn consent cannot be brought back under the same id: the ledger would then hold
    // two different meanings for one id. The patient grants a new consent instead.
    let reactivate = refused(&mut registry, &grant("tx-7", "consent/c-2", json!({})));
    assert!(
        matches!(reactivate, ConsentError::AlreadyRevoked { .. }),
        "{reactivate:?}"
    );
    // Nor can a grant move an existing consent to another patient.
    let moved = refused(
        &mut registry,
        &grant("tx-8", "consent/c-1", json!({ "patient": "patient/p-2" })),
    );
    assert!(
        matches!(moved, ConsentError::PatientMismatch { .. }),
        "{moved:?}"
    );

    assert_eq!(Q::new().facts(&registry).consent_ids, vec!["consent/c-1"]);
    insta::assert_snapshot!(format!(
        "{unknown}\n{wrong_patient}\n{twice}\n{reactivate}\n{moved}"
    ));
}

#[test]
fn invalid_records_are_refused_naming_the_field() {
    let cases = [
        (
            "missing grantee",
            grant("tx-1", "consent/c-1", json!({ "grantee": null })),
            "consent.grantee",
        ),
        (
            "blank grantee",
            grant("tx-1", "consent/c-1", json!({ "grantee": " " })),
            "consent.grantee",
        ),
        (
            "no purposes",
            grant("tx-1", "consent/c-1", json!({ "purposes": [] })),
            "consent.purposes",
        ),
        (
            "no actions",
            grant("tx-1", "consent/c-1", json!({ "actions": [] })),
            "consent.actions",
        ),
        (
            "no categories",
            grant("tx-1", "consent/c-1", json!({ "data_categories": [] })),
            "consent.data_categories",
        ),
        (
            "end before start",
            grant(
                "tx-1",
                "consent/c-1",
                json!({ "period": { "start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z" } }),
            ),
            "consent.period.end",
        ),
        // An empty window would be a consent that never covers anything: a mistake, not a grant.
        (
            "end equal to start",
            grant(
                "tx-1",
                "consent/c-1",
                json!({ "period": { "start": "2026-02-01T00:00:00Z", "end": "2026-02-01T01:00:00+01:00" } }),
            ),
            "consent.period.end",
        ),
        ("empty id", grant("tx-1", "", json!({})), "consent.id"),
        (
            "empty patient",
            grant("tx-1", "consent/c-1", json!({ "patient": "" })),
            "consent.patient",
        ),
        (
            "revocation with empty patient",
            revoke("tx-1", "consent/c-1", ""),
            "consent.patient",
        ),
        (
            "transfer naming no country",
            grant(
                "tx-1",
                "consent/c-1",
                json!({ "transfer": { "countries": [], "explicit": true, "risks_informed": true } }),
            ),
            "consent.transfer.countries",
        ),
        (
            "transfer without a disclosure",
            grant(
                "tx-1",
                "consent/c-1",
                json!({ "actions": ["read"],
                        "transfer": { "countries": ["US"], "explicit": true, "risks_informed": true } }),
            ),
            "consent.transfer",
        ),
    ];
    let mut report = String::new();
    for (name, tx, field) in cases {
        let mut registry = InMemoryConsentRegistry::new();
        let err = refused(&mut registry, &tx);
        match &err {
            ConsentError::Invalid { field: f, .. } => assert_eq!(f, field, "{name}"),
            other => panic!("{name}: expected Invalid, got {other:?}"),
        }
        assert!(registry.is_empty(), "{name}");
        report.push_str(&format!("{name}: {err}\n"));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn revocation_needs_only_id_status_and_patient() {
    let mut registry = registry_with(&[grant("tx-1", "consent/c-1", json!({}))]);
    let tx = revoke("tx-2", "consent/c-1", PATIENT);
    assert_eq!(tx.consent.grantee, None);
    assert!(tx.consent.purposes.is_empty());
    registry.apply(&tx).expect("a bare revocation applies");
}

#[test]
fn equal_histories_give_equal_digests_and_different_states_differ() {
    let history = [
        grant("tx-1", "consent/c-1", json!({})),
        grant("tx-2", "consent/c-2", json!({ "patient": "patient/p-2" })),
        revoke("tx-3", "consent/c-1", PATIENT),
    ];
    let a = registry_with(&history);
    let b = registry_with(&history);
    assert_eq!(a.digest(), b.digest());

    let empty = InMemoryConsentRegistry::new().digest();
    let one = registry_with(&history[..1]).digest();
    let two = registry_with(&history[..2]).digest();
    let all = a.digest();
    let distinct: std::collections::BTreeSet<_> = [empty, one, two, all].into_iter().collect();
    assert_eq!(
        distinct.len(),
        4,
        "every step of the history is a different state"
    );

    // The same grant written by another transaction is a different ledger state.
    let other_tx = registry_with(&[grant("tx-9", "consent/c-1", json!({}))]).digest();
    assert_ne!(one, other_tx);
}

/// The consent digest as specified (docs/governance.md): SHA-256 of a domain tag, then, for each
/// entry in consent-id order, SHA-256 of its length (u64, big-endian) and its serde_json encoding.
fn specified_digest(registry: &InMemoryConsentRegistry) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"accord/consents/v2\0");
    for entry in registry.entries() {
        let bytes = serde_json::to_vec(entry).expect("serializes");
        let mut one = Sha256::new();
        one.update((bytes.len() as u64).to_be_bytes());
        one.update(&bytes);
        hasher.update(one.finalize());
    }
    hasher.finalize().into()
}

#[test]
fn a_staged_copy_is_independent_and_the_digest_follows_every_change() {
    // A block stages its changes on a copy: what it applies there must not reach the registry
    // it copied, and the digest kept with each entry must match the entries after every change.
    let original = registry_with(&[
        grant("tx-1", "consent/c-1", json!({})),
        grant("tx-2", "consent/c-2", json!({ "patient": "patient/p-2" })),
    ]);
    let before = original.digest();
    assert_eq!(original.consent_digest(), specified_digest(&original));
    let mut staged = original.clone();
    staged
        .apply(&revoke("tx-3", "consent/c-1", PATIENT))
        .expect("revokes");
    staged
        .apply(&grant("tx-4", "consent/c-3", json!({})))
        .expect("grants");
    assert_eq!(staged.consent_digest(), specified_digest(&staged));
    assert_ne!(staged.digest(), before);
    assert_eq!(
        original.digest(),
        before,
        "the copy's changes stay in the copy"
    );
    assert_eq!(original.len(), 2);
    assert_eq!(
        original
            .get("consent/c-1")
            .and_then(|e| e.revoked_by.as_deref()),
        None
    );
    assert_eq!(
        staged
            .get("consent/c-1")
            .and_then(|e| e.revoked_by.as_deref()),
        Some("tx-3")
    );
    assert_eq!(original.of_patient(PATIENT).len(), 1);
    assert_eq!(staged.of_patient(PATIENT).len(), 2);
}

#[test]
fn from_entries_restores_an_equal_state() {
    let registry = registry_with(&[
        grant("tx-1", "consent/c-1", json!({})),
        grant("tx-2", "consent/c-2", json!({ "patient": "patient/p-2" })),
        revoke("tx-3", "consent/c-1", PATIENT),
    ]);
    let restored = InMemoryConsentRegistry::from_entries(registry.entries().cloned());
    assert_eq!(restored.digest(), registry.digest());
    assert_eq!(restored.of_patient(PATIENT), registry.of_patient(PATIENT));
    assert!(Q::new().facts(&restored).withdrawn);
}

#[test]
fn of_patient_lists_that_patients_consents_by_id() {
    let registry = registry_with(&[
        grant("tx-1", "consent/c-3", json!({})),
        grant("tx-2", "consent/c-1", json!({})),
        grant("tx-3", "consent/c-9", json!({ "patient": "patient/p-2" })),
        grant("tx-4", "consent/c-2", json!({})),
    ]);
    let ids: Vec<String> = registry
        .of_patient(PATIENT)
        .into_iter()
        .map(|e| e.record.id)
        .collect();
    assert_eq!(ids, vec!["consent/c-1", "consent/c-2", "consent/c-3"]);
    assert_eq!(registry.of_patient("patient/p-2").len(), 1);
    assert!(registry.of_patient("patient/unknown").is_empty());
}

#[test]
fn from_transactions_applies_in_order_and_names_the_failing_one() {
    let grant = serde_json::json!({ "id": "t1", "kind": "consent", "timestamp": "2026-01-01T00:00:00Z",
        "consent": { "id": "c-1", "status": "active", "patient": "p", "grantee": "g",
                     "purposes": ["TREAT"], "actions": ["read"], "data_categories": ["general"] } });
    let revoke = serde_json::json!({ "id": "t2", "kind": "consent", "timestamp": "2026-01-02T00:00:00Z",
        "consent": { "id": "c-1", "status": "revoked", "patient": "p" } });
    let registry = InMemoryConsentRegistry::from_transactions([&grant, &revoke]).expect("applies");
    assert_eq!(
        registry
            .entries()
            .next()
            .and_then(|e| e.revoked_by.as_deref()),
        Some("t2")
    );

    let err = InMemoryConsentRegistry::from_transactions([&revoke]).expect_err("unknown consent");
    assert!(
        err.starts_with("consents[0]: consent `c-1`: cannot revoke"),
        "{err}"
    );
    let access = crate::testing::access_json();
    let err =
        InMemoryConsentRegistry::from_transactions([&grant, &access]).expect_err("not a consent");
    assert_eq!(
        err,
        "consents[1]: a `access` transaction does not change consent, representation or agreement state"
    );
    let bad = serde_json::json!({ "kind": "consent" });
    let err = InMemoryConsentRegistry::from_transactions([&bad]).expect_err("malformed");
    assert!(err.starts_with("consents[0]: field"), "{err}");
}

/// `consent.transfer` is parsed strictly: every field required, no other field, alpha-2 codes.
#[test]
fn transfer_statements_are_parsed_strictly() {
    let with = |transfer: Value| {
        json!({ "id": "tx-1", "kind": "consent", "timestamp": NOW,
                "consent": { "id": "consent/c-1", "status": "active", "patient": PATIENT,
                             "grantee": GRANTEE, "purposes": ["HRESCH"], "actions": ["share"],
                             "data_categories": ["general"], "transfer": transfer } })
    };
    for (transfer, field) in [
        (
            json!({ "countries": ["US"], "explicit": true }),
            "risks_informed",
        ),
        (
            json!({ "countries": ["US"], "risks_informed": true }),
            "explicit",
        ),
        (
            json!({ "countries": ["US"], "explicit": true, "risks_informed": true, "scope": "all" }),
            "scope",
        ),
        (
            json!({ "countries": ["US-CA"], "explicit": true, "risks_informed": true }),
            "consent.transfer.countries",
        ),
        (
            json!({ "countries": ["us"], "explicit": true, "risks_informed": true }),
            "consent.transfer.countries",
        ),
        (
            json!({ "countries": ["US"], "explicit": "yes", "risks_informed": true }),
            "consent.transfer.explicit",
        ),
    ] {
        let err = match Transaction::from_value(with(transfer.clone())) {
            Ok(_) => panic!("{transfer} must be refused"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(field), "{transfer}: {err}");
    }
    let ok = Transaction::from_value(with(
        json!({ "countries": ["US", "IN"], "explicit": true, "risks_informed": false }),
    ));
    assert!(ok.is_ok(), "{ok:?}");
}

/// Art. 49(1)(a): only an explicit transfer consent given after being told of the risks counts,
/// and only for countries every category of the record is consented to.
#[test]
fn transfer_countries_are_those_every_category_is_consented_to() {
    let transfer = |countries: Value, explicit: bool, informed: bool| json!({ "transfer": { "countries": countries, "explicit": explicit, "risks_informed": informed } });
    let share_both = Q {
        action: Action::Share,
        categories: vec![DataCategory::General, DataCategory::Genetic],
        ..Q::new()
    };
    let registry = registry_with(&[grant(
        "tx-1",
        "consent/c-1",
        transfer(json!(["US", "IN"]), true, true),
    )]);
    assert_eq!(
        share_both.facts(&registry).transfer_countries,
        vec!["IN", "US"]
    );
    // Not explicit, or not informed of the risks: no transfer consent.
    for (explicit, informed) in [(false, true), (true, false)] {
        let registry = registry_with(&[grant(
            "tx-1",
            "consent/c-1",
            transfer(json!(["US"]), explicit, informed),
        )]);
        assert!(share_both.facts(&registry).transfer_countries.is_empty());
        assert_eq!(
            share_both.facts(&registry).categories.len(),
            2,
            "the consent itself still covers"
        );
    }
    // General data may go to the US and India, genetic data only to India.
    let registry = registry_with(&[
        grant(
            "tx-1",
            "consent/c-1",
            crate::cases::deep_merge(
                json!({ "data_categories": ["general"] }),
                transfer(json!(["US", "IN"]), true, true),
            ),
        ),
        grant(
            "tx-2",
            "consent/c-2",
            crate::cases::deep_merge(
                json!({ "data_categories": ["genetic"] }),
                transfer(json!(["IN"]), true, true),
            ),
        ),
    ]);
    assert_eq!(share_both.facts(&registry).transfer_countries, vec!["IN"]);
    // A category not covered at all: nothing.
    let registry = registry_with(&[grant(
        "tx-1",
        "consent/c-1",
        crate::cases::deep_merge(
            json!({ "data_categories": ["general"] }),
            transfer(json!(["US"]), true, true),
        ),
    )]);
    assert!(share_both.facts(&registry).transfer_countries.is_empty());
}

/// GDPR Art. 8(1) asks how old the child was when consenting: the latest consent covering each
/// category counts, then the earliest over the categories.
#[test]
fn given_at_is_when_the_consents_relied_on_were_given() {
    let at = |tx_id: &str, id: &str, timestamp: &str, categories: Value| {
        let base = json!({ "id": id, "status": "active", "patient": PATIENT, "grantee": GRANTEE,
                           "purposes": ["HRESCH"], "actions": ["read"],
                           "data_categories": categories });
        let value =
            json!({ "id": tx_id, "kind": "consent", "timestamp": timestamp, "consent": base });
        match Transaction::from_value(value) {
            Ok(Transaction::Consent(c)) => c,
            other => panic!("fixture must parse: {other:?}"),
        }
    };
    let both = Q {
        categories: vec![DataCategory::General, DataCategory::Genetic],
        ..Q::new()
    };
    // A consent renewed later for general data: the later one counts for that category, and the
    // genetic data rest on the early one alone.
    let registry = registry_with(&[
        at(
            "tx-1",
            "consent/c-1",
            "2020-01-01T00:00:00Z",
            json!(["general", "genetic"]),
        ),
        at(
            "tx-2",
            "consent/c-2",
            "2025-06-01T00:00:00Z",
            json!(["general"]),
        ),
    ]);
    assert_eq!(
        Q::new().facts(&registry).given_at,
        Some(ts("2025-06-01T00:00:00Z"))
    );
    assert_eq!(
        both.facts(&registry).given_at,
        Some(ts("2020-01-01T00:00:00Z"))
    );
    // Renewed for both: the renewal counts.
    let registry = registry_with(&[
        at(
            "tx-1",
            "consent/c-1",
            "2020-01-01T00:00:00Z",
            json!(["general", "genetic"]),
        ),
        at(
            "tx-2",
            "consent/c-2",
            "2025-06-01T00:00:00Z",
            json!(["general", "genetic"]),
        ),
    ]);
    assert_eq!(
        both.facts(&registry).given_at,
        Some(ts("2025-06-01T00:00:00Z"))
    );
    // Nothing covered: unknown.
    assert_eq!(
        Q::new().facts(&InMemoryConsentRegistry::new()).given_at,
        None
    );
}

/// The registry digest as specified (docs/governance.md): the consent digest, then the
/// representations' and the agreements' digests, under one domain tag.
#[test]
fn the_registry_digest_covers_consents_representations_and_agreements() {
    use sha2::{Digest, Sha256};
    let registry = registry_with(&[grant("tx-1", "consent/c-1", json!({}))]);
    let (reps, agreements) = registry.relations().digests();
    let mut hasher = Sha256::new();
    hasher.update(b"accord/registry/v1\0");
    hasher.update(specified_digest(&registry));
    hasher.update(reps);
    hasher.update(agreements);
    let expected: [u8; 32] = hasher.finalize().into();
    assert_eq!(registry.digest(), expected);

    let representation = json!({ "id": "tx-r1", "kind": "representation",
        "timestamp": "2026-02-01T09:00:00Z",
        "representation": { "id": "rep/1", "status": "active", "patient": PATIENT,
                            "representative": "related/mother", "basis": "parent" } });
    let mut with_rep = registry.clone();
    with_rep
        .apply_state(&Transaction::from_value(representation).expect("parses"))
        .expect("applies");
    assert_ne!(with_rep.digest(), registry.digest());
    assert_eq!(with_rep.consent_digest(), registry.consent_digest());
}

#[test]
fn term_hours_is_the_longest_period_of_the_consents_in_force_or_none_if_one_is_open() {
    // One year (2026-02-01 to 2027-02-01): 365 days.
    let registry = registry_with(&[grant("tx-1", "consent/c-1", json!({}))]);
    assert_eq!(Q::new().facts(&registry).term_hours, Some(8760));
    // A second, longer consent in force: the longest counts; a part-hour rounds up.
    let registry = registry_with(&[
        grant("tx-1", "consent/c-1", json!({})),
        grant(
            "tx-2",
            "consent/c-2",
            json!({ "period": { "start": "2026-02-01T00:00:00Z", "end": "2027-02-02T00:30:00Z" } }),
        ),
    ]);
    assert_eq!(Q::new().facts(&registry).term_hours, Some(8785));
    // An open-ended consent in force: no bound.
    let registry = registry_with(&[
        grant("tx-1", "consent/c-1", json!({})),
        grant(
            "tx-2",
            "consent/c-2",
            json!({ "period": { "start": "2026-02-01T00:00:00Z", "end": null } }),
        ),
    ]);
    assert_eq!(Q::new().facts(&registry).term_hours, None);
    // No consent in force: none.
    let registry = registry_with(&[]);
    assert_eq!(Q::new().facts(&registry).term_hours, None);
}
