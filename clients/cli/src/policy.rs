//! `household policy show CHILD`, `household policy set CHILD …` and `household policy
//! except CHILD DATE …`: a child's rules.
//!
//! `set` and `except` read the policy, change what their flags name and write it back
//! with the revision they read, so a change another guardian made in between is never
//! overwritten: the hub refuses, and the command says who changed it and when.

pub mod exception;

use clap::Args;
use household_proto::v1;
use serde_json::json;
use tonic_types::StatusExt as _;

use crate::hub::{CliError, Hub};

/// The label of the window `--bedtime` sets.
const BEDTIME: &str = "bedtime";
const DAYS: [(&str, v1::Weekday); 7] = [
    ("mon", v1::Weekday::Monday),
    ("tue", v1::Weekday::Tuesday),
    ("wed", v1::Weekday::Wednesday),
    ("thu", v1::Weekday::Thursday),
    ("fri", v1::Weekday::Friday),
    ("sat", v1::Weekday::Saturday),
    ("sun", v1::Weekday::Sunday),
];

/// What `policy set` may change; what is not given stays.
#[derive(Args, Debug, Default)]
pub struct Changes {
    /// Minutes per weekday: mon=90,tue=90,… (or all=90, then days to differ).
    #[arg(long)]
    pub daily: Option<String>,
    /// Bedtime on every day, HH:MM-HH:MM (21:00-07:00 crosses midnight), or "none".
    #[arg(long)]
    pub bedtime: Option<String>,
    /// Extension credits per day: 5m=2,10m=1.
    #[arg(long)]
    pub credits: Option<String>,
    /// Grace after the time is up: 2m (0m for none).
    #[arg(long)]
    pub grace: Option<String>,
    /// The child's time zone (IANA name, e.g. Europe/Berlin).
    #[arg(long)]
    pub time_zone: Option<String>,
}

pub async fn show(hub: &mut Hub, child: &str, as_json: bool) -> Result<(), CliError> {
    let child = hub.child(child).await?;
    let policy = get(hub, &child.child_id).await?;
    if as_json {
        println!("{}", to_json(&policy));
        return Ok(());
    }
    println!(
        "{} (revision {}, time zone {})",
        child.display_name, policy.revision, policy.time_zone
    );
    for rule in &policy.weekdays {
        let windows: Vec<String> = rule.downtime_windows.iter().map(window_text).collect();
        println!(
            "  {}: {} min{}",
            day_name(rule.weekday),
            rule.daily_minutes,
            if windows.is_empty() {
                String::new()
            } else {
                format!(", {}", windows.join(", "))
            }
        );
    }
    let credits = policy.extension_credits_per_day.unwrap_or_default();
    println!(
        "  credits per day: 5 min ×{}, 10 min ×{}; grace {} min",
        credits.five_minute_count, credits.ten_minute_count, policy.grace_minutes
    );
    if !policy.exceptions.is_empty() {
        println!("  exceptions:");
        for exception in &policy.exceptions {
            println!("    {}", exception::describe(exception));
        }
    }
    Ok(())
}

pub async fn set(hub: &mut Hub, child: &str, changes: &Changes) -> Result<(), CliError> {
    let child = hub.child(child).await?;
    let revision = change(hub, &child, changes).await?;
    println!("{}'s policy is now revision {revision}", child.display_name);
    Ok(())
}

/// Reads `child`'s policy, applies `changes` and writes it back: the new revision.
pub async fn change(hub: &mut Hub, child: &v1::Child, changes: &Changes) -> Result<u64, CliError> {
    let mut policy = get(hub, &child.child_id).await?;
    let revision = policy.revision;
    apply(&mut policy, changes).map_err(CliError::BadArgument)?;
    write(hub, child, policy, revision).await
}

pub async fn except(
    hub: &mut Hub,
    child: &str,
    date: &str,
    changes: &exception::ExceptionChanges,
) -> Result<(), CliError> {
    let child = hub.child(child).await?;
    let mut policy = get(hub, &child.child_id).await?;
    let revision = policy.revision;
    let zone = jiff::tz::TimeZone::get(&policy.time_zone).map_err(|e| {
        CliError::Refused(format!("the child's time zone {:?}: {e}", policy.time_zone))
    })?;
    let today = jiff::Timestamp::now().to_zoned(zone).date();
    let date = exception::parse_date(date, today)?;
    let outcome = exception::apply(&mut policy, date, today, changes)?;
    let revision = write(hub, &child, policy, revision).await?;
    match outcome {
        exception::Outcome::Set(set) => println!(
            "{} on {} (policy revision {revision})",
            child.display_name,
            exception::describe(&set)
        ),
        exception::Outcome::Removed => println!(
            "{} has no exception on {date} any more: the weekday's rules apply (policy revision {revision})",
            child.display_name
        ),
    }
    Ok(())
}

