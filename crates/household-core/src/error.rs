//! The typed refusals of the rules.
//!
//! Every error names the field it is about and, where a number is wrong, the range that
//! would have been accepted, so a service can hand the message to a guardian unchanged
//! (gRPC `InvalidArgument`, `FailedPrecondition`) and a config loader can point at the
//! line to fix.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::event::{Answer, CreditSize, RequestId};
use crate::state::ChildState;
use crate::time::Weekday;

/// Input that the rules cannot accept: bad numbers, bad clock times, unknown zones.
///
/// `field` is a path into the input as the user wrote it (`daily_minutes.mon`,
/// `downtime[1].end`, `minutes`), so the message can be shown as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum InputError {
    /// A number outside its allowed range (negative minutes, 5000 minutes, weekday 8).
    #[error("{field} is {value}; allowed range is {min}..={max}")]
    OutOfRange {
        field: String,
        value: i64,
        min: i64,
        max: i64,
    },
    /// A downtime window whose end equals its start: it would be either empty or a
    /// whole day, and a guardian who means "all day" should set the daily minutes to 0.
    #[error(
        "{field}: window starts and ends at {at}; a window must end at a different time than it starts"
    )]
    EmptyWindow { field: String, at: String },
    /// A time zone name the bundled IANA database does not know.
    #[error("{field}: unknown time zone {name:?}; expected an IANA name such as \"Europe/Berlin\"")]
    UnknownTimeZone { field: String, name: String },
    /// A clock time that is not `HH:MM` between 00:00 and 23:59.
    #[error("{field}: {value:?} is not a clock time; expected \"HH:MM\" from 00:00 to 23:59")]
    BadClockTime { field: String, value: String },
    /// A list that must name at least one item (e.g. the weekdays of a window) is empty.
    #[error("{field} is empty; it must name at least one of {allowed}")]
    EmptyList { field: String, allowed: String },
    /// Two exceptions for the same date: which one wins would be a guess.
    #[error("{field}: more than one exception for {date}; allowed is one per date")]
    DuplicateDate { field: String, date: Date },
    /// A list that must have an exact length (the 7 rules of a week) does not.
    #[error("{field} has {len} entries; exactly {expected} are required")]
    WrongCount {
        field: String,
        len: usize,
        expected: usize,
    },
    /// Two rules for the same weekday: which one holds would be a guess.
    #[error("{field}: more than one rule for {weekday}; allowed is one per weekday")]
    DuplicateWeekday { field: String, weekday: Weekday },
    /// A list longer than the rules accept.
    #[error("{field} has {len} entries; allowed is at most {max}")]
    TooMany {
        field: String,
        len: usize,
        max: usize,
    },
    /// A text longer than allowed.
    #[error("{field} has {len} characters; allowed is at most {max}")]
    TooLong {
        field: String,
        len: usize,
        max: usize,
    },
    /// An instant that must lie after `now` (a lock's end) does not.
    #[error("{field} is {value}, which is not after now ({now}); it must be later than now")]
    NotAfterNow {
        field: String,
        value: Timestamp,
        now: Timestamp,
    },
    /// An instant further ahead than allowed (a lock's end more than 30 days away, an
    /// unlock's end more than 24 hours away). `max_hours` is the limit in hours of real
    /// time; the message says it in days when it is a whole number of them above one.
    #[error(
        "{field} is {value}; allowed range is after now ({now}) up to {} ahead ({latest})",
        hours_in_words(*max_hours)
    )]
    TooFarAhead {
        field: String,
        value: Timestamp,
        now: Timestamp,
        latest: Timestamp,
        max_hours: i64,
    },
    /// A field that is valid on its own but not together with the rest of the request
    /// (an unlock "until" a time with a device target). `reason` says what it needs.
    #[error("{field} cannot be set here: {reason}")]
    NotApplicable { field: String, reason: String },
    /// An instant outside the range the rules can represent.
    #[error(
        "{field} is {value}; allowed range is {min}..={max} (microseconds since the Unix epoch)"
    )]
    InstantOutOfRange {
        field: String,
        value: i64,
        min: i64,
        max: i64,
    },
}

impl InputError {
    /// Build an [`InputError::OutOfRange`] for `field`.
    pub fn out_of_range(field: impl Into<String>, value: i64, min: i64, max: i64) -> Self {
        InputError::OutOfRange {
            field: field.into(),
            value,
            min,
            max,
        }
    }

