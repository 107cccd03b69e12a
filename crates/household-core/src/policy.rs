//! A child's policy: what a guardian decides ahead of time.
//!
//! The policy is plain data that reads well as TOML (the agent loads it from a file) and
//! travels inside `PolicyChanged` events. It is checked by [`Policy::validate`], which
//! returns the first problem as a typed [`InputError`] naming the field and the allowed
//! range; the fold only ever runs on a validated policy.
//!
//! Field names are those of the API's `household.v1.Policy` wherever the two shapes
//! agree — `time_zone`, `grace_minutes`, `extension_credits_per_day.five_minute_count`,
//! `exceptions[i].daily_minutes`, `exceptions[i].skip_downtime`, `exceptions[i].note` —
//! so an error's field path is the one a guardian's client sent. Two parts have a shape
//! made for writing by hand: the weekday minutes (`daily_minutes`, a default plus
//! overrides) and the downtime windows (`downtime`, each with the days it starts on).
//! The API sends both as one rule per weekday (`weekdays`); [`Policy::set_weekday_rules`]
//! takes that shape and names its errors by the API's paths (`weekdays[2].daily_minutes`),
//! and [`Policy::weekday_rules`] gives it back. Files may also use the earlier spellings
//! `timezone`, `credits` (`five_minute`, `ten_minute`) and `no_downtime` / `no_bedtime`.
//!
//! ```toml
//! revision = 3
//! time_zone = "Europe/Berlin"
//! grace_minutes = 2
//!
//! [daily_minutes]      # or simply: daily_minutes = 120
//! default = 120
//! sat = 180
//! sun = 180
//!
//! [[downtime]]         # also accepted as [[bedtime]]
//! days = ["sun", "mon", "tue", "wed", "thu"]   # days the window starts on; omit for every day
//! start = "21:00"
//! end = "07:00"        # earlier than start: the window crosses midnight
//!
//! [extension_credits_per_day]
//! five_minute_count = 2
//! ten_minute_count = 1
//!
//! [[exceptions]]
//! date = "2025-12-24"  # quoted
//! daily_minutes = 240
//! skip_downtime = true # also accepted as no_downtime, no_bedtime
//! ```

use std::collections::BTreeSet;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::time::{ClockTime, Weekday, zone_named};

/// Most minutes a day's allowance may have: a whole day.
pub const MAX_DAILY_MINUTES: i64 = 1440;
/// Longest grace period: long enough to save any game, short enough to still be a lock.
pub const MAX_GRACE_MINUTES: i64 = 30;
/// Most self-serve credits of one size per day.
pub const MAX_CREDITS_PER_DAY: i64 = 12;
/// Most downtime windows starting on any one weekday.
pub const MAX_WINDOWS_PER_WEEKDAY: usize = 4;
/// Most one-off exceptions in one policy.
pub const MAX_EXCEPTIONS: usize = 64;
/// Longest label of a downtime window, in characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// Longest note of an exception, in characters.
pub const MAX_NOTE_CHARS: usize = 200;

/// Everything a guardian sets for one child.
///
/// `Policy::default()` is a reasonable start for a family that has not configured
/// anything: 120 minutes every day, no downtime, two 5-minute and one 10-minute
/// self-serve credits per day, 1 minute of grace, zone UTC (set the real zone — the
/// rules never read the system's), revision 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Bumped by one with every accepted change, so two guardians editing at once can
    /// notice each other (see [`crate::Projection::check_policy_change`]).
    pub revision: u64,
    /// IANA zone name of the household; days begin at local midnight there.
    #[serde(alias = "timezone")]
    pub time_zone: String,
    /// Screen minutes per day, per weekday.
    pub daily_minutes: DailyMinutes,
    /// Times of day when the devices are off limits, whatever time is left.
    #[serde(alias = "bedtime")]
    pub downtime: Vec<DowntimeWindow>,
    /// Self-serve extensions the child may take per day.
    #[serde(alias = "credits")]
    pub extension_credits_per_day: Credits,
    /// Minutes between running out of time and the lock, to save the game.
    pub grace_minutes: i64,
    /// One-off changes for single dates ("today only").
    pub exceptions: Vec<DayException>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            revision: 0,
            time_zone: "UTC".into(),
            daily_minutes: DailyMinutes::every_day(120),
            downtime: Vec::new(),
            extension_credits_per_day: Credits::default(),
            grace_minutes: 1,
            exceptions: Vec::new(),
        }
    }
}

