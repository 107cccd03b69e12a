//! The agent's configuration: one struct, filled from a TOML file, then
//! `CHILD_AGENT_*` environment variables, then flags — later sources win.
//!
//! clap already merges flags over environment variables; this module lays the
//! file underneath and checks every value once, so the rest of the agent works
//! with a complete, valid [`AgentConfig`].

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Deserialize;

/// The UDP port the Android CST child listens on, and so the one parent apps use.
pub const DEFAULT_LEGACY_PORT: u16 = 8888;
/// Fastest simulated clock accepted: one real second counts as at most an hour.
pub const MAX_SPEED: f64 = 3600.0;
/// How long a hook may run before it is killed and counts as failed.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest hook timeout accepted, in seconds.
pub const MAX_HOOK_TIMEOUT_SECS: f64 = 3600.0;
/// How often an unenrolled agent asks the hubs it hears whether it is being adopted.
pub const DEFAULT_ADOPT_POLL: Duration = Duration::from_secs(3);

/// Where "is someone using this device right now?" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsageSourceKind {
    /// Always in use; with `--speed` for demos and tests.
    Simulated,
    /// Active while a session of the child's (`--child-user`) is active,
    /// local, unlocked and not idle, asked of logind over D-Bus.
    Logind,
    /// Active while a probe command (`--usage-command`) exits 0.
    Command,
}

/// How the agent locks the device itself, besides any hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionLock {
    /// Lock the child's sessions through logind (over D-Bus), and lock
    /// again whenever one is unlocked while the device must stay locked.
    Logind,
    /// Not at all: hooks (`--on-lock`) do it, or nothing does.
    Off,
}

/// How much of the legacy CST protocol the agent answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegacyModeArg {
    /// Discovery and every command.
    Full,
    /// Discovery and GET_TIME_LEFT only.
    ReadOnly,
    /// No UDP socket at all.
    Off,
}

/// `child-agent run` flags. Every one may also come from the environment or
/// from the config file; none is required on the command line.
#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// TOML file with any of the settings below (flags and environment win).
    #[arg(long, env = "CHILD_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the agent's store and control socket.
    #[arg(long, env = "CHILD_AGENT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Policy file (TOML); without it the documented default policy applies.
    #[arg(long, env = "CHILD_AGENT_POLICY")]
    pub policy: Option<PathBuf>,
    /// The child's login name: whose sessions are metered and locked.
    #[arg(long, env = "CHILD_AGENT_CHILD_USER")]
    pub child_user: Option<String>,
    /// Where usage is measured from (default: logind; simulated with --speed).
    #[arg(long, env = "CHILD_AGENT_USAGE_SOURCE", value_enum)]
    pub usage_source: Option<UsageSourceKind>,
    /// With the simulated source: one real second counts as this many seconds
    /// (other sources take only 1, the default). Implies the simulated source.
    #[arg(long, env = "CHILD_AGENT_SPEED")]
    pub speed: Option<f64>,
    /// How the device is locked besides hooks (default: logind; off when simulated).
    #[arg(long, env = "CHILD_AGENT_SESSION_LOCK", value_enum)]
    pub session_lock: Option<SessionLock>,
    /// Run for real with no way to lock the device (no logind lock, no
    /// --on-lock hook). Without it such a run refuses to start.
    #[arg(long, env = "CHILD_AGENT_NO_ENFORCE")]
    pub no_enforce: bool,
    /// Carry out legacy commands sent from this device's own addresses
    /// (for tests and demos: it lets any local user grant time).
    #[arg(long, env = "CHILD_AGENT_LEGACY_ALLOW_LOCAL")]
    pub legacy_allow_local: bool,
    /// With the command source: the probe, run with `sh -c`; exit 0 means "in use".
    #[arg(long, env = "CHILD_AGENT_USAGE_COMMAND")]
    pub usage_command: Option<String>,
    /// UDP port of the legacy CST responder.
    #[arg(long, env = "CHILD_AGENT_LEGACY_PORT")]
    pub legacy_port: Option<u16>,
    /// Address the legacy responder binds to.
    #[arg(long, env = "CHILD_AGENT_LEGACY_BIND")]
    pub legacy_bind: Option<IpAddr>,
    /// How much of the legacy protocol to answer.
    #[arg(long, env = "CHILD_AGENT_LEGACY_MODE", value_enum)]
    pub legacy_mode: Option<LegacyModeArg>,
    /// Run (with `sh -c`) when the device must lock, e.g. `loginctl lock-sessions`.
    #[arg(long, env = "CHILD_AGENT_ON_LOCK")]
    pub on_lock: Option<String>,
    /// Run when the device may be used again.
    #[arg(long, env = "CHILD_AGENT_ON_UNLOCK")]
    pub on_unlock: Option<String>,
    /// Run when little time is left (warning) and when the grace period starts.
    #[arg(long, env = "CHILD_AGENT_ON_WARNING")]
    pub on_warning: Option<String>,
    /// Seconds a hook may run before it is killed and counts as failed (default 30).
    #[arg(long, env = "CHILD_AGENT_HOOK_TIMEOUT")]
    pub hook_timeout: Option<f64>,
    /// Announce the agent over mDNS (and, unenrolled, listen for hubs) on this
    /// interface only [default: the one it enrolled with, else every interface].
    #[arg(long, env = "CHILD_AGENT_MDNS_INTERFACE", conflicts_with = "no_mdns")]
    pub mdns_interface: Option<String>,
    /// Do not announce the agent over mDNS; an unenrolled agent then cannot be adopted.
    #[arg(long, env = "CHILD_AGENT_NO_MDNS")]
    pub no_mdns: bool,
    /// The host name the agent announces and gives the hub [default: this host's name].
    #[arg(long, env = "CHILD_AGENT_HOST_NAME")]
    pub host_name: Option<String>,
    /// Seconds between an unenrolled agent's asks of the hubs it hears (0.2 to 3600;
    /// default 3).
    #[arg(long, env = "CHILD_AGENT_ADOPT_POLL")]
    pub adopt_poll: Option<f64>,
}

