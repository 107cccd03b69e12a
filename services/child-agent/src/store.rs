//! The agent's own store (sled, under `--data-dir`): its identity, the
//! events it recorded, and the meter checkpoint.
//!
//! Every event is written and flushed before the action it records is
//! acknowledged to anyone, so nothing acknowledged is lost to a crash. The
//! events double as the outbox for the hub: everything after the hub's last
//! acknowledged sequence number is still to be sent.
//!
//! The record is bounded: at start, events older than [`KEEP_EVENTS_DAYS`]
//! are pruned (see [`Store::prune`]), and start-up replays the rest one at a
//! time from disk ([`Store::for_each_event`]) instead of loading them all.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use household_core::{Event, Policy};
use rand::Rng;
use serde::{Serialize, de::DeserializeOwned};
use sled::transaction::{TransactionError, TransactionResult, Transactional};

use crate::meter::Interval;

/// How long opening waits for another process to let go of the store.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Events older than this many days are pruned at start. The rules only look
/// at today (and at locks still in force, which are kept), so this is
/// history for `child-agent log`, not state.
pub const KEEP_EVENTS_DAYS: i64 = 30;

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

    /// Calls `f` with every event, in sequence order, one at a time.
    pub fn for_each_event(&self, mut f: impl FnMut(Event)) -> Result<(), StoreError> {
        for entry in self.events.iter() {
            f(decode("event", &entry?.1)?);
        }
        Ok(())
    }

    /// Removes the events recorded before `before`, except those in `keep`
    /// (the locks still in force) and the newest event, whose sequence number
    /// the next one continues from. Reads from the oldest and stops at the
    /// first event not to prune; returns how many were removed.
    pub fn prune(
        &self,
        before: jiff::Timestamp,
        keep: &BTreeSet<u64>,
    ) -> Result<usize, StoreError> {
        let Some((newest, _)) = self.events.last()? else {
            return Ok(0);
        };
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for entry in self.events.iter() {
            let (key, value) = entry?;
            let event: Event = decode("event", &value)?;
            if key == newest || event.at >= before {
                break;
            }
            if !keep.contains(&event.seq) {
                batch.remove(key);
                removed += 1;
            }
        }
        if removed > 0 {
            self.events.apply_batch(batch)?;
            self.db.flush()?;
        }
        Ok(removed)
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
                    outcome: household_core::LegacyOutcome::Applied,
                    reply: format!("TIME_EXTENDED|{seq} minutes added"),
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
        assert_eq!(all_events(&store), events);
        assert_eq!(store.checkpoint().unwrap(), checkpoint);
    }

    fn all_events(store: &Store) -> Vec<Event> {
        let mut events = Vec::new();
        store.for_each_event(|e| events.push(e)).unwrap();
        events
    }

    #[test]
    fn pruning_removes_old_events_but_the_kept_and_the_newest() {
        use household_core::{Actor, ChildId, EventKind};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let day = |n: i64| jiff::Timestamp::from_second(n * 86_400).unwrap();
        let event = |seq, at| {
            Event::new(
                seq,
                at,
                Actor::System,
                ChildId::from("c"),
                EventKind::LegacyCommand {
                    command: "GET_TIME_LEFT".into(),
                    outcome: household_core::LegacyOutcome::Applied,
                    reply: String::new(),
                },
            )
        };
        let events = [
            event(1, day(1)),
            event(2, day(2)),
            event(3, day(3)),
            event(4, day(40)),
        ];
        store.append(&events, None).unwrap();
        let removed = store.prune(day(10), &BTreeSet::from([2])).unwrap();
        assert_eq!(removed, 2);
        assert_eq!(all_events(&store), [events[1].clone(), events[3].clone()]);
        // With only old events left, the newest stays for its number.
        let store = {
            drop(store);
            Store::open(dir.path()).unwrap()
        };
        assert_eq!(store.prune(day(100), &BTreeSet::new()).unwrap(), 1);
        assert_eq!(all_events(&store), [events[3].clone()]);
    }
}
