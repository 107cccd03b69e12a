//! Iterators: one per source (memtable, table, level), a merging iterator over all of
//! them, and [`DbIter`], which turns internal entries into the user's view at a snapshot
//! (newest visible version, tombstones and range tombstones applied, bounds enforced).
//!
//! Every internal iterator runs in one direction fixed at creation. A user iterator never
//! changes direction, and fixing it keeps the merge simple and fast.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

use crate::cache::TableCache;
use crate::error::{Error, Result};
use crate::key::{self, Kind};
use crate::memtable::{Entry, MemTable};
use crate::sstable::TableIter;
use crate::tombstones::RangeTombstones;
use crate::version::{TableMeta, Version};

/// A sorted stream of internal entries in one direction.
pub trait InternalIter: Send {
    fn valid(&self) -> bool;
    fn key(&self) -> &[u8];
    fn value(&self) -> &[u8];
    /// Moves one entry in the iterator's direction.
    fn next(&mut self) -> Result<()>;
    /// Positions at the first entry in iteration order that is at or past `target`
    /// (forward: `>= target`, reverse: `<= target`; `false` makes it strict). `None`
    /// positions at the first entry in iteration order.
    fn seek(&mut self, target: Option<(&[u8], bool)>) -> Result<()>;
}

/// Entry handles copied by a seek; each refill copies four times as many, up to
/// `MEM_CHUNK_MAX`. A scan often takes nothing or little from the memtable (its data lies
/// in tables), and copying a full chunk of cold entries would cost more than the scan's
/// share of the memtable.
const MEM_CHUNK_FIRST: usize = 16;
const MEM_CHUNK_MAX: usize = 256;

/// Iterates a memtable by copying short runs of entry handles.
pub struct MemIter {
    mem: Arc<MemTable>,
    reverse: bool,
    buf: Vec<Entry>,
    pos: usize,
    /// Size of the last chunk asked for; a full chunk means more may follow.
    chunk: usize,
}

impl MemIter {
    pub fn new(mem: Arc<MemTable>, reverse: bool) -> MemIter {
        MemIter {
            mem,
            reverse,
            buf: Vec::new(),
            pos: 0,
            chunk: MEM_CHUNK_FIRST,
        }
    }
}

impl InternalIter for MemIter {
    fn valid(&self) -> bool {
        self.pos < self.buf.len()
    }
    fn key(&self) -> &[u8] {
        self.buf[self.pos].ikey()
    }
    fn value(&self) -> &[u8] {
        self.buf[self.pos].value()
    }
    fn next(&mut self) -> Result<()> {
        self.pos += 1;
        if self.pos == self.buf.len() && self.buf.len() == self.chunk {
            let last = self.buf[self.pos - 1];
            let mut buf = std::mem::take(&mut self.buf);
            self.chunk = (self.chunk * 4).min(MEM_CHUNK_MAX);
            self.mem.chunk(
                Bound::Excluded(last.ikey()),
                self.reverse,
                self.chunk,
                &mut buf,
            );
            self.buf = buf;
            self.pos = 0;
        }
        Ok(())
    }
    fn seek(&mut self, target: Option<(&[u8], bool)>) -> Result<()> {
        let bound = match target {
            None => Bound::Unbounded,
            Some((t, true)) => Bound::Included(t),
            Some((t, false)) => Bound::Excluded(t),
        };
        let mut buf = std::mem::take(&mut self.buf);
        self.chunk = MEM_CHUNK_FIRST;
        self.mem.chunk(bound, self.reverse, self.chunk, &mut buf);
        self.buf = buf;
        self.pos = 0;
        Ok(())
    }
}

/// The tables a [`LevelIter`] walks.
enum LevelTables {
    /// One level of a version, shared rather than copied: every scan starts an iterator
    /// per level, and copying a level of hundreds of tables costs two atomic operations
    /// per table.
    Level(Arc<Version>, usize),
    /// A list of its own (a compaction's inputs).
    List(Vec<Arc<TableMeta>>),
}

impl LevelTables {
    fn get(&self) -> &[Arc<TableMeta>] {
        match self {
            LevelTables::Level(v, level) => &v.levels[*level],
            LevelTables::List(tables) => tables,
        }
    }
}

/// Iterates a sorted level (disjoint tables), opening one table at a time.
pub struct LevelIter {
    tables: LevelTables,
    cache: Arc<TableCache>,
    reverse: bool,
    fill_cache: bool,
    idx: usize,
    cur: Option<TableIter>,
}

