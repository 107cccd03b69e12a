//! The memtable: recent writes, sorted, in memory, until they are flushed to a table.
//!
//! Entry bytes (`internal key | value`) are bump-allocated in an arena of 1 MiB chunks;
//! a `BTreeSet` of small fixed-size handles orders them. Iterators copy short runs of
//! handles under the read lock and re-seek after the last one, so a
//! long scan never blocks writers and writers never invalidate a scan (later entries carry
//! higher sequence numbers than the scan's snapshot and are skipped).

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, RwLock};

use crate::key::{self, Kind, RangeTombstone};
use crate::sstable::filter::{MemFilter, hash64};

/// Per-entry bookkeeping estimate added to the key and value bytes.
const ENTRY_OVERHEAD: usize = 48;

/// An internal key viewed as a type with the internal-key order.
#[repr(transparent)]
#[derive(PartialEq, Eq)]
pub struct IKey([u8]);

impl IKey {
    pub fn new(bytes: &[u8]) -> &IKey {
        // SAFETY: `IKey` is `repr(transparent)` over `[u8]`.
        unsafe { &*(bytes as *const [u8] as *const IKey) }
    }
}

impl Ord for IKey {
    fn cmp(&self, other: &Self) -> Ordering {
        key::compare(&self.0, &other.0)
    }
}

impl PartialOrd for IKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One memtable entry: the first 16 user-key bytes as an integer (so most comparisons
/// are one integer compare) and the location of `internal key | value` in the memtable's
/// arena.
///
/// An `Entry` points into memory owned by its [`MemTable`]; holders keep an
/// `Arc<MemTable>` for as long as they keep the entry.
#[derive(Clone, Copy)]
pub struct Entry {
    prefix: u128,
    ptr: *const u8,
    klen: u32,
    vlen: u32,
}

// SAFETY: an entry is a read-only view of arena bytes that are written once, before the
// entry is published under the memtable lock, and freed only when the memtable drops.
unsafe impl Send for Entry {}
// SAFETY: as above; nothing writes through an `Entry`.
unsafe impl Sync for Entry {}

/// The first 16 bytes of `user_key`, zero-padded, big-endian. Ordering by it agrees with
/// byte-wise ordering of the keys whenever the prefixes differ.
fn key_prefix(user_key: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    let n = user_key.len().min(16);
    b[..n].copy_from_slice(&user_key[..n]);
    u128::from_be_bytes(b)
}

impl Entry {
    pub fn ikey(&self) -> &[u8] {
        // SAFETY: see the type's invariant; `klen` bytes were written at `ptr`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.klen as usize) }
    }

    pub fn value(&self) -> &[u8] {
        // SAFETY: `vlen` bytes were written right after the key.
        unsafe { std::slice::from_raw_parts(self.ptr.add(self.klen as usize), self.vlen as usize) }
    }
}

const ARENA_CHUNK: usize = 1 << 20;

/// Bump allocator for entry bytes: a few large chunks instead of one allocation per
/// entry, so inserting is cheap and dropping a flushed memtable frees a handful of blocks.
struct Arena {
    chunks: Vec<(*mut u8, usize)>,
    cur: *mut u8,
    used: usize,
    cap: usize,
}

// SAFETY: the arena owns its chunks; it is only mutated under the memtable's write lock.
unsafe impl Send for Arena {}
// SAFETY: shared access only reads bytes that were published under the lock.
unsafe impl Sync for Arena {}

impl Arena {
    fn new() -> Arena {
        Arena {
            chunks: Vec::new(),
            cur: std::ptr::null_mut(),
            used: 0,
            cap: 0,
        }
    }

    fn chunk(&mut self, size: usize) -> *mut u8 {
        let layout = Layout::array::<u8>(size.max(1)).unwrap_or_else(|_| Layout::new::<u8>());
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc(layout) };
        if p.is_null() {
            handle_alloc_error(layout);
        }
        self.chunks.push((p, layout.size()));
        p
    }

    /// Copies `parts` back to back into fresh arena memory; returns where they start.
    fn copy(&mut self, parts: &[&[u8]]) -> *const u8 {
        let n: usize = parts.iter().map(|p| p.len()).sum();
        let dst = if n > ARENA_CHUNK / 4 {
            self.chunk(n)
        } else {
            if self.cur.is_null() || self.used + n > self.cap {
                self.cur = self.chunk(ARENA_CHUNK);
                self.used = 0;
                self.cap = ARENA_CHUNK;
            }
            // SAFETY: `used + n <= cap`, inside the current chunk.
            let d = unsafe { self.cur.add(self.used) };
            self.used += n;
            d
        };
        let mut at = 0;
        for p in parts {
            // SAFETY: `dst` has room for `n` bytes that no one else references yet.
            unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), dst.add(at), p.len()) };
            at += p.len();
        }
        dst
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for &(p, size) in &self.chunks {
            if let Ok(layout) = Layout::array::<u8>(size) {
                // SAFETY: allocated in `chunk` with this layout.
                unsafe { dealloc(p, layout) };
            }
        }
    }
}

struct Inner {
    set: BTreeSet<Entry>,
    arena: Arena,
    /// The user keys in `set`, for point reads to skip a memtable without them.
    filter: MemFilter,
}

impl Borrow<IKey> for Entry {
    fn borrow(&self) -> &IKey {
        IKey::new(self.ikey())
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.prefix == other.prefix && self.ikey() == other.ikey()
    }
}
impl Eq for Entry {}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| key::compare(self.ikey(), other.ikey()))
    }
}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Result of a point lookup in one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Value(u64, Vec<u8>),
    Deleted(u64),
}

