//! Backups of a data directory: a consistent copy taken while the node runs, and its restore.
//!
//! A backup is one file: the line `accord-backup/v1`, a JSON header line
//! (`{"genesis":"sha256:…","height":h,"decision_log_entries":n}`), then every sled tree of the
//! directory as records — `T`, name; `K`, key, value (lengths as u32 big-endian) — then `E` and
//! the SHA-256 of every byte before it. A restore refuses a file whose digest does not match.
//!
//! Consistency. The node's state (trees `accord-state` and `accord-bundles`, and every other tree
//! but the decision log's) is copied under the node's lock, so at one height, and the decision
//! log's block record (`decisions-blocks`) is read before the lock is released. The decision log
//! is append-only: its segments are copied as they stand after that, up to the last one that
//! continues the chain without a gap. So the copy holds the state after block `h`, every entry
//! of the blocks the record names, and possibly decisions made since: exactly what the data
//! directory could hold after a stop at that moment, which a node reopens as after any stop (the
//! decisions of block `h`, if the record is older, are logged again by its replay). The verified
//! checkpoint (`decisions-verified`) is not copied: the first verification of a restored log
//! starts from its first entry.

use crate::decision_log::{verify_tree, Checkpoint, Verification, BLOCKS_TREE, TREE as LOG_TREE};
use crate::node::Node;
use accord_engine::Bundle;
use accord_governance::{Genesis, StateMachine};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file a serving node keeps in its data directory, naming its address
/// (`{"url":"http://127.0.0.1:8181","pid":…}`): `accord backup --data DIR` asks that node when
/// the directory is in use. Written once the node listens, removed when it stops.
pub const SERVING_FILE: &str = "serving.json";

/// The first line of a backup file.
pub const MAGIC: &[u8] = b"accord-backup/v1\n";

/// Trees a backup leaves out: the decision log's verified checkpoint (a cache of the last
/// verification).
const SKIPPED_TREES: [&str; 1] = [crate::decision_log::CHECKPOINT_TREE];

/// Largest key or value a restore accepts (sled keeps values far smaller).
const MAX_ITEM_BYTES: u32 = 1 << 30;

/// What a backup says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupHeader {
    /// The genesis digest the data directory was made under (`null` before the first block).
    pub genesis: Option<String>,
    /// The height of the last applied block (`null` before the first block).
    pub height: Option<u64>,
    /// Entries of the decision log in the copy.
    pub decision_log_entries: u64,
}

// INVARIANT (json::Strict): a derived struct of optional strings and numbers.
impl accord_engine::json::Strict for BackupHeader {}

/// Why a backup could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("database: {0}")]
    Storage(String),
    #[error("not an Accord backup: {0}")]
    Format(String),
    /// The backup was made under another genesis (or bundle) than the one given.
    #[error("{0}")]
    OtherGenesis(String),
    /// The target directory, or what the restored data holds, cannot be used.
    #[error("{0}")]
    Refused(String),
}

impl From<sled::Error> for BackupError {
    fn from(e: sled::Error) -> Self {
        BackupError::Storage(e.to_string())
    }
}

/// Writes everything it is given to `out` and hashes it on the way.
struct Hashing<W: Write> {
    out: W,
    hasher: Sha256,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)
    }

    fn item(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }

    fn pair(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        self.put(b"K")?;
        self.item(key)?;
        self.item(value)
    }

    fn tree(&mut self, tree: &sled::Tree) -> Result<(), BackupError> {
        self.put(b"T")?;
        self.item(&tree.name())?;
        for pair in tree.iter() {
            let (key, value) = pair?;
            self.pair(&key, &value)?;
        }
        Ok(())
    }
}

/// The genesis digest and height stored in the node's state, read raw (the state machine is
/// not needed to copy it).
fn stored_head(db: &sled::Db) -> Result<(Option<String>, Option<u64>), BackupError> {
    #[derive(Deserialize)]
    struct Meta {
        genesis: String,
        height: u64,
    }
    let tree = db.open_tree("accord-state")?;
    match tree.get(b"meta")? {
        None => Ok((None, None)),
        Some(bytes) => {
            let meta: Meta = accord_engine::json::parse(&bytes)
                .map_err(|e| BackupError::Storage(format!("accord-state meta: {e}")))?;
            Ok((Some(meta.genesis), Some(meta.height)))
        }
    }
}