/// The same settings as [`RunArgs`], as a config file spells them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    policy: Option<PathBuf>,
    child_user: Option<String>,
    usage_source: Option<UsageSourceKind>,
    speed: Option<f64>,
    session_lock: Option<SessionLock>,
    no_enforce: Option<bool>,
    legacy_allow_local: Option<bool>,
    usage_command: Option<String>,
    legacy_port: Option<u16>,
    legacy_bind: Option<IpAddr>,
    legacy_mode: Option<LegacyModeArg>,
    on_lock: Option<String>,
    on_unlock: Option<String>,
    on_warning: Option<String>,
    hook_timeout: Option<f64>,
    mdns_interface: Option<String>,
    no_mdns: Option<bool>,
    host_name: Option<String>,
    adopt_poll: Option<f64>,
}

/// A complete, checked configuration for `child-agent run`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub data_dir: PathBuf,
    pub policy: Option<PathBuf>,
    pub child_user: Option<String>,
    pub usage_source: UsageSourceKind,
    pub speed: f64,
    pub usage_command: Option<String>,
    pub session_lock: SessionLock,
    pub no_enforce: bool,
    pub legacy_port: u16,
    pub legacy_bind: IpAddr,
    pub legacy_mode: LegacyModeArg,
    pub legacy_allow_local: bool,
    pub hooks: Hooks,
    pub mdns: Mdns,
    /// The host name announced and given to the hub.
    pub host_name: String,
    pub adopt_poll: Duration,
}

/// Where the agent announces itself over mDNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mdns {
    /// Not at all (`--no-mdns`).
    Off,
    /// On this interface, or on the enrollment's (every interface without one).
    On { interface: Option<String> },
}

impl AgentConfig {
    /// A demo or test run: use is simulated, nothing real is measured.
    pub fn is_simulated(&self) -> bool {
        self.usage_source == UsageSourceKind::Simulated
    }
}

/// Shell commands run on state changes; see [`crate::enforcer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    pub on_lock: Option<String>,
    pub on_unlock: Option<String>,
    pub on_warning: Option<String>,
    /// A hook still running after this is killed and counts as failed.
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            on_lock: None,
            on_unlock: None,
            on_warning: None,
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

