//! The in-memory registry: ordered maps, so iteration (and the digest) never depends on hashing.
//!
//! The maps are persistent (structural sharing): a block stages its consent changes on a copy of
//! the registry, and that copy costs the same whether the registry holds ten consents or a
//! million. Each entry keeps its own hash, computed once when the entry changes, so the digest
//! after a block hashes 32 bytes per consent instead of serializing every consent again.

use super::{
    check_record, ConsentEntry, ConsentError, ConsentFacts, ConsentQuery, ConsentRegistry,
    ConsentStatus, Part2Consent,
};
use crate::relations::{
    AgreementFacts, AgreementQuery, AgreementTransaction, AuthorizationFacts, InMemoryRelations,
    RelationError, RepresentationFacts, RepresentationQuery, RepresentationTransaction,
};
use crate::transaction::{ConsentTransaction, DataCategory};
use imbl::{OrdMap, OrdSet};
use sha2::{Digest, Sha256};
use smallvec::SmallVec;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Consent state held in memory. Cloning it is cheap and gives an independent copy (used to
/// stage a block).
#[derive(Debug, Clone, Default)]
pub struct InMemoryConsentRegistry {
    by_id: OrdMap<String, Arc<Stored>>,
    by_patient: OrdMap<String, OrdSet<String>>,
    /// Representations and data use agreements, staged and digested with the consents.
    relations: InMemoryRelations,
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

    /// The registry with `relations` (e.g. read back from storage) in place of its own.
    pub fn with_relations(mut self, relations: InMemoryRelations) -> Self {
        self.relations = relations;
        self
    }

    /// A registry built by applying consent, representation and agreement transactions (JSON) in
    /// order; the first that does not parse, is of another kind, or is refused, is reported with
    /// its index.
    pub fn from_transactions<'a>(
        transactions: impl IntoIterator<Item = &'a serde_json::Value>,
    ) -> Result<Self, String> {
        let mut registry = Self::default();
        for (i, value) in transactions.into_iter().enumerate() {
            match crate::transaction::Transaction::from_value(value.clone()) {
                Ok(tx) => registry
                    .apply_state(&tx)
                    .map_err(|e| format!("consents[{i}]: {e}"))?,
                Err(e) => return Err(format!("consents[{i}]: {e}")),
            }
        }
        Ok(registry)
    }

    /// Applies a consent, representation or agreement transaction; any other kind is refused.
    pub fn apply_state(&mut self, tx: &crate::transaction::Transaction) -> Result<(), String> {
        use crate::transaction::Transaction;
        match tx {
            Transaction::Consent(c) => self.apply(c).map_err(|e| e.to_string()),
            Transaction::Representation(r) => {
                self.apply_representation(r).map_err(|e| e.to_string())
            }
            Transaction::Agreement(a) => self.apply_agreement(a).map_err(|e| e.to_string()),
            other => Err(format!(
                "a `{}` transaction does not change consent, representation or agreement state",
                other.kind()
            )),
        }
    }

    /// Applies one representation transaction (docs/contract.md §3a). On error the state is
    /// unchanged.
    pub fn apply_representation(
        &mut self,
        tx: &RepresentationTransaction,
    ) -> Result<(), RelationError> {
        self.relations.apply_representation(tx)
    }

    /// Applies one agreement transaction (docs/contract.md §3b). On error the state is unchanged.
    pub fn apply_agreement(&mut self, tx: &AgreementTransaction) -> Result<(), RelationError> {
        self.relations.apply_agreement(tx)
    }

    /// The representations and agreements.
    pub fn relations(&self) -> &InMemoryRelations {
        &self.relations
    }

    /// The digest of the consents alone: `sha256("accord/consents/v2" 0x00 ‖ entry hashes)`.
    pub fn consent_digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"accord/consents/v2\0");
        for stored in self.by_id.values() {
            hasher.update(stored.hash);
        }
        hasher.finalize().into()
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
                granted_at: Some(tx.timestamp.clone()),
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
        // Per category of the query (by position): the latest time a consent in force covering
        // it was given (`None` inside when one such time is unknown), and the countries of the
        // qualifying transfer consents covering it.
        let n = query.categories.len();
        let mut given: SmallVec<[Option<Option<i64>>; 4]> = SmallVec::from_elem(None, n);
        let mut countries: SmallVec<[BTreeSet<&str>; 4]> = SmallVec::from_elem(BTreeSet::new(), n);
        let notes = super::part2::counseling_notes(query.categories);
        // The longest term so far; `None` once an open-ended consent is counted.
        let mut term: Option<Option<i64>> = None;
        for entry in ids.iter().filter_map(|id| self.get(id)) {
            let kind = entry.record.part2;
            if !notes
                && entry.record.grantee.as_deref() == Some(query.holder)
                && entry
                    .record
                    .data_categories
                    .contains(&DataCategory::SubstanceUse)
                && query.categories.contains(&DataCategory::SubstanceUse)
                && super::part2::names_tpo_purpose(&entry.record)
                && entry.in_force(query.at)
            {
                facts.holder_tpo = true;
                facts.part2_tpo |= kind == Some(Part2Consent::Tpo);
            }
            // A consent to SUD counseling notes reaches nothing else (42 CFR 2.31(b)(2)).
            if !entry.names(query) || (kind == Some(Part2Consent::CounselingNotes) && !notes) {
                continue;
            }
            let overlap: Vec<_> = query
                .categories
                .iter()
                .enumerate()
                .filter(|(_, c)| entry.record.data_categories.contains(c))
                .collect();
            if overlap.is_empty() {
                continue;
            }
            if entry.in_force(query.at) {
                facts.counseling_notes |= kind == Some(Part2Consent::CounselingNotes);
                let at = entry.given_at();
                let transfer = entry.record.transfer.as_ref().filter(|t| t.qualifies());
                for (i, category) in overlap {
                    covered.insert(*category);
                    given[i] = Some(match given[i] {
                        None => at,
                        Some(prev) => prev.zip(at).map(|(p, a)| p.max(a)),
                    });
                    if let Some(t) = transfer {
                        countries[i].extend(t.countries.iter().map(|c| c.as_str()));
                    }
                }
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
        facts.withdrawn = revoked_overlap && covered.len() < n;
        if covered.len() == n && n > 0 {
            facts.given_at = given
                .iter()
                .map(|g| g.flatten())
                .collect::<Option<Vec<i64>>>()
                .and_then(|times| times.into_iter().min());
            let mut common = countries[0].clone();
            for set in &countries[1..] {
                common.retain(|c| set.contains(c));
            }
            facts.transfer_countries = common.into_iter().map(str::to_owned).collect();
        }
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

    /// `sha256("accord/registry/v1" 0x00 ‖ consent digest ‖ representations digest ‖ agreements
    /// digest)` (docs/governance.md).
    fn digest(&self) -> [u8; 32] {
        let (representations, agreements) = self.relations.digests();
        let mut hasher = Sha256::new();
        hasher.update(b"accord/registry/v1\0");
        hasher.update(self.consent_digest());
        hasher.update(representations);
        hasher.update(agreements);
        hasher.finalize().into()
    }

    fn authorization(&self, query: &ConsentQuery<'_>) -> AuthorizationFacts {
        let mut facts = AuthorizationFacts::default();
        let Some(ids) = self.by_patient.get(query.patient) else {
            return facts;
        };
        let mut covered = BTreeSet::new();
        for entry in ids.iter().filter_map(|id| self.get(id)) {
            if !entry.names(query) || !entry.in_force(query.at) {
                continue;
            }
            let named = &entry.record.data_categories;
            let mut overlap = query
                .categories
                .iter()
                .filter(|c| named.contains(c))
                .peekable();
            if overlap.peek().is_none() {
                continue;
            }
            // A consent naming psychotherapy notes is an authorization for psychotherapy notes: its
            // other categories describe the notes (mental-health; substance-use for SUD counseling
            // notes; what the notes concern). Naming `general` as well, i.e. PHI other than the
            // notes, combines it with another authorization: 164.508(b)(3)(ii) forbids that, and
            // the record authorizes nothing (164.508(b)(2)(iv)). Nor does a psychotherapy-notes
            // authorization reach a record that is not psychotherapy notes.
            let notes = named.contains(&DataCategory::PsychotherapyNotes);
            if notes && named.contains(&DataCategory::General) {
                facts.compound_ids.push(entry.record.id.clone());
            } else if !notes || query.categories.contains(&DataCategory::PsychotherapyNotes) {
                covered.extend(overlap);
            }
        }
        facts.categories = covered.into_iter().collect();
        facts
    }

    fn representation(&self, query: &RepresentationQuery<'_>) -> RepresentationFacts {
        self.relations.representation_facts(query)
    }

    fn agreements(&self, query: &AgreementQuery<'_>) -> AgreementFacts {
        self.relations.agreement_facts(query)
    }
}
