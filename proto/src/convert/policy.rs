//! A child's policy, between the API's shape (one rule per weekday) and core's.
//!
//! Core already takes and gives the weekday shape (`Policy::set_weekday_rules`,
//! `Policy::weekday_rules`) and names its errors by the API's paths, so this module
//! only moves numbers and texts across and adds the parts core does not keep: who wrote
//! the revision and when, which the hub knows from the `PolicyChanged` event it logged.

use household_core::{Credits, DayException, Policy, WeekdayRule, WeekdayWindow};

use super::{ConvertError, date_to_core, date_to_proto, non_empty, saturating_u32};
use crate::v1;

/// The core policy for an API policy, validated.
///
/// Errors name fields by their path in the policy (`weekdays`, `weekdays[2].weekday`,
/// `weekdays[2].daily_minutes`, `weekdays[0].downtime_windows[1].end_minute_of_day`,
/// `time_zone`, `grace_minutes`, `extension_credits_per_day.five_minute_count`,
/// `exceptions[3].date.day`); a caller adds its own prefix with
/// [`ConvertError::within`]. The weekdays are checked first (count, each weekday once,
/// minutes, windows), then the policy as a whole with `Policy::validate`.
///
/// `revision` is taken over; `updated_unix_micros` and `updated_by` are not, core keeps
/// neither. Absent `extension_credits_per_day` means no credits (proto3's default, and
/// the cautious reading); an empty label or note means none.
pub fn policy_to_core(policy: &v1::Policy) -> Result<Policy, ConvertError> {
    let rules: Vec<WeekdayRule> = policy
        .weekdays
        .iter()
        .map(|rule| WeekdayRule {
            weekday: i64::from(rule.weekday),
            daily_minutes: i64::from(rule.daily_minutes),
            downtime_windows: rule
                .downtime_windows
                .iter()
                .map(|window| WeekdayWindow {
                    start_minute_of_day: i64::from(window.start_minute_of_day),
                    end_minute_of_day: i64::from(window.end_minute_of_day),
                    label: non_empty(&window.label),
                })
                .collect(),
        })
        .collect();
    let credits = policy.extension_credits_per_day.unwrap_or_default();
    let exceptions = policy
        .exceptions
        .iter()
        .enumerate()
        .map(|(i, exception)| {
            let field = format!("exceptions[{i}].date");
            let date = exception
                .date
                .as_ref()
                .ok_or_else(|| ConvertError::missing(field.as_str()))?;
            Ok(DayException {
                date: date_to_core(date, &field)?,
                daily_minutes: exception.daily_minutes.map(i64::from),
                skip_downtime: exception.skip_downtime,
                note: non_empty(&exception.note),
            })
        })
        .collect::<Result<Vec<_>, ConvertError>>()?;
    let mut core = Policy {
        revision: policy.revision,
        time_zone: policy.time_zone.clone(),
        extension_credits_per_day: Credits {
            five_minute_count: i64::from(credits.five_minute_count),
            ten_minute_count: i64::from(credits.ten_minute_count),
        },
        grace_minutes: i64::from(policy.grace_minutes),
        exceptions,
        ..Policy::default()
    };
    core.set_weekday_rules(&rules)?;
    core.validate()?;
    Ok(core)
}

/// The API policy for a core policy at `revision`, written at `updated_unix_micros` by
/// `updated_by` (which the hub takes from the `PolicyChanged` event; 0 and `None` for a
/// policy no one has written yet, such as the hub's default).
///
/// Weekdays come Monday first, each with the windows that start on it in the order the
/// policy holds them, so a policy read, edited and written back keeps its order.
pub fn policy_from_core(
    policy: &Policy,
    revision: u64,
    updated_unix_micros: i64,
    updated_by: Option<v1::Actor>,
) -> v1::Policy {
    v1::Policy {
        revision,
        time_zone: policy.time_zone.clone(),
        weekdays: policy
            .weekday_rules()
            .into_iter()
            .map(|rule| v1::WeekdayRule {
                weekday: i32::try_from(rule.weekday).unwrap_or_default(),
                daily_minutes: saturating_u32(rule.daily_minutes),
                downtime_windows: rule
                    .downtime_windows
                    .into_iter()
                    .map(|window| v1::DowntimeWindow {
                        start_minute_of_day: saturating_u32(window.start_minute_of_day),
                        end_minute_of_day: saturating_u32(window.end_minute_of_day),
                        label: window.label.unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect(),
        extension_credits_per_day: Some(v1::ExtensionCredits {
            five_minute_count: saturating_u32(policy.extension_credits_per_day.five_minute_count),
            ten_minute_count: saturating_u32(policy.extension_credits_per_day.ten_minute_count),
        }),
        grace_minutes: saturating_u32(policy.grace_minutes),
        exceptions: policy
            .exceptions
            .iter()
            .map(|exception| v1::DateException {
                date: Some(date_to_proto(exception.date)),
                daily_minutes: exception.daily_minutes.map(saturating_u32),
                skip_downtime: exception.skip_downtime,
                note: exception.note.clone().unwrap_or_default(),
            })
            .collect(),
        updated_unix_micros,
        updated_by,
    }
}
