//! The file system as the engine sees it: the handful of calls it makes, behind a trait
//! so that tests can put a simulated disk underneath (see [`power_loss`]) while every
//! user runs the real one, [`StdFs`].
//!
//! The calls are the ones whose ordering the recovery argument relies on
//! (`docs/eventlog-format.md`): appends, `fdatasync`/`fsync` of a file, creating,
//! renaming and removing names, and `fsync` of the directory that makes those names
//! durable. Keeping them in one place makes the argument checkable: a simulated disk that
//! forgets exactly what these calls have not yet made durable shows whether the engine
//! ever acknowledges a write that depends on something unsynced.

pub mod power_loss;
mod std_fs;

use std::any::Any;
use std::ffi::OsString;
use std::io;
use std::path::Path;

pub use std_fs::StdFs;

/// The file operations the engine uses. Implemented by [`StdFs`] (the default, the
/// operating system's files) and by [`power_loss::PowerLossFs`] (an in-memory disk that
/// can lose power).
pub trait FileSystem: Send + Sync + 'static {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// True when `path` names an existing file or directory.
    fn exists(&self, path: &Path) -> bool;
    /// The names of the entries in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// Creates a new, empty file for appending; fails if `path` exists. The new name is
    /// durable only after [`FileSystem::sync_dir`].
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for positional reads.
    fn open(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Makes everything written to `path` durable (`fdatasync`).
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Cuts `path` to `len` bytes and makes the new length durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Atomically renames `from` to `to`, replacing `to`. Durable after `sync_dir`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a name. Durable after `sync_dir`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// `fsync` of the directory: every name created, renamed or removed in it so far is
    /// durable when this returns.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes the directory lock (exclusive for a writer, shared for a reader), held until
    /// the returned value is dropped. Fails with [`io::ErrorKind::WouldBlock`] when
    /// another holder conflicts.
    fn lock(&self, dir: &Path, exclusive: bool) -> io::Result<Box<dyn Any + Send + Sync>>;
}

/// A file being written from start to end.
pub trait WritableFile: Send {
    /// Appends `buf` (one `write` call for the real file).
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// `fdatasync`: the data appended so far survives a power cut.
    fn sync_data(&mut self) -> io::Result<()>;
    /// `fsync`: data and metadata (the file's size) survive a power cut.
    fn sync_all(&mut self) -> io::Result<()>;
    /// A hint to start writing `len` bytes from `offset` to disk in the background, so
    /// that a later sync waits for less. Durability does not depend on it.
    fn start_writeback(&mut self, _offset: u64, _len: u64) {}
}

/// A file read at arbitrary offsets, from any number of threads at once.
pub trait ReadableFile: Send + Sync {
    /// Fills `buf` from `offset`; fails if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
}
