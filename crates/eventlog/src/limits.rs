//! The one size limit of the engine, and the limits of the formats derived from it.
//!
//! Every stored entry passes through three containers: the WAL record of its batch, the
//! memtable, and a data block of a table. If any of them accepted less than another, a
//! write could be acknowledged and then fail to read back, or stop every compaction that
//! touches it. So the limit is set once, on what `write` accepts, and the readers'
//! sanity bounds are computed from it.

/// Largest encoded write batch [`crate::Db::write`] accepts (64 MiB of keys, values and
/// their length prefixes); a larger one fails with [`crate::Error::BatchTooLarge`].
pub const MAX_BATCH_BYTES: usize = 64 << 20;

/// Bytes a batch's WAL payload adds in front of its operations (`first_seq`, `count`).
pub(crate) const BATCH_HEADER_BYTES: usize = 12;

/// Largest WAL or manifest record payload a reader accepts. Groups of batches are cut at
/// 4 MiB unless one batch alone is larger, so a record is at most one whole batch.
pub(crate) const MAX_RECORD_BYTES: usize = MAX_BATCH_BYTES + BATCH_HEADER_BYTES;

/// Largest uncompressed block a table reader accepts: one entry of a maximal batch, after
/// entries that filled less than one block (`block_size_bytes` is at most 1 MiB), plus
/// the block's restart array.
pub(crate) const MAX_BLOCK_BYTES: usize = MAX_BATCH_BYTES + (2 << 20);
