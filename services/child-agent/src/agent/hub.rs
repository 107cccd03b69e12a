//! What the hub session asks of the agent: what to say in Hello, what to
//! send, and what to do with each message from the hub. Blocking (mutex,
//! disk): the session calls these on tokio's blocking pool.

use household_core::{Actor, LockInfo, time::instant_from_unix_micros};
use household_proto::convert::budget_to_core;
use household_proto::v1::{self, command::Action};
use prost::Message as _;

use super::{Agent, AgentError, Inner};
use crate::link::Connection;

/// The hub link as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkView {
    /// The hub's address.
    pub hub: String,
    pub connection: Connection,
    /// Records waiting for the hub's acknowledgement.
    pub outbox_depth: usize,
    /// The agent's time now, to tell how long ago `connection` changed.
    pub now_unix_micros: i64,
}

impl Agent {
    /// The session's opening message: this instance, and every record the
    /// hub has not acknowledged.
    pub fn hello(&self) -> Result<v1::Hello, AgentError> {
        let inner = self.lock()?;
        let link = inner.link.as_ref().ok_or(AgentError::NotEnrolled)?;
        let unacked = self.store.outbox()?.into_iter().map(|(id, _)| id).collect();
        Ok(v1::Hello {
            unacked_outbox_ids: unacked,
            agent_time_unix_micros: inner.clock.now_unix_micros(),
            software_version: concat!("child-agent ", env!("CARGO_PKG_VERSION")).into(),
            platform: std::env::consts::OS.into(),
            budget_as_of_seq: link.state.held.as_ref().map_or(0, |h| h.as_of_seq),
            instance_id: link.instance_id.clone(),
        })
    }

    /// At most `limit` stored records with ids above `after`, to send.
    pub fn outbox_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<v1::OutboxItem>, AgentError> {
        let records = self.store.outbox_after(after, limit)?;
        Ok(records
            .into_iter()
            .filter_map(
                |(id, bytes)| match v1::OutboxItem::decode(bytes.as_slice()) {
                    Ok(record) => Some(record),
                    Err(e) => {
                        tracing::error!(id, error = %e, "an outbox record cannot be read; skipped");
                        None
                    }
                },
            )
            .collect())
    }

    /// Waits until new outbox records are stored.
    pub async fn outbox_changed(&self) {
        self.outbox_ready.notified().await;
    }

    /// The hub's Welcome: its clock becomes the agent's reference.
    pub fn on_welcome(&self, welcome: &v1::Welcome) -> Result<(), AgentError> {
        let mut inner = self.lock()?;
        let agent_now = inner.clock.now_unix_micros();
        let link = inner.link.as_mut().ok_or(AgentError::NotEnrolled)?;
        let offset = welcome.hub_time_unix_micros.saturating_sub(agent_now);
        if (offset - link.state.offset_micros).abs() >= 1_000_000 {
            tracing::info!(
                offset_ms = offset / 1000,
                "the device's clock differs from the hub's; the hub's counts"
            );
        }
        link.state.offset_micros = offset;
        link.connection = Connection::Connected {
            since_unix_micros: agent_now,
        };
        self.store.save_link_state(&link.state)?;
        self.observe(&mut inner)?;
        Ok(())
    }

    /// A new budget replaces the one held and everything applied to it.
    pub fn on_budget(&self, budget: &v1::Budget, child_id: &str) -> Result<(), AgentError> {
        let held = budget_to_core(budget, child_id).map_err(|e| AgentError::Hub(e.to_string()))?;
        let mut inner = self.lock()?;
        let link = inner.link.as_mut().ok_or(AgentError::NotEnrolled)?;
        link.new_budget(held);
        // Enforced from now on, stored or not: the next budget comes anyway.
        let saved = self.store.save_link_state(&link.state);
        self.observe(&mut inner)?;
        Ok(saved?)
    }

