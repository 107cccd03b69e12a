//! A child's status at one instant: what the fold says right now.
//!
//! Reading a status never changes the projection; `now` is an argument, so the same
//! events and the same `now` always give the same status.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cst::CstTimeLeft;
use crate::downtime::{downtime_end_if_active, next_downtime_start};
use crate::error::InputError;
use crate::event::{ChildId, CreditSize, DeviceId, Event};
use crate::fold::{DevicePresence, Projection};
use crate::grant::Grant;
use crate::lock::{DeviceLock, LockInfo};
use crate::policy::Policy;
use crate::request::{RequestState, TimeRequest};
use crate::state::{ChildState, WARNING_SECONDS};
use crate::time::{LocalDay, SECONDS_PER_MINUTE, instant, unix_seconds};
use crate::unlock::{UnlockUntil, state_while_unlocked};

/// Self-serve extension credits still available today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditsLeft {
    /// 5-minute credits left.
    pub five_minute: i64,
    /// 10-minute credits left.
    pub ten_minute: i64,
}

impl CreditsLeft {
    /// Credits of `size` left.
    pub fn of(&self, size: CreditSize) -> i64 {
        match size {
            CreditSize::FiveMinute => self.five_minute,
            CreditSize::TenMinute => self.ten_minute,
        }
    }

    /// Minutes all remaining credits together could add.
    pub fn total_minutes(&self) -> i64 {
        self.five_minute * 5 + self.ten_minute * 10
    }
}

/// One device's own usage today (for reports; the child is charged the union).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceUsage {
    /// The device.
    pub device: DeviceId,
    /// Seconds it was in use today, up to `now`.
    pub used_seconds: i64,
}

/// Where a child stands at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The child.
    pub child: ChildId,
    /// The instant this status is for.
    pub at: Timestamp,
    /// The local day `at` falls in (its real length may be 23, 24 or 25 hours).
    pub day: LocalDay,
    /// The state after precedence (see [`crate::state`]).
    pub state: ChildState,
    /// The day's allowance from the policy (weekday minutes or the date's exception).
    pub allowance_minutes: i64,
    /// The day's credit: allowance after grants, as CST means "credit".
    pub credit_seconds: i64,
    /// Seconds of usage today up to `at` (union over devices).
    pub used_seconds: i64,
    /// Seconds left today, never below 0.
    pub remaining_seconds: i64,
    /// Today's grants, in the order they applied.
    pub grants: Vec<Grant>,
    /// When today's credit was used up, if it is.
    pub exhausted_at: Option<Timestamp>,
    /// When the grace period ends (or ended), if the credit is used up.
    pub grace_ends_at: Option<Timestamp>,
    /// Seconds of grace left: the policy's whole grace until the credit is used up,
    /// then what is left of it up to `at`, never below 0.
    #[serde(default)]
    pub grace_remaining_seconds: i64,
    /// The child-wide lock in force, if any.
    pub lock: Option<LockInfo>,
    /// Device locks in force.
    pub device_locks: Vec<DeviceLock>,
    /// The unlock-until in force, if any: until its end the child is never in
    /// DOWNTIME, BLOCKED or GRACE (see [`crate::unlock`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock: Option<UnlockUntil>,
    /// End of the downtime `at` lies in, if it does.
    pub downtime_ends_at: Option<Timestamp>,
    /// Next downtime start after `at` (within about a day), for "bedtime in 5 minutes".
    pub next_downtime_at: Option<Timestamp>,
    /// Self-serve credits left today.
    pub credits_left: CreditsLeft,
    /// Requests waiting for an answer.
    pub pending_requests: Vec<TimeRequest>,
    /// Each device's own usage today.
    pub used_by_device: Vec<DeviceUsage>,
    /// Devices the events have mentioned, with their presence.
    pub devices: Vec<DevicePresence>,
    /// The earliest instant after `at` at which the state could change if no event
    /// arrives and the child keeps using a screen: when to look again. Time-based
    /// changes come later if the child is idle, so this is never too late, only early.
    pub next_change_at: Option<Timestamp>,
    /// Revision of the policy in force.
    pub policy_revision: u64,
    /// Seq of the last event folded in.
    pub last_seq: Option<u64>,
}

impl Status {
    /// Minutes left, rounded up (30 s left is "1 minute left"; 0 only when none is).
    pub fn remaining_minutes(&self) -> i64 {
        ceil_minutes(self.remaining_seconds)
    }

    /// Minutes used today, rounded down.
    pub fn used_minutes(&self) -> i64 {
        self.used_seconds.div_euclid(SECONDS_PER_MINUTE)
    }

    /// The day's credit in minutes, rounded up, never below 0.
    pub fn credit_minutes(&self) -> i64 {
        ceil_minutes(self.credit_seconds.max(0))
    }

    /// The state as seen on one device: LOCKED if that device is locked, since a device
    /// lock outranks everything below LOCKED.
    pub fn state_on_device(&self, device: &DeviceId) -> ChildState {
        if self.device_locks.iter().any(|l| &l.device == device) {
            ChildState::Locked
        } else {
            self.state
        }
    }

    /// The CST `TIME_LEFT` view of the child.
    pub fn cst(&self) -> CstTimeLeft {
        CstTimeLeft::from_parts(self.remaining_minutes(), self.state, self.credit_minutes())
    }

    /// The CST `TIME_LEFT` view as seen on one device (honours device locks).
    pub fn cst_on_device(&self, device: &DeviceId) -> CstTimeLeft {
        CstTimeLeft::from_parts(
            self.remaining_minutes(),
            self.state_on_device(device),
            self.credit_minutes(),
        )
    }
}

