//! `household invite guardian NAME`, `household invite phone` and `household invite
//! device --child CHILD [--name NAME]`: pairing codes for a new guardian, another phone
//! (or computer) of one's own, or a child's new device, with `--qr` also as a QR code
//! to scan.

use std::io::{IsTerminal as _, Write as _};

use clap::Subcommand;
use household_proto::v1;

use crate::act::idempotency_key;
use crate::hub::{CliError, Hub};
use household_client::qr;

#[derive(Subcommand)]
pub enum InviteCommand {
    /// A code for another guardian (`household pair CODE` on their machine; with
    /// `--qr`, a QR code of the web app's pairing page for their phone).
    Guardian {
        /// The guardian's name, shown in the household's history.
        name: String,
        /// Minutes the code works, 1 to 10080 [default: a day].
        #[arg(long)]
        valid_minutes: Option<u32>,
        /// Also show a QR code for a phone to scan: the web app's pairing page on this
        /// hub (https://HUB/pair#CODE), with the URL printed below it.
        #[arg(long)]
        qr: bool,
    },
    /// A code for another phone or computer of your own, which then acts under your
    /// name with a credential of its own (with `--qr`, the web app's pairing page for
    /// your phone; on a computer, `household pair CODE`).
    Phone {
        /// Minutes the code works, 1 to 10080 [default: a day].
        #[arg(long)]
        valid_minutes: Option<u32>,
        /// Also show a QR code for the phone to scan: the web app's pairing page on this
        /// hub (https://HUB/pair#CODE), with the URL printed below it.
        #[arg(long)]
        qr: bool,
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
        /// Also show the code as a QR code, for the device to scan.
        #[arg(long)]
        qr: bool,
    },
}

pub async fn run(hub: &mut Hub, command: InviteCommand) -> Result<(), CliError> {
    let (invite, qr, guardian) = match command {
        InviteCommand::Guardian {
            name,
            valid_minutes,
            qr,
        } => {
            let invite = hub
                .client
                .invite_guardian(v1::InviteGuardianRequest {
                    display_name: name,
                    valid_minutes: valid_minutes.unwrap_or(0),
                    idempotency_key: idempotency_key(),
                })
                .await
                .map_err(|s| hub.refused(s))?
                .into_inner()
                .invite;
            (invite, qr, true)
        }
        InviteCommand::Phone { valid_minutes, qr } => {
            let invite = hub
                .client
                .invite_credential(v1::InviteCredentialRequest {
                    valid_minutes: valid_minutes.unwrap_or(0),
                    idempotency_key: idempotency_key(),
                })
                .await
                .map_err(|s| hub.refused(s))?
                .into_inner()
                .invite;
            (invite, qr, true)
        }
        InviteCommand::Device {
            child,
            name,
            valid_minutes,
            qr,
        } => {
            let child = hub.child(&child).await?;
            let name = name.unwrap_or_else(|| format!("{}'s device", child.display_name));
            let invite = hub
                .client
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
                .invite;
            (invite, qr, false)
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
    let mut text = format!(
        "pairing code for {} (works once, until {expires}):\n",
        invite.display_name
    );
    if guardian {
        // What the phone's pairing page shows, grouped the same way, to compare.
        text.push_str(&format!(
            "household CA fingerprint (SHA-256): {}\n",
            qr::fingerprint_groups(&invite.ca_sha256_hex)
        ));
    }
    if qr {
        let colours = if std::io::stdout().is_terminal() {
            qr::Colours::Terminal
        } else {
            qr::Colours::Plain
        };
        // A guardian's phone scans the web app's pairing page, served by the hub at the
        // address this terminal uses; the code rides in the fragment, which no browser
        // sends. A device's agent scans the bare code.
        let url = guardian.then(|| qr::pairing_page(&hub.profile.hub, &invite.pairing_code));
        let scanned = url.as_deref().unwrap_or(&invite.pairing_code);
        // The invite exists now: without a picture the code is still printed.
        match qr::lines(scanned, colours) {
            Ok(picture) => picture.iter().for_each(|line| {
                text.push_str(line);
                text.push('\n');
            }),
            Err(err) => eprintln!("household: no QR code for this pairing code ({err})"),
        }
        if let Some(url) = url {
            text.push_str(&format!("or open on the phone: {url}\n"));
        }
    }
    // The code's text last, on a line of its own, for a script to take.
    text.push_str(&invite.pairing_code);
    text.push('\n');
    // Written at once, and a closed pipe (`| head`) is an error, not a panic.
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::Output)?;
    Ok(())
}
