//! Replaying the WAL at open: point-in-time recovery.
//!
//! The WAL files not yet in tables are replayed in order, each up to its last whole
//! record. The first damage anywhere (a torn or corrupt record) ends the replay for all
//! files: a record after a hole may depend on what the hole held, and replaying it would
//! give a state that never existed (keys 100–199 back while 50–99 are gone). So the
//! recovered state is always the state after some prefix of the acknowledged groups,
//! and what was left out is counted in the [`RecoveryReport`].
//!
//! Why nothing acknowledged as durable can be behind the damage: a `Sync` write returns
//! only after its own WAL file, every earlier WAL file with unsynced data (the files
//! replayed at open included: a killed process leaves their tail in the page cache
//! only), and the directory entries naming them are synced (see `Core::commit_group`).
//! Damage before a synced record therefore
//! means the disk lost synced data, which no engine can survive unnoticed; here it is at
//! least reported, and [`RecoveryMode::Strict`] refuses to open.

use std::path::{Path, PathBuf};

use crate::batch::{self, Op};
use crate::error::{Error, Result};
use crate::files;
use crate::fs::FileSystem;
use crate::memtable::MemTable;
use crate::options::RecoveryMode;
use crate::record::{RecordReader, StopReason};
use crate::stats::RecoveryReport;

/// The first damage found, and where replay stopped.
struct Damage {
    path: PathBuf,
    /// Offset of the first byte that is not part of a whole, valid record.
    offset: u64,
    /// Whether it is a record cut short at the end of its file (a torn write).
    torn: bool,
    reason: String,
}

/// What replay leaves to the caller.
pub struct Replayed {
    /// Largest sequence number replayed.
    pub max_seq: u64,
    /// The replayed files, by number, whose contents may not be durable yet: the first
    /// `Sync` write syncs them (not open, which would make every reopen after a crash
    /// wait for the writeback of up to three memtables' worth of WAL).
    pub unsynced: Vec<(u64, PathBuf)>,
}

/// Replays WAL files `wals` (ascending) of `dir` into `mem`. Unless `read_only`, cuts the
/// damaged file at the damage (durably) and moves later files aside, so the next open
/// finds the same state and later writes never follow a hole.
pub fn replay_wals(
    fs: &dyn FileSystem,
    dir: &Path,
    wals: &[u64],
    mem: &MemTable,
    mode: RecoveryMode,
    read_only: bool,
    report: &mut RecoveryReport,
) -> Result<Replayed> {
    let mut max_seq = 0;
    let mut damage: Option<Damage> = None;
    let mut replayed = Vec::new();
    for &n in wals {
        let path = files::wal_path(dir, n);
        let bytes = fs.read(&path).map_err(|e| Error::io(&path, e))?;
        if damage.is_some() {
            if !bytes.is_empty() {
                count_dropped(&bytes, report);
                report.wal_bytes_dropped += bytes.len() as u64;
                report.dropped_wals.push(path);
            }
            continue;
        }
        let (seq, valid_len, found) = replay_file(&path, &bytes, mem, report);
        max_seq = max_seq.max(seq);
        report.wal_files_replayed += 1;
        if let Some(d) = found {
            report.wal_bytes_dropped += bytes.len() as u64 - valid_len;
            report
                .damaged_wals
                .push((path.clone(), d.offset, d.reason.clone()));
            damage = Some(d);
        }
        replayed.push((n, path, valid_len, bytes.len() as u64));
    }
    let unsynced = |replayed: &[(u64, PathBuf, u64, u64)]| {
        replayed
            .iter()
            .filter(|(_, _, valid_len, len)| valid_len == len)
            .map(|(n, path, _, _)| (*n, path.clone()))
            .collect()
    };
    let Some(damage) = damage else {
        return Ok(Replayed {
            max_seq,
            unsynced: unsynced(&replayed),
        });
    };
    let only_torn_tail = damage.torn && report.dropped_wals.is_empty();
    tracing::warn!(
        path = %damage.path.display(),
        offset = damage.offset,
        reason = %damage.reason,
        bytes_dropped = report.wal_bytes_dropped,
        later_files_dropped = report.dropped_wals.len(),
        records_dropped = report.records_dropped,
        sequences_dropped = ?report.dropped_sequences,
        "WAL damaged; recovering to the last whole record before it"
    );
    if mode == RecoveryMode::Strict && !only_torn_tail {
        let sequences = match report.dropped_sequences {
            Some((a, b)) => format!(" (sequence numbers {a}..={b})"),
            None => String::new(),
        };
        return Err(Error::corruption(
            &damage.path,
            damage.offset,
            format!(
                "{}; strict recovery refuses to drop the {} bytes after it and {} whole \
                 records{sequences} in {} later WAL files",
                damage.reason,
                report.wal_bytes_dropped,
                report.records_dropped,
                report.dropped_wals.len()
            ),
        ));
    }
    if read_only {
        return Ok(Replayed {
            max_seq,
            unsynced: Vec::new(),
        });
    }
    for path in &report.dropped_wals {
        let aside = path.with_extension("log.dropped");
        fs.rename(path, &aside).map_err(|e| Error::io(path, e))?;
    }
    for (_, path, valid_len, len) in &replayed {
        if valid_len < len {
            fs.truncate(path, *valid_len)
                .map_err(|e| Error::io(path, e))?;
        }
    }
    // The renames must be durable before anything is written after the gap; the
    // caller syncs the directory before it accepts writes.
    Ok(Replayed {
        max_seq,
        unsynced: unsynced(&replayed),
    })
}

