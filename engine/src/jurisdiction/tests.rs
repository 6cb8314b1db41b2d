use super::*;
use crate::testing;
use serde_json::json;

fn table_of(files: &[(&str, &str)]) -> Result<JurisdictionTable, JurisdictionError> {
    JurisdictionTable::from_yaml(files.iter().map(|(p, t)| (*p, t.as_bytes())))
}

/// The fixture's US, US-CA, EU and EU-DE.
fn fixture() -> JurisdictionTable {
    table_of(&testing::jurisdiction_files()).expect("fixture jurisdictions load")
}

/// The fixture with `extra` files added (or replacing a fixture file by path).
fn fixture_with(
    extra: &[(&'static str, &'static str)],
) -> Result<JurisdictionTable, JurisdictionError> {
    let mut files: BTreeMap<&str, &str> = testing::jurisdiction_files().into_iter().collect();
    files.extend(extra.iter().copied());
    table_of(&files.into_iter().collect::<Vec<_>>())
}

fn load_err(files: &[(&str, &str)]) -> JurisdictionError {
    match table_of(files) {
        Ok(t) => panic!(
            "must be refused, loaded {:?}",
            t.iter().map(|j| &j.code).collect::<Vec<_>>()
        ),
        Err(e) => e,
    }
}

fn applicable(patch: serde_json::Value) -> Result<Applicable, JurisdictionError> {
    fixture().applicable(&testing::access(patch))
}

#[test]
fn lineage_lists_the_jurisdiction_then_its_ancestors() {
    let table = fixture();
    let lineage = |code: &str| table.get(code).expect("known").lineage.clone();
    assert_eq!(lineage("EU-DE"), vec!["EU-DE", "EU"]);
    assert_eq!(lineage("US-CA"), vec!["US-CA", "US"]);
    assert_eq!(lineage("US"), vec!["US"]);
    assert_eq!(
        table.get("EU-DE").expect("known").parent.as_deref(),
        Some("EU")
    );
    assert_eq!(table.get("EU").expect("known").parent, None);
    assert_eq!(table.get("EU-DE").expect("known").name, "Germany");
}

#[test]
fn regimes_and_parameters_are_inherited() {
    let table = fixture();
    let de = table.get("EU-DE").expect("known");
    assert_eq!(de.regimes.iter().collect::<Vec<_>>(), vec!["GDPR"]);
    assert_eq!(
        de.parameters.get("review_hours"),
        Some(&json!(72)),
        "inherited from EU"
    );
    assert_eq!(de.parameters.get("adequacy"), Some(&json!(["CH", "JP"])));
    assert_eq!(
        de.parameters.get("digital_consent_age"),
        Some(&json!(16)),
        "its own"
    );
    // A parent does not see its child's parameters.
    assert_eq!(table.param("EU", "digital_consent_age"), None);
    assert_eq!(table.param("US-CA", "review_hours"), Some(&json!(24)));
    assert!(table.knows_regime("HIPAA"));
    assert!(!table.knows_regime("LGPD"));
}

#[test]
fn child_parameters_override_the_parents() {
    let table = fixture_with(&[(
        "jurisdictions/US-CA.yaml",
        "code: US-CA\nname: California\nparent: US\nregimes: [CMIA]\nparameters: { review_hours: 12 }\n",
    )])
    .expect("loads");
    assert_eq!(table.param("US-CA", "review_hours"), Some(&json!(12)));
    assert_eq!(
        table.param("US", "review_hours"),
        Some(&json!(24)),
        "the parent keeps its own"
    );
    let ca = table.get("US-CA").expect("known");
    assert_eq!(ca.regimes.iter().collect::<Vec<_>>(), vec!["CMIA", "HIPAA"]);
}

#[test]
fn parameters_are_inherited_across_several_generations() {
    let table = fixture_with(&[(
        "jurisdictions/US-SF.yaml",
        "code: US-SF\nname: San Francisco\nparent: US-CA\nparameters: { local: true }\n",
    )])
    .expect("loads");
    let sf = table.get("US-SF").expect("known");
    assert_eq!(sf.lineage, vec!["US-SF", "US-CA", "US"]);
    assert_eq!(
        sf.parameters.get("review_hours"),
        Some(&json!(24)),
        "from the grandparent"
    );
    assert!(sf.regimes.contains("HIPAA"));
}

