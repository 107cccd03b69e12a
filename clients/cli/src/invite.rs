//! `household invite guardian NAME` and `household invite device --child CHILD
//! [--name NAME]`: pairing codes for a new guardian or a child's new device.

use clap::Subcommand;
use household_proto::v1;

use crate::act::idempotency_key;
use crate::hub::{CliError, Hub};

#[derive(Subcommand)]
pub enum InviteCommand {
    /// A code for another guardian (`household pair CODE` on their machine).
    Guardian {
        /// The guardian's name, shown in the household's history.
        name: String,
        /// Minutes the code works, 1 to 10080 [default: the hub's, 15].
        #[arg(long)]
        valid_minutes: Option<u32>,
    },
    /// A code for a child's new device (`child-agent enroll CODE` on it).
    Device {
        /// The child the device belongs to (name or id).
        #[arg(long)]
        child: String,
        /// The device's name [default: "CHILD's device"].
        #[arg(long)]
        name: Option<String>,
        /// Minutes the code works, 1 to 10080 [default: a day].
        #[arg(long)]
        valid_minutes: Option<u32>,
    },
}

pub async fn run(hub: &mut Hub, command: InviteCommand) -> Result<(), CliError> {
    let invite = match command {
        InviteCommand::Guardian {
            name,
            valid_minutes,
        } => {
            hub.client
                .invite_guardian(v1::InviteGuardianRequest {
                    display_name: name,
                    valid_minutes: valid_minutes.unwrap_or(0),
                    idempotency_key: idempotency_key(),
                })
                .await
                .map_err(|s| hub.refused(s))?
                .into_inner()
                .invite
        }
        InviteCommand::Device {
            child,
            name,
            valid_minutes,
        } => {
            let child = hub.child(&child).await?;
            let name = name.unwrap_or_else(|| format!("{}'s device", child.display_name));
            hub.client
                .add_device(v1::AddDeviceRequest {
                    child_id: child.child_id,
                    display_name: name,
                    kind: Some(v1::add_device_request::Kind::Agent(v1::AgentDeviceSpec {
                        invite_valid_minutes: valid_minutes.unwrap_or(0),
                    })),
                    idempotency_key: idempotency_key(),
                })
                .await
                .map_err(|s| hub.refused(s))?
                .into_inner()
                .invite
        }
    };
    let invite = invite.ok_or_else(|| CliError::Refused("the hub made no invite".into()))?;
    let expires = jiff::Timestamp::from_microsecond(invite.expires_unix_micros)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default();
    println!(
        "pairing code for {} (works once, until {expires}):",
        invite.display_name
    );
    println!("{}", invite.pairing_code);
    Ok(())
}
