//! Household time: the zone, weekdays, clock times and the local day.
//!
//! A household lives in one IANA time zone. Its day runs from local midnight to the next
//! local midnight, so at daylight-saving changes a day really has 23 or 25 hours, and a
//! minute of screen time is always a real minute (an elapsed 60 seconds), never a
//! wall-clock difference. The rules count in whole Unix seconds internally; `jiff`
//! does the calendar and zone work with its bundled database, so nothing here reads
//! `/usr/share/zoneinfo` or the system clock.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::InputError;

/// Seconds in a minute, named so that conversions read as what they are.
pub const SECONDS_PER_MINUTE: i64 = 60;

/// Look up an IANA zone name (`"Europe/Berlin"`) in the bundled database.
///
/// The error names the field `time_zone`, where a policy keeps the name.
pub fn zone_named(name: &str) -> Result<TimeZone, InputError> {
    TimeZone::get(name).map_err(|_| InputError::UnknownTimeZone {
        field: "time_zone".into(),
        name: name.into(),
    })
}

/// A day of the week, written `"mon"` … `"sun"` in policies.
///
/// Ordered Monday first, as ISO 8601 numbers them (Monday = 1 … Sunday = 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    #[serde(alias = "monday")]
    Mon,
    #[serde(alias = "tuesday")]
    Tue,
    #[serde(alias = "wednesday")]
    Wed,
    #[serde(alias = "thursday")]
    Thu,
    #[serde(alias = "friday")]
    Fri,
    #[serde(alias = "saturday")]
    Sat,
    #[serde(alias = "sunday")]
    Sun,
}

impl Weekday {
    /// All seven days, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// The weekday with ISO number `n` (1 = Monday … 7 = Sunday).
    ///
    /// Services that receive weekdays as numbers (protobuf, forms) go through here so an
    /// out-of-range number becomes a typed error naming the field `weekday`.
    pub fn from_iso_number(n: i64) -> Result<Weekday, InputError> {
        match n {
            1..=7 => Ok(Weekday::ALL[(n - 1) as usize]),
            _ => Err(InputError::out_of_range("weekday", n, 1, 7)),
        }
    }

    /// ISO number of the day (1 = Monday … 7 = Sunday).
    pub fn iso_number(self) -> i64 {
        self as i64 + 1
    }

    /// The short lowercase name used in policy files (`"mon"`).
    pub fn short_name(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }

    /// The weekday of a calendar date.
    pub fn of(date: Date) -> Weekday {
        Weekday::ALL[(date.weekday().to_monday_one_offset() - 1) as usize]
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// A wall-clock time of day with minute precision, written `"21:00"`.
///
/// Bedtimes are set in minutes; seconds would only invite `21:00:07`. `00:00` as a
/// window's end means the following midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime {
    minute_of_day: u16,
}

impl ClockTime {
    /// Midnight, `00:00`.
    pub const MIDNIGHT: ClockTime = ClockTime { minute_of_day: 0 };

    /// A clock time from hour (0..=23) and minute (0..=59).
    pub fn new(hour: i64, minute: i64) -> Result<ClockTime, InputError> {
        if !(0..=23).contains(&hour) {
            return Err(InputError::out_of_range("hour", hour, 0, 23));
        }
        if !(0..=59).contains(&minute) {
            return Err(InputError::out_of_range("minute", minute, 0, 59));
        }
        Ok(ClockTime {
            minute_of_day: (hour * 60 + minute) as u16,
        })
    }

    /// The hour, 0..=23.
    pub fn hour(self) -> i8 {
        (self.minute_of_day / 60) as i8
    }

    /// The minute within the hour, 0..=59.
    pub fn minute(self) -> i8 {
        (self.minute_of_day % 60) as i8
    }

    /// Minutes since midnight, 0..1440.
    pub fn minute_of_day(self) -> i64 {
        i64::from(self.minute_of_day)
    }

