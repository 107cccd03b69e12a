//! Grants: how extra time is added to a day.
//!
//! One rule for every kind of extra time — a guardian's "extend by N", a legacy
//! `EXTEND_TIME:N`, an approved request, a self-serve credit:
//!
//! > after the grant the child has `max(remaining, 0) + N` minutes left.
//!
//! Written on the day's *credit* (the allowance including grants, as CST calls it), with
//! `used` the usage counted up to the grant's instant, that is
//! `credit' = max(credit, used) + N`. When the child is out of time this is exactly CST's
//! `EXTEND_TIME` (`credit = used + N`); while time is left it adds, so two guardians who
//! both tap "+15" give 30 more minutes, in whichever order their taps arrive. Overshoot
//! (time used during grace, past the credit) is not deducted from a grant.
//!
//! Grants count for the local day they were made on and are applied in the order of
//! their instants (ties broken by `seq`). A grant's instant is when it took effect: the
//! event's time, or for an extension a device applied on its own and reported later,
//! the device's time of it (`TimeGranted::granted_at`, `ExtensionCreditSpent::spent_at`).
//!
//! # Late usage reports
//!
//! `used` is not recorded with a grant: it is the usage counted up to the grant's
//! instant from everything reported *so far*, so a report that arrives after the grant
//! (an agent's offline outbox) but covers time before it changes what the grant left.
//! This is on purpose. The rule promises `max(remaining, 0) + N` from the moment of the
//! grant, and only the late report tells what "remaining" really was then: a phone that
//! was offline in its grace period had overshot the credit, and the rule forgives an
//! overshoot, so Anna's "+15" still leaves 15 minutes; fixed at the usage the hub had
//! seen, the phone's grace minutes would come out of her grant. (A late report of use
//! the child had left within the allowance lowers what is left by just that use, as
//! it should.) The fold stays deterministic — the status is a function of the events
//! applied and `now`, and usage is a union, so the order reports arrive in does not
//! matter — but a status computed before a late report is not the one after it; that
//! is a new event changing a status, like any other. `docs/rules.md` works the example
//! (`a_late_usage_report_counts_for_a_grant_made_before_it_arrived`).

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::event::{CreditSize, RequestId};
use crate::policy::check_range;
use crate::time::SECONDS_PER_MINUTE;
use crate::usage::UsageSet;

/// Fewest minutes one grant may add.
pub const MIN_GRANT_MINUTES: i64 = 1;
/// Most minutes one grant may add: a whole day, as CST's `EXTEND_TIME` allows (1-1440).
pub const MAX_GRANT_MINUTES: i64 = 1440;

/// Where a grant came from, so a status can say how the day's credit was made up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum GrantSource {
    /// `TimeGranted` from a guardian or a legacy parent app.
    Guardian,
    /// An approved request.
    Request { request_id: RequestId },
    /// A self-serve extension credit.
    Credit { size: CreditSize },
}

/// One addition of time, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Instant of the grant, Unix seconds.
    pub at_second: i64,
    /// Seq of the event that made it (tie-break between grants at one instant).
    pub seq: u64,
    /// Seconds added.
    pub seconds: i64,
    /// What kind of grant it was.
    pub source: GrantSource,
}

/// Check the minutes of a grant: 1..=1440, named `minutes`.
pub fn check_grant_minutes(minutes: i64) -> Result<i64, InputError> {
    check_range("minutes", minutes, MIN_GRANT_MINUTES, MAX_GRANT_MINUTES)?;
    Ok(minutes)
}

/// The extension rule on credit: `max(credit, used) + added`.
///
/// Equivalently, remaining becomes `max(remaining, 0) + added`.
pub fn extend_credit(credit_seconds: i64, used_seconds: i64, added_seconds: i64) -> i64 {
    credit_seconds
        .max(used_seconds)
        .saturating_add(added_seconds)
}

/// The day's credit at `now`: the allowance, then every grant of the day in order,
/// each seeing the usage counted up to its own instant (and never past `now`).
///
/// `grants` must be the day's grants sorted by `(at_second, seq)`.
pub fn day_credit<'a>(
    allowance_seconds: i64,
    grants: impl IntoIterator<Item = &'a Grant>,
    usage: &UsageSet,
    day_start_second: i64,
    now_second: i64,
) -> i64 {
    grants.into_iter().fold(allowance_seconds, |credit, grant| {
        let used = usage.seconds_between(day_start_second, grant.at_second.min(now_second));
        extend_credit(credit, used, grant.seconds)
    })
}

/// Minutes → seconds for a grant.
pub(crate) fn minutes_to_seconds(minutes: i64) -> i64 {
    minutes.saturating_mul(SECONDS_PER_MINUTE)
}
