//! sled 0.34: a B-epsilon-ish tree with a log-structured page store.
//!
//! sled has no per-write sync, so `Sync` is `apply_batch` followed by `flush()`, which
//! writes and fsyncs everything dirty. `Buffered` relies on sled's background flusher
//! (every 500 ms by default).

use std::path::Path;

use anyhow::Context;

use super::{Budget, Durability, Engine};
use crate::workload::Event;

pub struct SledDb {
    db: sled::Db,
}

impl SledDb {
    pub fn open(dir: &Path, budget: Budget) -> anyhow::Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(budget.cache_bytes)
            .open()
            .with_context(|| format!("opening sled at {}", dir.display()))?;
        Ok(SledDb { db })
    }
}

impl Engine for SledDb {
    fn write(&self, events: &[Event], durability: Durability) -> anyhow::Result<()> {
        let mut batch = sled::Batch::default();
        for event in events {
            batch.insert(&event.key[..], &event.value[..]);
        }
        self.db.apply_batch(batch)?;
        if durability == Durability::Sync {
            self.db.flush()?;
        }
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
        let mut seen = 0;
        for pair in self.db.range(start..end) {
            let (key, value) = pair?;
            visit(&key, &value);
            seen += 1;
        }
        Ok(seen)
    }

    fn flush(&self) -> anyhow::Result<()> {
        self.db.flush()?;
        Ok(())
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        self.db.flush()?;
        Ok(())
    }
}
