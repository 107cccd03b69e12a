//! Names of the files in a database directory, and directory-level helpers.
//!
//! `NNNNNN.log` WAL, `NNNNNN.sst` table, `MANIFEST-NNNNNN` manifest, `CURRENT` names the
//! live manifest, `LOCK` guards against a second writer process.

use std::any::Any;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fs::FileSystem;

pub fn wal_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.log"))
}

pub fn table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.sst"))
}

pub fn manifest_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("MANIFEST-{number:06}"))
}

pub fn current_path(dir: &Path) -> PathBuf {
    dir.join("CURRENT")
}

/// What a file in the directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Wal(u64),
    Table(u64),
    Manifest(u64),
    Other,
}

pub fn classify(name: &str) -> FileKind {
    if let Some(n) = name.strip_suffix(".log").and_then(|s| s.parse().ok()) {
        FileKind::Wal(n)
    } else if let Some(n) = name.strip_suffix(".sst").and_then(|s| s.parse().ok()) {
        FileKind::Table(n)
    } else if let Some(n) = name.strip_prefix("MANIFEST-").and_then(|s| s.parse().ok()) {
        FileKind::Manifest(n)
    } else {
        FileKind::Other
    }
}

/// `fsync` on the directory, so that created, renamed or removed names are durable.
pub fn sync_dir(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).map_err(|e| Error::io(dir, e))
}

/// Lists (kind, path) of every entry in the directory.
pub fn list(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<(FileKind, PathBuf)>> {
    let names = fs.list(dir).map_err(|e| Error::io(dir, e))?;
    Ok(names
        .into_iter()
        .map(|name| (classify(&name.to_string_lossy()), dir.join(name)))
        .collect())
}

/// Removes a file that is no longer needed; a failure is logged, not returned, since the
/// next open removes whatever is left over.
pub fn remove_quietly(fs: &dyn FileSystem, path: &Path, what: &str) {
    match fs.remove(path) {
        Ok(()) => tracing::debug!(path = %path.display(), "removed {what}"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not remove {what}"),
    }
}

/// The directory lock (`flock` on `LOCK` for real files), held for the lifetime of the
/// value.
pub struct DirLock {
    _guard: Box<dyn Any + Send + Sync>,
}

impl DirLock {
    /// Exclusive for a writer, shared for a read-only inspector.
    pub fn acquire(fs: &dyn FileSystem, dir: &Path, exclusive: bool) -> Result<DirLock> {
        match fs.lock(dir, exclusive) {
            Ok(guard) => Ok(DirLock { _guard: guard }),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(Error::Locked {
                path: dir.to_path_buf(),
            }),
            Err(e) => Err(Error::io(dir.join("LOCK"), e)),
        }
    }
}
