//! The CST view of a status: what `GET_TIME_LEFT` answers.
//!
//! The legacy protocol (`protocols/cst-legacy.md`) replies
//! `TIME_LEFT|<remaining>|<ACTIVE or BLOCKED>|<credit>`: minutes left today (never below
//! 0), the state, and today's credit in minutes. The CST child app is BLOCKED exactly
//! when `used >= credit`; ours maps onto that as follows:
//!
//! * remaining = the status's remaining minutes (rounded up, never below 0), and 0 while
//!   LOCKED: the Android child's `LOCK_DEVICE` sets the day's credit below what was
//!   used, so a locked CST child reports `TIME_LEFT|0|BLOCKED|…` until it is extended;
//! * credit = the day's allowance after grants, in minutes (rounded up);
//! * ACTIVE for ACTIVE and WARNING; BLOCKED for everything else. GRACE is BLOCKED
//!   because its remaining is 0, which is `used >= credit` in CST's terms; LOCKED and
//!   DOWNTIME are BLOCKED because the device is (the CST app also answers BLOCKED after
//!   `LOCK_DEVICE`), even though minutes may be left.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::state::ChildState;

/// The two states the CST protocol knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CstState {
    /// The device may be used.
    Active,
    /// The device is blocked.
    Blocked,
}

impl CstState {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            CstState::Active => "ACTIVE",
            CstState::Blocked => "BLOCKED",
        }
    }
}

impl From<ChildState> for CstState {
    fn from(state: ChildState) -> CstState {
        match state {
            ChildState::Active | ChildState::Warning => CstState::Active,
            ChildState::Grace | ChildState::Blocked | ChildState::Downtime | ChildState::Locked => {
                CstState::Blocked
            }
        }
    }
}

/// The three fields of a `TIME_LEFT` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CstTimeLeft {
    /// Minutes left today, never below 0.
    pub remaining_minutes: u32,
    /// ACTIVE or BLOCKED.
    pub state: CstState,
    /// Today's credit (allowance after grants) in minutes.
    pub credit_minutes: u32,
}

impl CstTimeLeft {
    /// Build the view from minutes and our state; negative minutes become 0, and so do
    /// the minutes of a locked child (see the module's comment).
    pub fn from_parts(remaining_minutes: i64, state: ChildState, credit_minutes: i64) -> Self {
        let clamp = |m: i64| u32::try_from(m.max(0)).unwrap_or(u32::MAX);
        let remaining_minutes = if state == ChildState::Locked {
            0
        } else {
            remaining_minutes
        };
        CstTimeLeft {
            remaining_minutes: clamp(remaining_minutes),
            state: state.into(),
            credit_minutes: clamp(credit_minutes),
        }
    }

    /// The reply text, `TIME_LEFT|R|ACTIVE|C`, before sealing.
    pub fn reply_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for CstTimeLeft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TIME_LEFT|{}|{}|{}",
            self.remaining_minutes,
            self.state.as_str(),
            self.credit_minutes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_text_matches_the_protocol() {
        let view = CstTimeLeft::from_parts(42, ChildState::Warning, 120);
        assert_eq!(view.reply_text(), "TIME_LEFT|42|ACTIVE|120");
        let view = CstTimeLeft::from_parts(-3, ChildState::Grace, 60);
        assert_eq!(view.reply_text(), "TIME_LEFT|0|BLOCKED|60");
        let view = CstTimeLeft::from_parts(42, ChildState::Locked, 120);
        assert_eq!(view.reply_text(), "TIME_LEFT|0|BLOCKED|120");
    }

    #[test]
    fn only_active_and_warning_are_active() {
        use ChildState::*;
        for (state, expected) in [
            (Active, CstState::Active),
            (Warning, CstState::Active),
            (Grace, CstState::Blocked),
            (Blocked, CstState::Blocked),
            (Downtime, CstState::Blocked),
            (Locked, CstState::Blocked),
        ] {
            assert_eq!(CstState::from(state), expected, "{state}");
        }
    }
}
