//! Downtime windows turned into instants.
//!
//! A window is written in local clock times; to ask "is it bedtime now?" it becomes a
//! range of instants on each date it starts on. Its start is that clock time on the
//! date; its end is the end clock time on the same date, or on the next date when the
//! window crosses midnight. Clock times that do not exist or happen twice at DST changes
//! follow [`crate::time::local_instant`]: a skipped time moves forward by the gap, a
//! repeated time means its first occurrence. A window that comes out empty on some date
//! (possible only when both ends fall into a spring-forward gap) has no effect that day.
//!
//! Only windows starting on the current or the previous date can contain an instant,
//! because a window is shorter than a day.

use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::policy::{DowntimeWindow, Policy};
use crate::time::{LocalDay, local_instant};

/// A downtime window on one date, as instants `[start, end)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DowntimeSpan {
    /// First second of downtime.
    pub start_second: i64,
    /// First second after it.
    pub end_second: i64,
}

/// The window's instants when it starts on `date`.
pub fn span_on(window: &DowntimeWindow, date: Date, zone: &TimeZone) -> Option<DowntimeSpan> {
    let start_second = local_instant(window.start.on(date), zone);
    let end_date = if window.crosses_midnight() {
        date.tomorrow().ok()?
    } else {
        date
    };
    let end_second = local_instant(window.end.on(end_date), zone);
    (end_second > start_second).then_some(DowntimeSpan {
        start_second,
        end_second,
    })
}

/// Every downtime span that starts on `date` under `policy`.
pub fn spans_starting_on(policy: &Policy, date: Date, zone: &TimeZone) -> Vec<DowntimeSpan> {
    policy
        .downtime_starting_on(date)
        .filter_map(|w| span_on(w, date, zone))
        .collect()
}

/// The spans that could touch `day`: those starting the day before and on the day, and
/// the day after (for "when does the next one start").
fn spans_near(policy: &Policy, day: &LocalDay, zone: &TimeZone) -> Vec<DowntimeSpan> {
    let mut spans = Vec::new();
    if let Ok(prev) = day.date.yesterday() {
        spans.extend(spans_starting_on(policy, prev, zone));
    }
    spans.extend(spans_starting_on(policy, day.date, zone));
    if let Ok(next) = day.date.tomorrow() {
        spans.extend(spans_starting_on(policy, next, zone));
    }
    spans
}

/// Whether `now` lies in downtime, and if so when the downtime ends (following
/// overlapping or back-to-back windows to the end of the whole stretch).
pub fn downtime_end_if_active(policy: &Policy, zone: &TimeZone, now_second: i64) -> Option<i64> {
    let day = LocalDay::containing(now_second, zone);
    let spans = spans_near(policy, &day, zone);
    let mut end = spans
        .iter()
        .filter(|s| s.start_second <= now_second && now_second < s.end_second)
        .map(|s| s.end_second)
        .max()?;
    // Extend through windows that begin before the current stretch ends.
    loop {
        let further = spans
            .iter()
            .filter(|s| s.start_second <= end && s.end_second > end)
            .map(|s| s.end_second)
            .max();
        match further {
            Some(e) => end = e,
            None => return Some(end),
        }
    }
}

/// The first downtime start strictly after `now`, looking as far as the next day.
pub fn next_downtime_start(policy: &Policy, zone: &TimeZone, now_second: i64) -> Option<i64> {
    let day = LocalDay::containing(now_second, zone);
    spans_near(policy, &day, zone)
        .iter()
        .map(|s| s.start_second)
        .filter(|&s| s > now_second)
        .min()
}
