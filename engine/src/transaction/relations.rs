//! The records of `representation` and `agreement` transactions (docs/contract.md §3a, §3b): what
//! the ledger says about a personal representative or a data use agreement. The registry that
//! keeps them, and what they mean, is [`crate::relations`].

use super::consent::Period;
use super::values::closed_enum;
use super::{PurposeOfUse, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

closed_enum!(
    /// `representation.status`.
    RepresentationStatus {
        Active = "active",
        Revoked = "revoked",
    }
);

closed_enum!(
    /// `representation.basis`: why the representative may act for the patient (45 CFR 164.502(g)).
    RepresentationBasis {
        /// A parent of an unemancipated minor ((g)(3)(i)).
        Parent = "parent",
        /// A legal guardian: of a minor ((g)(3)(i)) or of an adult ((g)(2)).
        Guardian = "guardian",
        /// Another person acting in loco parentis of a minor ((g)(3)(i)).
        InLocoParentis = "in-loco-parentis",
        /// A health care agent under a health care power of attorney or advance directive ((g)(2)).
        HealthCareAgent = "health-care-agent",
        /// A person a court appointed to make health care decisions (a conservator) ((g)(2)).
        CourtAppointed = "court-appointed",
        /// A person with authority under other law (e.g. a State surrogate-consent statute) to make
        /// health care decisions for an adult or emancipated minor ((g)(2)).
        Surrogate = "surrogate",
        /// The executor of a deceased individual's estate ((g)(4)).
        Executor = "executor",
        /// The administrator of a deceased individual's estate ((g)(4)).
        Administrator = "administrator",
        /// Another person with authority under law to act for a deceased individual or their
        /// estate ((g)(4)).
        EstateRepresentative = "estate-representative",
    }
);

/// The `representation` object of a representation transaction. Ending one needs only `id`,
/// `status: revoked` and `patient`; recording one needs `representative` and `basis` too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepresentationRecord {
    pub id: String,
    pub status: RepresentationStatus,
    pub patient: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub representative: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<RepresentationBasis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

closed_enum!(
    /// `agreement.status`.
    AgreementStatus {
        Active = "active",
        Terminated = "terminated",
    }
);

closed_enum!(
    /// `agreement.type`.
    AgreementType {
        /// The data use agreement of 45 CFR 164.514(e)(4) for a limited data set.
        DataUseAgreement = "data-use-agreement",
    }
);

closed_enum!(
    /// What the recipient of a limited data set assures in a data use agreement
    /// (45 CFR 164.514(e)(4)(ii)(C)(1)-(5)).
    DuaAssurance {
        /// (C)(1) not to use or further disclose the information other than as the agreement
        /// permits or as required by law.
        NoOtherUseOrDisclosure = "no-other-use-or-disclosure",
        /// (C)(2) to use appropriate safeguards against any other use or disclosure.
        Safeguards = "safeguards",
        /// (C)(3) to report to the covered entity any use or disclosure the agreement does not
        /// provide for of which it becomes aware.
        ReportViolations = "report-violations",
        /// (C)(4) to ensure that any agents to whom it provides the data set agree to the same
        /// restrictions and conditions.
        AgentsBound = "agents-bound",
        /// (C)(5) not to identify the information or contact the individuals.
        NoIdentificationOrContact = "no-identification-or-contact",
    }
);

/// The `agreement` object of an agreement transaction. Ending one needs only `id` and
/// `status: terminated`; recording one needs every field but `period`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementRecord {
    pub id: String,
    pub status: AgreementStatus,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<AgreementType>,
    /// The covered entity that discloses (or uses) the limited data set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discloser: Option<String>,
    /// Who may use or receive it ((e)(4)(ii)(B)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The permitted uses and disclosures ((e)(4)(ii)(A)), as purposes of use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purposes: Vec<PurposeOfUse>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assurances: Vec<DuaAssurance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

/// A `representation` transaction (docs/contract.md §3a).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepresentationTransaction {
    pub id: String,
    pub kind: super::RepresentationKind,
    pub timestamp: Timestamp,
    pub representation: RepresentationRecord,
}

/// An `agreement` transaction (docs/contract.md §3b).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementTransaction {
    pub id: String,
    pub kind: super::AgreementKind,
    pub timestamp: Timestamp,
    pub agreement: AgreementRecord,
}
