//! Writes one table file from entries added in internal-key order.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fs::{FileSystem, WritableFile};
use crate::key;
use crate::options::Compression;
use crate::sstable::block::{BlockBuilder, BlockHandle, encode_stored_block};
use crate::sstable::filter;
use crate::sstable::footer::Footer;

const RESTART_INTERVAL: usize = 16;

/// Written bytes after which the builder asks the kernel to start writing them out, so
/// the final sync of a large table does not wait for all of it at once.
const WRITEBACK_BYTES: u64 = 1 << 20;

/// What a finished table contains; recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub file_size: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    pub smallest_seq: u64,
    pub largest_seq: u64,
    pub entries: u64,
}

/// A table written in full but not yet synced.
pub struct FinishedTable {
    pub info: TableInfo,
    file: Box<dyn WritableFile>,
    path: PathBuf,
}

impl FinishedTable {
    /// Makes the table durable (`fsync`).
    pub fn sync(mut self) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io(&self.path, e))
    }
}

/// A [`WritableFile`] as an `io::Write`, so a `BufWriter` can gather small blocks into
/// large appends.
struct Appender(Box<dyn WritableFile>);

impl Write for Appender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams a table to disk, holding at most one data block, the index and one hash per
/// key in memory.
pub struct TableBuilder {
    fs: Arc<dyn FileSystem>,
    out: BufWriter<Appender>,
    path: PathBuf,
    offset: u64,
    block_size: usize,
    compression: Compression,
    bloom_bits: u32,
    data: BlockBuilder,
    index: BlockBuilder,
    last_key: Vec<u8>,
    hashes: Vec<u64>,
    scratch: Vec<u8>,
    smallest: Option<Vec<u8>>,
    writeback_from: u64,
    smallest_seq: u64,
    largest_seq: u64,
    entries: u64,
}

impl TableBuilder {
    pub fn create(
        fs: &Arc<dyn FileSystem>,
        path: &Path,
        block_size: usize,
        compression: Compression,
        bloom_bits: u32,
    ) -> Result<TableBuilder> {
        let file = fs.create(path).map_err(|e| Error::io(path, e))?;
        Ok(TableBuilder {
            fs: Arc::clone(fs),
            out: BufWriter::with_capacity(256 << 10, Appender(file)),
            path: path.to_path_buf(),
            offset: 0,
            block_size,
            compression,
            bloom_bits,
            data: BlockBuilder::new(RESTART_INTERVAL),
            index: BlockBuilder::new(1),
            last_key: Vec::new(),
            hashes: Vec::new(),
            scratch: Vec::new(),
            smallest: None,
            writeback_from: 0,
            smallest_seq: u64::MAX,
            largest_seq: 0,
            entries: 0,
        })
    }

    /// Adds one entry; keys must arrive in strictly increasing internal-key order.
    pub fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let uk = key::user_key(ikey);
        let seq = key::trailer(ikey) >> 8;
        if self.smallest.is_none() {
            self.smallest = Some(uk.to_vec());
        }
        if self.entries == 0 || key::user_key(&self.last_key) != uk {
            self.hashes.push(filter::hash64(uk));
        }
        self.smallest_seq = self.smallest_seq.min(seq);
        self.largest_seq = self.largest_seq.max(seq);
        self.entries += 1;
        self.data.add(ikey, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(ikey);
        if self.data.estimated_size() >= self.block_size {
            self.finish_data_block()?;
        }
        Ok(())
    }

    /// Bytes written so far plus the open block.
    pub fn estimated_size(&self) -> u64 {
        self.offset + self.data.estimated_size() as u64
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// User key of the last entry added.
    pub fn last_user_key(&self) -> &[u8] {
        key::user_key(&self.last_key)
    }

    fn write_block(&mut self, contents: &[u8], compression: Compression) -> Result<BlockHandle> {
        self.scratch.clear();
        let size = encode_stored_block(&mut self.scratch, contents, compression);
        self.out
            .write_all(&self.scratch)
            .map_err(|e| Error::io(&self.path, e))?;
        let handle = BlockHandle {
            offset: self.offset,
            size: size as u64,
        };
        self.offset += self.scratch.len() as u64;
        if self.offset - self.writeback_from >= WRITEBACK_BYTES {
            self.start_writeback()?;
        }
        Ok(handle)
    }

    fn finish_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let contents = self.data.finish();
        let handle = self.write_block(&contents, self.compression)?;
        let mut enc = Vec::with_capacity(12);
        handle.encode(&mut enc);
        let last = std::mem::take(&mut self.last_key);
        self.index.add(&last, &enc);
        self.last_key = last;
        Ok(())
    }

    /// Hands the buffered bytes to the kernel and starts asynchronous writeback of
    /// everything written since the last call (`sync_file_range`, Linux).
    fn start_writeback(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        let (from, len) = (self.writeback_from, self.offset - self.writeback_from);
        self.out.get_mut().0.start_writeback(from, len);
        self.writeback_from = self.offset;
        Ok(())
    }

    /// Writes filter, index and footer and starts writing the file out; returns what it
    /// holds and the file, which [`FinishedTable::sync`] makes durable. A merge writing
    /// many tables syncs them after the last one is written, so their syncs find the
    /// data on its way to the disk instead of each starting its own writeback.
    pub fn finish(mut self) -> Result<FinishedTable> {
        self.finish_data_block()?;
        let bloom = if self.bloom_bits > 0 {
            filter::build(&self.hashes, self.bloom_bits)
        } else {
            Vec::new()
        };
        let filter = self.write_block(&bloom, Compression::None)?;
        let index_contents = self.index.finish();
        let index = self.write_block(&index_contents, self.compression)?;
        let footer = Footer { index, filter }.encode();
        self.out
            .write_all(&footer)
            .map_err(|e| Error::io(&self.path, e))?;
        self.offset += footer.len() as u64;
        self.start_writeback()?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        let info = TableInfo {
            file_size: self.offset,
            smallest: self.smallest.unwrap_or_default(),
            largest: key::user_key(&self.last_key).to_vec(),
            smallest_seq: if self.entries == 0 {
                0
            } else {
                self.smallest_seq
            },
            largest_seq: self.largest_seq,
            entries: self.entries,
        };
        Ok(FinishedTable {
            info,
            file: file.0,
            path: self.path,
        })
    }

    /// Gives up on the table and removes the partial file.
    pub fn abandon(self) {
        let (fs, path) = (Arc::clone(&self.fs), self.path.clone());
        drop(self);
        crate::files::remove_quietly(fs.as_ref(), &path, "abandoned table");
    }
}