/// Writes `policy` back as the change of the `revision` it was read at; the new
/// revision, or who changed it in between.
async fn write(
    hub: &mut Hub,
    child: &v1::Child,
    policy: v1::Policy,
    revision: u64,
) -> Result<u64, CliError> {
    let result = hub
        .client
        .set_policy(v1::SetPolicyRequest {
            child_id: child.child_id.clone(),
            policy: Some(policy),
            expected_revision: Some(revision),
            force: false,
        })
        .await;
    match result {
        Ok(response) => Ok(response.into_inner().policy.map_or(0, |p| p.revision)),
        Err(status) if status.code() == tonic::Code::Aborted => {
            Err(stale(&status, &child.display_name))
        }
        Err(status) => Err(hub.refused(status)),
    }
}

async fn get(hub: &mut Hub, child_id: &str) -> Result<v1::Policy, CliError> {
    hub.client
        .get_policy(v1::GetPolicyRequest {
            child_id: child_id.to_owned(),
        })
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner()
        .policy
        .ok_or_else(|| CliError::Refused("the hub sent no policy".into()))
}

/// "Dad changed Mia's policy at 18:02; run `household policy show Mia` and try again".
fn stale(status: &tonic::Status, child: &str) -> CliError {
    let details = status.get_error_details();
    let metadata = details
        .error_info()
        .map(|i| i.metadata.clone())
        .unwrap_or_default();
    let who = metadata
        .get("updated_by_name")
        .filter(|n| !n.is_empty())
        .cloned()
        .unwrap_or_else(|| "another guardian".into());
    let when = metadata
        .get("updated_unix_micros")
        .and_then(|m| m.parse::<i64>().ok())
        .and_then(|m| jiff::Timestamp::from_microsecond(m).ok())
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime(" at %H:%M")
                .to_string()
        })
        .unwrap_or_default();
    CliError::Refused(format!(
        "{who} changed {child}'s policy{when}; run `household policy show {child}` and try again"
    ))
}

/// Applies the flags to `policy`; a bad value is named with what it may be.
pub fn apply(policy: &mut v1::Policy, changes: &Changes) -> Result<(), String> {
    if let Some(daily) = &changes.daily {
        for (day, minutes) in parse_daily(daily)? {
            rule(policy, day).daily_minutes = minutes;
        }
    }
    if let Some(bedtime) = &changes.bedtime {
        let window = parse_bedtime(bedtime)?;
        for (_, day) in DAYS {
            let rule = rule(policy, day);
            rule.downtime_windows.retain(|w| w.label != BEDTIME);
            rule.downtime_windows.extend(window.clone());
        }
    }
    if let Some(credits) = &changes.credits {
        let mut counts = policy.extension_credits_per_day.unwrap_or_default();
        for part in credits.split(',').map(str::trim) {
            let (size, count) = part
                .split_once('=')
                .ok_or_else(|| format!("--credits takes 5m=N,10m=N; got {part:?}"))?;
            let count: u32 = count
                .parse()
                .map_err(|_| format!("--credits: {count:?} is not a count"))?;
            match size {
                "5m" => counts.five_minute_count = count,
                "10m" => counts.ten_minute_count = count,
                _ => return Err(format!("--credits: sizes are 5m and 10m; got {size:?}")),
            }
        }
        policy.extension_credits_per_day = Some(counts);
    }
    if let Some(grace) = &changes.grace {
        policy.grace_minutes = grace
            .strip_suffix('m')
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| format!("--grace takes minutes like 2m; got {grace:?}"))?;
    }
    if let Some(zone) = &changes.time_zone {
        policy.time_zone = zone.clone();
    }
    Ok(())
}

fn rule(policy: &mut v1::Policy, day: v1::Weekday) -> &mut v1::WeekdayRule {
    if let Some(i) = policy.weekdays.iter().position(|r| r.weekday == day as i32) {
        return &mut policy.weekdays[i];
    }
    policy.weekdays.push(v1::WeekdayRule {
        weekday: day as i32,
        ..Default::default()
    });
    let last = policy.weekdays.len() - 1;
    &mut policy.weekdays[last]
}

/// `mon=90,tue=60` or `all=90,sat=120`.
fn parse_daily(text: &str) -> Result<Vec<(v1::Weekday, u32)>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (day, minutes) = part
            .split_once('=')
            .ok_or_else(|| format!("--daily takes DAY=MINUTES,…; got {part:?}"))?;
        let minutes: u32 = minutes
            .parse()
            .map_err(|_| format!("--daily: {minutes:?} is not a number of minutes"))?;
        let day = day.to_lowercase();
        if day == "all" {
            out.extend(DAYS.iter().map(|(_, d)| (*d, minutes)));
            continue;
        }
        let (_, weekday) = DAYS.iter().find(|(name, _)| *name == day).ok_or_else(|| {
            format!("--daily: days are mon tue wed thu fri sat sun all; got {day:?}")
        })?;
        out.push((*weekday, minutes));
    }
    Ok(out)
}

/// `21:00-07:00` as a window, or `none` for no bedtime.
fn parse_bedtime(text: &str) -> Result<Option<v1::DowntimeWindow>, String> {
    if text == "none" {
        return Ok(None);
    }
    let bad = || format!("--bedtime takes HH:MM-HH:MM (or none); got {text:?}");
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let minute = |t: &str| -> Result<u32, String> {
        let time: jiff::civil::Time = t.trim().parse().map_err(|_| bad())?;
        Ok(u32::from(time.hour().unsigned_abs()) * 60 + u32::from(time.minute().unsigned_abs()))
    };
    Ok(Some(v1::DowntimeWindow {
        start_minute_of_day: minute(start)?,
        end_minute_of_day: minute(end)?,
        label: BEDTIME.into(),
    }))
}

