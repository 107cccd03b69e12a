//! Length-framed, checksummed records: the framing shared by the WAL and the manifest.
//!
//! Layout of one record: `len: u32 LE | crc: u32 LE | payload[len]`, where `crc` is the
//! CRC32C of the four length bytes followed by the payload. Covering the length means a
//! flipped length bit is caught instead of making the reader skip to a wrong place.
//! A reader stops at the first record that is cut short or fails its checksum; nothing
//! after that point is returned, so a torn tail can never yield half a batch.

use std::path::{Path, PathBuf};

use crate::coding::read_u32;
use crate::error::{Error, Result};
use crate::fs::{FileSystem, WritableFile};

/// Bytes of framing before each payload.
pub const RECORD_HEADER_LEN: usize = 8;

/// Largest payload a record may carry (see `limits`); anything longer is treated as
/// corrupt.
pub const MAX_RECORD_LEN: usize = crate::limits::MAX_RECORD_BYTES;

fn record_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload)
}

/// Appends one framed record to `out`.
pub fn encode_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len_bytes = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&record_crc(len_bytes, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Why reading stopped before the end of the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The last record is cut short (a crash while writing it).
    Torn,
    /// A record failed its checksum or carries an impossible length.
    Corrupt,
}

/// Where and why record reading stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// Offset of the first byte that is not part of a whole, valid record.
    pub offset: u64,
    pub reason: StopReason,
}

/// Iterates the whole, valid records in `bytes`, then reports where it stopped.
pub struct RecordReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    stop: Option<Stop>,
}

impl<'a> RecordReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        RecordReader {
            bytes,
            pos: 0,
            stop: None,
        }
    }

    /// Offset just past the last valid record returned so far.
    pub fn valid_len(&self) -> u64 {
        self.pos as u64
    }

    /// Set once reading ended early; `None` if every byte belonged to a valid record.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }
}

impl<'a> Iterator for RecordReader<'a> {
    /// `(offset of the record, payload)`
    type Item = (u64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.stop.is_some() || self.pos >= self.bytes.len() {
            return None;
        }
        let start = self.pos;
        let rest = self.bytes.len() - start;
        let stop = |reason| {
            Some(Stop {
                offset: start as u64,
                reason,
            })
        };
        if rest < RECORD_HEADER_LEN {
            self.stop = stop(StopReason::Torn);
            return None;
        }
        let len = read_u32(self.bytes, start).unwrap_or(0) as usize;
        let crc = read_u32(self.bytes, start + 4).unwrap_or(0);
        if len > MAX_RECORD_LEN {
            self.stop = stop(StopReason::Corrupt);
            return None;
        }
        if rest - RECORD_HEADER_LEN < len {
            // Could be a torn write, or a corrupted length pointing past the end. Both
            // end the readable prefix here.
            self.stop = stop(StopReason::Torn);
            return None;
        }
        let payload = &self.bytes[start + RECORD_HEADER_LEN..start + RECORD_HEADER_LEN + len];
        if record_crc((len as u32).to_le_bytes(), payload) != crc {
            self.stop = stop(StopReason::Corrupt);
            return None;
        }
        self.pos = start + RECORD_HEADER_LEN + len;
        Some((start as u64, payload))
    }
}

/// Appends framed records to a file. Used by the WAL and the manifest.
pub struct RecordWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    len: u64,
    dirty: bool,
    scratch: Vec<u8>,
}

impl RecordWriter {
    /// Creates a new, empty file (failing if it exists). Its name is not yet durable:
    /// the caller syncs the directory before anything depends on it.
    pub fn create(fs: &dyn FileSystem, path: &Path) -> Result<RecordWriter> {
        let file = fs.create(path).map_err(|e| Error::io(path, e))?;
        Ok(RecordWriter {
            file,
            path: path.to_path_buf(),
            len: 0,
            dirty: false,
            scratch: Vec::new(),
        })
    }

    /// Appends one record with a single `write` call; returns the bytes written.
    pub fn add(&mut self, payload: &[u8]) -> Result<u64> {
        self.scratch.clear();
        encode_record(&mut self.scratch, payload);
        self.file
            .append(&self.scratch)
            .map_err(|e| Error::io(&self.path, e))?;
        let n = self.scratch.len() as u64;
        self.dirty = true;
        self.len += n;
        if self.scratch.capacity() > 4 << 20 {
            self.scratch = Vec::new();
        }
        Ok(n)
    }

    /// Appends one record whose payload is `buf[RECORD_HEADER_LEN..]`; the first
    /// `RECORD_HEADER_LEN` bytes of `buf` are overwritten with the header. Saves copying
    /// a large payload. Returns the bytes written.
    pub fn add_in_place(&mut self, buf: &mut [u8]) -> Result<u64> {
        let payload_len = buf.len() - RECORD_HEADER_LEN;
        let len_bytes = (payload_len as u32).to_le_bytes();
        let crc = record_crc(len_bytes, &buf[RECORD_HEADER_LEN..]);
        buf[..4].copy_from_slice(&len_bytes);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        self.file
            .append(buf)
            .map_err(|e| Error::io(&self.path, e))?;
        self.dirty = true;
        self.len += buf.len() as u64;
        Ok(buf.len() as u64)
    }

    /// `fdatasync`: the records written so far survive a power cut.
    pub fn sync(&mut self) -> Result<()> {
        if self.dirty {
            self.file
                .sync_data()
                .map_err(|e| Error::io(&self.path, e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// True when records were written since the last sync.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_stops_at_torn_and_corrupt_records() {
        let mut buf = Vec::new();
        encode_record(&mut buf, b"one");
        encode_record(&mut buf, b"two");
        let whole = buf.len();
        let got: Vec<_> = RecordReader::new(&buf).map(|(_, p)| p.to_vec()).collect();
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
        for cut in 0..whole {
            let mut r = RecordReader::new(&buf[..cut]);
            let n = r.by_ref().count();
            assert!(n <= 1);
            if cut > 0 && cut != 11 {
                assert!(r.stop().is_some(), "cut {cut}");
            }
        }
        let mut bad = buf.clone();
        bad[20] ^= 1;
        let mut r = RecordReader::new(&bad);
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(r.stop().map(|s| s.reason), Some(StopReason::Corrupt));
    }
}
