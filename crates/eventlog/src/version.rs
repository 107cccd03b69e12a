//! A version: the set of tables in each level plus the global range tombstones, as of one
//! manifest edit. Readers hold an `Arc<Version>` so the files they read stay on disk
//! until they are done, however many compactions run meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::key::{self, RangeTombstone};
use crate::manifest::VersionEdit;
use crate::sstable::TableInfo;
use crate::tombstones::RangeTombstones;

/// Number of levels. Level 0 holds flushed tables whose key ranges may overlap; every
/// deeper level holds tables with disjoint key ranges, sorted by key.
pub const NUM_LEVELS: usize = 7;

/// Tables that left the table set and that no version lists any more, waiting for the
/// background thread to remove their files.
///
/// The last version listing a table can be dropped by any thread, a reader included;
/// removing the file there would put a system call (and an error to log) on a read path,
/// so the drop only queues the number.
#[derive(Debug, Default)]
pub struct ObsoleteFiles {
    numbers: Mutex<Vec<u64>>,
}

impl ObsoleteFiles {
    fn push(&self, number: u64) {
        self.numbers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(number);
    }

    pub fn is_empty(&self) -> bool {
        self.numbers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Takes the queued table numbers.
    pub fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.numbers.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One table file as the manifest knows it.
#[derive(Debug)]
pub struct TableMeta {
    pub number: u64,
    pub info: TableInfo,
    obsolete: AtomicBool,
    /// Where the number goes once the table is obsolete and unlisted; `None` for
    /// read-only opens, which must never remove files.
    removals: Option<Arc<ObsoleteFiles>>,
}

impl TableMeta {
    pub fn new(number: u64, info: TableInfo, removals: Option<Arc<ObsoleteFiles>>) -> TableMeta {
        TableMeta {
            number,
            info,
            obsolete: AtomicBool::new(false),
            removals,
        }
    }

    /// Marks the file for deletion once the last version that lists it is dropped.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    /// True when `[smallest, largest]` intersects the user-key range `[start, end]`
    /// (`None` = unbounded).
    pub fn overlaps(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> bool {
        start.is_none_or(|s| self.info.largest.as_slice() >= s)
            && end.is_none_or(|e| self.info.smallest.as_slice() <= e)
    }

    pub fn contains_key(&self, user_key: &[u8]) -> bool {
        self.info.smallest.as_slice() <= user_key && user_key <= self.info.largest.as_slice()
    }
}

impl Drop for TableMeta {
    fn drop(&mut self) {
        if let Some(removals) = &self.removals
            && self.obsolete.load(Ordering::Acquire)
        {
            removals.push(self.number);
        }
    }
}

/// The table set at one moment.
#[derive(Debug, Clone, Default)]
pub struct Version {
    pub levels: Vec<Vec<Arc<TableMeta>>>,
    /// For each level, [`key::user_prefix`] of each table's largest key: a point read
    /// binary-searches these (16 bytes a table, contiguous) before it touches any
    /// table's metadata.
    largest_prefixes: Vec<Vec<u128>>,
    pub range_tombstones: Arc<RangeTombstones>,
}

impl Version {
    pub fn empty() -> Version {
        Version {
            levels: vec![Vec::new(); NUM_LEVELS],
            largest_prefixes: vec![Vec::new(); NUM_LEVELS],
            range_tombstones: Arc::new(RangeTombstones::default()),
        }
    }

    /// Applies an edit. `make` builds metadata for newly added tables. Returns the new
    /// version and the tables that left the table set for good.
    pub fn apply(
        &self,
        edit: &VersionEdit,
        make: impl Fn(u64, &TableInfo) -> TableMeta,
    ) -> (Version, Vec<Arc<TableMeta>>) {
        let mut levels = self.levels.clone();
        let mut removed = Vec::new();
        for &(level, number) in &edit.deleted {
            let l = &mut levels[level as usize];
            if let Some(i) = l.iter().position(|t| t.number == number) {
                removed.push(l.remove(i));
            }
        }
        for (level, number, info) in &edit.added {
            let meta = match removed.iter().position(|t| t.number == *number) {
                Some(i) => removed.swap_remove(i),
                None => Arc::new(make(*number, info)),
            };
            levels[*level as usize].push(meta);
        }
        levels[0].sort_by(|a, b| {
            b.info
                .largest_seq
                .cmp(&a.info.largest_seq)
                .then(b.number.cmp(&a.number))
        });
        for l in levels.iter_mut().skip(1) {
            l.sort_by(|a, b| a.info.smallest.cmp(&b.info.smallest));
        }
        let range_tombstones =
            if edit.removed_tombstones.is_empty() && edit.added_tombstones.is_empty() {
                Arc::clone(&self.range_tombstones)
            } else {
                let mut tombstones: Vec<RangeTombstone> = self
                    .range_tombstones
                    .iter()
                    .filter(|t| !edit.removed_tombstones.contains(&t.seq))
                    .cloned()
                    .collect();
                tombstones.extend(edit.added_tombstones.iter().cloned());
                Arc::new(RangeTombstones::new(tombstones))
            };
        (
            Version {
                largest_prefixes: levels
                    .iter()
                    .map(|l| {
                        l.iter()
                            .map(|t| key::user_prefix(&t.info.largest))
                            .collect()
                    })
                    .collect(),
                levels,
                range_tombstones,
            },
            removed,
        )
    }

    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|t| t.info.file_size).sum()
    }

    /// Tables of `level` (≥ 1) whose range intersects `[start, end]`.
    pub fn overlapping(
        &self,
        level: usize,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
    ) -> Vec<Arc<TableMeta>> {
        self.levels[level]
            .iter()
            .filter(|t| t.overlaps(start, end))
            .cloned()
            .collect()
    }

    /// The table in sorted level `level` (≥ 1) whose range holds `user_key`.
    pub fn find_in_level(&self, level: usize, user_key: &[u8]) -> Option<&Arc<TableMeta>> {
        let l = &self.levels[level];
        let i = match self.largest_prefixes.get(level) {
            Some(prefixes) if prefixes.len() == l.len() => {
                let p = key::user_prefix(user_key);
                // Tables whose largest key is certainly below the key, then the few
                // whose prefix ties with it, compared in full.
                let first = prefixes.partition_point(|&q| q < p);
                let ties = prefixes[first..].partition_point(|&q| q == p);
                first
                    + l[first..first + ties]
                        .partition_point(|t| t.info.largest.as_slice() < user_key)
            }
            _ => l.partition_point(|t| key::compare_user(&t.info.largest, user_key).is_lt()),
        };
        l.get(i)
            .filter(|t| key::compare_user(&t.info.smallest, user_key).is_le())
    }

    /// All table numbers, for finding orphan files.
    pub fn live_numbers(&self) -> Vec<u64> {
        self.levels.iter().flatten().map(|t| t.number).collect()
    }

    /// Checks the level invariants (used by tests and `verify`).
    pub fn check_invariants(&self) -> Result<(), String> {
        for (level, tables) in self.levels.iter().enumerate().skip(1) {
            for w in tables.windows(2) {
                if w[0].info.largest >= w[1].info.smallest {
                    return Err(format!(
                        "level {level}: tables {} and {} overlap",
                        w[0].number, w[1].number
                    ));
                }
            }
        }
        Ok(())
    }
}
