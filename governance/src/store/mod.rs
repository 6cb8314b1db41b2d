//! Persistence in sled (0.34): everything a node needs to resume exactly where the last fully
//! applied block left it.
//!
//! The tree `accord-state`, with keys by prefix: `meta` (genesis digest, members, voting
//! parameters, policy history, proposal counter, last answer's height), `proposal/<id>`,
//! `consent/<id>`, `representation/<id>`, `agreement/<id>` and `answer/<height, 8 bytes BE>`;
//! and the tree `accord-bundles`:
//! `bundle/<version>` (content-addressed).
//!
//! - Bundles (about a megabyte each) live in a tree of their own because sled rewrites a whole
//!   leaf when it consolidates one: in `accord-state`, where `bundle/…` sorts right after the
//!   newest `answer/…`, nearly every block rewrote the bundle's leaf (3.4 MB written to disk per
//!   block of 500 decisions, 1.9 MB since).
//! - An answer is stored as [`ANSWER_LZ4`] followed by its JSON text compressed with LZ4 (block
//!   format, the text's length first as u32 LE).
//!
//! Each block is written as one `Batch`, which sled applies atomically (also across a crash),
//! then flushed: after a restart, even a kill -9 in the middle of a block, the store holds the
//! state after the last block whose batch landed, never part of one.

mod err;

pub use err::StoreError;

use crate::answer::BlockAnswer;
use crate::bundles::BundleStore;
use crate::member::Membership;
use crate::params::VotingParams;
use crate::proposal::Proposal;
use crate::signature_scheme::SignatureScheme;
use crate::state::GovernanceState;
use crate::Activation;
use accord_engine::consent::ConsentEntry;
use accord_engine::relations::{AgreementEntry, InMemoryRelations, RepresentationEntry};
use accord_engine::{BundleFiles, InMemoryConsentRegistry};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

const TREE: &str = "accord-state";
const BUNDLE_TREE: &str = "accord-bundles";
const META: &[u8] = b"meta";
const PROPOSAL: &str = "proposal/";
const BUNDLE: &str = "bundle/";
const CONSENT: &str = "consent/";
const REPRESENTATION: &str = "representation/";
const AGREEMENT: &str = "agreement/";
const ANSWER: &[u8] = b"answer/";
/// First byte of a stored answer: its JSON text compressed with LZ4.
const ANSWER_LZ4: u8 = 1;
/// A stored answer that claims to be larger than this is refused as corrupt rather than allocated.
const MAX_ANSWER_BYTES: usize = 1 << 30;

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
    pub representations: Vec<&'a RepresentationEntry>,
    pub agreements: Vec<&'a AgreementEntry>,
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
    bundles: sled::Tree,
    db: sled::Db,
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(value)?)
}

fn parse<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    parse_named(&String::from_utf8_lossy(key), bytes)
}