/// A sorted, in-memory write buffer backed by one WAL file (or, after recovery, several).
pub struct MemTable {
    entries: RwLock<Inner>,
    range_tombstones: Mutex<Vec<RangeTombstone>>,
    approx_bytes: AtomicUsize,
    /// Number of the first WAL file whose records live in this memtable. Every WAL with a
    /// smaller number is covered by older memtables.
    pub first_wal: u64,
}

impl MemTable {
    /// An empty memtable whose records start in WAL `first_wal`, for about
    /// `budget_bytes` of entries (`Options::memtable_bytes`; it sizes the key filter).
    pub fn new(first_wal: u64, budget_bytes: usize) -> MemTable {
        MemTable {
            entries: RwLock::new(Inner {
                set: BTreeSet::new(),
                arena: Arena::new(),
                filter: MemFilter::for_memtable_bytes(budget_bytes),
            }),
            range_tombstones: Mutex::new(Vec::new()),
            approx_bytes: AtomicUsize::new(0),
            first_wal,
        }
    }

    /// Inserts entries; called by the single write leader only.
    pub fn insert_many<'a>(&self, items: impl Iterator<Item = (&'a [u8], u64, Kind, &'a [u8])>) {
        let mut added = 0;
        let mut inner = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *inner;
        for (k, seq, kind, v) in items {
            added += k.len() + v.len() + ENTRY_OVERHEAD;
            let trailer = key::pack_trailer(seq, kind).to_le_bytes();
            let ptr = inner.arena.copy(&[k, &trailer, v]);
            let klen = (k.len() + key::TRAILER_LEN) as u32;
            inner.filter.insert(hash64(k));
            inner.set.insert(Entry {
                prefix: key_prefix(k),
                ptr,
                klen,
                vlen: v.len() as u32,
            });
        }
        self.approx_bytes.fetch_add(added, AtomicOrdering::Relaxed);
    }

    /// Inserts the decoded operations of one batch or group, which carry sequence
    /// numbers `first_seq..`.
    pub fn apply(&self, first_seq: u64, ops: &[crate::batch::Op<'_>]) {
        use crate::batch::Op;
        self.insert_many(ops.iter().enumerate().filter_map(|(i, op)| match *op {
            Op::Put(k, v) => Some((k, first_seq + i as u64, Kind::Put, v)),
            Op::Delete(k) => Some((k, first_seq + i as u64, Kind::Delete, &[][..])),
            Op::DeleteRange(..) => None,
        }));
        for (i, op) in ops.iter().enumerate() {
            if let Op::DeleteRange(s, e) = *op
                && s < e
            {
                self.add_range_tombstone(RangeTombstone {
                    start: s.to_vec(),
                    end: e.to_vec(),
                    seq: first_seq + i as u64,
                });
            }
        }
    }

    pub fn add_range_tombstone(&self, t: RangeTombstone) {
        self.approx_bytes.fetch_add(
            t.start.len() + t.end.len() + ENTRY_OVERHEAD,
            AtomicOrdering::Relaxed,
        );
        self.range_tombstones
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(t);
    }

    /// True when a range tombstone of this memtable hides `(user_key, entry_seq)` from a
    /// reader at `snapshot_seq`. A memtable holds few of them; they are scanned.
    pub fn range_tombstone_covers(
        &self,
        user_key: &[u8],
        entry_seq: u64,
        snapshot_seq: u64,
    ) -> bool {
        let list = self
            .range_tombstones
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        list.iter()
            .any(|t| t.covers(user_key, entry_seq, snapshot_seq))
    }

    /// Range tombstones visible at `snapshot_seq`, appended to `out`.
    pub fn range_tombstones_into(&self, snapshot_seq: u64, out: &mut Vec<RangeTombstone>) {
        let list = self
            .range_tombstones
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        out.extend(list.iter().filter(|t| t.seq <= snapshot_seq).cloned());
    }

    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes.load(AtomicOrdering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.approx_bytes() == 0
    }

    pub fn entry_count(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .set
            .len()
    }

    /// Newest version of `user_key` visible at the sequence number `probe` was made for
    /// (`probe` = `key::seek_key(user_key, snapshot_seq)`, built once per read); `hash`
    /// is the key's [`hash64`], also built once per read.
    pub fn get(&self, user_key: &[u8], probe: &[u8], hash: u64) -> Option<Lookup> {
        if self.is_empty() {
            return None;
        }
        let inner = self.entries.read().unwrap_or_else(|p| p.into_inner());
        if !inner.filter.may_contain(hash) {
            return None;
        }
        let set = &inner.set;
        let e = set
            .range::<IKey, _>((Bound::Included(IKey::new(probe)), Bound::Unbounded))
            .next()?;
        let (uk, seq, kind) = key::parse(e.ikey())?;
        if uk != user_key {
            return None;
        }
        Some(match kind {
            Kind::Put => Lookup::Value(seq, e.value().to_vec()),
            Kind::Delete => Lookup::Deleted(seq),
        })
    }

    /// Copies up to `limit` entries starting at `from` (forward: ascending from the
    /// bound; reverse: descending from the bound) into `out`.
    pub fn chunk(&self, from: Bound<&[u8]>, reverse: bool, limit: usize, out: &mut Vec<Entry>) {
        out.clear();
        let inner = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let set = &inner.set;
        let b = match from {
            Bound::Included(k) => Bound::Included(IKey::new(k)),
            Bound::Excluded(k) => Bound::Excluded(IKey::new(k)),
            Bound::Unbounded => Bound::Unbounded,
        };
        if reverse {
            out.extend(
                set.range::<IKey, _>((Bound::Unbounded, b))
                    .rev()
                    .take(limit)
                    .cloned(),
            );
        } else {
            out.extend(
                set.range::<IKey, _>((b, Bound::Unbounded))
                    .take(limit)
                    .cloned(),
            );
        }
    }
}
