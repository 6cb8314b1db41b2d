//! Relationships the law makes decisive, kept on the ledger beside consent (docs/contract.md §3a,
//! §3b): who is a patient's personal representative, and which data use agreements bind a
//! discloser and a recipient. Like consent, they are written by their own transactions in ledger
//! order and read by evaluation; a requester can never assert them inside an `access` transaction.
//!
//! - A **representation** (`kind: representation`) records that a person is the personal
//!   representative of a patient (45 CFR 164.502(g)) on a stated basis: a parent or guardian of a
//!   minor, a health-care agent, a court-appointed guardian or conservator, the executor or
//!   administrator of a decedent's estate. Evaluation derives whether the actor represents the
//!   record's patient, and on which bases; the rules decide what each basis allows (an adult's
//!   parent, say, is no personal representative).
//! - An **agreement** (`kind: agreement`) of type `data-use-agreement` records the data use
//!   agreement of 45 CFR 164.514(e)(4) between a covered entity (the discloser) and the recipient of
//!   a limited data set: the purposes it permits and the recipient's assurances. A record that
//!   lacks any assurance (e)(4)(ii)(C) requires is refused: it is no data use agreement.
//!
//! [`AuthorizationFacts`] is derived from the consent registry: the consents that may serve as a
//! HIPAA authorization, leaving out compound authorizations that 45 CFR 164.508(b)(3)(ii) forbids
//! (a consent naming psychotherapy notes together with other PHI).

mod err;
mod memory;

pub use crate::transaction::relations::{
    AgreementRecord, AgreementStatus, AgreementTransaction, AgreementType, DuaAssurance,
    RepresentationBasis, RepresentationRecord, RepresentationStatus, RepresentationTransaction,
};
pub use err::RelationError;
pub use memory::InMemoryRelations;

use crate::consent::Period;
use crate::transaction::{DataCategory, PurposeOfUse};
use serde::{Deserialize, Serialize};

/// One representation in the registry: the latest statement and, once ended, by what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepresentationEntry {
    pub record: RepresentationRecord,
    /// The transaction that recorded (or last re-stated) it.
    pub granted_by: String,
    /// The transaction that revoked it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

impl RepresentationEntry {
    fn in_force(&self, at: i64) -> bool {
        self.revoked_by.is_none()
            && self.record.status == RepresentationStatus::Active
            && self.record.period.as_ref().is_none_or(|p| p.contains(at))
    }
}

/// One agreement in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementEntry {
    pub record: AgreementRecord,
    /// The transaction that recorded (or last re-stated) it.
    pub recorded_by: String,
    /// The transaction that terminated it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated_by: Option<String>,
}

impl AgreementEntry {
    fn in_force(&self, at: i64) -> bool {
        self.terminated_by.is_none()
            && self.record.status == AgreementStatus::Active
            && self.record.period.as_ref().is_none_or(|p| p.contains(at))
    }
}

/// Does `representative` represent `patient` now?
#[derive(Debug, Clone)]
pub struct RepresentationQuery<'a> {
    pub patient: &'a str,
    pub representative: &'a str,
    /// Ledger time, seconds since the epoch.
    pub at: i64,
}

/// What the registry establishes about a representation. Sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepresentationFacts {
    /// The bases of the representations in force naming the actor for the patient.
    pub bases: Vec<RepresentationBasis>,
    /// Their ids.
    pub ids: Vec<String>,
}

impl RepresentationFacts {
    /// Whether some representation in force names the actor for the patient.
    pub fn represents(&self) -> bool {
        !self.ids.is_empty()
    }
}

/// Is there a data use agreement in force between these parties for this purpose?
#[derive(Debug, Clone)]
pub struct AgreementQuery<'a> {
    /// Who discloses: any of these (empty: any discloser, for a recipient's own use).
    pub disclosers: &'a [&'a str],
    /// Who receives or uses: any of these.
    pub recipients: &'a [&'a str],
    pub purpose: Option<&'a PurposeOfUse>,
    pub at: i64,
}

/// What the registry establishes about agreements. Sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgreementFacts {
    /// Data use agreements in force between the parties naming the purpose.
    pub data_use_agreements: Vec<String>,
}

