//! Tuning knobs, with defaults sized for the hub: a few hundred events per second in
//! steady state, bursts of many thousands, a small machine (256 MB of RAM is plenty).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fs::{FileSystem, StdFs};

/// Largest allowed `Options::max_frozen_memtables`.
pub(crate) const MAX_FROZEN_MEMTABLES: usize = 8;

/// How a data block is compressed on disk.
///
/// LZ4 is the default: on the hub's events (24-byte keys, ~100-byte values, half of them
/// repetitive) it roughly halves the value bytes while decompressing at several GB/s, so
/// point reads stay cheap. Blocks that do not shrink by at least 1/8 are stored raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Store blocks as they are.
    None,
    /// LZ4 block format (`lz4_flex`).
    #[default]
    Lz4,
}

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged once the WAL record is handed to the operating system (one `write`
    /// call per group of batches). Survives a crash of the process, not a power cut.
    Buffered,
    /// Acknowledged after `fdatasync` of the WAL. Concurrent `Sync` writers share one
    /// sync (group commit), so many writers cost about as much as one.
    Sync,
}

/// What opening does when a WAL is damaged somewhere other than at its very end.
///
/// A power cut can leave the last record of the newest WAL cut short; that record was
/// never acknowledged as durable and is dropped in either mode. Damage anywhere else
/// (a record failing its checksum, a torn record followed by more data) means that writes
/// after it cannot be replayed without leaving a hole in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Recover to the last whole record before the first damage, across all WAL files,
    /// and drop everything after it (RocksDB's default, `kPointInTimeRecovery`). The
    /// database is then exactly as it was at one moment in its history. What was dropped
    /// is logged and listed in [`crate::RecoveryReport`].
    #[default]
    PointInTime,
    /// Refuse to open with [`crate::Error::Corruption`] instead of dropping anything but a
    /// torn final record, so that an operator can look at the files first.
    Strict,
}

/// Decides, during compaction, whether an entry is still worth keeping.
///
/// The hub uses it to age out usage detail once it has been rolled up into daily totals.
///
/// What the filter is shown: for each key, the newest value *among the tables being
/// merged*, and only when that value is newer than every open snapshot (an entry a
/// snapshot can see is kept for it). A newer version of the same key may still sit in a
/// higher level or in a memtable, so the filter must judge a value by its own contents,
/// not assume it is the key's current value. Older versions below the newest, point
/// tombstones, range tombstones, memtable flushes and tables that move down a level
/// without being rewritten (trivial moves) are never shown. A rejected value becomes a
/// tombstone, which later compactions remove like any other. (A snapshot taken while a
/// compaction runs may or may not see the entries that compaction rejects.) Call
/// [`crate::Db::compact_range`] over a range to force every table in it through the
/// filter.
pub trait CompactionFilter: Send + Sync {
    /// Return `false` to drop the entry.
    fn keep(&self, key: &[u8], value: &[u8]) -> bool;
}

