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
    Command, DeviceId, Handler, LegacyState, Mode, Refusal, Reply, Responder, ResponderConfig,
};
use household_core::{CstState, LegacyOutcome};
use tokio::sync::watch;

use crate::agent::Agent;
use crate::config::{AgentConfig, LegacyModeArg};
use crate::ledger::LegacyNote;
use crate::session_lock::LockOutcome;

/// The bound responder, ready to serve.
pub struct LegacyResponder(Responder<AgentHandler>);

/// Binds the responder unless the legacy path is off.
pub async fn bind(
    config: &AgentConfig,
    agent: Arc<Agent>,
    lock_outcomes: Option<watch::Receiver<LockOutcome>>,
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
    let mut settings = ResponderConfig::new(key, mode);
    // The replay window goes on where the last run left it.
    let (window, reading) = (settings.replay_window, agent.clone());
    settings.replay_seen = tokio::task::spawn_blocking(move || reading.recent_replays(window))
        .await?
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the replay window kept in the store");
            Vec::new()
        });
    let responder = Responder::bind(
        address,
        settings,
        Arc::new(AgentHandler {
            agent,
            allow_local: config.legacy_allow_local,
            replay_window: window,
            lock_outcomes,
        }),
    )
    .await
    .with_context(|| format!("cannot bind the legacy responder to UDP {address}"))?;
    tracing::info!(%address, ?mode, "legacy CST responder listening");
    if config.legacy_allow_local {
        tracing::warn!(
            "legacy_allow_local: commands from this device's own addresses are carried out, \
             so any local user who knows the device ID can grant time"
        );
    }
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
    /// Carry out commands from this device's own addresses (tests, demos).
    allow_local: bool,
    replay_window: std::time::Duration,
    /// What the session locker achieves, when it runs: a `LOCK_DEVICE` is
    /// answered with success only once the child's sessions are locked.
    lock_outcomes: Option<watch::Receiver<LockOutcome>>,
}

/// How long a `LOCK_DEVICE` waits to hear that the lock was enforced; the
/// parent app waits 5 seconds for the reply.
const LOCK_CONFIRM: std::time::Duration = std::time::Duration::from_millis(3500);

impl Handler for AgentHandler {
    /// Commands from the device's own addresses (loopback, its interfaces)
    /// come from a user of the device — the child — and are refused unless
    /// `--legacy-allow-local`: budget changes come from guardians elsewhere.
    fn admits(&self, source: SocketAddr) -> bool {
        self.allow_local || !crate::local_address::is_own(source.ip())
    }

    /// Kept in the store, so a capture replayed after a restart is caught.
    async fn remember(&self, digest: cst_legacy::Digest) {
        let (agent, window) = (self.agent.clone(), self.replay_window);
        let kept = tokio::task::spawn_blocking(move || agent.remember_replay(digest, window)).await;
        if !matches!(kept, Ok(Ok(()))) {
            tracing::error!("cannot keep a legacy command's digest for the replay window");
        }
    }

    /// Runs on the blocking pool: the agent's state is shared with the meter
    /// and the control socket, and a grant or lock is flushed to disk before
    /// it is answered.
    async fn handle(&self, command: Command, source: SocketAddr) -> Reply {
        let agent = self.agent.clone();
        let mut outcomes = self.lock_outcomes.clone();
        // Rounds before this one do not tell whether this lock holds.
        let before = outcomes.as_mut().map(|o| o.borrow_and_update().round);
        let reply = tokio::task::spawn_blocking(move || execute(&agent, command, source))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(%source, %command, error = %e, "legacy command failed");
                command.failure_reply()
            });
        match (reply, outcomes, before) {
            (Reply::DeviceLocked, Some(outcomes), Some(before)) => {
                self.confirm_lock(outcomes, before, source).await
            }
            (reply, _, _) => reply,
        }
    }

    /// Sealed with this device's key but not executed: kept for audit too.
    async fn refused(&self, refusal: Refusal<'_>, source: SocketAddr) {
        let note = refusal_note(&refusal, source);
        tracing::info!(%source, command = ?note.command, outcome = ?note.outcome, "legacy command not executed");
        let agent = self.agent.clone();
        let noted = tokio::task::spawn_blocking(move || agent.note_legacy_command(&note)).await;
        match noted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(%source, error = %e, "cannot record legacy command"),
            Err(e) => tracing::error!(%source, error = %e, "cannot record legacy command"),
        }
    }
}

