//! The database: open and recovery, the write path with group commit, reads, and the
//! background thread that flushes memtables and compacts tables.
//!
//! Lock order: `wal` before `state`. The write leader holds `wal` while it frees room
//! (maybe freezing the memtable), writes the WAL record and fills the memtable, so a
//! memtable is never frozen while a write into it is still under way. `state` is only
//! ever held briefly; the manifest is synced without it.

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::batch::{self, Op, WriteBatch};
use crate::cache::{BlockCache, TableCache};
use crate::compaction::{self, Input, Job, MergeRules, OutputPlan};
use crate::error::{Error, Result};
use crate::files::{self, DirLock, FileKind};
use crate::fs::FileSystem;
use crate::iter::{DbIter, Direction, MemIter, MergingIter};
use crate::key::{self, Kind, RangeTombstone};
use crate::limits::MAX_BATCH_BYTES;
use crate::manifest::{self, ManifestWriter, VersionEdit};
use crate::memtable::{Lookup, MemTable};
use crate::options::{Durability, MAX_FROZEN_MEMTABLES, Options};
use crate::record::{RECORD_HEADER_LEN, RecordWriter};
use crate::recovery;
use crate::sstable::TableBuilder;
use crate::sstable::filter::hash64;
use crate::stats::{Counters, RecoveryReport, Stats};
use crate::tombstones::RangeTombstones;
use crate::version::{NUM_LEVELS, ObsoleteFiles, TableMeta, Version};

/// The memtables a point read goes through: the active one, then the frozen ones newest
/// first (`max_frozen_memtables` is at most 8).
type PointReadMems = [Option<Arc<MemTable>>; 1 + MAX_FROZEN_MEMTABLES];

/// Largest group of batches written as one WAL record.
const MAX_GROUP_BYTES: usize = 4 << 20;

/// A handle to an open database. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Db {
    handle: Arc<Handle>,
}

struct Handle {
    core: Arc<Core>,
    bg: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.core.stop_background(&self.bg);
    }
}

struct Writer {
    batch: WriteBatch,
    sync: bool,
    result: Mutex<Option<Result<()>>>,
}

struct WriteQueue {
    queue: VecDeque<Arc<Writer>>,
}

struct ManualRequest {
    id: u64,
    start: Option<Vec<u8>>,
    end: Option<Vec<u8>>,
}

struct State {
    mem: Arc<MemTable>,
    /// Frozen memtables waiting for their flush, oldest first.
    imms: VecDeque<Arc<MemTable>>,
    version: Arc<Version>,
    next_file_number: u64,
    bg_error: Option<String>,
    shutting_down: bool,
    closed: bool,
    manual: VecDeque<ManualRequest>,
    manual_next_id: u64,
    manual_done_id: u64,
    compact_pointer: Vec<Vec<u8>>,
    /// Range tombstones (by sequence) whose range was compacted once already, so a
    /// tombstone that cannot go yet is not compacted over and over.
    cleared_tombstones: std::collections::BTreeSet<u64>,
}

