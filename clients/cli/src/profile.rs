//! The guardian's profile: which hub, and the key and certificate that make this
//! terminal one of the household's guardians.
//!
//! It lives in `$XDG_CONFIG_HOME/household/profile.json` (or `~/.config/…`), owner-only
//! (the file 0600, its directory 0700), unless `--config FILE` or `HOUSEHOLD_CONFIG`
//! names another file: one machine can act as several guardians, one profile each.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What `household pair` stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// The hub's `HOST:PORT`.
    pub hub: String,
    /// The guardian's name as the household knows it.
    pub display_name: String,
    /// The guardian's identity on the hub.
    pub identity_id: String,
    /// This terminal's credential: its certificate's SHA-256, as the hub names it.
    pub credential_id: String,
    pub ca_pem: String,
    pub chain_pem: String,
    pub key_pem: String,
}

/// Why the profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "not paired with a hub yet ({path}); run `household pair PAIRING-CODE --hub HOST:PORT` first"
    )]
    Missing { path: PathBuf },
    #[error("cannot read the profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the profile {path} is damaged: {source}")]
    Damaged {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the profile {path} can be read by others (mode {mode:o}); run `chmod 600 {path}`")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("cannot write the profile {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no place for the profile: neither XDG_CONFIG_HOME nor HOME is set; use --config FILE")]
    NoHome,
}

/// The profile file: `explicit` (from `--config` or `HOUSEHOLD_CONFIG`), or the default.
pub fn path(explicit: Option<&Path>) -> Result<PathBuf, ProfileError> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or(ProfileError::NoHome)?;
    Ok(base.join("household").join("profile.json"))
}

impl Profile {
    /// Reads the profile at `path`, refusing one that others can read (it holds the key).
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProfileError::Missing {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(ProfileError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ProfileError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ProfileError::Damaged {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the profile to `path`, owner-only, replacing any there.
    pub fn save(&self, path: &Path) -> Result<(), ProfileError> {
        let write_error = |source| ProfileError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(write_error)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| write_error(e.into()))?;
        let temporary = path.with_extension("json.new");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(write_error)?;
        file.write_all(text.as_bytes()).map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        std::fs::rename(&temporary, path).map_err(write_error)
    }
}
