//! A budget the hub gave one device, and the status that device enforces from it until
//! the next one comes: between budgets, and for as long as the hub is away.
//!
//! The hub folds every device of a child together; a device alone knows only the last
//! budget (the child's time left across all devices, the locks, the policy) and what it
//! did itself since. [`HeldBudget::status_at`] combines the two by these rules:
//!
//! - **The same day as the budget:** time left is the budget's, less this device's use
//!   the budget does not include yet, plus the time this device granted since (a legacy
//!   `EXTEND_TIME`, a credit). Once the budget said the time was up, the grace it had
//!   left runs on the hub's clock from when the budget was computed.
//! - **A later day** (offline across midnight): a fresh day under the budget's policy,
//!   with this device's own use and grants of that day. Other devices' use is unknown
//!   until the hub is back, which then reconciles.
//! - Locks, the unlock-until and downtime are judged at `now` exactly as the hub judges
//!   them, from the budget's locks and policy and the device's own legacy locks.
//!
//! Where the device cannot know (the overshoot a grant forgives, the exact instant time
//! ran out), the rule takes the side of less screen time: enforcement fails closed, and
//! the next budget corrects it.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::downtime::{downtime_end_if_active, next_downtime_start};
use crate::error::InputError;
use crate::event::{ChildId, CreditSize, DeviceId};
use crate::lock::{DeviceLock, LockInfo};
use crate::policy::Policy;
use crate::state::ChildState;
use crate::status::{CreditsLeft, Status};
use crate::time::{LocalDay, SECONDS_PER_MINUTE, instant, unix_seconds, zone_named};
use crate::unlock::{UnlockUntil, state_while_unlocked};
use crate::usage::UsageSet;

/// The budget as the hub sent it, in the rules' own types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBudget {
    /// The child the device belongs to.
    pub child: ChildId,
    /// The child's day the budget is for.
    pub day: Date,
    /// The hub's clock when it computed the budget.
    pub computed_at: Timestamp,
    /// The newest event the budget includes.
    pub as_of_seq: u64,
    /// The day's allowance including grants and credits, in seconds.
    pub allowance_seconds: i64,
    /// The day's use across the child's devices, in seconds.
    pub used_seconds: i64,
    /// Time left when computed, never below 0.
    pub remaining_seconds: i64,
    /// Grace left when computed.
    pub grace_remaining_seconds: i64,
    /// Self-serve credits left when computed.
    pub credits_left: CreditsLeft,
    /// The child's policy.
    pub policy: Policy,
    /// A lock on the child as a whole.
    pub child_lock: Option<LockInfo>,
    /// A lock on this device.
    pub device_lock: Option<LockInfo>,
    /// While a guardian's unlock-until holds: when it ends.
    pub unlocked_until: Option<Timestamp>,
}

/// What the device did that the budget does not include yet, on the hub's clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinceBudget {
    /// The device's own use not yet in the budget (Unix seconds).
    pub usage: UsageSet,
    /// Time the device granted (legacy extensions, credits): when, and how many seconds.
    pub granted: Vec<(Timestamp, i64)>,
    /// Credits the device spent: when, and which.
    pub credits_spent: Vec<(Timestamp, CreditSize)>,
    /// Locks of this device set on the device (a legacy `LOCK_DEVICE`).
    pub device_locks: Vec<LockInfo>,
    /// The device lifted its own lock since (a legacy `EXTEND_TIME` does): the
    /// budget's lock of this device no longer holds.
    pub device_lock_lifted: bool,
}

