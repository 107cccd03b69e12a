//! `household extend`, `lock` and `unlock`: the everyday actions.
//!
//! Each invocation makes one idempotency key (or takes the caller's `--key`) and sends it
//! with every attempt, so a call retried after a network error never grants or locks
//! twice, and neither does a script that runs the whole command again with its key.

use std::time::Duration;

use household_proto::v1;
use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;
use rand::RngCore as _;

use crate::hub::{CliError, Hub};
use crate::status::{duration, state_words};

/// Attempts of one call before the error is reported.
const ATTEMPTS: u32 = 3;

/// `--key`: the caller's own idempotency key.
#[derive(clap::Args)]
pub struct KeyArg {
    /// An idempotency key of your own, 1 to 128 letters, digits, - and _ (a script that may
    /// run the command again passes the same key, and it acts once) [default: a new one].
    #[arg(long = "key")]
    key: Option<String>,
}

/// What to do.
pub enum Action {
    Extend { minutes: u32, note: String },
    Lock { until: Option<String> },
    Unlock { until: Option<String> },
}

pub async fn run(hub: &mut Hub, child: &str, key: KeyArg, action: Action) -> Result<(), CliError> {
    let child = hub.child(child).await?;
    let key = key.key.unwrap_or_else(idempotency_key);
    let child_id = child.child_id.clone();
    let status = match action {
        Action::Extend { minutes, note } => {
            let request = v1::GrantTimeRequest {
                child_id,
                minutes,
                idempotency_key: key,
                note,
            };
            retried(hub, |mut client| {
                let request = request.clone();
                async move {
                    client
                        .grant_time(request)
                        .await
                        .map(|r| r.into_inner().status)
                }
            })
            .await?
        }
        Action::Lock { until } => {
            let until_unix_micros = until_micros(hub, &child_id, until.as_deref()).await?;
            let request = v1::LockRequest {
                target: Some(v1::lock_request::Target::ChildId(child_id)),
                until_unix_micros,
                reason: String::new(),
                idempotency_key: key,
            };
            retried(hub, |mut client| {
                let request = request.clone();
                async move { client.lock(request).await.map(|r| r.into_inner().status) }
            })
            .await?
        }
        Action::Unlock { until } => {
            let until_unix_micros = until_micros(hub, &child_id, until.as_deref()).await?;
            let request = v1::UnlockRequest {
                target: Some(v1::unlock_request::Target::ChildId(child_id)),
                until_unix_micros,
                reason: String::new(),
                idempotency_key: key,
            };
            retried(hub, |mut client| {
                let request = request.clone();
                async move { client.unlock(request).await.map(|r| r.into_inner().status) }
            })
            .await?
        }
    };
    if let Some(status) = status {
        println!(
            "{}: {}, {} left",
            child.display_name,
            state_words(status.state),
            duration(status.remaining_seconds)
        );
    }
    Ok(())
}

/// Runs `call` until it succeeds, is refused, or fails [`ATTEMPTS`] times on the way.
async fn retried<F, Fut, T>(hub: &Hub, call: F) -> Result<T, CliError>
where
    F: Fn(v1::household_client::HouseholdClient<tonic::transport::Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut attempt = 1;
    loop {
        match call(hub.client.clone()).await {
            Ok(value) => return Ok(value),
            Err(status) if status.code() == tonic::Code::Unavailable && attempt < ATTEMPTS => {
                tracing::info!(attempt, error = %status.message(), "hub unavailable; retrying with the same key");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                attempt += 1;
            }
            Err(status) => return Err(hub.refused(status)),
        }
    }
}

/// A new idempotency key: 128 random bits in hex.
pub fn idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `--until`, if given: an instant (RFC 3339, `2026-12-02T18:30:00+01:00`), or a time
/// of day (`18:30`) in the child's time zone, the next one to come.
async fn until_micros(
    hub: &mut Hub,
    child_id: &str,
    until: Option<&str>,
) -> Result<Option<i64>, CliError> {
    match until {
        Some(text) => instant(hub, child_id, text).await.map(Some),
        None => Ok(None),
    }
}

async fn instant(hub: &mut Hub, child_id: &str, text: &str) -> Result<i64, CliError> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at.as_microsecond());
    }
    let Ok(time) = text.parse::<Time>() else {
        return Err(CliError::BadArgument(format!(
            "--until must be a time of day like 18:30 or an instant like 2026-12-02T18:30:00Z; got {text:?}"
        )));
    };
    let policy = hub
        .client
        .get_policy(v1::GetPolicyRequest {
            child_id: child_id.to_owned(),
        })
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner()
        .policy
        .unwrap_or_default();
    let zone = TimeZone::get(&policy.time_zone).map_err(|e| {
        CliError::Refused(format!("the child's time zone {:?}: {e}", policy.time_zone))
    })?;
    next_time_of_day(time, &zone, Timestamp::now())
        .map(|at| at.as_microsecond())
        .map_err(|e| CliError::Refused(format!("--until {text}: {e}")))
}

/// The next instant after `now` when the clock in `zone` shows `time`.
fn next_time_of_day(time: Time, zone: &TimeZone, now: Timestamp) -> Result<Timestamp, jiff::Error> {
    let today = now.to_zoned(zone.clone()).date();
    let at = today.to_datetime(time).to_zoned(zone.clone())?.timestamp();
    if at > now {
        Ok(at)
    } else {
        Ok(today
            .tomorrow()?
            .to_datetime(time)
            .to_zoned(zone.clone())?
            .timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_of_day_is_the_next_one_in_the_childs_zone() {
        let zone = TimeZone::get("Europe/Berlin").unwrap();
        let now: Timestamp = "2026-12-02T16:00:00Z".parse().unwrap(); // 17:00 in Berlin
        let later = next_time_of_day("18:30".parse().unwrap(), &zone, now).unwrap();
        assert_eq!(later.to_string(), "2026-12-02T17:30:00Z");
        let tomorrow = next_time_of_day("07:00".parse().unwrap(), &zone, now).unwrap();
        assert_eq!(tomorrow.to_string(), "2026-12-03T06:00:00Z");
    }
}
