//! Blocks: the unit of reading, caching, checksumming and compression.
//!
//! Inside a block, entries are `shared: varint | unshared: varint | value_len: varint |
//! key suffix | value`, where `shared` is the number of leading key bytes equal to the
//! previous entry's key. Every `restart_interval` entries the full key is stored
//! (`shared = 0`) and its offset is recorded in the restart array at the end of the
//! block, so a lookup can binary-search the restarts and decode only a few entries.
//!
//! On disk each block is followed by a 5-byte trailer: `kind: u8` (0 raw, 1 LZ4) and
//! `crc32c(contents | kind): u32 LE`. A mismatch is reported with file and offset.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::coding::{get_varint, put_varint, read_u32};
use crate::key;
use crate::options::Compression;

/// Bytes after each stored block: kind and CRC.
pub const BLOCK_TRAILER_LEN: usize = 5;
pub const KIND_RAW: u8 = 0;
pub const KIND_LZ4: u8 = 1;

/// Upper bound on an uncompressed block, so a corrupt length cannot make us allocate
/// gigabytes.
pub const MAX_BLOCK_LEN: usize = crate::limits::MAX_BLOCK_BYTES;

/// Position and stored size (without trailer) of a block in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHandle {
    pub offset: u64,
    pub size: u64,
}

impl BlockHandle {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.offset);
        put_varint(out, self.size);
    }

    pub fn decode(buf: &[u8]) -> Option<BlockHandle> {
        let mut pos = 0;
        let offset = get_varint(buf, &mut pos)?;
        let size = get_varint(buf, &mut pos)?;
        (pos == buf.len()).then_some(BlockHandle { offset, size })
    }
}

/// Accumulates entries of one block.
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    counter: usize,
    restart_interval: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    pub fn new(restart_interval: usize) -> BlockBuilder {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            counter: 0,
            restart_interval,
            last_key: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Size of the block if finished now.
    pub fn estimated_size(&self) -> usize {
        self.buf.len() + self.restarts.len() * 4 + 4
    }

    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let mut shared = 0;
        if self.counter < self.restart_interval {
            let max = self.last_key.len().min(key.len());
            while shared < max && self.last_key[shared] == key[shared] {
                shared += 1;
            }
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
        }
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(&key[shared..]);
        self.counter += 1;
    }

    /// Appends the restart array and returns the block contents; resets the builder.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts.clear();
        self.restarts.push(0);
        self.counter = 0;
        self.last_key.clear();
        out
    }
}

/// Compresses block contents and appends contents, kind and CRC to `out`. Returns the
/// stored size (without trailer).
pub fn encode_stored_block(out: &mut Vec<u8>, contents: &[u8], compression: Compression) -> usize {
    let start = out.len();
    let mut kind = KIND_RAW;
    if compression == Compression::Lz4 && contents.len() >= 64 {
        out.extend_from_slice(&(contents.len() as u32).to_le_bytes());
        let bound = lz4_flex::block::get_maximum_output_size(contents.len());
        let at = out.len();
        out.resize(at + bound, 0);
        match lz4_flex::block::compress_into(contents, &mut out[at..]) {
            Ok(n) if 4 + n < contents.len() - contents.len() / 8 => {
                out.truncate(at + n);
                kind = KIND_LZ4;
            }
            _ => out.truncate(start),
        }
    }
    if kind == KIND_RAW {
        out.extend_from_slice(contents);
    }
    let size = out.len() - start;
    out.push(kind);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    size
}