/// A setting that cannot be used, named so the user can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "data_dir is required (--data-dir, CHILD_AGENT_DATA_DIR or data_dir in the config file)"
    )]
    MissingDataDir,
    #[error("speed must be a number greater than 0 and at most {MAX_SPEED}, got {0}")]
    Speed(f64),
    #[error(
        "speed other than 1 applies only to usage_source = simulated (real use passes in real time), got {0}"
    )]
    SpeedWithoutSimulation(f64),
    #[error(
        "usage_command is required with usage_source = command (--usage-command, CHILD_AGENT_USAGE_COMMAND)"
    )]
    MissingUsageCommand,
    #[error(
        "child_user is required with usage_source = logind or session_lock = logind \
         (--child-user NAME, CHILD_AGENT_CHILD_USER): the agent meters and locks that user's \
         sessions; for a demo, --usage-source simulated"
    )]
    MissingChildUser,
    #[error("legacy_port must be 1-65535, got 0")]
    LegacyPort,
    #[error(
        "hook_timeout must be a number of seconds greater than 0 and at most {MAX_HOOK_TIMEOUT_SECS}, got {0}"
    )]
    HookTimeout(f64),
    #[error("adopt_poll must be 0.2 to 3600 seconds, got {0}")]
    AdoptPoll(f64),
    #[error("host_name must be 1 to 63 letters, digits and '-' (a DNS label), got {0:?}")]
    HostName(String),
}

impl RunArgs {
    /// Lays flags and environment (already merged by clap) over the config
    /// file and the defaults, and checks the result.
    pub fn resolve(self) -> Result<AgentConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .ok_or(ConfigError::MissingDataDir)?;
        let speed = self.speed.or(file.speed);
        // Simulated only when asked for, by name or by a speed.
        let usage_source = self
            .usage_source
            .or(file.usage_source)
            .unwrap_or(if speed.is_some() {
                UsageSourceKind::Simulated
            } else {
                UsageSourceKind::Logind
            });
        if let Some(speed) = speed {
            if !(speed > 0.0 && speed <= MAX_SPEED) {
                return Err(ConfigError::Speed(speed));
            }
            // Speed 1 is the real clock: harmless with any source, so a
            // config file may spell it out.
            if usage_source != UsageSourceKind::Simulated && speed != 1.0 {
                return Err(ConfigError::SpeedWithoutSimulation(speed));
            }
        }
        let usage_command = self.usage_command.or(file.usage_command);
        if usage_source == UsageSourceKind::Command && usage_command.is_none() {
            return Err(ConfigError::MissingUsageCommand);
        }
        let session_lock = self.session_lock.or(file.session_lock).unwrap_or(
            if usage_source == UsageSourceKind::Simulated {
                SessionLock::Off
            } else {
                SessionLock::Logind
            },
        );
        let child_user = self.child_user.or(file.child_user);
        let needs_user =
            usage_source == UsageSourceKind::Logind || session_lock == SessionLock::Logind;
        if needs_user && child_user.is_none() {
            return Err(ConfigError::MissingChildUser);
        }
        let legacy_port = self
            .legacy_port
            .or(file.legacy_port)
            .unwrap_or(DEFAULT_LEGACY_PORT);
        if legacy_port == 0 {
            return Err(ConfigError::LegacyPort);
        }
        let hook_timeout = match self.hook_timeout.or(file.hook_timeout) {
            None => DEFAULT_HOOK_TIMEOUT,
            Some(secs) if secs > 0.0 && secs <= MAX_HOOK_TIMEOUT_SECS => {
                Duration::from_secs_f64(secs)
            }
            Some(secs) => return Err(ConfigError::HookTimeout(secs)),
        };
        let mdns = if self.no_mdns || file.no_mdns.unwrap_or(false) {
            Mdns::Off
        } else {
            Mdns::On {
                interface: self.mdns_interface.or(file.mdns_interface),
            }
        };
        let host_name = self
            .host_name
            .or(file.host_name)
            .unwrap_or_else(default_host_name);
        let label_ok = !host_name.is_empty()
            && host_name.len() <= 63
            && host_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !label_ok {
            return Err(ConfigError::HostName(host_name));
        }
        let adopt_poll = match self.adopt_poll.or(file.adopt_poll) {
            None => DEFAULT_ADOPT_POLL,
            Some(secs) if (0.2..=3600.0).contains(&secs) => Duration::from_secs_f64(secs),
            Some(secs) => return Err(ConfigError::AdoptPoll(secs)),
        };
        Ok(AgentConfig {
            mdns,
            host_name,
            adopt_poll,
            data_dir,
            policy: self.policy.or(file.policy),
            child_user,
            usage_source,
            speed: speed.unwrap_or(1.0),
            usage_command,
            session_lock,
            no_enforce: self.no_enforce || file.no_enforce.unwrap_or(false),
            legacy_port,
            legacy_bind: self
                .legacy_bind
                .or(file.legacy_bind)
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
            legacy_mode: self
                .legacy_mode
                .or(file.legacy_mode)
                .unwrap_or(LegacyModeArg::Full),
            legacy_allow_local: self.legacy_allow_local || file.legacy_allow_local.unwrap_or(false),
            hooks: Hooks {
                on_lock: self.on_lock.or(file.on_lock),
                on_unlock: self.on_unlock.or(file.on_unlock),
                on_warning: self.on_warning.or(file.on_warning),
                timeout: hook_timeout,
            },
        })
    }
}

