//! The narrow interface the phases drive, so every engine runs the identical workload.

mod eventlog_db;
mod fjall_db;
mod sled_db;

use std::path::Path;

use crate::workload::Event;

/// The memory every engine is given where it has a knob for it.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Block cache (eventlog, fjall) or page cache (sled).
    pub cache_bytes: u64,
    /// Write buffer (memtable) of the two LSM engines; sled has no such knob.
    pub memtable_bytes: u64,
}

/// What a write promises when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Handed to the engine (and possibly the OS); no fsync.
    Buffered,
    /// On stable storage before the call returns.
    Sync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Eventlog,
    Sled,
    /// fjall with its default compression: none on levels 0–1, LZ4 from level 2.
    Fjall,
    /// fjall with LZ4 on every level (data and index blocks), like eventlog's default,
    /// so that space is compared like for like.
    #[serde(rename = "fjall-lz4")]
    FjallLz4,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Eventlog => "eventlog",
            EngineKind::Sled => "sled",
            EngineKind::Fjall => "fjall",
            EngineKind::FjallLz4 => "fjall-lz4",
        }
    }
}

/// An ordered key-value store as the bench sees it.
pub trait Engine: Send + Sync {
    /// Writes all events atomically with the given durability.
    fn write(&self, events: &[Event], durability: Durability) -> anyhow::Result<()>;
    /// The stored value's length, or `None` when absent.
    fn get(&self, key: &[u8]) -> anyhow::Result<Option<usize>>;
    /// Visits `start..end` in key order; returns how many pairs it saw.
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> anyhow::Result<u64>;
    /// Makes everything written so far durable and moves buffered writes to their
    /// on-disk structures (memtable → table file), so disk usage can be measured.
    fn flush(&self) -> anyhow::Result<()>;
    /// The engine's own counters, for the progress log; `None` when it keeps none.
    fn stats(&self) -> Option<String> {
        None
    }
    /// Clean shutdown.
    fn close(self: Box<Self>) -> anyhow::Result<()>;
}

/// Opens (or creates) the store of `kind` in `dir` with the shared memory budget.
pub fn open(kind: EngineKind, dir: &Path, budget: Budget) -> anyhow::Result<Box<dyn Engine>> {
    Ok(match kind {
        EngineKind::Eventlog => Box::new(eventlog_db::EventlogDb::open(dir, budget)?),
        EngineKind::Sled => Box::new(sled_db::SledDb::open(dir, budget)?),
        EngineKind::Fjall => Box::new(fjall_db::FjallDb::open(dir, budget, false)?),
        EngineKind::FjallLz4 => Box::new(fjall_db::FjallDb::open(dir, budget, true)?),
    })
}
