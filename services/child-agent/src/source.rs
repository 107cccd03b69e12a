//! Where "is the device in use right now?" comes from.
//!
//! A source is asked once per meter tick. It only answers yes or no; how long
//! the answer held is the meter's business (see [`crate::meter`]), measured on
//! the monotonic clock.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::logind::{Logind, LogindError};

/// A probe that takes longer than this counts as failed, so a hung command
/// cannot stall metering.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A usage source, chosen by `--usage-source`.
#[derive(Debug, Clone)]
pub enum UsageSource {
    /// Always in use.
    Simulated,
    /// A session of the child's, local, active and not locked (see
    /// [`crate::logind::Session::in_use`]).
    Logind(Logind),
    /// A user-supplied probe run with `sh -c`; exit status 0 means in use.
    Command(String),
}

/// Why a source could not answer. The meter counts such a tick as use
/// (failing closed) and reports the reason in `status` and the log.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{program}` did not finish within {PROBE_TIMEOUT:?}")]
    Timeout { program: String },
    #[error(transparent)]
    Logind(#[from] LogindError),
}

impl UsageSource {
    /// Is the device in use at this moment?
    pub async fn is_active(&self) -> Result<bool, SourceError> {
        match self {
            Self::Simulated => Ok(true),
            Self::Command(command) => {
                let status = run("sh", &["-c", command]).await?.status;
                Ok(status.success())
            }
            Self::Logind(logind) => Ok(logind
                .child_sessions()
                .await?
                .iter()
                .any(|session| session.in_use())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logind::Session;

    fn session(active: bool, locked: bool, idle: bool, remote: bool, class: &str) -> Session {
        Session {
            id: "2".into(),
            path: zbus::zvariant::OwnedObjectPath::try_from("/org/freedesktop/login1/session/_32")
                .unwrap(),
            active,
            locked,
            idle,
            remote,
            class: class.into(),
        }
    }

    #[test]
    fn only_an_active_local_unlocked_user_session_is_use() {
        assert!(session(true, false, false, false, "user").in_use());
        assert!(!session(false, false, false, false, "user").in_use());
        assert!(
            !session(true, true, false, false, "user").in_use(),
            "locked"
        );
        assert!(
            session(true, false, true, false, "user").in_use(),
            "IdleHint is the child's to set: not believed"
        );
        assert!(
            !session(true, false, false, true, "user").in_use(),
            "remote"
        );
        assert!(!session(true, false, false, false, "greeter").in_use());
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