impl HeldBudget {
    /// The status of `device` at `now` (the hub's clock), counting what it did since.
    pub fn status_at(
        &self,
        device: &DeviceId,
        now: Timestamp,
        since: &SinceBudget,
    ) -> Result<Status, InputError> {
        let zone = zone_named(&self.policy.time_zone)?;
        let now_second = unix_seconds(now);
        let day = LocalDay::containing(now_second, &zone);
        let on_day = |at: Timestamp| day.contains(unix_seconds(at));
        let own_used = since.usage.seconds_between(day.start_second, now_second);
        let granted: i64 = since
            .granted
            .iter()
            .filter(|(at, _)| on_day(*at))
            .map(|(_, s)| s)
            .sum();
        let spent = |size| {
            since
                .credits_spent
                .iter()
                .filter(|(at, s)| *s == size && on_day(*at))
                .count() as i64
        };
        let same_day = day.date == self.day;
        let (credit_before, used_before, credits_before) = if same_day {
            (self.remaining_seconds, self.used_seconds, self.credits_left)
        } else {
            let allowance = self.policy.allowance_minutes(day.date) * SECONDS_PER_MINUTE;
            let credits = &self.policy.extension_credits_per_day;
            (
                allowance,
                0,
                CreditsLeft {
                    five_minute: credits.five_minute_count,
                    ten_minute: credits.ten_minute_count,
                },
            )
        };
        let credit = credit_before + granted;
        let remaining = credit - own_used;

        let grace_seconds = self.policy.grace_minutes * SECONDS_PER_MINUTE;
        let exhausted_second = (remaining <= 0).then(|| {
            if same_day && self.remaining_seconds == 0 && granted == 0 {
                // Out of time when the budget was computed: its grace runs from then.
                unix_seconds(self.computed_at) - (grace_seconds - self.grace_remaining_seconds)
            } else {
                since
                    .usage
                    .instant_reaching(day.start_second, now_second, credit)
                    .unwrap_or(now_second)
            }
        });
        let grace_end_second = exhausted_second.map(|t| t + grace_seconds);
        let in_grace = grace_end_second.is_some_and(|end| now_second < end);
        let time_state = ChildState::from_time(remaining, in_grace);

        let lock = self.child_lock.clone().filter(|l| l.holds_at(now));
        let device_locks: Vec<DeviceLock> = self
            .device_lock
            .iter()
            .filter(|_| !since.device_lock_lifted)
            .chain(&since.device_locks)
            .filter(|l| l.holds_at(now))
            .map(|l| DeviceLock {
                device: device.clone(),
                lock: l.clone(),
            })
            .collect();
        let unlock = self
            .unlocked_until
            .filter(|until| now < *until && lock.is_none())
            .map(|until| UnlockUntil {
                since: self.computed_at,
                until,
                by: crate::event::Actor::System,
                seq: self.as_of_seq,
            });
        let downtime_end = downtime_end_if_active(&self.policy, &zone, now_second);
        let next_downtime = next_downtime_start(&self.policy, &zone, now_second);
        let state = match &unlock {
            // Counted to the unlock's end alone: the device knows no more than that.
            Some(unlock) => state_while_unlocked(unix_seconds(unlock.until) - now_second),
            None => ChildState::decide(time_state, downtime_end.is_some(), lock.is_some()),
        };
        let credits_left = CreditsLeft {
            five_minute: (credits_before.five_minute - spent(CreditSize::FiveMinute)).max(0),
            ten_minute: (credits_before.ten_minute - spent(CreditSize::TenMinute)).max(0),
        };
        Ok(Status {
            child: self.child.clone(),
            at: now,
            day,
            state,
            allowance_minutes: self.policy.allowance_minutes(day.date),
            credit_seconds: credit + used_before,
            used_seconds: used_before + own_used,
            remaining_seconds: remaining.max(0),
            grants: Vec::new(),
            exhausted_at: exhausted_second.map(instant),
            grace_ends_at: grace_end_second.map(instant),
            grace_remaining_seconds: grace_end_second.map_or(grace_seconds, |end| {
                (end - now_second).clamp(0, grace_seconds)
            }),
            lock,
            device_locks,
            unlock,
            downtime_ends_at: downtime_end.map(instant),
            next_downtime_at: next_downtime.map(instant),
            credits_left,
            pending_requests: Vec::new(),
            used_by_device: Vec::new(),
            devices: Vec::new(),
            next_change_at: None,
            policy_revision: self.policy.revision,
            last_seq: Some(self.as_of_seq),
        })
    }

