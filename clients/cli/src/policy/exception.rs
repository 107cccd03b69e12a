//! `household policy except CHILD DATE …`: one date's exception to the weekday rules
//! (a sick day, a sleepover, New Year's Eve), and `--remove` to drop it.
//!
//! An exception holds what `household.v1.DateException` holds: the day's minutes
//! instead of the weekday's, whether the downtime windows starting that day are off,
//! and a note. Like `policy set`, `except` changes only what its flags name (on the
//! date's exception, made if there is none) and writes the policy back with the
//! revision it read.

use clap::Args;
use household_proto::convert::date_to_proto;
use household_proto::v1;
use jiff::civil::Date;

use crate::hub::CliError;

/// A day's allowance with no limit: the whole day.
pub const WHOLE_DAY_MINUTES: u32 = 1440;
/// Longest note the hub keeps, in characters.
const MAX_NOTE_CHARS: usize = 200;

/// What `policy except` changes on the date's exception; what is not given stays.
#[derive(Args, Debug, Default)]
pub struct ExceptionChanges {
    /// Minutes of screen time that day, 0 to 1440, instead of the weekday's.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=1440))]
    pub minutes: Option<u32>,
    /// No daily limit that day: the allowance is the whole day (1440 minutes).
    #[arg(long, conflicts_with = "minutes")]
    pub no_limit: bool,
    /// No downtime window (bedtime) starting that day applies.
    #[arg(long, visible_alias = "no-bedtime")]
    pub no_downtime: bool,
    /// Why, for the other guardians (at most 200 characters).
    #[arg(long)]
    pub note: Option<String>,
    /// Drop the date's exception: the weekday's rules apply again.
    #[arg(long, conflicts_with_all = ["minutes", "no_limit", "no_downtime", "note"])]
    pub remove: bool,
}

/// `DATE`: `2026-12-24`, `today` or `tomorrow`, where `today` is the child's today.
pub fn parse_date(text: &str, today: Date) -> Result<Date, CliError> {
    match text.to_lowercase().as_str() {
        "today" => return Ok(today),
        "tomorrow" => {
            return today
                .tomorrow()
                .map_err(|e| CliError::BadArgument(e.to_string()));
        }
        _ => {}
    }
    text.parse::<Date>().map_err(|_| {
        CliError::BadArgument(format!(
            "DATE must be a date like 2026-12-24, or today or tomorrow; got {text:?}"
        ))
    })
}

/// What changed, to tell the guardian.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The date's exception is now this.
    Set(v1::DateException),
    /// The date's exception is gone.
    Removed,
}

/// Changes `policy`'s exception for `date` as the flags say. `today` is the child's
/// today: a new exception for a day already past is refused, removing one is not.
pub fn apply(
    policy: &mut v1::Policy,
    date: Date,
    today: Date,
    changes: &ExceptionChanges,
) -> Result<Outcome, CliError> {
    let wanted = date_to_proto(date);
    let existing = policy
        .exceptions
        .iter()
        .position(|e| e.date.as_ref() == Some(&wanted));
    if changes.remove {
        let Some(i) = existing else {
            return Err(CliError::Refused(format!(
                "there is no exception on {date} to remove{}",
                listed(policy)
            )));
        };
        policy.exceptions.remove(i);
        return Ok(Outcome::Removed);
    }
    let changes_the_day = changes.minutes.is_some() || changes.no_limit || changes.no_downtime;
    if !changes_the_day && (changes.note.is_none() || existing.is_none()) {
        return Err(CliError::BadArgument(
            "say how the day differs: --minutes N (0 to 1440), --no-limit or --no-downtime \
             (and --note TEXT); or --remove to drop the date's exception"
                .into(),
        ));
    }
    if date < today {
        return Err(CliError::BadArgument(format!(
            "DATE {date} is already past in the child's time zone (today is {today} there)"
        )));
    }
    if let Some(note) = &changes.note
        && note.chars().count() > MAX_NOTE_CHARS
    {
        return Err(CliError::BadArgument(format!(
            "--note may have at most {MAX_NOTE_CHARS} characters; it has {}",
            note.chars().count()
        )));
    }
    let i = existing.unwrap_or_else(|| {
        policy.exceptions.push(v1::DateException {
            date: Some(wanted),
            ..Default::default()
        });
        policy.exceptions.len() - 1
    });
    let exception = &mut policy.exceptions[i];
    if let Some(minutes) = changes.minutes {
        exception.daily_minutes = Some(minutes);
    }
    if changes.no_limit {
        exception.daily_minutes = Some(WHOLE_DAY_MINUTES);
    }
    if changes.no_downtime {
        exception.skip_downtime = true;
    }
    if let Some(note) = &changes.note {
        exception.note = note.clone();
    }
    let set = exception.clone();
    policy.exceptions.sort_by_key(|e| date_key(e.date.as_ref()));
    Ok(Outcome::Set(set))
}

/// `2026-12-24 (Thu): 4 h 00 min, no downtime; Christmas Eve`.
pub fn describe(exception: &v1::DateException) -> String {
    let date = date_text(exception.date.as_ref());
    let mut parts = Vec::new();
    match exception.daily_minutes {
        Some(WHOLE_DAY_MINUTES) => parts.push("no limit".to_owned()),
        Some(minutes) => parts.push(format!("{minutes} min")),
        None => {}
    }
    if exception.skip_downtime {
        parts.push("no downtime".into());
    }
    let mut text = format!("{date}: {}", parts.join(", "));
    if !exception.note.is_empty() {
        text.push_str(&format!("; {}", exception.note));
    }
    text
}

