//! `household status [CHILD] [--json]`: where every child stands.

use household_proto::v1;
use serde_json::json;

use crate::hub::{CliError, Hub};

pub async fn run(hub: &mut Hub, child: Option<&str>, as_json: bool) -> Result<(), CliError> {
    let child_ids = match child {
        Some(name) => vec![hub.child(name).await?.child_id],
        None => Vec::new(),
    };
    let statuses = hub
        .client
        .get_status(v1::GetStatusRequest { child_ids })
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner()
        .children;
    if as_json {
        let children: Vec<_> = statuses.iter().map(to_json).collect();
        println!("{}", json!({ "children": children }));
        return Ok(());
    }
    if statuses.is_empty() {
        println!("no children yet: add one with `household children add NAME`");
    }
    for status in &statuses {
        print!("{}", describe(status));
    }
    Ok(())
}

/// A screen state's name in JSON.
pub fn state_name(state: i32) -> &'static str {
    match v1::ScreenState::try_from(state) {
        Ok(v1::ScreenState::Active) => "active",
        Ok(v1::ScreenState::Warning) => "warning",
        Ok(v1::ScreenState::Grace) => "grace",
        Ok(v1::ScreenState::Blocked) => "blocked",
        Ok(v1::ScreenState::Locked) => "locked",
        Ok(v1::ScreenState::Downtime) => "downtime",
        _ => "unknown",
    }
}

/// A screen state in words, for people.
pub fn state_words(state: i32) -> &'static str {
    match v1::ScreenState::try_from(state) {
        Ok(v1::ScreenState::Warning) => "almost out of time",
        Ok(v1::ScreenState::Grace) => "time is up, a moment of grace",
        Ok(v1::ScreenState::Blocked) => "time is up",
        _ => state_name(state),
    }
}

/// `1 h 05 min` or `12 min`.
pub fn duration(seconds: i64) -> String {
    let minutes = (seconds.max(0) + 59) / 60;
    if minutes >= 60 {
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    } else {
        format!("{minutes} min")
    }
}

fn describe(status: &v1::ChildStatus) -> String {
    let credits = status.credits_left.unwrap_or_default();
    let mut text = format!(
        "{}: {}, {} left of {} (used {}); credits 5 min ×{}, 10 min ×{}; {} pending request(s)\n",
        status.display_name,
        state_words(status.state),
        duration(status.remaining_seconds),
        duration(status.allowance_seconds),
        duration(status.used_seconds),
        credits.five_minute_count,
        credits.ten_minute_count,
        status.pending_request_count,
    );
    for device in &status.devices {
        text.push_str(&format!(
            "  {}: {}, {}\n",
            device.display_name,
            if device.online { "online" } else { "offline" },
            state_words(device.state),
        ));
    }
    text
}

/// The stable JSON shape of one child's status (documented in docs/cli.md).
pub fn to_json(status: &v1::ChildStatus) -> serde_json::Value {
    let credits = status.credits_left.unwrap_or_default();
    json!({
        "child_id": status.child_id,
        "name": status.display_name,
        "state": state_name(status.state),
        "remaining_seconds": status.remaining_seconds,
        "allowance_seconds": status.allowance_seconds,
        "used_seconds": status.used_seconds,
        "credits": {
            "five_minute": credits.five_minute_count,
            "ten_minute": credits.ten_minute_count,
        },
        "pending_requests": status.pending_request_count,
        "devices": status.devices.iter().map(|d| json!({
            "device_id": d.device_id,
            "name": d.display_name,
            "online": d.online,
            "state": state_name(d.state),
        })).collect::<Vec<_>>(),
    })
}