    /// Whether the child may spend a credit of `size` now, by the status this budget
    /// gives: not while locked or in downtime, and only while one is left today.
    pub fn check_credit(
        &self,
        status: &Status,
        size: CreditSize,
    ) -> Result<(), crate::CreditRefusal> {
        if matches!(status.state, ChildState::Locked | ChildState::Downtime) {
            return Err(crate::CreditRefusal::NotNow {
                state: status.state,
            });
        }
        if status.credits_left.of(size) <= 0 {
            let credits = &self.policy.extension_credits_per_day;
            return Err(crate::CreditRefusal::NoneLeft {
                size,
                date: status.day.date,
                allowed: match size {
                    CreditSize::FiveMinute => credits.five_minute_count,
                    CreditSize::TenMinute => credits.ten_minute_count,
                },
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Actor;

    /// 2026-12-02 12:00 UTC.
    const NOON: i64 = 1_796_212_800;
    const DEVICE: &str = "tablet";

    fn budget(remaining: i64, grace_left: i64) -> HeldBudget {
        HeldBudget {
            child: ChildId::from("c-1"),
            day: jiff::civil::date(2026, 12, 2),
            computed_at: instant(NOON),
            as_of_seq: 7,
            allowance_seconds: 3600,
            used_seconds: 3600 - remaining,
            remaining_seconds: remaining,
            grace_remaining_seconds: grace_left,
            credits_left: CreditsLeft {
                five_minute: 1,
                ten_minute: 0,
            },
            policy: Policy {
                daily_minutes: crate::DailyMinutes::every_day(60),
                grace_minutes: 2,
                ..Policy::default()
            },
            child_lock: None,
            device_lock: None,
            unlocked_until: None,
        }
    }

    fn at(seconds_after_noon: i64) -> Timestamp {
        instant(NOON + seconds_after_noon)
    }

    fn status(budget: &HeldBudget, now: i64, since: &SinceBudget) -> Status {
        budget
            .status_at(&DeviceId::from(DEVICE), at(now), since)
            .unwrap()
    }

    fn used(spans: &[(i64, i64)]) -> SinceBudget {
        let mut usage = UsageSet::new();
        for (s, e) in spans {
            usage.insert(NOON + s, NOON + e);
        }
        SinceBudget {
            usage,
            ..SinceBudget::default()
        }
    }

    #[test]
    fn own_use_since_the_budget_counts_against_the_time_it_left() {
        let b = budget(600, 120);
        let s = status(&b, 0, &SinceBudget::default());
        assert_eq!((s.state, s.remaining_seconds), (ChildState::Active, 600));
        let s = status(&b, 400, &used(&[(0, 400)]));
        assert_eq!((s.state, s.remaining_seconds), (ChildState::Warning, 200));
        assert_eq!(s.used_seconds, 3400);
        // Out at +600: two minutes of grace by the device's own reckoning, then blocked.
        let s = status(&b, 650, &used(&[(0, 650)]));
        assert_eq!(s.state, ChildState::Grace);
        assert_eq!(s.grace_ends_at, Some(at(720)));
        let s = status(&b, 720, &used(&[(0, 720)]));
        assert_eq!(s.state, ChildState::Blocked);
    }

    #[test]
    fn a_budget_already_in_grace_runs_its_grace_on_from_when_it_was_computed() {
        let b = budget(0, 30);
        assert_eq!(
            status(&b, 29, &SinceBudget::default()).state,
            ChildState::Grace
        );
        assert_eq!(
            status(&b, 30, &SinceBudget::default()).state,
            ChildState::Blocked
        );
        // A legacy extension granted on the device lifts it at once.
        let since = SinceBudget {
            granted: vec![(at(40), 900)],
            ..SinceBudget::default()
        };
        let s = status(&b, 40, &since);
        assert_eq!((s.state, s.remaining_seconds), (ChildState::Active, 900));
    }

    #[test]
    fn a_new_day_offline_starts_fresh_under_the_policy_with_the_own_use_of_that_day() {
        let b = budget(0, 0);
        // 12 hours on: 00:00 of the next day; an hour later with 20 minutes used.
        let since = used(&[(13 * 3600 - 1200, 13 * 3600)]);
        let s = status(&b, 13 * 3600, &since);
        assert_eq!(s.day.date, jiff::civil::date(2026, 12, 3));
        assert_eq!((s.state, s.remaining_seconds), (ChildState::Active, 2400));
        assert_eq!(
            s.credits_left.five_minute, 2,
            "the policy's credits, afresh"
        );
    }

    #[test]
    fn locks_and_downtime_hold_offline_and_end_on_time() {
        let mut b = budget(3000, 120);
        let lock = |until: Option<i64>| LockInfo {
            since: at(0),
            until: until.map(at),
            reason: None,
            by: Actor::System,
            seq: 5,
        };
        b.child_lock = Some(lock(Some(60)));
        assert_eq!(
            status(&b, 59, &SinceBudget::default()).state,
            ChildState::Locked
        );
        assert_eq!(
            status(&b, 60, &SinceBudget::default()).state,
            ChildState::Active
        );
        let since = SinceBudget {
            device_locks: vec![lock(None)],
            ..SinceBudget::default()
        };
        let s = status(&b, 100, &since);
        assert_eq!(
            s.state_on_device(&DeviceId::from(DEVICE)),
            ChildState::Locked
        );
        b.policy.downtime = vec![crate::DowntimeWindow::every_day(
            crate::ClockTime::new(12, 30).unwrap(),
            crate::ClockTime::new(13, 0).unwrap(),
        )];
        assert_eq!(
            status(&b, 1800, &SinceBudget::default()).state,
            ChildState::Downtime
        );
        // An unlock-until lets the child through downtime, to its end.
        b.unlocked_until = Some(at(2400));
        assert_eq!(
            status(&b, 1800, &SinceBudget::default()).state,
            ChildState::Active
        );
    }

    #[test]
    fn credits_spent_on_the_device_are_counted_and_refused_when_none_are_left() {
        let b = budget(0, 0);
        let since = SinceBudget {
            credits_spent: vec![(at(10), CreditSize::FiveMinute)],
            granted: vec![(at(10), 300)],
            ..SinceBudget::default()
        };
        let s = status(&b, 20, &since);
        assert_eq!(s.credits_left.five_minute, 0);
        assert_eq!(s.state, ChildState::Warning);
        assert!(matches!(
            b.check_credit(&s, CreditSize::FiveMinute),
            Err(crate::CreditRefusal::NoneLeft { .. })
        ));
    }
}