/// An exception in `policy show --json`.
pub fn to_json(exception: &v1::DateException) -> serde_json::Value {
    serde_json::json!({
        "date": exception.date.as_ref().map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)),
        "daily_minutes": exception.daily_minutes,
        "skip_downtime": exception.skip_downtime,
        "note": exception.note,
    })
}

/// `2026-12-24 (Thu)`.
fn date_text(date: Option<&v1::Date>) -> String {
    let Some(date) = date else {
        return "?".into();
    };
    let iso = format!("{:04}-{:02}-{:02}", date.year, date.month, date.day);
    match iso.parse::<Date>() {
        Ok(parsed) => format!("{iso} ({})", parsed.strftime("%a")),
        Err(_) => iso,
    }
}

fn date_key(date: Option<&v1::Date>) -> (i32, i32, i32) {
    date.map_or((0, 0, 0), |d| (d.year, d.month, d.day))
}

/// `; the exceptions are on 2026-12-24, 2026-12-31` (or that there are none).
fn listed(policy: &v1::Policy) -> String {
    if policy.exceptions.is_empty() {
        return ": the child has no exceptions".into();
    }
    let dates: Vec<String> = policy
        .exceptions
        .iter()
        .filter_map(|e| e.date.as_ref())
        .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
        .collect();
    format!("; the exceptions are on {}", dates.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    const TODAY: &str = "2026-12-02";

    #[test]
    fn dates_are_iso_or_today_or_tomorrow_in_the_childs_zone() {
        let today = date(TODAY);
        assert_eq!(parse_date("2026-12-24", today).unwrap(), date("2026-12-24"));
        assert_eq!(parse_date("today", today).unwrap(), today);
        assert_eq!(parse_date("Tomorrow", today).unwrap(), date("2026-12-03"));
        let err = parse_date("24.12.2026", today).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("like 2026-12-24"), "{err}");
    }

    #[test]
    fn the_flags_change_only_what_they_name_and_dates_stay_in_order() {
        let mut policy = v1::Policy::default();
        let today = date(TODAY);
        let christmas = date("2026-12-24");
        let set = apply(
            &mut policy,
            christmas,
            today,
            &ExceptionChanges {
                minutes: Some(240),
                note: Some("Christmas Eve".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let Outcome::Set(exception) = set else {
            panic!("{set:?}")
        };
        assert_eq!(exception.daily_minutes, Some(240));
        assert!(!exception.skip_downtime);
        assert_eq!(
            describe(&exception),
            "2026-12-24 (Thu): 240 min; Christmas Eve"
        );

        // The same date again: the minutes and the note stay, the downtime goes off.
        apply(
            &mut policy,
            christmas,
            today,
            &ExceptionChanges {
                no_downtime: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(policy.exceptions.len(), 1);
        let exception = &policy.exceptions[0];
        assert_eq!(exception.daily_minutes, Some(240));
        assert!(exception.skip_downtime);
        assert_eq!(exception.note, "Christmas Eve");

        // An earlier date goes first; --no-limit is the whole day.
        apply(
            &mut policy,
            date("2026-12-05"),
            today,
            &ExceptionChanges {
                no_limit: true,
                ..Default::default()
            },
        )
        .unwrap();
        let dates: Vec<i32> = policy
            .exceptions
            .iter()
            .map(|e| e.date.as_ref().unwrap().day)
            .collect();
        assert_eq!(dates, [5, 24]);
        assert_eq!(policy.exceptions[0].daily_minutes, Some(1440));
        assert_eq!(
            describe(&policy.exceptions[0]),
            "2026-12-05 (Sat): no limit"
        );

        // Removing one leaves the other.
        assert_eq!(
            apply(
                &mut policy,
                christmas,
                today,
                &ExceptionChanges {
                    remove: true,
                    ..Default::default()
                },
            )
            .unwrap(),
            Outcome::Removed
        );
        assert_eq!(policy.exceptions.len(), 1);
        assert_eq!(policy.exceptions[0].date.as_ref().unwrap().day, 5);
    }

    #[test]
    fn what_cannot_be_done_is_said() {
        let today = date(TODAY);
        let mut policy = v1::Policy::default();
        let err = |policy: &mut v1::Policy, day: &str, changes: ExceptionChanges| {
            let err = apply(policy, date(day), today, &changes).unwrap_err();
            (err.exit_code(), err.to_string())
        };

        let (code, text) = err(&mut policy, "2026-12-24", ExceptionChanges::default());
        assert_eq!(code, 2);
        assert!(
            text.contains("--minutes N (0 to 1440), --no-limit or --no-downtime"),
            "{text}"
        );
        // A note alone does not make an exception.
        let (code, _) = err(
            &mut policy,
            "2026-12-24",
            ExceptionChanges {
                note: Some("why".into()),
                ..Default::default()
            },
        );
        assert_eq!(code, 2);

        let (code, text) = err(
            &mut policy,
            "2026-12-01",
            ExceptionChanges {
                minutes: Some(60),
                ..Default::default()
            },
        );
        assert_eq!(code, 2);
        assert!(text.contains("already past"), "{text}");

        let (code, text) = err(
            &mut policy,
            "2026-12-24",
            ExceptionChanges {
                minutes: Some(60),
                note: Some("x".repeat(201)),
                ..Default::default()
            },
        );
        assert_eq!(code, 2);
        assert!(text.contains("--note may have at most 200"), "{text}");

        let (code, text) = err(
            &mut policy,
            "2026-12-24",
            ExceptionChanges {
                remove: true,
                ..Default::default()
            },
        );
        assert_eq!(code, 1);
        assert!(text.contains("no exception on 2026-12-24"), "{text}");
        assert!(text.contains("has no exceptions"), "{text}");
        assert!(policy.exceptions.is_empty(), "nothing changed on the way");
    }
}
