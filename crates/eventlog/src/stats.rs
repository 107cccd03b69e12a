//! Counters the engine keeps, and the snapshot of them handed to callers.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

#[derive(Default)]
pub(crate) struct Counters {
    pub user_bytes: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub table_bytes: AtomicU64,
    pub manifest_bytes: AtomicU64,
    pub stall_count: AtomicU64,
    pub stall_micros: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_micros: AtomicU64,
    pub compaction_micros: AtomicU64,
    pub compactions: AtomicU64,
    pub trivial_moves: AtomicU64,
    pub write_groups: AtomicU64,
    pub batches: AtomicU64,
    pub wal_syncs: AtomicU64,
}

/// Statistics since open. Write amplification is `disk_bytes_written /
/// user_bytes_written`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Key and value bytes handed to `write`.
    pub user_bytes_written: u64,
    /// Everything written to disk: WAL, tables and manifest.
    pub disk_bytes_written: u64,
    pub wal_bytes_written: u64,
    /// Table bytes written by flushes and compactions.
    pub table_bytes_written: u64,
    pub manifest_bytes_written: u64,
    /// Number of tables in each level (level 0 first).
    pub tables_per_level: Vec<usize>,
    /// File bytes in each level.
    pub bytes_per_level: Vec<u64>,
    /// Writes that were delayed or had to wait for background work.
    pub stall_count: u64,
    /// Total time writers spent in those stalls.
    pub stall_micros: u64,
    pub flush_count: u64,
    /// Time the background thread spent flushing memtables.
    pub flush_micros: u64,
    /// Time the background thread spent compacting (including trivial moves).
    pub compaction_micros: u64,
    /// Compactions that rewrote data.
    pub compaction_count: u64,
    /// Tables moved to the next level without a rewrite.
    pub trivial_move_count: u64,
    /// WAL records written; each carries one or more batches (group commit).
    pub write_groups: u64,
    pub batches_written: u64,
    /// `fdatasync` calls on the WAL.
    pub wal_syncs: u64,
    /// Bytes held by the active and frozen memtables.
    pub memtable_bytes: usize,
    pub frozen_memtables: usize,
    pub block_cache_bytes: usize,
    pub block_cache_hits: u64,
    pub block_cache_misses: u64,
    pub open_tables: usize,
    /// Range tombstones still recorded in the manifest.
    pub range_tombstones: usize,
    /// Sequence number of the newest acknowledged write.
    pub last_sequence: u64,
}

/// What recovery found when the database was opened.
///
/// Recovery stops at the first damage across all WAL files (see
/// [`crate::RecoveryMode::PointInTime`]); everything after it is counted here.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub wal_files_replayed: u64,
    pub wal_records_replayed: u64,
    /// Bytes not replayed: from the first damage to the end of its file, plus every
    /// byte of the later WAL files.
    pub wal_bytes_dropped: u64,
    /// `(file, offset of the first bad record, why)` of the first damage, if any.
    pub damaged_wals: Vec<(PathBuf, u64, String)>,
    /// WAL files after the damaged one, not replayed. A writable open renames each to
    /// `NNNNNN.log.dropped` so that no later open replays it after the gap; the files
    /// are kept for inspection and can be deleted by hand.
    pub dropped_wals: Vec<PathBuf>,
    /// Whole, valid records in those files, not replayed.
    pub records_dropped: u64,
    /// First and last sequence number carried by those records.
    pub dropped_sequences: Option<(u64, u64)>,
}