/// Checks and decompresses a stored block (`contents | kind | crc`). Errors are
/// human-readable reasons; the caller adds file and offset.
pub fn decode_stored_block(stored: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let n = decode_stored_block_into(stored, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Like [`decode_stored_block`], into `out[..n]`, returning `n`. `out` only grows, and
/// only the part it grows by is zeroed, so a buffer reused from block to block is not
/// cleared before each decompression.
pub fn decode_stored_block_into(stored: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
    if stored.len() < BLOCK_TRAILER_LEN {
        return Err(format!(
            "block of {} bytes is shorter than its trailer",
            stored.len()
        ));
    }
    let n = stored.len() - BLOCK_TRAILER_LEN;
    let expected = read_u32(stored, n + 1).unwrap_or(0);
    let actual = crc32c::crc32c(&stored[..n + 1]);
    if expected != actual {
        return Err(format!(
            "block checksum mismatch (stored {expected:#010x}, computed {actual:#010x})"
        ));
    }
    let payload = &stored[..n];
    // The decompressed length, and the LZ4 input when there is one.
    let (raw_len, lz4) = match stored[n] {
        KIND_RAW => (payload.len(), None),
        KIND_LZ4 => {
            let raw_len = read_u32(payload, 0).ok_or("LZ4 block without length")? as usize;
            if raw_len > MAX_BLOCK_LEN || raw_len > payload.len().saturating_mul(256) {
                return Err(format!("LZ4 block claims an impossible length {raw_len}"));
            }
            (raw_len, Some(&payload[4..]))
        }
        other => return Err(format!("unknown block kind {other}")),
    };
    if out.len() < raw_len {
        out.resize(raw_len, 0);
    }
    let dest = &mut out[..raw_len];
    let Some(compressed) = lz4 else {
        dest.copy_from_slice(payload);
        return Ok(raw_len);
    };
    match lz4_flex::block::decompress_into(compressed, dest) {
        Ok(got) if got == raw_len => Ok(raw_len),
        Ok(got) => Err(format!(
            "LZ4 block decompressed to {got} bytes, expected {raw_len}"
        )),
        Err(e) => Err(format!("LZ4 block does not decompress: {e}")),
    }
}

/// A found entry: owned key, value borrowed from the block.
pub type SeekHit<'a> = Option<(Vec<u8>, &'a [u8])>;

/// A decompressed, validated block that owns its bytes: what the block cache holds.
pub struct Block {
    data: Vec<u8>,
    restarts_offset: usize,
    num_restarts: usize,
}

/// A validated block over borrowed bytes: a cached [`Block`], or a block that a point
/// read decompressed into its thread's buffer and does not keep.
#[derive(Clone, Copy)]
pub struct BlockView<'a> {
    data: &'a [u8],
    restarts_offset: usize,
    num_restarts: usize,
}

/// Where one entry's key and value sit.
struct RawEntry {
    shared: usize,
    key_start: usize,
    key_end: usize,
    value_end: usize,
}

impl Block {
    /// Validates the restart array. Entries are validated as they are decoded.
    pub fn new(data: Vec<u8>) -> Result<Block, String> {
        let view = BlockView::new(&data)?;
        let (restarts_offset, num_restarts) = (view.restarts_offset, view.num_restarts);
        Ok(Block {
            data,
            restarts_offset,
            num_restarts,
        })
    }

    pub fn size(&self) -> usize {
        self.data.len()
    }

    pub fn view(&self) -> BlockView<'_> {
        BlockView {
            data: &self.data,
            restarts_offset: self.restarts_offset,
            num_restarts: self.num_restarts,
        }
    }

    /// Decodes every entry, for iteration in either direction.
    pub fn decode_all(self: &Arc<Block>) -> Result<DecodedBlock, String> {
        self.decode_all_reusing(None)
    }

    /// Like [`Block::decode_all`], reusing the buffers of `previous` (a block an iterator
    /// is done with), so walking a table does not allocate per block.
    pub fn decode_all_reusing(
        self: &Arc<Block>,
        previous: Option<DecodedBlock>,
    ) -> Result<DecodedBlock, String> {
        let (mut keys, mut ents, mut k) = match previous {
            Some(p) => (p.keys, p.ents, p.scratch),
            None => (
                Vec::with_capacity(self.data.len() / 2),
                Vec::new(),
                Vec::new(),
            ),
        };
        keys.clear();
        ents.clear();
        let view = self.view();
        let mut pos = 0;
        while pos < view.restarts_offset {
            let (vs, ve) = view.decode_at(pos, &mut k)?;
            if key::parse(&k).is_none() {
                return Err(format!("key at block offset {pos} has no valid trailer"));
            }
            let ks = keys.len();
            keys.extend_from_slice(&k);
            ents.push([ks as u32, keys.len() as u32, vs as u32, ve as u32]);
            pos = ve;
        }
        Ok(DecodedBlock {
            block: Arc::clone(self),
            keys,
            ents,
            scratch: k,
        })
    }
}

