//! The device ID — the CST key — kept in a file of its own beside the store
//! (`DIR/device-id`, owner-only), with a checksum, so a store that has to be
//! moved aside does not take the device's identity with it: a parent app
//! that knows the ID keeps working.
//!
//! The file holds two lines: the ID (16 uppercase hex digits) and
//! `sha256:` followed by the first 16 hex digits of SHA-256 of the ID. It is
//! written to a temporary file, flushed and renamed into place, so it is
//! either the old or the new file, never half of one.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::Rng;
use sha2::{Digest, Sha256};

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "device-id";

/// Why the device ID file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged: {why}")]
    Damaged { path: PathBuf, why: &'static str },
}

/// A new device ID: 16 uppercase hex digits, as the Android child makes
/// from the first 16 hex digits of a random UUID.
pub fn new_id() -> String {
    format!("{:016X}", rand::rng().random::<u64>())
}

/// Whether `id` has the shape of a device ID.
pub fn is_valid(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn checksum(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The ID in `dir`'s file; `None` when there is no file.
pub fn read(dir: &Path) -> Result<Option<String>, IdentityError> {
    let path = dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IdentityError::Read { path, source }),
    };
    let mut lines = text.lines();
    let (Some(id), Some(sum), None) = (lines.next(), lines.next(), lines.next()) else {
        return Err(IdentityError::Damaged {
            path,
            why: "expected two lines",
        });
    };
    if !is_valid(id) {
        return Err(IdentityError::Damaged {
            path,
            why: "the ID is not 16 uppercase hex digits",
        });
    }
    if sum.strip_prefix("sha256:") != Some(checksum(id).as_str()) {
        return Err(IdentityError::Damaged {
            path,
            why: "the checksum does not match the ID",
        });
    }
    Ok(Some(id.to_owned()))
}

/// Writes `id` to `dir`'s file, owner-only, atomically.
pub fn write(dir: &Path, id: &str) -> Result<(), IdentityError> {
    let path = dir.join(FILE_NAME);
    let temporary = dir.join(format!("{FILE_NAME}.new"));
    let error = |source| IdentityError::Write {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(error)?;
    write!(file, "{id}\nsha256:{}\n", checksum(id)).map_err(error)?;
    file.sync_all().map_err(error)?;
    std::fs::rename(&temporary, &path).map_err(error)?;
    // The rename itself is durable once the directory is.
    if let Ok(directory) = std::fs::File::open(dir) {
        let _ = directory.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_written_reads_back_and_a_damaged_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        let id = new_id();
        assert!(is_valid(&id), "{id}");
        write(dir.path(), &id).unwrap();
        assert_eq!(read(dir.path()).unwrap().as_deref(), Some(id.as_str()));
        let path = dir.path().join(FILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap();
        // One digit changed: the checksum no longer matches.
        let flipped = if text.starts_with('A') { "B" } else { "A" };
        std::fs::write(&path, format!("{flipped}{}", &text[1..])).unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(IdentityError::Damaged { .. })
        ));
        use std::os::unix::fs::PermissionsExt;
        write(dir.path(), &id).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner-only, got {mode:o}");
    }
}
