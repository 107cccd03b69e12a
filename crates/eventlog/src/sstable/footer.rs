//! The fixed 48-byte footer at the end of every table.
//!
//! `index: offset u64, size u64 | filter: offset u64, size u64 | format_version: u32 |
//! crc32c of the preceding 36 bytes: u32 | magic: u64`, all little-endian.

use crate::coding::{read_u32, read_u64};
use crate::sstable::block::BlockHandle;

pub const FOOTER_LEN: usize = 48;
/// "EVLOGSST" read as a little-endian u64.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"EVLOGSST");
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub index: BlockHandle,
    pub filter: BlockHandle,
}

impl Footer {
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        out[0..8].copy_from_slice(&self.index.offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.index.size.to_le_bytes());
        out[16..24].copy_from_slice(&self.filter.offset.to_le_bytes());
        out[24..32].copy_from_slice(&self.filter.size.to_le_bytes());
        out[32..36].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32c::crc32c(&out[..36]);
        out[36..40].copy_from_slice(&crc.to_le_bytes());
        out[40..48].copy_from_slice(&TABLE_MAGIC.to_le_bytes());
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Footer, String> {
        if buf.len() != FOOTER_LEN {
            return Err(format!(
                "footer must be {FOOTER_LEN} bytes, got {}",
                buf.len()
            ));
        }
        let magic = read_u64(buf, 40).unwrap_or(0);
        if magic != TABLE_MAGIC {
            return Err(format!("bad table magic {magic:#018x}"));
        }
        let crc = read_u32(buf, 36).unwrap_or(0);
        if crc != crc32c::crc32c(&buf[..36]) {
            return Err("footer checksum mismatch".to_string());
        }
        let version = read_u32(buf, 32).unwrap_or(0);
        if version != FORMAT_VERSION {
            return Err(format!("unsupported table format version {version}"));
        }
        let h = |at| BlockHandle {
            offset: read_u64(buf, at).unwrap_or(0),
            size: read_u64(buf, at + 8).unwrap_or(0),
        };
        Ok(Footer {
            index: h(0),
            filter: h(16),
        })
    }
}
