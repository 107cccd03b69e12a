//! Write batches: a list of puts, deletes and range deletes applied atomically.
//!
//! A batch is kept in its WAL encoding from the start, so committing it is a memcpy into
//! the group's WAL record rather than a second serialisation.

use crate::coding::{get_bytes, put_bytes, read_u32, read_u64};

pub(crate) const OP_DELETE: u8 = 0;
pub(crate) const OP_PUT: u8 = 1;
pub(crate) const OP_DELETE_RANGE: u8 = 2;

/// Size of the WAL payload header: first sequence (u64) and operation count (u32).
pub(crate) const HEADER_LEN: usize = crate::limits::BATCH_HEADER_BYTES;

/// A set of changes that become visible together and survive a crash together.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub(crate) ops: Vec<u8>,
    pub(crate) count: usize,
    pub(crate) user_bytes: u64,
}

/// One decoded operation, borrowing from the encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// Set `key` to `value`.
    Put(&'a [u8], &'a [u8]),
    /// Delete `key`.
    Delete(&'a [u8]),
    /// Delete every key in `[start, end)`.
    DeleteRange(&'a [u8], &'a [u8]),
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch::default()
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.ops.push(OP_PUT);
        put_bytes(&mut self.ops, key);
        put_bytes(&mut self.ops, value);
        self.count += 1;
        self.user_bytes += (key.len() + value.len()) as u64;
    }

    /// Deletes `key` (writes a tombstone).
    pub fn delete(&mut self, key: &[u8]) {
        self.ops.push(OP_DELETE);
        put_bytes(&mut self.ops, key);
        self.count += 1;
        self.user_bytes += key.len() as u64;
    }

    /// Deletes every key `k` with `start <= k < end` (writes a range tombstone). An empty
    /// range (`start >= end`) deletes nothing but still takes a sequence number.
    pub fn delete_range(&mut self, start: &[u8], end: &[u8]) {
        self.ops.push(OP_DELETE_RANGE);
        put_bytes(&mut self.ops, start);
        put_bytes(&mut self.ops, end);
        self.count += 1;
        self.user_bytes += (start.len() + end.len()) as u64;
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every operation, keeping the allocation.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.count = 0;
        self.user_bytes = 0;
    }

    /// Decoded operations in order.
    pub fn iter(&self) -> OpIter<'_> {
        OpIter {
            buf: &self.ops,
            pos: 0,
            remaining: self.count,
        }
    }
}

/// Iterator over encoded operations. Yields `Err(offset)` once on malformed bytes.
pub struct OpIter<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: usize,
}

impl<'a> Iterator for OpIter<'a> {
    type Item = Result<Op<'a>, usize>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            if self.pos != self.buf.len() {
                let at = self.pos;
                self.pos = self.buf.len();
                return Some(Err(at));
            }
            return None;
        }
        self.remaining -= 1;
        let at = self.pos;
        let decoded = (|| {
            let tag = *self.buf.get(self.pos)?;
            self.pos += 1;
            let a = get_bytes(self.buf, &mut self.pos)?;
            match tag {
                OP_PUT => Some(Op::Put(a, get_bytes(self.buf, &mut self.pos)?)),
                OP_DELETE => Some(Op::Delete(a)),
                OP_DELETE_RANGE => Some(Op::DeleteRange(a, get_bytes(self.buf, &mut self.pos)?)),
                _ => None,
            }
        })();
        match decoded {
            Some(op) => Some(Ok(op)),
            None => {
                self.remaining = 0;
                self.pos = self.buf.len();
                Some(Err(at))
            }
        }
    }
}

/// A decoded WAL payload: the first sequence number and the operations, which take
/// consecutive sequence numbers.
pub struct DecodedPayload<'a> {
    pub first_seq: u64,
    pub count: u32,
    pub ops: &'a [u8],
}

impl DecodedPayload<'_> {
    pub fn iter(&self) -> OpIter<'_> {
        OpIter {
            buf: self.ops,
            pos: 0,
            remaining: self.count as usize,
        }
    }
}

/// Writes the payload header for a group of batches.
pub(crate) fn encode_header(out: &mut Vec<u8>, first_seq: u64, count: u32) {
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
}

/// Splits a WAL payload into header and operation bytes. The operations themselves are
/// checked while iterating.
pub fn decode_payload(payload: &[u8]) -> Option<DecodedPayload<'_>> {
    let first_seq = read_u64(payload, 0)?;
    let count = read_u32(payload, 8)?;
    Some(DecodedPayload {
        first_seq,
        count,
        ops: &payload[HEADER_LEN..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip() {
        let mut b = WriteBatch::new();
        b.put(b"k", b"v");
        b.delete(b"d");
        b.delete_range(b"a", b"z");
        let ops: Vec<_> = b.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            ops,
            vec![
                Op::Put(b"k", b"v"),
                Op::Delete(b"d"),
                Op::DeleteRange(b"a", b"z")
            ]
        );
        let mut payload = Vec::new();
        encode_header(&mut payload, 7, 3);
        payload.extend_from_slice(&b.ops);
        let d = decode_payload(&payload).unwrap();
        assert_eq!(d.first_seq, 7);
        assert_eq!(d.iter().count(), 3);
        // Truncated ops are reported, never misread.
        payload.pop();
        let d = decode_payload(&payload).unwrap();
        assert!(d.iter().any(|r| r.is_err()));
    }
}
