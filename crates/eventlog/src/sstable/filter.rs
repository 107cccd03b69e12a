//! Bloom filter over the user keys of one table.
//!
//! Layout: `bits[m / 8] | k: u8`. Probe `i` (0 ≤ i < k) sets bit `⌊x_i · m / 2^64⌋` with
//! `x_i = h + i·δ (mod 2^64)`, where `h` is [`hash64`] of the user key and
//! `δ = h.rotate_right(17) | 1` (a multiply-shift instead of a division). A point read that
//! misses the filter skips the table without touching its index or blocks.

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

/// Builds a filter for the given key hashes.
pub fn build(hashes: &[u64], bits_per_key: u32) -> Vec<u8> {
    let k = ((bits_per_key as f64 * 0.69) as u32).clamp(1, 30);
    let bits = (hashes.len() * bits_per_key as usize).max(64);
    let bytes = bits.div_ceil(8);
    let bits = bytes * 8;
    let mut out = vec![0u8; bytes + 1];
    for &h in hashes {
        let delta = h.rotate_right(17) | 1;
        let mut x = h;
        for _ in 0..k {
            let bit = reduce(x, bits as u64);
            out[bit / 8] |= 1 << (bit % 8);
            x = x.wrapping_add(delta);
        }
    }
    out[bytes] = k as u8;
    out
}

/// False only if the key is certainly absent. A malformed filter answers true, so damage
/// costs speed, never correctness.
pub fn may_contain(filter: &[u8], h: u64) -> bool {
    if filter.len() < 2 {
        return true;
    }
    let bytes = filter.len() - 1;
    let k = filter[bytes];
    if k == 0 || k > 30 {
        return true;
    }
    let bits = (bytes * 8) as u64;
    let delta = h.rotate_right(17) | 1;
    let mut x = h;
    for _ in 0..k {
        let bit = reduce(x, bits);
        if filter[bit / 8] & (1 << (bit % 8)) == 0 {
            return false;
        }
        x = x.wrapping_add(delta);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let hashes: Vec<u64> = (0..10_000u32).map(|i| hash64(&i.to_be_bytes())).collect();
        let f = build(&hashes, 10);
        assert!(hashes.iter().all(|&h| may_contain(&f, h)));
        let fp = (10_000..20_000u32)
            .filter(|i| may_contain(&f, hash64(&i.to_be_bytes())))
            .count();
        assert!(fp < 300, "false positives {fp}");
    }
}