/// The consents that may serve as a HIPAA authorization (45 CFR 164.508) for a consent query.
///
/// A consent naming `psychotherapy-notes` is an authorization for psychotherapy notes: its other
/// categories describe the notes (`mental-health`, `substance-use` for SUD counseling notes, what
/// the notes concern), and it authorizes only records that are psychotherapy notes. One that also
/// names `general` — PHI other than the notes — combines an authorization for psychotherapy notes
/// with another authorization, which 164.508(b)(3)(ii) forbids: it is defective
/// (164.508(b)(2)(iv)) and authorizes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationFacts {
    /// Categories of the record covered by a consent in force naming the query that may serve as
    /// an authorization for it.
    pub categories: Vec<DataCategory>,
    /// Consents in force naming the query that combine `psychotherapy-notes` with `general`.
    pub compound_ids: Vec<String>,
}

/// Everything the ledger's relationships establish for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationFacts {
    pub authorization: AuthorizationFacts,
    pub representation: RepresentationFacts,
    pub agreements: AgreementFacts,
}

fn invalid<T>(kind: &'static str, id: &str, field: &str, reason: &str) -> Result<T, RelationError> {
    Err(RelationError::Invalid {
        kind,
        id: id.to_owned(),
        field: format!("{kind}.{field}"),
        reason: reason.to_owned(),
    })
}

fn check_period(
    kind: &'static str,
    id: &str,
    period: &Option<Period>,
) -> Result<(), RelationError> {
    if let Some(Period {
        start: Some(s),
        end: Some(e),
    }) = period
    {
        if e.unix() <= s.unix() {
            return invalid(kind, id, "period.end", "must be after period.start");
        }
    }
    Ok(())
}

fn blank(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.trim().is_empty())
}

/// Checks a representation record on its own (without the registry state).
pub(crate) fn check_representation(r: &RepresentationRecord) -> Result<(), RelationError> {
    const K: &str = "representation";
    if r.id.trim().is_empty() {
        return invalid(K, &r.id, "id", "must not be empty");
    }
    if r.patient.trim().is_empty() {
        return invalid(K, &r.id, "patient", "must not be empty");
    }
    if r.status == RepresentationStatus::Active {
        if blank(&r.representative) {
            return invalid(
                K,
                &r.id,
                "representative",
                "an active representation must name the representative",
            );
        }
        if r.representative.as_deref() == Some(r.patient.as_str()) {
            return invalid(
                K,
                &r.id,
                "representative",
                "a patient cannot be their own personal representative",
            );
        }
        if r.basis.is_none() {
            return invalid(
                K,
                &r.id,
                "basis",
                "an active representation must state its basis",
            );
        }
        check_period(K, &r.id, &r.period)?;
    }
    Ok(())
}

/// Checks an agreement record on its own (without the registry state).
pub(crate) fn check_agreement(a: &AgreementRecord) -> Result<(), RelationError> {
    const K: &str = "agreement";
    if a.id.trim().is_empty() {
        return invalid(K, &a.id, "id", "must not be empty");
    }
    if a.status == AgreementStatus::Active {
        let Some(kind) = a.kind else {
            return invalid(K, &a.id, "type", "an active agreement must state its type");
        };
        if blank(&a.discloser) {
            return invalid(
                K,
                &a.id,
                "discloser",
                "an active agreement must name the discloser",
            );
        }
        if blank(&a.recipient) {
            return invalid(
                K,
                &a.id,
                "recipient",
                "an active agreement must name the recipient",
            );
        }
        if a.discloser == a.recipient {
            return invalid(K, &a.id, "recipient", "must differ from the discloser");
        }
        if a.purposes.is_empty() {
            return invalid(K, &a.id, "purposes", "an active agreement must name the uses and disclosures it permits (45 CFR 164.514(e)(4)(ii)(A))");
        }
        match kind {
            AgreementType::DataUseAgreement => {
                let missing: Vec<&str> = DuaAssurance::ALL
                    .iter()
                    .filter(|x| !a.assurances.contains(x))
                    .map(|x| x.as_str())
                    .collect();
                if !missing.is_empty() {
                    return invalid(
                        K,
                        &a.id,
                        "assurances",
                        &format!(
                            "a data use agreement must contain every assurance of 45 CFR 164.514(e)(4)(ii)(C); missing: {}",
                            missing.join(", ")
                        ),
                    );
                }
            }
        }
        check_period(K, &a.id, &a.period)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
