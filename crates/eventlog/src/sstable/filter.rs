//! Bloom filter over the user keys of one table.
//!
//! Tables are written with a *blocked* filter: `lines[n] | k | 0x80`, where each line is
//! 64 bytes (512 bits, one CPU cache line). A key's `k` bits all lie in line
//! `⌊h · n / 2^64⌋`; probe `i` (0 ≤ i < k) sets bit `y_i >> 55` of that line (bit `j` is
//! bit `j mod 8` of byte `⌊j / 8⌋`), with `y_i = g + i·ε (mod 2^64)`,
//! `g = h.rotate_left(32) ^ M` (`M` = 0x9e3779b97f4a7c15) and `ε = g.rotate_right(21) | 1`,
//! `h` being [`hash64`] of the user key. A lookup of an absent key, the common case
//! in a level that does not hold it, then costs one cache miss instead of `k`.
//!
//! The older *standard* layout, `bits[m / 8] | k` (`k` ≤ 30), is still read: probe `i` tests
//! bit `⌊x_i · m / 2^64⌋` with `x_i = h + i·δ` and `δ = h.rotate_right(17) | 1`.

/// 64-bit hash of a user key, part of the file format (changing it changes every filter).
pub fn hash64(data: &[u8]) -> u64 {
    const M: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = 0x2545_f491_4f6c_dd1d ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        h = (h ^ fmix(u64::from_le_bytes(b)))
            .rotate_left(27)
            .wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h ^ fmix(u64::from_le_bytes(b)))
            .rotate_left(27)
            .wrapping_mul(M);
    }
    fmix(h)
}

fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Maps `x` uniformly onto `0..n`.
fn reduce(x: u64, n: u64) -> usize {
    ((u128::from(x) * u128::from(n)) >> 64) as usize
}

/// Bytes in one line of a blocked filter: one cache line.
const LINE_BYTES: usize = 64;

/// Marks a blocked filter in its last byte. A reader that only knows the standard layout
/// takes it for an impossible `k` and answers "maybe", never a wrong "absent".
const BLOCKED: u8 = 0x80;

/// The second hash of a blocked filter, which places the bits inside the line.
fn line_hash(h: u64) -> (u64, u64) {
    let g = h.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    (g, g.rotate_right(21) | 1)
}

/// Sets the `k` bits of the key with hash `h` in its line.
fn set_in_line(line: &mut [u8], h: u64, k: u32) {
    let (mut y, step) = line_hash(h);
    for _ in 0..k {
        let bit = (y >> 55) as usize;
        line[bit / 8] |= 1 << (bit % 8);
        y = y.wrapping_add(step);
    }
}

/// Whether all `k` bits of the key with hash `h` are set in its line.
#[inline]
fn all_in_line(line: &[u8], h: u64, k: u32) -> bool {
    let (mut y, step) = line_hash(h);
    (0..k).all(|_| {
        let bit = (y >> 55) as usize;
        y = y.wrapping_add(step);
        line[bit / 8] & (1 << (bit % 8)) != 0
    })
}

fn probes(bits_per_key: u32) -> u32 {
    ((bits_per_key as f64 * 0.69) as u32).clamp(1, 30)
}

/// Builds a blocked filter for the given key hashes.
pub fn build(hashes: &[u64], bits_per_key: u32) -> Vec<u8> {
    let k = probes(bits_per_key);
    let lines = (hashes.len() * bits_per_key as usize)
        .div_ceil(LINE_BYTES * 8)
        .max(1);
    let mut out = vec![0u8; lines * LINE_BYTES + 2];
    for &h in hashes {
        let line = reduce(h, lines as u64) * LINE_BYTES;
        set_in_line(&mut out[line..line + LINE_BYTES], h, k);
    }
    out[lines * LINE_BYTES] = k as u8;
    out[lines * LINE_BYTES + 1] = BLOCKED;
    out
}

/// One cache line of a blocked filter, aligned so a probe touches exactly one line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Line([u8; LINE_BYTES]);

/// Probes per key of a [`MemFilter`]: the best for the ~10 bits per key it is sized for.
const MEM_FILTER_PROBES: u32 = 6;

/// A blocked filter filled key by key: a memtable's. A point read then skips a memtable
/// that certainly lacks the key instead of searching its tree, which costs a cache miss
/// per node and was a fifth of an absent-key read. It is sized once, from the memtable's
/// budget (one bit per 16 bytes, about 10 per key for 100-byte values); a memtable that
/// outgrows it (one replayed from several WALs) only gets more false "maybe"s.
pub struct MemFilter {
    lines: Vec<Line>,
}

impl MemFilter {
    /// A filter for a memtable of about `memtable_bytes`.
    pub fn for_memtable_bytes(memtable_bytes: usize) -> MemFilter {
        let lines = (memtable_bytes / 16 / (LINE_BYTES * 8)).max(1);
        MemFilter {
            lines: vec![Line([0; LINE_BYTES]); lines],
        }
    }

