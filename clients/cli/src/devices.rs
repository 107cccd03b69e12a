//! `household devices list|rename|remove|add-legacy|adopt`.

use clap::Subcommand;
use household_proto::v1;
use serde_json::json;

use crate::act::idempotency_key;
use crate::hub::{CliError, Hub};

#[derive(Subcommand)]
pub enum DevicesCommand {
    /// Every device (or one child's), with whether it is online; below them, the child
    /// agents heard on the network that belong to no household yet.
    List {
        /// Only this child's (name or id).
        #[arg(long)]
        child: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Give a device another name.
    Rename {
        /// The device's id or name.
        device: String,
        /// The new name.
        name: String,
    },
    /// Remove a device: its credential stops working at once.
    Remove {
        /// The device's id or name.
        device: String,
    },
    /// Adopt an unmodified Child Screen Time Android child; the hub keeps it in step.
    AddLegacy {
        /// Its IPv4 address, with :PORT if not 8888.
        #[arg(long)]
        ip: String,
        /// The CST device ID it shows (16 hexadecimal digits).
        #[arg(long)]
        device_id: String,
        /// The child it belongs to (name or id).
        #[arg(long)]
        child: String,
        /// The device's name [default: "CHILD's phone"].
        #[arg(long)]
        name: Option<String>,
    },
    /// Bring a child agent heard on the network (`devices list`) into the household,
    /// confirming the verification code it shows ("pairing: 4 7 1 9 2 0" in its log and
    /// `child-agent status`). No pairing code is typed on the device.
    Adopt {
        /// The agent's host name as `devices list` shows it (or 8+ digits of its key).
        host: String,
        /// The child it belongs to (name or id).
        #[arg(long)]
        child: String,
        /// The 6 digits the device shows; asked for when not given.
        #[arg(long)]
        code: Option<String>,
        /// The device's name in the household [default: its host name].
        #[arg(long)]
        name: Option<String>,
    },
}

pub async fn run(hub: &mut Hub, command: DevicesCommand) -> Result<(), CliError> {
    match command {
        DevicesCommand::List {
            child,
            json: as_json,
        } => {
            let child_id = match child {
                Some(name) => hub.child(&name).await?.child_id,
                None => String::new(),
            };
            let (devices, network) = devices_and_network(hub, child_id).await?;
            let strangers: Vec<&v1::NetworkDevice> = network
                .iter()
                .filter(|n| n.household_id.is_empty())
                .collect();
            if as_json {
                let list: Vec<_> = devices
                    .iter()
                    .map(|d| {
                        json!({
                            "device_id": d.device_id,
                            "child_id": d.child_id,
                            "name": d.display_name,
                            "kind": kind_key(d.kind),
                            "online": d.online,
                            "enrolled": d.enrolled,
                            "last_seen_unix_micros": d.last_seen_unix_micros,
                        })
                    })
                    .collect();
                let network: Vec<_> = network
                    .iter()
                    .map(|n| {
                        json!({
                            "host_name": n.host_name,
                            "platform": n.platform,
                            "addresses": n.addresses,
                            "household_id": n.household_id,
                            "in_this_household": n.in_this_household,
                            "key_sha256_hex": n.key_sha256_hex,
                            "legacy_port": n.legacy_port,
                            "last_seen_unix_micros": n.last_seen_unix_micros,
                        })
                    })
                    .collect();
                println!("{}", json!({ "devices": list, "network": network }));
            } else {
                for d in &devices {
                    println!(
                        "{}  {} ({}, {}{})",
                        d.device_id,
                        d.display_name,
                        kind_name(d.kind),
                        if d.online { "online" } else { "offline" },
                        if d.enrolled { "" } else { ", not enrolled yet" }
                    );
                }
                if !strangers.is_empty() {
                    println!(
                        "\non the network, in no household (household devices adopt HOST --child NAME):"
                    );
                    let now = jiff::Timestamp::now().as_microsecond();
                    for n in strangers {
                        // A CST parent app reaches it at this address and port, no
                        // broadcast needed.
                        let cst = match n.legacy_port {
                            0 => String::new(),
                            port => format!(", CST on UDP {port}"),
                        };
                        println!(
                            "  {}  ({}, {}{cst}, seen {} s ago; the code is on its screen, key {})",
                            n.host_name,
                            n.platform,
                            n.addresses.join(" "),
                            (now - n.last_seen_unix_micros).max(0) / 1_000_000,
                            n.key_sha256_hex.get(..12).unwrap_or_default()
                        );
                    }
                }
            }
        }
        DevicesCommand::Adopt {
            host,
            child,
            code,
            name,
        } => {
            let child = hub.child(&child).await?;
            let code = match code {
                Some(code) => code,
                None => ask_code(&host)?,
            };
            eprintln!("waiting for {host} to ask the hub (up to a minute)…");
            let device = hub
                .client
                .adopt_device(v1::AdoptDeviceRequest {
                    host: host.clone(),
                    child_id: child.child_id,
                    verification_code: code,
                    display_name: name.unwrap_or_default(),
                })
                .await
                .map_err(|s| hub.refused(s))?
                .into_inner()
                .device
                .unwrap_or_default();
            println!(
                "adopted {host} as {} ({}), a device of {}",
                device.display_name, device.device_id, child.display_name
            );
        }
        DevicesCommand::Rename { device, name } => {
            let device = find(hub, &device).await?;
            hub.client
                .rename_device(v1::RenameDeviceRequest {
                    device_id: device.device_id,
                    display_name: name.clone(),
                })
                .await
                .map_err(|s| hub.refused(s))?;
            println!("{} is now {name}", device.display_name);
        }
        DevicesCommand::Remove { device } => {
            let device = find(hub, &device).await?;
            hub.client
                .remove_device(v1::RemoveDeviceRequest {
                    device_id: device.device_id,
                })
                .await
                .map_err(|s| hub.refused(s))?;
            println!("removed {}", device.display_name);
        }
        DevicesCommand::AddLegacy {
            ip,
            device_id,
            child,
            name,
        } => {
            let child = hub.child(&child).await?;
            let name = name.unwrap_or_else(|| format!("{}'s phone", child.display_name));
            let device = hub
                .client
                .add_device(v1::AddDeviceRequest {
                    child_id: child.child_id,
                    display_name: name,
                    kind: Some(v1::add_device_request::Kind::LegacyCst(
                        v1::LegacyCstDeviceSpec {
                            address: ip,
                            cst_device_id: device_id,
                        },
                    )),
                    idempotency_key: idempotency_key(),
                })
                .await
                .map_err(|s| hub.refused(s))?
                .into_inner()
                .device
                .unwrap_or_default();
            println!(
                "added {} ({}) at {}",
                device.display_name, device.device_id, device.legacy_address
            );
        }
    }
    Ok(())
}

/// The code the device shows, typed at the terminal.
fn ask_code(host: &str) -> Result<String, CliError> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if !std::io::stdin().is_terminal() {
        return Err(CliError::BadArgument(
            "--code is required when not at a terminal: the 6 digits the device shows".into(),
        ));
    }
    eprint!("the verification code {host} shows (\"pairing: …\" in `child-agent status`): ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Refused(format!("cannot read the code: {e}")))?;
    Ok(line.trim().to_owned())
}

/// The devices, and the agents heard on the network (none when `child_id` is set).
async fn devices_and_network(
    hub: &mut Hub,
    child_id: String,
) -> Result<(Vec<v1::Device>, Vec<v1::NetworkDevice>), CliError> {
    let response = hub
        .client
        .list_devices(v1::ListDevicesRequest { child_id })
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner();
    Ok((response.devices, response.network_devices))
}

async fn devices(hub: &mut Hub, child_id: String) -> Result<Vec<v1::Device>, CliError> {
    Ok(hub
        .client
        .list_devices(v1::ListDevicesRequest { child_id })
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner()
        .devices)
}

/// The device whose id or name (any case) is `name`.
async fn find(hub: &mut Hub, name: &str) -> Result<v1::Device, CliError> {
    let devices = devices(hub, String::new()).await?;
    let wanted = name.to_lowercase();
    let mut found: Vec<v1::Device> = devices
        .into_iter()
        .filter(|d| d.device_id == name || d.display_name.to_lowercase() == wanted)
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(CliError::Refused(format!(
            "no device called {name:?}; `household devices list` shows them"
        ))),
        n => Err(CliError::Refused(format!(
            "{n} devices are called {name:?}; give the device's id"
        ))),
    }
}

/// A device kind's name in JSON.
fn kind_key(kind: i32) -> &'static str {
    match v1::DeviceKind::try_from(kind) {
        Ok(v1::DeviceKind::Agent) => "agent",
        Ok(v1::DeviceKind::LegacyCst) => "legacy_cst",
        _ => "unknown",
    }
}

/// A device kind in words.
fn kind_name(kind: i32) -> &'static str {
    match v1::DeviceKind::try_from(kind) {
        Ok(v1::DeviceKind::Agent) => "agent",
        Ok(v1::DeviceKind::LegacyCst) => "legacy CST",
        _ => "unknown",
    }
}
