//! The local control socket: how the child's side talks to the running
//! agent (`child-agent status`, `show-id`, `request-time`).
//!
//! One JSON request per line, one JSON response per line, on a UNIX socket
//! in the data directory. The socket is open to every local user, and what a
//! request may do depends on who sent it (see [`crate::peer`]): anyone may
//! read the status and spend the child's own credits; the device ID (the CST
//! key) and the event log are for administrators only.
//!
//! Everything a peer sends is bounded: a request line of at most
//! [`MAX_REQUEST_BYTES`], sent within [`REQUEST_TIMEOUT`], on one of at most
//! [`MAX_CONNECTIONS`] connections at a time.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use household_core::Status;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::agent::Agent;
use crate::peer::{self, Standing};

/// Longest request line accepted; a longer one is answered with an error
/// and the connection closed, having kept at most this much in memory.
pub const MAX_REQUEST_BYTES: usize = 4096;
/// Longest response a client reads.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// A connection must have sent its request within this time.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 16;

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
    /// Ask the guardians for more time (through the hub).
    AskTime {
        minutes: i64,
        #[serde(default)]
        note: Option<String>,
    },
    /// The last `limit` events the agent recorded.
    Log {
        limit: usize,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlResponse {
    /// Boxed: the status is by far the largest answer.
    Status(Box<StatusView>),
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
    /// What is wrong with the agent (a failing store or usage source);
    /// empty when all is well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// The hub, for an enrolled agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubView>,
    /// While unenrolled: the verification code for each hub heard, which a guardian
    /// adopting this device confirms (`household devices adopt`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairing: Vec<PairingView>,
}

/// One verification code, as the child's tools show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingView {
    /// The household of the hub it is for.
    pub household_id: String,
    /// Six digits.
    pub code: String,
}

/// The hub link as the child's tools show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubView {
    /// The hub's address.
    pub address: String,
    pub connected: bool,
    /// How long it has been connected, or offline, in whole seconds; absent
    /// before the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_seconds: Option<i64>,
    /// Records waiting for the hub's acknowledgement.
    pub outbox_depth: usize,
}

impl HubView {
    pub fn new(link: &crate::agent::LinkView) -> Self {
        use crate::link::Connection;
        let (connected, since) = match link.connection {
            Connection::NotYet => (false, None),
            Connection::Connected { since_unix_micros } => (true, Some(since_unix_micros)),
            Connection::Offline { since_unix_micros } => (false, Some(since_unix_micros)),
        };
        Self {
            address: link.hub.clone(),
            connected,
            for_seconds: since.map(|since| (link.now_unix_micros - since).max(0) / 1_000_000),
            outbox_depth: link.outbox_depth,
        }
    }
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
            problems: Vec::new(),
            hub: None,
            pairing: Vec::new(),
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
        write!(f, "legacy:     {}", self.cst_time_left)?;
        if let Some(hub) = &self.hub {
            let state = match (hub.connected, hub.for_seconds) {
                (true, Some(s)) => format!("connected for {s} s"),
                (false, Some(s)) => format!("offline for {s} s"),
                _ => "not reached yet".to_owned(),
            };
            write!(
                f,
                "\nhub:        {} ({state}; {} records to send)",
                hub.address, hub.outbox_depth
            )?;
        }
        for pairing in &self.pairing {
            write!(
                f,
                "\npairing:    {} (for the hub of household {})",
                household_client::adopt::spaced(&pairing.code),
                pairing.household_id
            )?;
        }
        for problem in &self.problems {
            write!(f, "\nproblem:    {problem}")?;
        }
        Ok(())
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
    // Open to every local user: each request is checked against its sender.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).map_err(io)?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        // Finished connections are reaped as we go, so the set stays small.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let agent = agent.clone();
                    connections.spawn(async move {
                        if let Err(e) = handle(agent, stream).await {
                            tracing::debug!(error = %e, "control connection failed");
                        }
                        drop(slot);
                    });
                }
                Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
            },
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        }
    }
    connections.shutdown().await;
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Reads one request line of at most [`MAX_REQUEST_BYTES`].
async fn read_request(read: tokio::net::unix::OwnedReadHalf) -> Result<String, String> {
    let mut line = Vec::new();
    let mut limited = BufReader::new(read).take(MAX_REQUEST_BYTES as u64 + 1);
    match tokio::time::timeout(REQUEST_TIMEOUT, limited.read_until(b'\n', &mut line)).await {
        Err(_) => return Err(format!("no request within {REQUEST_TIMEOUT:?}")),
        Ok(Err(e)) => return Err(format!("cannot read the request: {e}")),
        Ok(Ok(_)) => {}
    }
    if line.len() > MAX_REQUEST_BYTES {
        return Err(format!(
            "request longer than {MAX_REQUEST_BYTES} bytes; one JSON object per line"
        ));
    }
    String::from_utf8(line).map_err(|_| "request is not UTF-8".to_owned())
}

