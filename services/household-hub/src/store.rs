//! The household's event log, kept in `crates/eventlog`.
//!
//! Two key spaces, so that both questions the hub asks are range scans:
//!
//! * `e` + seq (8 bytes, big-endian) → the `household.v1.Event`, protobuf-encoded:
//!   "everything after seq N" (Watch resume, rebuild at start, paged history).
//! * `c` + child id + `0x00` + event time (8 bytes, big-endian, sign bit flipped) + seq
//!   → nothing: "child X between t1 and t2" (history and reports for one child).
//!
//! Both keys of an event go in one batch, so an index entry never points at a missing
//! event. Appends are `Durability::Sync`: an event is acknowledged only once it is on
//! disk, and concurrent appends share one `fdatasync`.

use std::ops::Bound;
use std::path::Path;

use eventlog::{Db, Direction, Durability, Options, WriteBatch};
use household_proto::v1;
use prost::Message;

use crate::error::HubError;

const EVENT_PREFIX: u8 = b'e';
const CHILD_PREFIX: u8 = b'c';

/// The event log: append, read by seq, read a child's events by time.
pub struct EventStore {
    db: Db,
}

fn event_key(seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = EVENT_PREFIX;
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn seq_of_event_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Orders signed microseconds as unsigned bytes do.
fn time_bytes(unix_micros: i64) -> [u8; 8] {
    ((unix_micros as u64) ^ (1 << 63)).to_be_bytes()
}

fn child_prefix(child_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(child_id.len() + 2);
    key.push(CHILD_PREFIX);
    key.extend_from_slice(child_id.as_bytes());
    key.push(0);
    key
}

fn child_key(child_id: &str, unix_micros: i64, seq: u64) -> Vec<u8> {
    let mut key = child_prefix(child_id);
    key.extend_from_slice(&time_bytes(unix_micros));
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn decode(bytes: &[u8]) -> Result<v1::Event, HubError> {
    v1::Event::decode(bytes).map_err(|e| HubError::storage(format!("undecodable event: {e}")))
}

/// The engine's options for the hub's log. A household writes little and reads its
/// history rarely, and the hub should fit a small home server, so the engine gets far
/// less memory than its defaults (16 MiB memtables, two of them waiting for a flush, a
/// 32 MiB block cache): at most 2 + 2 MiB of memtables and a 2 MiB cache.
fn log_options() -> Options {
    Options {
        memtable_bytes: 2 << 20,
        max_frozen_memtables: 1,
        block_cache_bytes: 2 << 20,
        ..Options::default()
    }
}

impl EventStore {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path) -> Result<EventStore, HubError> {
        let db = Db::open(dir, log_options())?;
        let report = db.recovery_report();
        tracing::info!(?report, "event log opened");
        Ok(EventStore { db })
    }

    /// Appends events (with their seqs already assigned) durably, all or none.
    pub fn append(&self, events: &[v1::Event]) -> Result<(), HubError> {
        let mut batch = WriteBatch::new();
        for event in events {
            batch.put(&event_key(event.seq), &event.encode_to_vec());
            if !event.child_id.is_empty() {
                batch.put(
                    &child_key(&event.child_id, event.time_unix_micros, event.seq),
                    &[],
                );
            }
        }
        self.db.write(batch, Durability::Sync)?;
        Ok(())
    }

    /// The newest seq logged; 0 for an empty log.
    pub fn last_seq(&self) -> Result<u64, HubError> {
        let range = (
            Bound::Included(&[EVENT_PREFIX][..]),
            Bound::Excluded(&[EVENT_PREFIX + 1][..]),
        );
        match self.db.iter(range, Direction::Reverse)?.next() {
            Some(item) => {
                let (key, _) = item?;
                seq_of_event_key(&key).ok_or_else(|| HubError::storage("malformed event key"))
            }
            None => Ok(0),
        }
    }

    /// One event by seq.
    pub fn get(&self, seq: u64) -> Result<Option<v1::Event>, HubError> {
        self.db
            .get(&event_key(seq))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Events with seq greater than `after_seq`, oldest first, lazily.
    pub fn after(
        &self,
        after_seq: u64,
    ) -> Result<impl Iterator<Item = Result<v1::Event, HubError>> + use<>, HubError> {
        let start = event_key(after_seq.saturating_add(1));
        let end = [EVENT_PREFIX + 1];
        let iter = self.db.iter(
            (Bound::Included(&start[..]), Bound::Excluded(&end[..])),
            Direction::Forward,
        )?;
        Ok(iter.map(|item| {
            let (_, value) = item?;
            decode(&value)
        }))
    }

    /// Seqs of one child's events logged in `[start, end)` (µs), oldest first, starting
    /// after `after_seq` in that order (for paging).
    pub fn child_seqs(
        &self,
        child_id: &str,
        start_unix_micros: i64,
        end_unix_micros: i64,
    ) -> Result<impl Iterator<Item = Result<u64, HubError>> + use<>, HubError> {
        let start = child_key(child_id, start_unix_micros, 0);
        let end = child_key(child_id, end_unix_micros, 0);
        let iter = self.db.iter(
            (Bound::Included(&start[..]), Bound::Excluded(&end[..])),
            Direction::Forward,
        )?;
        Ok(iter.map(|item| {
            let (key, _) = item?;
            let tail: [u8; 8] = key[key.len() - 8..]
                .try_into()
                .map_err(|_| HubError::storage("malformed child index key"))?;
            Ok(u64::from_be_bytes(tail))
        }))
    }

    /// Deletes every event about `child_id` and its index, durably. Returns how many
    /// events were deleted.
    pub fn forget_child(&self, child_id: &str, keep_seq: u64) -> Result<u64, HubError> {
        let prefix = child_prefix(child_id);
        let mut end = prefix.clone();
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        let mut batch = WriteBatch::new();
        let mut deleted = 0;
        for seq in self.child_seqs(child_id, i64::MIN, i64::MAX)? {
            let seq = seq?;
            if seq != keep_seq {
                batch.delete(&event_key(seq));
                deleted += 1;
            }
        }
        batch.delete_range(&prefix, &end);
        self.db.write(batch, Durability::Sync)?;
        Ok(deleted)
    }

    /// A consistent view of the log as it is now, for a backup.
    pub fn snapshot(&self) -> eventlog::Snapshot {
        self.db.snapshot()
    }

    /// Copies every entry of `snapshot` into a new log at `dir`.
    pub fn copy_snapshot(
        &self,
        snapshot: &eventlog::Snapshot,
        dir: &Path,
    ) -> Result<u64, HubError> {
        let target = Db::open(dir, log_options())?;
        let mut batch = WriteBatch::new();
        let mut copied = 0u64;
        for item in snapshot.iter(.., Direction::Forward)? {
            let (key, value) = item?;
            batch.put(&key, &value);
            copied += 1;
            if batch.len() >= 4096 {
                target.write(std::mem::take(&mut batch), Durability::Buffered)?;
            }
        }
        target.write(batch, Durability::Sync)?;
        target.close()?;
        Ok(copied)
    }

    /// The engine's counters, for metrics and `GetStats`.
    pub fn stats(&self) -> eventlog::Stats {
        self.db.stats()
    }

    /// Flushes and closes the log.
    pub fn close(self) -> Result<(), HubError> {
        self.db.close()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, child: &str, at: i64) -> v1::Event {
        v1::Event {
            seq,
            time_unix_micros: at,
            child_id: child.into(),
            payload: Some(v1::event::Payload::ChildAdded(v1::ChildAdded {
                display_name: format!("child {seq}"),
            })),
            ..Default::default()
        }
    }

    #[test]
    fn appends_read_back_by_seq_and_by_child_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(dir.path()).unwrap();
        assert_eq!(store.last_seq().unwrap(), 0);
        store
            .append(&[
                event(1, "c-a", 100),
                event(2, "c-b", 200),
                event(3, "c-a", -5),
            ])
            .unwrap();
        assert_eq!(store.last_seq().unwrap(), 3);
        assert_eq!(store.get(2).unwrap().unwrap().child_id, "c-b");
        let after: Vec<u64> = store.after(1).unwrap().map(|e| e.unwrap().seq).collect();
        assert_eq!(after, [2, 3]);
        let seqs: Vec<u64> = store
            .child_seqs("c-a", i64::MIN, i64::MAX)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(seqs, [3, 1], "ordered by time, negative times first");
        let seqs: Vec<u64> = store
            .child_seqs("c-a", 0, 101)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(seqs, [1]);
    }

    #[test]
    fn forgetting_a_child_deletes_its_events_but_the_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(dir.path()).unwrap();
        store
            .append(&[event(1, "c-a", 1), event(2, "c-ab", 2), event(3, "c-a", 3)])
            .unwrap();
        assert_eq!(store.forget_child("c-a", 3).unwrap(), 1);
        assert!(store.get(1).unwrap().is_none());
        assert!(
            store.get(2).unwrap().is_some(),
            "a child whose id extends it stays"
        );
        assert!(store.get(3).unwrap().is_some());
        assert_eq!(
            store.child_seqs("c-a", i64::MIN, i64::MAX).unwrap().count(),
            0
        );
        assert_eq!(
            store
                .child_seqs("c-ab", i64::MIN, i64::MAX)
                .unwrap()
                .count(),
            1
        );
    }
}
