//! Compaction: choosing what to merge, merging it, and cutting the output into tables.
//!
//! Leveled compaction with two refinements that matter for time-ordered keys:
//!
//! * **Precise overlap.** A table of the next level is merged only if an input really
//!   holds a key inside its range (checked by seeking the inputs), not merely because the
//!   input's `[smallest, largest]` spans it. New events of 50 children each land after that
//!   child's old events, i.e. in the gaps between next-level tables, so most next-level
//!   tables are left alone.
//! * **Gap-aligned output.** Output tables are cut wherever an untouched next-level table
//!   sits between two output keys, and where a long run of new (upper) data gives way to
//!   old (lower) data. Tables then end where a key prefix's data ends, later
//!   flushes fit into the gaps, and data moves down without rewrites (trivial moves).

use std::sync::Arc;

use crate::cache::TableCache;
use crate::error::Result;
use crate::iter::{InternalIter, LevelIter, MergingIter};
use crate::key::{self, Kind};
use crate::memtable::MemTable;
use crate::options::{CompactionFilter, Options};
use crate::sstable::{FinishedTable, TableBuilder, TableInfo, TableIter};
use crate::tombstones::RangeTombstones;
use crate::version::{NUM_LEVELS, TableMeta, Version};

/// A run of at least this many new (upper) entries followed by an old one marks an
/// append point (see the module docs). Random keys interleave in much shorter runs.
const APPEND_RUN_ENTRIES: u64 = 64;

/// Smallest table cut at an append point.
const APPEND_CUT_MIN_BYTES: u64 = 32 << 10;

/// A source of keys that a lower-level table might be "touched" by.
pub enum Input<'a> {
    Table(&'a Arc<TableMeta>),
    Mem(&'a Arc<MemTable>),
}

/// True when `input` holds a key inside `[candidate.smallest, candidate.largest]`.
pub fn touches(input: &Input<'_>, candidate: &TableMeta, cache: &Arc<TableCache>) -> Result<bool> {
    let target = key::internal_key(&candidate.info.smallest, key::MAX_SEQ, Kind::Put);
    let first_key = match input {
        Input::Table(t) => {
            if !t.overlaps(
                Some(&candidate.info.smallest),
                Some(&candidate.info.largest),
            ) {
                return Ok(false);
            }
            let table = cache.get(t.number, t.info.file_size)?;
            let mut it = TableIter::new(table, false, false);
            it.seek(Some((&target, true)))?;
            it.valid().then(|| key::user_key(it.key()).to_vec())
        }
        Input::Mem(m) => {
            let mut first = Vec::with_capacity(1);
            m.chunk(std::ops::Bound::Included(&target), false, 1, &mut first);
            first.first().map(|e| key::user_key(e.ikey()).to_vec())
        }
    };
    Ok(first_key.is_some_and(|k| k <= candidate.info.largest))
}

/// Splits `level` tables into (touched, untouched) with respect to `inputs`.
pub fn partition_level(
    version: &Version,
    level: usize,
    inputs: &[Input<'_>],
    exclude: &[Arc<TableMeta>],
    cache: &Arc<TableCache>,
) -> Result<Partition> {
    let mut touched = Vec::new();
    let mut untouched = Vec::new();
    for t in &version.levels[level] {
        if exclude.iter().any(|e| e.number == t.number) {
            continue;
        }
        let mut hit = false;
        for i in inputs {
            if touches(i, t, cache)? {
                hit = true;
                break;
            }
        }
        if hit {
            touched.push(Arc::clone(t))
        } else {
            untouched.push(Arc::clone(t))
        }
    }
    Ok((touched, untouched))
}

/// Answers "can no table below the output level hold this key?".
pub type BaseLevelFn<'a> = &'a dyn Fn(&[u8]) -> bool;

/// Tables of a level split into (touched, untouched).
pub type Partition = (Vec<Arc<TableMeta>>, Vec<Arc<TableMeta>>);

/// How entries may be dropped while merging.
pub struct MergeRules<'a> {
    /// Oldest sequence any open snapshot may read at.
    pub smallest_snapshot: u64,
    /// Newest open snapshot, if any.
    pub largest_snapshot: Option<u64>,
    /// Point tombstones may be dropped where this says no deeper data can hold the key.
    pub is_base_level: Option<BaseLevelFn<'a>>,
    /// Range tombstones whose covered entries may be dropped.
    pub range_tombstones: &'a RangeTombstones,
    pub filter: Option<&'a Arc<dyn CompactionFilter>>,
}

/// Where outputs go and when to cut them.
pub struct OutputPlan<'a> {
    /// Untouched tables of the output level, sorted; outputs must fit in their gaps.
    pub untouched: &'a [Arc<TableMeta>],
    /// Children `0..upper_children` of the merge hold the newer (upper) data.
    pub upper_children: usize,
    /// Never cut (a level-0 flush writes exactly one table).
    pub single_table: bool,
    /// Write at most this many bytes per second (0 = as fast as possible).
    pub bytes_per_second: u64,
}