impl LevelIter {
    pub fn new(
        tables: Vec<Arc<TableMeta>>,
        cache: Arc<TableCache>,
        reverse: bool,
        fill_cache: bool,
    ) -> LevelIter {
        LevelIter {
            tables: LevelTables::List(tables),
            cache,
            reverse,
            fill_cache,
            idx: 0,
            cur: None,
        }
    }

    /// Iterates level `level` (≥ 1) of `version`.
    pub fn over_level(
        version: Arc<Version>,
        level: usize,
        cache: Arc<TableCache>,
        reverse: bool,
        fill_cache: bool,
    ) -> LevelIter {
        LevelIter {
            tables: LevelTables::Level(version, level),
            cache,
            reverse,
            fill_cache,
            idx: 0,
            cur: None,
        }
    }

    fn open(&mut self, idx: usize, target: Option<(&[u8], bool)>) -> Result<()> {
        self.idx = idx;
        let t = &self.tables.get()[idx];
        let table = self.cache.get(t.number, t.info.file_size)?;
        let mut it = TableIter::new(table, self.reverse, self.fill_cache);
        it.seek(target)?;
        self.cur = Some(it);
        Ok(())
    }

    /// Moves to following tables until one yields an entry.
    fn skip_empty(&mut self) -> Result<()> {
        while self.cur.as_ref().is_some_and(|c| !c.valid()) {
            let next = if self.reverse {
                self.idx.checked_sub(1)
            } else {
                Some(self.idx + 1)
            };
            match next.filter(|&i| i < self.tables.get().len()) {
                Some(i) => self.open(i, None)?,
                None => self.cur = None,
            }
        }
        Ok(())
    }
}

impl InternalIter for LevelIter {
    fn valid(&self) -> bool {
        self.cur.as_ref().is_some_and(|c| c.valid())
    }
    fn key(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[], |c| c.key())
    }
    fn value(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[], |c| c.value())
    }
    fn next(&mut self) -> Result<()> {
        if let Some(c) = &mut self.cur {
            c.next()?;
        }
        self.skip_empty()
    }
    fn seek(&mut self, target: Option<(&[u8], bool)>) -> Result<()> {
        self.cur = None;
        let tables = self.tables.get();
        if tables.is_empty() {
            return Ok(());
        }
        let idx = match (target, self.reverse) {
            (None, false) => 0,
            (None, true) => tables.len() - 1,
            (Some((t, _)), false) => {
                let uk = key::user_key(t);
                let i = tables.partition_point(|m| key::compare_user(&m.info.largest, uk).is_lt());
                if i == tables.len() {
                    return Ok(());
                }
                i
            }
            (Some((t, _)), true) => {
                let uk = key::user_key(t);
                let i = tables.partition_point(|m| key::compare_user(&m.info.smallest, uk).is_le());
                if i == 0 {
                    return Ok(());
                }
                i - 1
            }
        };
        self.open(idx, target)?;
        self.skip_empty()
    }
}

/// Merges sorted children into one sorted stream.
///
/// Besides the child holding the current entry it remembers the runner-up, the child
/// that would come next if the current one moved past it. Data usually sits in one level
/// and long runs come from one child, so after a step one comparison with the runner-up
/// (which did not move) usually settles the order, instead of one per child.
///
/// A merge that ends at a bound ([`MergingIter::end_at`]) leaves out children already
/// past it: a range inside one level then runs with no runner-up at all, where the
/// memtables' and other levels' entries beyond the range would otherwise be compared
/// with at every step.
pub struct MergingIter {
    children: Vec<Box<dyn InternalIter>>,
    reverse: bool,
    current: Option<usize>,
    runner_up: Option<usize>,
    end: Bound<Vec<u8>>,
}

impl MergingIter {
    pub fn new(children: Vec<Box<dyn InternalIter>>, reverse: bool) -> MergingIter {
        MergingIter {
            children,
            reverse,
            current: None,
            runner_up: None,
            end: Bound::Unbounded,
        }
    }

    /// Makes the merge end at user key bound `end` (the upper bound going forward, the
    /// lower going in reverse): the reader stops at the first entry past it, so no child
    /// whose entry lies past it needs to take part. Set before the first seek.
    pub fn end_at(&mut self, end: Bound<Vec<u8>>) {
        self.end = end;
    }

    /// True when child `i`'s entry lies past the end bound.
    fn past_end(&self, i: usize) -> bool {
        key::parse(self.children[i].key())
            .is_some_and(|(uk, _, _)| beyond(uk, &self.end, self.reverse))
    }

