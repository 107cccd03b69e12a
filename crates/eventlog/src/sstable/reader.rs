//! Reading tables: open (footer, index, filter), point lookups and iteration.
//!
//! Opening reads only the footer, the index block and the filter; data blocks are read on
//! demand with positional reads and go through the shared block cache.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::fs::{FileSystem, ReadableFile};
use crate::iter::InternalIter;
use crate::key::{self, Kind};
use crate::memtable::Lookup;
use crate::sstable::block::{
    BLOCK_TRAILER_LEN, Block, BlockHandle, BlockView, DecodedBlock, decode_stored_block,
    decode_stored_block_into,
};
use crate::sstable::filter::Filter;
use crate::sstable::footer::{FOOTER_LEN, Footer};

thread_local! {
    /// Per-thread buffer for stored (compressed, checksummed) block bytes.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Per-thread buffer a point read decompresses a block into when the block cache
    /// does not take the block (see `BlockCache::admit_after_miss`).
    static BLOCK_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The most a per-thread buffer keeps between reads. A block larger than this (one
/// holding a very large value) is read into a buffer freed right after, so one such
/// read does not pin megabytes in every thread that made it.
const KEPT_BUFFER_BYTES: usize = 1 << 20;

/// Frees `buf` if it grew past [`KEPT_BUFFER_BYTES`].
fn trim(buf: &mut Vec<u8>) {
    if buf.capacity() > KEPT_BUFFER_BYTES {
        *buf = Vec::new();
    }
}

/// An open table file.
pub struct Table {
    pub number: u64,
    path: PathBuf,
    file: Box<dyn ReadableFile>,
    file_size: u64,
    index_keys: Vec<u8>,
    index: Vec<(u32, u32, BlockHandle)>,
    /// [`key::user_prefix`] of each index key's user key, searched before the keys
    /// themselves: a point read's search through the index then touches 16 contiguous
    /// bytes a step instead of an entry and a key elsewhere.
    index_prefixes: Vec<u128>,
    filter: Filter,
    cache: Option<Arc<BlockCache>>,
}

impl Table {
    pub fn open(
        fs: &dyn FileSystem,
        path: &Path,
        number: u64,
        file_size: u64,
        cache: Option<Arc<BlockCache>>,
    ) -> Result<Table> {
        let file = fs.open(path).map_err(|e| Error::io(path, e))?;
        let actual = file.size().map_err(|e| Error::io(path, e))?;
        if actual != file_size {
            return Err(Error::corruption(
                path,
                actual.min(file_size),
                format!("table is {actual} bytes, the manifest recorded {file_size}"),
            ));
        }
        if file_size < FOOTER_LEN as u64 {
            return Err(Error::corruption(path, 0, "table shorter than its footer"));
        }
        let footer_at = file_size - FOOTER_LEN as u64;
        let mut buf = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut buf, footer_at)
            .map_err(|e| Error::io(path, e))?;
        let footer = Footer::decode(&buf).map_err(|r| Error::corruption(path, footer_at, r))?;
        let mut table = Table {
            number,
            path: path.to_path_buf(),
            file,
            file_size,
            index_keys: Vec::new(),
            index: Vec::new(),
            index_prefixes: Vec::new(),
            filter: Filter::None,
            cache,
        };
        table.filter = Filter::parse(table.read_contents(footer.filter)?);
        let index_block =
            Arc::new(Block::new(table.read_contents(footer.index)?).map_err(|r| {
                Error::corruption(path, footer.index.offset, format!("index block: {r}"))
            })?);
        let decoded = index_block.decode_all().map_err(|r| {
            Error::corruption(path, footer.index.offset, format!("index block: {r}"))
        })?;
        let mut prev_end = 0u64;
        for i in 0..decoded.len() {
            let handle = BlockHandle::decode(decoded.value(i)).ok_or_else(|| {
                Error::corruption(
                    path,
                    footer.index.offset,
                    format!("index entry {i} has a malformed handle"),
                )
            })?;
            let end = handle
                .offset
                .checked_add(handle.size + BLOCK_TRAILER_LEN as u64);
            if handle.offset < prev_end || end.is_none_or(|e| e > footer.filter.offset) {
                return Err(Error::corruption(
                    path,
                    footer.index.offset,
                    format!("index entry {i} points outside the data area"),
                ));
            }
            prev_end = end.unwrap_or(0);
            let k = decoded.key(i);
            table
                .index_prefixes
                .push(key::user_prefix(key::user_key(k)));
            let start = table.index_keys.len() as u32;
            table.index_keys.extend_from_slice(k);
            table
                .index
                .push((start, table.index_keys.len() as u32, handle));
        }
        Ok(table)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn num_blocks(&self) -> usize {
        self.index.len()
    }

    fn index_key(&self, i: usize) -> &[u8] {
        let (s, e, _) = self.index[i];
        &self.index_keys[s as usize..e as usize]
    }

    /// Reads, checks and decompresses the block at `handle`.
    fn read_contents(&self, handle: BlockHandle) -> Result<Vec<u8>> {
        self.read_stored(handle, decode_stored_block)
    }

    /// Bytes the block at `handle` takes in the file, trailer included, once the handle
    /// is known to lie within the file.
    fn stored_len(&self, handle: BlockHandle) -> Result<usize> {
        let total = handle.size.checked_add(BLOCK_TRAILER_LEN as u64);
        let end = total.and_then(|t| t.checked_add(handle.offset));
        if end.is_none_or(|e| e > self.file_size)
            || handle.size > crate::sstable::block::MAX_BLOCK_LEN as u64
        {
            return Err(Error::corruption(
                &self.path,
                handle.offset,
                "block handle points past the end of the file",
            ));
        }
        Ok(handle.size as usize + BLOCK_TRAILER_LEN)
    }

    /// Reads the stored block at `handle` and hands its bytes (contents, kind, CRC) to
    /// `f`; a reason `f` gives is reported as corruption at the block.
    fn read_stored<R>(
        &self,
        handle: BlockHandle,
        f: impl FnOnce(&[u8]) -> std::result::Result<R, String>,
    ) -> Result<R> {
        let len = self.stored_len(handle)?;
        // The stored bytes only live until they are checked and decompressed, so each
        // thread reads into one buffer it keeps, instead of allocating per block.
        READ_BUFFER.with_borrow_mut(|stored| {
            if stored.len() < len {
                stored.resize(len, 0);
            }
            let read = self
                .file
                .read_exact_at(&mut stored[..len], handle.offset)
                .map_err(|e| Error::io(&self.path, e));
            let result = read.and_then(|()| {
                f(&stored[..len]).map_err(|r| Error::corruption(&self.path, handle.offset, r))
            });
            trim(stored);
            result
        })
    }

    /// Checks and decompresses the stored bytes of the block at `handle`.
    fn block_from_stored(&self, handle: BlockHandle, stored: &[u8]) -> Result<Arc<Block>> {
        owned_block(stored)
            .map(Arc::new)
            .map_err(|r| Error::corruption(&self.path, handle.offset, r))
    }

    /// Reads, checks and decompresses the block at `handle` into a block of its own.
    fn load_block(&self, handle: BlockHandle) -> Result<Arc<Block>> {
        self.read_stored(handle, owned_block).map(Arc::new)
    }

    /// Data block `i`, from the cache when possible.
    pub fn block(&self, i: usize, fill_cache: bool) -> Result<Arc<Block>> {
        self.fetch_block(i, fill_cache, None)
    }

    /// Data block `i`, from the cache, from what `ahead` read before, or from the file,
    /// reading the blocks after it too when `ahead` says the scan is reading blocks in a
    /// row.
    fn fetch_block(
        &self,
        i: usize,
        fill_cache: bool,
        ahead: Option<&mut ReadAhead>,
    ) -> Result<Arc<Block>> {
        let handle = self.index[i].2;
        if let Some(cache) = &self.cache
            && let Some(b) = cache.get(self.number, handle.offset)
        {
            return Ok(b);
        }
        let block = match ahead {
            Some(ahead) => self.block_from_span(i, ahead)?,
            None => self.load_block(handle)?,
        };
        if fill_cache && let Some(cache) = &self.cache {
            cache.insert(self.number, handle.offset, Arc::clone(&block));
        }
        Ok(block)
    }

    /// Data block `i` from the span `ahead` holds, reading the next span first when one
    /// is due, or else from the file alone.
    fn block_from_span(&self, i: usize, ahead: &mut ReadAhead) -> Result<Arc<Block>> {
        let handle = self.index[i].2;
        if ahead.stored(handle).is_none()
            && let Some(last) = ahead.span_from(self, i)
        {
            self.read_span(i, last, ahead)?;
        }
        match ahead.stored(handle) {
            Some(stored) => self.block_from_stored(handle, stored),
            None => self.load_block(handle),
        }
    }

    /// Reads the stored bytes of blocks `first..=last` with one positional read.
    fn read_span(&self, first: usize, last: usize, ahead: &mut ReadAhead) -> Result<()> {
        let from = self.index[first].2.offset;
        let end = self.index[last].2.offset + self.stored_len(self.index[last].2)? as u64;
        let len = (end - from) as usize;
        ahead.buf.clear();
        ahead.buf.resize(len, 0);
        ahead.from = from;
        self.file
            .read_exact_at(&mut ahead.buf, from)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Index of the first block whose last key is `>= target` (`> target` when not
    /// inclusive); `num_blocks()` when there is none.
    pub fn find_block(&self, target: &[u8], inclusive: bool) -> usize {
        // Narrow down by prefix to the blocks whose last key ties with the target's
        // prefix; only those are compared in full.
        let p = key::user_prefix(key::user_key(target));
        let mut lo = self.index_prefixes.partition_point(|&q| q < p);
        let mut hi = lo + self.index_prefixes[lo..].partition_point(|&q| q == p);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let ord = key::compare(self.index_key(mid), target);
            let before = if inclusive {
                ord == Ordering::Less
            } else {
                ord != Ordering::Greater
            };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    pub fn may_contain(&self, hash: u64) -> bool {
        self.filter.may_contain(hash)
    }

    /// Newest version of `user_key` in this table visible at the sequence number `probe`
    /// was made for (`key::seek_key`); `hash` is the key's filter hash.
    pub fn get(&self, user_key: &[u8], probe: &[u8], hash: u64) -> Result<Option<Lookup>> {
        if !self.may_contain(hash) {
            return Ok(None);
        }
        let i = self.find_block(probe, true);
        if i == self.index.len() {
            return Ok(None);
        }
        let handle = self.index[i].2;
        let corrupt = |r| Error::corruption(&self.path, handle.offset, r);
        if let Some(cache) = &self.cache {
            if let Some(block) = cache.get(self.number, handle.offset) {
                return lookup(block.view(), user_key, probe).map_err(corrupt);
            }
            if cache.admit_after_miss(self.number, handle.offset) {
                let block = self.load_block(handle)?;
                cache.insert(self.number, handle.offset, Arc::clone(&block));
                return lookup(block.view(), user_key, probe).map_err(corrupt);
            }
        }
        // Not kept: decompressed into this thread's buffer, looked up, left there.
        self.read_stored(handle, |stored| {
            BLOCK_BUFFER.with_borrow_mut(|buf| {
                let found = decode_stored_block_into(stored, buf)
                    .and_then(|n| lookup(BlockView::new(&buf[..n])?, user_key, probe));
                trim(buf);
                found
            })
        })
    }

    /// Reads every block, checks every checksum, and checks that keys are well-formed,
    /// strictly ordered and agree with the index. Returns the number of entries.
    pub fn verify(&self) -> Result<u64> {
        let mut entries = 0;
        let mut prev: Option<Vec<u8>> = None;
        for i in 0..self.index.len() {
            let offset = self.index[i].2.offset;
            let block = self.block(i, false)?;
            let d = block
                .decode_all()
                .map_err(|r| Error::corruption(&self.path, offset, r))?;
            for j in 0..d.len() {
                let k = d.key(j);
                if key::parse(k).is_none() {
                    return Err(Error::corruption(
                        &self.path,
                        offset,
                        format!("entry {j} has an unknown kind"),
                    ));
                }
                if let Some(p) = &prev
                    && key::compare(p, k) != Ordering::Less
                {
                    return Err(Error::corruption(
                        &self.path,
                        offset,
                        format!("entry {j} is out of order"),
                    ));
                }
                prev = Some(k.to_vec());
                entries += 1;
            }
            if d.len() == 0 || d.key(d.len() - 1) != self.index_key(i) {
                return Err(Error::corruption(
                    &self.path,
                    offset,
                    "last key of block differs from its index entry",
                ));
            }
        }
        Ok(entries)
    }
}

/// Checks and decompresses a stored block into a block of its own.
fn owned_block(stored: &[u8]) -> std::result::Result<Block, String> {
    decode_stored_block(stored).and_then(Block::new)
}

/// The newest version of `user_key` at or before `probe` in `block`.
fn lookup(
    block: BlockView<'_>,
    user_key: &[u8],
    probe: &[u8],
) -> std::result::Result<Option<Lookup>, String> {
    let Some((k, v)) = block.seek(probe)? else {
        return Ok(None);
    };
    match key::parse(&k) {
        Some((uk, seq, kind)) if uk == user_key => Ok(Some(match kind {
            Kind::Put => Lookup::Value(seq, v.to_vec()),
            Kind::Delete => Lookup::Deleted(seq),
        })),
        Some(_) => Ok(None),
        None => Err("entry with an unknown kind".to_string()),
    }
}

/// Blocks a forward scan read from its table beyond the one it needed.
///
/// A scan that reads blocks from the file one after another (cached blocks count too)
/// reads, from the third such block on, all the blocks that fit in a span with one
/// `pread`: 16 KiB at first, doubling up to 64 KiB. One read of the kernel's page cache
/// then serves many blocks instead of one system call per block; a scan that needs a
/// block or two reads no more than those. Blocks are still decompressed one at a time,
/// as the scan reaches them.
#[derive(Default)]
struct ReadAhead {
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    from: u64,
    /// Index of the block the scan loaded last, and how many it loaded in a row.
    last: Option<usize>,
    run: usize,
    span: usize,
}

impl ReadAhead {
    const FIRST_SPAN: usize = 16 << 10;
    const MAX_SPAN: usize = 64 << 10;

    /// Notes that the scan loads block `i`.
    fn loading(&mut self, i: usize) {
        if self.last.is_some_and(|l| l + 1 == i) {
            self.run += 1;
        } else {
            self.run = 1;
            self.span = Self::FIRST_SPAN;
        }
        self.last = Some(i);
    }

    /// The stored bytes of the block at `handle`, if an earlier read brought them.
    fn stored(&self, handle: BlockHandle) -> Option<&[u8]> {
        let start = usize::try_from(handle.offset.checked_sub(self.from)?).ok()?;
        let end = start.checked_add(handle.size as usize + BLOCK_TRAILER_LEN)?;
        self.buf.get(start..end)
    }

    /// The last block of the span to read starting at block `i`, when reading ahead
    /// is due (and the span grows for next time); `None` to read block `i` alone.
    fn span_from(&mut self, table: &Table, i: usize) -> Option<usize> {
        if self.run < 3 {
            return None;
        }
        let from = table.index[i].2.offset;
        let mut last = i;
        while let Some((_, _, h)) = table.index.get(last + 1)
            && h.offset + h.size + BLOCK_TRAILER_LEN as u64 - from <= self.span as u64
        {
            last += 1;
        }
        self.span = (self.span * 2).min(Self::MAX_SPAN);
        (last > i).then_some(last)
    }
}

/// Iterates one table in a fixed direction.
pub struct TableIter {
    table: Arc<Table>,
    reverse: bool,
    fill_cache: bool,
    block_idx: usize,
    block: Option<DecodedBlock>,
    pos: usize,
    ahead: ReadAhead,
}

impl TableIter {
    pub fn new(table: Arc<Table>, reverse: bool, fill_cache: bool) -> TableIter {
        TableIter {
            table,
            reverse,
            fill_cache,
            block_idx: 0,
            block: None,
            pos: 0,
            ahead: ReadAhead::default(),
        }
    }

    fn load(&mut self, i: usize) -> Result<()> {
        let offset = self.table.index[i].2.offset;
        let ahead = if self.reverse {
            None
        } else {
            self.ahead.loading(i);
            Some(&mut self.ahead)
        };
        let b = self.table.fetch_block(i, self.fill_cache, ahead)?;
        let d = b
            .decode_all_reusing(self.block.take())
            .map_err(|r| Error::corruption(&self.table.path, offset, r))?;
        if d.len() == 0 {
            return Err(Error::corruption(
                &self.table.path,
                offset,
                "empty data block",
            ));
        }
        self.block_idx = i;
        self.block = Some(d);
        Ok(())
    }

    fn load_first_of(&mut self, i: usize) -> Result<()> {
        if i >= self.table.num_blocks() {
            self.block = None;
            return Ok(());
        }
        self.load(i)?;
        self.pos = 0;
        Ok(())
    }

    fn load_last_of(&mut self, i: Option<usize>) -> Result<()> {
        let Some(i) = i else {
            self.block = None;
            return Ok(());
        };
        self.load(i)?;
        self.pos = self.block.as_ref().map_or(0, |b| b.len() - 1);
        Ok(())
    }
}

impl InternalIter for TableIter {
    fn valid(&self) -> bool {
        self.block.is_some()
    }

    fn key(&self) -> &[u8] {
        self.block.as_ref().map_or(&[], |b| b.key(self.pos))
    }

    fn value(&self) -> &[u8] {
        self.block.as_ref().map_or(&[], |b| b.value(self.pos))
    }

    fn next(&mut self) -> Result<()> {
        let Some(b) = &self.block else { return Ok(()) };
        if self.reverse {
            if self.pos > 0 {
                self.pos -= 1;
                Ok(())
            } else {
                let prev = self.block_idx.checked_sub(1);
                self.load_last_of(prev)
            }
        } else if self.pos + 1 < b.len() {
            self.pos += 1;
            Ok(())
        } else {
            self.load_first_of(self.block_idx + 1)
        }
    }

    fn seek(&mut self, target: Option<(&[u8], bool)>) -> Result<()> {
        let n = self.table.num_blocks();
        if n == 0 {
            self.block = None;
            return Ok(());
        }
        match (target, self.reverse) {
            (None, false) => self.load_first_of(0),
            (None, true) => self.load_last_of(Some(n - 1)),
            (Some((t, inclusive)), false) => {
                let i = self.table.find_block(t, inclusive);
                self.load_first_of(i)?;
                if let Some(b) = &self.block {
                    self.pos = b.lower_bound(t, inclusive);
                    if self.pos >= b.len() {
                        self.load_first_of(i + 1)?;
                    }
                }
                Ok(())
            }
            (Some((t, inclusive)), true) => {
                let i = self.table.find_block(t, true);
                if i >= n {
                    return self.load_last_of(Some(n - 1));
                }
                self.load(i)?;
                let idx = self
                    .block
                    .as_ref()
                    .map_or(0, |b| b.lower_bound(t, !inclusive));
                if idx == 0 {
                    self.load_last_of(i.checked_sub(1))
                } else {
                    self.pos = idx - 1;
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Db, Durability, Options};

    fn kept_buffer_bytes() -> usize {
        READ_BUFFER.with_borrow(|b| b.capacity()) + BLOCK_BUFFER.with_borrow(|b| b.capacity())
    }

    #[test]
    fn reading_a_very_large_value_leaves_no_large_buffer_behind() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let large = vec![7u8; 3 << 20];
        db.put(b"large", &large, Durability::Buffered).unwrap();
        db.put(b"small", b"value", Durability::Buffered).unwrap();
        db.flush().unwrap();
        // The first get of each is a miss the block cache does not take: it goes
        // through this thread's buffers.
        assert_eq!(db.get(b"large").unwrap(), Some(large));
        assert!(kept_buffer_bytes() <= 2 * KEPT_BUFFER_BYTES);
        assert_eq!(db.get(b"small").unwrap(), Some(b"value".to_vec()));
        let kept = kept_buffer_bytes();
        assert!(kept > 0 && kept <= 2 * KEPT_BUFFER_BYTES, "{kept}");
    }
}
