//! `household watch [--json]`: the household live.
//!
//! The stream opens with a snapshot and then follows every change in seq order; when
//! the hub goes away the command reconnects and resumes after the last seq it saw
//! ([`follow`]). On a terminal, without `--json`, it is a full screen redrawn in place
//! as events arrive ([`screen`], drawing [`view`] with [`render`]). Otherwise (`--json`,
//! or stdout a pipe or a file) it prints one line per change, so scripts and CI can read
//! it.

mod events;
mod follow;
mod render;
mod screen;
mod view;

use std::io::IsTerminal as _;

use household_proto::v1::watch_response::Item;
use serde_json::json;

pub use self::events::{Names, event_json, event_line};
use self::follow::{Follower, Update};
use crate::hub::{CliError, Hub};
use crate::status::{duration, state_words, to_json};

pub async fn run(hub: &mut Hub, as_json: bool) -> Result<(), CliError> {
    if !as_json && std::io::stdout().is_terminal() {
        return screen::run(hub).await;
    }
    let mut names = Names::default();
    let mut follower = Follower::new(hub);
    loop {
        match follower.next().await? {
            Update::Item(item) => print_item(&mut names, item, as_json),
            // The follower waits and reconnects; the lines go on where they stopped.
            Update::Lost { .. } => {}
        }
    }
}

fn print_item(names: &mut Names, item: Item, as_json: bool) {
    names.note(&item);
    match item {
        Item::Snapshot(snapshot) => {
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
            if as_json {
                println!("{}", json!({"type": "caught_up", "seq": caught_up.seq}));
            }
        }
        Item::Heartbeat(_) => {}
        Item::DeviceSeen(seen) => {
            if let Some(device) = seen.device {
                if as_json {
                    println!("{}", network_json("device_seen", &device));
                } else if device.household_id.is_empty() {
                    println!(
                        "on the network, in no household: {} ({}, {}); `household devices \
                         adopt {} --child NAME` brings it in",
                        device.host_name,
                        device.platform,
                        device.addresses.join(" "),
                        device.host_name
                    );
                }
            }
        }
        Item::DeviceGone(gone) => {
            if let Some(device) = gone.device {
                if as_json {
                    println!("{}", network_json("device_gone", &device));
                } else if device.household_id.is_empty() {
                    println!("left the network: {}", device.host_name);
                }
            }
        }
    }
}

/// An agent seen or gone on the network, as `watch --json` prints it.
fn network_json(kind: &str, device: &household_proto::v1::NetworkDevice) -> serde_json::Value {
    json!({
        "type": kind,
        "host_name": device.host_name,
        "platform": device.platform,
        "addresses": device.addresses,
        "household_id": device.household_id,
        "key_sha256_hex": device.key_sha256_hex,
    })
}

fn status_line(status: &household_proto::v1::ChildStatus) -> String {
    format!(
        "{}: {}, {} left",
        status.display_name,
        state_words(status.state),
        duration(status.remaining_seconds)
    )
}