/// Writes a consistent backup of `db` to `out`; `node`, when the node runs, is locked while its
/// state is copied. Returns the header written.
pub fn write_backup(
    db: &sled::Db,
    node: Option<&Node>,
    out: impl Write,
) -> Result<BackupHeader, BackupError> {
    let mut out = Hashing {
        out,
        hasher: Sha256::new(),
    };
    let mut names: Vec<Vec<u8>> = db.tree_names().into_iter().map(|n| n.to_vec()).collect();
    names.sort();
    names.retain(|n| {
        ![LOG_TREE, BLOCKS_TREE]
            .iter()
            .chain(SKIPPED_TREES.iter())
            .any(|s| n.as_slice() == s.as_bytes())
    });
    let log_tree = db.open_tree(LOG_TREE)?;
    let (header, record, last_segment) = {
        // Under the node's lock: no block applies while the state is copied.
        let _machine = node.map(Node::lock);
        let (genesis, height) = stored_head(db)?;
        // The log's block record, then its segments: the record never runs ahead of them (a
        // round's segments are written before its record).
        let record: Vec<(sled::IVec, sled::IVec)> = db
            .open_tree(BLOCKS_TREE)?
            .iter()
            .collect::<Result<_, _>>()?;
        let (last_segment, entries) = log_prefix(&log_tree)?;
        let header = BackupHeader {
            genesis,
            height,
            decision_log_entries: entries,
        };
        out.put(MAGIC)?;
        let text = serde_json::to_string(&header).map_err(std::io::Error::other)?;
        out.put(text.as_bytes())?;
        out.put(b"\n")?;
        for name in &names {
            out.tree(&db.open_tree(name)?)?;
        }
        (header, record, last_segment)
    };
    out.put(b"T")?;
    out.item(BLOCKS_TREE.as_bytes())?;
    for (key, value) in record {
        out.pair(&key, &value)?;
    }
    // The decision log up to the segment counted under the lock (later ones are left out).
    out.put(b"T")?;
    out.item(LOG_TREE.as_bytes())?;
    if let Some(last) = last_segment {
        for pair in log_tree.range(..=last) {
            let (key, value) = pair?;
            out.pair(&key, &value)?;
        }
    }
    out.put(b"E")?;
    let digest = out.hasher.clone().finalize();
    out.out.write_all(&digest)?;
    out.out.flush()?;
    Ok(header)
}

/// The key of the last segment of the log's gapless prefix, and how many entries the prefix
/// holds.
fn log_prefix(tree: &sled::Tree) -> Result<(Option<sled::IVec>, u64), BackupError> {
    let mut next = 1u64;
    let mut last = None;
    for pair in tree.iter() {
        let (key, value) = pair?;
        let start = <[u8; 8]>::try_from(key.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| BackupError::Storage("decision log: a key is not 8 bytes".into()))?;
        if start != next {
            break;
        }
        let count = value.iter().filter(|b| **b == b'\n').count() as u64;
        next = start + count;
        last = Some(key);
    }
    Ok((last, next - 1))
}

/// Reads a backup and hashes what it read.
struct Reader<R: Read> {
    input: std::io::BufReader<R>,
    hasher: Sha256,
}

impl<R: Read> Reader<R> {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, BackupError> {
        let mut buf = vec![0u8; n];
        self.input
            .read_exact(&mut buf)
            .map_err(|e| BackupError::Format(format!("truncated ({e})")))?;
        self.hasher.update(&buf);
        Ok(buf)
    }

