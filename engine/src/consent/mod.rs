//! Consent state (docs/contract.md §3): written by `consent` transactions in ledger order, read by evaluation.
//!
//! A requester can never assert consent: evaluation asks the registry, and the registry only knows
//! what `consent` transactions recorded. The same record serves as a GDPR consent, a HIPAA
//! authorization (45 CFR 164.508) and a 42 CFR Part 2 consent; each regime's rules decide which data
//! categories it needs covered ([`ConsentFacts::categories`]).

mod err;
mod memory;

pub use err::ConsentError;
pub use memory::InMemoryConsentRegistry;

use crate::transaction::{Action, ConsentTransaction, DataCategory, PurposeOfUse, Timestamp};
use serde::{Deserialize, Serialize};

/// `consent.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentStatus {
    Active,
    Revoked,
}

/// The `consent` object of a consent transaction. A revocation needs only `id`, `status` and
/// `patient`; a grant needs every field but `period`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRecord {
    pub id: String,
    pub status: ConsentStatus,
    pub patient: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grantee: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<PurposeOfUse>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_categories: Vec<DataCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

/// Validity window; `start` inclusive, `end` exclusive, either may be open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
}

impl Period {
    /// Hours from start to end, rounded up; `None` when either is open.
    fn term_hours(&self) -> Option<i64> {
        let (start, end) = (self.start.as_ref()?, self.end.as_ref()?);
        let seconds = end.unix().saturating_sub(start.unix());
        Some(seconds.saturating_add(3599) / 3600)
    }

    fn contains(&self, at: i64) -> bool {
        self.start.as_ref().is_none_or(|s| s.unix() <= at)
            && self.end.as_ref().is_none_or(|e| at < e.unix())
    }
}

/// What one consent looks like in the registry: the latest grant and, once withdrawn, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentEntry {
    pub record: ConsentRecord,
    /// The transaction that granted (or last re-stated) it.
    pub granted_by: String,
    /// The transaction that revoked it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

impl ConsentEntry {
    /// Whether this consent names the patient, grantee, purpose and action of `query`.
    fn names(&self, query: &ConsentQuery<'_>) -> bool {
        let r = &self.record;
        r.patient == query.patient
            && r.grantee.as_deref() == Some(query.grantee)
            && query
                .purpose
                .is_some_and(|p| r.purposes.iter().any(|q| q == p))
            && r.actions.contains(&query.action)
    }

    fn in_force(&self, at: i64) -> bool {
        self.revoked_by.is_none()
            && self.record.status == ConsentStatus::Active
            && self.record.period.as_ref().is_none_or(|p| p.contains(at))
    }
}

/// One consent question: may `grantee` do `action` for `purpose` on `patient`'s data now?
#[derive(Debug, Clone)]
pub struct ConsentQuery<'a> {
    pub patient: &'a str,
    pub grantee: &'a str,
    pub purpose: Option<&'a PurposeOfUse>,
    pub action: Action,
    pub categories: &'a [DataCategory],
    /// Ledger time, seconds since the epoch.
    pub at: i64,
}

/// What the registry establishes for a query. Sorted, so it is the same on every node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentFacts {
    /// Categories of the record covered by a consent in force that names the query.
    pub categories: Vec<DataCategory>,
    /// The consents in force that cover some category.
    pub consent_ids: Vec<String>,
    /// A consent naming the query was revoked and the ones in force do not cover every category.
    pub withdrawn: bool,
    /// The longest validity period, in whole hours rounded up, of the consents in `consent_ids`;
    /// `None` when there is none, or one of them is open-ended (no period, start or end). A rule
    /// that needs consent to expire within a time (e.g. a one-year sale authorization) reads it.
    pub term_hours: Option<i64>,
}

/// Consent state. Implementations apply consent transactions in ledger order and answer queries
/// from the state so built; they never consult a clock.
pub trait ConsentRegistry {
    /// Applies one consent transaction. On error the state is unchanged.
    fn apply(&mut self, tx: &ConsentTransaction) -> Result<(), ConsentError>;

    /// Answers a query from the current state.
    fn facts(&self, query: &ConsentQuery<'_>) -> ConsentFacts;

    /// Every consent of `patient`, ordered by consent id.
    fn of_patient(&self, patient: &str) -> Vec<ConsentEntry>;

    /// A digest of the whole state, equal on every node that applied the same transactions.
    fn digest(&self) -> [u8; 32];
}

/// Checks a consent record on its own (without the registry state).
pub(crate) fn check_record(record: &ConsentRecord) -> Result<(), ConsentError> {
    let invalid = |field: &str, reason: &str| {
        Err(ConsentError::Invalid {
            consent: record.id.clone(),
            field: format!("consent.{field}"),
            reason: reason.to_owned(),
        })
    };
    if record.id.trim().is_empty() {
        return invalid("id", "must not be empty");
    }
    if record.patient.trim().is_empty() {
        return invalid("patient", "must not be empty");
    }
    if record.status == ConsentStatus::Active {
        if record
            .grantee
            .as_deref()
            .is_none_or(|g| g.trim().is_empty())
        {
            return invalid("grantee", "an active consent must name its grantee");
        }
        if record.purposes.is_empty() {
            return invalid(
                "purposes",
                "an active consent must name at least one purpose",
            );
        }
        if record.actions.is_empty() {
            return invalid("actions", "an active consent must name at least one action");
        }
        if record.data_categories.is_empty() {
            return invalid(
                "data_categories",
                "an active consent must name at least one data category",
            );
        }
        if let Some(Period {
            start: Some(s),
            end: Some(e),
        }) = &record.period
        {
            if e.unix() <= s.unix() {
                return invalid("period.end", "must be after period.start");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