impl Policy {
    /// Check every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), InputError> {
        zone_named(&self.time_zone)?;
        self.daily_minutes.validate()?;
        for (i, window) in self.downtime.iter().enumerate() {
            window
                .validate()
                .map_err(|e| e.within(&format!("downtime[{i}]")))?;
        }
        for day in Weekday::ALL {
            let starting = self.downtime.iter().filter(|w| w.starts_on(day)).count();
            if starting > MAX_WINDOWS_PER_WEEKDAY {
                return Err(InputError::TooMany {
                    field: format!("downtime (windows starting on {day})"),
                    len: starting,
                    max: MAX_WINDOWS_PER_WEEKDAY,
                });
            }
        }
        self.extension_credits_per_day.validate()?;
        check_range("grace_minutes", self.grace_minutes, 0, MAX_GRACE_MINUTES)?;
        if self.exceptions.len() > MAX_EXCEPTIONS {
            return Err(InputError::TooMany {
                field: "exceptions".into(),
                len: self.exceptions.len(),
                max: MAX_EXCEPTIONS,
            });
        }
        let mut dates = BTreeSet::new();
        for (i, exception) in self.exceptions.iter().enumerate() {
            let field = format!("exceptions[{i}]");
            if !dates.insert(exception.date) {
                return Err(InputError::DuplicateDate {
                    field: format!("{field}.date"),
                    date: exception.date,
                });
            }
            exception.validate().map_err(|e| e.within(&field))?;
        }
        Ok(())
    }

    /// The exception for `date`, if any.
    pub fn exception_on(&self, date: Date) -> Option<&DayException> {
        self.exceptions.iter().find(|e| e.date == date)
    }

    /// The day's allowance before any grant: the exception's limit if it sets one,
    /// otherwise the weekday's minutes.
    pub fn allowance_minutes(&self, date: Date) -> i64 {
        self.exception_on(date)
            .and_then(|e| e.daily_minutes)
            .unwrap_or_else(|| self.daily_minutes.for_weekday(Weekday::of(date)))
    }

    /// The downtime windows that start on `date`, unless an exception turns them off.
    ///
    /// A window belongs to the day it starts on: Friday's 21:00–07:00 window covers
    /// Friday night and Saturday morning, and "no bedtime on Friday" removes all of it.
    pub fn downtime_starting_on(&self, date: Date) -> impl Iterator<Item = &DowntimeWindow> {
        let off = self.exception_on(date).is_some_and(|e| e.skip_downtime);
        let weekday = Weekday::of(date);
        self.downtime
            .iter()
            .filter(move |w| !off && w.starts_on(weekday))
    }
}

/// One weekday's rules in the API's shape (`household.v1.WeekdayRule`), for
/// [`Policy::set_weekday_rules`] and [`Policy::weekday_rules`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekdayRule {
    /// The weekday by its ISO number, as the API's `Weekday` enum numbers it: 1 (Monday)
    /// to 7 (Sunday).
    pub weekday: i64,
    /// Screen minutes allowed on that day before grants, 0..=1440.
    pub daily_minutes: i64,
    /// Downtime windows that start on that day, at most 4.
    pub downtime_windows: Vec<WeekdayWindow>,
}

/// A downtime window in the API's shape (`household.v1.DowntimeWindow`): minutes of the
/// local day, the end below the start when the window crosses midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekdayWindow {
    /// Minute of the day the window starts, 0 (00:00) ..= 1439 (23:59).
    pub start_minute_of_day: i64,
    /// Minute of the day the window ends, 0..=1439; must differ from the start.
    pub end_minute_of_day: i64,
    /// A name shown to people, at most 64 characters.
    pub label: Option<String>,
}

