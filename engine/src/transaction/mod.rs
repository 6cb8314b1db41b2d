//! The transaction a ledger node sends (docs/contract.md §1).
//!
//! Parsing is strict: unknown fields are refused at every level except the free-form `attributes`
//! maps, enumerations accept only their documented values, and timestamps, dates, jurisdiction codes
//! and hashes are checked while parsing. A value of these types is therefore always well formed; the
//! evaluator never re-checks it.

pub mod consent;
mod err;
pub mod relations;
pub(crate) mod values;

pub use err::TransactionError;
pub use values::{
    Action, ActorType, BirthDate, CountryCode, DataCategory, FhirType, JurisdictionCode,
    LegalBasis, LegalClaimProcedure, PurposeOfUse, Timestamp,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Context keys that the engine reads from `context.attributes` (Cedar's context among them),
/// with their types: [`AccessRequest::check`] refuses a value of another type.
pub(crate) const TYPED_ATTRIBUTES: &[(&str, &str)] = &[
    ("irb_waiver", "boolean"),
    ("de_identified", "boolean"),
    ("transfer_safeguard", "string"),
    ("treatment_basis", "string"),
];

/// A transaction of any kind, as it appears in a block.
#[derive(Debug, Clone, PartialEq)]
pub enum Transaction {
    Access(Box<AccessRequest>),
    Consent(ConsentTransaction),
    /// A personal representative recorded or revoked (docs/contract.md §3a).
    Representation(relations::RepresentationTransaction),
    /// A data use agreement recorded or terminated (docs/contract.md §3b).
    Agreement(relations::AgreementTransaction),
    /// Governance messages are interpreted by the governance crate; the engine keeps them whole.
    Governance(GovernanceTransaction),
}

impl Transaction {
    /// Parses one transaction from JSON text, dispatching on `kind`. Duplicate keys are refused
    /// at any depth ([`crate::json`]).
    pub fn from_json(text: &str) -> Result<Self, TransactionError> {
        Transaction::from_value(crate::json::value_from_str(text)?)
    }

    /// Parses one transaction from a JSON value, dispatching on `kind`. The value must have been
    /// read by [`crate::json`] (or built in code): a value read by a lenient reader may already
    /// have lost a repeated key's first spelling.
    pub fn from_value(value: Value) -> Result<Self, TransactionError> {
        let kind = match value.get("kind") {
            Some(Value::String(kind)) => kind.clone(),
            Some(_) => return Err(TransactionError::new("kind", "must be a string")),
            None => return Err(TransactionError::new("kind", "missing field")),
        };
        match kind.as_str() {
            "access" => {
                let request: AccessRequest = from_value(value)?;
                request.check()?;
                Ok(Transaction::Access(Box::new(request)))
            }
            "consent" => from_value(value).map(Transaction::Consent),
            "representation" => from_value(value).map(Transaction::Representation),
            "agreement" => from_value(value).map(Transaction::Agreement),
            "governance" => from_value(value).map(Transaction::Governance),
            other => Err(TransactionError::new(
                "kind",
                format!(
                    "unknown kind `{other}`, expected one of `access`, `consent`, `representation`, `agreement`, `governance`"
                ),
            )),
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Transaction::Access(t) => &t.id,
            Transaction::Consent(t) => &t.id,
            Transaction::Representation(t) => &t.id,
            Transaction::Agreement(t) => &t.id,
            Transaction::Governance(t) => &t.id,
        }
    }

    /// The transaction's `kind`, as spelled on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Transaction::Access(_) => "access",
            Transaction::Consent(_) => "consent",
            Transaction::Representation(_) => "representation",
            Transaction::Agreement(_) => "agreement",
            Transaction::Governance(_) => "governance",
        }
    }
}

fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, TransactionError> {
    // As in `AccessRequest::from_json`: the path is tracked only to explain a failure.
    match T::deserialize(&value) {
        Ok(parsed) => Ok(parsed),
        Err(_) => serde_path_to_error::deserialize(value).map_err(TransactionError::from_path),
    }
}

/// Marker for the `kind` field of a typed transaction: only its one value parses.
macro_rules! kind_marker {
    ($name:ident, $text:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
        pub enum $name {
            #[default]
            #[serde(rename = $text)]
            Only,
        }
    };
}
kind_marker!(AccessKind, "access");
kind_marker!(ConsentKind, "consent");
kind_marker!(RepresentationKind, "representation");
kind_marker!(AgreementKind, "agreement");
kind_marker!(GovernanceKind, "governance");

/// An `access` transaction: a data operation to decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRequest {
    pub id: String,
    pub kind: AccessKind,
    pub timestamp: Timestamp,
    pub actor: Actor,
    pub action: Action,
    pub resource: Resource,
    #[serde(default)]
    pub context: RequestContext,
}

// INVARIANT (json::Strict): derived structs all the way down; the free-form `attributes` are
// `json::Object`s.
impl crate::json::Strict for AccessRequest {}