/// This host's name as a DNS label: its first part, with anything but letters, digits
/// and '-' left out.
fn default_host_name() -> String {
    let name = crate::enroll::host_name();
    let label: String = name
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(63)
        .collect();
    if label.is_empty() {
        "child-device".to_owned()
    } else {
        label
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

impl fmt::Display for AgentConfig {
    /// One line per setting, for the start-up log. Nothing here is secret:
    /// the device ID lives in the store, not in the configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data_dir = {}", self.data_dir.display())?;
        match &self.policy {
            Some(p) => writeln!(f, "policy = {}", p.display())?,
            None => writeln!(f, "policy = (default)")?,
        }
        writeln!(
            f,
            "child_user = {}",
            self.child_user.as_deref().unwrap_or("(none)")
        )?;
        writeln!(f, "usage_source = {:?}", self.usage_source)?;
        writeln!(f, "speed = {}", self.speed)?;
        writeln!(f, "session_lock = {:?}", self.session_lock)?;
        writeln!(f, "no_enforce = {}", self.no_enforce)?;
        if let Some(c) = &self.usage_command {
            writeln!(f, "usage_command = {c}")?;
        }
        writeln!(
            f,
            "legacy = {:?} on {}:{}",
            self.legacy_mode, self.legacy_bind, self.legacy_port
        )?;
        writeln!(f, "legacy_allow_local = {}", self.legacy_allow_local)?;
        for (name, hook) in [
            ("on_lock", &self.hooks.on_lock),
            ("on_unlock", &self.hooks.on_unlock),
            ("on_warning", &self.hooks.on_warning),
        ] {
            writeln!(f, "{name} = {}", hook.as_deref().unwrap_or("(none)"))?;
        }
        writeln!(f, "hook_timeout = {:?}", self.hooks.timeout)?;
        match &self.mdns {
            Mdns::Off => writeln!(f, "mdns = off")?,
            Mdns::On { interface } => writeln!(
                f,
                "mdns = on {}",
                interface.as_deref().unwrap_or("(the enrollment's, or all)")
            )?,
        }
        writeln!(f, "host_name = {}", self.host_name)?;
        writeln!(f, "adopt_poll = {:?}", self.adopt_poll)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let f = file(
            "data_dir = \"/from/file\"\nlegacy_port = 9999\nlegacy_mode = \"read-only\"\nusage_source = \"simulated\"\n",
        );
        let args = RunArgs {
            config: Some(f.path().to_owned()),
            legacy_port: Some(7777),
            ..RunArgs::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.legacy_port, 7777);
        assert_eq!(config.legacy_mode, LegacyModeArg::ReadOnly);
        assert_eq!(config.usage_source, UsageSourceKind::Simulated);
        assert_eq!(config.session_lock, SessionLock::Off);
        assert_eq!(config.speed, 1.0);
        assert_eq!(config.hooks.timeout, DEFAULT_HOOK_TIMEOUT);
    }

    #[test]
    fn a_real_run_meters_and_locks_with_logind_by_default() {
        let real = RunArgs {
            data_dir: Some("/x".into()),
            child_user: Some("anna".into()),
            ..RunArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(real.usage_source, UsageSourceKind::Logind);
        assert_eq!(real.session_lock, SessionLock::Logind);
        assert!(!real.is_simulated() && !real.no_enforce && !real.legacy_allow_local);
        let err = RunArgs {
            data_dir: Some("/x".into()),
            ..RunArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(matches!(err, ConfigError::MissingChildUser), "{err}");
        assert!(err.to_string().contains("--child-user"), "{err}");
        // A speed means a simulation, which needs no user and locks nothing.
        let demo = RunArgs {
            data_dir: Some("/x".into()),
            speed: Some(60.0),
            ..RunArgs::default()
        }
        .resolve()
        .unwrap();
        assert!(demo.is_simulated());
        assert_eq!(demo.session_lock, SessionLock::Off);
        // Hooks instead of logind: no user needed with another source.
        let hooks = RunArgs {
            data_dir: Some("/x".into()),
            usage_source: Some(UsageSourceKind::Command),
            usage_command: Some("true".into()),
            session_lock: Some(SessionLock::Off),
            on_lock: Some("lock-it".into()),
            ..RunArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(hooks.child_user, None);
    }

    #[test]
    fn the_hook_timeout_comes_from_the_file_or_a_flag() {
        let f = file("data_dir = \"/x\"\nhook_timeout = 5\nusage_source = \"simulated\"\n");
        let from_file = RunArgs {
            config: Some(f.path().to_owned()),
            ..RunArgs::default()
        };
        assert_eq!(
            from_file.resolve().unwrap().hooks.timeout,
            Duration::from_secs(5)
        );
        let from_flag = RunArgs {
            config: Some(f.path().to_owned()),
            hook_timeout: Some(0.5),
            ..RunArgs::default()
        };
        assert_eq!(
            from_flag.resolve().unwrap().hooks.timeout,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn mdns_host_name_and_poll_come_from_the_file_or_flags() {
        let f = file(
            "data_dir = \"/x\"\nusage_source = \"simulated\"\nmdns_interface = \"eth1\"\nhost_name = \"tablet\"\n",
        );
        let config = RunArgs {
            config: Some(f.path().to_owned()),
            adopt_poll: Some(0.5),
            ..RunArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            config.mdns,
            Mdns::On {
                interface: Some("eth1".into())
            }
        );
        assert_eq!(config.host_name, "tablet");
        assert_eq!(config.adopt_poll, Duration::from_millis(500));
        let off = RunArgs {
            config: Some(f.path().to_owned()),
            no_mdns: true,
            ..RunArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(off.mdns, Mdns::Off);
        for (poll, name) in [(Some(0.1), None), (None, Some("tab let"))] {
            let err = RunArgs {
                config: Some(f.path().to_owned()),
                adopt_poll: poll,
                host_name: name.map(str::to_owned),
                ..RunArgs::default()
            }
            .resolve()
            .unwrap_err();
            assert!(
                matches!(err, ConfigError::AdoptPoll(_) | ConfigError::HostName(_)),
                "{err}"
            );
        }
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named() {
        let f = file("data_dir = \"/x\"\nusage_source = \"simulated\"\nlegacy_prot = 1\n");
        let err = RunArgs {
            config: Some(f.path().to_owned()),
            ..RunArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("legacy_prot"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_the_allowed_range() {
        let base = || RunArgs {
            data_dir: Some("/x".into()),
            child_user: Some("anna".into()),
            ..RunArgs::default()
        };
        let err = RunArgs {
            speed: Some(0.0),
            ..base()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("greater than 0"), "{err}");
        let err = RunArgs {
            usage_source: Some(UsageSourceKind::Command),
            ..base()
        }
        .resolve()
        .unwrap_err();
        assert!(matches!(err, ConfigError::MissingUsageCommand));
        let err = RunArgs {
            usage_source: Some(UsageSourceKind::Logind),
            speed: Some(60.0),
            ..base()
        }
        .resolve()
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::SpeedWithoutSimulation(60.0)),
            "{err}"
        );
        let real_time = RunArgs {
            usage_source: Some(UsageSourceKind::Logind),
            speed: Some(1.0),
            ..base()
        };
        assert_eq!(
            real_time.resolve().unwrap().speed,
            1.0,
            "speed 1 is accepted with any source"
        );
        let err = RunArgs {
            legacy_port: Some(0),
            ..base()
        }
        .resolve()
        .unwrap_err();
        assert!(matches!(err, ConfigError::LegacyPort));
        for bad in [0.0, -1.0, 7200.0, f64::NAN] {
            let err = RunArgs {
                hook_timeout: Some(bad),
                ..base()
            }
            .resolve()
            .unwrap_err();
            assert!(err.to_string().contains("hook_timeout must be"), "{err}");
        }
        assert!(matches!(
            RunArgs::default().resolve().unwrap_err(),
            ConfigError::MissingDataDir
        ));
    }
}