    /// This clock time on `date`, as a civil date-time (no zone yet).
    pub fn on(self, date: Date) -> DateTime {
        date.at(self.hour(), self.minute(), 0, 0)
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

impl FromStr for ClockTime {
    type Err = InputError;

    /// Parse `"H:MM"` or `"HH:MM"`.
    fn from_str(s: &str) -> Result<ClockTime, InputError> {
        let bad = || InputError::BadClockTime {
            field: "time".into(),
            value: s.into(),
        };
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let digits = |part: &str, max_len: usize| {
            !part.is_empty() && part.len() <= max_len && part.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
            return Err(bad());
        }
        let hour: i64 = h.parse().map_err(|_| bad())?;
        let minute: i64 = m.parse().map_err(|_| bad())?;
        ClockTime::new(hour, minute).map_err(|_| bad())
    }
}

impl Serialize for ClockTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ClockTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whole Unix seconds of an instant (sub-second parts are truncated).
///
/// Usage intervals are cut to whole seconds at both ends, so back-to-back reports
/// (`[a, b)`, `[b, c)`) lose nothing and a second is never counted twice.
pub fn unix_seconds(t: Timestamp) -> i64 {
    t.as_second()
}

/// The instant at `seconds` after the Unix epoch, clamped into jiff's range.
pub fn instant(seconds: i64) -> Timestamp {
    let clamped = seconds.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(clamped).unwrap_or(if seconds < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// An instant given as microseconds since the Unix epoch (how agents and the wire carry
/// time), checked against the representable range.
pub fn instant_from_unix_micros(micros: i64) -> Result<Timestamp, InputError> {
    Timestamp::from_microsecond(micros).map_err(|_| InputError::InstantOutOfRange {
        field: "now_unix_micros".into(),
        value: micros,
        min: Timestamp::MIN.as_microsecond(),
        max: Timestamp::MAX.as_microsecond(),
    })
}

/// The instant a local date-time means in `zone`.
///
/// A time that does not exist (skipped at spring-forward) moves forward by the length of
/// the gap: `02:30` on a day that jumps from 02:00 to 03:00 means `03:30` — the same
/// elapsed time after 01:00 as on any other day. A time that happens twice (fall-back)
/// means its first occurrence. This is the "compatible" rule of RFC 5545 and of jiff.
pub fn local_instant(local: DateTime, zone: &TimeZone) -> i64 {
    match zone.to_zoned(local) {
        Ok(zoned) => zoned.timestamp().as_second(),
        Err(_) if local.date().year() < 0 => Timestamp::MIN.as_second(),
        Err(_) => Timestamp::MAX.as_second(),
    }
}

/// The local calendar date of an instant in `zone`.
pub fn local_date(at_second: i64, zone: &TimeZone) -> Date {
    Zoned::new(instant(at_second), zone.clone()).date()
}

/// One local calendar day in the household zone: the half-open range of instants
/// `[start, end)` from one local midnight to the next.
///
/// Everything that is "per day" — the allowance, grants, credits, the life of a request —
/// is counted within one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalDay {
    /// The calendar date.
    pub date: Date,
    /// First instant of the day (local midnight), Unix seconds.
    pub start_second: i64,
    /// First instant of the next day, Unix seconds.
    pub end_second: i64,
}

impl LocalDay {
    /// The day of `date` in `zone`.
    ///
    /// When midnight itself is skipped by a DST change, the day starts at the first
    /// instant that exists.
    pub fn of(date: Date, zone: &TimeZone) -> LocalDay {
        let start_second = local_instant(DateTime::from(date), zone);
        let end_second = match date.tomorrow() {
            Ok(next) => local_instant(DateTime::from(next), zone),
            Err(_) => Timestamp::MAX.as_second(),
        };
        LocalDay {
            date,
            start_second,
            end_second,
        }
    }

    /// The day that contains the instant `at_second`.
    pub fn containing(at_second: i64, zone: &TimeZone) -> LocalDay {
        let mut day = LocalDay::of(local_date(at_second, zone), zone);
        // In the rare zones whose clocks fall back across midnight, the previous date
        // repeats after the new one began; the instant belongs to the day already begun.
        if at_second >= day.end_second
            && let Ok(next) = day.date.tomorrow()
        {
            day = LocalDay::of(next, zone);
        }
        day
    }

    /// The next day.
    pub fn next(&self, zone: &TimeZone) -> LocalDay {
        match self.date.tomorrow() {
            Ok(next) => LocalDay::of(next, zone),
            Err(_) => *self,
        }
    }

    /// The previous day.
    pub fn previous(&self, zone: &TimeZone) -> LocalDay {
        match self.date.yesterday() {
            Ok(prev) => LocalDay::of(prev, zone),
            Err(_) => *self,
        }
    }

    /// Real length of the day: 86 400 s usually, 82 800 or 90 000 at DST changes.
    pub fn length_seconds(&self) -> i64 {
        self.end_second - self.start_second
    }

    /// Weekday of the day.
    pub fn weekday(&self) -> Weekday {
        Weekday::of(self.date)
    }

    /// Whether the instant lies within the day.
    pub fn contains(&self, at_second: i64) -> bool {
        (self.start_second..self.end_second).contains(&at_second)
    }

    /// First instant of the day.
    pub fn start(&self) -> Timestamp {
        instant(self.start_second)
    }

    /// First instant of the next day.
    pub fn end(&self) -> Timestamp {
        instant(self.end_second)
    }
}

#[cfg(test)]
mod tests;