impl AccessRequest {
    /// Parses an access transaction from JSON text, naming the field of any error. Duplicate
    /// keys are refused at any depth ([`crate::json`]).
    pub fn from_json(text: &str) -> Result<Self, TransactionError> {
        // serde would also accept a JSON array in field order; a transaction is an object.
        if !text.trim_start().starts_with('{') {
            return Err(TransactionError::new(
                ".",
                "a transaction must be a JSON object",
            ));
        }
        let request: AccessRequest = crate::json::from_str(text)?;
        request.check()?;
        Ok(request)
    }

    /// Checks that serde's per-field parsing cannot express.
    pub(crate) fn check(&self) -> Result<(), TransactionError> {
        non_empty("id", &self.id)?;
        non_empty("actor.id", &self.actor.id)?;
        non_empty("resource.id", &self.resource.id)?;
        if let Some(patient) = &self.resource.patient {
            non_empty("resource.patient.id", &patient.id)?;
        }
        if let Some(recipient) = &self.context.recipient {
            non_empty("context.recipient.id", &recipient.id)?;
        }
        if let Some(instrument) = &self.context.legal_instrument {
            non_empty("context.legal_instrument.citation", &instrument.citation)?;
        }
        if let Some(claim) = &self.context.legal_claim {
            non_empty("context.legal_claim.reference", &claim.reference)?;
        }
        // Attributes the engine interprets must have their documented type: a typo'd value must
        // not silently read as "not established".
        for (key, kind) in TYPED_ATTRIBUTES {
            let Some(value) = self.context.attributes.get(*key) else {
                continue;
            };
            let ok = match *kind {
                "boolean" => value.is_boolean(),
                _ => value.is_string(),
            };
            if !ok {
                return Err(TransactionError::new(
                    format!("context.attributes.{key}"),
                    format!("must be a {kind}"),
                ));
            }
        }
        Ok(())
    }

    /// The data categories of the record; `general` when the transaction names none.
    pub fn data_categories(&self) -> Vec<DataCategory> {
        let mut categories = self.resource.data_categories.clone().unwrap_or_default();
        if categories.is_empty() {
            categories.push(DataCategory::General);
        }
        categories.sort();
        categories.dedup();
        categories
    }

    /// The party a consent must name to cover this request (docs/contract.md §3): the recipient for
    /// `share` / `export`, otherwise the actor's organization (or the actor itself when it has none).
    pub fn grantee(&self) -> &str {
        match self.action {
            Action::Share | Action::Export => self
                .context
                .recipient
                .as_ref()
                .map(|r| r.id.as_str())
                .unwrap_or(""),
            _ => self
                .actor
                .organization
                .as_deref()
                .unwrap_or(self.actor.id.as_str()),
        }
    }

    /// The patient the record is about, if named.
    pub fn patient_id(&self) -> Option<&str> {
        self.resource.patient.as_ref().map(|p| p.id.as_str())
    }

    /// Whether the actor is the patient the record is about.
    pub fn actor_is_subject(&self) -> bool {
        self.patient_id() == Some(self.actor.id.as_str())
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), TransactionError> {
    if value.trim().is_empty() {
        Err(TransactionError::new(field, "must not be empty"))
    } else {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ActorType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<JurisdictionCode>,
    #[serde(default)]
    pub attributes: crate::json::Object,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: FhirType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<Patient>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_categories: Option<Vec<DataCategory>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<JurisdictionCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<values::ContentHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<values::BirthDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residence: Option<JurisdictionCode>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose_of_use: Option<PurposeOfUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<LegalBasis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Recipient>,
    #[serde(default)]
    pub break_glass: bool,
    #[serde(default)]
    pub treating_relationship: bool,
    /// The provision of Union, member-state or national law the processing rests on (e.g. the
    /// law recognising an important public interest, GDPR Art. 49(1)(d), 49(4)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_instrument: Option<LegalInstrument>,
    /// The specific legal claim the processing serves (GDPR Art. 49(1)(e), Recital 111).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_claim: Option<LegalClaim>,
    #[serde(default)]
    pub attributes: crate::json::Object,
}

/// `context.legal_instrument`: a provision of law, and the jurisdiction whose law it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalInstrument {
    pub jurisdiction: JurisdictionCode,
    pub citation: String,
}

/// `context.legal_claim`: an identified claim and the kind of procedure it is pursued in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalClaim {
    pub reference: String,
    pub procedure: LegalClaimProcedure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub id: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ActorType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<JurisdictionCode>,
}

/// A `consent` transaction (docs/contract.md §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentTransaction {
    pub id: String,
    pub kind: ConsentKind,
    pub timestamp: Timestamp,
    pub consent: consent::ConsentRecord,
}

/// A `governance` transaction (docs/contract.md §4); its message is checked by the governance crate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceTransaction {
    pub id: String,
    pub kind: GovernanceKind,
    pub timestamp: Timestamp,
    #[serde(deserialize_with = "crate::json::strict_value")]
    pub governance: Value,
}

#[cfg(test)]
mod tests;
