//! The local control socket: how the child's side talks to the running
//! agent (`child-agent status`, `show-id`, `request-time`).
//!
//! One JSON request per line, one JSON response per line, on a UNIX socket
//! in the data directory. The socket is open to every local user on purpose:
//! it offers only what the child may do anyway — read the status, read the
//! device ID the lock screen shows, spend the child's own credits.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use household_core::Status;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::agent::Agent;

/// The socket's file name inside the data directory.
pub const SOCKET_NAME: &str = "control.sock";

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum ControlRequest {
    Status,
    ShowId,
    RequestTime {
        minutes: i64,
    },
    /// The last `limit` events the agent recorded.
    Log {
        limit: usize,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlResponse {
    Status(StatusView),
    DeviceId(String),
    Events(Vec<household_core::Event>),
    Error(String),
}

/// The status as the child's tools show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    pub state: String,
    pub remaining_minutes: i64,
    pub used_minutes: i64,
    /// The same to the second, for scripts that watch use as it happens.
    pub used_seconds: i64,
    pub allowance_minutes: i64,
    pub credit_minutes: i64,
    pub five_minute_credits_left: i64,
    pub ten_minute_credits_left: i64,
    pub next_change_at: Option<String>,
    /// The reply a CST parent app would get for `GET_TIME_LEFT`.
    pub cst_time_left: String,
}

impl StatusView {
    pub fn new(status: &Status, device: &household_core::DeviceId) -> Self {
        Self {
            state: status.state_on_device(device).name().to_owned(),
            remaining_minutes: status.remaining_minutes(),
            used_minutes: status.used_minutes(),
            used_seconds: status.used_seconds,
            allowance_minutes: status.allowance_minutes,
            credit_minutes: status.credit_minutes(),
            five_minute_credits_left: status.credits_left.five_minute,
            ten_minute_credits_left: status.credits_left.ten_minute,
            next_change_at: status.next_change_at.map(|t| t.to_string()),
            cst_time_left: status.cst_on_device(device).reply_text(),
        }
    }
}

impl std::fmt::Display for StatusView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "state:      {}", self.state)?;
        writeln!(
            f,
            "time left:  {} min (used {} of {} min today)",
            self.remaining_minutes, self.used_minutes, self.credit_minutes
        )?;
        writeln!(f, "allowance:  {} min", self.allowance_minutes)?;
        writeln!(
            f,
            "credits:    {} x 5 min, {} x 10 min",
            self.five_minute_credits_left, self.ten_minute_credits_left
        )?;
        if let Some(next) = &self.next_change_at {
            writeln!(f, "next change: {next}")?;
        }
        write!(f, "legacy:     {}", self.cst_time_left)
    }
}

/// Why the control socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: unreadable response: {message}")]
    Protocol { path: PathBuf, message: String },
}

/// Serves the control socket until `shutdown` fires. The caller holds the
/// store, so no other agent can be serving this data directory: a socket
/// file already there is stale and is replaced.
pub async fn serve(
    agent: Arc<Agent>,
    data_dir: &Path,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ControlError> {
    let path = socket_path(data_dir);
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let listener = UnixListener::bind(&path).map_err(io)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).map_err(io)?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Connections are short: one request, one response.
                    let agent = agent.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(agent, stream).await {
                            tracing::debug!(error = %e, "control connection failed");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
            },
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

async fn handle(agent: Arc<Agent>, stream: UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    let response = match serde_json::from_str::<ControlRequest>(&line) {
        // Off the runtime: a credit is flushed to disk before it is answered,
        // and the agent's state may be held by a write in progress.
        Ok(request) => tokio::task::spawn_blocking(move || answer(&agent, request))
            .await
            .unwrap_or_else(|e| ControlResponse::Error(format!("request failed: {e}"))),
        Err(e) => ControlResponse::Error(format!("bad request: {e}")),
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_default();
    out.push(b'\n');
    write.write_all(&out).await
}

fn answer(agent: &Agent, request: ControlRequest) -> ControlResponse {
    let device = household_core::DeviceId::from(agent.device_id());
    let result = match request {
        ControlRequest::ShowId => return ControlResponse::DeviceId(agent.device_id().to_owned()),
        ControlRequest::Log { limit } => {
            return match agent.recent_events(limit) {
                Ok(events) => ControlResponse::Events(events),
                Err(e) => ControlResponse::Error(e.to_string()),
            };
        }
        ControlRequest::Status => agent.status(),
        ControlRequest::RequestTime { minutes } => agent.spend_credit(minutes),
    };
    match result {
        Ok(status) => ControlResponse::Status(StatusView::new(&status, &device)),
        Err(e) => ControlResponse::Error(e.to_string()),
    }
}

/// Sends one request to a running agent. `Ok(None)` means no agent is
/// listening there (no socket, or a stale one).
pub async fn call(
    data_dir: &Path,
    request: &ControlRequest,
) -> Result<Option<ControlResponse>, ControlError> {
    let path = socket_path(data_dir);
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    let stream = match UnixStream::connect(&path).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(io(e)),
    };
    let (read, mut write) = stream.into_split();
    let mut out = serde_json::to_vec(request).unwrap_or_default();
    out.push(b'\n');
    write.write_all(&out).await.map_err(io)?;
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(io)?;
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|e| ControlError::Protocol {
            path: path.clone(),
            message: e.to_string(),
        })
}