/// Counters a merge reports back.
#[derive(Default, Debug)]
pub struct MergeOutcome {
    pub tables: Vec<(u64, TableInfo)>,
    pub bytes_written: u64,
    pub entries_in: u64,
    pub entries_dropped: u64,
}

/// Output tables a merge keeps open and unsynced at most, so that a merge writing
/// thousands of tables does not hold thousands of descriptors.
const MAX_UNSYNCED_TABLES: usize = 64;

/// Merges `iter` into new tables.
pub fn merge_into_tables(
    dir: &std::path::Path,
    mut iter: MergingIter,
    opts: &Options,
    rules: &MergeRules<'_>,
    plan: &OutputPlan<'_>,
    mut new_table: impl FnMut() -> Result<(u64, TableBuilder)>,
) -> Result<MergeOutcome> {
    let mut out = MergeOutcome::default();
    let mut builder: Option<(u64, TableBuilder)> = None;
    let started = std::time::Instant::now();
    let mut since_check = 0u32;
    let mut unsynced: Vec<FinishedTable> = Vec::new();
    let result = (|| -> Result<()> {
        iter.seek(None)?;
        let mut current_key: Option<Vec<u8>> = None;
        let mut last_seq_for_key = u64::MAX;
        let mut untouched_idx = 0;
        let mut upper_run = 0u64;
        let mut rewritten = Vec::new();
        while iter.valid() {
            out.entries_in += 1;
            let ikey = iter.key();
            let (uk, seq, kind) = key::parse(ikey).ok_or_else(|| {
                crate::error::Error::corruption("<compaction>", 0, "entry without a valid trailer")
            })?;
            let from_upper = iter
                .current_child()
                .is_some_and(|c| c < plan.upper_children);
            let first_of_key = current_key.as_deref() != Some(uk);
            if first_of_key {
                current_key = Some(uk.to_vec());
                last_seq_for_key = u64::MAX;
            }
            let mut emit_kind = kind;
            let shadowed = last_seq_for_key <= rules.smallest_snapshot;
            let range_deleted = rules
                .range_tombstones
                .covers(uk, seq, rules.smallest_snapshot);
            let old_enough = seq <= rules.smallest_snapshot;
            let base = || rules.is_base_level.is_some_and(|f| f(uk));
            // The filter may only judge a newest version that no open snapshot can see
            // (it is newer than all of them); a rejected value becomes a tombstone, so
            // older versions below stay hidden and the usual tombstone rule applies.
            let filtered = kind == Kind::Put
                && first_of_key
                && rules.largest_snapshot.is_none_or(|s| seq > s)
                && rules.filter.is_some_and(|f| !f.keep(uk, iter.value()));
            if filtered {
                emit_kind = Kind::Delete;
            }
            let drop =
                shadowed || range_deleted || (emit_kind == Kind::Delete && old_enough && base());
            last_seq_for_key = seq;
            if drop {
                out.entries_dropped += 1;
                iter.next()?;
                continue;
            }
            if first_of_key && !plan.single_table {
                let mut cut = false;
                while untouched_idx < plan.untouched.len()
                    && plan.untouched[untouched_idx].info.largest.as_slice() < uk
                {
                    if let Some((_, b)) = &builder
                        && plan.untouched[untouched_idx].info.smallest.as_slice()
                            > b.last_user_key()
                    {
                        cut = true;
                    }
                    untouched_idx += 1;
                }
                if let Some((_, b)) = &builder {
                    if b.estimated_size() >= opts.target_file_bytes {
                        cut = true;
                    }
                    // End of a long run of new keys followed by old ones: an append
                    // point. Cutting here lets later appends land in the gap.
                    if upper_run >= APPEND_RUN_ENTRIES
                        && !from_upper
                        && b.estimated_size() >= APPEND_CUT_MIN_BYTES
                    {
                        cut = true;
                    }
                }
                if cut && let Some((n, b)) = builder.take() {
                    let table = b.finish()?;
                    out.bytes_written += table.info.file_size;
                    out.tables.push((n, table.info.clone()));
                    unsynced.push(table);
                    if unsynced.len() >= MAX_UNSYNCED_TABLES {
                        unsynced.drain(..).try_for_each(FinishedTable::sync)?;
                    }
                }
            }
            upper_run = if from_upper { upper_run + 1 } else { 0 };
            if builder.is_none() {
                builder = Some(new_table()?);
            }
            if let Some((_, b)) = &mut builder {
                if emit_kind == kind {
                    b.add(ikey, iter.value())?;
                } else {
                    rewritten.clear();
                    key::append_internal_key(&mut rewritten, uk, seq, emit_kind);
                    b.add(&rewritten, &[])?;
                }
            }
            iter.next()?;
            since_check += 1;
            if plan.bytes_per_second > 0 && since_check >= 1024 {
                since_check = 0;
                let written =
                    out.bytes_written + builder.as_ref().map_or(0, |(_, b)| b.estimated_size());
                let due = std::time::Duration::from_secs_f64(
                    written as f64 / plan.bytes_per_second as f64,
                );
                if let Some(ahead) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(ahead);
                }
            }
        }
        if let Some((n, b)) = builder.take() {
            if b.entries() == 0 {
                b.abandon();
            } else {
                let table = b.finish()?;
                out.bytes_written += table.info.file_size;
                out.tables.push((n, table.info.clone()));
                unsynced.push(table);
            }
        }
        // Every output is written and on its way to the disk; now wait for each.
        unsynced.drain(..).try_for_each(FinishedTable::sync)
    })();
    if let Err(e) = result {
        if let Some((_, b)) = builder.take() {
            b.abandon();
        }
        for (n, _) in &out.tables {
            let path = crate::files::table_path(dir, *n);
            crate::files::remove_quietly(
                opts.file_system.as_ref(),
                &path,
                "output of a failed compaction",
            );
        }
        return Err(e);
    }
    Ok(out)
}

