//! The manifest: a log of version edits, so every change of the table set is one
//! atomic, checksummed record.
//!
//! `CURRENT` holds the name of the live manifest. A new manifest is started at every open
//! (one snapshot edit listing everything) and whenever the current one grows past 4 MiB,
//! by writing the new file, syncing it, and atomically renaming a new `CURRENT` into place.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::coding::{get_bytes, get_varint, put_bytes, put_varint};
use crate::error::{Error, Result};
use crate::files;
use crate::fs::FileSystem;
use crate::key::RangeTombstone;
use crate::record::{RecordReader, RecordWriter, StopReason};
use crate::sstable::TableInfo;
use crate::version::{NUM_LEVELS, ObsoleteFiles, TableMeta, Version};

const TAG_LOG_NUMBER: u64 = 1;
const TAG_NEXT_FILE: u64 = 2;
const TAG_LAST_SEQ: u64 = 3;
const TAG_ADD_TABLE: u64 = 4;
const TAG_DELETE_TABLE: u64 = 5;
const TAG_ADD_RANGE_TOMBSTONE: u64 = 6;
const TAG_REMOVE_RANGE_TOMBSTONE: u64 = 7;

/// Size past which the manifest is rewritten as a single snapshot.
pub const MANIFEST_ROLL_BYTES: u64 = 4 << 20;

/// One atomic change of the table set and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// WALs numbered below this are fully contained in tables.
    pub log_number: Option<u64>,
    pub next_file_number: Option<u64>,
    pub last_seq: Option<u64>,
    pub deleted: Vec<(u8, u64)>,
    pub added: Vec<(u8, u64, TableInfo)>,
    pub added_tombstones: Vec<RangeTombstone>,
    pub removed_tombstones: Vec<u64>,
}

impl VersionEdit {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let num = |out: &mut Vec<u8>, tag, v: Option<u64>| {
            if let Some(v) = v {
                put_varint(out, tag);
                put_varint(out, v);
            }
        };
        num(&mut out, TAG_LOG_NUMBER, self.log_number);
        num(&mut out, TAG_NEXT_FILE, self.next_file_number);
        num(&mut out, TAG_LAST_SEQ, self.last_seq);
        for &(level, number) in &self.deleted {
            put_varint(&mut out, TAG_DELETE_TABLE);
            put_varint(&mut out, u64::from(level));
            put_varint(&mut out, number);
        }
        for (level, number, info) in &self.added {
            put_varint(&mut out, TAG_ADD_TABLE);
            put_varint(&mut out, u64::from(*level));
            put_varint(&mut out, *number);
            put_varint(&mut out, info.file_size);
            put_bytes(&mut out, &info.smallest);
            put_bytes(&mut out, &info.largest);
            put_varint(&mut out, info.smallest_seq);
            put_varint(&mut out, info.largest_seq);
            put_varint(&mut out, info.entries);
        }
        for t in &self.added_tombstones {
            put_varint(&mut out, TAG_ADD_RANGE_TOMBSTONE);
            put_varint(&mut out, t.seq);
            put_bytes(&mut out, &t.start);
            put_bytes(&mut out, &t.end);
        }
        for &seq in &self.removed_tombstones {
            put_varint(&mut out, TAG_REMOVE_RANGE_TOMBSTONE);
            put_varint(&mut out, seq);
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Option<VersionEdit> {
        let mut e = VersionEdit::default();
        let mut pos = 0;
        let level = |v: u64| u8::try_from(v).ok().filter(|l| (*l as usize) < NUM_LEVELS);
        while pos < buf.len() {
            match get_varint(buf, &mut pos)? {
                TAG_LOG_NUMBER => e.log_number = Some(get_varint(buf, &mut pos)?),
                TAG_NEXT_FILE => e.next_file_number = Some(get_varint(buf, &mut pos)?),
                TAG_LAST_SEQ => e.last_seq = Some(get_varint(buf, &mut pos)?),
                TAG_DELETE_TABLE => {
                    let l = level(get_varint(buf, &mut pos)?)?;
                    e.deleted.push((l, get_varint(buf, &mut pos)?));
                }
                TAG_ADD_TABLE => {
                    let l = level(get_varint(buf, &mut pos)?)?;
                    let number = get_varint(buf, &mut pos)?;
                    let info = TableInfo {
                        file_size: get_varint(buf, &mut pos)?,
                        smallest: get_bytes(buf, &mut pos)?.to_vec(),
                        largest: get_bytes(buf, &mut pos)?.to_vec(),
                        smallest_seq: get_varint(buf, &mut pos)?,
                        largest_seq: get_varint(buf, &mut pos)?,
                        entries: get_varint(buf, &mut pos)?,
                    };
                    e.added.push((l, number, info));
                }
                TAG_ADD_RANGE_TOMBSTONE => {
                    let seq = get_varint(buf, &mut pos)?;
                    let start = get_bytes(buf, &mut pos)?.to_vec();
                    let end = get_bytes(buf, &mut pos)?.to_vec();
                    e.added_tombstones.push(RangeTombstone { start, end, seq });
                }
                TAG_REMOVE_RANGE_TOMBSTONE => e.removed_tombstones.push(get_varint(buf, &mut pos)?),
                _ => return None,
            }
        }
        Some(e)
    }

    /// An edit that recreates `version` from nothing.
    pub fn snapshot(
        version: &Version,
        log_number: u64,
        next_file_number: u64,
        last_seq: u64,
    ) -> VersionEdit {
        let mut e = VersionEdit {
            log_number: Some(log_number),
            next_file_number: Some(next_file_number),
            last_seq: Some(last_seq),
            ..VersionEdit::default()
        };
        for (level, tables) in version.levels.iter().enumerate() {
            for t in tables {
                e.added.push((level as u8, t.number, t.info.clone()));
            }
        }
        e.added_tombstones = version.range_tombstones.to_vec();
        e
    }
}

/// State recovered from the manifest.
pub struct Recovered {
    pub version: Version,
    pub log_number: u64,
    pub next_file_number: u64,
    pub last_seq: u64,
}

/// Reads `CURRENT` and replays the manifest it names.
pub fn recover(
    fs: &dyn FileSystem,
    dir: &Path,
    obsolete: Option<&Arc<ObsoleteFiles>>,
) -> Result<Option<Recovered>> {
    let current = files::current_path(dir);
    let name = match fs.read(&current) {
        Ok(s) => String::from_utf8_lossy(&s).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&current, e)),
    };
    let name = name.trim_end_matches('\n');
    let manifest_number = match files::classify(name) {
        files::FileKind::Manifest(n) => n,
        _ => {
            return Err(Error::corruption(
                &current,
                0,
                format!("CURRENT names {name:?}, not a manifest"),
            ));
        }
    };
    let path = dir.join(name);
    let bytes = fs.read(&path).map_err(|e| Error::io(&path, e))?;
    let mut reader = RecordReader::new(&bytes);
    let mut version = Version::empty();
    let (mut log_number, mut next_file_number, mut last_seq) = (0, manifest_number + 1, 0);
    for (offset, payload) in reader.by_ref() {
        let edit = VersionEdit::decode(payload).ok_or_else(|| {
            Error::corruption(&path, offset, "manifest record is not a valid version edit")
        })?;
        log_number = edit.log_number.unwrap_or(log_number);
        next_file_number = edit.next_file_number.unwrap_or(next_file_number);
        last_seq = edit.last_seq.unwrap_or(last_seq);
        let make = |n, info: &TableInfo| TableMeta::new(n, info.clone(), obsolete.cloned());
        version = version.apply(&edit, make).0;
    }
    if let Some(stop) = reader.stop() {
        // Only the final record may be damaged: that is an edit that was being written
        // when the process died, and it never took effect. Damage before valid records
        // would silently lose table-set changes, so it stops the open instead.
        let len = crate::coding::read_u32(&bytes, stop.offset as usize).unwrap_or(0) as u64;
        let is_last =
            stop.reason == StopReason::Torn || stop.offset + 8 + len == bytes.len() as u64;
        if !is_last {
            return Err(Error::corruption(
                &path,
                stop.offset,
                "manifest record fails its checksum",
            ));
        }
        tracing::warn!(path = %path.display(), offset = stop.offset, "ignoring incomplete final manifest edit");
    }
    for t in version.levels.iter().flatten() {
        next_file_number = next_file_number.max(t.number + 1);
    }
    Ok(Some(Recovered {
        version,
        log_number,
        next_file_number,
        last_seq,
    }))
}

