//! The agent's one long session with its hub (`Agent.Session`), kept up for
//! as long as the agent runs.
//!
//! Up: Hello (the instance and every record not yet acknowledged), then every
//! outbox record as it is stored, and an acknowledgement for each command
//! once it is carried out and stored. Down: Welcome (the hub's clock), the
//! budget, commands, acknowledgements of records, heartbeats. A session that
//! hears nothing for [`SILENCE`] (the hub sends a heartbeat every 10 s) is
//! taken for dead; HTTP/2 keepalive notices a dead link underneath as well.
//! Reconnecting waits with exponential backoff and jitter, at most
//! [`LONGEST_PAUSE`]. Enforcement never waits on any of this: the agent goes
//! on from the last budget and its own metering.

use std::sync::Arc;
use std::time::Duration;

use household_proto::v1::{
    self, agent_client::AgentClient, session_request::Message as Up,
    session_response::Message as Down,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::agent::{Agent, AgentError};
use crate::link::Enrollment;
use crate::shutdown;

/// A session that hears nothing from the hub for this long is given up.
const SILENCE: Duration = Duration::from_secs(30);
/// First pause before reconnecting; it doubles with every failure.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// Longest pause before reconnecting.
const LONGEST_PAUSE: Duration = Duration::from_secs(30);
/// Records read from the store and sent at a time.
const SEND_BATCH: usize = 256;
/// Failures after which the hub is looked for again by mDNS (when it was
/// found that way), in case its address changed.
const REDISCOVER_AFTER: u32 = 3;

/// How a session ended.
enum Ended {
    Shutdown,
    Lost(String),
}

/// Keeps a session with the hub until `shutdown`.
pub async fn run(
    agent: Arc<Agent>,
    enrollment: Enrollment,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut address = enrollment.hub.clone();
    let mut failures: u32 = 0;
    loop {
        let ended = session(&agent, &enrollment, &address, &mut shutdown).await;
        let hub = address.clone();
        blocking(&agent, move |a| a.set_offline(&hub)).await;
        match ended {
            Ok(Ended::Shutdown) => return Ok(()),
            Ok(Ended::Lost(why)) => {
                tracing::warn!(hub = %address, %why, "the hub session ended; enforcing offline");
                failures = 1;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(hub = %address, error = %e, failures, "cannot reach the hub; enforcing offline");
                }
            }
        }
        if enrollment.found_by_mdns && failures.is_multiple_of(REDISCOVER_AFTER) {
            address = rediscover(&enrollment, address).await;
        }
        tokio::select! {
            () = tokio::time::sleep(pause(failures)) => {}
            _ = shutdown::stopped(&mut shutdown) => return Ok(()),
        }
    }
}

/// Exponential backoff with jitter: a random pause between half and all of
/// `FIRST_PAUSE × 2^(failures-1)`, at most [`LONGEST_PAUSE`].
fn pause(failures: u32) -> Duration {
    let doubled = FIRST_PAUSE.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled
        .min(LONGEST_PAUSE)
        .mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

/// Looks for the household's hub again by mDNS; keeps `address` if none answers.
async fn rediscover(enrollment: &Enrollment, address: String) -> String {
    let (ca, interface) = (
        enrollment.ca_sha256_hex.clone(),
        enrollment.mdns_interface.clone(),
    );
    let found = tokio::task::spawn_blocking(move || {
        household_client::mdns::find_hub(&ca, interface.as_deref(), Duration::from_secs(3))
    })
    .await;
    match found {
        Ok(Ok(found)) if found != address => {
            tracing::info!(from = %address, to = %found, "the hub moved; following it");
            found
        }
        _ => address,
    }
}

/// One session, from connecting to its end.
async fn session(
    agent: &Arc<Agent>,
    enrollment: &Enrollment,
    address: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Ended> {
    let channel = household_client::connect(
        address,
        &enrollment.ca_pem,
        Some((&enrollment.chain_pem, &enrollment.key_pem)),
    )
    .await?;
    let hello = blocking_result(agent, |a| a.hello()).await?;
    let (up, outgoing) = mpsc::channel(SEND_BATCH);
    send(&up, Up::Hello(hello)).await?;
    let mut inbound = AgentClient::new(channel)
        .session(ReceiverStream::new(outgoing))
        .await?
        .into_inner();
    let mut child_id = enrollment.child_id.clone();
    let mut last_sent = 0;
    loop {
        // Send what is stored and not yet sent in this session, in id order.
        for record in blocking_result(agent, move |a| a.outbox_after(last_sent, SEND_BATCH)).await?
        {
            last_sent = record.outbox_id;
            send(&up, Up::OutboxItem(record)).await?;
        }
        let message = tokio::select! {
            message = tokio::time::timeout(SILENCE, inbound.message()) => message,
            () = agent.outbox_changed() => continue,
            _ = shutdown::stopped(shutdown) => return Ok(Ended::Shutdown),
        };
        let message = match message {
            Err(_) => return Ok(Ended::Lost(format!("no word from the hub for {SILENCE:?}"))),
            Ok(Err(status)) => return Ok(Ended::Lost(status.message().to_owned())),
            Ok(Ok(None)) => return Ok(Ended::Lost("the hub closed the session".into())),
            Ok(Ok(Some(v1::SessionResponse { message: None }))) => continue,
            Ok(Ok(Some(v1::SessionResponse {
                message: Some(message),
            }))) => message,
        };
        match message {
            Down::Welcome(welcome) => {
                tracing::info!(hub = %address, device = %welcome.device_display_name, child = %welcome.child_display_name, "in session with the hub");
                child_id.clone_from(&welcome.child_id);
                blocking_result(agent, move |a| a.on_welcome(&welcome)).await?;
            }
            Down::Budget(budget) => {
                let child = child_id.clone();
                if let Err(e) = blocking_result(agent, move |a| a.on_budget(&budget, &child)).await
                {
                    tracing::error!(error = %e, "the hub's budget is not enforced; the last one stays");
                }
            }
            Down::Command(command) => {
                let ack = blocking_result(agent, move |a| a.on_command(&command)).await?;
                send(&up, Up::CommandAck(ack)).await?;
            }
            Down::OutboxAck(ack) => {
                blocking_result(agent, move |a| a.on_outbox_ack(&ack)).await?;
            }
            Down::TimeRequestUpdate(request) => {
                tracing::info!(request = %request.request_id, status = request.status, "a request for more time changed");
            }
            Down::Heartbeat(_) => {}
        }
    }
}

async fn send(up: &mpsc::Sender<v1::SessionRequest>, message: Up) -> anyhow::Result<()> {
    up.send(v1::SessionRequest {
        message: Some(message),
    })
    .await
    .map_err(|_| anyhow::anyhow!("the session's stream to the hub closed"))
}

/// Runs an agent call on the blocking pool.
async fn blocking_result<T: Send + 'static>(
    agent: &Arc<Agent>,
    call: impl FnOnce(&Agent) -> Result<T, AgentError> + Send + 'static,
) -> anyhow::Result<T> {
    let agent = agent.clone();
    Ok(tokio::task::spawn_blocking(move || call(&agent)).await??)
}

/// [`blocking_result`] for calls whose failure is only logged.
async fn blocking(
    agent: &Arc<Agent>,
    call: impl FnOnce(&Agent) -> Result<(), AgentError> + Send + 'static,
) {
    if let Err(e) = blocking_result(agent, call).await {
        tracing::error!(error = %e, "cannot note the hub session's state");
    }
}
