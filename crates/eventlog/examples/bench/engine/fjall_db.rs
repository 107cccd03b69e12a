//! fjall 3: an LSM tree with a shared journal.
//!
//! `Sync` commits the batch with `PersistMode::SyncData` (fdatasync of the journal);
//! `Buffered` commits without a persist mode: the journal bytes go through fjall's 8 KiB
//! user-space write buffer (a batch larger than the buffer is written through, a smaller
//! tail stays in the process until the buffer fills or the next persist), no fsync.
//!
//! `--engine fjall` keeps fjall's default compression (none on levels 0–1, LZ4 below);
//! `--engine fjall-lz4` compresses data and index blocks with LZ4 on every level.

use std::path::Path;

use anyhow::Context;
use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::{Budget, Durability, Engine};
use crate::workload::Event;

pub struct FjallDb {
    db: Database,
    events: Keyspace,
}

impl FjallDb {
    pub fn open(dir: &Path, budget: Budget, lz4_everywhere: bool) -> anyhow::Result<Self> {
        let db = Database::builder(dir)
            .cache_size(budget.cache_bytes)
            .open()
            .with_context(|| format!("opening fjall at {}", dir.display()))?;
        let events = db.keyspace("events", || {
            let options = KeyspaceCreateOptions::default().max_memtable_size(budget.memtable_bytes);
            if lz4_everywhere {
                options
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
                    .index_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
            } else {
                options
            }
        })?;
        Ok(FjallDb { db, events })
    }
}

impl Engine for FjallDb {
    fn write(&self, events: &[Event], durability: Durability) -> anyhow::Result<()> {
        let mode = match durability {
            Durability::Buffered => None,
            Durability::Sync => Some(PersistMode::SyncData),
        };
        let mut batch = self.db.batch().durability(mode);
        for event in events {
            batch.insert(&self.events, &event.key[..], &event.value[..]);
        }
        batch.commit()?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> anyhow::Result<Option<usize>> {
        Ok(self.events.get(key)?.map(|value| value.len()))
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> anyhow::Result<u64> {
        let mut seen = 0;
        for guard in self.events.range(start..end) {
            let (key, value) = guard.into_inner()?;
            visit(&key, &value);
            seen += 1;
        }
        Ok(seen)
    }

    fn flush(&self) -> anyhow::Result<()> {
        self.events.rotate_memtable_and_wait()?;
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}