    /// The hub stored (or refused for good) these records: they leave the store.
    pub fn on_outbox_ack(&self, ack: &v1::OutboxAck) -> Result<(), AgentError> {
        for rejected in &ack.rejected {
            tracing::warn!(id = rejected.outbox_id, reason = %rejected.reason, "the hub refused an outbox record");
        }
        let ids: Vec<u64> = ack
            .outbox_ids
            .iter()
            .copied()
            .chain(ack.rejected.iter().map(|r| r.outbox_id))
            .collect();
        let mut inner = self.lock()?;
        self.store.remove_outbox(&ids)?;
        if let Some(link) = inner.link.as_mut() {
            link.acknowledged(ids);
        }
        Ok(())
    }

    /// Carries out a command at once, once per id, and says so once stored.
    /// A command the held budget already includes is acknowledged only.
    pub fn on_command(&self, command: &v1::Command) -> Result<v1::CommandAck, AgentError> {
        let mut inner = self.lock()?;
        let agent_now = inner.clock.now_unix_micros();
        let Inner { link, .. } = &mut *inner;
        let link = link.as_mut().ok_or(AgentError::NotEnrolled)?;
        let ack = |applied: bool, error: &str| v1::CommandAck {
            command_id: command.command_id.clone(),
            applied,
            error: error.to_owned(),
        };
        if !link.first_time(&command.command_id) {
            return Ok(ack(true, ""));
        }
        let now = instant_from_unix_micros(link.hub_time(agent_now))?;
        let mut local_locks_lifted = false;
        let Some(held) = link.state.held.as_mut() else {
            return Ok(ack(false, "no budget received yet"));
        };
        if command.seq == 0 || held.as_of_seq < command.seq {
            match &command.action {
                Some(Action::Lock(lock)) => {
                    let info = LockInfo {
                        since: now,
                        until: lock
                            .until_unix_micros
                            .map(instant_from_unix_micros)
                            .transpose()?,
                        reason: (!lock.reason.is_empty()).then(|| lock.reason.clone()),
                        by: Actor::System,
                        seq: command.seq,
                    };
                    if lock.child_wide {
                        held.child_lock = Some(info);
                        held.unlocked_until = None;
                    } else {
                        held.device_lock = Some(info);
                    }
                }
                Some(Action::Unlock(unlock)) => {
                    if unlock.child_wide {
                        held.child_lock = None;
                    }
                    held.device_lock = None;
                    local_locks_lifted = true;
                }
                Some(Action::Grant(grant)) => {
                    let seconds = i64::from(grant.minutes) * 60;
                    held.remaining_seconds = held.remaining_seconds.max(0) + seconds;
                    held.allowance_seconds += seconds;
                }
                None => return Ok(ack(false, "the command has no action")),
            }
        }
        if local_locks_lifted {
            link.forget_local_locks();
        }
        // Carried out first (the enforcer hears of it now), stored second,
        // acknowledged last: the hub resends what a crash kept from storing.
        self.observe(&mut inner)?;
        if let Some(link) = inner.link.as_ref() {
            self.store.save_link_state(&link.state)?;
        }
        Ok(ack(true, ""))
    }

    /// Notes that the session with the hub at `hub` is down (a Welcome notes
    /// it up again); the time it went down stays while it stays down.
    pub fn set_offline(&self, hub: &str) -> Result<(), AgentError> {
        let mut inner = self.lock()?;
        let since_unix_micros = inner.clock.now_unix_micros();
        if let Some(link) = inner.link.as_mut() {
            hub.clone_into(&mut link.hub);
            if !matches!(link.connection, Connection::Offline { .. }) {
                link.connection = Connection::Offline { since_unix_micros };
            }
        }
        Ok(())
    }

    /// The hub link for `status`; `None` for an agent that never enrolled.
    pub fn link_view(&self) -> Result<Option<LinkView>, AgentError> {
        let inner = self.lock()?;
        Ok(inner.link.as_ref().map(|link| LinkView {
            hub: link.hub.clone(),
            connection: link.connection,
            outbox_depth: self.store.outbox_len(),
            now_unix_micros: inner.clock.now_unix_micros(),
        }))
    }
}
