//! The agent's own store (sled, under `--data-dir`): its identity, the
//! events it recorded, and the meter checkpoint.
//!
//! Every event is written and flushed before the action it records is
//! acknowledged to anyone, so nothing acknowledged is lost to a crash. The
//! events double as the outbox for the hub: everything after the hub's last
//! acknowledged sequence number is still to be sent.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use household_core::{Event, Policy};
use rand::Rng;
use serde::{Serialize, de::DeserializeOwned};
use sled::transaction::{TransactionError, TransactionResult, Transactional};

use crate::meter::Interval;

/// How long opening waits for another process to let go of the store.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

const DEVICE_ID: &[u8] = b"device_id";
const CHECKPOINT: &[u8] = b"checkpoint";
const POLICY: &[u8] = b"policy";

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
    /// Opens the store, waiting up to [`LOCK_WAIT`] while another process
    /// holds it: a `child-agent status` that reads a stopped agent's store
    /// holds it for a moment, and the agent starting just then must not fail.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::open(dir.join("store")) {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(source) => {
                    return Err(StoreError::Open {
                        dir: dir.to_owned(),
                        source,
                    });
                }
            }
        };
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

    /// The policy the agent last ran with, so the status can be read while
    /// the agent is stopped.
    pub fn policy(&self) -> Result<Option<Policy>, StoreError> {
        self.meta
            .get(POLICY)?
            .map(|bytes| decode("policy", &bytes))
            .transpose()
    }

    pub fn save_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        self.meta.insert(POLICY, encode(policy))?;
        self.db.flush()?;
        Ok(())
    }

    pub fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        match self.meta.get(CHECKPOINT)? {
            None => Ok(Checkpoint::default()),
            Some(bytes) => decode("checkpoint", &bytes),
        }
    }

    /// Stores events (numbered by the caller) durably and atomically — all or
    /// none — optionally with a new checkpoint in the same batch.
    pub fn append(
        &self,
        events: &[Event],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        let result: TransactionResult<(), ()> =
            (&self.events, &self.meta).transaction(|(events_tx, meta_tx)| {
                for event in events {
                    events_tx.insert(&event.seq.to_be_bytes(), encode(event))?;
                }
                if let Some(checkpoint) = checkpoint {
                    meta_tx.insert(CHECKPOINT, encode(checkpoint))?;
                }
                Ok(())
            });
        result.map_err(|e| match e {
            TransactionError::Storage(e) => StoreError::Io(e),
            TransactionError::Abort(()) => {
                StoreError::Io(sled::Error::Unsupported("transaction aborted".into()))
            }
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// The last `limit` events, in sequence order.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut events = self
            .events
            .iter()
            .rev()
            .take(limit)
            .map(|entry| decode("event", &entry?.1))
            .collect::<Result<Vec<Event>, StoreError>>()?;
        events.reverse();
        Ok(events)
    }

    /// Every event, in sequence order.
    pub fn events(&self) -> Result<Vec<Event>, StoreError> {
        self.events
            .iter()
            .map(|entry| decode("event", &entry?.1))
            .collect()
    }
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
        use household_core::{Actor, ChildId, EventKind};
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = Checkpoint {
            clock_unix_micros: 42,
            open_interval: None,
        };
        let event = |seq| {
            Event::new(
                seq,
                jiff::Timestamp::UNIX_EPOCH,
                Actor::System,
                ChildId::from("c"),
                EventKind::LegacyCommand {
                    command: format!("EXTEND_TIME:{seq}"),
                },
            )
        };
        let events = [event(1), event(2), event(3)];
        {
            let store = Store::open(dir.path()).unwrap();
            store.append(&events[..2], None).unwrap();
            store.append(&events[2..], Some(&checkpoint)).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.events().unwrap(), events);
        assert_eq!(store.checkpoint().unwrap(), checkpoint);
    }
}
