//! `household-hub`: the household's server. See `docs/hub.md`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use household_hub::{admin_client, config, serve};
use household_proto::v1;

#[derive(Parser)]
#[command(
    version,
    about = "The household hub: guardians and child agents meet here"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub.
    Serve(config::ServeArgs),
    /// Make a one-time pairing code for a new guardian or device (printed on the last
    /// line; valid 15 minutes unless --valid-minutes says otherwise).
    Invite {
        /// The hub's admin socket.
        #[arg(long, env = "HOUSEHOLD_HUB_ADMIN_SOCKET")]
        admin_socket: PathBuf,
        /// Who the code is for.
        #[arg(long, value_enum)]
        role: InviteRole,
        /// The new guardian's or device's name.
        #[arg(long)]
        name: String,
        /// For a device: the child's id.
        #[arg(long)]
        child: Option<String>,
        /// Minutes the code stays valid (1 to 10080).
        #[arg(long, default_value_t = 15)]
        valid_minutes: u32,
        /// For a guardian: also show a QR code of the web app's pairing page
        /// (https://ADDRESS/pair#CODE) for their phone to scan, the URL below it.
        #[arg(long)]
        qr: bool,
        /// With --qr: the hub's address as phones reach it, HOST:PORT [default: this
        /// machine's host name in .local, port 7443].
        #[arg(long, requires = "qr")]
        address: Option<String>,
    },
    /// Write a consistent backup of the hub's data to a new directory, which
    /// `serve --data-dir DIR` opens as it is.
    Backup {
        /// The hub's admin socket.
        #[arg(long, env = "HOUSEHOLD_HUB_ADMIN_SOCKET")]
        admin_socket: PathBuf,
        /// The directory to create.
        #[arg(long)]
        to: PathBuf,
    },
    /// Whether the hub is serving, asked over its admin socket: prints SERVING and
    /// exits 0, or exits 1 (for health checks of containers and service managers).
    Health {
        /// The hub's admin socket.
        #[arg(long, env = "HOUSEHOLD_HUB_ADMIN_SOCKET")]
        admin_socket: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum InviteRole {
    Guardian,
    Device,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    household_hub::logging::init();
    match Cli::parse().command {
        Command::Serve(args) => serve::serve(config::ServeConfig::resolve(args)?).await,
        Command::Invite {
            admin_socket,
            role,
            name,
            child,
            valid_minutes,
            qr,
            address,
        } => {
            let role = match role {
                InviteRole::Guardian => v1::Role::Guardian,
                InviteRole::Device => v1::Role::Device,
            };
            let page = qr.then(|| {
                address
                    .unwrap_or_else(|| format!("{}.local:7443", household_hub::trust::host_name()))
            });
            let request = v1::CreateInviteRequest {
                role: role as i32,
                display_name: name,
                child_id: child.unwrap_or_default(),
                valid_minutes,
            };
            admin_client::invite(&admin_socket, request, page.as_deref()).await
        }
        Command::Backup { admin_socket, to } => admin_client::backup(&admin_socket, &to).await,
        Command::Health { admin_socket } => admin_client::health(&admin_socket).await,
    }
}
