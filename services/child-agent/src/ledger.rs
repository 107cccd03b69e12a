//! The agent's account of its child's day: the household rules' projection of
//! every stored event, plus the usage interval the meter is still measuring.
//!
//! Deciding stays in `household-core`: the ledger only builds events with the
//! next sequence number and asks the projection what they mean.

use household_core::{
    Actor, ChildId, CreditSize, DeviceId, Event, EventKind, InputError, LegacyOutcome, Policy,
    Projection, Status, time::instant_from_unix_micros,
};
use std::borrow::Cow;

use jiff::Timestamp;

use crate::meter::Interval;

/// In standalone mode the agent's device belongs to one child, known locally
/// by this id; the hub assigns real ids when the device enrolls.
pub const LOCAL_CHILD: &str = "local";

/// A legacy command for the audit trail: as received, from whom, and what
/// became of it.
#[derive(Debug, Clone)]
pub struct LegacyNote {
    /// `EXTEND_TIME:15`, or the text that was not a command.
    pub command: String,
    /// The sender's `ip:port`, the event's actor.
    pub address: String,
    pub outcome: LegacyOutcome,
    /// The plaintext reply sent back.
    pub reply: String,
}

#[derive(Debug, Clone)]
pub struct Ledger {
    projection: Projection,
    device: DeviceId,
    next_seq: u64,
}

impl Ledger {
    /// An empty ledger under `policy`; stored events are replayed into it
    /// with [`Ledger::commit`], in sequence order.
    pub fn new(policy: Policy, device: DeviceId) -> Result<Self, InputError> {
        let projection = Projection::new(ChildId::from(LOCAL_CHILD), policy)?;
        Ok(Self {
            projection,
            device,
            next_seq: 1,
        })
    }

    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// The status at `now`, counting the interval still being measured.
    pub fn status_at(&self, now: Timestamp, open: Option<Interval>) -> Status {
        self.live(open).status_at(now)
    }

    /// The projection as if the open interval were already stored.
    fn live(&self, open: Option<Interval>) -> Cow<'_, Projection> {
        match open.and_then(|interval| self.usage(interval).ok()) {
            Some(provisional) => {
                let mut projection = self.projection.clone();
                projection.apply(&provisional);
                Cow::Owned(projection)
            }
            None => Cow::Borrowed(&self.projection),
        }
    }

    /// A closed usage interval as the next event.
    pub fn usage(&self, interval: Interval) -> Result<Event, InputError> {
        let start = instant_from_unix_micros(interval.start_unix_micros)?;
        let end = instant_from_unix_micros(interval.end_unix_micros)?;
        Ok(self.event(
            self.next_seq,
            end,
            self.device_actor(),
            EventKind::UsageReported { start, end },
        ))
    }

    /// "Extend by `minutes`" from `actor`: the grant event, preceded by an
    /// unlock of this device when it is locked — the legacy parent app has no
    /// unlock command, and on the Android child `EXTEND_TIME` is what unblocks.
    pub fn extend(
        &self,
        minutes: i64,
        actor: Actor,
        now: Timestamp,
        open: Option<Interval>,
    ) -> Result<Vec<Event>, InputError> {
        let grant = self.projection.check_grant(minutes)?;
        let mut events = Vec::with_capacity(2);
        let status = self.status_at(now, open);
        if status.device_locks.iter().any(|l| l.device == self.device) {
            events.push(self.event(
                self.next_seq,
                now,
                actor.clone(),
                EventKind::Unlocked {
                    device: Some(self.device.clone()),
                    until: None,
                },
            ));
        }
        events.push(self.event(self.next_seq + events.len() as u64, now, actor, grant));
        Ok(events)
    }

    /// A lock of this device until the end of the child's day (or until
    /// an extension lifts it), as the Android child's `LOCK_DEVICE` does.
    pub fn lock_for_the_day(&self, actor: Actor, now: Timestamp) -> Result<Event, InputError> {
        let end = self.end_of_day(now)?;
        let kind = self
            .projection
            .check_lock(Some(self.device.clone()), Some(end), now)?;
        Ok(self.event(self.next_seq, now, actor, kind))
    }

    /// [`Ledger::lock_for_the_day`] with a reason for the lock screen.
    pub fn lock_for_the_day_because(
        &self,
        actor: Actor,
        now: Timestamp,
        why: &str,
    ) -> Result<Event, InputError> {
        let mut event = self.lock_for_the_day(actor, now)?;
        if let EventKind::Locked { reason, .. } = &mut event.kind {
            *reason = Some(why.to_owned());
        }
        Ok(event)
    }

    fn end_of_day(&self, now: Timestamp) -> Result<Timestamp, InputError> {
        instant_from_unix_micros(self.projection.day_of(now).end_second * 1_000_000)
    }

    /// The child spends one of today's self-serve credits of `size`.
    pub fn spend_credit(
        &self,
        size: CreditSize,
        now: Timestamp,
        open: Option<Interval>,
    ) -> Result<Event, household_core::CreditRefusal> {
        let kind = self.live(open).check_credit_spend(size, now)?;
        Ok(self.event(self.next_seq, now, self.device_actor(), kind))
    }

    /// A credit of `size` spent at `now`, as the caller already checked it
    /// (against the hub's budget, for an enrolled device).
    pub fn credit_spent(&self, size: CreditSize, now: Timestamp) -> Event {
        let kind = EventKind::ExtensionCreditSpent {
            size,
            spent_at: Some(now),
        };
        self.event(self.next_seq, now, self.device_actor(), kind)
    }

    /// The child asks the guardians for `minutes` more, with an optional note.
    pub fn time_request(
        &self,
        minutes: i64,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<Event, InputError> {
        let id = household_core::RequestId(format!("local-{}", self.next_seq));
        let kind = self
            .projection
            .check_request(id, minutes, note, Some(now))?;
        Ok(self.event(self.next_seq, now, self.device_actor(), kind))
    }

    /// A legacy command and what became of it, for the audit trail.
    pub fn legacy_command(&self, note: &LegacyNote, now: Timestamp) -> Event {
        self.event(
            self.next_seq,
            now,
            Actor::LegacyAddress {
                address: note.address.clone(),
            },
            EventKind::LegacyCommand {
                command: note.command.clone(),
                outcome: note.outcome,
                reply: note.reply.clone(),
            },
        )
    }

    /// Trouble of this device's agent for the guardians, or (`cleared`) its end.
    pub fn trouble(&self, trouble: &str, cleared: bool, now: Timestamp) -> Event {
        self.event(
            self.next_seq,
            now,
            self.device_actor(),
            EventKind::DeviceTrouble {
                device: self.device.clone(),
                trouble: trouble.to_owned(),
                cleared,
            },
        )
    }

    /// Takes events that were built from this ledger and are now stored, or
    /// that are replayed from the store.
    pub fn commit(&mut self, events: &[Event]) {
        for event in events {
            self.projection.apply(event);
            self.next_seq = self.next_seq.max(event.seq + 1);
        }
    }

    /// Drops detail from days before `now`'s, so the ledger stays small.
    pub fn forget_before_today(&mut self, now: Timestamp) {
        let today = self.projection.day_of(now).date;
        self.projection.forget_before(today);
    }

    fn device_actor(&self) -> Actor {
        Actor::Device {
            id: self.device.clone(),
        }
    }

    /// Every event the agent records concerns its own device.
    fn event(&self, seq: u64, at: Timestamp, actor: Actor, kind: EventKind) -> Event {
        let mut event = Event::new(seq, at, actor, ChildId::from(LOCAL_CHILD), kind);
        event.device = Some(self.device.clone());
        event
    }
}