/// A planned compaction from `level` into `output_level`.
pub struct Job {
    pub level: usize,
    pub output_level: usize,
    pub inputs: Vec<Arc<TableMeta>>,
    pub lower: Vec<Arc<TableMeta>>,
    pub untouched: Vec<Arc<TableMeta>>,
    pub trivial_move: bool,
}

/// Builds the job for `inputs` at `level` going to `output_level`.
pub fn plan_job(
    version: &Version,
    level: usize,
    output_level: usize,
    inputs: Vec<Arc<TableMeta>>,
    force_rewrite: bool,
    cache: &Arc<TableCache>,
) -> Result<Job> {
    let srcs: Vec<Input<'_>> = inputs.iter().map(Input::Table).collect();
    let (lower, untouched) = if output_level == level {
        (
            Vec::new(),
            version.levels[level]
                .iter()
                .filter(|t| !inputs.iter().any(|i| i.number == t.number))
                .cloned()
                .collect(),
        )
    } else {
        partition_level(version, output_level, &srcs, &[], cache)?
    };
    let trivial_move = !force_rewrite
        && output_level != level
        && lower.is_empty()
        && inputs.len() == 1
        && !untouched
            .iter()
            .any(|u| inputs[0].overlaps(Some(&u.info.smallest), Some(&u.info.largest)));
    Ok(Job {
        level,
        output_level,
        inputs,
        lower,
        untouched,
        trivial_move,
    })
}

/// Size limit of `level` (≥ 1).
pub fn level_target(opts: &Options, level: usize) -> u64 {
    let mut t = opts.level1_bytes;
    for _ in 1..level {
        t = t.saturating_mul(opts.level_size_multiplier);
    }
    t
}

/// Picks the most urgent automatic compaction, if any.
pub fn pick(
    version: &Version,
    opts: &Options,
    compact_pointer: &mut [Vec<u8>],
    cache: &Arc<TableCache>,
) -> Result<Option<Job>> {
    if version.levels[0].len() >= opts.l0_compaction_trigger {
        let inputs: Vec<_> = version.levels[0].clone();
        return plan_job(version, 0, 1, inputs, false, cache).map(Some);
    }
    let mut best: Option<(f64, usize)> = None;
    for level in 1..NUM_LEVELS - 1 {
        let score = version.level_bytes(level) as f64 / level_target(opts, level) as f64;
        if score >= 1.0 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, level));
        }
    }
    let Some((_, level)) = best else {
        return Ok(None);
    };
    let tables = &version.levels[level];
    let ptr = &compact_pointer[level];
    let start = tables
        .iter()
        .position(|t| t.info.smallest.as_slice() > ptr.as_slice())
        .unwrap_or(0);
    let Some(first) = tables.get(start) else {
        return Ok(None);
    };
    // Small tables (flushes cut at append points are small) travel down together with
    // their neighbours and are merged into one table of about the target size, so the
    // table count stays proportional to the data, not to the number of flushes.
    let mut inputs = vec![Arc::clone(first)];
    let mut total = first.info.file_size;
    if total < opts.target_file_bytes / 4 {
        for t in &tables[start + 1..] {
            if total + t.info.file_size > opts.target_file_bytes {
                break;
            }
            total += t.info.file_size;
            inputs.push(Arc::clone(t));
        }
    }
    if let Some(last) = inputs.last() {
        compact_pointer[level] = last.info.largest.clone();
    }
    plan_job(version, level, level + 1, inputs, false, cache).map(Some)
}

/// The merge over a job's inputs (upper first, then the touched lower tables).
pub fn job_iter(job: &Job, cache: &Arc<TableCache>) -> (MergingIter, usize) {
    let mut children: Vec<Box<dyn InternalIter>> = Vec::new();
    for t in &job.inputs {
        children.push(Box::new(LevelIter::new(
            vec![Arc::clone(t)],
            Arc::clone(cache),
            false,
            false,
        )));
    }
    let upper = children.len();
    if !job.lower.is_empty() {
        children.push(Box::new(LevelIter::new(
            job.lower.clone(),
            Arc::clone(cache),
            false,
            false,
        )));
    }
    (MergingIter::new(children, false), upper)
}

/// True when no table below `output_level` can hold `user_key`.
pub fn is_base_level(version: &Version, output_level: usize, user_key: &[u8]) -> bool {
    ((output_level + 1)..NUM_LEVELS).all(|l| version.find_in_level(l, user_key).is_none())
}
