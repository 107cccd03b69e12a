//! The legacy bridge: the hub keeping unmodified CST Android children in step with the
//! household, over the CST UDP protocol (`protocols/cst-legacy.md`).
//!
//! Every `--legacy-poll` seconds, and at once when a guardian's decision or the clock
//! changes a child that has legacy devices, the hub asks each of them `GET_TIME_LEFT`
//! and brings it in line with the household ([`household_core::cst::correction`]):
//! `LOCK_DEVICE` whenever the household says no (logged when the device said ACTIVE), `EXTEND_TIME:n`
//! (which on the Android child *sets* the time left to n) when the household gives n
//! minutes and the device shows otherwise. What the hub learns is logged: the use the
//! device counted since its last answer as `UsageReported` (so the child's one budget
//! counts it, union with the other devices), every command it sent as a `LegacyCommand`
//! (`HUB_BRIDGE`) with its outcome, and the device going online, or offline after
//! [`OFFLINE_AFTER`] unanswered polls.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cst_legacy::client::{self, ClientError};
use cst_legacy::{DeviceId as CstDeviceId, Key, LegacyState, Reply};
use household_core::DeviceId;
use household_core::cst::{CstCorrection, CstState, CstTimeLeft, correction};
use household_proto::v1::{self, event::Payload};
use jiff::Timestamp;
use tokio::sync::broadcast;

use crate::error::HubError;
use crate::feed::FeedItem;
use crate::hub::Hub;
use crate::service::admin::system_actor;
use crate::shutdown::Shutdown;

/// Unanswered polls in a row after which a legacy device is marked offline.
pub const OFFLINE_AFTER: u32 = 3;
/// How long the hub waits for a CST child's answer (or a poll interval, if shorter).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// The actor of everything the bridge logs.
const ACTOR: &str = "legacy bridge";

/// One legacy device as the bridge needs it.
#[derive(Debug, Clone)]
struct Target {
    device_id: String,
    child_id: String,
    address: SocketAddr,
    online: bool,
}

/// What the bridge remembers of one device between polls.
#[derive(Debug, Default)]
struct Link {
    /// Polls unanswered since the last answer.
    unanswered: u32,
    /// The minutes of use the device had counted today at its last answer.
    last_used: Option<u32>,
    /// The end of the last use logged for it.
    logged_until: Option<Timestamp>,
    /// Use it counted that is not logged yet, in microseconds (see [`Link::take_use`]).
    owed_micros: i64,
}

impl Link {
    /// The use to log now, as a span ending `now`, from what the device has counted
    /// (`used` minutes today).
    ///
    /// The device counts whole minutes, so a minute more may stand for use before the
    /// last poll; yet the spans the hub logs must not overlap (the child's budget is
    /// their union, which would count an overlap once). So a span starts no earlier
    /// than the end of the last, and what does not fit is owed to the next poll: the
    /// log never counts more than the device did, and catches up whenever the device
    /// is idle between two polls.
    fn take_use(&mut self, used: u32, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let before = self.last_used.replace(used);
        match before {
            // Less than before: the device's day started over.
            Some(before) if used < before => self.owed_micros = 0,
            Some(before) => self.owed_micros += i64::from(used - before) * 60_000_000,
            None => {}
        }
        let room = self.logged_until.map_or(i64::MAX, |until| {
            now.as_microsecond() - until.as_microsecond()
        });
        let span = self.owed_micros.min(room);
        if span <= 0 {
            return None;
        }
        self.owed_micros -= span;
        self.logged_until = Some(now);
        let start = Timestamp::from_microsecond(now.as_microsecond() - span).ok()?;
        Some((start, now))
    }
}

/// Runs the bridge until the hub stops.
pub async fn run(hub: Arc<Hub>, every: Duration, mut shutdown: Shutdown) {
    let mut links: HashMap<String, Link> = HashMap::new();
    let mut feed = hub.feed.subscribe();
    let timeout = every.min(ANSWER_TIMEOUT);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // `None`: every legacy device; otherwise those of these children.
        let children: Option<BTreeSet<String>> = tokio::select! {
            _ = ticker.tick() => None,
            item = feed.recv() => match item {
                Ok(item) => match children_to_correct(&item) {
                    Some(children) => Some(children),
                    None => continue,
                },
                Err(broadcast::error::RecvError::Lagged(_)) => None,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = shutdown.wait() => return,
        };
        let targets = targets(&hub, children.as_ref());
        {
            let household = hub.read();
            links.retain(|id, _| household.device(id).is_some());
        }
        let rounds = targets.into_iter().map(|target| {
            let link = links.remove(&target.device_id).unwrap_or_default();
            let hub = hub.clone();
            async move {
                let mut link = link;
                if let Err(err) = reconcile(&hub, &target, &mut link, timeout).await {
                    tracing::warn!(device = %target.device_id, error = %err, "legacy bridge");
                }
                (target.device_id, link)
            }
        });
        tokio::select! {
            done = futures_util::future::join_all(rounds) => links.extend(done),
            () = shutdown.wait() => return,
        }
    }
}

