//! Where "is the device in use right now?" comes from.
//!
//! A source is asked once per meter tick. It only answers yes or no; how long
//! the answer held is the meter's business (see [`crate::meter`]), measured on
//! the monotonic clock.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::config::UsageSourceKind;

/// A probe that takes longer than this counts as failed, so a hung command
/// cannot stall metering.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A usage source, chosen by `--usage-source`.
#[derive(Debug, Clone)]
pub enum UsageSource {
    /// Always in use.
    Simulated,
    /// A local, active, non-idle logind session, read with `loginctl`.
    Logind,
    /// A user-supplied probe run with `sh -c`; exit status 0 means in use.
    Command(String),
}

/// Why a source could not answer. The meter counts such a tick as idle and
/// logs the reason: time is never charged for use nobody observed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{program}` did not finish within {PROBE_TIMEOUT:?}")]
    Timeout { program: String },
    #[error("`{program}` failed: {stderr}")]
    Failed { program: String, stderr: String },
}

impl UsageSource {
    pub fn new(kind: UsageSourceKind, command: Option<String>) -> Self {
        match (kind, command) {
            (UsageSourceKind::Simulated, _) => Self::Simulated,
            (UsageSourceKind::Logind, _) => Self::Logind,
            (UsageSourceKind::Command, Some(command)) => Self::Command(command),
            // The configuration refuses `command` without a probe.
            (UsageSourceKind::Command, None) => Self::Simulated,
        }
    }

    /// Is the device in use at this moment?
    pub async fn is_active(&self) -> Result<bool, SourceError> {
        match self {
            Self::Simulated => Ok(true),
            Self::Command(command) => {
                let status = run("sh", &["-c", command]).await?.status;
                Ok(status.success())
            }
            Self::Logind => logind_active().await,
        }
    }
}

async fn run(program: &str, args: &[&str]) -> Result<std::process::Output, SourceError> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| SourceError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    match tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(source)) => Err(SourceError::Spawn {
            program: program.to_owned(),
            source,
        }),
        Err(_) => Err(SourceError::Timeout {
            program: program.to_owned(),
        }),
    }
}

async fn logind_active() -> Result<bool, SourceError> {
    let list = checked(
        run("loginctl", &["list-sessions", "--no-legend"]).await?,
        "loginctl",
    )?;
    for id in session_ids(&list) {
        let show = checked(
            run(
                "loginctl",
                &[
                    "show-session",
                    id,
                    "--property=Active",
                    "--property=IdleHint",
                    "--property=Remote",
                    "--property=Class",
                ],
            )
            .await?,
            "loginctl",
        )?;
        if session_in_use(&show) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn checked(output: std::process::Output, program: &str) -> Result<String, SourceError> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(SourceError::Failed {
            program: program.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Session IDs from `loginctl list-sessions --no-legend`: the first column.
fn session_ids(list: &str) -> impl Iterator<Item = &str> {
    list.lines()
        .filter_map(|line| line.split_whitespace().next())
}

/// A session counts as use when a person sits at it: a local user session,
/// in the foreground, not idle.
fn session_in_use(properties: &str) -> bool {
    let value = |name: &str| {
        properties
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
    };
    value("Active") == Some("yes")
        && value("IdleHint") == Some("no")
        && value("Remote") == Some("no")
        && value("Class") == Some("user")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_the_first_column() {
        let list = "     2 1000 anna seat0 tty2\n    c1  120 gdm  seat0 tty1\n";
        assert_eq!(session_ids(list).collect::<Vec<_>>(), ["2", "c1"]);
        assert_eq!(session_ids("").count(), 0);
    }

    #[test]
    fn only_an_active_local_non_idle_user_session_is_use() {
        let active = "Active=yes\nIdleHint=no\nRemote=no\nClass=user\n";
        assert!(session_in_use(active));
        assert!(!session_in_use(
            &active.replace("IdleHint=no", "IdleHint=yes")
        ));
        assert!(!session_in_use(&active.replace("Active=yes", "Active=no")));
        assert!(!session_in_use(&active.replace("Remote=no", "Remote=yes")));
        assert!(!session_in_use(
            &active.replace("Class=user", "Class=greeter")
        ));
        assert!(!session_in_use(""));
    }

    #[tokio::test]
    async fn the_command_source_follows_the_exit_status() {
        assert!(
            UsageSource::Command("true".into())
                .is_active()
                .await
                .unwrap()
        );
        assert!(
            !UsageSource::Command("exit 3".into())
                .is_active()
                .await
                .unwrap()
        );
    }
}
