//! The one error type of the engine.
//!
//! Corruption always names the file and the byte offset, so an operator can find the
//! damaged spot with `eventlog verify` and a hex dump instead of guessing.

use std::path::PathBuf;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed on a file or directory.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Bytes on disk do not decode or do not match their checksum.
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damaged record or block inside the file.
        offset: u64,
        /// What exactly failed to check out.
        reason: String,
    },
    /// An option is outside the range the engine supports.
    #[error("invalid option {field}: {reason}")]
    InvalidOption {
        /// Name of the field in [`crate::Options`].
        field: &'static str,
        /// The allowed range.
        reason: String,
    },
    /// An argument to a call is outside what the call accepts.
    #[error("invalid argument {field}: {reason}")]
    InvalidArgument {
        /// Name of the argument.
        field: &'static str,
        /// The allowed range.
        reason: String,
    },
    /// A write batch is larger than the engine's one size limit,
    /// [`crate::MAX_BATCH_BYTES`]; nothing of it was written.
    #[error("write batch of {bytes} bytes exceeds MAX_BATCH_BYTES ({limit} bytes)")]
    BatchTooLarge {
        /// Encoded size of the batch.
        bytes: usize,
        /// [`crate::MAX_BATCH_BYTES`].
        limit: usize,
    },
    /// Another process holds the directory lock.
    #[error("database directory {path} is locked by another process")]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// The database was closed (or opened read-only) and can no longer accept this call.
    #[error("database is closed")]
    Closed,
    /// The database was opened read-only and a write was attempted.
    #[error("database is open read-only")]
    ReadOnly,
    /// An earlier background error (failed flush, failed WAL write) poisoned the database;
    /// writes are refused so that nothing is acknowledged that might not be durable.
    #[error("database stopped after an earlier error: {0}")]
    Poisoned(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corruption(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corruption {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True when the error means bytes on disk are damaged (as opposed to an I/O failure
    /// or a usage error).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
