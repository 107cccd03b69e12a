//! `Household.GetReport`: a child's use per day and per device, in the child's time
//! zone.
//!
//! The report folds the child's logged events over the range (and the day before it,
//! so a grant's "usage so far" is right on the first day) into a fresh household-core
//! projection that starts from the policy in force then, and reads each day's status
//! at its last instant. The rules are the same code the live status uses.

use std::collections::BTreeMap;

use household_core::{ChildId, GrantSource, LocalDay, Projection};
use household_proto::convert;
use household_proto::v1;
use jiff::{SignedDuration, Timestamp};

use crate::error::HubError;
use crate::hub::Hub;

/// Longest report, in days after the first.
const MAX_REPORT_DAYS: i64 = 92;

/// The report a request asks for.
pub fn build(hub: &Hub, request: v1::GetReportRequest) -> Result<v1::GetReportResponse, HubError> {
    let start = date(request.start_date.as_ref(), "start_date")?;
    let end = date(request.end_date.as_ref(), "end_date")?;
    if end < start {
        return Err(HubError::invalid(
            "end_date",
            "must not be before start_date",
        ));
    }
    let span = start.until(end).map_err(HubError::storage)?.get_days() as i64;
    if span > MAX_REPORT_DAYS {
        return Err(HubError::invalid(
            "end_date",
            format!("must be at most {MAX_REPORT_DAYS} days after start_date, got {span}"),
        ));
    }
    let (mut projection, zone_name, names) = {
        let household = hub.read();
        let entry = household
            .child_ever(&request.child_id)
            .ok_or_else(|| HubError::no_child(&request.child_id))?;
        let zone = entry.projection.zone().clone();
        let first_start = LocalDay::of(start, &zone).start().as_microsecond();
        let policy = entry
            .policy_history
            .iter()
            .take_while(|(at, _)| *at <= first_start)
            .last()
            .or(entry.policy_history.first())
            .map(|(_, policy)| policy.clone())
            .unwrap_or_default();
        let names: BTreeMap<String, String> = household
            .devices(Some(&request.child_id))
            .map(|d| (d.device_id.clone(), d.display_name.clone()))
            .collect();
        let projection = Projection::new(ChildId(request.child_id.clone()), policy)?;
        (
            projection,
            entry.projection.policy().time_zone.clone(),
            names,
        )
    };
    let zone = projection.zone().clone();
    let first = LocalDay::of(start, &zone);
    let last = LocalDay::of(end, &zone);
    let from = first
        .start()
        .checked_sub(SignedDuration::from_hours(25))
        .unwrap_or(Timestamp::MIN)
        .as_microsecond();
    let mut seqs: Vec<u64> = hub
        .store
        .child_seqs(&request.child_id, from, last.end().as_microsecond())?
        .collect::<Result<_, _>>()?;
    seqs.sort_unstable();
    for seq in seqs {
        if let Some(event) = hub.store.get(seq)?
            && let Ok(core_event) = convert::event_to_core(&event)
        {
            projection.apply(&core_event);
        }
    }
    let now = Timestamp::now();
    let mut days = Vec::new();
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    let mut day = first;
    loop {
        let at = day
            .end()
            .checked_sub(SignedDuration::from_micros(1))
            .unwrap_or(day.start())
            .min(now)
            .max(day.start());
        let status = projection.status_at(at);
        let mut granted_minutes = 0i64;
        let (mut fives, mut tens) = (0u32, 0u32);
        for grant in &status.grants {
            match &grant.source {
                GrantSource::Guardian | GrantSource::Request { .. } => {
                    granted_minutes += grant.seconds / 60;
                }
                GrantSource::Credit { size } => match size {
                    household_core::CreditSize::FiveMinute => fives += 1,
                    household_core::CreditSize::TenMinute => tens += 1,
                },
            }
        }
        let made: Vec<_> = projection
            .requests()
            .filter(|r| day.contains(r.requested_at.as_second()))
            .collect();
        let approved = made
            .iter()
            .filter(|r| {
                matches!(
                    r.resolution.as_ref().map(|res| res.answer),
                    Some(household_core::Answer::Approved { .. })
                )
            })
            .count();
        let devices: Vec<v1::DeviceUsage> = status
            .used_by_device
            .iter()
            .filter(|u| u.used_seconds > 0)
            .map(|u| {
                *totals.entry(u.device.0.clone()).or_default() += u.used_seconds;
                v1::DeviceUsage {
                    device_id: u.device.0.clone(),
                    display_name: names.get(&u.device.0).cloned().unwrap_or_default(),
                    used_seconds: u.used_seconds,
                }
            })
            .collect();
        days.push(v1::DayReport {
            date: Some(convert::date_to_proto(day.date)),
            allowance_seconds: status.credit_seconds,
            used_seconds: status.used_seconds,
            granted_minutes: u32::try_from(granted_minutes).unwrap_or(u32::MAX),
            credits_spent: Some(v1::ExtensionCredits {
                five_minute_count: fives,
                ten_minute_count: tens,
            }),
            requests_made: made.len() as u32,
            requests_approved: approved as u32,
            devices,
        });
        if day.date >= last.date {
            break;
        }
        day = day.next(&zone);
    }
    let total_used_seconds = days.iter().map(|d| d.used_seconds).sum();
    let device_totals = totals
        .into_iter()
        .map(|(device_id, used_seconds)| v1::DeviceUsage {
            display_name: names.get(&device_id).cloned().unwrap_or_default(),
            device_id,
            used_seconds,
        })
        .collect();
    Ok(v1::GetReportResponse {
        child_id: request.child_id,
        time_zone: zone_name,
        days,
        device_totals,
        total_used_seconds,
    })
}

fn date(date: Option<&v1::Date>, field: &str) -> Result<jiff::civil::Date, HubError> {
    let date = date.ok_or_else(|| HubError::invalid(field, "is required"))?;
    Ok(convert::date_to_core(date, field)?)
}
