//! Events: everything that happened in the household, as the log holds it.
//!
//! Status is never stored, only derived by folding events (see [`crate::Projection`]).
//! An event has a `seq` (strictly increasing in the log that assigned it), the time it
//! was recorded, who did it and which child it concerns. The same types serve the hub's
//! log and the agent's own offline record.
//!
//! [`EventKind`] has the same kinds as the API's `household.v1.EventKind`, under the
//! same names (`UsageReported` is `EVENT_KIND_USAGE_REPORTED`, and so on). Most of the
//! registry's kinds — a child or device added or renamed, a guardian invited or
//! enrolled, an identity revoked — change no status; they are here so that every logged event has
//! one type and one fold. Those that must change a status do: removing a device lifts
//! its own lock and forgets its presence; removing the child closes the projection.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::policy::Policy;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                $name(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> $name {
                $name(s)
            }
        }
    };
}

id_type!(
    /// A child of the household.
    ChildId
);
id_type!(
    /// A guardian (parent, grandparent) with their own identity.
    GuardianId
);
id_type!(
    /// One enrolled device of a child.
    DeviceId
);
id_type!(
    /// A request for more time; made by the device, so it can be created offline.
    RequestId
);

/// Who caused an event. Recorded on every event so the household can see who did what.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A guardian acting through the API.
    Guardian { id: GuardianId },
    /// A child's device (usage reports, requests, credit spends).
    Device { id: DeviceId },
    /// A legacy CST parent app, known only by its address (`"192.168.1.20:40123"`).
    LegacyAddress { address: String },
    /// The hub or agent itself (e.g. a lock that a schedule set).
    System,
}

/// One thing that happened, as the log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log; the fold applies events in this order.
    pub seq: u64,
    /// When the event was recorded (the hub's or the agent's clock).
    pub at: Timestamp,
    /// Who caused it.
    pub actor: Actor,
    /// The child it concerns; empty for household-wide events
    /// ([`EventKind::is_household_wide`]), as in the log.
    pub child: ChildId,
    /// The device it concerns, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of events the log holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A device saw the child actively using it from `start` to `end`.
    ///
    /// Reports may overlap, repeat, grow (an open interval re-reported as it lengthens)
    /// or arrive late: usage is the union of all intervals, so none of that double-counts.
    UsageReported { start: Timestamp, end: Timestamp },
    /// A guardian (or a legacy parent app) extended the day by `minutes`, by the rule of
    /// [`crate::grant`].
    ///
    /// A legacy `EXTEND_TIME:n` is logged as a `LegacyCommand` (for audit) and, when
    /// carried out, this event with the legacy address as actor: the command itself
    /// changes nothing.
    TimeGranted {
        minutes: i64,
        /// When the grant took effect, if that was before the event was logged: the
        /// device's time of an `EXTEND_TIME` a child agent carried out on its own and
        /// reported later. `None`: the event's own time (a guardian's grant takes effect
        /// when it is logged).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        granted_at: Option<Timestamp>,
    },
    /// A guardian locked one device (`device`) or the whole child (`None`), until a time
    /// or until unlocked.
    Locked {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<DeviceId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
        /// Why, shown on the child's lock screen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A guardian lifted a lock: of one device, or (`None`) every lock of the child.
    ///
    /// With `until` (child target only) it also lets the child use their screens through
    /// downtime and when out of time until that instant, "finish the film until 20:30"
    /// (see [`crate::unlock`]). Without it, an unlock lifts locks and nothing else: an
    /// unlock-until already in force stays.
    Unlocked {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<DeviceId>,
        /// End of the unlock-until; `None` for a plain unlock. An event stored before
        /// the field existed reads as a plain unlock.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
    },
    /// The child's policy was replaced.
    PolicyChanged { policy: Policy },
    /// The child asked for more time.
    ///
    /// The request belongs to the local day of `requested_at` (else of the event's
    /// time) and expires when that day ends, so a request made offline yesterday and
    /// logged today has already expired: yesterday's time cannot be asked for today.
    TimeRequested {
        request_id: RequestId,
        minutes: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// When the child asked, if before the event was logged: the agent's time of the
        /// request, corrected for its clock offset. Never later than the event's time
        /// (the fold caps it there). `None`: the event's own time, as for an event
        /// stored before the field existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requested_at: Option<Timestamp>,
    },
    /// A guardian answered a request.
    RequestResolved {
        request_id: RequestId,
        answer: Answer,
    },
    /// The child spent one self-serve extension credit.
    ExtensionCreditSpent {
        size: CreditSize,
        /// When the child spent it, if that was before the event was logged: the device
        /// applies a credit at once, even offline, and reports it later. `None`: the
        /// event's own time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spent_at: Option<Timestamp>,
    },
    /// A device joined the household.
    DeviceEnrolled { device: DeviceId },
    /// A device connected.
    DeviceOnline { device: DeviceId },
    /// A device went away.
    DeviceOffline { device: DeviceId },
    /// A command arrived over the legacy CST protocol (kept for audit; the grant or lock
    /// it caused is its own event, so this changes no status).
    LegacyCommand {
        /// The command as received: `EXTEND_TIME:15`, or the text that was not one.
        command: String,
        /// What became of it. An event stored without one (by an agent that did not
        /// record outcomes yet) reads as `Applied`.
        #[serde(default = "LegacyOutcome::recorded_without_outcome")]
        outcome: LegacyOutcome,
        /// The plaintext reply sent back (`TIME_EXTENDED|15 minutes added`); empty
        /// when none was sent.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reply: String,
    },
    /// A guardian added the child. Changes no status: the hub starts the child's
    /// projection with the policy the child was added with.
    ChildAdded { display_name: String },
    /// A guardian renamed the child. Changes no status.
    ChildRenamed {
        display_name: String,
        previous_display_name: String,
    },
    /// A guardian removed the child. This closes the projection: every later event for
    /// the child is ignored ([`crate::Ignored::ChildRemoved`]). Whether the child's earlier
    /// events were deleted is the log's business, recorded here for history.
    ChildRemoved {
        #[serde(default)]
        history_forgotten: bool,
    },
    /// A guardian added a device for the child. Changes no status: a device shows up
    /// in presence once it enrolls or comes online.
    DeviceAdded {
        device: DeviceId,
        display_name: String,
        /// For a legacy CST device, the address the hub sends commands to; `None` for a
        /// device that runs the child agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        legacy_address: Option<String>,
    },
    /// A guardian renamed a device. Changes no status.
    DeviceRenamed {
        device: DeviceId,
        display_name: String,
        previous_display_name: String,
    },
    /// A guardian removed a device: its own lock is lifted and its presence forgotten.
    /// Use it reported stays charged to the child's day (a minute used is used), and in
    /// its per-device figures for reports.
    DeviceRemoved { device: DeviceId },
    /// A guardian redeemed a pairing code; the event's actor is the new guardian.
    /// Household-wide: no child's status changes.
    GuardianEnrolled { display_name: String },
    /// An identity, or one credential of it (`credential_id`), was revoked.
    /// Household-wide: no child's status changes (a revoked device's session ends, which
    /// is its own `DeviceOffline`).
    IdentityRevoked {
        identity: Identity,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential_id: Option<String>,
    },
    /// A guardian (or the admin) invited a new guardian, who will have the id
    /// `guardian`; `GuardianEnrolled` follows when they redeem the pairing code.
    /// Household-wide: no child's status changes.
    GuardianInvited {
        guardian: GuardianId,
        display_name: String,
    },
    /// A child agent reports trouble that guardians should know of — its store
    /// refuses writes (it keeps metering and enforcing from memory), its usage source
    /// fails (it counts the time as use), its policy file was refused (it keeps the
    /// last good one) — or, with `cleared`, that the trouble is over. Changes no status.
    DeviceTrouble {
        device: DeviceId,
        /// What is wrong, in words, e.g. "store failing: No space left on device".
        trouble: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cleared: bool,
    },
}

