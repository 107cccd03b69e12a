//! The memtable: recent writes, sorted, in memory, until they are flushed to a table.
//!
//! Entries live in a `BTreeSet` of reference-counted byte strings
//! (`klen: u32 LE | internal key | value`), one allocation per entry. Iterators copy
//! short runs of entry handles under the read lock and re-seek after the last one, so a
//! long scan never blocks writers and writers never invalidate a scan (later entries carry
//! higher sequence numbers than the scan's snapshot and are skipped).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::mem::MaybeUninit;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};

use crate::key::{self, Kind, RangeTombstone};

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
/// are one integer compare) and one allocation holding `klen | internal key | value`.
#[derive(Clone)]
pub struct Entry {
    prefix: u128,
    data: Arc<[u8]>,
}

/// The first 16 bytes of `user_key`, zero-padded, big-endian. Ordering by it agrees with
/// byte-wise ordering of the keys whenever the prefixes differ.
fn key_prefix(user_key: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    let n = user_key.len().min(16);
    b[..n].copy_from_slice(&user_key[..n]);
    u128::from_be_bytes(b)
}

fn fill(dst: &mut [MaybeUninit<u8>], at: &mut usize, src: &[u8]) {
    for (d, s) in dst[*at..*at + src.len()].iter_mut().zip(src) {
        d.write(*s);
    }
    *at += src.len();
}

impl Entry {
    fn new(user_key: &[u8], seq: u64, kind: Kind, value: &[u8]) -> Entry {
        let klen = user_key.len() + key::TRAILER_LEN;
        let total = 4 + klen + value.len();
        let mut data: Arc<[MaybeUninit<u8>]> = Arc::new_uninit_slice(total);
        let mut at = 0;
        if let Some(dst) = Arc::get_mut(&mut data) {
            fill(dst, &mut at, &(klen as u32).to_le_bytes());
            fill(dst, &mut at, user_key);
            fill(dst, &mut at, &key::pack_trailer(seq, kind).to_le_bytes());
            fill(dst, &mut at, value);
        }
        assert_eq!(at, total, "a freshly allocated Arc is unique");
        // SAFETY: every byte was written above (checked by the assertion).
        let data = unsafe { data.assume_init() };
        Entry {
            prefix: key_prefix(user_key),
            data,
        }
    }

    fn klen(&self) -> usize {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.data[..4]);
        u32::from_le_bytes(b) as usize
    }

    pub fn ikey(&self) -> &[u8] {
        &self.data[4..4 + self.klen()]
    }

    pub fn value(&self) -> &[u8] {
        &self.data[4 + self.klen()..]
    }
}

impl Borrow<IKey> for Entry {
    fn borrow(&self) -> &IKey {
        IKey::new(self.ikey())
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.ikey() == other.ikey()
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
    entries: RwLock<BTreeSet<Entry>>,
    range_tombstones: Mutex<Vec<RangeTombstone>>,
    approx_bytes: AtomicUsize,
    /// Number of the first WAL file whose records live in this memtable. Every WAL with a
    /// smaller number is covered by older memtables.
    pub first_wal: u64,
}

impl MemTable {
    pub fn new(first_wal: u64) -> MemTable {
        MemTable {
            entries: RwLock::new(BTreeSet::new()),
            range_tombstones: Mutex::new(Vec::new()),
            approx_bytes: AtomicUsize::new(0),
            first_wal,
        }
    }

    /// Inserts entries; called by the single write leader only.
    pub fn insert_many<'a>(&self, items: impl Iterator<Item = (&'a [u8], u64, Kind, &'a [u8])>) {
        let mut added = 0;
        let mut set = self.entries.write().unwrap_or_else(|p| p.into_inner());
        for (k, seq, kind, v) in items {
            added += k.len() + v.len() + ENTRY_OVERHEAD;
            set.insert(Entry::new(k, seq, kind, v));
        }
        drop(set);
        self.approx_bytes.fetch_add(added, AtomicOrdering::Relaxed);
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
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Newest version of `user_key` visible at `snapshot_seq`.
    pub fn get(&self, user_key: &[u8], snapshot_seq: u64) -> Option<Lookup> {
        let probe = key::seek_key(user_key, snapshot_seq);
        let set = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let e = set
            .range::<IKey, _>((Bound::Included(IKey::new(&probe)), Bound::Unbounded))
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
        let set = self.entries.read().unwrap_or_else(|p| p.into_inner());
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