/// Days in a week, the number of rules the API's `weekdays` must hold.
const WEEKDAYS: usize = 7;

impl Policy {
    /// Take the weekday minutes and downtime windows from the API's shape: one rule per
    /// weekday, exactly 7, each weekday once. Replaces `daily_minutes` and `downtime`
    /// only if every rule is valid; otherwise the policy is unchanged and the error names
    /// the API's field path (`weekdays[2].daily_minutes`,
    /// `weekdays[0].downtime_windows[1].end_minute_of_day`). A service puts the
    /// request's own prefix in front with [`InputError::within`] (`policy.weekdays[2]…`).
    pub fn set_weekday_rules(&mut self, rules: &[WeekdayRule]) -> Result<(), InputError> {
        if rules.len() != WEEKDAYS {
            return Err(InputError::WrongCount {
                field: "weekdays".into(),
                len: rules.len(),
                expected: WEEKDAYS,
            });
        }
        let mut seen = BTreeSet::new();
        let mut minutes = Vec::with_capacity(WEEKDAYS);
        let mut downtime = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let field = format!("weekdays[{i}]");
            let weekday = Weekday::from_iso_number(rule.weekday).map_err(|e| e.within(&field))?;
            if !seen.insert(weekday) {
                return Err(InputError::DuplicateWeekday {
                    field: format!("{field}.weekday"),
                    weekday,
                });
            }
            check_range(
                &format!("{field}.daily_minutes"),
                rule.daily_minutes,
                0,
                MAX_DAILY_MINUTES,
            )?;
            if rule.downtime_windows.len() > MAX_WINDOWS_PER_WEEKDAY {
                return Err(InputError::TooMany {
                    field: format!("{field}.downtime_windows"),
                    len: rule.downtime_windows.len(),
                    max: MAX_WINDOWS_PER_WEEKDAY,
                });
            }
            for (j, window) in rule.downtime_windows.iter().enumerate() {
                let window = window
                    .to_downtime(weekday)
                    .map_err(|e| e.within(&format!("{field}.downtime_windows[{j}]")))?;
                downtime.push(window);
            }
            minutes.push((weekday, rule.daily_minutes));
        }
        minutes.sort_unstable();
        let mut daily = DailyMinutes::every_day(minutes[0].1);
        for &(weekday, m) in &minutes[1..] {
            if m != daily.default {
                daily.set(weekday, m);
            }
        }
        downtime.sort_by_key(|w| w.days.as_ref().and_then(|d| d.first().copied()));
        self.daily_minutes = daily;
        self.downtime = downtime;
        Ok(())
    }

    /// The weekday minutes and downtime windows in the API's shape: one rule per weekday,
    /// Monday first, each with the windows that start on it.
    pub fn weekday_rules(&self) -> Vec<WeekdayRule> {
        Weekday::ALL
            .into_iter()
            .map(|day| WeekdayRule {
                weekday: day.iso_number(),
                daily_minutes: self.daily_minutes.for_weekday(day),
                downtime_windows: self
                    .downtime
                    .iter()
                    .filter(|w| w.starts_on(day))
                    .map(|w| WeekdayWindow {
                        start_minute_of_day: w.start.minute_of_day(),
                        end_minute_of_day: w.end.minute_of_day(),
                        label: w.label.clone(),
                    })
                    .collect(),
            })
            .collect()
    }
}

