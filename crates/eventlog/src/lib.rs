//! `eventlog`: an embedded LSM-tree storage engine. Ordered bytes → bytes, with atomic
//! write batches, snapshots, forward and reverse range scans, point and range deletes,
//! and a compaction filter for ageing data out. It knows nothing of households; the hub
//! keeps every usage report and grant in it.
//!
//! # API
//!
//! ```
//! use std::ops::Bound;
//! use eventlog::{Db, Direction, Durability, Options, WriteBatch};
//!
//! # fn main() -> Result<(), eventlog::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path(), Options::default())?;
//! let mut batch = WriteBatch::new();
//! batch.put(b"child-1/0001", b"30 minutes");
//! batch.put(b"child-1/0002", b"15 minutes");
//! db.write(batch, Durability::Sync)?;          // acknowledged after fdatasync
//! assert_eq!(db.get(b"child-1/0001")?, Some(b"30 minutes".to_vec()));
//!
//! let range = (Bound::Included(&b"child-1/"[..]), Bound::Excluded(&b"child-10"[..]));
//! for item in db.iter(range, Direction::Reverse)? {
//!     let (key, value) = item?;
//!     # let _ = (key, value);
//! }
//! db.delete_range(b"child-1/", b"child-10", Durability::Buffered)?;
//! assert_eq!(db.iter(.., Direction::Forward)?.count(), 0);
//! db.close()?;
//! # Ok(()) }
//! ```
//!
//! * [`Db::open`]`(dir, `[`Options`]`)` — open or create; replays the WAL after a crash.
//! * [`Db::write`]`(`[`WriteBatch`]`, `[`Durability`]`)`, [`Db::put`], [`Db::delete`],
//!   [`Db::delete_range`] (`[start, end)`). A batch is all-or-nothing, also across a crash.
//!   `Durability::Sync` waits for `fdatasync`; concurrent `Sync` writers share one sync.
//! * [`Db::get`], [`Db::iter`]`(range: impl RangeBounds<[u8]>, `[`Direction`]`) ->
//!   `[`DbIter`] (an `Iterator<Item = Result<(Vec<u8>, Vec<u8>), Error>>` over a consistent
//!   snapshot; [`DbIter::for_each_borrowed`] shows the pairs without copying them),
//!   [`Db::snapshot`] → [`Snapshot`] with `get` and `iter`.
//! * [`Db::flush`], [`Db::compact_range`], [`Db::close`], [`Db::stats`] → [`Stats`],
//!   [`Db::verify`], [`Db::recovery_report`].
//! * [`CompactionFilter`] in [`Options::compaction_filter`] drops entries during compaction.
//! * A batch is at most [`MAX_BATCH_BYTES`]; a larger one fails with
//!   [`Error::BatchTooLarge`].
//! * [`Options::recovery_mode`]: after damage to the WAL, open either recovers to the
//!   last whole record before it ([`RecoveryMode::PointInTime`], the default) or refuses
//!   ([`RecoveryMode::Strict`]).
//! * [`Options::file_system`]: the files underneath, [`fs::StdFs`] unless a test puts
//!   [`fs::power_loss::PowerLossFs`] there to cut the power at any file operation.
//!
//! # Design in one paragraph
//!
//! Writes go to a write-ahead log (length-framed, CRC32C) and a sorted memtable. Full
//! memtables are frozen and written by one background thread into immutable tables
//! (prefix-compressed, LZ4-compressed 4 KiB blocks with checksums, an index block, a Bloom
//! filter and a footer). A manifest records every change of the table set as one atomic
//! edit. The same thread compacts tables level by level; tables that do not overlap the
//! next level move down without a rewrite. `docs/eventlog-format.md` describes every file
//! byte by byte and argues why recovery is correct.

mod batch;
mod cache;
mod coding;
mod compaction;
mod db;
mod error;
mod files;
pub mod fs;
mod iter;
mod key;
mod limits;
mod manifest;
mod memtable;
mod options;
mod record;
mod recovery;
mod sstable;
mod stats;
mod tombstones;
mod version;

pub use batch::WriteBatch;
pub use db::{Db, Snapshot};
pub use error::Error;
pub use iter::{DbIter, Direction};
pub use limits::MAX_BATCH_BYTES;
pub use options::{CompactionFilter, Compression, Durability, Options, RecoveryMode};
pub use stats::{RecoveryReport, Stats};

/// Entry points for the fuzz targets: decoders of bytes that come from disk. Not part of
/// the stable API.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::Arc;

    /// Decodes a stored block (`contents | kind | crc`) and, if it checks out, every
    /// entry in it and one seek. Must never panic.
    pub fn decode_block(stored: &[u8]) {
        let Ok(contents) = crate::sstable::block::decode_stored_block(stored) else {
            return;
        };
        decode_block_contents(contents);
    }

    /// Decodes block contents (after checksum and decompression). Must never panic.
    pub fn decode_block_contents(contents: Vec<u8>) {
        let Ok(block) = crate::sstable::block::Block::new(contents) else {
            return;
        };
        let block = Arc::new(block);
        if let Ok(d) = block.decode_all() {
            for i in 0..d.len() {
                let _ = (d.key(i), d.value(i));
            }
        }
        let _ = block.view().seek(&[0u8; 9]);
    }

    /// Reads WAL bytes: every whole record, and the operations of each. Must never
    /// panic; returns the number of operations decoded.
    pub fn decode_wal(bytes: &[u8]) -> usize {
        let mut ops = 0;
        for (_, payload) in crate::record::RecordReader::new(bytes) {
            if let Some(p) = crate::batch::decode_payload(payload) {
                ops += p.iter().take_while(|r| r.is_ok()).count();
            }
        }
        ops
    }

    /// Decodes a manifest record payload. Must never panic.
    pub fn decode_version_edit(payload: &[u8]) -> bool {
        crate::manifest::VersionEdit::decode(payload).is_some()
    }

    /// Frames `payload` as one WAL record, for building fuzz seeds.
    pub fn frame_record(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::record::encode_record(&mut out, payload);
        out
    }
}
