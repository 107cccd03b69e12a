//! `household history CHILD [--since 7d] [--kind KIND]… [--json]`: who did what, when.

use household_proto::v1;
use jiff::{SignedDuration, Timestamp};

use crate::hub::{CliError, Hub};
use crate::watch::{Names, event_json, event_line};

/// Events asked for per page.
const PAGE: u32 = 500;

pub async fn run(
    hub: &mut Hub,
    child: &str,
    since: &str,
    kinds: &[String],
    as_json: bool,
) -> Result<(), CliError> {
    let child_id = hub.child(child).await?.child_id;
    let start = since_instant(since, Timestamp::now())?;
    let kinds = kinds
        .iter()
        .map(|k| kind_of(k))
        .collect::<Result<Vec<i32>, CliError>>()?;
    let names = Names::of(hub).await?;
    let mut page_token = String::new();
    loop {
        let page = hub
            .client
            .get_history(v1::GetHistoryRequest {
                child_id: child_id.clone(),
                start_unix_micros: Some(start.as_microsecond()),
                kinds: kinds.clone(),
                page_size: PAGE,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .map_err(|s| hub.refused(s))?
            .into_inner();
        for event in &page.events {
            if as_json {
                println!("{}", event_json(&names, event));
            } else {
                println!("{}", event_line(&names, event));
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        page_token = page.next_page_token;
    }
}

/// `--since`: a span back from now (`7d`, `36h`, `90m`) or an instant (RFC 3339).
fn since_instant(text: &str, now: Timestamp) -> Result<Timestamp, CliError> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let bad = || {
        CliError::Refused(format!(
            "--since must be a span like 7d, 36h or 90m, or an instant like 2026-12-01T00:00:00Z; got {text:?}"
        ))
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let count: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        _ => return Err(bad()),
    };
    now.checked_sub(SignedDuration::from_secs(count.saturating_mul(seconds)))
        .map_err(|_| bad())
}

/// `--kind time_granted` as the API's enum value.
fn kind_of(name: &str) -> Result<i32, CliError> {
    let full = format!("EVENT_KIND_{}", name.to_uppercase());
    match v1::EventKind::from_str_name(&full) {
        Some(kind) if kind != v1::EventKind::Unspecified => Ok(kind as i32),
        _ => {
            let known: Vec<String> = (1..)
                .map_while(|n| v1::EventKind::try_from(n).ok())
                .map(|k| {
                    k.as_str_name()
                        .trim_start_matches("EVENT_KIND_")
                        .to_lowercase()
                })
                .collect();
            Err(CliError::Refused(format!(
                "--kind {name:?} is not a kind of event; the kinds are {}",
                known.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_spans_and_instants_and_names_what_it_wants() {
        let now: Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        assert_eq!(
            since_instant("7d", now).unwrap().to_string(),
            "2026-11-25T12:00:00Z"
        );
        assert_eq!(
            since_instant("90m", now).unwrap().to_string(),
            "2026-12-02T10:30:00Z"
        );
        assert_eq!(
            since_instant("2026-12-01T00:00:00Z", now)
                .unwrap()
                .to_string(),
            "2026-12-01T00:00:00Z"
        );
        assert!(
            since_instant("a week", now)
                .unwrap_err()
                .to_string()
                .contains("--since")
        );
        assert_eq!(
            kind_of("time_granted").unwrap(),
            v1::EventKind::TimeGranted as i32
        );
        let err = kind_of("grant").unwrap_err().to_string();
        assert!(err.contains("time_granted"), "{err}");
    }
}
