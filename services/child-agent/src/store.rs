//! The agent's own store (sled, under `--data-dir`): its identity, the
//! events it recorded, and the meter checkpoint.
//!
//! Every event is written and flushed before the action it records is
//! acknowledged to anyone, so nothing acknowledged is lost to a crash. An
//! enrolled agent stores, in the same batch, the outbox records the hub is
//! owed (see [`crate::link`]); they leave the store only when the hub
//! acknowledges them.
//!
//! The record is bounded: at start, events older than [`KEEP_EVENTS_DAYS`]
//! are pruned (see [`Store::prune`]), and start-up replays the rest one at a
//! time from disk ([`Store::for_each_event`]) instead of loading them all.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use household_core::{Event, Policy};
use serde::{Serialize, de::DeserializeOwned};
use sled::transaction::{TransactionError, TransactionResult, Transactional};

use crate::meter::Interval;

/// How long opening waits for another process to let go of the store.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Events older than this many days are pruned at start. The rules only look
/// at today (and at locks still in force, which are kept), so this is
/// history for `child-agent log`, not state.
pub const KEEP_EVENTS_DAYS: i64 = 30;

/// sled's page cache. The store holds a few days of small events and the
/// outbox: a small cache keeps the agent small (sled's default is 1 GiB).
const CACHE_BYTES: u64 = 2 * 1024 * 1024;

const DEVICE_ID: &[u8] = b"device_id";
const CHECKPOINT: &[u8] = b"checkpoint";
const POLICY: &[u8] = b"policy";
const INSTANCE_ID: &[u8] = b"instance_id";
const NEXT_OUTBOX_ID: &[u8] = b"next_outbox_id";
const LINK_STATE: &[u8] = b"link_state";

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
    /// What waits for the hub's acknowledgement: outbox id (big-endian) to the
    /// encoded `household.v1.OutboxItem`. Removed only when the hub acknowledges
    /// it; never pruned.
    outbox: sled::Tree,
    /// Digests of legacy commands seen, with the agent time (big-endian
    /// Unix microseconds): the replay window, kept across restarts.
    replay: sled::Tree,
    /// Set by tests to make every write fail, as a failing disk does.
    #[cfg(test)]
    pub fail_writes: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StoreError {
    /// Whether the store is held by another process (another agent, or `child-agent
    /// status` reading it while no agent runs), rather than unusable.
    pub fn is_held(&self) -> bool {
        // sled 0.34 turns the lock's WouldBlock into a message of its own.
        matches!(
            self,
            StoreError::Open { source: sled::Error::Io(e), .. }
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock")
        )
    }

    /// Whether the store's content is damaged (as opposed to, say, held by
    /// another process): such a store is moved aside and started afresh.
    pub fn is_damage(&self) -> bool {
        match self {
            StoreError::Corrupt { .. } => true,
            StoreError::Open { source, .. } | StoreError::Io(source) => match source {
                sled::Error::Corruption { .. } => true,
                sled::Error::Io(e) => e.kind() == std::io::ErrorKind::InvalidData,
                _ => false,
            },
        }
    }
}

/// The store's directory inside the data directory.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("store")
}

/// Renames a damaged store to `store.damaged-<unix seconds>` beside it, for
/// whoever wants to look at it, and returns the new name.
pub fn move_aside(data_dir: &Path) -> std::io::Result<PathBuf> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut aside = data_dir.join(format!("store.damaged-{seconds}"));
    let mut n = 1;
    while aside.exists() {
        aside = data_dir.join(format!("store.damaged-{seconds}-{n}"));
        n += 1;
    }
    std::fs::rename(store_path(data_dir), &aside)?;
    Ok(aside)
}