/// Replays one file; returns the largest sequence, the length of its valid prefix and
/// the damage after it, if any.
fn replay_file(
    path: &Path,
    bytes: &[u8],
    mem: &MemTable,
    report: &mut RecoveryReport,
) -> (u64, u64, Option<Damage>) {
    let mut reader = RecordReader::new(bytes);
    let mut max_seq = 0;
    let mut valid_len = 0u64;
    let mut damage = None;
    let bad = |offset, reason: &str| Damage {
        path: path.to_path_buf(),
        offset,
        torn: false,
        reason: reason.to_string(),
    };
    while let Some((offset, payload)) = reader.next() {
        let Some(p) = batch::decode_payload(payload) else {
            damage = Some(bad(offset, "WAL record too short for its header"));
            break;
        };
        let ops: std::result::Result<Vec<Op<'_>>, usize> = p.iter().collect();
        let Ok(ops) = ops else {
            damage = Some(bad(offset, "WAL record holds a malformed operation"));
            break;
        };
        mem.apply(p.first_seq, &ops);
        if !ops.is_empty() {
            max_seq = max_seq.max(p.first_seq + ops.len() as u64 - 1);
        }
        report.wal_records_replayed += 1;
        valid_len = reader.valid_len();
    }
    if damage.is_none()
        && let Some(stop) = reader.stop()
    {
        damage = Some(Damage {
            path: path.to_path_buf(),
            offset: stop.offset,
            torn: stop.reason == StopReason::Torn,
            reason: format!("{:?} record", stop.reason).to_lowercase(),
        });
    }
    (max_seq, valid_len, damage)
}

/// Counts the whole records of a WAL file that will not be replayed, and their sequence
/// numbers.
fn count_dropped(bytes: &[u8], report: &mut RecoveryReport) {
    for (_, payload) in RecordReader::new(bytes) {
        report.records_dropped += 1;
        if let Some(p) = batch::decode_payload(payload)
            && p.count > 0
        {
            let (first, last) = (p.first_seq, p.first_seq + u64::from(p.count) - 1);
            report.dropped_sequences = Some(match report.dropped_sequences {
                Some((a, b)) => (a.min(first), b.max(last)),
                None => (first, last),
            });
        }
    }
}