fn ceil_minutes(seconds: i64) -> i64 {
    if seconds <= 0 {
        0
    } else {
        (seconds + SECONDS_PER_MINUTE - 1) / SECONDS_PER_MINUTE
    }
}

impl Projection {
    /// The child's status at `now`.
    ///
    /// Every applied event counts, even one stamped a little after `now` (clocks
    /// differ); usage is counted only up to `now`.
    pub fn status_at(&self, now: Timestamp) -> Status {
        let now_second = unix_seconds(now);
        let zone = &self.zone;
        let day = LocalDay::containing(now_second, zone);

        let allowance_minutes = self.policy.allowance_minutes(day.date);
        let credit_seconds = self.credit_of_day(&day, now_second);
        let used_seconds = self.usage.seconds_between(day.start_second, now_second);
        let remaining = credit_seconds - used_seconds;

        let grace_seconds = self.policy.grace_minutes * SECONDS_PER_MINUTE;
        let exhausted_second = if remaining <= 0 {
            let crossing = self
                .usage
                .instant_reaching(day.start_second, now_second, credit_seconds)
                .unwrap_or(now_second);
            let floor = self
                .exhaustion_floor_second
                .filter(|&f| day.contains(f) && f <= now_second);
            Some(floor.map_or(crossing, |f| crossing.max(f)))
        } else {
            None
        };
        let grace_end_second = exhausted_second.map(|t| t + grace_seconds);
        let in_grace = grace_end_second.is_some_and(|end| now_second < end);
        let time_state = ChildState::from_time(remaining, in_grace);

        let downtime_end = downtime_end_if_active(&self.policy, zone, now_second);
        let next_downtime = next_downtime_start(&self.policy, zone, now_second);
        let lock = self.locks.child_lock_at(now).cloned();
        let unlock = self.unlock.clone().filter(|u| u.holds_at(now));

        let mut next_change = vec![day.end_second];
        let state = match &unlock {
            // A child lock ends an unlock-until, so the two never hold together.
            Some(unlock) if lock.is_none() => {
                let seconds_left =
                    self.screen_seconds_while_unlocked(unlock, now_second, remaining);
                // Neither downtime nor the allowance changes the state before `until`;
                // only WARNING beginning and the unlock's end do.
                next_change.push(unix_seconds(unlock.until));
                if seconds_left > WARNING_SECONDS {
                    next_change.push(now_second + seconds_left - WARNING_SECONDS);
                } else {
                    next_change.push(now_second + seconds_left);
                }
                state_while_unlocked(seconds_left)
            }
            _ => {
                if remaining > WARNING_SECONDS {
                    next_change.push(now_second + remaining - WARNING_SECONDS);
                } else if remaining > 0 {
                    next_change.push(now_second + remaining);
                } else if let Some(end) = grace_end_second.filter(|&end| end > now_second) {
                    next_change.push(end);
                }
                next_change.extend(downtime_end);
                next_change.extend(next_downtime);
                ChildState::decide(time_state, downtime_end.is_some(), lock.is_some())
            }
        };
        next_change.extend(self.locks.ends_after(now).map(unix_seconds));
        let next_change_at = next_change
            .into_iter()
            .filter(|&t| t > now_second)
            .min()
            .map(instant);

        let credits_left = CreditsLeft {
            five_minute: (self.credits_allowed(CreditSize::FiveMinute)
                - self.credits_spent(&day, CreditSize::FiveMinute))
            .max(0),
            ten_minute: (self.credits_allowed(CreditSize::TenMinute)
                - self.credits_spent(&day, CreditSize::TenMinute))
            .max(0),
        };

        Status {
            child: self.child.clone(),
            at: now,
            day,
            state,
            allowance_minutes,
            credit_seconds,
            used_seconds,
            remaining_seconds: remaining.max(0),
            grants: self.grants_on(&day).cloned().collect(),
            exhausted_at: exhausted_second.map(instant),
            grace_ends_at: grace_end_second.map(instant),
            grace_remaining_seconds: grace_end_second.map_or(grace_seconds, |end| {
                (end - now_second).clamp(0, grace_seconds)
            }),
            lock,
            device_locks: self.locks.device_locks_at(now),
            unlock,
            downtime_ends_at: downtime_end.map(instant),
            next_downtime_at: next_downtime.map(instant),
            credits_left,
            pending_requests: self
                .requests
                .values()
                .filter(|r| r.state_at(now) == RequestState::Pending)
                .cloned()
                .collect(),
            used_by_device: self
                .usage_by_device
                .iter()
                .map(|(device, usage)| DeviceUsage {
                    device: device.clone(),
                    used_seconds: usage.seconds_between(day.start_second, now_second),
                })
                .filter(|u| u.used_seconds > 0)
                .collect(),
            devices: self.devices.values().cloned().collect(),
            next_change_at,
            policy_revision: self.policy.revision,
            last_seq: self.last_seq,
        }
    }

    /// [`Projection::status_at`] for an instant given in microseconds since the Unix
    /// epoch, as agents and the wire often carry it.
    pub fn status_at_unix_micros(&self, now_unix_micros: i64) -> Result<Status, InputError> {
        Ok(self.status_at(crate::time::instant_from_unix_micros(now_unix_micros)?))
    }
}

/// The one-call answer for an agent: fold `events` under `policy` and read the status at
/// `now`. Events for other children and repeated seqs are skipped.
pub fn status_from_events<'a>(
    child: ChildId,
    policy: Policy,
    events: impl IntoIterator<Item = &'a Event>,
    now: Timestamp,
) -> Result<Status, InputError> {
    Ok(Projection::from_events(child, policy, events)?.status_at(now))
}
