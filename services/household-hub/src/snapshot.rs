//! The start-up snapshot: the folded household, written beside the log now and then,
//! so that a start reads it and folds only the events after it instead of the whole
//! log.
//!
//! The file (`DATA/snapshot/household.json`) names the seq it was taken at and the
//! SHA-256 of that event as the log holds it. A start uses it only when the log holds
//! that very event and the file is in this hub's format; otherwise (a restored backup,
//! a forgotten child's event, a damaged or foreign file) it folds the whole log, which
//! is always right. The snapshot saves time; it is never a source of truth.
//!
//! Snapshots are taken by the writer thread between batches (so one is always a
//! household exactly at a seq) and written by a thread of their own, in order, each to
//! a temporary file that is synced and then renamed over the last.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use jiff::Timestamp;
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::HubError;
use crate::household::{Household, HouseholdState};
use crate::store::EventStore;

/// Version of the document; a file of another version is not read.
const FORMAT: u32 = 1;
/// Events logged after one snapshot before the writer takes the next.
pub const EVERY_EVENTS: u64 = 50_000;
const FILE_NAME: &str = "household.json";

#[derive(Serialize, Deserialize)]
struct Document {
    format: u32,
    /// The seq of the newest event folded in.
    seq: u64,
    /// SHA-256 of that event's protobuf encoding, as logged.
    event_sha256_hex: String,
    taken_unix_micros: i64,
    household: HouseholdState,
}

/// The snapshot file of one data directory.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    dir: PathBuf,
}

/// How the household was rebuilt at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// The seq of the snapshot it started from; `None` if it folded the whole log.
    pub snapshot_seq: Option<u64>,
    /// Events folded from the log (after the snapshot, if any).
    pub events_folded: u64,
}

impl SnapshotFile {
    /// The snapshot kept in `dir` (created when the first snapshot is written).
    pub fn new(dir: PathBuf) -> SnapshotFile {
        SnapshotFile { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Writes `household` as the snapshot, durably: a synced temporary file renamed
    /// over the previous snapshot, and the directory synced.
    pub fn write(&self, store: &EventStore, household: HouseholdState) -> Result<(), HubError> {
        let seq = household.last_seq();
        let Some(event_sha256_hex) = event_digest(store, seq)? else {
            return Err(HubError::storage(format!(
                "the log does not hold event {seq}, the snapshot's newest"
            )));
        };
        let document = Document {
            format: FORMAT,
            seq,
            event_sha256_hex,
            taken_unix_micros: Timestamp::now().as_microsecond(),
            household,
        };
        std::fs::create_dir_all(&self.dir).map_err(HubError::storage)?;
        let temporary = self.dir.join(format!("{FILE_NAME}.new"));
        let file = File::create(&temporary).map_err(HubError::storage)?;
        let mut writer = BufWriter::new(file);
        serde_json::to_writer(&mut writer, &document).map_err(HubError::storage)?;
        writer.flush().map_err(HubError::storage)?;
        let file = writer.into_inner().map_err(HubError::storage)?;
        file.sync_all().map_err(HubError::storage)?;
        std::fs::rename(&temporary, self.path()).map_err(HubError::storage)?;
        sync_dir(&self.dir)
    }

    /// The household at start: the snapshot if it matches the log, then every event
    /// after it; or, without a usable snapshot, every event of the log.
    pub fn rebuild(&self, store: &EventStore) -> Result<(Household, Rebuilt), HubError> {
        let (mut household, snapshot_seq) = match self.usable(store) {
            Some(household) => {
                let seq = household.last_seq();
                (household, Some(seq))
            }
            None => (Household::default(), None),
        };
        let mut events_folded = 0;
        for event in store.after(household.last_seq())? {
            household.apply(&event?);
            events_folded += 1;
        }
        Ok((
            household,
            Rebuilt {
                snapshot_seq,
                events_folded,
            },
        ))
    }

    /// The snapshot's household if there is one and it fits the log; says why not in
    /// the log otherwise.
    fn usable(&self, store: &EventStore) -> Option<Household> {
        let path = self.path();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "snapshot unreadable; folding the whole log");
                return None;
            }
        };
        let document: Document = match serde_json::from_reader(BufReader::new(file)) {
            Ok(document) => document,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "snapshot damaged or of another version; folding the whole log");
                return None;
            }
        };
        if document.format != FORMAT || document.household.last_seq() != document.seq {
            tracing::warn!(
                format = document.format,
                "snapshot of another format; folding the whole log"
            );
            return None;
        }
        match event_digest(store, document.seq) {
            Ok(Some(digest)) if digest == document.event_sha256_hex => {
                Some(Household::from(document.household))
            }
            Ok(_) => {
                tracing::info!(
                    seq = document.seq,
                    "the log does not hold the snapshot's newest event as it was; folding the whole log"
                );
                None
            }
            Err(err) => {
                tracing::warn!(error = %err, "checking the snapshot against the log failed; folding the whole log");
                None
            }
        }
    }
}