fn parse_named<T: for<'de> Deserialize<'de>>(name: &str, bytes: &[u8]) -> Result<T, StoreError> {
    accord_engine::json::parse(bytes).map_err(|e| StoreError::Unreadable {
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

/// A block answer's JSON text as stored. Compressed, because every block's answer is kept (for
/// replays at any height) and its decisions repeat a few shapes: a 500-decision answer of 333 KB
/// stores as 17 KB, which sled keeps in its log instead of a blob file of its own per block.
fn encode_answer(json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() / 8 + 16);
    out.push(ANSWER_LZ4);
    out.extend_from_slice(&lz4_flex::compress_prepend_size(json.as_bytes()));
    out
}

/// The JSON text of a stored answer; `name` says which in errors.
fn decode_answer(name: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    let unreadable = |reason: String| StoreError::Unreadable {
        name: name.to_owned(),
        reason,
    };
    match stored.split_first() {
        Some((&ANSWER_LZ4, compressed)) => {
            let declared = compressed
                .first_chunk::<4>()
                .map(|n| u32::from_le_bytes(*n) as usize)
                .ok_or_else(|| unreadable("truncated".into()))?;
            if declared > MAX_ANSWER_BYTES {
                return Err(unreadable(format!("claims {declared} bytes")));
            }
            lz4_flex::decompress_size_prepended(compressed).map_err(|e| unreadable(e.to_string()))
        }
        Some((first, _)) => Err(unreadable(format!("unknown encoding {first:#04x}"))),
        None => Err(unreadable("empty".into())),
    }
}

fn answer_key(height: u64) -> Vec<u8> {
    let mut key = ANSWER.to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key
}

impl Store {
    pub fn open(db: &sled::Db) -> Result<Store, StoreError> {
        let tree = db.open_tree(TREE)?;
        let bundles = db.open_tree(BUNDLE_TREE)?;
        Ok(Store {
            tree,
            bundles,
            db: db.clone(),
        })
    }

    /// Writes one block's changes atomically and durably.
    ///
    /// New bundles go to their tree first, then the block's batch, then one flush. sled recovers
    /// a prefix of its log, so a crash keeps either nothing of the block, or its bundles alone
    /// (content-addressed and unreferenced: harmless), or all of it.
    pub fn commit(&self, c: &BlockCommit<'_>) -> Result<(), StoreError> {
        for (version, files) in &c.bundles {
            let encoded: BTreeMap<&str, String> =
                files.iter().map(|(p, b)| (p, BASE64.encode(b))).collect();
            self.bundles
                .insert(format!("{BUNDLE}{version}").as_bytes(), json(&encoded)?)?;
        }
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
        for entry in &c.consents {
            batch.insert(
                format!("{CONSENT}{}", entry.record.id).as_bytes(),
                json(entry)?,
            );
        }
        for entry in &c.representations {
            batch.insert(
                format!("{REPRESENTATION}{}", entry.record.id).as_bytes(),
                json(entry)?,
            );
        }
        for entry in &c.agreements {
            batch.insert(
                format!("{AGREEMENT}{}", entry.record.id).as_bytes(),
                json(entry)?,
            );
        }
        batch.insert(
            answer_key(c.answer.height),
            encode_answer(c.answer.to_json()),
        );
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn answer(&self, height: u64) -> Result<Option<BlockAnswer>, StoreError> {
        let key = answer_key(height);
        match self.tree.get(&key)? {
            Some(stored) => {
                // The key's height is 8 raw bytes: errors name it in decimal.
                let name = format!("{}{height}", String::from_utf8_lossy(ANSWER));
                parse_named(&name, &decode_answer(&name, &stored)?).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Reads the whole state back (under the genesis's `signature_scheme`, which is not stored: the
    /// genesis digest pins it); `None` when no block was ever committed.
    pub fn load(
        &self,
        signature_scheme: SignatureScheme,
    ) -> Result<Option<StoredState>, StoreError> {
        let Some(meta) = self.tree.get(META)? else {
            return Ok(None);
        };
        let meta: Meta = parse(META, &meta)?;
        let mut proposals = BTreeMap::new();
        let mut bundles = BundleStore::default();
        let mut consents = Vec::new();
        // By prefix, so that a restart does not read every block's stored answer.
        let items = |tree: &sled::Tree, prefix: &str| {
            tree.scan_prefix(prefix)
                .map(|item| item.map_err(StoreError::from))
        };
        for item in items(&self.tree, PROPOSAL) {
            let (key, value) = item?;
            let p: Proposal = parse(&key, &value)?;
            proposals.insert(p.id.clone(), p);
        }
        for item in items(&self.bundles, BUNDLE) {
            let (key, value) = item?;
            let encoded: BTreeMap<String, String> = parse(&key, &value)?;
            let mut files = BTreeMap::new();
            for (path, b64) in encoded {
                let bytes = BASE64
                    .decode(b64)
                    .map_err(|source| StoreError::BundleFile {
                        path: path.clone(),
                        source,
                    })?;
                files.insert(path, bytes);
            }
            bundles.restore(BundleFiles::new(files));
        }
        for item in items(&self.tree, CONSENT) {
            let (key, value) = item?;
            consents.push(parse::<ConsentEntry>(&key, &value)?);
        }
        let mut representations = Vec::new();
        for item in items(&self.tree, REPRESENTATION) {
            let (key, value) = item?;
            representations.push(parse::<RepresentationEntry>(&key, &value)?);
        }
        let mut agreements = Vec::new();
        for item in items(&self.tree, AGREEMENT) {
            let (key, value) = item?;
            agreements.push(parse::<AgreementEntry>(&key, &value)?);
        }
        let last = self.answer(meta.height)?.ok_or(StoreError::MissingAnswer {
            height: meta.height,
        })?;
        let gov = GovernanceState::restore(
            signature_scheme,
            meta.consortium,
            meta.membership,
            meta.params,
            proposals,
            meta.history,
            meta.next_seq,
            bundles,
        )
        .map_err(StoreError::Restore)?;
        Ok(Some(StoredState {
            genesis: meta.genesis,
            gov,
            consents: InMemoryConsentRegistry::from_entries(consents)
                .with_relations(InMemoryRelations::from_entries(representations, agreements)),
            last,
        }))
    }
}