/// Engine options. Every field has a documented default (see [`Options::default`]).
#[derive(Clone)]
pub struct Options {
    /// Size at which the active memtable is frozen and flushed to a table. Also bounds the
    /// WAL that a reopen has to replay. Default 16 MiB. Allowed 4 KiB ..= 1 GiB.
    pub memtable_bytes: usize,
    /// How many frozen memtables may wait for their flush before writers stall.
    /// Default 2. Allowed 1 ..= 8.
    pub max_frozen_memtables: usize,
    /// Uncompressed target size of a data block. Default 4 KiB. Allowed 256 B ..= 1 MiB.
    pub block_size_bytes: usize,
    /// Capacity of the cache of decompressed blocks. Default 32 MiB. 0 disables it.
    pub block_cache_bytes: usize,
    /// How many table files may be open at once. Default 1000. Allowed 8 ..= 100 000.
    /// An open table costs one descriptor plus its index and filter (about 1.5% of the
    /// table's size).
    pub max_open_files: usize,
    /// Bloom filter bits per key; 10 gives about 1% false positives. 0 disables filters.
    /// Default 10. Allowed 0 ..= 32.
    pub bloom_bits_per_key: u32,
    /// Block compression. Default [`Compression::Lz4`].
    pub compression: Compression,
    /// Optional compaction filter. Default none.
    pub compaction_filter: Option<Arc<dyn CompactionFilter>>,
    /// Target size of one table file written by a compaction. Default 8 MiB.
    /// Allowed 4 KiB ..= 4 GiB.
    pub target_file_bytes: u64,
    /// Number of level-0 tables that triggers a level-0 compaction. Default 4.
    pub l0_compaction_trigger: usize,
    /// Number of level-0 tables at which each write is delayed by 1 ms (counted as a
    /// stall). Default 8.
    pub l0_slowdown_trigger: usize,
    /// Number of level-0 tables at which writes wait for compaction. Default 12.
    pub l0_stop_trigger: usize,
    /// Size limit of level 1; every further level is `level_size_multiplier` times
    /// larger. Default 64 MiB. At least 16 KiB.
    pub level1_bytes: u64,
    /// Growth factor between levels. Default 10.
    pub level_size_multiplier: u64,
    /// Pace of compactions below level 0, in bytes written per second; 0 = unpaced.
    /// They never hold writers back, and pacing them keeps their disk traffic from
    /// lengthening `Sync` writes. Default 48 MiB/s.
    pub compaction_bytes_per_second: u64,
    /// Create the directory if it does not exist. Default true.
    pub create_if_missing: bool,
    /// What opening does about a damaged WAL. Default [`RecoveryMode::PointInTime`].
    pub recovery_mode: RecoveryMode,
    /// The files underneath. Default [`StdFs`], the operating system's; tests put a
    /// simulated disk here ([`crate::fs::power_loss::PowerLossFs`]).
    pub file_system: Arc<dyn FileSystem>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("memtable_bytes", &self.memtable_bytes)
            .field("max_frozen_memtables", &self.max_frozen_memtables)
            .field("block_size_bytes", &self.block_size_bytes)
            .field("block_cache_bytes", &self.block_cache_bytes)
            .field("max_open_files", &self.max_open_files)
            .field("bloom_bits_per_key", &self.bloom_bits_per_key)
            .field("compression", &self.compression)
            .field("compaction_filter", &self.compaction_filter.is_some())
            .field("target_file_bytes", &self.target_file_bytes)
            .field("l0_compaction_trigger", &self.l0_compaction_trigger)
            .field("l0_slowdown_trigger", &self.l0_slowdown_trigger)
            .field("l0_stop_trigger", &self.l0_stop_trigger)
            .field("level1_bytes", &self.level1_bytes)
            .field("level_size_multiplier", &self.level_size_multiplier)
            .field(
                "compaction_bytes_per_second",
                &self.compaction_bytes_per_second,
            )
            .field("create_if_missing", &self.create_if_missing)
            .field("recovery_mode", &self.recovery_mode)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            memtable_bytes: 16 << 20,
            max_frozen_memtables: 2,
            block_size_bytes: 4 << 10,
            block_cache_bytes: 32 << 20,
            max_open_files: 1000,
            bloom_bits_per_key: 10,
            compression: Compression::Lz4,
            compaction_filter: None,
            target_file_bytes: 8 << 20,
            l0_compaction_trigger: 4,
            l0_slowdown_trigger: 8,
            l0_stop_trigger: 12,
            level1_bytes: 64 << 20,
            level_size_multiplier: 10,
            compaction_bytes_per_second: 48 << 20,
            create_if_missing: true,
            recovery_mode: RecoveryMode::PointInTime,
            file_system: Arc::new(StdFs),
        }
    }
}

fn check(field: &'static str, ok: bool, reason: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidOption {
            field,
            reason: reason.to_string(),
        })
    }
}

impl Options {
    /// Checks every field against its allowed range.
    pub fn validate(&self) -> Result<()> {
        check(
            "memtable_bytes",
            (4 << 10..=1 << 30).contains(&self.memtable_bytes),
            "must be 4 KiB ..= 1 GiB",
        )?;
        check(
            "max_frozen_memtables",
            (1..=MAX_FROZEN_MEMTABLES).contains(&self.max_frozen_memtables),
            "must be 1 ..= 8",
        )?;
        check(
            "block_size_bytes",
            (256..=1 << 20).contains(&self.block_size_bytes),
            "must be 256 ..= 1 MiB",
        )?;
        check(
            "max_open_files",
            (8..=100_000).contains(&self.max_open_files),
            "must be 8 ..= 100000",
        )?;
        check(
            "bloom_bits_per_key",
            self.bloom_bits_per_key <= 32,
            "must be 0 ..= 32",
        )?;
        check(
            "target_file_bytes",
            (4 << 10..=1 << 32).contains(&self.target_file_bytes),
            "must be 4 KiB ..= 4 GiB",
        )?;
        check(
            "l0_compaction_trigger",
            self.l0_compaction_trigger >= 2,
            "must be at least 2",
        )?;
        check(
            "l0_slowdown_trigger",
            self.l0_slowdown_trigger >= self.l0_compaction_trigger,
            "must be at least l0_compaction_trigger",
        )?;
        check(
            "l0_stop_trigger",
            self.l0_stop_trigger >= self.l0_slowdown_trigger,
            "must be at least l0_slowdown_trigger",
        )?;
        check(
            "level1_bytes",
            self.level1_bytes >= 16 << 10,
            "must be at least 16 KiB",
        )?;
        check(
            "level_size_multiplier",
            (2..=100).contains(&self.level_size_multiplier),
            "must be 2 ..= 100",
        )?;
        Ok(())
    }
}