/// SHA-256 of the event at `seq` as logged, or `None` if the log does not hold it.
/// Seq 0 (an empty household) has the digest of nothing.
fn event_digest(store: &EventStore, seq: u64) -> Result<Option<String>, HubError> {
    if seq == 0 {
        return Ok(Some(crate::registry::hex(&Sha256::digest([]))));
    }
    let Some(event) = store.get(seq)? else {
        return Ok(None);
    };
    Ok(Some(crate::registry::hex(&Sha256::digest(
        event.encode_to_vec(),
    ))))
}

fn sync_dir(dir: &Path) -> Result<(), HubError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(HubError::storage)
}

/// A snapshot to write, and whom to tell once it is on disk.
struct Request {
    household: HouseholdState,
    done: SyncSender<()>,
}

/// The writer thread's side of snapshotting: decides when to take one and hands it to
/// the snapshot thread.
pub struct SnapshotTaker {
    file: SnapshotFile,
    queue: Option<SyncSender<Request>>,
    thread: Option<JoinHandle<()>>,
    next_at: u64,
}

/// A snapshot handed to the snapshot thread; [`Written::wait`] returns once it is on
/// disk.
pub struct Written(Receiver<()>);

impl Written {
    /// Waits until the snapshot is on disk (or could not be written: the thread logs
    /// why).
    pub fn wait(self) {
        let _ = self.0.recv();
    }
}

impl SnapshotTaker {
    /// Starts the snapshot thread; the first periodic snapshot follows
    /// [`EVERY_EVENTS`] events after `last_seq`.
    pub fn start(
        file: SnapshotFile,
        store: Arc<EventStore>,
        last_seq: u64,
    ) -> std::io::Result<SnapshotTaker> {
        // One waiting snapshot at most: a periodic one finding the thread busy is
        // skipped, and a later batch offers a newer one.
        let (queue, requests) = sync_channel(1);
        let thread_file = file.clone();
        let thread = std::thread::Builder::new()
            .name("hub-snapshot".into())
            .spawn(move || write_requests(&thread_file, &store, requests))?;
        Ok(SnapshotTaker {
            file,
            queue: Some(queue),
            thread: Some(thread),
            next_at: last_seq + EVERY_EVENTS,
        })
    }

    /// The snapshot file, for rebuilding after a failed write.
    pub fn file(&self) -> &SnapshotFile {
        &self.file
    }

    /// After a durable batch: takes a snapshot of `household` if enough events were
    /// logged since the last, or if `now`. A periodic one is not waited for and is
    /// skipped while the thread is busy; one taken `now` is queued behind any other
    /// and returned to wait on (after a child's history is forgotten, so that no
    /// snapshot on disk still holds it; and at shutdown).
    pub fn after_batch(&mut self, household: &Household, now: bool) -> Option<Written> {
        if !now && household.last_seq() < self.next_at {
            return None;
        }
        let queue = self.queue.as_ref()?;
        let (done, written) = sync_channel(1);
        let request = Request {
            household: HouseholdState::from(household),
            done,
        };
        let sent = if now {
            queue.send(request).map_err(|_| ())
        } else {
            match queue.try_send(request) {
                Err(TrySendError::Full(_)) => return None,
                other => other.map_err(|_| ()),
            }
        };
        if sent.is_err() {
            tracing::error!("the snapshot thread has stopped; no more snapshots");
            self.queue = None;
            return None;
        }
        self.next_at = household.last_seq() + EVERY_EVENTS;
        Some(Written(written))
    }

    /// Stops the snapshot thread once it has written what it was given.
    pub fn finish(mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the snapshot thread panicked");
        }
    }
}

fn write_requests(file: &SnapshotFile, store: &EventStore, requests: Receiver<Request>) {
    for request in requests {
        let seq = request.household.last_seq();
        let started = Instant::now();
        match file.write(store, request.household) {
            Ok(()) => tracing::info!(
                seq,
                seconds = started.elapsed().as_secs_f64(),
                "snapshot written"
            ),
            Err(err) => tracing::error!(seq, error = %err, "snapshot not written"),
        }
        // Nobody may be waiting (a periodic snapshot).
        let _ = request.done.send(());
    }
}

#[cfg(test)]
mod tests {
    use household_proto::v1;
    use household_proto::v1::event::Payload;

    use super::*;

    const HOUR: i64 = 3_600_000_000;