    /// Adds the key with hash `h`.
    pub fn insert(&mut self, h: u64) {
        let n = self.lines.len() as u64;
        set_in_line(&mut self.lines[reduce(h, n)].0, h, MEM_FILTER_PROBES);
    }

    /// False only if no key with hash `h` was added.
    #[inline]
    pub fn may_contain(&self, h: u64) -> bool {
        let line = &self.lines[reduce(h, self.lines.len() as u64)].0;
        all_in_line(line, h, MEM_FILTER_PROBES)
    }
}

/// A table's filter, parsed once when the table is opened.
pub enum Filter {
    /// No filter, or one that does not parse: every key may be present.
    None,
    Blocked {
        lines: Vec<Line>,
        k: u32,
    },
    Standard {
        bits: Vec<u8>,
        k: u32,
    },
}

impl Filter {
    /// Parses a stored filter block. A malformed filter becomes [`Filter::None`], so
    /// damage costs speed, never correctness.
    pub fn parse(block: Vec<u8>) -> Filter {
        let n = block.len();
        if n >= LINE_BYTES + 2
            && block[n - 1] == BLOCKED
            && (n - 2).is_multiple_of(LINE_BYTES)
            && (1..=30).contains(&block[n - 2])
        {
            let lines = block[..n - 2]
                .chunks_exact(LINE_BYTES)
                .map(|c| {
                    let mut line = Line([0; LINE_BYTES]);
                    line.0.copy_from_slice(c);
                    line
                })
                .collect();
            return Filter::Blocked {
                lines,
                k: u32::from(block[n - 2]),
            };
        }
        if n >= 2 && (1..=30).contains(&block[n - 1]) {
            let k = u32::from(block[n - 1]);
            let mut bits = block;
            bits.truncate(n - 1);
            return Filter::Standard { bits, k };
        }
        Filter::None
    }

    /// False only if the key with hash `h` is certainly absent.
    #[inline]
    pub fn may_contain(&self, h: u64) -> bool {
        match self {
            Filter::None => true,
            Filter::Blocked { lines, k } => {
                all_in_line(&lines[reduce(h, lines.len() as u64)].0, h, *k)
            }
            Filter::Standard { bits, k } => {
                let m = (bits.len() * 8) as u64;
                let delta = h.rotate_right(17) | 1;
                let mut x = h;
                for _ in 0..*k {
                    let bit = reduce(x, m);
                    if bits[bit / 8] & (1 << (bit % 8)) == 0 {
                        return false;
                    }
                    x = x.wrapping_add(delta);
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard layout as older versions of the engine wrote it.
    fn build_standard(hashes: &[u64], bits_per_key: u32) -> Vec<u8> {
        let k = probes(bits_per_key);
        let bytes = (hashes.len() * bits_per_key as usize).max(64).div_ceil(8);
        let mut out = vec![0u8; bytes + 1];
        for &h in hashes {
            let delta = h.rotate_right(17) | 1;
            let mut x = h;
            for _ in 0..k {
                let bit = reduce(x, (bytes * 8) as u64);
                out[bit / 8] |= 1 << (bit % 8);
                x = x.wrapping_add(delta);
            }
        }
        out[bytes] = k as u8;
        out
    }

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let hashes: Vec<u64> = (0..10_000u32).map(|i| hash64(&i.to_be_bytes())).collect();
        for f in [
            Filter::parse(build(&hashes, 10)),
            Filter::parse(build_standard(&hashes, 10)),
        ] {
            assert!(!matches!(f, Filter::None));
            assert!(hashes.iter().all(|&h| f.may_contain(h)));
            let fp = (10_000..20_000u32)
                .filter(|i| f.may_contain(hash64(&i.to_be_bytes())))
                .count();
            assert!(fp < 300, "false positives {fp}");
        }
    }

    #[test]
    fn a_memtable_filter_never_misses_a_key_and_passes_few_others() {
        let mut f = MemFilter::for_memtable_bytes(16 << 20);
        let hashes: Vec<u64> = (0..100_000u32).map(|i| hash64(&i.to_be_bytes())).collect();
        for &h in &hashes {
            f.insert(h);
        }
        assert!(hashes.iter().all(|&h| f.may_contain(h)));
        let fp = (100_000..200_000u32)
            .filter(|i| f.may_contain(hash64(&i.to_be_bytes())))
            .count();
        assert!(fp < 3_000, "false positives {fp} in 100,000");
        assert!(!MemFilter::for_memtable_bytes(0).may_contain(hashes[0]));
    }

    #[test]
    fn a_standard_only_reader_takes_a_blocked_filter_for_maybe() {
        let blocked = build(&[1, 2, 3], 10);
        // Such a reader takes the last byte for `k` and answers "maybe" above 30.
        assert!(blocked.last().is_some_and(|k| *k > 30));
    }

    #[test]
    fn a_malformed_filter_lets_everything_through() {
        for bytes in [vec![], vec![5], vec![0, 0, 0], vec![1, 2, 0xff]] {
            let f = Filter::parse(bytes);
            assert!(f.may_contain(1) && f.may_contain(u64::MAX));
        }
    }
}
