//! `household report CHILD [--days 7] [--json]`: use per day, split by device, as bars
//! in the terminal, and the totals.

use household_proto::v1;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::json;

use crate::hub::{CliError, Hub};
use crate::status::duration;

/// Width of the longest bar, in characters.
const BAR_WIDTH: i64 = 40;
/// What marks each device's share of a bar, in the order devices are listed.
const MARKS: [char; 6] = ['█', '▓', '▒', '░', '#', '='];

pub async fn run(hub: &mut Hub, child: &str, days: u32, as_json: bool) -> Result<(), CliError> {
    if !(1..=93).contains(&days) {
        return Err(CliError::BadArgument(format!(
            "--days must be 1 to 93; got {days}"
        )));
    }
    let child = hub.child(child).await?;
    let policy = hub
        .client
        .get_policy(v1::GetPolicyRequest {
            child_id: child.child_id.clone(),
        })
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner()
        .policy
        .unwrap_or_default();
    let zone = TimeZone::get(&policy.time_zone).unwrap_or(TimeZone::UTC);
    let today = jiff::Timestamp::now().to_zoned(zone).date();
    let first = today
        .checked_sub(jiff::Span::new().days(i64::from(days) - 1))
        .map_err(|e| CliError::Refused(e.to_string()))?;
    let report = hub
        .client
        .get_report(v1::GetReportRequest {
            child_id: child.child_id.clone(),
            start_date: Some(date(first)),
            end_date: Some(date(today)),
        })
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner();
    if as_json {
        println!("{}", to_json(&child.display_name, &report));
    } else {
        print!("{}", chart(&child.display_name, &report));
    }
    Ok(())
}

fn date(d: Date) -> v1::Date {
    v1::Date {
        year: i32::from(d.year()),
        month: i32::from(d.month()),
        day: i32::from(d.day()),
    }
}

fn date_text(d: Option<&v1::Date>) -> String {
    d.map_or_else(String::new, |d| {
        format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
    })
}

/// The report as bars: one line per day, each device's use in its own mark.
fn chart(name: &str, report: &v1::GetReportResponse) -> String {
    let devices: Vec<&v1::DeviceUsage> = report.device_totals.iter().collect();
    let longest = report
        .days
        .iter()
        .map(|d| d.used_seconds.max(d.allowance_seconds))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut text = format!("{name}, in {}:\n", report.time_zone);
    for day in &report.days {
        let mut bar = String::new();
        for usage in &day.devices {
            let mark = devices
                .iter()
                .position(|d| d.device_id == usage.device_id)
                .map_or('?', |i| MARKS[i % MARKS.len()]);
            let cells = usage.used_seconds * BAR_WIDTH / longest;
            bar.extend(std::iter::repeat_n(
                mark,
                usize::try_from(cells).unwrap_or(0),
            ));
        }
        text.push_str(&format!(
            "{}  {:<width$}  {} of {}\n",
            date_text(day.date.as_ref()),
            bar,
            duration(day.used_seconds),
            duration(day.allowance_seconds),
            width = BAR_WIDTH as usize
        ));
    }
    for (i, device) in devices.iter().enumerate() {
        text.push_str(&format!(
            "  {} {}: {}\n",
            MARKS[i % MARKS.len()],
            device.display_name,
            duration(device.used_seconds)
        ));
    }
    text.push_str(&format!(
        "  total: {}\n",
        duration(report.total_used_seconds)
    ));
    text
}

fn to_json(name: &str, report: &v1::GetReportResponse) -> serde_json::Value {
    let device = |d: &v1::DeviceUsage| json!({"device_id": d.device_id, "name": d.display_name, "used_seconds": d.used_seconds});
    json!({
        "child_id": report.child_id,
        "name": name,
        "time_zone": report.time_zone,
        "days": report.days.iter().map(|d| json!({
            "date": date_text(d.date.as_ref()),
            "allowance_seconds": d.allowance_seconds,
            "used_seconds": d.used_seconds,
            "granted_minutes": d.granted_minutes,
            "devices": d.devices.iter().map(device).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "devices": report.device_totals.iter().map(device).collect::<Vec<_>>(),
        "total_used_seconds": report.total_used_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(id: &str, seconds: i64) -> v1::DeviceUsage {
        v1::DeviceUsage {
            device_id: id.into(),
            display_name: id.into(),
            used_seconds: seconds,
        }
    }

    #[test]
    fn each_device_has_its_mark_and_bars_scale_to_the_longest_day() {
        let report = v1::GetReportResponse {
            time_zone: "UTC".into(),
            days: vec![
                v1::DayReport {
                    date: Some(v1::Date {
                        year: 2026,
                        month: 12,
                        day: 1,
                    }),
                    allowance_seconds: 3600,
                    used_seconds: 3600,
                    devices: vec![usage("tablet", 2700), usage("laptop", 900)],
                    ..Default::default()
                },
                v1::DayReport {
                    date: Some(v1::Date {
                        year: 2026,
                        month: 12,
                        day: 2,
                    }),
                    allowance_seconds: 3600,
                    used_seconds: 1800,
                    devices: vec![usage("laptop", 1800)],
                    ..Default::default()
                },
            ],
            device_totals: vec![usage("tablet", 2700), usage("laptop", 2700)],
            total_used_seconds: 5400,
            ..Default::default()
        };
        let text = chart("Mia", &report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1].matches('█').count(), 30, "{text}");
        assert_eq!(lines[1].matches('▓').count(), 10, "{text}");
        assert_eq!(lines[2].matches('▓').count(), 20, "{text}");
        assert!(lines[2].ends_with("30 min of 1 h 00 min"), "{text}");
        assert!(text.ends_with("  total: 1 h 30 min\n"), "{text}");
    }
}