impl EventKind {
    /// Whether the kind concerns the household rather than one child, so its event has
    /// an empty `child` (see [`Event::household_wide`]).
    pub fn is_household_wide(&self) -> bool {
        matches!(
            self,
            EventKind::GuardianEnrolled { .. }
                | EventKind::IdentityRevoked { .. }
                | EventKind::GuardianInvited { .. }
        )
    }
}

/// A guardian or a device, as an identity with credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Identity {
    /// A guardian.
    Guardian { id: GuardianId },
    /// A child's device.
    Device { id: DeviceId },
}

/// A guardian's answer to a request for more time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// Yes, with this many minutes (which may differ from what was asked).
    Approved { minutes: i64 },
    /// No.
    Denied,
}

impl fmt::Display for Answer {
    /// `approved with 20 minutes` or `denied`, as messages to guardians say it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Approved { minutes: 1 } => f.write_str("approved with 1 minute"),
            Answer::Approved { minutes } => write!(f, "approved with {minutes} minutes"),
            Answer::Denied => f.write_str("denied"),
        }
    }
}

/// What became of a legacy CST command (`LegacyOutcome` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyOutcome {
    /// Carried out and answered with success.
    Applied,
    /// Dropped: the same sealed datagram was seen within the replay window.
    RejectedReplay,
    /// Dropped: the sender exceeded the legacy rate limit.
    RejectedRateLimit,
    /// Refused: the legacy path is read-only, so only `GET_TIME_LEFT` is served.
    RejectedReadOnly,
    /// Answered with a CST error: an unknown command or bad minutes.
    RejectedInvalid,
    /// Accepted but not carried out (the device could not store it, or, on the hub's
    /// bridge, the Android child did not answer).
    Failed,
    /// Refused: sent from one of the device's own addresses (loopback or a local
    /// interface), that is by a user of the device itself, such as the child.
    RejectedLocal,
}

impl LegacyOutcome {
    fn recorded_without_outcome() -> LegacyOutcome {
        LegacyOutcome::Applied
    }
}

/// The sizes of self-serve extension credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditSize {
    /// 5 minutes.
    FiveMinute,
    /// 10 minutes.
    TenMinute,
}

impl CreditSize {
    /// Minutes the credit adds.
    pub fn minutes(self) -> i64 {
        match self {
            CreditSize::FiveMinute => 5,
            CreditSize::TenMinute => 10,
        }
    }
}

impl Event {
    /// An event with no device; set `device` afterwards where it applies.
    pub fn new(seq: u64, at: Timestamp, actor: Actor, child: ChildId, kind: EventKind) -> Event {
        Event {
            seq,
            at,
            actor,
            child,
            device: None,
            kind,
        }
    }

    /// A household-wide event (a guardian invited or enrolled, an identity revoked): no
    /// child, so no child's projection applies it.
    pub fn household_wide(seq: u64, at: Timestamp, actor: Actor, kind: EventKind) -> Event {
        Event::new(seq, at, actor, ChildId(String::new()), kind)
    }
}
