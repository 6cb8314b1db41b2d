//! Consent state (docs/contract.md §3): written by `consent` transactions in ledger order, read by evaluation.
//!
//! A requester can never assert consent: evaluation asks the registry, and the registry only knows
//! what `consent` transactions recorded. The same record serves as a GDPR consent, a HIPAA
//! authorization (45 CFR 164.508) and a 42 CFR Part 2 consent; each regime's rules decide which data
//! categories it needs covered ([`ConsentFacts::categories`]). The registry also keeps the
//! ledger's representations and data use agreements ([`crate::relations`]).

mod err;
mod memory;
mod part2;

pub use err::ConsentError;
pub use memory::InMemoryConsentRegistry;

use crate::relations::{
    AgreementFacts, AgreementQuery, AuthorizationFacts, RepresentationFacts, RepresentationQuery,
};
use crate::transaction::{Action, ConsentTransaction, DataCategory, PurposeOfUse, Timestamp};
use serde::{Deserialize, Serialize};

pub use crate::transaction::consent::{
    ConsentRecord, ConsentStatus, Part2Consent, Period, TransferConsent,
};

/// What one consent looks like in the registry: the latest grant and, once withdrawn, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentEntry {
    pub record: ConsentRecord,
    /// The transaction that granted (or last re-stated) it.
    pub granted_by: String,
    /// That transaction's ledger time. Absent only in entries stored before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_at: Option<Timestamp>,
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

    /// When the data subject gave this consent: the ledger time of the grant, or the start of
    /// its period if that is earlier (a consent given before it was recorded); `None` when
    /// neither is known.
    pub fn given_at(&self) -> Option<i64> {
        let start = self
            .record
            .period
            .as_ref()
            .and_then(|p| p.start.as_ref())
            .map(Timestamp::unix);
        let granted = self.granted_at.as_ref().map(Timestamp::unix);
        match (granted, start) {
            (Some(g), Some(s)) => Some(g.min(s)),
            (g, s) => g.or(s),
        }
    }
}

/// One consent question: may `grantee` do `action` for `purpose` on `patient`'s data now?
#[derive(Debug, Clone)]
pub struct ConsentQuery<'a> {
    pub patient: &'a str,
    pub grantee: &'a str,
    /// The party that uses or discloses the record (the actor's organization, or the actor): the
    /// one a single Part 2 TPO consent must name ([`ConsentFacts::part2_tpo`]).
    pub holder: &'a str,
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
    /// When the consents relied on were given, for rules that depend on the data subject's
    /// situation then (GDPR Art. 8(1): the child's age). For each category of the record, the
    /// latest [`ConsentEntry::given_at`] among the consents in force covering it; then the
    /// earliest of those. So every category is covered by a consent given at or after this time,
    /// and no later time has that property. `None` unless every category is covered and each
    /// time is known.
    pub given_at: Option<i64>,
    /// Countries to which the consents in force consent to a transfer (GDPR Art. 49(1)(a)):
    /// for each category of the record, the countries named by a qualifying
    /// [`TransferConsent`] of a consent in force covering it; then the countries common to every
    /// category. Sorted; empty unless every category is covered.
    pub transfer_countries: Vec<String>,
    /// A single consent for all future uses and disclosures for treatment, payment and health care
    /// operations (`part2: tpo`) is in force and names the holder as grantee, and the record is a
    /// substance use disorder record other than SUD counseling notes (42 CFR 2.33(a)(2), (b)).
    /// Whatever the query's purpose and action: the rules decide which uses it reaches.
    pub part2_tpo: bool,
    /// A consent in force names the holder as grantee and covers its substance use disorder
    /// records (other than SUD counseling notes) for treatment, payment or health care operations
    /// (`TREAT`, `HPAYMT` or `HOPERAT`): the holder received them for those activities (42 CFR
    /// 2.33(b)(1)). Every `part2_tpo` consent is one.
    pub holder_tpo: bool,
    /// A consent given for SUD counseling notes (`part2: counseling-notes`) covers the query
    /// (42 CFR 2.31(b)).
    pub counseling_notes: bool,
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

    /// The consents of `query` that may serve as a HIPAA authorization (none by default).
    fn authorization(&self, _query: &ConsentQuery<'_>) -> AuthorizationFacts {
        AuthorizationFacts::default()
    }

    /// The representations in force for `query` (none by default).
    fn representation(&self, _query: &RepresentationQuery<'_>) -> RepresentationFacts {
        RepresentationFacts::default()
    }

    /// The data use agreements in force for `query` (none by default).
    fn agreements(&self, _query: &AgreementQuery<'_>) -> AgreementFacts {
        AgreementFacts::default()
    }
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
        if let Some(transfer) = &record.transfer {
            if transfer.countries.is_empty() {
                return invalid(
                    "transfer.countries",
                    "a transfer consent must name the countries of the proposed transfer",
                );
            }
            if !record
                .actions
                .iter()
                .any(|a| matches!(a, Action::Share | Action::Export))
            {
                return invalid(
                    "transfer",
                    "a transfer consent needs a consent to `share` or `export` among `actions`",
                );
            }
        }
    }
    part2::check(record)
}

#[cfg(test)]
mod part2_tests;
#[cfg(test)]
mod tests;