/// The children a feed item should have the bridge correct at once: those whose
/// status a guardian's decision or the clock changed. Use reported by devices (the
/// bridge's own included) waits for the next poll, so the bridge does not poll on
/// every usage report.
fn children_to_correct(item: &FeedItem) -> Option<BTreeSet<String>> {
    let decided = item.events.is_empty()
        || item.events.iter().any(|e| {
            matches!(
                e.payload,
                Some(
                    Payload::TimeGranted(_)
                        | Payload::Locked(_)
                        | Payload::Unlocked(_)
                        | Payload::PolicyChanged(_)
                        | Payload::RequestResolved(_)
                        | Payload::ExtensionCreditSpent(_)
                        | Payload::DeviceAdded(_)
                )
            )
        });
    let children: BTreeSet<String> = item.statuses.iter().map(|s| s.child_id.clone()).collect();
    (decided && !children.is_empty()).then_some(children)
}

/// The household's legacy devices (of these children only, if given).
fn targets(hub: &Hub, children: Option<&BTreeSet<String>>) -> Vec<Target> {
    let household = hub.read();
    household
        .devices(None)
        .filter(|d| d.kind == v1::DeviceKind::LegacyCst as i32)
        .filter(|d| children.is_none_or(|c| c.contains(&d.child_id)))
        .filter(|d| household.child(&d.child_id).is_some())
        .filter_map(|d| {
            Some(Target {
                device_id: d.device_id.clone(),
                child_id: d.child_id.clone(),
                address: d.legacy_address.parse().ok()?,
                online: d.online,
            })
        })
        .collect()
}

/// Polls one device, logs what it learned and sends the correction it needs.
async fn reconcile(
    hub: &Arc<Hub>,
    target: &Target,
    link: &mut Link,
    timeout: Duration,
) -> Result<(), HubError> {
    let Some(cst_id) = hub.registry.cst_id(&target.device_id)? else {
        return Err(HubError::storage(
            "a legacy device without its CST device ID",
        ));
    };
    let key = cst_id
        .parse::<CstDeviceId>()
        .map_err(|err| HubError::storage(format!("stored CST device ID: {err}")))?
        .key();
    let answer = client::send_command(target.address, &key, "GET_TIME_LEFT", timeout).await;
    let now = Timestamp::now();
    let seen = match answer {
        Ok(Reply::TimeLeft {
            remaining_minutes,
            state,
            credit_minutes,
        }) => seen_as(remaining_minutes, state, credit_minutes),
        Ok(other) => {
            // It answers, so it is there, but it cannot say where it stands.
            link.unanswered = 0;
            tracing::info!(device = %target.device_id, reply = %other.describe(), "legacy device could not report its time");
            return mark_online(hub, target).await;
        }
        Err(err) => return unanswered(hub, target, link, &err).await,
    };
    link.unanswered = 0;
    mark_online(hub, target).await?;
    log_use(hub, target, link, seen, now).await?;

    let want = {
        let household = hub.read();
        let Some(status) = household.status(&target.child_id, now) else {
            return Ok(());
        };
        status.cst_on_device(&DeviceId(target.device_id.clone()))
    };
    match correction(want, seen) {
        Some(fix) => send_correction(hub, target, &key, fix, timeout).await?,
        // The device says it is blocked, as the household wants; the lock is sent all
        // the same, since anyone who knows the device ID can forge that answer. It
        // changes nothing on a device that told the truth, so it is not logged.
        None if want.state == CstState::Blocked => {
            let reasserted =
                client::send_command(target.address, &key, "LOCK_DEVICE", timeout).await;
            if let Err(err) = reasserted {
                tracing::debug!(device = %target.device_id, error = %err, "the lock was not confirmed");
            }
        }
        None => {}
    }
    Ok(())
}

/// Logs the use the device counted since its last answer ([`Link::take_use`]).
async fn log_use(
    hub: &Arc<Hub>,
    target: &Target,
    link: &mut Link,
    seen: CstTimeLeft,
    now: Timestamp,
) -> Result<(), HubError> {
    let Some((start, end)) = seen
        .used_minutes()
        .and_then(|used| link.take_use(used, now))
    else {
        return Ok(());
    };
    append(
        hub,
        target,
        Payload::UsageReported(v1::UsageReported {
            start_unix_micros: start.as_microsecond(),
            end_unix_micros: end.as_microsecond(),
        }),
    )
    .await
}