/// The live manifest file.
pub struct ManifestWriter {
    writer: RecordWriter,
    pub number: u64,
    /// The log number in force, repeated in every snapshot.
    pub log_number: u64,
}

impl ManifestWriter {
    /// Starts manifest `number` holding `snapshot`, and points `CURRENT` at it.
    pub fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        number: u64,
        snapshot: &VersionEdit,
        log_number: u64,
    ) -> Result<ManifestWriter> {
        let path = files::manifest_path(dir, number);
        let mut writer = RecordWriter::create(fs, &path)?;
        writer.add(&snapshot.encode())?;
        writer.sync()?;
        set_current(fs, dir, number)?;
        Ok(ManifestWriter {
            writer,
            number,
            log_number,
        })
    }

    /// Appends and syncs one edit; returns bytes written.
    pub fn append(&mut self, edit: &VersionEdit) -> Result<u64> {
        let n = self.writer.add(&edit.encode())?;
        self.writer.sync()?;
        Ok(n)
    }

    pub fn len(&self) -> u64 {
        self.writer.len()
    }
}

/// Points `CURRENT` at manifest `number`: the manifest's name is made durable first,
/// then a synced `CURRENT.tmp` is renamed over `CURRENT` and the rename made durable.
fn set_current(fs: &dyn FileSystem, dir: &Path, number: u64) -> Result<()> {
    files::sync_dir(fs, dir)?;
    let tmp: PathBuf = dir.join("CURRENT.tmp");
    let contents = format!("MANIFEST-{number:06}\n");
    match fs.remove(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&tmp, e)),
        _ => {}
    }
    let mut f = fs.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.append(contents.as_bytes())
        .map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    let current = files::current_path(dir);
    fs.rename(&tmp, &current)
        .map_err(|e| Error::io(&current, e))?;
    files::sync_dir(fs, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_round_trip() {
        let e = VersionEdit {
            log_number: Some(3),
            next_file_number: Some(9),
            last_seq: Some(100),
            deleted: vec![(1, 4)],
            added: vec![(
                2,
                8,
                TableInfo {
                    file_size: 1000,
                    smallest: b"a".to_vec(),
                    largest: b"z".to_vec(),
                    smallest_seq: 1,
                    largest_seq: 99,
                    entries: 50,
                },
            )],
            added_tombstones: vec![RangeTombstone {
                start: b"b".to_vec(),
                end: b"c".to_vec(),
                seq: 7,
            }],
            removed_tombstones: vec![5],
        };
        assert_eq!(VersionEdit::decode(&e.encode()), Some(e));
        assert_eq!(VersionEdit::decode(&[99]), None);
    }
}
