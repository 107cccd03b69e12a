//! Names of the files in a database directory, and directory-level helpers.
//!
//! `NNNNNN.log` WAL, `NNNNNN.sst` table, `MANIFEST-NNNNNN` manifest, `CURRENT` names the
//! live manifest, `LOCK` guards against a second writer process.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

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
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| Error::io(dir, e))?;
    f.sync_all().map_err(|e| Error::io(dir, e))
}

/// Lists (kind, name) of every entry in the directory.
pub fn list(dir: &Path) -> Result<Vec<(FileKind, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let kind = classify(&name.to_string_lossy());
        out.push((kind, entry.path()));
    }
    Ok(out)
}

/// An advisory `flock` on `LOCK`, held for the lifetime of the value.
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Exclusive for a writer, shared for a read-only inspector.
    pub fn acquire(dir: &Path, exclusive: bool) -> Result<DirLock> {
        use std::os::fd::AsRawFd;
        let path = dir.join("LOCK");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        } | libc::LOCK_NB;
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                return Err(Error::Locked {
                    path: dir.to_path_buf(),
                });
            }
            return Err(Error::io(&path, err));
        }
        Ok(DirLock { _file: file })
    }
}
