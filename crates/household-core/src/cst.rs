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

/// Minutes by which what a CST child shows may differ from the household's figure
/// before the hub corrects it: the child counts whole minutes and a poll is never at the
/// same instant as the status it is compared with.
pub const CST_TOLERANCE_MINUTES: u32 = 1;

/// What the hub sends an unmodified CST Android child to make it show what the household
/// decided ([`correction`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CstCorrection {
    /// `LOCK_DEVICE`: the household says no more use today (or now).
    Lock,
    /// `EXTEND_TIME:n`, which on the Android child *sets* the time left to `n` (credit =
    /// used + n) and unblocks it.
    SetRemaining { minutes: u32 },
}

/// The command that brings a CST child showing `seen` in line with `want` (the
/// household's status of that device in CST terms), or `None` if it already agrees.
/// The household wins both ways: a child the household blocks is locked, and a child
/// the household gives time is given exactly that (more or less than it shows).
pub fn correction(want: CstTimeLeft, seen: CstTimeLeft) -> Option<CstCorrection> {
    match (want.state, seen.state) {
        (CstState::Blocked, CstState::Active) => Some(CstCorrection::Lock),
        (CstState::Blocked, CstState::Blocked) => None,
        (CstState::Active, _) if want.remaining_minutes == 0 => None,
        (CstState::Active, seen_state) => {
            let most = u32::try_from(crate::grant::MAX_GRANT_MINUTES).unwrap_or(u32::MAX);
            let minutes = want.remaining_minutes.min(most);
            let off = seen.remaining_minutes.abs_diff(minutes) > CST_TOLERANCE_MINUTES;
            (seen_state == CstState::Blocked || off)
                .then_some(CstCorrection::SetRemaining { minutes })
        }
    }
}

impl CstTimeLeft {
    /// Minutes the CST child has counted as used today, when its reply tells: credit −
    /// remaining while time is left. A blocked child shows 0 left, which only says that
    /// use reached the credit.
    pub fn used_minutes(&self) -> Option<u32> {
        (self.remaining_minutes > 0)
            .then(|| self.credit_minutes.saturating_sub(self.remaining_minutes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(remaining_minutes: u32, state: CstState) -> CstTimeLeft {
        CstTimeLeft {
            remaining_minutes,
            state,
            credit_minutes: 120,
        }
    }

    #[test]
    fn the_household_wins_both_ways() {
        use CstState::{Active, Blocked};
        let want = seen(30, Active);
        assert_eq!(correction(want, seen(30, Active)), None);
        assert_eq!(correction(want, seen(31, Active)), None, "within a minute");
        assert_eq!(
            correction(want, seen(90, Active)),
            Some(CstCorrection::SetRemaining { minutes: 30 }),
            "more than the household gives"
        );
        assert_eq!(
            correction(want, seen(0, Blocked)),
            Some(CstCorrection::SetRemaining { minutes: 30 }),
            "blocked while the household gives time"
        );
        assert_eq!(
            correction(seen(0, Blocked), seen(45, Active)),
            Some(CstCorrection::Lock)
        );
        assert_eq!(correction(seen(12, Blocked), seen(0, Blocked)), None);
        assert_eq!(
            correction(seen(5000, Active), seen(10, Active)),
            Some(CstCorrection::SetRemaining { minutes: 1440 }),
            "EXTEND_TIME takes at most 1440"
        );
    }

    #[test]
    fn use_is_known_while_time_is_left() {
        assert_eq!(seen(30, CstState::Active).used_minutes(), Some(90));
        assert_eq!(seen(0, CstState::Blocked).used_minutes(), None);
    }

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
