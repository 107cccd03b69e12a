//! Range tombstones indexed for lookups by key.
//!
//! Every read of a key asks whether a range tombstone hides the version it found, and
//! every compaction asks it of every entry. Scanning all tombstones for each question
//! costs reads in proportion to how many children were ever forgotten, so the list is
//! cut into *fragments*: the key space between consecutive tombstone boundaries, each
//! with the sorted sequence numbers of the tombstones spanning it. A question is then two
//! binary searches, one over the fragments and one over their sequence numbers.

use std::ops::Deref;

use crate::key::RangeTombstone;

/// A set of range tombstones, ordered by sequence number, with an index by key.
#[derive(Debug, Clone, Default)]
pub struct RangeTombstones {
    list: Vec<RangeTombstone>,
    /// Sorted, distinct start and end keys of all tombstones.
    bounds: Vec<Vec<u8>>,
    /// `seqs[i]`: sequence numbers (ascending) of the tombstones that cover the keys in
    /// `[bounds[i], bounds[i + 1])`.
    seqs: Vec<Vec<u64>>,
}

impl RangeTombstones {
    /// Indexes `list`; empty ranges (`start >= end`) are kept in the list but hide nothing.
    pub fn new(mut list: Vec<RangeTombstone>) -> RangeTombstones {
        list.sort_by_key(|t| t.seq);
        let mut bounds: Vec<Vec<u8>> = list
            .iter()
            .filter(|t| t.start < t.end)
            .flat_map(|t| [t.start.clone(), t.end.clone()])
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let fragments = bounds.len().saturating_sub(1);
        let mut seqs = vec![Vec::new(); fragments];
        for t in list.iter().filter(|t| t.start < t.end) {
            let first = bounds.partition_point(|b| *b < t.start);
            let end = bounds.partition_point(|b| *b < t.end);
            for s in &mut seqs[first..end] {
                s.push(t.seq);
            }
        }
        RangeTombstones { list, bounds, seqs }
    }

    /// True when a tombstone hides the entry `(user_key, entry_seq)` from a reader at
    /// `snapshot_seq`: it covers the key and `entry_seq < tombstone seq <= snapshot_seq`.
    pub fn covers(&self, user_key: &[u8], entry_seq: u64, snapshot_seq: u64) -> bool {
        if self.seqs.is_empty() {
            return false;
        }
        let i = self.bounds.partition_point(|b| b.as_slice() <= user_key);
        if i == 0 || i > self.seqs.len() {
            return false;
        }
        let seqs = &self.seqs[i - 1];
        let j = seqs.partition_point(|s| *s <= entry_seq);
        j < seqs.len() && seqs[j] <= snapshot_seq
    }
}

impl Deref for RangeTombstones {
    type Target = [RangeTombstone];

    fn deref(&self) -> &[RangeTombstone] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(start: &str, end: &str, seq: u64) -> RangeTombstone {
        RangeTombstone {
            start: start.as_bytes().to_vec(),
            end: end.as_bytes().to_vec(),
            seq,
        }
    }

    #[test]
    fn answers_like_a_scan_of_the_list() {
        let list = vec![
            t("b", "f", 10),
            t("d", "k", 5),
            t("a", "c", 20),
            t("x", "x", 30),
            t("m", "p", 15),
        ];
        let index = RangeTombstones::new(list.clone());
        let keys = [
            "", "a", "b", "bb", "c", "d", "e", "f", "j", "k", "m", "o", "p", "x", "z",
        ];
        for k in keys {
            for entry_seq in 0..25 {
                for snapshot_seq in [0, 4, 5, 9, 10, 14, 15, 19, 20, 40] {
                    let scanned = list
                        .iter()
                        .any(|t| t.covers(k.as_bytes(), entry_seq, snapshot_seq));
                    assert_eq!(
                        index.covers(k.as_bytes(), entry_seq, snapshot_seq),
                        scanned,
                        "key {k:?} entry {entry_seq} snapshot {snapshot_seq}"
                    );
                }
            }
        }
        assert_eq!(index.len(), 5);
        assert!(!RangeTombstones::default().covers(b"a", 0, 100));
    }
}
