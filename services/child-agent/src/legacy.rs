//! The legacy CST responder, answering from the agent's live status.
//!
//! Every command that opens with this device's key and is new to the replay
//! window is recorded as a `LegacyCommand` event with the sender's address
//! as actor (the audit trail the Android child never had) — executed or
//! not: a command the read-only mode refuses and a text that is not a
//! command are recorded too. Executed ones go through the same agent
//! actions as everything else. Junk (undecryptable, oversized,
//! rate-limited, replayed) is dropped by the responder unrecorded.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use cst_legacy::{
    Command, DeviceId, ErrorReply, Handler, LegacyState, Mode, Refusal, Reply, Responder,
    ResponderConfig,
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
    /// Runs on the blocking pool: the agent's state is shared with the meter
    /// and the control socket, and a grant or lock is flushed to disk before
    /// it is answered.
    async fn handle(&self, command: Command, source: SocketAddr) -> Reply {
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || execute(&agent, command, source))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(%source, %command, error = %e, "legacy command failed");
                failure(command)
            })
    }

    /// Sealed with this device's key but not executed: kept for audit too.
    async fn refused(&self, refusal: Refusal<'_>, source: SocketAddr) {
        let text = audit_text(refusal);
        tracing::info!(%source, command = ?text, "legacy command not executed");
        let agent = self.agent.clone();
        let noted = tokio::task::spawn_blocking(move || {
            agent.note_legacy_command(&text, source.to_string())
        })
        .await;
        match noted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(%source, error = %e, "cannot record legacy command"),
            Err(e) => tracing::error!(%source, error = %e, "cannot record legacy command"),
        }
    }
}

/// How a command that was not executed reads in the audit trail. Executed
/// commands are recorded as their canonical text (`EXTEND_TIME:15`); these
/// start with why they were not run, then the text as received.
fn audit_text(refusal: Refusal<'_>) -> String {
    match refusal {
        Refusal::ReadOnly(command) => format!("refused (read-only): {command}"),
        Refusal::NotACommand { text, error } => format!("rejected ({error}): {text}"),
    }
}

/// Notes the command for audit, then runs it. A grant or lock is stored in
/// one batch with its audit event, and flushed, before the reply is sent.
fn execute(agent: &Agent, command: Command, source: SocketAddr) -> Reply {
    let actor = Actor::LegacyAddress {
        address: source.to_string(),
    };
    if let Err(e) = agent.note_legacy_command(&command.to_string(), source.to_string()) {
        tracing::error!(%source, %command, error = %e, "cannot record legacy command");
        return failure(command);
    }
    tracing::info!(%source, %command, "legacy command");
    let done = match command {
        Command::GetTimeLeft => agent.status().map(|status| {
            let view = status.cst_on_device(&household_core::DeviceId::from(agent.device_id()));
            Reply::TimeLeft {
                remaining_minutes: view.remaining_minutes.into(),
                state: match view.state {
                    CstState::Active => LegacyState::Active,
                    CstState::Blocked => LegacyState::Blocked,
                },
                credit_minutes: view.credit_minutes.into(),
            }
        }),
        Command::LockDevice => agent.lock_device(actor).map(|_| Reply::DeviceLocked),
        Command::ExtendTime { minutes } => agent
            .extend(minutes.into(), actor)
            .map(|_| Reply::TimeExtended { minutes }),
    };
    done.unwrap_or_else(|e| {
        tracing::error!(%source, %command, error = %e, "legacy command failed");
        failure(command)
    })
}

/// The failure reply the parent app knows for each command.
fn failure(command: Command) -> Reply {
    match command {
        Command::GetTimeLeft => Reply::TimeDataFailed,
        Command::LockDevice => Reply::LockFailed,
        Command::ExtendTime { .. } => Reply::Error(ErrorReply::ProcessingFailed),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use household_core::{EventKind, Policy};

    use super::*;
    use crate::clock::Reading;
    use crate::store::Store;

    fn agent(dir: &std::path::Path) -> Arc<Agent> {
        let store = Store::open(dir).unwrap();
        Arc::new(Agent::open(store, Policy::default(), 1.0, Reading::now()).unwrap())
    }

    fn source() -> SocketAddr {
        SocketAddr::from(([192, 168, 1, 20], 40123))
    }

    /// While another thread holds the agent's state (as a store write in
    /// progress does), a legacy command waits for it off the runtime: the
    /// runtime's one thread goes on running other work meanwhile.
    #[tokio::test(flavor = "current_thread")]
    async fn a_command_waiting_for_the_agent_does_not_block_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let agent = agent(dir.path());
        let handler = AgentHandler {
            agent: agent.clone(),
        };
        let (held_tx, held_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let holder = std::thread::spawn({
            let agent = agent.clone();
            move || {
                agent.with_state_held(|| {
                    held_tx.send(()).unwrap();
                    // Released by the runtime's other work, or given up on.
                    go_rx.recv_timeout(Duration::from_secs(10)).is_ok()
                })
            }
        });
        held_rx.recv().unwrap();
        // The command is polled first; only if it yields can the release run.
        let (reply, ()) = tokio::join!(
            biased;
            handler.handle(Command::ExtendTime { minutes: 5 }, source()),
            async { go_tx.send(()).unwrap_or_default() },
        );
        assert!(
            holder.join().unwrap(),
            "the command blocked the runtime's thread while it waited"
        );
        assert_eq!(reply, Reply::TimeExtended { minutes: 5 });
    }

    #[tokio::test]
    async fn refused_and_rejected_commands_are_recorded_with_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let agent = agent(dir.path());
        let handler = AgentHandler {
            agent: agent.clone(),
        };
        handler
            .refused(Refusal::ReadOnly(Command::LockDevice), source())
            .await;
        handler
            .refused(
                Refusal::NotACommand {
                    text: "FORMAT_DISK",
                    error: ErrorReply::UnknownCommand,
                },
                source(),
            )
            .await;
        agent.close().unwrap();
        let recorded: Vec<(String, Actor)> = agent
            .recent_events(10)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::LegacyCommand { command } => Some((command, e.actor)),
                _ => None,
            })
            .collect();
        let actor = Actor::LegacyAddress {
            address: "192.168.1.20:40123".into(),
        };
        assert_eq!(
            recorded,
            [
                ("refused (read-only): LOCK_DEVICE".to_owned(), actor.clone()),
                ("rejected (Unknown command): FORMAT_DISK".to_owned(), actor),
            ]
        );
    }
}
