//! Usage as the union of active intervals.
//!
//! A child's day is spent once, however many screens are on: a minute watched on the
//! tablet while the phone also plays music is one minute of the child's day. So usage is
//! not a sum of reports but the measure of the union of every reported interval, from
//! every device. The same rule makes repeated, overlapping and growing reports harmless:
//! reporting `[10:00, 10:20)` and later `[10:00, 10:30)` counts 30 minutes, not 50.
//!
//! Intervals are half-open, in whole Unix seconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use std::ops::Bound::Included;

/// A set of disjoint, non-touching half-open intervals `[start, end)` of Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSet {
    /// start → end; no two spans overlap or touch.
    spans: BTreeMap<i64, i64>,
}

impl UsageSet {
    /// An empty set.
    pub fn new() -> UsageSet {
        UsageSet::default()
    }

    /// Add `[start, end)`, merging with whatever it overlaps or touches. Empty or
    /// reversed intervals add nothing.
    pub fn insert(&mut self, start: i64, end: i64) {
        if end <= start {
            return;
        }
        let mut merged_start = start;
        let mut merged_end = end;
        if let Some((&s, &e)) = self.spans.range(..=start).next_back()
            && e >= start
        {
            merged_start = s;
            merged_end = merged_end.max(e);
        }
        let swallowed: Vec<i64> = self
            .spans
            .range((Included(merged_start), Included(merged_end)))
            .map(|(&s, _)| s)
            .collect();
        for s in swallowed {
            if let Some(e) = self.spans.remove(&s) {
                merged_end = merged_end.max(e);
            }
        }
        self.spans.insert(merged_start, merged_end);
    }

    /// Seconds of usage within `[from, to)`.
    pub fn seconds_between(&self, from: i64, to: i64) -> i64 {
        self.clipped(from, to).map(|(s, e)| e - s).sum()
    }

    /// The earliest instant `t` in `[from, to]` by which `amount` seconds of usage have
    /// accumulated since `from`, or `None` if fewer than `amount` lie in `[from, to)`.
    ///
    /// This is when the child ran out of time, given the day's credit as `amount`.
    pub fn instant_reaching(&self, from: i64, to: i64, amount: i64) -> Option<i64> {
        if amount <= 0 {
            return Some(from);
        }
        let mut seen = 0;
        for (s, e) in self.clipped(from, to) {
            if seen + (e - s) >= amount {
                return Some(s + (amount - seen));
            }
            seen += e - s;
        }
        None
    }

    /// The spans intersecting `[from, to)`, cut to it, in order.
    pub fn clipped(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        let to = to.max(from);
        let before = self.spans.range(..from).next_back().map(|(&s, &e)| (s, e));
        let after = self.spans.range(from..to).map(|(&s, &e)| (s, e));
        before
            .into_iter()
            .chain(after)
            .map(move |(s, e)| (s.max(from), e.min(to)))
            .filter(|(s, e)| s < e)
    }

    /// All spans, in order.
    pub fn spans(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.spans.iter().map(|(&s, &e)| (s, e))
    }

    /// Number of disjoint spans.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether no usage is recorded.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Drop everything before `second` (cutting a span that straddles it), so a
    /// long-running projection does not grow without bound.
    pub fn forget_before(&mut self, second: i64) {
        let mut keep = self.spans.split_off(&second);
        if let Some((_, &e)) = self.spans.range(..second).next_back()
            && e > second
        {
            keep.insert(second, e);
        }
        self.spans = keep;
    }

    /// The span that contains `second`, if any.
    pub fn span_containing(&self, second: i64) -> Option<(i64, i64)> {
        self.spans
            .range(..=second)
            .next_back()
            .filter(|&(_, &e)| e > second)
            .map(|(&s, &e)| (s, e))
    }
}

#[cfg(test)]
mod tests;
