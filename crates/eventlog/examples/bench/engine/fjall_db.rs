//! fjall 3: an LSM tree with a shared journal.
//!
//! `Sync` commits the batch with `PersistMode::SyncData` (fdatasync of the journal);
//! `Buffered` commits without a persist mode, which hands the journal bytes to the OS
//! (fjall's default, `manual_journal_persist = false`) but does not fsync.

use std::path::Path;

use anyhow::Context;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::{Budget, Durability, Engine};
use crate::workload::Event;

pub struct FjallDb {
    db: Database,
    events: Keyspace,
}

impl FjallDb {
    pub fn open(dir: &Path, budget: Budget) -> anyhow::Result<Self> {
        let db = Database::builder(dir)
            .cache_size(budget.cache_bytes)
            .open()
            .with_context(|| format!("opening fjall at {}", dir.display()))?;
        let events = db.keyspace("events", || {
            KeyspaceCreateOptions::default().max_memtable_size(budget.memtable_bytes)
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
