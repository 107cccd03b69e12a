//! Files only the agent's owner may read (its enrollment, its adoption key), written
//! whole or not at all, so a crash or a full disk leaves the old file or the new one.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Writes `bytes` to `data_dir/name`, mode 0600: a temporary file, synced, renamed over
/// the old one, and the directory synced so the rename survives a power cut.
pub fn write(data_dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = data_dir.join(format!("{name}.tmp"));
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, data_dir.join(name))?;
    std::fs::File::open(data_dir).and_then(|dir| dir.sync_all())
}
