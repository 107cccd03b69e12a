//! The state a child is in, and which state wins when several apply.
//!
//! Precedence, strongest first:
//!
//! 1. **LOCKED** — a guardian's lock (optionally until a time). A deliberate human act
//!    beats any schedule or budget; a lock set during bedtime still holds when bedtime
//!    ends, and no amount of time left lifts it.
//! 2. **DOWNTIME** — inside a downtime (bedtime) window. The schedule holds whatever time
//!    is left: minutes saved up do not buy a late night. Grants and credits during
//!    downtime add time for later but do not lift it.
//! 3. **BLOCKED** — the day's time and its grace are used up.
//! 4. **GRACE** — time is used up, the grace period ("save the game") is running. A grant
//!    during grace moves the child back to ACTIVE or WARNING at once (the grant rule
//!    forgives the overshoot); the next time the credit runs out a fresh grace starts.
//! 5. **WARNING** — 5 minutes or less left (and more than 0).
//! 6. **ACTIVE** — more than 5 minutes left.
//!
//! BLOCKED, GRACE, WARNING and ACTIVE exclude one another (they follow from the time
//! left); LOCKED and DOWNTIME are independent conditions layered on top. The enum's
//! order is this precedence, so the winner is simply the greatest state that applies.

use serde::{Deserialize, Serialize};

/// Time left at or below which the child is warned: 5 minutes.
pub const WARNING_SECONDS: i64 = 5 * 60;

/// What the child may do right now. Ordered by precedence: a greater state wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChildState {
    /// More than 5 minutes left.
    Active,
    /// 5 minutes or less left.
    Warning,
    /// Out of time, grace period running.
    Grace,
    /// Out of time, grace over.
    Blocked,
    /// Inside a downtime window.
    Downtime,
    /// Locked by a guardian.
    Locked,
}

impl ChildState {
    /// The state that the time budget alone gives: `remaining_seconds` is the signed
    /// time left (negative when overshot during grace), `in_grace` whether the grace
    /// period that began when it reached zero is still running.
    pub fn from_time(remaining_seconds: i64, in_grace: bool) -> ChildState {
        if remaining_seconds > WARNING_SECONDS {
            ChildState::Active
        } else if remaining_seconds > 0 {
            ChildState::Warning
        } else if in_grace {
            ChildState::Grace
        } else {
            ChildState::Blocked
        }
    }

    /// Apply the precedence: the greatest of the time state and the layered conditions.
    pub fn decide(time_state: ChildState, in_downtime: bool, locked: bool) -> ChildState {
        let mut state = time_state;
        if in_downtime {
            state = state.max(ChildState::Downtime);
        }
        if locked {
            state = state.max(ChildState::Locked);
        }
        state
    }

    /// Whether the device may be used (ACTIVE, WARNING, GRACE).
    pub fn allows_use(self) -> bool {
        self <= ChildState::Grace
    }

    /// The upper-case name used in docs, logs and the API.
    pub fn name(self) -> &'static str {
        match self {
            ChildState::Active => "ACTIVE",
            ChildState::Warning => "WARNING",
            ChildState::Grace => "GRACE",
            ChildState::Blocked => "BLOCKED",
            ChildState::Downtime => "DOWNTIME",
            ChildState::Locked => "LOCKED",
        }
    }
}

impl std::fmt::Display for ChildState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_state_thresholds() {
        assert_eq!(ChildState::from_time(301, false), ChildState::Active);
        assert_eq!(ChildState::from_time(300, false), ChildState::Warning);
        assert_eq!(ChildState::from_time(1, false), ChildState::Warning);
        assert_eq!(ChildState::from_time(0, true), ChildState::Grace);
        assert_eq!(ChildState::from_time(-30, true), ChildState::Grace);
        assert_eq!(ChildState::from_time(0, false), ChildState::Blocked);
    }

    #[test]
    fn precedence_locked_over_downtime_over_time() {
        use ChildState::*;
        assert_eq!(ChildState::decide(Active, true, true), Locked);
        assert_eq!(ChildState::decide(Blocked, true, false), Downtime);
        assert_eq!(ChildState::decide(Grace, true, false), Downtime);
        assert_eq!(ChildState::decide(Warning, false, true), Locked);
        assert_eq!(ChildState::decide(Grace, false, false), Grace);
        assert!(Grace.allows_use() && Warning.allows_use() && Active.allows_use());
        assert!(!Blocked.allows_use() && !Downtime.allows_use() && !Locked.allows_use());
    }
}