impl WeekdayWindow {
    /// The window as the policy keeps it, starting on `weekday`; errors name the
    /// API's fields.
    fn to_downtime(&self, weekday: Weekday) -> Result<DowntimeWindow, InputError> {
        let clock = |field: &str, minute: i64| {
            check_range(field, minute, 0, MINUTES_PER_DAY - 1)?;
            ClockTime::new(minute / 60, minute % 60)
        };
        let start = clock("start_minute_of_day", self.start_minute_of_day)?;
        let end = clock("end_minute_of_day", self.end_minute_of_day)?;
        if start == end {
            return Err(InputError::EmptyWindow {
                field: "end_minute_of_day".into(),
                at: start.to_string(),
            });
        }
        if let Some(label) = &self.label {
            check_chars("label", label, MAX_LABEL_CHARS)?;
        }
        Ok(DowntimeWindow {
            days: Some(vec![weekday]),
            start,
            end,
            label: self.label.clone(),
        })
    }
}

/// Minutes in a day on the clock face (a DST day has more or fewer real ones).
const MINUTES_PER_DAY: i64 = 24 * 60;

/// Screen minutes per weekday: a default for every day and optional overrides.
///
/// In TOML either a plain number (`daily_minutes = 90`, every day the same) or a table
/// (`[daily_minutes] default = 120, sat = 180`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "DailyMinutesForm")]
pub struct DailyMinutes {
    /// Minutes for any weekday without its own entry.
    pub default: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mon: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tue: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thu: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fri: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sun: Option<i64>,
}

impl Default for DailyMinutes {
    fn default() -> DailyMinutes {
        DailyMinutes::every_day(120)
    }
}

impl DailyMinutes {
    /// The same minutes every day.
    pub fn every_day(minutes: i64) -> DailyMinutes {
        DailyMinutes {
            default: minutes,
            mon: None,
            tue: None,
            wed: None,
            thu: None,
            fri: None,
            sat: None,
            sun: None,
        }
    }

