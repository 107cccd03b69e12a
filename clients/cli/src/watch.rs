//! `household watch [--json]`: the household live, one line per change.
//!
//! The stream opens with a snapshot and then follows every change in seq order. When
//! the hub goes away the command reconnects (1 s, doubling to 30 s) and resumes after
//! the last seq it printed, so nothing is missed or printed twice.

use std::collections::HashMap;
use std::time::Duration;

use household_proto::v1::{self, watch_response::Item};
use serde_json::json;
use tokio_stream::StreamExt as _;

use crate::hub::{CliError, Hub};
use crate::status::{duration, state_words, to_json};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Names of the household's guardians and children, for people.
#[derive(Default)]
pub struct Names {
    guardians: HashMap<String, String>,
    children: HashMap<String, String>,
}

impl Names {
    /// The names the hub knows now (for commands that print past events).
    pub async fn of(hub: &mut Hub) -> Result<Names, CliError> {
        let guardians = hub
            .client
            .list_guardians(v1::ListGuardiansRequest::default())
            .await
            .map_err(|s| hub.refused(s))?
            .into_inner()
            .guardians;
        let children = hub.children().await?;
        Ok(Names {
            guardians: guardians
                .into_iter()
                .map(|g| (g.guardian_id, g.display_name))
                .collect(),
            children: children
                .into_iter()
                .map(|c| (c.child_id, c.display_name))
                .collect(),
        })
    }

    fn guardian(&self, id: &str) -> String {
        self.guardians
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    fn child(&self, id: &str) -> String {
        self.children
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    fn actor(&self, actor: Option<&v1::Actor>) -> String {
        match actor.and_then(|a| a.kind.as_ref()) {
            Some(v1::actor::Kind::GuardianId(id)) => self.guardian(id),
            Some(v1::actor::Kind::DeviceId(id)) => format!("device {id}"),
            Some(v1::actor::Kind::LegacyAddress(address)) => format!("CST app at {address}"),
            Some(v1::actor::Kind::System(system)) => format!("the hub ({})", system.reason),
            None => "someone".into(),
        }
    }
}

pub async fn run(hub: &mut Hub, as_json: bool) -> Result<(), CliError> {
    let mut names = Names::default();
    let mut last_seq: Option<u64> = None;
    let mut retry = FIRST_RETRY;
    loop {
        let request = v1::WatchRequest {
            resume_after_seq: last_seq,
            ..Default::default()
        };
        let stream = match hub.client.watch(request).await {
            Ok(stream) => Some(stream.into_inner()),
            Err(status) if status.code() == tonic::Code::Unavailable => None,
            Err(status) => return Err(hub.refused(status)),
        };
        if let Some(mut stream) = stream {
            retry = FIRST_RETRY;
            while let Some(message) = stream.next().await {
                let item = match message {
                    Ok(message) => message.item,
                    Err(status) if status.code() == tonic::Code::Unavailable => break,
                    Err(status) => return Err(hub.refused(status)),
                };
                if let Some(item) = item {
                    print_item(&mut names, &mut last_seq, item, as_json);
                }
            }
        }
        tracing::info!(retry_in = ?retry, "the hub is gone; reconnecting");
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

fn print_item(names: &mut Names, last_seq: &mut Option<u64>, item: Item, as_json: bool) {
    match item {
        Item::Snapshot(snapshot) => {
            names.guardians = snapshot
                .guardians
                .iter()
                .map(|g| (g.guardian_id.clone(), g.display_name.clone()))
                .collect();
            names.children = snapshot
                .children
                .iter()
                .map(|c| (c.child_id.clone(), c.display_name.clone()))
                .collect();
            *last_seq = Some(snapshot.seq);
            if as_json {
                let children: Vec<_> = snapshot.statuses.iter().map(to_json).collect();
                println!(
                    "{}",
                    json!({"type": "snapshot", "seq": snapshot.seq, "children": children})
                );
            } else {
                for status in &snapshot.statuses {
                    println!("{}", status_line(status));
                }
            }
        }
        Item::Event(event) => {
            *last_seq = Some(event.seq);
            note_names(names, &event);
            if as_json {
                println!("{}", event_json(names, &event));
            } else {
                println!("{}", event_line(names, &event));
            }
        }
        Item::Status(status) => {
            if as_json {
                let mut value = to_json(&status);
                value["type"] = json!("status");
                println!("{value}");
            } else {
                println!("{}", status_line(&status));
            }
        }
        Item::CaughtUp(caught_up) => {
            *last_seq = Some(caught_up.seq);
            if as_json {
                println!("{}", json!({"type": "caught_up", "seq": caught_up.seq}));
            }
        }
        Item::Heartbeat(_) => {}
    }
}

/// Keeps the names current as children and guardians come and go.
fn note_names(names: &mut Names, event: &v1::Event) {
    use v1::event::Payload;
    match &event.payload {
        Some(Payload::ChildAdded(added)) => {
            names
                .children
                .insert(event.child_id.clone(), added.display_name.clone());
        }
        Some(Payload::ChildRenamed(renamed)) => {
            names
                .children
                .insert(event.child_id.clone(), renamed.display_name.clone());
        }
        Some(Payload::GuardianEnrolled(enrolled)) => {
            if let Some(v1::actor::Kind::GuardianId(id)) =
                event.actor.as_ref().and_then(|a| a.kind.as_ref())
            {
                names
                    .guardians
                    .insert(id.clone(), enrolled.display_name.clone());
            }
        }
        _ => {}
    }
}

fn status_line(status: &v1::ChildStatus) -> String {
    format!(
        "{}: {}, {} left",
        status.display_name,
        state_words(status.state),
        duration(status.remaining_seconds)
    )
}

/// The event's kind as a JSON name: `time_granted`.
fn kind_name(event: &v1::Event) -> String {
    event
        .kind()
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("EVENT_KIND_")
                .to_lowercase()
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn event_json(names: &Names, event: &v1::Event) -> serde_json::Value {
    json!({
        "type": "event",
        "seq": event.seq,
        "time_unix_micros": event.time_unix_micros,
        "kind": kind_name(event),
        "actor": names.actor(event.actor.as_ref()),
        "child_id": event.child_id,
        "device_id": event.device_id,
        "summary": summary(names, event),
    })
}

pub fn event_line(names: &Names, event: &v1::Event) -> String {
    let at = jiff::Timestamp::from_microsecond(event.time_unix_micros)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default();
    format!(
        "{at} {}: {}",
        names.actor(event.actor.as_ref()),
        summary(names, event)
    )
}

/// What happened, in a few words.
fn summary(names: &Names, event: &v1::Event) -> String {
    use v1::event::Payload;
    let child = names.child(&event.child_id);
    match &event.payload {
        Some(Payload::TimeGranted(g)) => format!("added {} min for {child}", g.minutes),
        Some(Payload::Locked(_)) => format!("locked {child}"),
        Some(Payload::Unlocked(_)) => format!("unlocked {child}"),
        Some(Payload::PolicyChanged(_)) => format!("changed {child}'s policy"),
        Some(Payload::TimeRequested(r)) => format!("{child} asked for {} min", r.minutes),
        Some(Payload::RequestResolved(_)) => format!("answered {child}'s request"),
        Some(Payload::ChildAdded(a)) => format!("added {}", a.display_name),
        Some(Payload::DeviceOnline(_)) => format!("{child}'s device {} is online", event.device_id),
        Some(Payload::DeviceOffline(_)) => {
            format!("{child}'s device {} is offline", event.device_id)
        }
        _ => format!("{} ({child})", kind_name(event)),
    }
}