fn day_name(weekday: i32) -> &'static str {
    DAYS.iter()
        .find(|(_, d)| *d as i32 == weekday)
        .map_or("?", |(name, _)| name)
}

fn window_text(window: &v1::DowntimeWindow) -> String {
    format!(
        "{} {:02}:{:02}-{:02}:{:02}",
        window.label,
        window.start_minute_of_day / 60,
        window.start_minute_of_day % 60,
        window.end_minute_of_day / 60,
        window.end_minute_of_day % 60
    )
}

fn to_json(policy: &v1::Policy) -> serde_json::Value {
    let credits = policy.extension_credits_per_day.unwrap_or_default();
    json!({
        "revision": policy.revision,
        "time_zone": policy.time_zone,
        "daily_minutes": policy.weekdays.iter().map(|r| (day_name(r.weekday).to_owned(), json!(r.daily_minutes))).collect::<serde_json::Map<_, _>>(),
        "downtime": policy.weekdays.iter().map(|r| (day_name(r.weekday).to_owned(), json!(r.downtime_windows.iter().map(window_text).collect::<Vec<_>>()))).collect::<serde_json::Map<_, _>>(),
        "credits": {"five_minute": credits.five_minute_count, "ten_minute": credits.ten_minute_count},
        "grace_minutes": policy.grace_minutes,
        "exceptions": policy.exceptions.iter().map(exception::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_change_only_what_they_name() {
        let mut policy = v1::Policy {
            time_zone: "Europe/Berlin".into(),
            grace_minutes: 2,
            ..Default::default()
        };
        apply(
            &mut policy,
            &Changes {
                daily: Some("all=90,sat=120".into()),
                bedtime: Some("21:00-07:00".into()),
                credits: Some("10m=1".into()),
                ..Changes::default()
            },
        )
        .unwrap();
        let saturday = policy
            .weekdays
            .iter()
            .find(|r| r.weekday == v1::Weekday::Saturday as i32)
            .unwrap();
        assert_eq!(saturday.daily_minutes, 120);
        assert_eq!(policy.weekdays.len(), 7);
        assert!(
            policy
                .weekdays
                .iter()
                .all(|r| r.downtime_windows.len() == 1)
        );
        assert_eq!(saturday.downtime_windows[0].start_minute_of_day, 21 * 60);
        assert_eq!(saturday.downtime_windows[0].end_minute_of_day, 7 * 60);
        assert_eq!(
            policy.extension_credits_per_day.unwrap().ten_minute_count,
            1
        );
        assert_eq!(policy.grace_minutes, 2, "untouched");

        // A second bedtime replaces the first; none removes it.
        apply(
            &mut policy,
            &Changes {
                bedtime: Some("20:30-06:30".into()),
                ..Changes::default()
            },
        )
        .unwrap();
        assert!(
            policy
                .weekdays
                .iter()
                .all(|r| r.downtime_windows.len() == 1)
        );
        apply(
            &mut policy,
            &Changes {
                bedtime: Some("none".into()),
                ..Changes::default()
            },
        )
        .unwrap();
        assert!(
            policy
                .weekdays
                .iter()
                .all(|r| r.downtime_windows.is_empty())
        );
    }

    #[test]
    fn a_stale_revision_says_who_changed_it() {
        use tonic_types::{ErrorDetails, StatusExt as _};
        let details = ErrorDetails::with_error_info(
            "POLICY_REVISION_STALE",
            "household.v1",
            [
                ("current_revision".to_owned(), "8".to_owned()),
                ("updated_by_name".to_owned(), "Dad".to_owned()),
                (
                    "updated_unix_micros".to_owned(),
                    "1764695000000000".to_owned(),
                ),
            ],
        );
        let status = tonic::Status::with_error_details(tonic::Code::Aborted, "stale", details);
        let text = stale(&status, "Mia").to_string();
        assert!(text.starts_with("Dad changed Mia's policy at "), "{text}");
        assert!(
            text.ends_with("; run `household policy show Mia` and try again"),
            "{text}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let mut policy = v1::Policy::default();
        let err = |changes: Changes| apply(&mut v1::Policy::default(), &changes).unwrap_err();
        assert!(
            err(Changes {
                daily: Some("monday=90".into()),
                ..Changes::default()
            })
            .contains("mon tue")
        );
        assert!(
            err(Changes {
                bedtime: Some("late".into()),
                ..Changes::default()
            })
            .contains("HH:MM-HH:MM")
        );
        assert!(
            err(Changes {
                credits: Some("15m=1".into()),
                ..Changes::default()
            })
            .contains("5m and 10m")
        );
        assert!(
            err(Changes {
                grace: Some("2".into()),
                ..Changes::default()
            })
            .contains("2m")
        );
        assert!(apply(&mut policy, &Changes::default()).is_ok());
    }
}