    fn event(seq: u64, child: &str, payload: Payload) -> v1::Event {
        v1::Event {
            seq,
            time_unix_micros: Timestamp::now().as_microsecond() - HOUR + seq as i64,
            actor: Some(v1::Actor {
                kind: Some(v1::actor::Kind::GuardianId("g-anna".into())),
                credential_id: "k-1".into(),
            }),
            child_id: child.into(),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn added(seq: u64, child: &str) -> v1::Event {
        event(
            seq,
            child,
            Payload::ChildAdded(v1::ChildAdded {
                display_name: child.into(),
            }),
        )
    }

    fn granted(seq: u64, child: &str, minutes: u32) -> v1::Event {
        event(
            seq,
            child,
            Payload::TimeGranted(v1::TimeGranted {
                minutes,
                ..Default::default()
            }),
        )
    }

    /// A log in a temporary directory, and the household its events fold into.
    struct Fixture {
        dir: tempfile::TempDir,
        store: EventStore,
        household: Household,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = EventStore::open(&dir.path().join("log")).unwrap();
            Fixture {
                dir,
                store,
                household: Household::default(),
            }
        }

        fn log(&mut self, events: &[v1::Event]) {
            self.store.append(events).unwrap();
            for event in events {
                self.household.apply(event);
            }
        }

        fn file(&self) -> SnapshotFile {
            SnapshotFile::new(self.dir.path().join("snapshot"))
        }

        fn snapshot(&self) {
            self.file()
                .write(&self.store, HouseholdState::from(&self.household))
                .unwrap();
        }

        fn minutes_granted(household: &Household, child: &str) -> i64 {
            let status = household.status(child, Timestamp::now()).unwrap();
            status.grants.iter().map(|g| g.seconds).sum::<i64>() / 60
        }
    }

    #[test]
    fn a_start_reads_the_snapshot_and_folds_only_the_events_after_it() {
        let mut f = Fixture::new();
        f.log(&[added(1, "c-a"), granted(2, "c-a", 10), added(3, "c-b")]);
        f.snapshot();
        f.log(&[granted(4, "c-a", 5), granted(5, "c-b", 7)]);

        let (rebuilt, how) = f.file().rebuild(&f.store).unwrap();
        assert_eq!(
            how,
            Rebuilt {
                snapshot_seq: Some(3),
                events_folded: 2
            }
        );
        assert_eq!(rebuilt.last_seq(), 5);
        let now = Timestamp::now();
        for child in ["c-a", "c-b"] {
            assert_eq!(rebuilt.status(child, now), f.household.status(child, now));
        }
        assert_eq!(Fixture::minutes_granted(&rebuilt, "c-a"), 15);
    }

    #[test]
    fn a_snapshot_that_does_not_match_the_log_is_not_used() {
        let mut f = Fixture::new();
        f.log(&[added(1, "c-a"), granted(2, "c-a", 10)]);
        f.snapshot();
        // The log is replaced by another history (a restored backup): the same seqs,
        // other events.
        let other = EventStore::open(&f.dir.path().join("other")).unwrap();
        other
            .append(&[added(1, "c-a"), granted(2, "c-a", 30), granted(3, "c-a", 1)])
            .unwrap();
        let (rebuilt, how) = f.file().rebuild(&other).unwrap();
        assert_eq!(how.snapshot_seq, None);
        assert_eq!(how.events_folded, 3);
        assert_eq!(Fixture::minutes_granted(&rebuilt, "c-a"), 31);

        // A log that ends before the snapshot's seq.
        let short = EventStore::open(&f.dir.path().join("short")).unwrap();
        short.append(&[added(1, "c-a")]).unwrap();
        let (rebuilt, how) = f.file().rebuild(&short).unwrap();
        assert_eq!((how.snapshot_seq, rebuilt.last_seq()), (None, 1));
    }

    #[test]
    fn a_damaged_snapshot_means_folding_the_whole_log() {
        let mut f = Fixture::new();
        f.log(&[added(1, "c-a"), granted(2, "c-a", 10)]);
        f.snapshot();
        let path = f.dir.path().join("snapshot").join(FILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let (rebuilt, how) = f.file().rebuild(&f.store).unwrap();
        assert_eq!((how.snapshot_seq, how.events_folded), (None, 2));
        assert_eq!(Fixture::minutes_granted(&rebuilt, "c-a"), 10);

        std::fs::write(&path, text.replace("\"format\":1", "\"format\":99")).unwrap();
        let (_, how) = f.file().rebuild(&f.store).unwrap();
        assert_eq!(how.snapshot_seq, None);
    }

    #[test]
    fn a_snapshot_after_a_child_is_forgotten_holds_nothing_of_the_child() {
        let mut f = Fixture::new();
        f.log(&[added(1, "c-a"), granted(2, "c-a", 10), added(3, "c-b")]);
        f.log(&[event(
            4,
            "c-a",
            Payload::ChildRemoved(v1::ChildRemoved {
                history_forgotten: true,
            }),
        )]);
        f.snapshot();
        let (rebuilt, how) = f.file().rebuild(&f.store).unwrap();
        assert_eq!(how.snapshot_seq, Some(4));
        assert!(rebuilt.child_ever("c-a").is_none());
        assert!(rebuilt.child("c-b").is_some());
    }
}
