//! `household legacy …`: drive an unmodified Android CST child (or a child
//! agent) from a terminal, as the CST parent app does.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;
use cst_legacy::DeviceId;
use cst_legacy::client::{self, CHILD_PORT};

#[derive(Subcommand)]
pub enum LegacyCommand {
    /// Find children on the local network by broadcast.
    Discover {
        /// Where to send the discovery broadcast.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::BROADCAST))]
        broadcast: IpAddr,
        /// The children's UDP port.
        #[arg(long, default_value_t = CHILD_PORT)]
        port: u16,
        /// Seconds to collect answers.
        #[arg(long, default_value_t = 5.0, value_parser = seconds)]
        timeout: f64,
    },
    /// Send one command and print the child's reply.
    Send {
        /// The child's IP address (from `discover`).
        #[arg(long)]
        to: IpAddr,
        /// The child's UDP port.
        #[arg(long, default_value_t = CHILD_PORT)]
        port: u16,
        /// Send from this local address (default: the system's choice).
        #[arg(long)]
        from: Option<IpAddr>,
        /// The device ID the child shows: 16 hexadecimal digits.
        #[arg(long)]
        device_id: DeviceId,
        /// Seconds to wait for the reply.
        #[arg(long, default_value_t = 5.0, value_parser = seconds)]
        timeout: f64,
        /// GET_TIME_LEFT, LOCK_DEVICE or EXTEND_TIME:<minutes>.
        command: String,
    },
}

/// A timeout: more than 0 and at most an hour.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 3600.0 => Ok(s),
        _ => Err(format!(
            "timeout must be seconds in (0, 3600], got {text:?}"
        )),
    }
}

pub async fn run(command: LegacyCommand) -> anyhow::Result<()> {
    match command {
        LegacyCommand::Discover {
            broadcast,
            port,
            timeout,
        } => {
            let found = client::discover(
                SocketAddr::new(broadcast, port),
                Duration::from_secs_f64(timeout),
            )
            .await?;
            if found.is_empty() {
                bail!("no child answered within {timeout} s");
            }
            for address in found {
                println!("{address}");
            }
            Ok(())
        }
        LegacyCommand::Send {
            to,
            port,
            from,
            device_id,
            timeout,
            command,
        } => {
            let unspecified = match to {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            };
            let reply = client::send_command_from(
                from.unwrap_or(unspecified),
                SocketAddr::new(to, port),
                &device_id.key(),
                &command,
                Duration::from_secs_f64(timeout),
            )
            .await?;
            if reply.is_error() {
                bail!("{to} answered: {reply}");
            }
            println!("{}", reply.describe());
            Ok(())
        }
    }
}