pub(crate) struct Core {
    dir: PathBuf,
    opts: Options,
    /// `opts.file_system`, at hand.
    fs: Arc<dyn FileSystem>,
    read_only: bool,
    table_cache: Arc<TableCache>,
    block_cache: Option<Arc<BlockCache>>,
    state: Mutex<State>,
    /// Wakes the background thread.
    bg_cv: Condvar,
    /// Wakes anyone waiting for background progress (stalled writers, flush, compact).
    progress_cv: Condvar,
    visible_seq: AtomicU64,
    writers: Mutex<WriteQueue>,
    writers_cv: Condvar,
    /// The WAL; `None` when read-only. Held by the write leader for the whole write.
    wal: Mutex<Option<RecordWriter>>,
    /// File number of the WAL in `wal`. Changed only with `wal` held.
    wal_number: AtomicU64,
    /// True while a WAL was created since the directory was last synced: its name is not
    /// durable, and neither is anything synced into it. The next `Sync` write syncs the
    /// directory before it is acknowledged.
    wal_name_pending: AtomicBool,
    /// Earlier WAL segments (by file number) with writes not yet synced. The next `Sync`
    /// write syncs them first, so a surviving `Sync` write never follows a lost
    /// `Buffered` one. The flush of their memtable closes them: its table makes them
    /// redundant.
    unsynced_wals: Mutex<Vec<(u64, RecordWriter)>>,
    /// WAL files replayed at open (by number) that may hold data a killed process left
    /// in the page cache only; the next `Sync` write syncs them first, like
    /// `unsynced_wals`.
    replayed_unsynced: Mutex<Vec<(u64, PathBuf)>>,
    /// Tables no version lists any more; the background thread removes their files.
    obsolete: Arc<ObsoleteFiles>,
    manifest: Mutex<Option<ManifestWriter>>,
    snapshots: Mutex<BTreeMap<u64, usize>>,
    counters: Counters,
    recovery: RecoveryReport,
    _lock: DirLock,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bound_to_owned(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Db {
    /// Opens (or creates) the database in `dir`, replaying any WAL left by a crash.
    ///
    /// Opening reads the manifest and the WALs that are not yet in tables; tables are
    /// opened lazily on first use, so reopening a large database stays fast.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Db> {
        Self::open_inner(dir.as_ref(), options, false)
    }

    /// Opens an existing database for reading only, while another process may hold it
    /// open for writing is *not* supported; the directory lock is taken shared. Nothing on
    /// disk is changed: a damaged WAL tail is skipped but not truncated.
    pub fn open_read_only(dir: impl AsRef<Path>, options: Options) -> Result<Db> {
        Self::open_inner(dir.as_ref(), options, true)
    }

    fn open_inner(dir: &Path, options: Options, read_only: bool) -> Result<Db> {
        options.validate()?;
        let fs = Arc::clone(&options.file_system);
        if !fs.exists(dir) {
            if read_only || !options.create_if_missing {
                return Err(Error::io(
                    dir,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            }
            fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let dir_lock = DirLock::acquire(fs.as_ref(), dir, !read_only)?;
        let obsolete = Arc::new(ObsoleteFiles::default());
        let removals = (!read_only).then_some(&obsolete);
        let recovered = manifest::recover(fs.as_ref(), dir, removals)?;
        let (version, mut log_number, mut next_file_number, mut last_seq) = match recovered {
            Some(r) => (r.version, r.log_number, r.next_file_number, r.last_seq),
            None if read_only => {
                return Err(Error::io(
                    dir,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no CURRENT file"),
                ));
            }
            None => (Version::empty(), 0, 1, 0),
        };
        let listing = files::list(fs.as_ref(), dir)?;
        let mut wals: Vec<u64> = Vec::new();
        for (kind, _) in &listing {
            match *kind {
                FileKind::Wal(n) => {
                    if n >= log_number {
                        wals.push(n);
                    }
                    next_file_number = next_file_number.max(n + 1);
                }
                FileKind::Table(n) | FileKind::Manifest(n) => {
                    next_file_number = next_file_number.max(n + 1)
                }
                FileKind::Other => {}
            }
        }
        wals.sort_unstable();

        // Replay every WAL not yet covered by a table into one memtable.
        let first_wal = wals.first().copied().unwrap_or(next_file_number);
        let mem = MemTable::new(first_wal, options.memtable_bytes);
        let mut report = RecoveryReport::default();
        let replayed = recovery::replay_wals(
            fs.as_ref(),
            dir,
            &wals,
            &mem,
            options.recovery_mode,
            read_only,
            &mut report,
        )?;
        last_seq = last_seq.max(replayed.max_seq);

        let block_cache = (options.block_cache_bytes > 0)
            .then(|| Arc::new(BlockCache::new(options.block_cache_bytes)));
        let table_cache = Arc::new(TableCache::new(
            Arc::clone(&fs),
            dir.to_path_buf(),
            options.max_open_files,
            block_cache.clone(),
        ));

        let mut wal = None;
        let mut manifest_writer = None;
        let wal_number = next_file_number;
        if !read_only {
            let manifest_number = next_file_number + 1;
            next_file_number += 2;
            if wals.is_empty() {
                log_number = wal_number;
            } else {
                log_number = first_wal;
            }
            let snapshot = VersionEdit::snapshot(&version, log_number, next_file_number, last_seq);
            // Creating the manifest syncs the directory, which also makes durable the
            // WAL files recovery moved aside.
            manifest_writer = Some(ManifestWriter::create(
                fs.as_ref(),
                dir,
                manifest_number,
                &snapshot,
                log_number,
            )?);
            wal = Some(RecordWriter::create(
                fs.as_ref(),
                &files::wal_path(dir, wal_number),
            )?);
            files::sync_dir(fs.as_ref(), dir)?;
            remove_orphans(fs.as_ref(), &listing, &version, log_number, manifest_number);
        }

        let core = Arc::new(Core {
            dir: dir.to_path_buf(),
            fs,
            read_only,
            table_cache,
            block_cache,
            state: Mutex::new(State {
                mem: Arc::new(mem),
                imms: VecDeque::new(),
                version: Arc::new(version),
                next_file_number,
                bg_error: None,
                shutting_down: false,
                closed: false,
                manual: VecDeque::new(),
                manual_next_id: 1,
                manual_done_id: 0,
                compact_pointer: vec![Vec::new(); NUM_LEVELS],
                cleared_tombstones: std::collections::BTreeSet::new(),
            }),
            bg_cv: Condvar::new(),
            progress_cv: Condvar::new(),
            visible_seq: AtomicU64::new(last_seq),
            writers: Mutex::new(WriteQueue {
                queue: VecDeque::new(),
            }),
            writers_cv: Condvar::new(),
            wal: Mutex::new(wal),
            wal_number: AtomicU64::new(wal_number),
            wal_name_pending: AtomicBool::new(false),
            unsynced_wals: Mutex::new(Vec::new()),
            replayed_unsynced: Mutex::new(replayed.unsynced),
            obsolete,
            manifest: Mutex::new(manifest_writer),
            snapshots: Mutex::new(BTreeMap::new()),
            counters: Counters::default(),
            recovery: report,
            opts: options,
            _lock: dir_lock,
        });
        let bg = if read_only {
            None
        } else {
            let c = Arc::clone(&core);
            let h = std::thread::Builder::new()
                .name("eventlog-bg".to_string())
                .spawn(move || c.background_loop())
                .map_err(|e| Error::io(dir, e))?;
            Some(h)
        };
        Ok(Db {
            handle: Arc::new(Handle {
                core,
                bg: Mutex::new(bg),
            }),
        })
    }

    fn core(&self) -> &Arc<Core> {
        &self.handle.core
    }

    /// Applies `batch` atomically: after a crash either all of it is there or none.
    pub fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        self.core().write(batch, durability)
    }

    /// Sets one key.
    pub fn put(&self, key: &[u8], value: &[u8], durability: Durability) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put(key, value);
        self.write(b, durability)
    }

    /// Deletes one key.
    pub fn delete(&self, key: &[u8], durability: Durability) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete(key);
        self.write(b, durability)
    }

    /// Deletes every key in `[start, end)`.
    pub fn delete_range(&self, start: &[u8], end: &[u8], durability: Durability) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete_range(start, end);
        self.write(b, durability)
    }

