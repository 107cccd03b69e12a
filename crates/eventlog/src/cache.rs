//! Bounded caches: decompressed blocks (by bytes) and open tables (by count).
//!
//! Both exist to keep memory and file descriptors bounded no matter how large the
//! database grows: tables are opened lazily on first use and closed again when the
//! cache needs room.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::Result;
use crate::sstable::Table;
use crate::sstable::block::Block;

const SHARDS: usize = 16;

/// Hasher for the caches' integer keys (table numbers and offsets). They are not chosen
/// by anyone who could aim collisions at the map, so a multiply-and-fold beats SipHash,
/// which was a visible share of every point read.
#[derive(Default)]
struct IntHasher(u64);

impl Hasher for IntHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// Bytes charged per cached block beyond its contents (map entry, ring slot, `Arc`).
const ENTRY_OVERHEAD_BYTES: usize = 64;

struct Entry {
    block: Arc<Block>,
    /// Set by every hit; the clock hand clears it once before it may evict the entry.
    referenced: bool,
}

/// One shard of the cache: a map for lookups and a ring (the clock) for eviction.
///
/// CLOCK rather than an exact LRU: a hit only sets a flag, so the read path does no
/// reordering, and eviction gives every block that was used since the hand last passed
/// one more round. Random point reads miss far more often than they hit, so the cost of
/// a miss (insert plus eviction) is what this is shaped for.
struct Shard {
    map: IntMap<(u64, u64), Entry>,
    ring: VecDeque<(u64, u64)>,
    used: usize,
}

impl Shard {
    fn evict_until_fits(&mut self, capacity: usize) {
        while self.used > capacity {
            let Some(key) = self.ring.pop_front() else {
                break;
            };
            let Some(entry) = self.map.get_mut(&key) else {
                continue;
            };
            if entry.referenced {
                entry.referenced = false;
                self.ring.push_back(key);
            } else if let Some(e) = self.map.remove(&key) {
                self.used -= e.block.size() + ENTRY_OVERHEAD_BYTES;
            }
        }
    }
}

/// Cache of decompressed blocks keyed by (table number, offset), bounded in bytes.
///
/// Scans put every block they read in. A point read puts a block in only when it missed
/// the same block a little earlier (see [`BlockCache::admit_after_miss`]): under random
/// point reads over more data than the cache holds, each admission would evict a block
/// as likely to be wanted again as the new one, so it would cost an allocation, an
/// insert and an eviction per read and raise the hit rate not at all.
pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity: usize,
    /// Fingerprints of blocks point reads missed lately, one per slot, 0 for none: the
    /// doorkeeper of TinyLFU-style admission, as many slots as the cache holds 4 KiB
    /// blocks.
    missed: Box<[AtomicU64]>,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl BlockCache {
    pub fn new(capacity_bytes: usize) -> BlockCache {
        BlockCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: IntMap::default(),
                        ring: VecDeque::new(),
                        used: 0,
                    })
                })
                .collect(),
            shard_capacity: capacity_bytes / SHARDS,
            missed: (0..(capacity_bytes / 4096).next_power_of_two().max(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: (u64, u64)) -> &Mutex<Shard> {
        let h = key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (key.1 >> 10).wrapping_mul(0xff51_afd7_ed55_8ccd);
        &self.shards[(h >> 58) as usize % SHARDS]
    }

    pub fn get(&self, table: u64, offset: u64) -> Option<Arc<Block>> {
        let mut s = self
            .shard((table, offset))
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(entry) = s.map.get_mut(&(table, offset)) else {
            drop(s);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        entry.referenced = true;
        let block = Arc::clone(&entry.block);
        drop(s);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(block)
    }

    pub fn insert(&self, table: u64, offset: u64, block: Arc<Block>) {
        let charge = block.size() + ENTRY_OVERHEAD_BYTES;
        if charge > self.shard_capacity {
            return;
        }
        let mut s = self
            .shard((table, offset))
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let entry = Entry {
            block,
            referenced: false,
        };
        match s.map.insert((table, offset), entry) {
            // Already in the ring: only the charge changes.
            Some(old) => s.used -= old.block.size() + ENTRY_OVERHEAD_BYTES,
            None => s.ring.push_back((table, offset)),
        }
        s.used += charge;
        let capacity = self.shard_capacity;
        s.evict_until_fits(capacity);
    }

    /// Whether a point read that just missed block (`table`, `offset`) should put it in
    /// the cache: yes if the block's fingerprint is still in its doorkeeper slot from an
    /// earlier miss, which the slot then forgets; otherwise the slot remembers this one.
    /// A block read again while still remembered gets in on its second miss; one read
    /// once in a long while never does.
    pub fn admit_after_miss(&self, table: u64, offset: u64) -> bool {
        let h = (table.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ offset)
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            | 1;
        let slot = &self.missed[(h >> 32) as usize & (self.missed.len() - 1)];
        if slot.load(Ordering::Relaxed) == h {
            slot.store(0, Ordering::Relaxed);
            true
        } else {
            slot.store(h, Ordering::Relaxed);
            false
        }
    }

    /// Bytes currently held.
    pub fn used_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).used)
            .sum()
    }
}

