//! The in-memory relations registry: persistent ordered maps (a block stages its changes on a cheap
//! copy), each entry with its hash kept from when it last changed, as for consents.

use super::{
    check_agreement, check_representation, AgreementEntry, AgreementFacts, AgreementQuery,
    AgreementStatus, AgreementTransaction, AgreementType, RelationError, RepresentationEntry,
    RepresentationFacts, RepresentationQuery, RepresentationStatus, RepresentationTransaction,
};
use imbl::{OrdMap, OrdSet};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// An entry and its hash in the digest: SHA-256 of the length (u64, big-endian) and the bytes of
/// serde_json's encoding of the entry (struct fields in declaration order: canonical).
#[derive(Debug)]
struct Stored<T> {
    entry: T,
    hash: [u8; 32],
}

impl<T: Serialize> Stored<T> {
    fn new(entry: T) -> Arc<Self> {
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

/// Representations and agreements held in memory. Cloning is cheap and gives an independent copy.
#[derive(Debug, Clone, Default)]
pub struct InMemoryRelations {
    representations: OrdMap<String, Arc<Stored<RepresentationEntry>>>,
    /// patient → representation ids.
    by_patient: OrdMap<String, OrdSet<String>>,
    agreements: OrdMap<String, Arc<Stored<AgreementEntry>>>,
    /// recipient → agreement ids.
    by_recipient: OrdMap<String, OrdSet<String>>,
}

impl InMemoryRelations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores the registry from entries (e.g. read back from storage).
    pub fn from_entries(
        representations: impl IntoIterator<Item = RepresentationEntry>,
        agreements: impl IntoIterator<Item = AgreementEntry>,
    ) -> Self {
        let mut relations = Self::default();
        for entry in representations {
            relations.insert_representation(entry);
        }
        for entry in agreements {
            relations.insert_agreement(entry);
        }
        relations
    }

    pub fn representation(&self, id: &str) -> Option<&RepresentationEntry> {
        self.representations.get(id).map(|s| &s.entry)
    }

    pub fn agreement(&self, id: &str) -> Option<&AgreementEntry> {
        self.agreements.get(id).map(|s| &s.entry)
    }

    /// Every representation, ordered by id.
    pub fn representations(&self) -> impl Iterator<Item = &RepresentationEntry> {
        self.representations.values().map(|s| &s.entry)
    }

    /// Every agreement, ordered by id.
    pub fn agreements(&self) -> impl Iterator<Item = &AgreementEntry> {
        self.agreements.values().map(|s| &s.entry)
    }

    /// Every representation of `patient`, ordered by id.
    pub fn representations_of(&self, patient: &str) -> Vec<RepresentationEntry> {
        self.by_patient
            .get(patient)
            .into_iter()
            .flatten()
            .filter_map(|id| self.representation(id).cloned())
            .collect()
    }

    fn insert_representation(&mut self, entry: RepresentationEntry) {
        self.by_patient
            .entry(entry.record.patient.clone())
            .or_default()
            .insert(entry.record.id.clone());
        self.representations
            .insert(entry.record.id.clone(), Stored::new(entry));
    }

    fn insert_agreement(&mut self, entry: AgreementEntry) {
        if let Some(recipient) = &entry.record.recipient {
            self.by_recipient
                .entry(recipient.clone())
                .or_default()
                .insert(entry.record.id.clone());
        }
        self.agreements
            .insert(entry.record.id.clone(), Stored::new(entry));
    }

    /// Applies one representation transaction. On error the state is unchanged.
    pub fn apply_representation(
        &mut self,
        tx: &RepresentationTransaction,
    ) -> Result<(), RelationError> {
        const K: &str = "representation";
        let record = &tx.representation;
        check_representation(record)?;
        if let Some(existing) = self.representation(&record.id) {
            if existing.record.patient != record.patient {
                return Err(RelationError::Mismatch {
                    kind: K,
                    id: record.id.clone(),
                    recorded: format!("patient `{}`", existing.record.patient),
                    given: format!("patient `{}`", record.patient),
                });
            }
            if let Some(revoked_by) = &existing.revoked_by {
                return Err(RelationError::AlreadyEnded {
                    kind: K,
                    id: record.id.clone(),
                    ended_by: revoked_by.clone(),
                });
            }
        }
        match record.status {
            RepresentationStatus::Active => self.insert_representation(RepresentationEntry {
                record: record.clone(),
                granted_by: tx.id.clone(),
                revoked_by: None,
            }),
            RepresentationStatus::Revoked => {
                let Some(existing) = self.representation(&record.id) else {
                    return Err(RelationError::Unknown {
                        kind: K,
                        id: record.id.clone(),
                    });
                };
                let mut entry = existing.clone();
                entry.revoked_by = Some(tx.id.clone());
                self.representations
                    .insert(record.id.clone(), Stored::new(entry));
            }
        }
        Ok(())
    }

    /// Applies one agreement transaction. On error the state is unchanged.
    pub fn apply_agreement(&mut self, tx: &AgreementTransaction) -> Result<(), RelationError> {
        const K: &str = "agreement";
        let record = &tx.agreement;
        check_agreement(record)?;
        if let Some(existing) = self.agreement(&record.id) {
            if let Some(terminated_by) = &existing.terminated_by {
                return Err(RelationError::AlreadyEnded {
                    kind: K,
                    id: record.id.clone(),
                    ended_by: terminated_by.clone(),
                });
            }
            let parties = |r: &super::AgreementRecord| {
                format!(
                    "discloser `{}` and recipient `{}`",
                    r.discloser.as_deref().unwrap_or(""),
                    r.recipient.as_deref().unwrap_or("")
                )
            };
            if record.status == AgreementStatus::Active
                && (existing.record.discloser != record.discloser
                    || existing.record.recipient != record.recipient)
            {
                return Err(RelationError::Mismatch {
                    kind: K,
                    id: record.id.clone(),
                    recorded: parties(&existing.record),
                    given: parties(record),
                });
            }
        }
        match record.status {
            AgreementStatus::Active => self.insert_agreement(AgreementEntry {
                record: record.clone(),
                recorded_by: tx.id.clone(),
                terminated_by: None,
            }),
            AgreementStatus::Terminated => {
                let Some(existing) = self.agreement(&record.id) else {
                    return Err(RelationError::Unknown {
                        kind: K,
                        id: record.id.clone(),
                    });
                };
                let mut entry = existing.clone();
                entry.terminated_by = Some(tx.id.clone());
                self.agreements
                    .insert(record.id.clone(), Stored::new(entry));
            }
        }
        Ok(())
    }

    /// The representations in force naming the query's representative for its patient.
    pub fn representation_facts(&self, query: &RepresentationQuery<'_>) -> RepresentationFacts {
        let mut facts = RepresentationFacts::default();
        let Some(ids) = self.by_patient.get(query.patient) else {
            return facts;
        };
        for entry in ids.iter().filter_map(|id| self.representation(id)) {
            if entry.record.representative.as_deref() == Some(query.representative)
                && entry.in_force(query.at)
            {
                facts.ids.push(entry.record.id.clone());
                if let Some(basis) = entry.record.basis {
                    facts.bases.push(basis);
                }
            }
        }
        facts.bases.sort();
        facts.bases.dedup();
        facts
    }

    /// The data use agreements in force between the query's parties naming its purpose.
    pub fn agreement_facts(&self, query: &AgreementQuery<'_>) -> AgreementFacts {
        let mut facts = AgreementFacts::default();
        if self.agreements.is_empty() {
            return facts;
        }
        let Some(purpose) = query.purpose else {
            return facts;
        };
        for recipient in query.recipients {
            let Some(ids) = self.by_recipient.get(*recipient) else {
                continue;
            };
            for entry in ids.iter().filter_map(|id| self.agreement(id)) {
                let r = &entry.record;
                let discloser_ok = query.disclosers.is_empty()
                    || r.discloser
                        .as_deref()
                        .is_some_and(|d| query.disclosers.contains(&d));
                if r.kind == Some(AgreementType::DataUseAgreement)
                    && discloser_ok
                    && r.purposes.contains(purpose)
                    && entry.in_force(query.at)
                {
                    facts.data_use_agreements.push(r.id.clone());
                }
            }
        }
        facts.data_use_agreements.sort();
        facts.data_use_agreements.dedup();
        facts
    }

    /// `sha256("accord/representations/v1" 0x00 ‖ entry hashes in id order)` and the same over
    /// agreements with `accord/agreements/v1`.
    pub fn digests(&self) -> ([u8; 32], [u8; 32]) {
        let mut reps = Sha256::new();
        reps.update(b"accord/representations/v1\0");
        for stored in self.representations.values() {
            reps.update(stored.hash);
        }
        let mut agreements = Sha256::new();
        agreements.update(b"accord/agreements/v1\0");
        for stored in self.agreements.values() {
            agreements.update(stored.hash);
        }
        (reps.finalize().into(), agreements.finalize().into())
    }
}