    fn slot(&self, day: Weekday) -> &Option<i64> {
        match day {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }

    fn slot_mut(&mut self, day: Weekday) -> &mut Option<i64> {
        match day {
            Weekday::Mon => &mut self.mon,
            Weekday::Tue => &mut self.tue,
            Weekday::Wed => &mut self.wed,
            Weekday::Thu => &mut self.thu,
            Weekday::Fri => &mut self.fri,
            Weekday::Sat => &mut self.sat,
            Weekday::Sun => &mut self.sun,
        }
    }

    /// Minutes on `day`.
    pub fn for_weekday(&self, day: Weekday) -> i64 {
        self.slot(day).unwrap_or(self.default)
    }

    /// Set the minutes of one weekday.
    pub fn set(&mut self, day: Weekday, minutes: i64) {
        *self.slot_mut(day) = Some(minutes);
    }

    fn validate(&self) -> Result<(), InputError> {
        check_range("daily_minutes.default", self.default, 0, MAX_DAILY_MINUTES)?;
        for day in Weekday::ALL {
            if let Some(minutes) = *self.slot(day) {
                check_range(
                    &format!("daily_minutes.{day}"),
                    minutes,
                    0,
                    MAX_DAILY_MINUTES,
                )?;
            }
        }
        Ok(())
    }
}

/// The two shapes `daily_minutes` may take in a file.
#[derive(Deserialize)]
#[serde(untagged)]
enum DailyMinutesForm {
    EveryDay(i64),
    PerDay(DailyMinutesTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DailyMinutesTable {
    #[serde(default = "default_daily_minutes")]
    default: i64,
    mon: Option<i64>,
    tue: Option<i64>,
    wed: Option<i64>,
    thu: Option<i64>,
    fri: Option<i64>,
    sat: Option<i64>,
    sun: Option<i64>,
}

fn default_daily_minutes() -> i64 {
    DailyMinutes::default().default
}

impl From<DailyMinutesForm> for DailyMinutes {
    fn from(form: DailyMinutesForm) -> DailyMinutes {
        match form {
            DailyMinutesForm::EveryDay(minutes) => DailyMinutes::every_day(minutes),
            DailyMinutesForm::PerDay(t) => DailyMinutes {
                default: t.default,
                mon: t.mon,
                tue: t.tue,
                wed: t.wed,
                thu: t.thu,
                fri: t.fri,
                sat: t.sat,
                sun: t.sun,
            },
        }
    }
}

/// A recurring time of day when devices are off limits (bedtime, homework, dinner).
///
/// `end` earlier than `start` means the window crosses midnight and ends the next day.
/// The window belongs to the weekdays it *starts* on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DowntimeWindow {
    /// Weekdays the window starts on; absent means every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<Weekday>>,
    /// Local clock time the window starts.
    pub start: ClockTime,
    /// Local clock time the window ends (the next day if not after `start`).
    pub end: ClockTime,
    /// A name shown to people ("bedtime", "homework"), at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl DowntimeWindow {
    /// A window on every day.
    pub fn every_day(start: ClockTime, end: ClockTime) -> DowntimeWindow {
        DowntimeWindow {
            days: None,
            start,
            end,
            label: None,
        }
    }

    /// Whether the window ends on the day after it starts.
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// Whether the window starts on `day`.
    pub fn starts_on(&self, day: Weekday) -> bool {
        self.days.as_ref().is_none_or(|days| days.contains(&day))
    }

    fn validate(&self) -> Result<(), InputError> {
        if self.start == self.end {
            return Err(InputError::EmptyWindow {
                field: "end".into(),
                at: self.start.to_string(),
            });
        }
        if self.days.as_ref().is_some_and(Vec::is_empty) {
            return Err(InputError::EmptyList {
                field: "days".into(),
                allowed: "mon, tue, wed, thu, fri, sat, sun".into(),
            });
        }
        if let Some(label) = &self.label {
            check_chars("label", label, MAX_LABEL_CHARS)?;
        }
        Ok(())
    }
}

/// Self-serve extension credits per day, as the CST child app offers them on its lock
/// screen: a count of 5-minute and of 10-minute extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Credits {
    /// 5-minute extensions per day.
    #[serde(alias = "five_minute")]
    pub five_minute_count: i64,
    /// 10-minute extensions per day.
    #[serde(alias = "ten_minute")]
    pub ten_minute_count: i64,
}

impl Default for Credits {
    fn default() -> Credits {
        Credits {
            five_minute_count: 2,
            ten_minute_count: 1,
        }
    }
}

impl Credits {
    fn validate(&self) -> Result<(), InputError> {
        check_range(
            "extension_credits_per_day.five_minute_count",
            self.five_minute_count,
            0,
            MAX_CREDITS_PER_DAY,
        )?;
        check_range(
            "extension_credits_per_day.ten_minute_count",
            self.ten_minute_count,
            0,
            MAX_CREDITS_PER_DAY,
        )
    }
}

/// A one-off change for a single date ("today only").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayException {
    /// The local date it applies to.
    pub date: Date,
    /// Another allowance for that date, replacing the weekday's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_minutes: Option<i64>,
    /// No downtime window starts on that date (e.g. no bedtime on New Year's Eve).
    #[serde(default, alias = "no_downtime", alias = "no_bedtime")]
    pub skip_downtime: bool,
    /// Why the exception exists, for guardians; at most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl DayException {
    fn validate(&self) -> Result<(), InputError> {
        if let Some(minutes) = self.daily_minutes {
            check_range("daily_minutes", minutes, 0, MAX_DAILY_MINUTES)?;
        }
        if let Some(note) = &self.note {
            check_chars("note", note, MAX_NOTE_CHARS)?;
        }
        Ok(())
    }
}

/// `Ok` if `text` has at most `max` characters, else the typed error naming `field`.
fn check_chars(field: &str, text: &str, max: usize) -> Result<(), InputError> {
    let len = text.chars().count();
    if len <= max {
        Ok(())
    } else {
        Err(InputError::TooLong {
            field: field.into(),
            len,
            max,
        })
    }
}

/// `Ok` if `min <= value <= max`, else the typed error naming `field`.
pub(crate) fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), InputError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(InputError::out_of_range(field, value, min, max))
    }
}

#[cfg(test)]
mod tests;