/// Bounded set of open tables.
///
/// Every read asks it for a table, so a hit takes only a shared lock and stamps the
/// entry's last use with an atomic store; opening and evicting take the lock exclusively.
pub struct TableCache {
    fs: Arc<dyn crate::fs::FileSystem>,
    dir: PathBuf,
    capacity: usize,
    block_cache: Option<Arc<BlockCache>>,
    open: RwLock<IntMap<u64, (Arc<Table>, AtomicU64)>>,
    tick: AtomicU64,
}

impl TableCache {
    pub fn new(
        fs: Arc<dyn crate::fs::FileSystem>,
        dir: PathBuf,
        capacity: usize,
        block_cache: Option<Arc<BlockCache>>,
    ) -> TableCache {
        TableCache {
            fs,
            dir,
            capacity,
            block_cache,
            open: RwLock::new(IntMap::default()),
            tick: AtomicU64::new(0),
        }
    }

    /// The open table, opening it (and maybe closing the least recently used one).
    pub fn get(&self, number: u64, file_size: u64) -> Result<Arc<Table>> {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        {
            let open = self.open.read().unwrap_or_else(|p| p.into_inner());
            if let Some((table, last_use)) = open.get(&number) {
                last_use.store(tick, Ordering::Relaxed);
                return Ok(Arc::clone(table));
            }
        }
        let path = crate::files::table_path(&self.dir, number);
        let table = Arc::new(Table::open(
            self.fs.as_ref(),
            &path,
            number,
            file_size,
            self.block_cache.clone(),
        )?);
        let mut open = self.open.write().unwrap_or_else(|p| p.into_inner());
        while open.len() >= self.capacity {
            let Some(victim) = open
                .iter()
                .min_by_key(|(_, (_, t))| t.load(Ordering::Relaxed))
                .map(|(n, _)| *n)
            else {
                break;
            };
            open.remove(&victim);
        }
        open.insert(number, (Arc::clone(&table), AtomicU64::new(tick)));
        Ok(table)
    }

    /// Forgets a table whose file is being deleted.
    pub fn evict(&self, number: u64) {
        self.open
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&number);
    }

    /// Whether one more table can be opened without closing another.
    pub fn has_room(&self) -> bool {
        self.open_count() < self.capacity
    }

    pub fn open_count(&self) -> usize {
        self.open.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sstable::block::BlockBuilder;

    fn block(n: usize) -> Arc<Block> {
        let mut b = BlockBuilder::new(16);
        b.add(b"key", &vec![7u8; n]);
        Arc::new(Block::new(b.finish()).expect("a built block decodes"))
    }

    #[test]
    fn a_point_read_admits_a_block_on_its_second_miss_only() {
        let cache = BlockCache::new(1 << 20);
        assert!(!cache.admit_after_miss(7, 4096));
        assert!(cache.admit_after_miss(7, 4096));
        // Admitted blocks are forgotten, so a third miss starts over.
        assert!(!cache.admit_after_miss(7, 4096));
        // Other blocks are each told no on their first miss.
        let admitted = (0..1000u64)
            .filter(|&i| cache.admit_after_miss(8, i * 4096))
            .count();
        assert_eq!(admitted, 0);
    }

    #[test]
    fn stays_within_its_byte_budget() {
        let cache = BlockCache::new(SHARDS * 4096);
        for offset in 0..1000 {
            cache.insert(1, offset << 12, block(1000));
        }
        assert!(cache.used_bytes() <= SHARDS * 4096);
        assert!(cache.used_bytes() > 0);
    }

    #[test]
    fn a_block_hit_since_the_hand_passed_outlives_one_that_was_not() {
        // One shard's worth: find offsets that land in the same shard as offset 0.
        let cache = BlockCache::new(SHARDS * 3 * 1100);
        let shard_of = |o: u64| std::ptr::from_ref(cache.shard((1, o)));
        let same: Vec<u64> = (0..10_000u64)
            .map(|i| i << 12)
            .filter(|&o| shard_of(o) == shard_of(0))
            .take(4)
            .collect();
        assert_eq!(same.len(), 4);
        for &o in &same[..3] {
            cache.insert(1, o, block(1000));
        }
        assert!(cache.get(1, same[0]).is_some());
        // A fourth block needs room: the hand passes the referenced first block and
        // evicts the second, which nobody read.
        cache.insert(1, same[3], block(1000));
        assert!(cache.get(1, same[0]).is_some());
        assert!(cache.get(1, same[1]).is_none());
        assert!(cache.get(1, same[3]).is_some());
    }
}