    /// The field the error is about, for services that map errors to their own fields.
    pub fn field(&self) -> &str {
        match self {
            InputError::OutOfRange { field, .. }
            | InputError::EmptyWindow { field, .. }
            | InputError::UnknownTimeZone { field, .. }
            | InputError::BadClockTime { field, .. }
            | InputError::EmptyList { field, .. }
            | InputError::DuplicateDate { field, .. }
            | InputError::WrongCount { field, .. }
            | InputError::DuplicateWeekday { field, .. }
            | InputError::TooMany { field, .. }
            | InputError::TooLong { field, .. }
            | InputError::NotAfterNow { field, .. }
            | InputError::TooFarAhead { field, .. }
            | InputError::NotApplicable { field, .. }
            | InputError::InstantOutOfRange { field, .. } => field,
        }
    }

    /// The same error with `prefix.` put in front of its field, so a nested check can
    /// report `policy.daily_minutes.mon` while only knowing `daily_minutes.mon`.
    pub fn within(mut self, prefix: &str) -> Self {
        let field = match &mut self {
            InputError::OutOfRange { field, .. }
            | InputError::EmptyWindow { field, .. }
            | InputError::UnknownTimeZone { field, .. }
            | InputError::BadClockTime { field, .. }
            | InputError::EmptyList { field, .. }
            | InputError::DuplicateDate { field, .. }
            | InputError::WrongCount { field, .. }
            | InputError::DuplicateWeekday { field, .. }
            | InputError::TooMany { field, .. }
            | InputError::TooLong { field, .. }
            | InputError::NotAfterNow { field, .. }
            | InputError::TooFarAhead { field, .. }
            | InputError::NotApplicable { field, .. }
            | InputError::InstantOutOfRange { field, .. } => field,
        };
        *field = format!("{prefix}.{field}");
        self
    }
}

/// `30 days` or `24 hours`: a limit of hours as a person would say it, in days only
/// when it is a whole number of them above one (a lock's 30 days, an unlock's 24 hours).
fn hours_in_words(hours: i64) -> String {
    if hours > 24 && hours % 24 == 0 {
        format!("{} days", hours / 24)
    } else if hours == 1 {
        "1 hour".into()
    } else {
        format!("{hours} hours")
    }
}

/// Why an answer to a request for more time was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RequestRefusal {
    /// No request with this id was ever made for this child.
    #[error("request {id} is unknown")]
    Unknown { id: RequestId },
    /// Someone answered first; the first answer stands and this one changes nothing.
    ///
    /// `same_answer` tells a repeat of that very answer (a retried tap: the same
    /// approval with the same minutes, or a second denial) from a different one. A
    /// service reports a repeat as success, "already resolved", and refuses a different
    /// answer (`FailedPrecondition`); either way nothing is granted twice.
    #[error("request {id} was already {answer} at {answered_at}; {}", if *same_answer {
        "answering the same again changes nothing"
    } else {
        "the first answer stands"
    })]
    AlreadyAnswered {
        id: RequestId,
        /// The first answer, the one that stands.
        answer: Answer,
        answered_at: Timestamp,
        /// Whether the refused answer equals the first one.
        same_answer: bool,
    },
    /// The day the request was made has ended; a request does not outlive its day.
    #[error("request {id} expired when its day ended at {expired_at}")]
    Expired {
        id: RequestId,
        expired_at: Timestamp,
    },
    /// The answer itself is malformed (e.g. approving 0 minutes).
    #[error("answer to request {id}: {error}")]
    Invalid { id: RequestId, error: InputError },
}

impl RequestRefusal {
    /// Whether this is the repeat of an answer already given, which a service reports
    /// as success ("already resolved") rather than as an error.
    pub fn is_repeat(&self) -> bool {
        matches!(
            self,
            RequestRefusal::AlreadyAnswered {
                same_answer: true,
                ..
            }
        )
    }
}

/// Why a self-serve extension credit cannot be spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CreditRefusal {
    /// Today's credits of this size are all spent.
    #[error("no {size:?} credits left on {date}: {allowed} allowed per day, all spent")]
    NoneLeft {
        size: CreditSize,
        date: Date,
        allowed: i64,
    },
    /// Credits extend time; they do not lift a guardian's lock or a bedtime.
    #[error("a credit cannot be spent while the child is {state:?}")]
    NotNow { state: ChildState },
}

/// Why a new policy was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PolicyChangeError {
    /// The new policy itself is invalid.
    #[error(transparent)]
    Invalid(#[from] InputError),
    /// The guardian edited an older revision than the current one; someone else changed
    /// the policy in between, and overwriting silently would lose their change.
    #[error(
        "expected_revision is {expected}, but the policy is at revision {current}; read it again, reapply the change, retry"
    )]
    StaleRevision { expected: u64, current: u64 },
}
