//! This crate's engine, configured like the hub configures it except for the budget.
//!
//! `Sync` is `Durability::Sync` (WAL `fdatasync`, shared by concurrent writers through
//! group commit); `Buffered` is `Durability::Buffered` (WAL bytes handed to the OS).
//! Scans use `DbIter::for_each_borrowed`, which shows each pair without copying it, as
//! fjall's iterator hands out reference-counted slices.

use std::ops::Bound;
use std::path::Path;

use anyhow::Context;
use eventlog::{Db, Direction, Options, WriteBatch};

use super::{Budget, Durability, Engine};
use crate::workload::Event;

pub struct EventlogDb {
    db: Db,
}

impl EventlogDb {
    pub fn open(dir: &Path, budget: Budget) -> anyhow::Result<Self> {
        let options = Options {
            block_cache_bytes: usize::try_from(budget.cache_bytes)?,
            memtable_bytes: usize::try_from(budget.memtable_bytes)?,
            ..Options::default()
        };
        let db = Db::open(dir, options)
            .with_context(|| format!("opening eventlog at {}", dir.display()))?;
        Ok(EventlogDb { db })
    }
}

impl Engine for EventlogDb {
    fn write(&self, events: &[Event], durability: Durability) -> anyhow::Result<()> {
        let mut batch = WriteBatch::new();
        for event in events {
            batch.put(&event.key, &event.value);
        }
        let durability = match durability {
            Durability::Buffered => eventlog::Durability::Buffered,
            Durability::Sync => eventlog::Durability::Sync,
        };
        self.db.write(batch, durability)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> anyhow::Result<Option<usize>> {
        Ok(self.db.get(key)?.map(|value| value.len()))
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> anyhow::Result<u64> {
        let range = (Bound::Included(start), Bound::Excluded(end));
        Ok(self
            .db
            .iter(range, Direction::Forward)?
            .for_each_borrowed(visit)?)
    }

    fn flush(&self) -> anyhow::Result<()> {
        self.db.flush()?;
        Ok(())
    }

    fn stats(&self) -> Option<String> {
        Some(format!("{:?}", self.db.stats()))
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        self.db.close()?;
        Ok(())
    }
}