/// Makes the data directory reachable but not listable by others (`0711`:
/// the control socket inside must stay reachable for the child), and
/// everything in the store owner-only (`0700` directories, `0600` files),
/// including what an earlier version left more open.
pub fn secure(data_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o711))?;
    let mut pending = vec![store_path(data_dir)];
    // Bounded: sled's directory is a few levels deep with a few files.
    while let Some(path) = pending.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        } else if meta.is_file() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl Store {
    /// Opens the store, waiting up to [`LOCK_WAIT`] while another process
    /// holds it: a `child-agent status` that reads a stopped agent's store
    /// holds it for a moment, and the agent starting just then must not fail.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::Config::new()
                .path(store_path(dir))
                .cache_capacity(CACHE_BYTES)
                .open()
            {
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
            outbox: db.open_tree("outbox")?,
            replay: db.open_tree("replay")?,
            db,
            #[cfg(test)]
            fail_writes: Default::default(),
        })
    }

    /// The device ID kept in the store, a second copy beside the
    /// [`crate::identity`] file.
    pub fn device_id(&self) -> Result<Option<String>, StoreError> {
        self.meta
            .get(DEVICE_ID)?
            .map(|id| {
                String::from_utf8(id.to_vec()).map_err(|e| StoreError::Corrupt {
                    what: "device_id",
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    pub fn save_device_id(&self, id: &str) -> Result<(), StoreError> {
        self.check_writable()?;
        self.meta.insert(DEVICE_ID, id.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Whether the store has never recorded anything: no event, no
    /// checkpoint.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.events.is_empty() && self.meta.get(CHECKPOINT)?.is_none())
    }

    #[cfg(test)]
    fn check_writable(&self) -> Result<(), StoreError> {
        if self.fail_writes.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Io(sled::Error::Io(std::io::Error::other(
                "injected write failure",
            ))));
        }
        Ok(())
    }

    #[cfg(not(test))]
    fn check_writable(&self) -> Result<(), StoreError> {
        Ok(())
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
        self.check_writable()?;
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

    /// Stores events (numbered by the caller) and outbox records (numbered by
    /// the caller, in increasing order) durably and atomically — all or none —
    /// optionally with a new checkpoint in the same batch: what the device did
    /// and what it owes the hub are stored together or not at all.
    pub fn append(
        &self,
        events: &[Event],
        outbox: &[(u64, Vec<u8>)],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        self.check_writable()?;
        let result: TransactionResult<(), ()> = (&self.events, &self.meta, &self.outbox)
            .transaction(|(events_tx, meta_tx, outbox_tx)| {
                for event in events {
                    events_tx.insert(&event.seq.to_be_bytes(), encode(event))?;
                }
                for (id, record) in outbox {
                    outbox_tx.insert(&id.to_be_bytes(), record.as_slice())?;
                }
                if let Some((last, _)) = outbox.last() {
                    meta_tx.insert(NEXT_OUTBOX_ID, &(last + 1).to_be_bytes())?;
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

    /// The agent instance this store belongs to, made when the store is first
    /// used for the hub: a new store is a new instance, so the hub can never
    /// mistake its fresh outbox ids for ones it already applied.
    pub fn instance_id(&self) -> Result<String, StoreError> {
        if let Some(id) = self.meta.get(INSTANCE_ID)? {
            return String::from_utf8(id.to_vec()).map_err(|e| StoreError::Corrupt {
                what: "instance_id",
                message: e.to_string(),
            });
        }
        self.check_writable()?;
        let id = format!("i{:032x}", rand::random::<u128>());
        self.meta.insert(INSTANCE_ID, id.as_bytes())?;
        self.db.flush()?;
        Ok(id)
    }

    /// The id the next outbox record takes.
    pub fn next_outbox_id(&self) -> Result<u64, StoreError> {
        Ok(match self.meta.get(NEXT_OUTBOX_ID)? {
            Some(bytes) => <[u8; 8]>::try_from(&*bytes).map_or(1, u64::from_be_bytes),
            None => 1,
        })
    }

    /// Every outbox record not yet acknowledged, in id order.
    pub fn outbox(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.outbox_after(0, usize::MAX)
    }

    /// At most `limit` outbox records with ids above `after`, in id order.
    pub fn outbox_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut records = Vec::new();
        for entry in self.outbox.range((after + 1).to_be_bytes()..).take(limit) {
            let (key, value) = entry?;
            let id = <[u8; 8]>::try_from(&*key).map_err(|_| StoreError::Corrupt {
                what: "outbox id",
                message: format!("{} bytes", key.len()),
            })?;
            records.push((u64::from_be_bytes(id), value.to_vec()));
        }
        Ok(records)
    }

    /// How many outbox records wait for the hub.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Deletes the records the hub acknowledged. Flushed: a record the hub has
    /// is sent again at most once more, after a crash before this returns, and
    /// the hub applies each id once.
    pub fn remove_outbox(&self, ids: &[u64]) -> Result<(), StoreError> {
        self.check_writable()?;
        let mut batch = sled::Batch::default();
        for id in ids {
            batch.remove(&id.to_be_bytes());
        }
        self.outbox.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// What the agent keeps of its hub between runs (the last budget, the
    /// clock offset, the commands carried out), as its link module encodes it.
    pub fn link_state<T: DeserializeOwned>(&self) -> Result<Option<T>, StoreError> {
        self.meta
            .get(LINK_STATE)?
            .map(|bytes| decode("link_state", &bytes))
            .transpose()
    }

    pub fn save_link_state<T: Serialize>(&self, state: &T) -> Result<(), StoreError> {
        self.check_writable()?;
        self.meta.insert(LINK_STATE, encode(state))?;
        self.db.flush()?;
        Ok(())
    }

    /// Notes a legacy command's digest, seen at `at_unix_micros`. Not
    /// flushed on its own: the grant or lock the command causes flushes it
    /// with itself, and a read's digest goes with the next write. Entries
    /// older than `forget_before_unix_micros` are dropped now and then, so
    /// the tree stays about the size of the window.
    pub fn remember_replay(
        &self,
        digest: [u8; 16],
        at_unix_micros: i64,
        forget_before_unix_micros: i64,
    ) -> Result<(), StoreError> {
        self.check_writable()?;
        self.replay.insert(digest, &at_unix_micros.to_be_bytes())?;
        // Now and then (1 in 64, by the digest's random first byte): prune.
        if digest[0] & 0x3f == 0 {
            self.forget_replays_before(forget_before_unix_micros)?;
        }
        Ok(())
    }

    /// The digests seen at or after `since_unix_micros`, with their times.
    pub fn replays_since(
        &self,
        since_unix_micros: i64,
    ) -> Result<Vec<([u8; 16], i64)>, StoreError> {
        self.forget_replays_before(since_unix_micros)?;
        let mut seen = Vec::new();
        for entry in self.replay.iter() {
            let (key, value) = entry?;
            if let (Ok(digest), Ok(at)) =
                (<[u8; 16]>::try_from(&*key), <[u8; 8]>::try_from(&*value))
            {
                seen.push((digest, i64::from_be_bytes(at)));
            }
        }
        Ok(seen)
    }

    fn forget_replays_before(&self, before_unix_micros: i64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for entry in self.replay.iter() {
            let (key, value) = entry?;
            let at = <[u8; 8]>::try_from(&*value).map_or(i64::MIN, i64::from_be_bytes);
            if at < before_unix_micros {
                batch.remove(key);
            }
        }
        self.replay.apply_batch(batch)?;
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
    fn a_store_held_elsewhere_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let held = Store::open(dir.path()).expect_err("the store is held");
        assert!(held.is_held() && !held.is_damage(), "{held}");
        drop(store);
        assert!(Store::open(dir.path()).is_ok(), "free again once closed");
    }

    #[test]
    fn the_device_id_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.device_id().unwrap(), None);
        assert!(store.is_empty().unwrap());
        store.save_device_id("3F2A9C1B7D4E8A60").unwrap();
        drop(store);
        let again = Store::open(dir.path()).unwrap().device_id().unwrap();
        assert_eq!(again.as_deref(), Some("3F2A9C1B7D4E8A60"));
    }

    #[test]
    fn the_store_is_owner_only_and_the_data_dir_not_listable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.save_device_id("3F2A9C1B7D4E8A60").unwrap();
        secure(dir.path()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o711);
        let mut pending = vec![store_path(dir.path())];
        let mut seen = 0;
        while let Some(path) = pending.pop() {
            seen += 1;
            assert_eq!(
                mode(&path) & 0o077,
                0,
                "{} is {:o}",
                path.display(),
                mode(&path)
            );
            if path.is_dir() {
                pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
        }
        assert!(seen > 2, "the store has files");
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
            store.append(&events[..2], &[], None).unwrap();
            store.append(&events[2..], &[], Some(&checkpoint)).unwrap();
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
        store.append(&events, &[], None).unwrap();
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
