//! Events in the household's words: who did it and what happened, as a line of text or
//! a JSON object.

use std::collections::HashMap;

use household_proto::v1::{self, watch_response::Item};
use serde_json::json;

use crate::hub::{CliError, Hub};

/// Names of the household's guardians, children and devices, for people.
#[derive(Default)]
pub struct Names {
    guardians: HashMap<String, String>,
    children: HashMap<String, String>,
    devices: HashMap<String, String>,
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
            devices: HashMap::new(),
        })
    }

    /// Keeps the names current as the watch stream tells of guardians, children and
    /// devices coming, going and being renamed.
    pub fn note(&mut self, item: &Item) {
        use v1::event::Payload;
        match item {
            Item::Snapshot(snapshot) => {
                self.guardians = snapshot
                    .guardians
                    .iter()
                    .map(|g| (g.guardian_id.clone(), g.display_name.clone()))
                    .collect();
                self.children = snapshot
                    .children
                    .iter()
                    .map(|c| (c.child_id.clone(), c.display_name.clone()))
                    .collect();
                self.devices = snapshot
                    .devices
                    .iter()
                    .map(|d| (d.device_id.clone(), d.display_name.clone()))
                    .collect();
            }
            Item::Event(event) => match &event.payload {
                Some(Payload::ChildAdded(added)) => {
                    self.children
                        .insert(event.child_id.clone(), added.display_name.clone());
                }
                Some(Payload::ChildRenamed(renamed)) => {
                    self.children
                        .insert(event.child_id.clone(), renamed.display_name.clone());
                }
                Some(Payload::DeviceAdded(added)) => {
                    self.devices
                        .insert(event.device_id.clone(), added.display_name.clone());
                }
                Some(Payload::DeviceRenamed(renamed)) => {
                    self.devices
                        .insert(event.device_id.clone(), renamed.display_name.clone());
                }
                Some(Payload::GuardianEnrolled(enrolled)) => {
                    if let Some(v1::actor::Kind::GuardianId(id)) =
                        event.actor.as_ref().and_then(|a| a.kind.as_ref())
                    {
                        self.guardians
                            .insert(id.clone(), enrolled.display_name.clone());
                    }
                }
                _ => {}
            },
            Item::Status(status) => {
                for device in &status.devices {
                    self.devices
                        .insert(device.device_id.clone(), device.display_name.clone());
                }
            }
            Item::CaughtUp(_) | Item::Heartbeat(_) | Item::DeviceSeen(_) | Item::DeviceGone(_) => {}
        }
    }

    /// A child's name, or its id when the name is not known.
    pub fn child(&self, id: &str) -> String {
        self.children
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    fn guardian(&self, id: &str) -> String {
        self.guardians
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    fn device(&self, id: &str) -> String {
        self.devices
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    /// Who caused an event, in words.
    pub fn actor(&self, actor: Option<&v1::Actor>) -> String {
        match actor.and_then(|a| a.kind.as_ref()) {
            Some(v1::actor::Kind::GuardianId(id)) => self.guardian(id),
            Some(v1::actor::Kind::DeviceId(id)) => format!("device {}", self.device(id)),
            Some(v1::actor::Kind::LegacyAddress(address)) => format!("CST app at {address}"),
            Some(v1::actor::Kind::System(system)) => format!("the hub ({})", system.reason),
            None => "someone".into(),
        }
    }
}

/// The event's kind as a JSON name: `time_granted`.
pub fn kind_name(event: &v1::Event) -> String {
    event
        .kind()
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("EVENT_KIND_")
                .to_lowercase()
        })
        .unwrap_or_else(|| "unknown".into())
}

/// An event as the stable JSON object `watch --json` and `history --json` print.
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

/// An event as a line of text: when (on this machine's clock), who, what.
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

/// A legacy CST command in the protocol's own words, where it came from (or went) and
/// what became of it: "EXTEND_TIME:30 from the CST app at 10.0.0.7:40000 (Mia): applied".
fn legacy_summary(command: &v1::LegacyCommand, child: &str) -> String {
    let what = match command.command() {
        v1::LegacyCommandKind::GetTimeLeft => "GET_TIME_LEFT".to_owned(),
        v1::LegacyCommandKind::LockDevice => "LOCK_DEVICE".to_owned(),
        v1::LegacyCommandKind::ExtendTime => format!("EXTEND_TIME:{}", command.extend_minutes),
        _ => "an unknown command".to_owned(),
    };
    let way = match command.path() {
        v1::LegacyPath::HubBridge => format!("to the CST child at {}", command.peer_address),
        _ => format!("from the CST app at {}", command.peer_address),
    };
    let outcome = command
        .outcome()
        .as_str_name()
        .trim_start_matches("LEGACY_OUTCOME_")
        .to_lowercase()
        .replace('_', " ");
    format!("{what} {way} ({child}): {outcome}")
}

/// What happened, in a few words.
pub fn summary(names: &Names, event: &v1::Event) -> String {
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
        Some(Payload::LegacyCommand(c)) => legacy_summary(c, &child),
        Some(Payload::DeviceOnline(_)) => {
            format!(
                "{child}'s device {} is online",
                names.device(&event.device_id)
            )
        }
        Some(Payload::DeviceOffline(_)) => {
            format!(
                "{child}'s device {} is offline",
                names.device(&event.device_id)
            )
        }
        _ => format!("{} ({child})", kind_name(event)),
    }
}
