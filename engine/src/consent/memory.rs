//! The in-memory registry: ordered maps, so iteration (and the digest) never depends on hashing.
//!
//! The maps are persistent (structural sharing): a block stages its consent changes on a copy of
//! the registry, and that copy costs the same whether the registry holds ten consents or a
//! million. Each entry keeps its own hash, computed once when the entry changes, so the digest
//! after a block hashes 32 bytes per consent instead of serializing every consent again.

use super::{
    check_record, ConsentEntry, ConsentError, ConsentFacts, ConsentQuery, ConsentRegistry,
    ConsentStatus,
};
use crate::transaction::ConsentTransaction;
use imbl::{OrdMap, OrdSet};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Consent state held in memory. Cloning it is cheap and gives an independent copy (used to
/// stage a block).
#[derive(Debug, Clone, Default)]
pub struct InMemoryConsentRegistry {
    by_id: OrdMap<String, Arc<Stored>>,
    by_patient: OrdMap<String, OrdSet<String>>,
}

/// One consent as recorded, and its hash in the digest.
#[derive(Debug)]
struct Stored {
    entry: ConsentEntry,
    /// SHA-256 of the length (u64, big-endian) and the bytes of serde_json's encoding of `entry`
    /// (struct fields in declaration order: canonical).
    hash: [u8; 32],
}

impl Stored {
    fn new(entry: ConsentEntry) -> Arc<Self> {
        // Serializing plain structs and strings cannot fail.
        let bytes = serde_json::to_vec(&entry).unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
        Arc::new(Stored {
            entry,
            hash: hasher.finalize().into(),
        })
    }
}

impl InMemoryConsentRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Restores a registry from entries (e.g. read back from storage).
    pub fn from_entries(entries: impl IntoIterator<Item = ConsentEntry>) -> Self {
        let mut registry = Self::default();
        for entry in entries {
            registry.insert(entry);
        }
        registry
    }

    /// A registry built by applying consent transactions (JSON) in order; the first that does not
    /// parse, is not a consent, or is refused, is reported with its index.
    pub fn from_transactions<'a>(
        transactions: impl IntoIterator<Item = &'a serde_json::Value>,
    ) -> Result<Self, String> {
        let mut registry = Self::default();
        for (i, value) in transactions.into_iter().enumerate() {
            match crate::transaction::Transaction::from_value(value.clone()) {
                Ok(crate::transaction::Transaction::Consent(tx)) => registry
                    .apply(&tx)
                    .map_err(|e| format!("consents[{i}]: {e}"))?,
                Ok(_) => return Err(format!("consents[{i}]: not a consent transaction")),
                Err(e) => return Err(format!("consents[{i}]: {e}")),
            }
        }
        Ok(registry)
    }

    /// The entry of consent `id`, if recorded.
    pub fn get(&self, id: &str) -> Option<&ConsentEntry> {
        self.by_id.get(id).map(|s| &s.entry)
    }

    /// Every entry, ordered by consent id.
    pub fn entries(&self) -> impl Iterator<Item = &ConsentEntry> {
        self.by_id.values().map(|s| &s.entry)
    }

    fn insert(&mut self, entry: ConsentEntry) {
        self.by_patient
            .entry(entry.record.patient.clone())
            .or_default()
            .insert(entry.record.id.clone());
        self.by_id
            .insert(entry.record.id.clone(), Stored::new(entry));
    }
}

impl ConsentRegistry for InMemoryConsentRegistry {
    fn apply(&mut self, tx: &ConsentTransaction) -> Result<(), ConsentError> {
        let record = &tx.consent;
        check_record(record)?;
        let existing = self.get(&record.id);
        if let Some(existing) = existing {
            if existing.record.patient != record.patient {
                return Err(ConsentError::PatientMismatch {
                    consent: record.id.clone(),
                    recorded: existing.record.patient.clone(),
                    given: record.patient.clone(),
                });
            }
            if let Some(revoked_by) = &existing.revoked_by {
                return Err(ConsentError::AlreadyRevoked {
                    consent: record.id.clone(),
                    revoked_by: revoked_by.clone(),
                });
            }
        }
        match record.status {
            ConsentStatus::Active => self.insert(ConsentEntry {
                record: record.clone(),
                granted_by: tx.id.clone(),
                revoked_by: None,
            }),
            ConsentStatus::Revoked => {
                let Some(stored) = self.by_id.get(&record.id) else {
                    return Err(ConsentError::UnknownConsent {
                        consent: record.id.clone(),
                    });
                };
                let mut entry = stored.entry.clone();
                entry.revoked_by = Some(tx.id.clone());
                self.by_id.insert(record.id.clone(), Stored::new(entry));
            }
        }
        Ok(())
    }

    fn facts(&self, query: &ConsentQuery<'_>) -> ConsentFacts {
        let mut facts = ConsentFacts::default();
        let Some(ids) = self.by_patient.get(query.patient) else {
            return facts;
        };
        let mut covered = BTreeSet::new();
        let mut revoked_overlap = false;
        // The longest term so far; `None` once an open-ended consent is counted.
        let mut term: Option<Option<i64>> = None;
        for entry in ids.iter().filter_map(|id| self.get(id)) {
            if !entry.names(query) {
                continue;
            }
            let overlap: Vec<_> = query
                .categories
                .iter()
                .filter(|c| entry.record.data_categories.contains(c))
                .collect();
            if overlap.is_empty() {
                continue;
            }
            if entry.in_force(query.at) {
                covered.extend(overlap.into_iter().copied());
                facts.consent_ids.push(entry.record.id.clone());
                let this = entry.record.period.as_ref().and_then(|p| p.term_hours());
                term = Some(match (term, this) {
                    (None, this) => this,
                    (Some(Some(a)), Some(b)) => Some(a.max(b)),
                    (Some(_), _) => None,
                });
            } else if entry.revoked_by.is_some() {
                revoked_overlap = true;
            }
        }
        facts.withdrawn = revoked_overlap && covered.len() < query.categories.len();
        facts.categories = covered.into_iter().collect();
        facts.term_hours = term.flatten();
        facts
    }

    fn of_patient(&self, patient: &str) -> Vec<ConsentEntry> {
        self.by_patient
            .get(patient)
            .into_iter()
            .flatten()
            .filter_map(|id| self.get(id).cloned())
            .collect()
    }

    fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"accord/consents/v2\0");
        for stored in self.by_id.values() {
            hasher.update(stored.hash);
        }
        hasher.finalize().into()
    }
}
