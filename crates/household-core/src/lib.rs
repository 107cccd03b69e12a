//! The household's screen-time rules, pure and synchronous.
//!
//! Everything that decides "how much time is left and what state is this child in"
//! lives here, once, for the hub and for the child agent alike. Nothing here does I/O,
//! spawns tasks or reads a clock: time always comes in as an argument, so every answer
//! can be reproduced from the events and the instant it was asked for.
//!
//! The pieces, in the order a reader needs them:
//!
//! * [`time`] — the household zone, local days (23, 24 or 25 hours long), clock times;
//! * [`policy`] — what a guardian sets: daily minutes, downtime windows, credits, grace,
//!   one-off exceptions; validated into typed [`InputError`]s;
//! * [`event`] — what happened, as the log holds it;
//! * [`usage`] — usage as the union of active intervals across devices;
//! * [`grant`] — the one rule for extra time: `max(remaining, 0) + N`;
//! * [`state`] — the states and their precedence;
//! * [`request`], [`lock`], [`unlock`], [`downtime`] — requests for more time,
//!   guardian locks, unlocks until a time ("finish the film"), bedtime windows;
//! * [`fold`] and [`status`] — the [`Projection`] that applies events one at a time and
//!   reads a [`Status`] at any instant;
//! * [`cst`] — the `TIME_LEFT` view for the legacy protocol.
//!
//! `docs/rules.md` explains the rules with worked examples; the tests in `tests/` are
//! those examples.

pub mod cst;
pub mod downtime;
pub mod error;
pub mod event;
pub mod fold;
pub mod grant;
pub mod held;
pub mod lock;
pub mod policy;
pub mod request;
pub mod state;
pub mod status;
pub mod time;
pub mod unlock;
pub mod usage;

pub use cst::{CstCorrection, CstState, CstTimeLeft};
pub use error::{CreditRefusal, InputError, PolicyChangeError, RequestRefusal};
pub use event::{
    Actor, Answer, ChildId, CreditSize, DeviceId, Event, EventKind, GuardianId, Identity,
    LegacyOutcome, RequestId,
};
pub use fold::{ApplyOutcome, DevicePresence, Ignored, Projection};
pub use grant::{Grant, GrantSource, MAX_GRANT_MINUTES, MIN_GRANT_MINUTES, extend_credit};
pub use held::{HeldBudget, SinceBudget};
pub use lock::{DeviceLock, LockInfo, MAX_LOCK_DAYS};
pub use policy::{
    Credits, DailyMinutes, DayException, DowntimeWindow, Policy, WeekdayRule, WeekdayWindow,
};
pub use request::{RequestState, Resolution, TimeRequest};
pub use state::{ChildState, WARNING_SECONDS};
pub use status::{CreditsLeft, DeviceUsage, Status, status_from_events};
pub use time::{ClockTime, LocalDay, Weekday, zone_named};
pub use unlock::{MAX_UNLOCK_HOURS, UnlockUntil};
pub use usage::UsageSet;
