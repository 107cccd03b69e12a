//! Unlock until a time: "let her finish the film until 20:30".
//!
//! A guardian's unlock of the whole child may carry an end (`EventKind::Unlocked`'s
//! `until`). Besides lifting every lock, as any unlock of the child does, it sets an
//! *unlock-until*: while `now < until` the child is never in DOWNTIME, BLOCKED or GRACE.
//! Use still counts against the day, so the film is not free; it only may run past the
//! allowance and into bedtime. The rules, and why:
//!
//! * **The state while it holds** is ACTIVE, or WARNING in the last 5 minutes before the
//!   screens would stop if the child kept watching. They stop at `until` if the child
//!   will be out of time or in downtime then, and otherwise (the allowance outlasts the
//!   unlock) when the allowance runs out, as on any day. So the child is warned before
//!   the film's end exactly when something will actually stop them, and not told
//!   "3 minutes left" while the unlock lets them watch for another hour.
//! * **Its end is a time-driven change**: `Status::next_change_at` includes `until`
//!   (and the start of its WARNING), so an agent sleeping until then wakes in time.
//!   After it, the ordinary rules apply with everything used in the meantime counted.
//!   No fresh grace starts at the end: grace counts from when the allowance ran out,
//!   as always, and the WARNING before `until` is the notice.
//! * **A later lock of the child ends it.** The newest act of a guardian about the whole
//!   child wins: a lock says "stop now", and when that lock is lifted or runs out the
//!   child is back under the ordinary rules, not under an earlier "until 20:30" that
//!   one guardian may not know another gave. A device lock only locks that device
//!   (`Status::state_on_device`); the child's other screens keep the unlock.
//! * **A later unlock-until replaces it** (sooner or later, as re-locking does).
//! * **A plain unlock leaves it be**: an unlock without `until` lifts locks, nothing
//!   more, as the API's `UnlockRequest` says ("Absent: lift the locks only"). To end an
//!   unlock-until early, lock the child (and unlock, for the ordinary rules).
//! * **Only the whole child**: downtime and the allowance are the child's, not one
//!   device's, so `Projection::check_unlock` refuses an `until` with a device target,
//!   and the fold ignores such an event.
//! * **At most 24 hours ahead**, and after now: long enough for a late film or a
//!   sleepover, short enough that an unlock-until never silently outlives a day's rules.
//!
//! The legacy CST protocol knows nothing of it: the CST view reports ACTIVE with the
//! allowance's minutes left (possibly 0), since the state allows use.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::downtime::downtime_end_if_active;
use crate::event::Actor;
use crate::fold::Projection;
use crate::state::{ChildState, WARNING_SECONDS};
use crate::time::{LocalDay, SECONDS_PER_MINUTE};

/// Furthest ahead an unlock's `until` may lie, in hours: a late film, a sleepover. The
/// API's `UnlockRequest.until_unix_micros` says the same.
pub const MAX_UNLOCK_HOURS: i64 = 24;

/// An unlock-until as set: the child may use their screens until `until` whatever the
/// clock and the allowance say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockUntil {
    /// When it was given.
    pub since: Timestamp,
    /// When it ends.
    pub until: Timestamp,
    /// Who gave it.
    pub by: Actor,
    /// Seq of the `Unlocked` event.
    pub seq: u64,
}

impl UnlockUntil {
    /// Whether it holds at `now`. Like a lock, it counts for any `now` before its end
    /// once applied (an event stamped a little after `now` still counts).
    pub fn holds_at(&self, now: Timestamp) -> bool {
        now < self.until
    }
}

/// The state while an unlock-until holds, with the screens stopping in `seconds_left`
/// (see [`Projection::screen_seconds_while_unlocked`]): WARNING in the last 5 minutes,
/// else ACTIVE.
pub(crate) fn state_while_unlocked(seconds_left: i64) -> ChildState {
    if seconds_left <= WARNING_SECONDS {
        ChildState::Warning
    } else {
        ChildState::Active
    }
}

impl Projection {
    /// Seconds from `now_second` until the screens would stop under `unlock` if the
    /// child kept using them: at `until` when the child will be out of time or in
    /// downtime then, else when the allowance runs out after it. `remaining_seconds` is
    /// today's allowance left (signed: negative once overshot).
    ///
    /// What is left at `until` counts on continuous use: today's remaining less the time
    /// to `until` when `until` is today, else the allowance of the day `until` falls in
    /// less that day's part up to `until` (no grant lies on a day that has not begun).
    /// Downtime is judged at `until` itself.
    pub(crate) fn screen_seconds_while_unlocked(
        &self,
        unlock: &UnlockUntil,
        now_second: i64,
        remaining_seconds: i64,
    ) -> i64 {
        let until_second = unlock.until.as_second();
        let to_until = until_second - now_second;
        let today = LocalDay::containing(now_second, &self.zone);
        let left_at_until = if today.contains(until_second) {
            remaining_seconds - to_until
        } else {
            let then = LocalDay::containing(until_second, &self.zone);
            self.policy.allowance_minutes(then.date) * SECONDS_PER_MINUTE
                - (until_second - then.start_second)
        };
        let downtime_then =
            downtime_end_if_active(&self.policy, &self.zone, until_second).is_some();
        if left_at_until <= 0 || downtime_then {
            to_until
        } else {
            to_until + left_at_until
        }
    }
}