impl AgentHandler {
    /// Waits for the session locker's next round: `DEVICE_LOCKED` if it
    /// locked the child's sessions, the failure reply (as an Android child
    /// that could not lock) if it could not, or did not say in time. The
    /// lock itself stays recorded either way, and the locker keeps trying.
    async fn confirm_lock(
        &self,
        mut outcomes: watch::Receiver<LockOutcome>,
        before: u64,
        source: SocketAddr,
    ) -> Reply {
        let waited = tokio::time::timeout(LOCK_CONFIRM, outcomes.wait_for(|o| o.round > before));
        // The guard `wait_for` returns is let go of at once.
        let result = match waited.await {
            Ok(Ok(outcome)) => outcome.result.clone(),
            Ok(Err(_)) => Some(Err("the session locker stopped".to_owned())),
            Err(_) => Some(Err(format!("no lock within {LOCK_CONFIRM:?}"))),
        };
        let why = match result {
            Some(Ok(_)) => return Reply::DeviceLocked,
            Some(Err(e)) => e,
            None => "no result".to_owned(),
        };
        tracing::error!(%source, %why, "LOCK_DEVICE recorded but the child's sessions could not be locked");
        let reply = Reply::LockFailed;
        let note = LegacyNote {
            command: Command::LockDevice.to_string(),
            address: source.to_string(),
            outcome: LegacyOutcome::Failed,
            reply: reply.to_string(),
        };
        let agent = self.agent.clone();
        if !matches!(
            tokio::task::spawn_blocking(move || agent.note_legacy_command(&note)).await,
            Ok(Ok(()))
        ) {
            tracing::error!(%source, "cannot record legacy command");
        }
        reply
    }
}

/// The audit note of a command that was not executed: the command as
/// received (its canonical text, or the text that was not one) and why.
fn refusal_note(refusal: &Refusal<'_>, source: SocketAddr) -> LegacyNote {
    let (command, outcome) = match refusal {
        Refusal::ReadOnly(command) => (command.to_string(), LegacyOutcome::RejectedReadOnly),
        Refusal::NotACommand { text, .. } => ((*text).to_owned(), LegacyOutcome::RejectedInvalid),
        Refusal::NotAdmitted(command) => (command.to_string(), LegacyOutcome::RejectedLocal),
    };
    LegacyNote {
        command,
        address: source.to_string(),
        outcome,
        reply: refusal.reply().to_string(),
    }
}

/// Runs the command and records it for audit with what became of it. A
/// grant or lock is stored in one batch with its audit event, and flushed,
/// before the reply is sent.
fn execute(agent: &Agent, command: Command, source: SocketAddr) -> Reply {
    tracing::info!(%source, %command, "legacy command");
    let failed = command.failure_reply();
    let note = |outcome, reply: &Reply| LegacyNote {
        command: command.to_string(),
        address: source.to_string(),
        outcome,
        reply: reply.to_string(),
    };
    let done = match command {
        Command::GetTimeLeft => agent.status().map(|status| time_left(agent, &status)),
        Command::LockDevice => {
            let reply = Reply::DeviceLocked;
            agent
                .legacy_lock(&note(LegacyOutcome::Applied, &reply), &failed.to_string())
                .map(|_| reply)
        }
        Command::ExtendTime { minutes } => {
            let reply = Reply::TimeExtended { minutes };
            agent
                .legacy_extend(
                    minutes.into(),
                    &note(LegacyOutcome::Applied, &reply),
                    &failed.to_string(),
                )
                .map(|_| reply)
        }
    };
    let (outcome, reply) = match done {
        Ok(reply) => (LegacyOutcome::Applied, reply),
        Err(e) => {
            tracing::error!(%source, %command, error = %e, "legacy command failed");
            (LegacyOutcome::Failed, failed)
        }
    };
    // A grant or lock recorded its audit event with the action; a read
    // changes nothing, so its event waits for the next write.
    if command == Command::GetTimeLeft
        && let Err(e) = agent.note_legacy_command(&note(outcome, &reply))
    {
        tracing::error!(%source, %command, error = %e, "cannot record legacy command");
    }
    reply
}