#[test]
fn a_country_alias_resolves_to_its_jurisdiction() {
    let table = fixture();
    assert_eq!(table.resolve("DE").map(|j| j.code.as_str()), Some("EU-DE"));
    assert_eq!(
        table.resolve("EU-DE").map(|j| j.code.as_str()),
        Some("EU-DE")
    );
    assert_eq!(table.param("DE", "digital_consent_age"), Some(&json!(16)));
    assert!(table.resolve("FR").is_none());
    // `get` takes codes only; aliases are a transaction-side convenience.
    assert!(table.get("DE").is_none());
}

#[test]
fn applicable_comes_from_actor_and_resource_with_parents() {
    let a = applicable(json!({})).expect("known jurisdictions");
    assert_eq!(a.jurisdictions, vec!["US", "US-CA"]);
    assert_eq!(a.regimes, vec!["HIPAA"]);
    assert_eq!(a.patient_jurisdiction, None);

    let a = applicable(json!({ "resource": { "jurisdiction": "EU-DE" } })).expect("known");
    assert_eq!(
        a.jurisdictions,
        vec!["EU", "EU-DE", "US", "US-CA"],
        "sorted, parents included"
    );
    assert_eq!(a.regimes, vec!["GDPR", "HIPAA"]);
}

#[test]
fn applicable_adds_patient_residence_and_recipient_country() {
    // GDPR Art. 3: an EU resident's data brings EU law in even when held elsewhere.
    let a = applicable(json!({ "resource": { "patient": { "residence": "DE" } } })).expect("known");
    assert_eq!(a.jurisdictions, vec!["EU", "EU-DE", "US", "US-CA"]);
    assert_eq!(a.regimes, vec!["GDPR", "HIPAA"]);
    assert_eq!(
        a.patient_jurisdiction.as_deref(),
        Some("EU-DE"),
        "the alias is resolved"
    );

    let a =
        applicable(json!({ "context": { "recipient": { "id": "org/x", "country": "EU-DE" } } }))
            .expect("known");
    assert_eq!(a.jurisdictions, vec!["EU", "EU-DE", "US", "US-CA"]);
    assert_eq!(
        a.patient_jurisdiction, None,
        "a recipient is not the patient"
    );
}

#[test]
fn unknown_residence_or_recipient_adds_nothing() {
    // A third country with no modelled regime: transfer rules still see its code in the transaction.
    let a = applicable(json!({ "resource": { "patient": { "residence": "JP" } },
                                "context": { "recipient": { "id": "org/x", "country": "CN" } } }))
    .expect("unknown residence/recipient is not an error");
    assert_eq!(a.jurisdictions, vec!["US", "US-CA"]);
    assert_eq!(a.regimes, vec!["HIPAA"]);
    assert_eq!(a.patient_jurisdiction, None);
}

#[test]
fn absent_jurisdictions_apply_nothing() {
    let a = applicable(
        json!({ "actor": { "jurisdiction": null }, "resource": { "jurisdiction": null } }),
    )
    .expect("absent is not unknown");
    assert_eq!(a, Applicable::default());
}

#[test]
fn unknown_actor_or_resource_jurisdiction_is_an_error_naming_the_field() {
    // The bundle cannot judge under a law it does not hold: refusing beats a silent default deny
    // whose reasons would cite the wrong regime.
    let actor =
        applicable(json!({ "actor": { "jurisdiction": "JP" } })).expect_err("unknown actor");
    let resource = applicable(json!({ "resource": { "jurisdiction": "EU-FR" } }))
        .expect_err("unknown resource");
    assert!(
        matches!(&actor, JurisdictionError::UnknownInTransaction { field, .. } if field == "actor.jurisdiction")
    );
    assert!(
        matches!(&resource, JurisdictionError::UnknownInTransaction { field, .. } if field == "resource.jurisdiction")
    );
    insta::assert_snapshot!(format!("{actor}\n{resource}"));
}