    fn item(&mut self) -> Result<Vec<u8>, BackupError> {
        let len = self.bytes(4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        if len > MAX_ITEM_BYTES {
            return Err(BackupError::Format(format!("an item claims {len} bytes")));
        }
        self.bytes(len as usize)
    }

    fn line(&mut self) -> Result<Vec<u8>, BackupError> {
        let mut line = Vec::new();
        std::io::BufRead::read_until(&mut self.input, b'\n', &mut line)?;
        if line.pop() != Some(b'\n') {
            return Err(BackupError::Format("truncated header".into()));
        }
        self.hasher.update(&line);
        self.hasher.update(b"\n");
        Ok(line)
    }
}

/// Reads a backup from `input` into the empty database `db` (with `None`, only checks it) and
/// flushes it; refuses a file that is not a whole backup (wrong first line, truncated, digest
/// mismatch), and one whose header `accept` refuses (before anything is written). Returns its
/// header.
pub fn restore_backup(
    input: impl Read,
    db: Option<&sled::Db>,
    accept: impl FnOnce(&BackupHeader) -> Result<(), BackupError>,
) -> Result<BackupHeader, BackupError> {
    let format = |reason: &str| BackupError::Format(reason.to_owned());
    let mut reader = Reader {
        input: std::io::BufReader::with_capacity(1 << 16, input),
        hasher: Sha256::new(),
    };
    if reader.bytes(MAGIC.len()).ok().as_deref() != Some(MAGIC) {
        return Err(format("the first line is not `accord-backup/v1`"));
    }
    let header: BackupHeader = accord_engine::json::from_slice(&reader.line()?)
        .map_err(|e| BackupError::Format(format!("header: {e}")))?;
    accept(&header)?;
    let mut tree: Option<sled::Tree> = None;
    let mut batch = sled::Batch::default();
    let mut batched = 0usize;
    loop {
        match reader.bytes(1)?[0] {
            b'T' => {
                if let Some(t) = tree.take() {
                    t.apply_batch(std::mem::take(&mut batch))?;
                }
                let name = reader.item()?;
                tree = db.map(|db| db.open_tree(name)).transpose()?;
                batched = 0;
            }
            b'K' => {
                let (key, value) = (reader.item()?, reader.item()?);
                let Some(t) = &tree else {
                    if db.is_some() {
                        return Err(format("a key before any tree"));
                    }
                    continue;
                };
                batch.insert(key, value);
                batched += 1;
                if batched == 4096 {
                    t.apply_batch(std::mem::take(&mut batch))?;
                    batched = 0;
                }
            }
            b'E' => break,
            other => {
                return Err(BackupError::Format(format!(
                    "unknown record tag {other:#04x}"
                )))
            }
        }
    }
    if let Some(t) = tree.take() {
        t.apply_batch(batch)?;
    }
    let computed = reader.hasher.clone().finalize();
    let mut digest = [0u8; 32];
    reader
        .input
        .read_exact(&mut digest)
        .map_err(|_| format("truncated digest"))?;
    if computed.as_slice() != digest {
        return Err(format("its digest does not match its content (damaged)"));
    }
    if let Some(db) = db {
        db.flush()?;
    }
    Ok(header)
}

/// What a restore made: the restored node's height and state root, and its decision log
/// verified from the first entry.
#[derive(Debug, Serialize)]
pub struct Restored {
    pub height: Option<u64>,
    pub state_root: String,
    pub decision_log: Verification,
}

/// Restores the backup `input` into the data directory `data` (which must not exist, or be
/// empty) for a node of `genesis` with its initial `bundle`: refuses a backup made under another
/// genesis, then imports it beside `data`, opens the state machine on it, verifies the whole
/// decision log, and only then moves it into place. Nothing is left behind when it fails.
pub fn restore_into(
    input: impl Read,
    data: &Path,
    genesis: &Genesis,
    bundle: Arc<Bundle>,
) -> Result<Restored, BackupError> {
    let shown = data.display();
    let empty = match std::fs::read_dir(data) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(BackupError::Refused(format!("{shown}: {e}"))),
    };
    if !empty {
        return Err(BackupError::Refused(format!(
            "{shown}: not empty; a restore writes only a new or empty data directory"
        )));
    }
    let staging = staging_dir(data)?;
    if staging.exists() {
        return Err(BackupError::Refused(format!(
            "{}: exists (a restore in progress, or left over from one that stopped: remove it)",
            staging.display()
        )));
    }
    let result = restore_staged(input, &staging, genesis, bundle);
    match result {
        Ok(restored) => {
            if data.exists() {
                std::fs::remove_dir(data)?;
            }
            std::fs::rename(&staging, data)?;
            Ok(restored)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// `DIR.restoring`, beside `DIR`.
fn staging_dir(data: &Path) -> Result<PathBuf, BackupError> {
    let name = data
        .file_name()
        .ok_or_else(|| BackupError::Refused(format!("{}: not a directory name", data.display())))?;
    let mut staged = name.to_os_string();
    staged.push(".restoring");
    Ok(data.with_file_name(staged))
}

fn restore_staged(
    input: impl Read,
    staging: &Path,
    genesis: &Genesis,
    bundle: Arc<Bundle>,
) -> Result<Restored, BackupError> {
    let expected = genesis.digest(bundle.version());
    let db = sled::Config::new().path(staging).open()?;
    restore_backup(input, Some(&db), |header| match &header.genesis {
        Some(made_under) if *made_under != expected => Err(BackupError::OtherGenesis(format!(
            "the backup was made under genesis {made_under}; the genesis and bundle given make \
             {expected} (consortium `{}`): restore it with the genesis and initial bundle of the \
             node it came from",
            genesis.consortium
        ))),
        _ => Ok(()),
    })?;
    let machine = StateMachine::open(genesis, bundle, &db)
        .map_err(|e| BackupError::Refused(format!("the restored state does not open: {e}")))?;
    let log = db.open_tree(LOG_TREE)?;
    let decision_log = verify_tree(&log, &Checkpoint::genesis(), &|| false)
        .map_err(|e| BackupError::Refused(format!("the restored decision log: {e}")))?
        .finding
        .unwrap_or_else(|| Verification {
            ok: true,
            length: 0,
            head: Checkpoint::genesis().head,
            checked_from: 1,
            checked: 0,
            full: true,
            broken: None,
        });
    if !decision_log.ok {
        return Err(BackupError::Refused(format!(
            "the restored decision log does not verify: {:?}",
            decision_log.broken
        )));
    }
    let restored = Restored {
        height: machine.height(),
        state_root: machine.state_root(),
        decision_log,
    };
    drop(machine);
    db.flush()?;
    Ok(restored)
}