    /// The current value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.core().get_at(key, None)
    }

    /// A consistent, frozen view: reads through it see exactly the writes acknowledged
    /// before it was taken. Old versions it can see are kept until it is dropped.
    pub fn snapshot(&self) -> Snapshot {
        let core = Arc::clone(self.core());
        let mut snaps = lock(&core.snapshots);
        let seq = core.visible_seq.load(Ordering::Acquire);
        *snaps.entry(seq).or_insert(0) += 1;
        drop(snaps);
        Snapshot { core, seq }
    }

    /// Iterates `range` in `direction` over a snapshot taken now.
    ///
    /// `range` is any `RangeBounds<[u8]>`, e.g. `..`, or
    /// `(Bound::Included(&b"a"[..]), Bound::Excluded(&b"b"[..]))`.
    pub fn iter<'a>(
        &self,
        range: impl RangeBounds<[u8]> + 'a,
        direction: Direction,
    ) -> Result<DbIter> {
        self.core().iter_at(range, direction, None)
    }

    /// Writes the memtable to a table and waits until it is recorded in the manifest.
    pub fn flush(&self) -> Result<()> {
        self.core().flush()
    }

    /// Flushes, then merges every table overlapping `[start, end]` (`None` = unbounded)
    /// down to the bottom level, passing each entry through the compaction filter and
    /// dropping deleted data. Returns when done.
    pub fn compact_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        self.core().compact_range(start, end)
    }

    /// Counters and shape of the database.
    pub fn stats(&self) -> Stats {
        self.core().stats()
    }

    /// What recovery found at open: WAL records replayed and damage skipped.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.core().recovery.clone()
    }

    /// Checks every checksum of every live table; returns the number of entries checked.
    pub fn verify(&self) -> Result<u64> {
        let version = Arc::clone(&lock(&self.core().state).version);
        if let Err(reason) = version.check_invariants() {
            return Err(Error::corruption(&self.core().dir, 0, reason));
        }
        let mut n = 0;
        for t in version.levels.iter().flatten() {
            let table = self.core().table_cache.get(t.number, t.info.file_size)?;
            let entries = table.verify()?;
            if entries != t.info.entries {
                return Err(Error::corruption(
                    table.path(),
                    0,
                    format!(
                        "table holds {entries} entries, the manifest recorded {}",
                        t.info.entries
                    ),
                ));
            }
            n += entries;
        }
        Ok(n)
    }

    /// Flushes the memtable, finishes background work and closes the database. Further
    /// calls through any clone of this handle fail with [`Error::Closed`].
    pub fn close(self) -> Result<()> {
        let core = Arc::clone(self.core());
        let flushed = if core.read_only { Ok(()) } else { core.flush() };
        {
            let mut st = lock(&core.state);
            st.closed = true;
        }
        core.stop_background(&self.handle.bg);
        if let Some(w) = lock(&core.wal).as_mut() {
            w.sync()?;
        }
        flushed
    }
}

/// A frozen view of the database at one sequence number.
pub struct Snapshot {
    core: Arc<Core>,
    seq: u64,
}

impl Snapshot {
    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.core.get_at(key, Some(self.seq))
    }

    /// Iterates `range` as of the snapshot.
    pub fn iter<'a>(
        &self,
        range: impl RangeBounds<[u8]> + 'a,
        direction: Direction,
    ) -> Result<DbIter> {
        self.core.iter_at(range, direction, Some(self.seq))
    }

    /// The sequence number of the last write the snapshot sees.
    pub fn sequence(&self) -> u64 {
        self.seq
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let mut snaps = lock(&self.core.snapshots);
        if let Some(c) = snaps.get_mut(&self.seq) {
            *c -= 1;
            if *c == 0 {
                snaps.remove(&self.seq);
            }
        }
    }
}

fn remove_orphans(
    fs: &dyn FileSystem,
    listing: &[(FileKind, PathBuf)],
    version: &Version,
    log_number: u64,
    manifest: u64,
) {
    let live = version.live_numbers();
    for (kind, path) in listing {
        let remove = match *kind {
            FileKind::Wal(n) => n < log_number,
            FileKind::Table(n) => !live.contains(&n),
            FileKind::Manifest(n) => n != manifest,
            FileKind::Other => path.file_name().is_some_and(|n| n == "CURRENT.tmp"),
        };
        if remove {
            files::remove_quietly(fs, path, "obsolete file");
        }
    }
}

enum BgJob {
    Flush(Arc<MemTable>, u64),
    Manual(u64, Option<Vec<u8>>, Option<Vec<u8>>),
    Compact,
    /// Compacts the range of a range tombstone so the data under it, and then the
    /// tombstone itself, can go.
    ClearRange(Vec<u8>, Vec<u8>),
}

/// Longest time the file of a table no reader needs stays on disk while the engine is
/// otherwise idle.
const OBSOLETE_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

impl Core {
    fn check_writable(&self, st: &State) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        if st.closed {
            return Err(Error::Closed);
        }
        if let Some(e) = &st.bg_error {
            return Err(Error::Poisoned(e.clone()));
        }
        Ok(())
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        if batch.is_empty() {
            return Ok(());
        }
        if batch.ops.len() > MAX_BATCH_BYTES {
            return Err(Error::BatchTooLarge {
                bytes: batch.ops.len(),
                limit: MAX_BATCH_BYTES,
            });
        }
        let me = Arc::new(Writer {
            batch,
            sync: durability == Durability::Sync,
            result: Mutex::new(None),
        });
        let mut q = lock(&self.writers);
        q.queue.push_back(Arc::clone(&me));
        loop {
            if let Some(r) = lock(&me.result).take() {
                return r;
            }
            if q.queue.front().is_some_and(|f| Arc::ptr_eq(f, &me)) {
                break;
            }
            q = self.writers_cv.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        drop(q);
        self.lead_group(&me)
    }

    /// Runs by the writer at the head of the queue: commits itself and everyone queued
    /// behind it (up to a size limit) with one WAL write and at most one sync.
    fn lead_group(&self, me: &Arc<Writer>) -> Result<()> {
        let mut wal_guard = lock(&self.wal);
        let room = self.make_room(&mut wal_guard);
        let q = lock(&self.writers);
        let mut group: Vec<Arc<Writer>> = Vec::new();
        let mut bytes = 0;
        for w in q.queue.iter() {
            if !group.is_empty() && bytes + w.batch.ops.len() > MAX_GROUP_BYTES {
                break;
            }
            bytes += w.batch.ops.len();
            group.push(Arc::clone(w));
        }
        drop(q);
        let outcome = room.and_then(|mem| self.commit_group(&group, &mem, &mut wal_guard));
        drop(wal_guard);
        let mut q = lock(&self.writers);
        for w in &group {
            q.queue.pop_front();
            if !Arc::ptr_eq(w, me) {
                let r = match &outcome {
                    Ok(()) => Ok(()),
                    Err(e) => Err(Error::Poisoned(e.to_string())),
                };
                *lock(&w.result) = Some(r);
            }
        }
        drop(q);
        self.writers_cv.notify_all();
        outcome
    }