#[test]
fn loading_errors_name_the_file_and_field() {
    let us = ("jurisdictions/US.yaml", "code: US\nname: United States\n");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "unknown parent",
            vec![
                us,
                (
                    "jurisdictions/US-CA.yaml",
                    "code: US-CA\nname: California\nparent: UX\n",
                ),
            ],
        ),
        (
            "parent cycle",
            vec![
                ("jurisdictions/AA.yaml", "code: AA\nname: A\nparent: BB\n"),
                ("jurisdictions/BB.yaml", "code: BB\nname: B\nparent: AA\n"),
            ],
        ),
        (
            "own parent",
            vec![("jurisdictions/AA.yaml", "code: AA\nname: A\nparent: AA\n")],
        ),
        // AB is not in the cycle but leads into it: the walk must stop, not loop.
        (
            "parent leads into a cycle",
            vec![
                ("jurisdictions/AB.yaml", "code: AB\nname: A\nparent: CY\n"),
                ("jurisdictions/CY.yaml", "code: CY\nname: C\nparent: CZ\n"),
                ("jurisdictions/CZ.yaml", "code: CZ\nname: C\nparent: CY\n"),
            ],
        ),
        (
            "duplicate code",
            vec![us, ("other/US.yaml", "code: US\nname: Again\n")],
        ),
        (
            "duplicate country alias",
            vec![
                (
                    "jurisdictions/EU-DE.yaml",
                    "code: EU-DE\nname: Germany\ncountry: DE\n",
                ),
                (
                    "jurisdictions/XX-DE.yaml",
                    "code: XX-DE\nname: Also Germany\ncountry: DE\n",
                ),
            ],
        ),
        (
            "file name does not match code",
            vec![(
                "jurisdictions/US-CA.yaml",
                "code: US\nname: United States\n",
            )],
        ),
        (
            "unknown field",
            vec![(
                "jurisdictions/US.yaml",
                "code: US\nname: United States\nregime: [HIPAA]\n",
            )],
        ),
        (
            "bad code syntax",
            vec![("jurisdictions/usa.yaml", "code: usa\nname: United States\n")],
        ),
        (
            "missing name",
            vec![("jurisdictions/US.yaml", "code: US\n")],
        ),
        (
            "code given as a list",
            vec![("jurisdictions/US.yaml", "code: [US]\nname: United States\n")],
        ),
        (
            "not YAML",
            vec![("jurisdictions/US.yaml", "code: US\n\tname: United States\n")],
        ),
        ("no files", vec![]),
    ];
    let mut report = String::new();
    for (name, files) in &cases {
        report.push_str(&format!("{name}: {}\n", load_err(files)));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn cycle_and_parent_errors_have_their_own_variants() {
    let cycle = load_err(&[
        ("jurisdictions/AA.yaml", "code: AA\nname: A\nparent: BB\n"),
        ("jurisdictions/BB.yaml", "code: BB\nname: B\nparent: AA\n"),
    ]);
    assert_eq!(
        cycle,
        // Named: the file whose `parent` closes the loop.
        JurisdictionError::ParentCycle {
            path: "jurisdictions/BB.yaml".into(),
            cycle: "AA → BB → AA".into()
        }
    );
    let own = load_err(&[("jurisdictions/AA.yaml", "code: AA\nname: A\nparent: AA\n")]);
    assert!(matches!(own, JurisdictionError::ParentCycle { cycle, .. } if cycle == "AA → AA"));
    let unknown = load_err(&[(
        "jurisdictions/US-CA.yaml",
        "code: US-CA\nname: California\nparent: US\n",
    )]);
    assert_eq!(
        unknown,
        JurisdictionError::UnknownParent {
            path: "jurisdictions/US-CA.yaml".into(),
            code: "US-CA".into(),
            parent: "US".into()
        }
    );
}

#[test]
fn bad_code_syntax_and_unknown_field_point_at_the_field() {
    match load_err(&[("jurisdictions/usa.yaml", "code: usa\nname: United States\n")]) {
        JurisdictionError::Invalid { path, field, .. } => {
            assert_eq!(path, "jurisdictions/usa.yaml");
            assert_eq!(field, "code");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    match load_err(&[("jurisdictions/US.yaml", "code: US\nname: X\nparent: us\n")]) {
        JurisdictionError::Invalid { field, .. } => assert_eq!(field, "parent"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn file_order_does_not_change_the_table() {
    let mut files = testing::jurisdiction_files();
    let forward = table_of(&files).expect("loads");
    files.reverse();
    let backward = table_of(&files).expect("loads");
    let summary = |t: &JurisdictionTable| {
        t.iter()
            .map(|j| {
                format!(
                    "{} {:?} {:?} {:?}",
                    j.code, j.lineage, j.regimes, j.parameters
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&forward), summary(&backward));
}

#[test]
fn an_unknown_parent_is_blamed_on_the_file_that_names_it() {
    let err = load_err(&[
        ("jurisdictions/AB.yaml", "code: AB\nname: A\nparent: CY\n"),
        ("jurisdictions/CY.yaml", "code: CY\nname: C\nparent: ZZ\n"),
    ]);
    assert_eq!(
        err,
        JurisdictionError::UnknownParent {
            path: "jurisdictions/CY.yaml".into(),
            code: "CY".into(),
            parent: "ZZ".into()
        }
    );
}

#[test]
fn a_country_alias_that_is_another_code_is_refused() {
    let err = load_err(&[
        ("jurisdictions/US.yaml", "code: US\nname: United States\n"),
        (
            "jurisdictions/CH.yaml",
            "code: CH\nname: Switzerland\ncountry: US\n",
        ),
    ]);
    insta::assert_snapshot!(err.to_string(), @"jurisdictions/CH.yaml: field `country`: `US` is the code of another jurisdiction");
}

#[test]
fn a_duplicate_code_is_reported_as_such_even_with_a_country() {
    let err = load_err(&[
        (
            "jurisdictions/EU-DE.yaml",
            "code: EU-DE\nname: Germany\ncountry: DE\n",
        ),
        (
            "jurisdictions/copy/EU-DE.yaml",
            "code: EU-DE\nname: Germany again\ncountry: DE\n",
        ),
    ]);
    assert!(
        err.to_string().contains("`EU-DE` is already defined in"),
        "{err}"
    );
}

/// The repository's own jurisdiction files (the default bundle's `jurisdictions/`).
fn repository_table() -> JurisdictionTable {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jurisdictions");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("jurisdictions/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
            let bytes = std::fs::read(&path).expect("a readable file");
            files.push((format!("jurisdictions/{name}"), bytes));
        }
    }
    JurisdictionTable::from_yaml(files.iter().map(|(p, b)| (p.as_str(), b.as_slice())))
        .expect("the repository's jurisdictions load")
}

#[test]
fn every_us_state_district_and_inhabited_territory_is_a_jurisdiction_under_us() {
    let table = repository_table();
    let codes = [
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
        "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ",
        "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT",
        "VA", "WA", "WV", "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
    ];
    assert_eq!(codes.len(), 56);
    for code in codes {
        let code = format!("US-{code}");
        let j = table
            .get(&code)
            .unwrap_or_else(|| panic!("{code} is missing"));
        assert_eq!(j.parent.as_deref(), Some("US"), "{code}'s parent");
        // HIPAA and Part 2 apply everywhere by inheritance, with the federal parameters.
        assert!(
            j.regimes.contains("HIPAA") && j.regimes.contains("42-CFR-Part-2"),
            "{code}"
        );
        assert!(j.parameters.contains_key("access_response_hours"), "{code}");
    }
    let us_children = table
        .iter()
        .filter(|j| j.parent.as_deref() == Some("US"))
        .count();
    assert_eq!(us_children, 56, "no other US subdivision");
}

#[test]
fn a_territory_s_own_alpha_2_code_resolves_to_its_us_subdivision() {
    let table = repository_table();
    for (alias, code) in [
        ("PR", "US-PR"),
        ("GU", "US-GU"),
        ("VI", "US-VI"),
        ("AS", "US-AS"),
        ("MP", "US-MP"),
    ] {
        let j = table
            .resolve(alias)
            .unwrap_or_else(|| panic!("{alias} resolves"));
        assert_eq!(j.code, code);
        assert_eq!(j.lineage, vec![code, "US"]);
    }
    // A recipient in Puerto Rico named by its alpha-2 code is in US-PR and the US.
    let a = repository_table()
        .applicable(&testing::access(json!({
            "actor": { "jurisdiction": "US-NJ" },
            "resource": { "jurisdiction": "US-NJ", "patient": { "residence": "PR" } },
            "context": { "recipient": { "id": "org/x", "country": "GU" } }
        })))
        .expect("known jurisdictions");
    assert_eq!(a.jurisdictions, vec!["US", "US-GU", "US-NJ", "US-PR"]);
    assert_eq!(a.patient_jurisdiction.as_deref(), Some("US-PR"));
    // A state's postal code is not an alias: `NJ` is not a country.
    assert!(table.resolve("NJ").is_none());
    // An unknown subdivision stays an error naming the field.
    let err = table
        .applicable(&testing::access(
            json!({ "actor": { "jurisdiction": "US-ZZ" } }),
        ))
        .expect_err("unknown");
    assert!(
        matches!(err, JurisdictionError::UnknownInTransaction { ref field, .. } if field == "actor.jurisdiction")
    );
}
