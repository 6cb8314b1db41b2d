//! Field value types that check their own syntax while parsing.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// Defines a closed enumeration that (de)serializes as its kebab-case / documented spelling.
macro_rules! closed_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling used on the wire and in policies.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use closed_enum;

closed_enum!(
    /// docs/contract.md §1 `actor.type`.
    ActorType {
        Practitioner = "Practitioner",
        Patient = "Patient",
        RelatedPerson = "RelatedPerson",
        Organization = "Organization",
        Researcher = "Researcher",
        Payer = "Payer",
        Regulator = "Regulator",
        Device = "Device",
        System = "System",
    }
);

closed_enum!(
    /// docs/contract.md §1 `action`.
    Action {
        Read = "read",
        Write = "write",
        Amend = "amend",
        Share = "share",
        Export = "export",
        Delete = "delete",
        DeIdentify = "de-identify",
        Anchor = "anchor",
    }
);

impl Action {
    /// Position in [`Action::ALL`], used to index per-action tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

closed_enum!(
    /// docs/contract.md §1 `resource.data_categories`.
    DataCategory {
        General = "general",
        MentalHealth = "mental-health",
        PsychotherapyNotes = "psychotherapy-notes",
        SubstanceUse = "substance-use",
        Hiv = "hiv",
        Genetic = "genetic",
        Reproductive = "reproductive",
        SexualHealth = "sexual-health",
    }
);

closed_enum!(
    /// GDPR Art. 6(1) lawful bases (docs/contract.md §1 `context.legal_basis`).
    LegalBasis {
        Consent = "consent",
        Contract = "contract",
        LegalObligation = "legal-obligation",
        VitalInterests = "vital-interests",
        PublicTask = "public-task",
        LegitimateInterests = "legitimate-interests",
    }
);

closed_enum!(
    /// docs/contract.md §1 `context.legal_claim.procedure`: the procedure a legal claim is
    /// pursued in (GDPR Recital 111: "in a judicial procedure or ... in an administrative or any
    /// out-of-court procedure, including procedures before regulatory bodies").
    LegalClaimProcedure {
        Judicial = "judicial",
        Administrative = "administrative",
        OutOfCourt = "out-of-court",
    }
);

/// Declares a string newtype whose syntax is checked by `$check` while parsing.
macro_rules! checked_string {
    ($(#[$meta:meta])* $name:ident, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(&value)?;
                Ok($name(value))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_string!(
    /// An ISO 3166 code, optionally with a subdivision: `US`, `US-CA`, `EU`, `EU-DE`.
    JurisdictionCode,
    |s| {
        let mut parts = s.splitn(2, '-');
        let country = parts.next().unwrap_or("");
        let country_ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
        let sub_ok = parts.next().is_none_or(|sub| {
            (1..=3).contains(&sub.len())
                && sub
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
        if country_ok && sub_ok {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not an ISO 3166 code such as `US`, `US-CA` or `EU-DE`"
            ))
        }
    }
);

checked_string!(
    /// An ISO 3166-1 alpha-2 country code, no subdivision: `US`, `CH`, `GB`.
    CountryCode,
    |s| {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not an ISO 3166-1 alpha-2 country code such as `US` or `CH`"
            ))
        }
    }
);

checked_string!(
    /// An HL7 v3 PurposeOfUse code: upper-case letters, e.g. `TREAT`, `HPAYMT`.
    PurposeOfUse,
    |s| {
        if !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not an HL7 v3 PurposeOfUse code (upper-case letters, e.g. TREAT)"
            ))
        }
    }
);

checked_string!(
    /// A FHIR R4 resource type name: an upper-case letter then letters, e.g. `Observation`.
    FhirType,
    |s| {
        let mut bytes = s.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_uppercase());
        if first_ok && s.len() <= 64 && bytes.all(|b| b.is_ascii_alphabetic()) {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not a FHIR resource type name (e.g. Observation)"
            ))
        }
    }
);

checked_string!(
    /// A content hash anchoring the off-chain payload: `sha256:` and 64 lower-case hex digits.
    ContentHash,
    |s| {
        match s.strip_prefix("sha256:") {
            Some(hex)
                if hex.len() == 64
                    && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(())
            }
            _ => Err(format!(
                "`{s}` is not `sha256:` followed by 64 lower-case hex digits"
            )),
        }
    }
);

/// A ledger timestamp (RFC 3339). Keeps the caller's text for output and the instant for rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp {
    text: String,
    unix: i64,
    date: Date,
}

impl Timestamp {
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| format!("`{text}` is not an RFC 3339 timestamp: {e}"))?;
        let utc = parsed.to_offset(time::UtcOffset::UTC);
        Ok(Timestamp {
            text: text.to_owned(),
            unix: utc.unix_timestamp(),
            date: utc.date(),
        })
    }

    /// Seconds since the Unix epoch.
    pub fn unix(&self) -> i64 {
        self.unix
    }

    /// The calendar date in UTC.
    pub fn date(&self) -> Date {
        self.date
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The UTC calendar date as `YYYY-MM-DD`.
    pub fn date_text(&self) -> String {
        let d = self.date;
        format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
    }

    /// RFC 3339 text (UTC, `Z`) of `unix` seconds; `None` outside the representable range.
    pub fn format_unix(unix: i64) -> Option<String> {
        OffsetDateTime::from_unix_timestamp(unix)
            .ok()?
            .format(&Rfc3339)
            .ok()
    }
}

impl TryFrom<String> for Timestamp {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Timestamp::parse(&value)
    }
}

impl From<Timestamp> for String {
    fn from(value: Timestamp) -> String {
        value.text
    }
}

/// A calendar date `YYYY-MM-DD` (a patient's birth date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BirthDate(Date);

impl BirthDate {
    /// Completed years of age on `on` (a person born on 29 February turns a year older on 1 March
    /// in common years).
    pub fn age_on(self, on: Date) -> i64 {
        let born = self.0;
        let mut years = i64::from(on.year()) - i64::from(born.year());
        if (on.month() as u8, on.day()) < (born.month() as u8, born.day()) {
            years -= 1;
        }
        years
    }
}

impl TryFrom<String> for BirthDate {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(&value, &format)
            .map(BirthDate)
            .map_err(|e| format!("`{value}` is not a date YYYY-MM-DD: {e}"))
    }
}

impl From<BirthDate> for String {
    fn from(value: BirthDate) -> String {
        let d = value.0;
        format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
    }
}