    /// Index of the child the current entry comes from.
    pub fn current_child(&self) -> Option<usize> {
        self.current
    }

    /// True when child `a`'s entry comes strictly before child `b`'s.
    fn before(&self, a: usize, b: usize) -> bool {
        let ord = key::compare(self.children[a].key(), self.children[b].key());
        if self.reverse {
            ord == Ordering::Greater
        } else {
            ord == Ordering::Less
        }
    }

    fn find_current(&mut self) {
        let (mut best, mut second): (Option<usize>, Option<usize>) = (None, None);
        for i in 0..self.children.len() {
            if !self.children[i].valid() || self.past_end(i) {
                continue;
            }
            match best {
                None => best = Some(i),
                Some(b) if self.before(i, b) => {
                    second = best;
                    best = Some(i);
                }
                Some(_) => {
                    if second.is_none_or(|s| self.before(i, s)) {
                        second = Some(i);
                    }
                }
            }
        }
        self.current = best;
        self.runner_up = second;
    }
}

impl InternalIter for MergingIter {
    fn valid(&self) -> bool {
        self.current.is_some()
    }
    fn key(&self) -> &[u8] {
        self.current.map_or(&[], |i| self.children[i].key())
    }
    fn value(&self) -> &[u8] {
        self.current.map_or(&[], |i| self.children[i].value())
    }
    fn next(&mut self) -> Result<()> {
        if let Some(i) = self.current {
            self.children[i].next()?;
            if self.children[i].valid() && self.runner_up.is_none_or(|r| self.before(i, r)) {
                return Ok(());
            }
        }
        self.find_current();
        Ok(())
    }
    fn seek(&mut self, target: Option<(&[u8], bool)>) -> Result<()> {
        for c in &mut self.children {
            c.seek(target)?;
        }
        self.find_current();
        Ok(())
    }
}

/// True when user key `uk` lies past `end`, the bound a walk in the given direction
/// ends at (an upper bound going forward, a lower one in reverse).
fn beyond(uk: &[u8], end: &Bound<Vec<u8>>, reverse: bool) -> bool {
    let (e, inclusive) = match end {
        Bound::Unbounded => return false,
        Bound::Included(e) => (e, true),
        Bound::Excluded(e) => (e, false),
    };
    let ord = key::compare_user(uk, e);
    match (reverse, inclusive) {
        (false, true) => ord.is_gt(),
        (false, false) => ord.is_ge(),
        (true, true) => ord.is_lt(),
        (true, false) => ord.is_le(),
    }
}

/// Builds the merged internal iterator over memtables and a version.
pub fn merged(
    mems: &[Arc<MemTable>],
    version: &Arc<Version>,
    cache: &Arc<TableCache>,
    reverse: bool,
    fill_cache: bool,
) -> MergingIter {
    let mut children: Vec<Box<dyn InternalIter>> = Vec::new();
    for m in mems {
        children.push(Box::new(MemIter::new(Arc::clone(m), reverse)));
    }
    for t in &version.levels[0] {
        children.push(Box::new(LevelIter::new(
            vec![Arc::clone(t)],
            Arc::clone(cache),
            reverse,
            fill_cache,
        )));
    }
    for level in 1..version.levels.len() {
        if !version.levels[level].is_empty() {
            children.push(Box::new(LevelIter::over_level(
                Arc::clone(version),
                level,
                Arc::clone(cache),
                reverse,
                fill_cache,
            )));
        }
    }
    MergingIter::new(children, reverse)
}

/// Which way a [`DbIter`] walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending keys.
    Forward,
    /// Descending keys.
    Reverse,
}

/// The user's view of a key range at one snapshot: `(key, value)` pairs in key order
/// (ascending or descending), each key at most once, deleted keys left out.
///
/// The iterator keeps the files it reads alive, so it stays consistent while writes,
/// flushes and compactions continue.
pub struct DbIter {
    inner: MergingIter,
    snapshot_seq: u64,
    tombstones: Arc<RangeTombstones>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
    done: bool,
    last_key: Option<Vec<u8>>,
    pending: Option<(Vec<u8>, u64, Kind, Vec<u8>)>,
    _version: Arc<Version>,
}

