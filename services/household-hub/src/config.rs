//! The hub's configuration: one struct, filled from the TOML file, then the
//! `HOUSEHOLD_HUB_*` environment, then the command line (each later source wins), and
//! printed at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

/// `household-hub serve` flags; every one may also come from the environment.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Where the hub keeps its registry, event log and keys (created owner-only).
    #[arg(long, env = "HOUSEHOLD_HUB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the TLS port for guardians and agents [default: 0.0.0.0:7443].
    #[arg(long, env = "HOUSEHOLD_HUB_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The admin socket (owner-only) [default: DATA_DIR/admin.sock].
    #[arg(long, env = "HOUSEHOLD_HUB_ADMIN_SOCKET")]
    pub admin_socket: Option<PathBuf>,
    /// HOST:PORT clients reach the hub at; announced over mDNS and written into the
    /// server certificate [default: this host's name and the listen port].
    #[arg(long, env = "HOUSEHOLD_HUB_ADVERTISE")]
    pub advertise: Option<String>,
    /// Announce over mDNS on this interface only [default: every interface].
    #[arg(long, env = "HOUSEHOLD_HUB_MDNS_INTERFACE", conflicts_with = "no_mdns")]
    pub mdns_interface: Option<String>,
    /// Do not announce over mDNS (nor listen there for child agents).
    #[arg(long, env = "HOUSEHOLD_HUB_NO_MDNS")]
    pub no_mdns: bool,
    /// Seconds after which a child agent heard over mDNS that stops answering is
    /// reported gone (2 to 3600) [default: 120, the agents' address record TTL].
    #[arg(long, env = "HOUSEHOLD_HUB_AGENT_EXPIRY")]
    pub agent_expiry: Option<u64>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, env = "HOUSEHOLD_HUB_METRICS")]
    pub metrics: Option<SocketAddr>,
    /// A TOML file with any of these settings (flag names with '_' for '-').
    #[arg(long, env = "HOUSEHOLD_HUB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Calls per second each identity may make, sustained [default: 50; 0 turns the
    /// limit off].
    #[arg(long, env = "HOUSEHOLD_HUB_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Watch streams one credential may hold open [default: 8].
    #[arg(long, env = "HOUSEHOLD_HUB_MAX_WATCHES")]
    pub max_watches: Option<usize>,
    /// Seconds between two polls of each legacy CST device [default: 30; 0 turns the
    /// legacy bridge off].
    #[arg(long, env = "HOUSEHOLD_HUB_LEGACY_POLL")]
    pub legacy_poll: Option<u64>,
}

/// The same settings in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    admin_socket: Option<PathBuf>,
    advertise: Option<String>,
    mdns_interface: Option<String>,
    #[serde(default)]
    no_mdns: bool,
    agent_expiry: Option<u64>,
    metrics: Option<SocketAddr>,
    rate_limit: Option<f64>,
    max_watches: Option<usize>,
    legacy_poll: Option<u64>,
}

/// Where mDNS announces the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mdns {
    Off,
    AllInterfaces,
    Interface(String),
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub admin_socket: PathBuf,
    /// Host and port clients use.
    pub advertise_host: String,
    pub advertise_port: u16,
    pub mdns: Mdns,
    /// How soon an agent heard over mDNS that stopped answering is reported gone.
    pub agent_expiry: std::time::Duration,
    pub metrics: Option<SocketAddr>,
    pub rate_limit_per_second: f64,
    pub max_watches: usize,
    /// Between two polls of a legacy device; `None`: the bridge is off.
    pub legacy_poll: Option<std::time::Duration>,
}

/// A configuration that cannot be used, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

