//! Internal keys: the user key followed by an 8-byte trailer `(seq << 8) | kind`.
//!
//! Every version of a user key is kept apart by its sequence number, so a snapshot can see
//! the state as of its sequence and compaction can tell which versions are still needed.
//! Internal keys sort by user key ascending, then by trailer *descending*, so the newest
//! version of a key comes first in a forward scan.

use std::cmp::Ordering;

/// Largest sequence number the 56 bits of the trailer can hold.
pub const MAX_SEQ: u64 = (1 << 56) - 1;

/// Length of the trailer appended to every user key.
pub const TRAILER_LEN: usize = 8;

/// What an internal entry means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Point tombstone: the key is deleted as of this sequence.
    Delete = 0,
    /// A value.
    Put = 1,
}

impl Kind {
    pub fn from_u8(byte: u8) -> Option<Kind> {
        match byte {
            0 => Some(Kind::Delete),
            1 => Some(Kind::Put),
            _ => None,
        }
    }
}

/// Packs sequence and kind into the trailer value.
pub fn pack_trailer(seq: u64, kind: Kind) -> u64 {
    (seq << 8) | kind as u64
}

/// Appends user key and trailer to `out`.
pub fn append_internal_key(out: &mut Vec<u8>, user_key: &[u8], seq: u64, kind: Kind) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&pack_trailer(seq, kind).to_le_bytes());
}

/// Builds an owned internal key.
pub fn internal_key(user_key: &[u8], seq: u64, kind: Kind) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    append_internal_key(&mut out, user_key, seq, kind);
    out
}

/// The key that sorts before every version of `user_key` visible at `seq`.
pub fn seek_key(user_key: &[u8], seq: u64) -> Vec<u8> {
    internal_key(user_key, seq, Kind::Put)
}

/// [`seek_key`] for a point read, on the stack when the user key has at most 56 bytes:
/// a get needs it for a moment, and an allocation would cost a noticeable part of a get
/// that the filters answer.
pub struct PointProbe {
    inline: [u8; 64],
    len: usize,
    spilled: Vec<u8>,
}

impl PointProbe {
    pub fn new(user_key: &[u8], seq: u64) -> PointProbe {
        let len = user_key.len() + TRAILER_LEN;
        let mut probe = PointProbe {
            inline: [0; 64],
            len,
            spilled: Vec::new(),
        };
        if len <= probe.inline.len() {
            probe.inline[..user_key.len()].copy_from_slice(user_key);
            probe.inline[user_key.len()..len]
                .copy_from_slice(&pack_trailer(seq, Kind::Put).to_le_bytes());
        } else {
            probe.spilled = seek_key(user_key, seq);
        }
        probe
    }
}

impl std::ops::Deref for PointProbe {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }
}

/// The user-key part. Callers only pass keys that were validated to be at least
/// [`TRAILER_LEN`] long.
pub fn user_key(ikey: &[u8]) -> &[u8] {
    &ikey[..ikey.len().saturating_sub(TRAILER_LEN)]
}

/// The trailer value.
pub fn trailer(ikey: &[u8]) -> u64 {
    let n = ikey.len();
    if n < TRAILER_LEN {
        return 0;
    }
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&ikey[n - TRAILER_LEN..]);
    u64::from_le_bytes(bytes)
}

/// Splits an internal key into (user key, seq, kind); `None` if malformed.
pub fn parse(ikey: &[u8]) -> Option<(&[u8], u64, Kind)> {
    if ikey.len() < TRAILER_LEN {
        return None;
    }
    let t = trailer(ikey);
    Some((user_key(ikey), t >> 8, Kind::from_u8((t & 0xff) as u8)?))
}

/// The internal-key order: user key ascending, then trailer descending.
///
/// Every seek and merge step compares keys, and most pairs differ in their first 16
/// bytes (for the hub: child and time), so when both user keys have 16 bytes those are
/// compared first as two big-endian integers, without a call to `memcmp`.
#[inline]
pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
    if let (Some(pa), Some(pb)) = (prefix16(a), prefix16(b))
        && pa != pb
    {
        return pa.cmp(&pb);
    }
    user_key(a)
        .cmp(user_key(b))
        .then_with(|| trailer(b).cmp(&trailer(a)))
}

/// The order of user keys (bytewise), with the same 16-byte shortcut as [`compare`].
#[inline]
pub fn compare_user(a: &[u8], b: &[u8]) -> Ordering {
    if a.len() >= 16 && b.len() >= 16 {
        let pa = u128::from_be_bytes(a[..16].try_into().unwrap_or([0; 16]));
        let pb = u128::from_be_bytes(b[..16].try_into().unwrap_or([0; 16]));
        if pa != pb {
            return pa.cmp(&pb);
        }
    }
    a.cmp(b)
}

/// The first 16 bytes of a user key, zero-padded, as a big-endian integer. Order
/// preserving though not strictly: `user_prefix(a) < user_prefix(b)` implies `a < b`, and
/// equal prefixes say nothing. Binary searches over arrays of these touch a fraction of
/// the memory that searching the keys themselves would.
#[inline]
pub fn user_prefix(user_key: &[u8]) -> u128 {
    let mut bytes = [0u8; 16];
    let n = user_key.len().min(16);
    bytes[..n].copy_from_slice(&user_key[..n]);
    u128::from_be_bytes(bytes)
}

/// The first 16 bytes of an internal key's user key as a big-endian integer (whose
/// order is the bytes' order), when the user key has that many.
#[inline]
fn prefix16(ikey: &[u8]) -> Option<u128> {
    if ikey.len() < 16 + TRAILER_LEN {
        return None;
    }
    let bytes: [u8; 16] = ikey[..16].try_into().ok()?;
    Some(u128::from_be_bytes(bytes))
}

/// A range tombstone: every version of every key in `[start, end)` with a sequence below
/// `seq` is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTombstone {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub seq: u64,
}

impl RangeTombstone {
    /// True when this tombstone hides the entry `(user_key, entry_seq)` for a reader at
    /// `snapshot_seq`.
    pub fn covers(&self, user_key: &[u8], entry_seq: u64, snapshot_seq: u64) -> bool {
        self.seq > entry_seq
            && self.seq <= snapshot_seq
            && self.start.as_slice() <= user_key
            && user_key < self.end.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_shortcut_orders_like_the_bytes() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut keys = Vec::new();
        for _ in 0..400 {
            // Short alphabets and lengths around 16 make equal prefixes common.
            let len = (next() % 26) as usize;
            let uk: Vec<u8> = (0..len).map(|_| b'a' + (next() % 2) as u8).collect();
            keys.push(internal_key(&uk, next() % 4, Kind::Put));
        }
        for a in &keys {
            for b in &keys {
                let slow = user_key(a)
                    .cmp(user_key(b))
                    .then_with(|| trailer(b).cmp(&trailer(a)));
                assert_eq!(compare(a, b), slow, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn order_is_user_key_then_newest_first() {
        let a1 = internal_key(b"a", 1, Kind::Put);
        let a2 = internal_key(b"a", 2, Kind::Put);
        let ab = internal_key(b"ab", 9, Kind::Put);
        assert_eq!(compare(&a2, &a1), Ordering::Less);
        assert_eq!(compare(&a1, &ab), Ordering::Less);
        assert_eq!(parse(&a2), Some((&b"a"[..], 2, Kind::Put)));
    }
}