impl DbIter {
    pub(crate) fn new(
        mut inner: MergingIter,
        version: Arc<Version>,
        snapshot_seq: u64,
        tombstones: Arc<RangeTombstones>,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        direction: Direction,
    ) -> Result<DbIter> {
        let reverse = direction == Direction::Reverse;
        inner.end_at(if reverse {
            lower.clone()
        } else {
            upper.clone()
        });
        let target = if reverse {
            match &upper {
                Bound::Unbounded => None,
                Bound::Included(u) => Some((key::internal_key(u, 0, Kind::Delete), true)),
                Bound::Excluded(u) => Some((key::internal_key(u, key::MAX_SEQ, Kind::Put), false)),
            }
        } else {
            match &lower {
                Bound::Unbounded => None,
                Bound::Included(l) => Some((key::internal_key(l, key::MAX_SEQ, Kind::Put), true)),
                Bound::Excluded(l) => Some((key::internal_key(l, 0, Kind::Delete), false)),
            }
        };
        inner.seek(target.as_ref().map(|(k, inc)| (k.as_slice(), *inc)))?;
        Ok(DbIter {
            inner,
            snapshot_seq,
            tombstones,
            lower,
            upper,
            reverse,
            done: false,
            last_key: None,
            pending: None,
            _version: version,
        })
    }

    fn past_end(&self, uk: &[u8]) -> bool {
        let end = if self.reverse {
            &self.lower
        } else {
            &self.upper
        };
        beyond(uk, end, self.reverse)
    }

    fn visible(&self, uk: &[u8], seq: u64, kind: Kind) -> bool {
        kind == Kind::Put && !self.tombstones.covers(uk, seq, self.snapshot_seq)
    }

    fn step_forward(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut item = None;
        self.step_forward_with(&mut |k, v| item = Some((k.to_vec(), v.to_vec())))?;
        Ok(item)
    }

    /// Moves to the next visible entry and shows it to `visit` while its bytes are still
    /// in the block (or memtable) they live in; returns false at the end.
    fn step_forward_with(&mut self, visit: &mut dyn FnMut(&[u8], &[u8])) -> Result<bool> {
        while self.inner.valid() {
            let k = self.inner.key();
            let Some((uk, seq, kind)) = key::parse(k) else {
                return Err(Error::corruption(
                    "<iterator>",
                    0,
                    "entry without a valid trailer",
                ));
            };
            if self.past_end(uk) {
                return Ok(false);
            }
            if seq > self.snapshot_seq || self.last_key.as_deref() == Some(uk) {
                self.inner.next()?;
                continue;
            }
            let last = self.last_key.get_or_insert_with(Vec::new);
            last.clear();
            last.extend_from_slice(uk);
            let visible = self.visible(uk, seq, kind);
            if visible {
                visit(uk, self.inner.value());
            }
            self.inner.next()?;
            if visible {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Shows every remaining `(key, value)` to `visit`, borrowed, and returns how many
    /// there were. The same entries as iterating, without copying each key and value
    /// into vectors of their own: for folds over long ranges.
    pub fn for_each_borrowed(mut self, mut visit: impl FnMut(&[u8], &[u8])) -> Result<u64> {
        let mut seen = 0;
        if self.reverse {
            for item in self.by_ref() {
                let (k, v) = item?;
                visit(&k, &v);
                seen += 1;
            }
            return Ok(seen);
        }
        while !self.done && self.step_forward_with(&mut visit)? {
            seen += 1;
        }
        self.done = true;
        Ok(seen)
    }

    fn step_reverse(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        loop {
            let cur = if self.inner.valid() {
                let Some((uk, seq, kind)) = key::parse(self.inner.key()) else {
                    return Err(Error::corruption(
                        "<iterator>",
                        0,
                        "entry without a valid trailer",
                    ));
                };
                if self.past_end(uk) {
                    None
                } else {
                    Some((uk, seq, kind))
                }
            } else {
                None
            };
            let differs = match (&self.pending, &cur) {
                (Some(p), Some((uk, _, _))) => p.0.as_slice() != *uk,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if differs {
                if let Some((k, seq, kind, v)) = self.pending.take()
                    && self.visible(&k, seq, kind)
                {
                    return Ok(Some((k, v)));
                }
                continue;
            }
            let Some((uk, seq, kind)) = cur else {
                return Ok(None);
            };
            if seq <= self.snapshot_seq {
                let value = self.inner.value();
                match &mut self.pending {
                    Some(p) => {
                        p.1 = seq;
                        p.2 = kind;
                        p.3.clear();
                        p.3.extend_from_slice(value);
                    }
                    None => self.pending = Some((uk.to_vec(), seq, kind, value.to_vec())),
                }
            }
            self.inner.next()?;
        }
    }
}

impl Iterator for DbIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = if self.reverse {
            self.step_reverse()
        } else {
            self.step_forward()
        };
        match r {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
