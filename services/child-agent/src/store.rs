//! The agent's own store (sled, under `--data-dir`): its identity, the
//! events it recorded, and the meter checkpoint.
//!
//! Every event is written and flushed before the action it records is
//! acknowledged to anyone, so nothing acknowledged is lost to a crash. The
//! events double as the outbox for the hub: everything after the hub's last
//! acknowledged sequence number is still to be sent.

use std::path::{Path, PathBuf};

use rand::Rng;
use serde::{Serialize, de::DeserializeOwned};
use sled::transaction::Transactional;

use crate::meter::Interval;

const DEVICE_ID: &[u8] = b"device_id";
const CHECKPOINT: &[u8] = b"checkpoint";

/// Errors of the agent's store, naming the data directory involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store in {dir}: {source} (is another child-agent running on it?)")]
    Open { dir: PathBuf, source: sled::Error },
    #[error("store I/O failed: {0}")]
    Io(#[from] sled::Error),
    #[error("store holds a record that cannot be read ({what}): {message}")]
    Corrupt { what: &'static str, message: String },
}

/// What the meter saves every few seconds, so a kill loses little.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The agent clock when saved; the clock never restarts before it.
    pub clock_unix_micros: i64,
    /// The usage interval still open when saved.
    pub open_interval: Option<Interval>,
}

#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    events: sled::Tree,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::open(dir.join("store")).map_err(|source| StoreError::Open {
            dir: dir.to_owned(),
            source,
        })?;
        Ok(Self {
            meta: db.open_tree("meta")?,
            events: db.open_tree("events")?,
            db,
        })
    }

    /// The device's CST-style ID: made at first start (16 uppercase hex
    /// digits, like the Android child's first 16 digits of a random UUID) and
    /// kept from then on.
    pub fn device_id(&self) -> Result<String, StoreError> {
        if let Some(id) = self.meta.get(DEVICE_ID)? {
            return String::from_utf8(id.to_vec()).map_err(|e| StoreError::Corrupt {
                what: "device_id",
                message: e.to_string(),
            });
        }
        let id = format!("{:016X}", rand::rng().random::<u64>());
        // Another opener cannot race us: sled holds the directory exclusively.
        self.meta.insert(DEVICE_ID, id.as_bytes())?;
        self.db.flush()?;
        Ok(id)
    }

    pub fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        match self.meta.get(CHECKPOINT)? {
            None => Ok(Checkpoint::default()),
            Some(bytes) => decode("checkpoint", &bytes),
        }
    }

    /// Saves the checkpoint durably.
    pub fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.meta.insert(CHECKPOINT, encode(checkpoint))?;
        self.db.flush()?;
        Ok(())
    }

    /// Appends events durably and atomically (all or none), optionally with a
    /// new checkpoint in the same batch, and returns their sequence numbers.
    pub fn append<E: Serialize>(
        &self,
        events: &[E],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<Vec<u64>, StoreError> {
        let mut next = self.next_seq()?;
        let mut seqs = Vec::with_capacity(events.len());
        let result: sled::transaction::TransactionResult<(), ()> = (&self.events, &self.meta)
            .transaction(|(events_tx, meta_tx)| {
                for (i, event) in events.iter().enumerate() {
                    events_tx.insert(&(next + i as u64).to_be_bytes(), encode(event))?;
                }
                if let Some(checkpoint) = checkpoint {
                    meta_tx.insert(CHECKPOINT, encode(checkpoint))?;
                }
                Ok(())
            });
        result.map_err(|e| match e {
            sled::transaction::TransactionError::Storage(e) => StoreError::Io(e),
            sled::transaction::TransactionError::Abort(()) => {
                StoreError::Io(sled::Error::Unsupported("transaction aborted".into()))
            }
        })?;
        self.db.flush()?;
        for _ in events {
            seqs.push(next);
            next += 1;
        }
        Ok(seqs)
    }

    /// Every event in order of sequence number.
    pub fn events<E: DeserializeOwned>(&self) -> Result<Vec<(u64, E)>, StoreError> {
        self.events
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((seq_of(&key)?, decode("event", &value)?))
            })
            .collect()
    }

    fn next_seq(&self) -> Result<u64, StoreError> {
        match self.events.last()? {
            Some((key, _)) => Ok(seq_of(&key)? + 1),
            None => Ok(1),
        }
    }
}

fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| StoreError::Corrupt {
        what: "event key",
        message: format!("{} bytes, expected 8", key.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain data types to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap().device_id().unwrap();
        assert_eq!(first.len(), 16);
        assert!(
            first
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        let again = Store::open(dir.path()).unwrap().device_id().unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn events_and_checkpoint_survive_a_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint {
            clock_unix_micros: 42,
            open_interval: None,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.append(&["a", "b"], None).unwrap(), [1, 2]);
            assert_eq!(store.append(&["c"], Some(&checkpoint)).unwrap(), [3]);
        }
        let store = Store::open(dir.path()).unwrap();
        let events: Vec<(u64, String)> = store.events().unwrap();
        assert_eq!(events, [(1, "a".into()), (2, "b".into()), (3, "c".into())]);
        assert_eq!(store.checkpoint().unwrap(), checkpoint);
    }
}