async fn send_correction(
    hub: &Arc<Hub>,
    target: &Target,
    key: &Key,
    fix: CstCorrection,
    timeout: Duration,
) -> Result<(), HubError> {
    let (command, kind, minutes) = match fix {
        CstCorrection::Lock => (
            "LOCK_DEVICE".to_owned(),
            v1::LegacyCommandKind::LockDevice,
            0,
        ),
        CstCorrection::SetRemaining { minutes } => (
            format!("EXTEND_TIME:{minutes}"),
            v1::LegacyCommandKind::ExtendTime,
            minutes,
        ),
    };
    let answer = client::send_command(target.address, key, &command, timeout).await;
    let (outcome, reply) = match &answer {
        Ok(reply) if !reply.is_error() => (v1::LegacyOutcome::Applied, reply.to_string()),
        Ok(reply) => (v1::LegacyOutcome::Failed, reply.to_string()),
        Err(_) => (v1::LegacyOutcome::Failed, String::new()),
    };
    tracing::info!(device = %target.device_id, %command, ?outcome, "legacy bridge corrected a device");
    append(
        hub,
        target,
        Payload::LegacyCommand(v1::LegacyCommand {
            path: v1::LegacyPath::HubBridge as i32,
            peer_address: target.address.to_string(),
            command: kind as i32,
            extend_minutes: minutes,
            outcome: outcome as i32,
            reply,
        }),
    )
    .await
}

async fn mark_online(hub: &Arc<Hub>, target: &Target) -> Result<(), HubError> {
    if target.online {
        return Ok(());
    }
    append(
        hub,
        target,
        Payload::DeviceOnline(v1::DeviceOnline {
            remote_address: target.address.to_string(),
            software_version: "CST Android".into(),
        }),
    )
    .await
}

async fn unanswered(
    hub: &Arc<Hub>,
    target: &Target,
    link: &mut Link,
    err: &ClientError,
) -> Result<(), HubError> {
    link.unanswered += 1;
    tracing::debug!(device = %target.device_id, error = %err, unanswered = link.unanswered, "legacy device did not answer");
    if link.unanswered < OFFLINE_AFTER || !target.online {
        return Ok(());
    }
    append(
        hub,
        target,
        Payload::DeviceOffline(v1::DeviceOffline {
            reason: format!("{OFFLINE_AFTER} polls unanswered"),
        }),
    )
    .await
}

/// Logs an event about the device, unless the device or its child is gone by then.
async fn append(hub: &Arc<Hub>, target: &Target, payload: Payload) -> Result<(), HubError> {
    let (device_id, child_id) = (target.device_id.clone(), target.child_id.clone());
    hub.writer
        .write(move |txn| {
            let household = txn.household();
            let still_there = household
                .device(&device_id)
                .is_some_and(|d| d.child_id == child_id)
                && household.child(&child_id).is_some();
            if still_there {
                txn.append(v1::Event {
                    actor: Some(system_actor(ACTOR)),
                    child_id,
                    device_id,
                    payload: Some(payload),
                    ..Default::default()
                });
            }
            Ok(())
        })
        .await
}

/// A `TIME_LEFT` reply as the core's CST view.
fn seen_as(remaining_minutes: i64, state: LegacyState, credit_minutes: i64) -> CstTimeLeft {
    let clamp = |m: i64| u32::try_from(m.max(0)).unwrap_or(u32::MAX);
    CstTimeLeft {
        remaining_minutes: clamp(remaining_minutes),
        state: match state {
            LegacyState::Active => CstState::Active,
            LegacyState::Blocked => CstState::Blocked,
        },
        credit_minutes: clamp(credit_minutes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_750_000_000 + second).unwrap()
    }

    fn seconds(span: Option<(Timestamp, Timestamp)>) -> Option<(i64, i64)> {
        span.map(|(s, e)| (s.as_second() - 1_750_000_000, e.as_second() - 1_750_000_000))
    }

    #[test]
    fn logged_use_never_overlaps_and_catches_up_with_what_the_device_counted() {
        let mut link = Link::default();
        assert_eq!(
            link.take_use(30, at(0)),
            None,
            "the first answer is the baseline"
        );
        // One minute counted, 30 s after: the whole minute, ending now.
        assert_eq!(seconds(link.take_use(31, at(30))), Some((-30, 30)));
        // Another minute 30 s later: only 30 s fit after the last span; 30 s are owed.
        assert_eq!(seconds(link.take_use(32, at(60))), Some((30, 60)));
        // Idle since: the owed 30 s are logged at the next poll.
        assert_eq!(seconds(link.take_use(32, at(90))), Some((60, 90)));
        assert_eq!(link.take_use(32, at(120)), None);
        // A new day on the device: nothing owed, a new baseline.
        assert_eq!(link.take_use(0, at(150)), None);
        assert_eq!(seconds(link.take_use(2, at(300))), Some((180, 300)));
    }
}
