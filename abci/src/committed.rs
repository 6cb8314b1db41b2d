//! The last height CometBFT committed, kept in the data directory next to the state machine's
//! store. A block is stored when it is applied (`FinalizeBlock`); it counts as committed only
//! once `Commit` recorded it here. `Info` reports this height, so that after a stop between the
//! two CometBFT replays that block, and the state machine answers the replay from its store.

/// The sled tree of the ABCI application's own records.
const TREE: &str = "abci";
const COMMITTED: &[u8] = b"committed_height";

/// The last committed height, if a block was ever committed.
pub fn read(db: &sled::Db) -> Result<Option<u64>, CommittedError> {
    let tree = db.open_tree(TREE)?;
    match tree.get(COMMITTED)? {
        None => Ok(None),
        Some(bytes) => {
            let bytes: [u8; 8] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| CommittedError::Corrupt(bytes.len()))?;
            Ok(Some(u64::from_be_bytes(bytes)))
        }
    }
}

/// Records `height` as committed and flushes the database.
pub fn write(db: &sled::Db, height: u64) -> Result<(), CommittedError> {
    db.open_tree(TREE)?
        .insert(COMMITTED, &height.to_be_bytes())?;
    db.flush()?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum CommittedError {
    #[error("committed height: {0}")]
    Store(#[from] sled::Error),
    #[error("committed height: {0} bytes stored, 8 expected")]
    Corrupt(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_height_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = sled::open(dir.path()).expect("open");
            assert_eq!(read(&db).expect("read"), None);
            write(&db, 7).expect("write");
            write(&db, 8).expect("write");
        }
        let db = sled::open(dir.path()).expect("reopen");
        assert_eq!(read(&db).expect("read"), Some(8));
    }

    #[test]
    fn a_record_of_the_wrong_size_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("open");
        db.open_tree(TREE)
            .expect("tree")
            .insert(COMMITTED, &b"abc"[..])
            .expect("insert");
        let err = read(&db).expect_err("corrupt");
        assert_eq!(
            err.to_string(),
            "committed height: 3 bytes stored, 8 expected"
        );
    }
}