    fn commit_group(
        &self,
        group: &[Arc<Writer>],
        mem: &Arc<MemTable>,
        wal: &mut Option<RecordWriter>,
    ) -> Result<()> {
        let Some(wal) = wal.as_mut() else {
            return Err(Error::ReadOnly);
        };
        let count: usize = group.iter().map(|w| w.batch.count).sum();
        let first_seq = self.visible_seq.load(Ordering::Acquire) + 1;
        let ops_len: usize = group.iter().map(|w| w.batch.ops.len()).sum();
        let mut framed = Vec::with_capacity(RECORD_HEADER_LEN + batch::HEADER_LEN + ops_len);
        framed.resize(RECORD_HEADER_LEN, 0);
        batch::encode_header(&mut framed, first_seq, count as u32);
        for w in group {
            framed.extend_from_slice(&w.batch.ops);
        }
        let sync = group.iter().any(|w| w.sync);
        let written = wal.add_in_place(&mut framed).and_then(|n| {
            if sync {
                let mut replayed = lock(&self.replayed_unsynced);
                while let Some((_, path)) = replayed.last() {
                    self.fs.sync_file(path).map_err(|e| Error::io(path, e))?;
                    replayed.pop();
                }
                drop(replayed);
                for (_, mut old) in lock(&self.unsynced_wals).drain(..) {
                    old.sync()?;
                }
                wal.sync()?;
                // A synced record in a file whose name is not durable is not durable.
                if self.wal_name_pending.load(Ordering::Acquire) {
                    files::sync_dir(self.fs.as_ref(), &self.dir)?;
                    self.wal_name_pending.store(false, Ordering::Release);
                }
            }
            Ok(n)
        });
        let written = match written {
            Ok(n) => n,
            Err(e) => {
                lock(&self.state).bg_error = Some(format!("WAL write failed: {e}"));
                return Err(e);
            }
        };
        let mut seq = first_seq;
        for w in group {
            let ops: Vec<Op<'_>> = w.batch.iter().filter_map(|r| r.ok()).collect();
            mem.apply(seq, &ops);
            seq += w.batch.count as u64;
        }
        self.visible_seq
            .store(first_seq + count as u64 - 1, Ordering::Release);
        let c = &self.counters;
        c.wal_bytes.fetch_add(written, Ordering::Relaxed);
        c.user_bytes.fetch_add(
            group.iter().map(|w| w.batch.user_bytes).sum(),
            Ordering::Relaxed,
        );
        c.write_groups.fetch_add(1, Ordering::Relaxed);
        c.batches.fetch_add(group.len() as u64, Ordering::Relaxed);
        if sync {
            c.wal_syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Makes sure the active memtable has room, freezing it or stalling as the
    /// thresholds say. Returns the memtable to write into.
    fn make_room(&self, wal: &mut Option<RecordWriter>) -> Result<Arc<MemTable>> {
        let mut st = lock(&self.state);
        let mut delayed = false;
        let mut stall_started: Option<Instant> = None;
        let result = loop {
            if let Err(e) = self.check_writable(&st) {
                break Err(e);
            }
            let l0 = st.version.levels[0].len();
            if !delayed && l0 >= self.opts.l0_slowdown_trigger {
                drop(st);
                let t = Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                self.counters.stall_count.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .stall_micros
                    .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                delayed = true;
                st = lock(&self.state);
                continue;
            }
            let full = st.mem.approx_bytes() >= self.opts.memtable_bytes;
            if l0 >= self.opts.l0_stop_trigger
                || (full && st.imms.len() >= self.opts.max_frozen_memtables)
            {
                if stall_started.is_none() {
                    stall_started = Some(Instant::now());
                    self.counters.stall_count.fetch_add(1, Ordering::Relaxed);
                }
                self.bg_cv.notify_one();
                st = self.progress_cv.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            if full {
                if let Err(e) = self.freeze(&mut st, wal) {
                    break Err(e);
                }
                continue;
            }
            break Ok(Arc::clone(&st.mem));
        };
        if let Some(t) = stall_started {
            self.counters
                .stall_micros
                .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        result
    }

    /// Turns the active memtable into a frozen one and starts a new WAL for its successor.
    /// Caller holds `wal` and `state`.
    fn freeze(&self, st: &mut State, wal: &mut Option<RecordWriter>) -> Result<()> {
        let number = st.next_file_number;
        let new_wal = RecordWriter::create(self.fs.as_ref(), &files::wal_path(&self.dir, number))?;
        st.next_file_number += 1;
        // The new name is made durable by the next Sync write (or flush), not here:
        // Buffered writers need not wait for it.
        self.wal_name_pending.store(true, Ordering::Release);
        let old_number = self.wal_number.swap(number, Ordering::AcqRel);
        if let Some(old) = wal.replace(new_wal)
            && old.is_dirty()
        {
            // Not synced here: that would stall this writer for the whole segment. The
            // next Sync write syncs it first; the flush makes it redundant and closes it.
            lock(&self.unsynced_wals).push((old_number, old));
        }
        let old = std::mem::replace(
            &mut st.mem,
            Arc::new(MemTable::new(number, self.opts.memtable_bytes)),
        );
        st.imms.push_back(old);
        self.bg_cv.notify_one();
        Ok(())
    }

    /// The memtables (newest first) and the version a read goes through, and the
    /// sequence number it reads at: `snapshot`, or the latest visible one, taken under
    /// the same lock as the version. Taken apart, a compaction could install a version
    /// between the two that already dropped what that sequence number still sees.
    fn read_view(&self, snapshot: Option<u64>) -> (Vec<Arc<MemTable>>, Arc<Version>, u64) {
        let st = lock(&self.state);
        let seq = snapshot.unwrap_or_else(|| self.visible_seq.load(Ordering::Acquire));
        let mut mems = Vec::with_capacity(1 + st.imms.len());
        mems.push(Arc::clone(&st.mem));
        mems.extend(st.imms.iter().rev().cloned());
        (mems, Arc::clone(&st.version), seq)
    }

    /// Like `read_view`, for a point read: the memtables go into an array on the stack
    /// (there are at most `1 + max_frozen_memtables` of them), sparing an allocation per
    /// get.
    fn point_read_view(&self, snapshot: Option<u64>) -> (PointReadMems, Arc<Version>, u64) {
        let st = lock(&self.state);
        let seq = snapshot.unwrap_or_else(|| self.visible_seq.load(Ordering::Acquire));
        let mut mems = PointReadMems::default();
        mems[0] = Some(Arc::clone(&st.mem));
        for (slot, m) in mems[1..].iter_mut().zip(st.imms.iter().rev()) {
            *slot = Some(Arc::clone(m));
        }
        (mems, Arc::clone(&st.version), seq)
    }

    fn get_at(&self, user_key: &[u8], snapshot: Option<u64>) -> Result<Option<Vec<u8>>> {
        let (mems, version, seq) = self.point_read_view(snapshot);
        let mems = mems.iter().flatten();
        let probe = key::PointProbe::new(user_key, seq);
        let hash = hash64(user_key);
        let mut found: Option<Lookup> = None;
        for m in mems.clone() {
            if let Some(l) = m.get(user_key, &probe, hash) {
                found = Some(l);
                break;
            }
        }
        if found.is_none() {
            for t in &version.levels[0] {
                if t.contains_key(user_key) && t.info.smallest_seq <= seq {
                    let table = self.table_cache.get(t.number, t.info.file_size)?;
                    if let Some(l) = table.get(user_key, &probe, hash)? {
                        found = Some(l);
                        break;
                    }
                }
            }
            if found.is_none() {
                for level in 1..NUM_LEVELS {
                    if let Some(t) = version.find_in_level(level, user_key) {
                        let table = self.table_cache.get(t.number, t.info.file_size)?;
                        if let Some(l) = table.get(user_key, &probe, hash)? {
                            found = Some(l);
                            break;
                        }
                    }
                }
            }
        }
        let Some(Lookup::Value(entry_seq, value)) = found else {
            return Ok(None);
        };
        if version.range_tombstones.covers(user_key, entry_seq, seq)
            || mems
                .clone()
                .any(|m| m.range_tombstone_covers(user_key, entry_seq, seq))
        {
            return Ok(None);
        }
        Ok(Some(value))
    }

    fn iter_at<'a>(
        &self,
        range: impl RangeBounds<[u8]> + 'a,
        direction: Direction,
        snapshot: Option<u64>,
    ) -> Result<DbIter> {
        let lower = bound_to_owned(range.start_bound());
        let upper = bound_to_owned(range.end_bound());
        let (mems, version, seq) = self.read_view(snapshot);
        let mut mem_tombstones: Vec<RangeTombstone> = Vec::new();
        for m in &mems {
            m.range_tombstones_into(seq, &mut mem_tombstones);
        }
        let tombstones = if mem_tombstones.is_empty() {
            Arc::clone(&version.range_tombstones)
        } else {
            mem_tombstones.extend(version.range_tombstones.iter().cloned());
            Arc::new(RangeTombstones::new(mem_tombstones))
        };
        let inner = crate::iter::merged(
            &mems,
            &version,
            &self.table_cache,
            direction == Direction::Reverse,
            false,
        );
        DbIter::new(inner, version, seq, tombstones, lower, upper, direction)
    }

    fn flush(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let target = {
            let mut wal = lock(&self.wal);
            let mut st = lock(&self.state);
            self.check_writable(&st)?;
            if !st.mem.is_empty() {
                self.freeze(&mut st, &mut wal)?;
            }
            st.imms.back().cloned()
        };
        let Some(target) = target else { return Ok(()) };
        let mut st = lock(&self.state);
        loop {
            if let Some(e) = &st.bg_error {
                return Err(Error::Poisoned(e.clone()));
            }
            if !st.imms.iter().any(|m| Arc::ptr_eq(m, &target)) {
                return Ok(());
            }
            if st.shutting_down {
                return Err(Error::Closed);
            }
            st = self.progress_cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn compact_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.flush()?;
        let mut st = lock(&self.state);
        self.check_writable(&st)?;
        let id = st.manual_next_id;
        st.manual_next_id += 1;
        st.manual.push_back(ManualRequest {
            id,
            start: start.map(<[u8]>::to_vec),
            end: end.map(<[u8]>::to_vec),
        });
        self.bg_cv.notify_one();
        loop {
            if let Some(e) = &st.bg_error {
                return Err(Error::Poisoned(e.clone()));
            }
            if st.manual_done_id >= id {
                return Ok(());
            }
            if st.shutting_down {
                return Err(Error::Closed);
            }
            st = self.progress_cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn stop_background(&self, bg: &Mutex<Option<JoinHandle<()>>>) {
        {
            let mut st = lock(&self.state);
            st.shutting_down = true;
        }
        self.bg_cv.notify_all();
        self.progress_cv.notify_all();
        if let Some(h) = lock(bg).take()
            && h.join().is_err()
        {
            tracing::error!("background thread panicked");
        }
        if !self.read_only {
            self.remove_obsolete_tables();
        }
    }

    fn smallest_snapshot(&self) -> u64 {
        let snaps = lock(&self.snapshots);
        let visible = self.visible_seq.load(Ordering::Acquire);
        snaps.keys().next().copied().unwrap_or(visible).min(visible)
    }

    fn largest_snapshot(&self) -> Option<u64> {
        lock(&self.snapshots).keys().next_back().copied()
    }

    fn stats(&self) -> Stats {
        let st = lock(&self.state);
        let c = &self.counters;
        let wal = c.wal_bytes.load(Ordering::Relaxed);
        let table = c.table_bytes.load(Ordering::Relaxed);
        let manifest = c.manifest_bytes.load(Ordering::Relaxed);
        Stats {
            user_bytes_written: c.user_bytes.load(Ordering::Relaxed),
            disk_bytes_written: wal + table + manifest,
            wal_bytes_written: wal,
            table_bytes_written: table,
            manifest_bytes_written: manifest,
            tables_per_level: st.version.levels.iter().map(Vec::len).collect(),
            bytes_per_level: (0..NUM_LEVELS).map(|l| st.version.level_bytes(l)).collect(),
            stall_count: c.stall_count.load(Ordering::Relaxed),
            stall_micros: c.stall_micros.load(Ordering::Relaxed),
            flush_count: c.flushes.load(Ordering::Relaxed),
            flush_micros: c.flush_micros.load(Ordering::Relaxed),
            compaction_micros: c.compaction_micros.load(Ordering::Relaxed),
            compaction_count: c.compactions.load(Ordering::Relaxed),
            trivial_move_count: c.trivial_moves.load(Ordering::Relaxed),
            write_groups: c.write_groups.load(Ordering::Relaxed),
            batches_written: c.batches.load(Ordering::Relaxed),
            wal_syncs: c.wal_syncs.load(Ordering::Relaxed),
            memtable_bytes: st.mem.approx_bytes()
                + st.imms.iter().map(|m| m.approx_bytes()).sum::<usize>(),
            frozen_memtables: st.imms.len(),
            block_cache_bytes: self.block_cache.as_ref().map_or(0, |b| b.used_bytes()),
            block_cache_hits: self
                .block_cache
                .as_ref()
                .map_or(0, |b| b.hits.load(Ordering::Relaxed)),
            block_cache_misses: self
                .block_cache
                .as_ref()
                .map_or(0, |b| b.misses.load(Ordering::Relaxed)),
            open_tables: self.table_cache.open_count(),
            range_tombstones: st.version.range_tombstones.len(),
            last_sequence: self.visible_seq.load(Ordering::Acquire),
        }
    }

    // ---- background work -------------------------------------------------------------

    fn background_loop(self: Arc<Self>) {
        loop {
            let job = {
                let mut st = lock(&self.state);
                loop {
                    if st.bg_error.is_some() {
                        if st.shutting_down {
                            return;
                        }
                    } else if let Some(imm) = st.imms.front() {
                        let successor = st.imms.get(1).unwrap_or(&st.mem).first_wal;
                        break BgJob::Flush(Arc::clone(imm), successor);
                    } else if st.shutting_down {
                        return;
                    } else if let Some(t) = self.range_to_clear(&st) {
                        // Before manual compactions, so that one asked for after a range
                        // delete returns with the range cleared.
                        st.cleared_tombstones.insert(t.seq);
                        break BgJob::ClearRange(t.start.clone(), t.end.clone());
                    } else if let Some(m) = st.manual.front() {
                        break BgJob::Manual(m.id, m.start.clone(), m.end.clone());
                    } else if self.needs_compaction(&st.version) {
                        break BgJob::Compact;
                    }
                    // Woken by writers and callers; the timeout only bounds how long the
                    // files of tables that a reader let go of last stay on disk.
                    st = self
                        .bg_cv
                        .wait_timeout(st, OBSOLETE_SWEEP_INTERVAL)
                        .map(|(st, _)| st)
                        .unwrap_or_else(|p| p.into_inner().0);
                    if !self.obsolete.is_empty() {
                        drop(st);
                        self.remove_obsolete_tables();
                        st = lock(&self.state);
                    }
                }
            };
            let started = Instant::now();
            let result = match &job {
                BgJob::Flush(imm, successor) => self.run_flush(imm, *successor),
                BgJob::Manual(_, start, end) => self.run_manual(start.as_deref(), end.as_deref()),
                BgJob::Compact => self.run_auto_compaction().map(|_| ()),
                BgJob::ClearRange(start, end) => self.run_manual(Some(start), Some(end)),
            };
            let micros = started.elapsed().as_micros() as u64;
            match &job {
                BgJob::Flush(..) => &self.counters.flush_micros,
                _ => &self.counters.compaction_micros,
            }
            .fetch_add(micros, Ordering::Relaxed);
            let result = result.and_then(|()| self.drop_dead_range_tombstones());
            self.remove_obsolete_tables();
            let mut st = lock(&self.state);
            match result {
                Ok(()) => {
                    if let BgJob::Manual(id, ..) = job {
                        st.manual.pop_front();
                        st.manual_done_id = id;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "background work failed; writes are stopped");
                    st.bg_error = Some(e.to_string());
                }
            }
            drop(st);
            self.progress_cv.notify_all();
        }
    }

    /// A range tombstone that every snapshot sees, that is recorded in the manifest and
    /// whose range has not been compacted since: the data under it stays until its range
    /// is compacted, and the tombstone stays as long as that data does.
    fn range_to_clear(&self, st: &State) -> Option<RangeTombstone> {
        let tombstones = &st.version.range_tombstones;
        if tombstones.is_empty() {
            return None;
        }
        let visible_to_all = self.smallest_snapshot();
        tombstones
            .iter()
            .find(|t| t.seq <= visible_to_all && !st.cleared_tombstones.contains(&t.seq))
            .cloned()
    }

    fn needs_compaction(&self, v: &Version) -> bool {
        v.levels[0].len() >= self.opts.l0_compaction_trigger
            || (1..NUM_LEVELS - 1)
                .any(|l| v.level_bytes(l) > compaction::level_target(&self.opts, l))
    }

    fn current_version(&self) -> Arc<Version> {
        Arc::clone(&lock(&self.state).version)
    }

    fn new_table(&self) -> Result<(u64, TableBuilder)> {
        let n = {
            let mut st = lock(&self.state);
            let n = st.next_file_number;
            st.next_file_number += 1;
            n
        };
        let o = &self.opts;
        let b = TableBuilder::create(
            &self.fs,
            &files::table_path(&self.dir, n),
            o.block_size_bytes,
            o.compression,
            o.bloom_bits_per_key,
        )?;
        Ok((n, b))
    }

    /// Records `edit` in the manifest, then publishes the new version. Runs on the
    /// background thread only, which is the only thread that changes the table set.
    ///
    /// For a flush, `done_flush` is the flushed memtable and the number of the WAL after
    /// its own: once the edit is durable its WAL files are closed and removed, before the
    /// memtable leaves the queue, so `Db::flush` returns with them gone.
    fn install(
        &self,
        mut edit: VersionEdit,
        done_flush: Option<(&Arc<MemTable>, u64)>,
    ) -> Result<()> {
        let base = self.current_version();
        let next_file = lock(&self.state).next_file_number;
        edit.next_file_number = Some(next_file);
        edit.last_seq = Some(self.visible_seq.load(Ordering::Acquire));
        let make = |n, info: &crate::sstable::TableInfo| {
            TableMeta::new(n, info.clone(), Some(Arc::clone(&self.obsolete)))
        };
        let (version, removed) = base.apply(&edit, make);
        if let Err(reason) = version.check_invariants() {
            return Err(Error::corruption(
                &self.dir,
                0,
                format!("compaction would break level order: {reason}"),
            ));
        }
        {
            let mut m = lock(&self.manifest);
            let Some(writer) = m.as_mut() else {
                return Err(Error::ReadOnly);
            };
            if let Some(l) = edit.log_number {
                writer.log_number = l;
            }
            let written = if writer.len() > manifest::MANIFEST_ROLL_BYTES {
                let number = {
                    let mut st = lock(&self.state);
                    st.next_file_number += 1;
                    st.next_file_number - 1
                };
                let last_seq = edit.last_seq.unwrap_or(0);
                let snap = VersionEdit::snapshot(&version, writer.log_number, number + 1, last_seq);
                let old = writer.number;
                *writer = ManifestWriter::create(
                    self.fs.as_ref(),
                    &self.dir,
                    number,
                    &snap,
                    writer.log_number,
                )?;
                let old_path = files::manifest_path(&self.dir, old);
                files::remove_quietly(self.fs.as_ref(), &old_path, "old manifest");
                writer.len()
            } else {
                writer.append(&edit)?
            };
            self.counters
                .manifest_bytes
                .fetch_add(written, Ordering::Relaxed);
        }
        if let Some((imm, successor_wal)) = done_flush {
            self.retire_wals(imm.first_wal, successor_wal);
        }
        {
            let mut st = lock(&self.state);
            st.version = Arc::new(version);
            if let Some((imm, _)) = done_flush
                && st.imms.front().is_some_and(|f| Arc::ptr_eq(f, imm))
            {
                st.imms.pop_front();
            }
        }
        for t in removed {
            t.mark_obsolete();
            self.table_cache.evict(t.number);
        }
        // Open the new tables now, in the background, while the table cache has room:
        // the first read of each then finds its index and filter loaded instead of
        // reading and parsing them itself (as a scan after a compaction would, once per
        // table it touches), and a table that does not open shows here first.
        for (_, number, info) in &edit.added {
            if !self.table_cache.has_room() {
                break;
            }
            if let Err(e) = self.table_cache.get(*number, info.file_size) {
                tracing::warn!(table = number, error = %e, "a table just written does not open");
            }
        }
        self.progress_cv.notify_all();
        Ok(())
    }

    fn run_flush(&self, imm: &Arc<MemTable>, successor_wal: u64) -> Result<()> {
        let version = self.current_version();
        let mut tombstones = Vec::new();
        imm.range_tombstones_into(u64::MAX, &mut tombstones);
        let mut edit = VersionEdit {
            log_number: Some(successor_wal),
            ..VersionEdit::default()
        };
        edit.added_tombstones = tombstones;
        if imm.entry_count() > 0 {
            // Straight into level 1 when level 0 is empty and the memtable fits in the
            // gaps between level-1 tables, or touches only a few small ones (merged on
            // the way; this is how table boundaries come to follow the append points).
            let input = [Input::Mem(imm)];
            let mut output_level = 0;
            let mut untouched = Vec::new();
            let mut children: Vec<Box<dyn crate::iter::InternalIter>> =
                vec![Box::new(MemIter::new(Arc::clone(imm), false))];
            if version.levels[0].is_empty() {
                let (touched, rest) =
                    compaction::partition_level(&version, 1, &input, &[], &self.table_cache)?;
                let touched_bytes: u64 = touched.iter().map(|t| t.info.file_size).sum();
                if touched_bytes <= imm.approx_bytes() as u64 / 2 {
                    output_level = 1;
                    untouched = rest;
                    for t in &touched {
                        edit.deleted.push((1, t.number));
                    }
                    if !touched.is_empty() {
                        children.push(Box::new(crate::iter::LevelIter::new(
                            touched,
                            Arc::clone(&self.table_cache),
                            false,
                            false,
                        )));
                    }
                }
            }
            let iter = MergingIter::new(children, false);
            let rules = MergeRules {
                smallest_snapshot: self.smallest_snapshot(),
                largest_snapshot: self.largest_snapshot(),
                is_base_level: None,
                range_tombstones: &RangeTombstones::default(),
                filter: None,
            };
            let plan = OutputPlan {
                untouched: &untouched,
                upper_children: 1,
                single_table: output_level == 0,
                bytes_per_second: 0,
            };
            let out =
                compaction::merge_into_tables(&self.dir, iter, &self.opts, &rules, &plan, || {
                    self.new_table()
                })?;
            files::sync_dir(self.fs.as_ref(), &self.dir)?;
            self.counters
                .table_bytes
                .fetch_add(out.bytes_written, Ordering::Relaxed);
            for (n, info) in out.tables {
                edit.added.push((output_level as u8, n, info));
            }
            tracing::debug!(
                output_level,
                merged = edit.deleted.len(),
                tables = edit.added.len(),
                "flushed memtable"
            );
        }
        self.install(edit, Some((imm, successor_wal)))?;
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Closes and removes WAL files `first..successor`, whose memtable is now in durable
    /// tables. Closing matters as much as removing: an open descriptor keeps an unlinked
    /// file's blocks allocated, hidden from `du`.
    fn retire_wals(&self, first: u64, successor: u64) {
        lock(&self.unsynced_wals).retain(|(n, _)| !(first..successor).contains(n));
        lock(&self.replayed_unsynced).retain(|(n, _)| !(first..successor).contains(n));
        for n in first..successor {
            files::remove_quietly(
                self.fs.as_ref(),
                &files::wal_path(&self.dir, n),
                "flushed WAL",
            );
        }
    }

    /// Removes the files of tables that no version lists any more.
    fn remove_obsolete_tables(&self) {
        for n in self.obsolete.take() {
            self.table_cache.evict(n);
            let path = files::table_path(&self.dir, n);
            files::remove_quietly(self.fs.as_ref(), &path, "obsolete table");
        }
    }

    fn run_auto_compaction(&self) -> Result<bool> {
        let version = self.current_version();
        let mut pointers = std::mem::take(&mut lock(&self.state).compact_pointer);
        let job = compaction::pick(&version, &self.opts, &mut pointers, &self.table_cache);
        lock(&self.state).compact_pointer = pointers;
        match job? {
            Some(job) => self.run_job(&version, job).map(|()| true),
            None => Ok(false),
        }
    }

    fn run_job(&self, version: &Version, job: Job) -> Result<()> {
        let mut edit = VersionEdit::default();
        for t in &job.inputs {
            edit.deleted.push((job.level as u8, t.number));
        }
        if job.trivial_move {
            let t = &job.inputs[0];
            edit.added
                .push((job.output_level as u8, t.number, t.info.clone()));
            self.install(edit, None)?;
            self.counters.trivial_moves.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        for t in &job.lower {
            edit.deleted.push((job.output_level as u8, t.number));
        }
        let (iter, upper) = compaction::job_iter(&job, &self.table_cache);
        let base = |k: &[u8]| compaction::is_base_level(version, job.output_level, k);
        let rules = MergeRules {
            smallest_snapshot: self.smallest_snapshot(),
            largest_snapshot: self.largest_snapshot(),
            is_base_level: Some(&base),
            range_tombstones: &version.range_tombstones,
            filter: self.opts.compaction_filter.as_ref(),
        };
        let plan = OutputPlan {
            untouched: &job.untouched,
            upper_children: upper,
            single_table: false,
            // Level-0 compactions hold writers back and run at full speed; deeper ones
            // only keep reads efficient and are paced so their writeback does not inflate
            // the latency of Sync writes.
            bytes_per_second: if job.level == 0 {
                0
            } else {
                self.opts.compaction_bytes_per_second
            },
        };
        let out =
            compaction::merge_into_tables(&self.dir, iter, &self.opts, &rules, &plan, || {
                self.new_table()
            })?;
        files::sync_dir(self.fs.as_ref(), &self.dir)?;
        self.counters
            .table_bytes
            .fetch_add(out.bytes_written, Ordering::Relaxed);
        tracing::debug!(
            level = job.level,
            output_level = job.output_level,
            inputs = job.inputs.len(),
            lower = job.lower.len(),
            outputs = out.tables.len(),
            dropped = out.entries_dropped,
            "compacted"
        );
        for (n, info) in out.tables {
            edit.added.push((job.output_level as u8, n, info));
        }
        self.install(edit, None)?;
        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn run_manual(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        for level in 0..NUM_LEVELS {
            let version = self.current_version();
            let inputs: Vec<Arc<TableMeta>> = if level == 0 {
                version.levels[0].clone()
            } else {
                version.overlapping(level, start, end)
            };
            if inputs.is_empty() {
                continue;
            }
            let deepest = (0..NUM_LEVELS)
                .rev()
                .find(|&l| !version.levels[l].is_empty())
                .unwrap_or(0);
            let output_level = if level >= deepest && level > 0 {
                level
            } else {
                level + 1
            };
            let job = compaction::plan_job(
                &version,
                level,
                output_level,
                inputs,
                true,
                &self.table_cache,
            )?;
            self.run_job(&version, job)?;
            if output_level == level {
                break;
            }
        }
        Ok(())
    }

    /// Removes range tombstones that no longer hide anything: no table holds an older
    /// entry inside their range.
    fn drop_dead_range_tombstones(&self) -> Result<()> {
        let version = self.current_version();
        if version.range_tombstones.is_empty() {
            return Ok(());
        }
        let snapshot = self.smallest_snapshot();
        let mut dead = Vec::new();
        for t in version.range_tombstones.iter() {
            if t.seq > snapshot {
                continue;
            }
            let mut needed = false;
            'tables: for m in version.levels.iter().flatten() {
                if m.info.smallest_seq >= t.seq || !m.overlaps(Some(&t.start), Some(&t.end)) {
                    continue;
                }
                let table = self.table_cache.get(m.number, m.info.file_size)?;
                let mut it = crate::sstable::TableIter::new(table, false, false);
                let target = key::internal_key(&t.start, key::MAX_SEQ, Kind::Put);
                crate::iter::InternalIter::seek(&mut it, Some((&target, true)))?;
                let mut budget = 10_000;
                while crate::iter::InternalIter::valid(&it) {
                    let k = crate::iter::InternalIter::key(&it);
                    let (uk, seq, _) = key::parse(k).unwrap_or((&[], u64::MAX, Kind::Put));
                    if uk >= t.end.as_slice() {
                        break;
                    }
                    budget -= 1;
                    if seq < t.seq || budget == 0 {
                        needed = true;
                        break 'tables;
                    }
                    crate::iter::InternalIter::next(&mut it)?;
                }
            }
            if !needed {
                dead.push(t.seq);
            }
        }
        if dead.is_empty() {
            return Ok(());
        }
        tracing::debug!(
            count = dead.len(),
            "dropping range tombstones that hide nothing"
        );
        self.install(
            VersionEdit {
                removed_tombstones: dead,
                ..VersionEdit::default()
            },
            None,
        )
    }
}
