//! Bounded caches: decompressed blocks (by bytes) and open tables (by count).
//!
//! Both exist to keep memory and file descriptors bounded no matter how large the
//! database grows: tables are opened lazily on first use and closed again when the
//! cache needs room.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::sstable::Table;
use crate::sstable::block::Block;

const SHARDS: usize = 16;

struct Shard {
    map: HashMap<(u64, u64), (Arc<Block>, u64)>,
    order: BTreeMap<u64, (u64, u64)>,
    used: usize,
    tick: u64,
}

/// Least-recently-used cache of decompressed blocks keyed by (table number, offset).
pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity: usize,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl BlockCache {
    pub fn new(capacity_bytes: usize) -> BlockCache {
        BlockCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        order: BTreeMap::new(),
                        used: 0,
                        tick: 0,
                    })
                })
                .collect(),
            shard_capacity: capacity_bytes / SHARDS,
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
        s.tick += 1;
        let tick = s.tick;
        let Some(entry) = s.map.get_mut(&(table, offset)) else {
            drop(s);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let old = std::mem::replace(&mut entry.1, tick);
        let block = Arc::clone(&entry.0);
        s.order.remove(&old);
        s.order.insert(tick, (table, offset));
        drop(s);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(block)
    }

    pub fn insert(&self, table: u64, offset: u64, block: Arc<Block>) {
        let charge = block.size() + 64;
        if charge > self.shard_capacity {
            return;
        }
        let mut s = self
            .shard((table, offset))
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        s.tick += 1;
        let tick = s.tick;
        if let Some((old_block, old_tick)) = s.map.insert((table, offset), (block, tick)) {
            s.order.remove(&old_tick);
            s.used -= old_block.size() + 64;
        }
        s.order.insert(tick, (table, offset));
        s.used += charge;
        while s.used > self.shard_capacity {
            let Some((_, victim)) = s.order.pop_first() else {
                break;
            };
            if let Some((b, _)) = s.map.remove(&victim) {
                s.used -= b.size() + 64;
            }
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
pub struct TableCache {
    dir: PathBuf,
    capacity: usize,
    block_cache: Option<Arc<BlockCache>>,
    open: Mutex<HashMap<u64, (Arc<Table>, u64)>>,
    tick: AtomicU64,
}

impl TableCache {
    pub fn new(dir: PathBuf, capacity: usize, block_cache: Option<Arc<BlockCache>>) -> TableCache {
        TableCache {
            dir,
            capacity,
            block_cache,
            open: Mutex::new(HashMap::new()),
            tick: AtomicU64::new(0),
        }
    }

    /// The open table, opening it (and maybe closing the least recently used one).
    pub fn get(&self, number: u64, file_size: u64) -> Result<Arc<Table>> {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = open.get_mut(&number) {
                entry.1 = tick;
                return Ok(Arc::clone(&entry.0));
            }
        }
        let path = crate::files::table_path(&self.dir, number);
        let table = Arc::new(Table::open(
            &path,
            number,
            file_size,
            self.block_cache.clone(),
        )?);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while open.len() >= self.capacity {
            let Some(victim) = open.iter().min_by_key(|(_, (_, t))| *t).map(|(n, _)| *n) else {
                break;
            };
            open.remove(&victim);
        }
        open.insert(number, (Arc::clone(&table), tick));
        Ok(table)
    }

    /// Forgets a table whose file is being deleted.
    pub fn evict(&self, number: u64) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&number);
    }

    pub fn open_count(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
