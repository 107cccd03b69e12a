//! The legacy CST responder, answering from the agent's live status.
//!
//! Every command that gets past the responder's checks is first recorded
//! as a `LegacyCommand` event with the sender's address as actor (the audit
//! trail the Android child never had), then executed through the same agent
//! actions as everything else.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use cst_legacy::{
    Command, DeviceId, ErrorReply, Handler, LegacyState, Mode, Reply, Responder, ResponderConfig,
};
use household_core::{Actor, CstState};
use tokio::sync::watch;

use crate::agent::Agent;
use crate::config::{AgentConfig, LegacyModeArg};

/// The bound responder, ready to serve.
pub struct LegacyResponder(Responder<AgentHandler>);

/// Binds the responder unless the legacy path is off.
pub async fn bind(
    config: &AgentConfig,
    agent: Arc<Agent>,
) -> anyhow::Result<Option<LegacyResponder>> {
    let mode = match config.legacy_mode {
        LegacyModeArg::Off => return Ok(None),
        LegacyModeArg::Full => Mode::Full,
        LegacyModeArg::ReadOnly => Mode::ReadOnly,
    };
    let key = agent
        .device_id()
        .parse::<DeviceId>()
        .context("the stored device ID")?
        .key();
    let address = SocketAddr::new(config.legacy_bind, config.legacy_port);
    let responder = Responder::bind(
        address,
        ResponderConfig::new(key, mode),
        Arc::new(AgentHandler { agent }),
    )
    .await
    .with_context(|| format!("cannot bind the legacy responder to UDP {address}"))?;
    tracing::info!(%address, ?mode, "legacy CST responder listening");
    Ok(Some(LegacyResponder(responder)))
}

impl LegacyResponder {
    pub async fn serve(self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        self.0
            .serve(async move { crate::shutdown::stopped(&mut stop).await })
            .await
            .context("legacy responder failed")
    }
}

struct AgentHandler {
    agent: Arc<Agent>,
}

impl Handler for AgentHandler {
    fn handle(&self, command: Command, source: SocketAddr) -> Reply {
        let actor = Actor::LegacyAddress {
            address: source.to_string(),
        };
        if let Err(e) = self
            .agent
            .record_legacy_command(&command.to_string(), source.to_string())
        {
            tracing::error!(%source, %command, error = %e, "cannot record legacy command");
            return failure(command);
        }
        tracing::info!(%source, %command, "legacy command");
        let done = match command {
            Command::GetTimeLeft => self.agent.status().map(|status| {
                let view =
                    status.cst_on_device(&household_core::DeviceId::from(self.agent.device_id()));
                Reply::TimeLeft {
                    remaining_minutes: view.remaining_minutes.into(),
                    state: match view.state {
                        CstState::Active => LegacyState::Active,
                        CstState::Blocked => LegacyState::Blocked,
                    },
                    credit_minutes: view.credit_minutes.into(),
                }
            }),
            Command::LockDevice => self.agent.lock_device(actor).map(|_| Reply::DeviceLocked),
            Command::ExtendTime { minutes } => self
                .agent
                .extend(minutes.into(), actor)
                .map(|_| Reply::TimeExtended { minutes }),
        };
        done.unwrap_or_else(|e| {
            tracing::error!(%source, %command, error = %e, "legacy command failed");
            failure(command)
        })
    }
}

/// The failure reply the parent app knows for each command.
fn failure(command: Command) -> Reply {
    match command {
        Command::GetTimeLeft => Reply::TimeDataFailed,
        Command::LockDevice => Reply::LockFailed,
        Command::ExtendTime { .. } => Reply::Error(ErrorReply::ProcessingFailed),
    }
}