/// `TIME_LEFT` as the CST parent app reads it, from this device's view.
fn time_left(agent: &Agent, status: &household_core::Status) -> Reply {
    let view = status.cst_on_device(&household_core::DeviceId::from(agent.device_id()));
    Reply::TimeLeft {
        remaining_minutes: view.remaining_minutes.into(),
        state: match view.state {
            CstState::Active => LegacyState::Active,
            CstState::Blocked => LegacyState::Blocked,
        },
        credit_minutes: view.credit_minutes.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use cst_legacy::ErrorReply;
    use household_core::{Actor, EventKind, Policy};

    use super::*;
    use crate::clock::Reading;
    use crate::store::Store;

    fn agent(dir: &std::path::Path) -> Arc<Agent> {
        let store = Store::open(dir).unwrap();
        Arc::new(
            Agent::open(
                store,
                "3F2A9C1B7D4E8A60".into(),
                Policy::default(),
                1.0,
                Reading::now(),
                None,
            )
            .unwrap(),
        )
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
            allow_local: false,
            replay_window: std::time::Duration::from_secs(600),
            lock_outcomes: None,
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
            allow_local: false,
            replay_window: std::time::Duration::from_secs(600),
            lock_outcomes: None,
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
        let actor = Actor::LegacyAddress {
            address: "192.168.1.20:40123".into(),
        };
        assert_eq!(
            audit_trail(&agent),
            [
                (
                    "LOCK_DEVICE".to_owned(),
                    LegacyOutcome::RejectedReadOnly,
                    "DEVICE_LOCKED|ERROR|Failed to lock device".to_owned(),
                    actor.clone()
                ),
                (
                    "FORMAT_DISK".to_owned(),
                    LegacyOutcome::RejectedInvalid,
                    "ERROR|Unknown command".to_owned(),
                    actor
                ),
            ]
        );
    }

    #[tokio::test]
    async fn executed_commands_are_recorded_with_their_reply() {
        let dir = tempfile::tempdir().unwrap();
        let agent = agent(dir.path());
        let handler = AgentHandler {
            agent: agent.clone(),
            allow_local: false,
            replay_window: std::time::Duration::from_secs(600),
            lock_outcomes: None,
        };
        let extended = handler
            .handle(Command::ExtendTime { minutes: 15 }, source())
            .await;
        let time_left = handler.handle(Command::GetTimeLeft, source()).await;
        agent.close().unwrap();
        let trail: Vec<(String, LegacyOutcome, String)> = audit_trail(&agent)
            .into_iter()
            .map(|(command, outcome, reply, _)| (command, outcome, reply))
            .collect();
        assert_eq!(
            trail,
            [
                (
                    "EXTEND_TIME:15".to_owned(),
                    LegacyOutcome::Applied,
                    extended.to_string()
                ),
                (
                    "GET_TIME_LEFT".to_owned(),
                    LegacyOutcome::Applied,
                    time_left.to_string()
                ),
            ]
        );
        assert!(extended.to_string().starts_with("TIME_EXTENDED|15"));
        assert!(time_left.to_string().starts_with("TIME_LEFT|"));
    }

    fn audit_trail(agent: &Agent) -> Vec<(String, LegacyOutcome, String, Actor)> {
        agent
            .recent_events(10)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::LegacyCommand {
                    command,
                    outcome,
                    reply,
                } => Some((command, outcome, reply, e.actor)),
                _ => None,
            })
            .collect()
    }
}
