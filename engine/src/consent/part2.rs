//! What a consent record says about itself under 42 CFR Part 2 (docs/contract.md §3
//! `consent.part2`): whether it is the single consent for all future uses and disclosures for
//! treatment, payment and health care operations, or a consent given for SUD counseling notes.
//! Both change what the record covers, so a record that claims either is checked against what
//! Part 2 lets such a consent say.

use super::{ConsentError, ConsentRecord, ConsentStatus, Part2Consent};
use crate::transaction::DataCategory;

/// The purposes a single TPO consent must name.
const TPO_PURPOSES: [&str; 3] = ["TREAT", "HPAYMT", "HOPERAT"];
/// Use or disclosure in civil, criminal, administrative or legislative proceedings.
const PROCEEDINGS: &str = "HLEGAL";

/// Checks what an active record claiming a Part 2 kind may say.
pub(super) fn check(record: &ConsentRecord) -> Result<(), ConsentError> {
    let Some(kind) = record.part2 else {
        return Ok(());
    };
    if record.status != ConsentStatus::Active {
        return Ok(());
    }
    let invalid = |field: &str, reason: &str| {
        Err(ConsentError::Invalid {
            consent: record.id.clone(),
            field: format!("consent.{field}"),
            reason: reason.to_owned(),
        })
    };
    let names = |code: &str| record.purposes.iter().any(|p| p.as_str() == code);
    let has = |category: DataCategory| record.data_categories.contains(&category);
    if names(PROCEEDINGS) && (kind == Part2Consent::Tpo || record.purposes.len() > 1) {
        return invalid(
            "purposes",
            "a consent to use or disclose records in civil, criminal, administrative or legislative proceedings may not be combined with a consent for any other purpose (42 CFR 2.31(d))",
        );
    }
    match kind {
        Part2Consent::Tpo => {
            if !TPO_PURPOSES.iter().all(|p| names(p)) {
                return invalid(
                    "purposes",
                    "the single consent for all future uses and disclosures for treatment, payment and health care operations names TREAT, HPAYMT and HOPERAT (42 CFR 2.33(a)(2))",
                );
            }
            if !has(DataCategory::SubstanceUse) {
                return invalid(
                    "data_categories",
                    "a Part 2 TPO consent covers substance use disorder records: it names substance-use (42 CFR 2.31(a)(3))",
                );
            }
            if has(DataCategory::PsychotherapyNotes) {
                return invalid(
                    "data_categories",
                    "a consent to SUD counseling notes may be combined only with another consent to SUD counseling notes, not with a TPO consent (42 CFR 2.31(b)(2))",
                );
            }
        }
        Part2Consent::CounselingNotes => {
            let only_notes = record.data_categories.iter().all(|c| {
                *c == DataCategory::SubstanceUse || *c == DataCategory::PsychotherapyNotes
            });
            if !has(DataCategory::SubstanceUse)
                || !has(DataCategory::PsychotherapyNotes)
                || !only_notes
            {
                return invalid(
                    "data_categories",
                    "a consent to SUD counseling notes names substance-use and psychotherapy-notes and nothing else: it may be combined only with another consent to SUD counseling notes (42 CFR 2.31(b)(2))",
                );
            }
        }
    }
    Ok(())
}

/// Whether a consent names treatment, payment or health care operations.
pub(super) fn names_tpo_purpose(record: &ConsentRecord) -> bool {
    record
        .purposes
        .iter()
        .any(|p| TPO_PURPOSES.contains(&p.as_str()))
}

/// Whether a record carrying `categories` is SUD counseling notes (both categories).
pub(super) fn counseling_notes(categories: &[DataCategory]) -> bool {
    categories.contains(&DataCategory::SubstanceUse)
        && categories.contains(&DataCategory::PsychotherapyNotes)
}