impl ServeConfig {
    /// Resolves flags (and environment, which clap already merged) over the file.
    pub fn resolve(args: ServeArgs) -> Result<ServeConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .ok_or(ConfigError::Invalid {
            setting: "data_dir",
            message:
                "is required (--data-dir, HOUSEHOLD_HUB_DATA_DIR or data_dir in the config file)"
                    .into(),
        })?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], household_proto::DEFAULT_HUB_PORT)));
        let admin_socket = args
            .admin_socket
            .or(file.admin_socket)
            .unwrap_or_else(|| data_dir.join("admin.sock"));
        let (advertise_host, advertise_port) = match args.advertise.or(file.advertise) {
            Some(text) => parse_advertise(&text)?,
            None => (crate::trust::host_name(), listen.port()),
        };
        let mdns = if args.no_mdns || file.no_mdns {
            Mdns::Off
        } else {
            match args.mdns_interface.or(file.mdns_interface) {
                Some(name) => Mdns::Interface(name),
                None => Mdns::AllInterfaces,
            }
        };
        let agent_expiry = args.agent_expiry.or(file.agent_expiry).unwrap_or(120);
        if !(2..=3600).contains(&agent_expiry) {
            return Err(ConfigError::Invalid {
                setting: "agent_expiry",
                message: format!("must be 2 to 3600 seconds, got {agent_expiry}"),
            });
        }
        let rate_limit_per_second = args.rate_limit.or(file.rate_limit).unwrap_or(50.0);
        if !(0.0..=1_000_000.0).contains(&rate_limit_per_second) {
            return Err(ConfigError::Invalid {
                setting: "rate_limit",
                message: format!(
                    "must be 0 to 1000000 calls per second, got {rate_limit_per_second}"
                ),
            });
        }
        let max_watches = args.max_watches.or(file.max_watches).unwrap_or(8);
        if !(1..=10_000).contains(&max_watches) {
            return Err(ConfigError::Invalid {
                setting: "max_watches",
                message: format!("must be 1 to 10000, got {max_watches}"),
            });
        }
        let legacy_poll = args.legacy_poll.or(file.legacy_poll).unwrap_or(30);
        if legacy_poll > 86_400 {
            return Err(ConfigError::Invalid {
                setting: "legacy_poll",
                message: format!("must be 0 (off) to 86400 seconds, got {legacy_poll}"),
            });
        }
        Ok(ServeConfig {
            data_dir,
            listen,
            admin_socket,
            advertise_host,
            advertise_port,
            mdns,
            agent_expiry: std::time::Duration::from_secs(agent_expiry),
            metrics: args.metrics.or(file.metrics),
            rate_limit_per_second,
            max_watches,
            legacy_poll: (legacy_poll > 0).then(|| std::time::Duration::from_secs(legacy_poll)),
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// `HOST:PORT` (an IPv6 host in brackets).
fn parse_advertise(text: &str) -> Result<(String, u16), ConfigError> {
    let invalid = || ConfigError::Invalid {
        setting: "advertise",
        message: format!("must be HOST:PORT, like hub.local:7443 or [fd00::2]:7443; got {text:?}"),
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| invalid())?;
    if host.is_empty() || port == 0 {
        return Err(invalid());
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hub.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nlisten = \"127.0.0.1:9000\"\nno_mdns = true\n",
        )
        .unwrap();
        let config = ServeConfig::resolve(ServeArgs {
            config: Some(file),
            listen: Some("127.0.0.1:9443".parse().unwrap()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.listen.port(), 9443);
        assert_eq!(config.admin_socket, PathBuf::from("/from/file/admin.sock"));
        assert_eq!(config.mdns, Mdns::Off);
        assert_eq!(config.advertise_port, 9443);
        assert_eq!(config.legacy_poll, Some(std::time::Duration::from_secs(30)));
    }

    #[test]
    fn bad_settings_are_named() {
        let err = ServeConfig::resolve(ServeArgs::default()).unwrap_err();
        assert!(err.to_string().starts_with("data_dir:"), "{err}");
        let err = ServeConfig::resolve(ServeArgs {
            data_dir: Some("/d".into()),
            advertise: Some("hub.local".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("advertise:"), "{err}");
        let err = ServeConfig::resolve(ServeArgs {
            data_dir: Some("/d".into()),
            legacy_poll: Some(100_000),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("legacy_poll:"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hub.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = ServeConfig::resolve(ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