async fn handle(agent: Arc<Agent>, stream: UnixStream) -> std::io::Result<()> {
    let standing = match stream.peer_cred() {
        Ok(cred) => peer::standing(cred.uid(), cred.gid()),
        // Unknown peers get the least.
        Err(_) => Standing::Child,
    };
    let (read, mut write) = stream.into_split();
    let response = match read_request(read).await {
        Err(message) => ControlResponse::Error(message),
        Ok(line) => match serde_json::from_str::<ControlRequest>(&line) {
            Ok(request) => match permitted(&request, standing) {
                Err(message) => ControlResponse::Error(message),
                // Off the runtime: a credit is flushed to disk before it is
                // answered, and the agent's state may be held by a write.
                Ok(()) => tokio::task::spawn_blocking(move || answer(&agent, request))
                    .await
                    .unwrap_or_else(|e| ControlResponse::Error(format!("request failed: {e}"))),
            },
            Err(e) => ControlResponse::Error(format!(
                "bad request: {e}; expected {{\"command\": \"status\"}}, \
                 {{\"command\": \"request-time\", \"minutes\": 5 or 10}}, \
                 {{\"command\": \"show-id\"}} or {{\"command\": \"log\", \"limit\": N}}"
            )),
        },
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_default();
    out.push(b'\n');
    write.write_all(&out).await
}

/// Whether a peer of `standing` may make `request`: the device ID (the CST
/// key, with which anyone could grant time over the legacy protocol) and the
/// event log are for administrators.
fn permitted(request: &ControlRequest, standing: Standing) -> Result<(), String> {
    match (request, standing) {
        (
            ControlRequest::Status
            | ControlRequest::RequestTime { .. }
            | ControlRequest::AskTime { .. },
            _,
        ) => Ok(()),
        (_, Standing::Admin) => Ok(()),
        (ControlRequest::ShowId, Standing::Child) => Err(format!(
            "show-id is for root and the {} group: the device ID is the key of the legacy protocol",
            peer::ADMIN_GROUP
        )),
        (ControlRequest::Log { .. }, Standing::Child) => Err(format!(
            "log is for root and the {} group",
            peer::ADMIN_GROUP
        )),
    }
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
        ControlRequest::AskTime { minutes, note } => agent.ask_time(minutes, note),
    };
    match result {
        Ok(status) => {
            let mut view = StatusView::new(&status, &device);
            view.problems = agent.health().map(|h| h.problems()).unwrap_or_default();
            view.hub = agent
                .link_view()
                .ok()
                .flatten()
                .map(|link| HubView::new(&link));
            view.pairing = agent
                .pairing()
                .into_iter()
                .map(|p| PairingView {
                    household_id: p.household_id,
                    code: p.code,
                })
                .collect();
            ControlResponse::Status(Box::new(view))
        }
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
    // A response (a log of many events) may be long, but not unbounded.
    let mut line = String::new();
    BufReader::new(read)
        .take(MAX_RESPONSE_BYTES)
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
