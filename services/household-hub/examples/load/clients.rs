//! The simulated clients: enrollment, TLS channels, Watch streams and agent sessions,
//! each read by its own task that stamps what it receives.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use household_proto::v1::{
    self, agent_client::AgentClient, event::Payload, household_client::HouseholdClient,
    outbox_item::Item as Record, session_request::Message as Up, session_response::Message as Down,
    watch_response::Item,
};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// A received grant: its seq and when it arrived.
pub type Stamp = (u64, Instant);

/// What an enrolled client holds.
#[derive(Clone)]
pub struct Credential {
    pub ca_pem: String,
    pub chain_pem: String,
    pub key_pem: String,
    pub child_id: String,
}

impl Credential {
    fn identity(&self) -> Option<(&str, &str)> {
        Some((&self.chain_pem, &self.key_pem))
    }
}

/// A new TLS connection (HTTP/2) to `addr`, expecting the name "localhost".
pub async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Channel> {
    let tls = household_client::tls_config(ca_pem, identity);
    let channel = Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    Ok(channel)
}

/// A new connection with `credential`'s certificate.
pub async fn connect_as(addr: SocketAddr, credential: &Credential) -> Result<Channel> {
    connect(addr, &credential.ca_pem, credential.identity()).await
}

/// Redeems `code`: a fresh key and CSR, then Agent.Enroll over TLS checked against
/// `ca_pem` (the operator's copy of the CA, `DATA/tls/ca.pem`).
pub async fn enroll(addr: SocketAddr, ca_pem: &str, code: &str, name: &str) -> Result<Credential> {
    let (key_pem, csr_pem) =
        household_client::new_key_and_csr(name).map_err(|e| anyhow!("making a CSR: {e}"))?;
    let mut agent = AgentClient::new(connect(addr, ca_pem, None).await?);
    let response = agent
        .enroll(v1::EnrollRequest {
            pairing_code: code.to_owned(),
            credential: Some(v1::enroll_request::Credential::CsrPem(csr_pem)),
            hostname: name.to_owned(),
            platform: "linux".into(),
            software_version: "load".into(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("enrolling {name}"))?
        .into_inner();
    let chain_pem = match response.credential {
        Some(v1::enroll_response::Credential::Certificate(c)) => c.certificate_chain_pem,
        _ => bail!("no certificate in the enroll response for {name}"),
    };
    Ok(Credential {
        ca_pem: ca_pem.to_owned(),
        chain_pem,
        key_pem,
        child_id: response.child_id,
    })
}

/// What one Watch stream has received.
#[derive(Default)]
pub struct WatchLog {
    /// TimeGranted events (the hub) or every event (the floor), by seq.
    pub grants: Mutex<Vec<Stamp>>,
    pub snapshot: AtomicBool,
    /// Events received, of every kind.
    pub events: AtomicU64,
    /// Snapshots received: 1, plus one per resync after falling behind.
    pub snapshots: AtomicU64,
    /// Encoded size of the largest Snapshot received.
    pub snapshot_bytes: AtomicU64,
    pub caught_up: AtomicBool,
    pub caught_up_notify: Notify,
    /// Newest grant seq seen.
    pub last_grant: AtomicU64,
    /// Why the stream ended, if it did.
    pub ended: Mutex<Option<String>>,
}

impl WatchLog {
    pub fn stamps(&self) -> Vec<Stamp> {
        self.grants.lock().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn ended(&self) -> Option<String> {
        self.ended.lock().ok().and_then(|e| e.clone())
    }

    fn end(&self, why: String) {
        if let Ok(mut ended) = self.ended.lock() {
            ended.get_or_insert(why);
        }
    }
}

/// One open Watch stream and the task reading it.
pub struct Watch {
    pub log: Arc<WatchLog>,
    reader: JoinHandle<()>,
}

impl Watch {
    /// Opens a Watch on `client` (only `child_ids`, or everything) and starts reading.
    pub async fn open(
        client: &mut HouseholdClient<Channel>,
        child_ids: Vec<String>,
    ) -> Result<Watch> {
        let stream = client
            .watch(v1::WatchRequest {
                child_ids,
                ..Default::default()
            })
            .await
            .context("opening a Watch")?
            .into_inner();
        let log = Arc::new(WatchLog::default());
        let reader = tokio::spawn(read_watch(stream, log.clone()));
        Ok(Watch { log, reader })
    }

    /// Waits (at most `limit`) for CaughtUp.
    pub async fn caught_up(&self, limit: Duration) -> bool {
        if self.log.caught_up.load(Ordering::Acquire) {
            return true;
        }
        let _ = tokio::time::timeout(limit, self.log.caught_up_notify.notified()).await;
        self.log.caught_up.load(Ordering::Acquire)
    }

    /// Closes the stream (the reader is dropped with it).
    pub fn close(self) {
        self.reader.abort();
    }
}

async fn read_watch(mut stream: tonic::Streaming<v1::WatchResponse>, log: Arc<WatchLog>) {
    loop {
        match stream.next().await {
            Some(Ok(message)) => {
                let at = Instant::now();
                match message.item {
                    Some(Item::Event(event)) => {
                        log.events.fetch_add(1, Ordering::AcqRel);
                        if matches!(event.payload, Some(Payload::TimeGranted(_))) {
                            if let Ok(mut grants) = log.grants.lock() {
                                grants.push((event.seq, at));
                            }
                            log.last_grant.fetch_max(event.seq, Ordering::AcqRel);
                        }
                    }
                    Some(Item::Snapshot(snapshot)) => {
                        let bytes = prost::Message::encoded_len(&snapshot) as u64;
                        log.snapshot_bytes.fetch_max(bytes, Ordering::AcqRel);
                        log.snapshots.fetch_add(1, Ordering::AcqRel);
                        log.snapshot.store(true, Ordering::Release);
                    }
                    Some(Item::CaughtUp(_)) => {
                        log.caught_up.store(true, Ordering::Release);
                        log.caught_up_notify.notify_one();
                    }
                    _ => {}
                }
            }
            Some(Err(status)) => {
                log.end(format!("{:?}: {}", status.code(), status.message()));
                return;
            }
            None => {
                log.end("closed by the server".into());
                return;
            }
        }
    }
}

/// Window of unacknowledged usage records an agent keeps in flight.
pub const WINDOW: usize = 256;

/// What one agent session has received.
pub struct AgentLog {
    /// GrantCommands, by the seq in their command id ("seq-N").
    pub grants: Mutex<Vec<Stamp>>,
    pub acked: AtomicU64,
    pub rejected: AtomicU64,
    pub first_rejection: Mutex<Option<String>>,
    /// When the newest OutboxAck arrived.
    pub last_ack: Mutex<Option<Instant>>,
    /// Permits for records in flight, returned by OutboxAcks.
    pub window: Semaphore,
    pub welcomed: Notify,
    pub ended: Mutex<Option<String>>,
}

impl AgentLog {
    pub fn stamps(&self) -> Vec<Stamp> {
        self.grants.lock().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn ended(&self) -> Option<String> {
        self.ended.lock().ok().and_then(|e| e.clone())
    }

    fn end(&self, why: String) {
        if let Ok(mut ended) = self.ended.lock() {
            ended.get_or_insert(why);
        }
    }
}

/// One simulated child agent: its session's upward channel and the task reading the
/// hub's side.
pub struct Agent {
    pub up: mpsc::Sender<v1::SessionRequest>,
    pub log: Arc<AgentLog>,
    pub child: usize,
    reader: JoinHandle<()>,
}

impl Agent {
    /// Opens the device's session with Hello and waits (at most 20 s) for Welcome.
    pub async fn open(channel: Channel, instance_id: String, child: usize) -> Result<Agent> {
        let mut client = AgentClient::new(channel);
        let (up, rx) = mpsc::channel(4 * WINDOW);
        up.send(v1::SessionRequest {
            message: Some(Up::Hello(v1::Hello {
                unacked_outbox_ids: Vec::new(),
                agent_time_unix_micros: jiff::Timestamp::now().as_microsecond(),
                software_version: "load".into(),
                platform: "linux".into(),
                budget_as_of_seq: 0,
                instance_id,
            })),
        })
        .await
        .map_err(|_| anyhow!("the session channel closed"))?;
        let down = client
            .session(ReceiverStream::new(rx))
            .await
            .context("opening a Session")?
            .into_inner();
        let log = Arc::new(AgentLog {
            grants: Mutex::new(Vec::new()),
            acked: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            first_rejection: Mutex::new(None),
            last_ack: Mutex::new(None),
            window: Semaphore::new(WINDOW),
            welcomed: Notify::new(),
            ended: Mutex::new(None),
        });
        let reader = tokio::spawn(read_session(down, up.clone(), log.clone()));
        tokio::time::timeout(Duration::from_secs(20), log.welcomed.notified())
            .await
            .map_err(|_| anyhow!("no Welcome within 20 s"))?;
        Ok(Agent {
            up,
            log,
            child,
            reader,
        })
    }

    /// Streams usage records (1-second intervals back to back from `first_second`)
    /// with at most [`WINDOW`] unacknowledged, until `deadline` or `max_records`.
    /// Returns how many were sent.
    pub async fn stream_usage(
        &self,
        first_second: i64,
        max_records: u64,
        deadline: tokio::time::Instant,
    ) -> u64 {
        let mut sent = 0;
        while sent < max_records && tokio::time::Instant::now() < deadline {
            let permit = tokio::select! {
                permit = self.log.window.acquire() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            };
            permit.forget();
            let start = (first_second + sent as i64) * 1_000_000;
            let record = v1::OutboxItem {
                outbox_id: sent + 1,
                recorded_unix_micros: start + 1_000_000,
                item: Some(Record::Usage(v1::UsageReport {
                    start_unix_micros: start,
                    end_unix_micros: start + 1_000_000,
                })),
            };
            let message = v1::SessionRequest {
                message: Some(Up::OutboxItem(record)),
            };
            if self.up.send(message).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    }

    /// Stops reading; the session ends once the last handle to the agent is dropped.
    pub fn close(&self) {
        self.reader.abort();
    }
}

async fn read_session(
    mut down: tonic::Streaming<v1::SessionResponse>,
    up: mpsc::Sender<v1::SessionRequest>,
    log: Arc<AgentLog>,
) {
    loop {
        match down.next().await {
            Some(Ok(message)) => {
                let at = Instant::now();
                match message.message {
                    Some(Down::Command(command)) => {
                        if matches!(command.action, Some(v1::command::Action::Grant(_)))
                            && let Some(seq) = command
                                .command_id
                                .strip_prefix("seq-")
                                .and_then(|s| s.parse().ok())
                            && let Ok(mut grants) = log.grants.lock()
                        {
                            grants.push((seq, at));
                        }
                        // The window keeps the channel far from full; a full one
                        // would only cost a resend of the command on the next session.
                        let _ = up.try_send(v1::SessionRequest {
                            message: Some(Up::CommandAck(v1::CommandAck {
                                command_id: command.command_id,
                                applied: true,
                                error: String::new(),
                            })),
                        });
                    }
                    Some(Down::OutboxAck(ack)) => {
                        let acked = ack.outbox_ids.len();
                        let rejected = ack.rejected.len();
                        log.acked.fetch_add(acked as u64, Ordering::AcqRel);
                        if rejected > 0 {
                            log.rejected.fetch_add(rejected as u64, Ordering::AcqRel);
                            if let Ok(mut first) = log.first_rejection.lock() {
                                first.get_or_insert_with(|| ack.rejected[0].reason.clone());
                            }
                        }
                        if let Ok(mut last) = log.last_ack.lock() {
                            *last = Some(at);
                        }
                        log.window.add_permits(acked + rejected);
                    }
                    Some(Down::Welcome(_)) => log.welcomed.notify_one(),
                    _ => {}
                }
            }
            Some(Err(status)) => {
                log.end(format!("{:?}: {}", status.code(), status.message()));
                log.window.close();
                return;
            }
            None => {
                log.end("closed by the server".into());
                log.window.close();
                return;
            }
        }
    }
}
