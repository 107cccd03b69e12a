//! Writing and reading the trust files.
//!
//! Keys and certificates are small and precious, so every write goes the long way round:
//! a temporary file created with its final permissions, fsync, rename over the old name,
//! fsync of the directory. A crash at any point leaves either the old file or the new one,
//! never a mixture, and a private key is never readable by others for even a moment.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::TrustError;

/// Permissions of a private key: the owner alone may read it.
const PRIVATE_MODE: u32 = 0o600;
/// Permissions of a certificate: public by nature.
const PUBLIC_MODE: u32 = 0o644;
/// Permissions of a trust directory the hub creates itself.
const DIRECTORY_MODE: u32 = 0o700;

/// Makes `dir` (and its parents) if it does not exist yet; only its owner may enter it.
pub(super) fn ensure_directory(dir: &Path) -> Result<(), TrustError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIRECTORY_MODE)
        .create(dir)
        .map_err(|source| io_error("create directory", dir, source))
}

/// Replaces `path` with `contents`, readable by its owner only.
pub(super) fn write_private(path: &Path, contents: &str) -> Result<(), TrustError> {
    write_atomically(path, contents, PRIVATE_MODE)
}

/// Replaces `path` with `contents`, readable by everyone.
pub(super) fn write_public(path: &Path, contents: &str) -> Result<(), TrustError> {
    write_atomically(path, contents, PUBLIC_MODE)
}

/// Reads a private key, refusing one that others could have read too (and so could
/// have copied).
pub(super) fn read_private(path: &Path) -> Result<String, TrustError> {
    let mode = std::fs::metadata(path)
        .map_err(|source| io_error("read", path, source))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(TrustError::KeyFileTooOpen {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    read_public(path)
}

/// Reads a certificate.
pub(super) fn read_public(path: &Path) -> Result<String, TrustError> {
    std::fs::read_to_string(path).map_err(|source| io_error("read", path, source))
}

/// Reads `path` if it exists; `None` if it does not.
pub(super) fn read_if_present(
    path: &Path,
    read: fn(&Path) -> Result<String, TrustError>,
) -> Result<Option<String>, TrustError> {
    match read(path) {
        Ok(contents) => Ok(Some(contents)),
        Err(TrustError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => Ok(None),
        Err(other) => Err(other),
    }
}

fn write_atomically(path: &Path, contents: &str, mode: u32) -> Result<(), TrustError> {
    let temporary = temporary_path(path);
    // A temporary file left by a crash may have the wrong mode; start afresh so that
    // `mode` below applies (it is only honoured when the file is created).
    match std::fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(source) => return Err(io_error("remove", &temporary, source)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(|source| io_error("create", &temporary, source))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| io_error("write", &temporary, source))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(|source| io_error("rename", path, source))?;
    sync_directory_of(path)
}

/// Makes the rename itself durable: until the directory is synced, a crash may bring
/// back the old name.
fn sync_directory_of(path: &Path) -> Result<(), TrustError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| io_error("sync directory", dir, source))
}

/// `ca.key` → `ca.key.tmp`, beside it so the rename stays within one file system.
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

pub(super) fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> TrustError {
    TrustError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}
