//! `child-agent enroll PAIRING-CODE`: join the household whose hub made the
//! code, as a device of the child the code names.
//!
//! The hub is found by mDNS (`_household-hub._tcp`) unless `--hub` says
//! where it is; the announcement must carry the CA fingerprint the code
//! names, and so must the certificate chain the hub presents over TLS
//! ([`household_client::enroll`] checks it before sending anything). The key
//! is made here and never leaves the device. Nothing is stored unless the
//! hub accepted the code.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use household_proto::pairing::PairingCode;
use household_proto::v1;

use crate::link::Enrollment;

/// How long to listen for the hub's announcement.
const SEARCH: Duration = Duration::from_secs(3);

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The code from `household invite device --child NAME` (or `household-hub invite`).
    pub code: String,
    /// The agent's data directory (the same as for `run`).
    #[arg(long, env = "CHILD_AGENT_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The hub's HOST:PORT; without it the hub is found by mDNS.
    #[arg(long)]
    pub hub: Option<String>,
    /// The network interface to look for the hub on (all without it).
    #[arg(long)]
    pub mdns_interface: Option<String>,
    /// The host name this device gives the hub, shown beside its credential [default:
    /// the host name]. The device's name in the household is the one its invite gave.
    #[arg(long)]
    pub name: Option<String>,
}

/// What the hub made of an enrolled device.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The device's name in the household.
    pub device_name: String,
    /// The device's id on the hub.
    pub device_id: String,
    /// The hub's HOST:PORT, as the agent will reach it.
    pub hub: String,
}

/// `child-agent enroll`: [`join`], then says what to do next.
pub async fn enroll(args: EnrollArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone();
    let enrolled = join(args).await?;
    println!(
        "enrolled as {} ({}) with the hub at {}; start the agent (or restart it) with \
         `child-agent run --data-dir {}`",
        enrolled.device_name,
        enrolled.device_id,
        enrolled.hub,
        data_dir.display()
    );
    Ok(())
}

/// Redeems the code and stores the enrollment in the data directory, printing nothing
/// (but a hub found by mDNS): for a program that enrolls agents of its own (the
/// household demo).
pub async fn join(args: EnrollArgs) -> anyhow::Result<Enrolled> {
    let path = Enrollment::path(&args.data_dir);
    if path.exists() {
        bail!(
            "{} already holds an enrollment; to enroll again, stop the agent and remove it",
            path.display()
        );
    }
    let code: PairingCode = args
        .code
        .trim()
        .parse()
        .context("the pairing code is not one (hh1.SECRET.CA_SHA256)")?;
    let ca_sha256_hex = code.ca_sha256_hex();
    let (hub, found_by_mdns) = match &args.hub {
        Some(hub) => (hub.clone(), false),
        None => {
            let (ca, interface) = (ca_sha256_hex.clone(), args.mdns_interface.clone());
            let found = tokio::task::spawn_blocking(move || {
                household_client::mdns::find_hub(&ca, interface.as_deref(), SEARCH)
            })
            .await??;
            eprintln!("found the hub at {found}");
            (found, true)
        }
    };
    let about = household_client::About {
        hostname: args.name.clone().unwrap_or_else(host_name),
        platform: std::env::consts::OS.into(),
        software_version: concat!("child-agent ", env!("CARGO_PKG_VERSION")).into(),
        role: household_proto::v1::Role::Device,
    };
    let enrolled = household_client::enroll(&hub, &args.code, &about)
        .await
        .with_context(|| format!("enrolling with the hub at {hub}"))?;
    let response = enrolled.response;
    if response.role != v1::Role::Device as i32 {
        bail!("this pairing code is for a guardian, not a device; give it to `household pair`");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let enrollment = Enrollment {
        hub: hub.clone(),
        ca_sha256_hex,
        ca_pem: enrolled.credential.ca_pem,
        chain_pem: enrolled.credential.chain_pem,
        key_pem: enrolled.credential.key_pem,
        device_id: response.identity_id.clone(),
        child_id: response.child_id.clone(),
        device_name: response.display_name.clone(),
        found_by_mdns,
        mdns_interface: args.mdns_interface.clone(),
        household_id: Some(response.household_id.clone()).filter(|id| !id.is_empty()),
    };
    enrollment.save(&args.data_dir)?;
    Ok(Enrolled {
        device_name: response.display_name,
        device_id: response.identity_id,
        hub,
    })
}

/// This device's host name, from `/etc/hostname` ("child-device" when there is none).
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "child-device".into())
}
