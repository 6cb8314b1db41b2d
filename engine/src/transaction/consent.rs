//! The records of `consent` transactions (docs/contract.md §3): what the ledger says about a
//! consent. The registry that keeps them, and what they mean, is [`crate::consent`].

use super::{Action, CountryCode, DataCategory, PurposeOfUse, Timestamp};
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
    /// What the data subject was told of, and agreed to, about a transfer of the data to a
    /// third country (GDPR Art. 49(1)(a); Swiss FADP Art. 17(1)(a)). Absent: the consent says
    /// nothing about a transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferConsent>,
    /// What the consent is under 42 CFR Part 2, when it is more than a consent to the purposes,
    /// actions and categories it names ([`Part2Consent`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part2: Option<Part2Consent>,
}

/// `consent.transfer`: the data subject's consent to the proposed transfer itself. GDPR
/// Art. 49(1)(a) needs it to be explicit and given after the data subject was informed of the
/// possible risks of the transfer owing to the absence of an adequacy decision and of
/// appropriate safeguards. All three fields are required, so a record says which it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferConsent {
    /// The third countries the consent names (ISO 3166-1 alpha-2).
    pub countries: Vec<CountryCode>,
    /// The consent to the transfer was explicit (an express statement, not implied).
    pub explicit: bool,
    /// The data subject was informed of the possible risks of the transfer first.
    pub risks_informed: bool,
}

impl TransferConsent {
    /// Whether this is the consent Art. 49(1)(a) asks for: explicit, after being informed of the
    /// risks.
    pub fn qualifies(&self) -> bool {
        self.explicit && self.risks_informed
    }
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
    pub(crate) fn term_hours(&self) -> Option<i64> {
        let (start, end) = (self.start.as_ref()?, self.end.as_ref()?);
        let seconds = end.unix().saturating_sub(start.unix());
        Some(seconds.saturating_add(3599) / 3600)
    }

    pub(crate) fn contains(&self, at: i64) -> bool {
        self.start.as_ref().is_none_or(|s| s.unix() <= at)
            && self.end.as_ref().is_none_or(|e| at < e.unix())
    }
}

/// `consent.part2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part2Consent {
    /// The single consent for all future uses and disclosures for treatment, payment and health
    /// care operations (42 CFR 2.31(a)(4)(i), (a)(5)(ii), 2.33(a)(2)). The grantee is the Part 2
    /// program, covered entity or business associate that holds it; the recipients are the general
    /// designation "my treating providers, health plans, third-party payers, and people helping to
    /// operate this program".
    #[serde(rename = "tpo")]
    Tpo,
    /// A consent to the use or disclosure of SUD counseling notes, which may be combined only with
    /// another such consent (42 CFR 2.31(b)(2)). It covers SUD counseling notes only (records
    /// carrying both `substance-use` and `psychotherapy-notes`), never the rest of the record.
    #[serde(rename = "counseling-notes")]
    CounselingNotes,
}