impl<'a> BlockView<'a> {
    /// Validates the restart array. Entries are validated as they are decoded.
    pub fn new(data: &'a [u8]) -> Result<BlockView<'a>, String> {
        let n = data.len();
        let num = read_u32(data, n.wrapping_sub(4)).ok_or("block shorter than its restart count")?
            as usize;
        let restarts_bytes = num
            .checked_mul(4)
            .and_then(|b| b.checked_add(4))
            .ok_or("restart count overflows")?;
        if num == 0 || restarts_bytes > n {
            return Err(format!(
                "block of {n} bytes cannot hold {num} restart points"
            ));
        }
        let restarts_offset = n - restarts_bytes;
        let view = BlockView {
            data,
            restarts_offset,
            num_restarts: num,
        };
        for i in 0..num {
            if view.restart(i) > restarts_offset {
                return Err(format!("restart point {i} lies outside the entries"));
            }
        }
        Ok(view)
    }

    fn restart(&self, i: usize) -> usize {
        read_u32(self.data, self.restarts_offset + 4 * i).unwrap_or(u32::MAX) as usize
    }

    fn raw_entry(&self, pos: usize) -> Result<RawEntry, String> {
        let limit = &self.data[..self.restarts_offset];
        let mut p = pos;
        let bad = || format!("entry at block offset {pos} is malformed");
        let shared = get_varint(limit, &mut p).ok_or_else(bad)? as usize;
        let unshared = get_varint(limit, &mut p).ok_or_else(bad)? as usize;
        let vlen = get_varint(limit, &mut p).ok_or_else(bad)? as usize;
        let key_end = p.checked_add(unshared).ok_or_else(bad)?;
        let value_end = key_end.checked_add(vlen).ok_or_else(bad)?;
        if value_end > self.restarts_offset {
            return Err(bad());
        }
        Ok(RawEntry {
            shared,
            key_start: p,
            key_end,
            value_end,
        })
    }

    /// Decodes the entry at `pos`, rebuilding its key in `key` (which holds the previous
    /// key). Returns the value range and the offset of the next entry.
    fn decode_at(&self, pos: usize, key: &mut Vec<u8>) -> Result<(usize, usize), String> {
        let e = self.raw_entry(pos)?;
        if e.shared > key.len() {
            return Err(format!(
                "entry at block offset {pos} shares more bytes than the previous key has"
            ));
        }
        key.truncate(e.shared);
        key.extend_from_slice(&self.data[e.key_start..e.key_end]);
        Ok((e.key_end, e.value_end))
    }

    fn restart_key(&self, i: usize) -> Result<&'a [u8], String> {
        let pos = self.restart(i);
        let e = self.raw_entry(pos)?;
        if e.shared != 0 {
            return Err(format!(
                "restart entry at block offset {pos} is prefix-compressed"
            ));
        }
        Ok(&self.data[e.key_start..e.key_end])
    }

    /// First entry whose internal key is `>= target`, as (key, value).
    pub fn seek(&self, target: &[u8]) -> Result<SeekHit<'a>, String> {
        // Last restart whose key is < target.
        let (mut lo, mut hi) = (0usize, self.num_restarts);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if key::compare(self.restart_key(mid)?, target) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let mut pos = self.restart(lo);
        let mut k = Vec::with_capacity(target.len() + 16);
        while pos < self.restarts_offset {
            let (vs, ve) = self.decode_at(pos, &mut k)?;
            if k.len() < key::TRAILER_LEN {
                return Err(format!(
                    "key at block offset {pos} is shorter than its trailer"
                ));
            }
            if key::compare(&k, target) != Ordering::Less {
                return Ok(Some((k, &self.data[vs..ve])));
            }
            pos = ve;
        }
        Ok(None)
    }
}

/// Every entry of a block with keys materialised; values point into the block.
pub struct DecodedBlock {
    block: Arc<Block>,
    keys: Vec<u8>,
    ents: Vec<[u32; 4]>,
    /// The key being decoded, kept for reuse.
    scratch: Vec<u8>,
}

impl DecodedBlock {
    pub fn len(&self) -> usize {
        self.ents.len()
    }

    pub fn key(&self, i: usize) -> &[u8] {
        let e = &self.ents[i];
        &self.keys[e[0] as usize..e[1] as usize]
    }

    pub fn value(&self, i: usize) -> &[u8] {
        let e = &self.ents[i];
        &self.block.data[e[2] as usize..e[3] as usize]
    }

    /// Index of the first entry `>= target` (or `> target` when not inclusive).
    pub fn lower_bound(&self, target: &[u8], inclusive: bool) -> usize {
        let (mut lo, mut hi) = (0, self.ents.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let ord = key::compare(self.key(mid), target);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Kind, internal_key};

    #[test]
    fn build_seek_decode() {
        let mut b = BlockBuilder::new(4);
        let keys: Vec<Vec<u8>> = (0..50u32)
            .map(|i| internal_key(format!("key{i:04}").as_bytes(), 7, Kind::Put))
            .collect();
        for k in &keys {
            b.add(k, b"value");
        }
        let contents = b.finish();
        let mut stored = Vec::new();
        encode_stored_block(&mut stored, &contents, Compression::Lz4);
        let block = Arc::new(Block::new(decode_stored_block(&stored).unwrap()).unwrap());
        let (k, v) = block.view().seek(&keys[17]).unwrap().unwrap();
        assert_eq!(k, keys[17]);
        assert_eq!(v, b"value");
        let d = block.decode_all().unwrap();
        assert_eq!(d.len(), 50);
        assert_eq!(d.key(49), &keys[49][..]);
        assert_eq!(d.lower_bound(&keys[3], false), 4);
        let mut bad = stored.clone();
        bad[2] ^= 0x40;
        assert!(decode_stored_block(&bad).is_err());
    }
}
