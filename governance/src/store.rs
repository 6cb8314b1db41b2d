//! Persistence in sled (0.34): everything a node needs to resume exactly where the last fully
//! applied block left it.
//!
//! One tree, `accord-state`, with keys by prefix: `meta` (genesis digest, members, voting
//! parameters, policy history, proposal counter, last answer's height), `proposal/<id>`,
//! `bundle/<version>` (content-addressed), `consent/<id>` and `answer/<height, 8 bytes BE>`.
//! Each block is written as one `Batch`, which sled applies atomically (also across a crash),
//! then flushed: after a restart, even a kill -9 in the middle of a block, the store holds the
//! state after the last block whose batch landed, never part of one.

use crate::bundles::BundleStore;
use crate::machine::BlockAnswer;
use crate::member::Membership;
use crate::params::VotingParams;
use crate::proposal::Proposal;
use crate::state::GovernanceState;
use crate::Activation;
use accord_engine::consent::ConsentEntry;
use accord_engine::{BundleFiles, InMemoryConsentRegistry};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

const TREE: &str = "accord-state";
const META: &[u8] = b"meta";
const PROPOSAL: &str = "proposal/";
const BUNDLE: &str = "bundle/";
const CONSENT: &str = "consent/";
const ANSWER: &[u8] = b"answer/";

#[derive(Serialize, Deserialize)]
struct Meta {
    genesis: String,
    consortium: String,
    membership: Membership,
    params: VotingParams,
    history: Vec<Activation>,
    next_seq: u64,
    height: u64,
}

/// Everything one block changed.
pub(crate) struct BlockCommit<'a> {
    pub genesis: &'a str,
    pub gov: &'a GovernanceState,
    pub proposals: Vec<&'a Proposal>,
    pub bundles: Vec<(String, Arc<BundleFiles>)>,
    pub consents: Vec<&'a ConsentEntry>,
    pub answer: &'a BlockAnswer,
}

/// What [`Store::load`] read back.
pub(crate) struct StoredState {
    pub genesis: String,
    pub gov: GovernanceState,
    pub consents: InMemoryConsentRegistry,
    pub last: BlockAnswer,
}

pub(crate) struct Store {
    tree: sled::Tree,
    db: sled::Db,
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| e.to_string())
}

fn parse<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "stored `{}` is unreadable: {e}",
            String::from_utf8_lossy(key)
        )
    })
}

fn answer_key(height: u64) -> Vec<u8> {
    let mut key = ANSWER.to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key
}

impl Store {
    pub fn open(db: &sled::Db) -> Result<Store, String> {
        let tree = db.open_tree(TREE).map_err(|e| e.to_string())?;
        Ok(Store {
            tree,
            db: db.clone(),
        })
    }

    /// Writes one block's changes atomically and durably.
    pub fn commit(&self, c: &BlockCommit<'_>) -> Result<(), String> {
        let mut batch = sled::Batch::default();
        let meta = Meta {
            genesis: c.genesis.to_owned(),
            consortium: c.gov.consortium.clone(),
            membership: c.gov.membership.clone(),
            params: c.gov.params.clone(),
            history: c.gov.history.clone(),
            next_seq: c.gov.next_seq,
            height: c.answer.height,
        };
        batch.insert(META, json(&meta)?);
        for p in &c.proposals {
            batch.insert(format!("{PROPOSAL}{}", p.id).as_bytes(), json(p)?);
        }
        for (version, files) in &c.bundles {
            let encoded: BTreeMap<&str, String> =
                files.iter().map(|(p, b)| (p, BASE64.encode(b))).collect();
            batch.insert(format!("{BUNDLE}{version}").as_bytes(), json(&encoded)?);
        }
        for entry in &c.consents {
            batch.insert(
                format!("{CONSENT}{}", entry.record.id).as_bytes(),
                json(entry)?,
            );
        }
        batch.insert(answer_key(c.answer.height), c.answer.to_json().as_bytes());
        self.tree.apply_batch(batch).map_err(|e| e.to_string())?;
        self.db.flush().map_err(|e| e.to_string())?;
        Ok(())
    }

    pub fn answer(&self, height: u64) -> Result<Option<BlockAnswer>, String> {
        let key = answer_key(height);
        match self.tree.get(&key).map_err(|e| e.to_string())? {
            Some(bytes) => parse(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Reads the whole state back; `None` when no block was ever committed.
    pub fn load(&self) -> Result<Option<StoredState>, String> {
        let Some(meta) = self.tree.get(META).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let meta: Meta = parse(META, &meta)?;
        let mut proposals = BTreeMap::new();
        let mut bundles = BundleStore::default();
        let mut consents = Vec::new();
        for item in self.tree.iter() {
            let (key, value) = item.map_err(|e| e.to_string())?;
            if key.starts_with(PROPOSAL.as_bytes()) {
                let p: Proposal = parse(&key, &value)?;
                proposals.insert(p.id.clone(), p);
            } else if key.starts_with(BUNDLE.as_bytes()) {
                let encoded: BTreeMap<String, String> = parse(&key, &value)?;
                let mut files = BTreeMap::new();
                for (path, b64) in encoded {
                    let bytes = BASE64
                        .decode(b64)
                        .map_err(|e| format!("stored bundle file {path}: {e}"))?;
                    files.insert(path, bytes);
                }
                bundles.restore(BundleFiles::new(files));
            } else if key.starts_with(CONSENT.as_bytes()) {
                consents.push(parse::<ConsentEntry>(&key, &value)?);
            }
        }
        let last = self
            .answer(meta.height)?
            .ok_or_else(|| format!("the answer to the last block {} is missing", meta.height))?;
        let gov = GovernanceState::restore(
            meta.consortium,
            meta.membership,
            meta.params,
            proposals,
            meta.history,
            meta.next_seq,
            bundles,
        )?;
        Ok(Some(StoredState {
            genesis: meta.genesis,
            gov,
            consents: InMemoryConsentRegistry::from_entries(consents),
            last,
        }))
    }
}
