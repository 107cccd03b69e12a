//! `household pair PAIRING-CODE [--hub HOST:PORT]`: become one of the household's
//! guardians on this machine.

use std::path::Path;

use anyhow::{Context as _, bail};
use household_proto::v1;

use crate::profile::Profile;

pub async fn run(
    code: &str,
    hub: &str,
    name: Option<&str>,
    profile_path: &Path,
) -> anyhow::Result<()> {
    if profile_path.exists() {
        bail!(
            "{} already holds a profile; pass --config FILE to pair as another guardian",
            profile_path.display()
        );
    }
    let profile = guardian(code, hub, name).await?;
    profile.save(profile_path)?;
    println!(
        "paired as {} with the hub at {hub}; profile in {}",
        profile.display_name,
        profile_path.display()
    );
    Ok(())
}

/// The address of the hub whose CA the code names, as it announces itself by mDNS
/// (`_household-hub._tcp`) on `interface` (all without one). Only a hint: pairing
/// then checks the same CA in the hub's TLS chain.
pub async fn find_hub(code: &str, interface: Option<String>) -> anyhow::Result<String> {
    let code: household_proto::pairing::PairingCode = code
        .trim()
        .parse()
        .context("the pairing code is not one (hh1.SECRET.CA_SHA256)")?;
    let ca = code.ca_sha256_hex();
    let found = tokio::task::spawn_blocking(move || {
        household_client::mdns::find_hub(
            &ca,
            interface.as_deref(),
            std::time::Duration::from_secs(3),
        )
    })
    .await??;
    eprintln!("found the hub at {found}");
    Ok(found)
}

/// Redeems a guardian's pairing code with the hub at `hub`: the profile to save.
pub async fn guardian(code: &str, hub: &str, name: Option<&str>) -> anyhow::Result<Profile> {
    let about = household_client::About {
        hostname: name.map_or_else(host_name, str::to_owned),
        platform: std::env::consts::OS.into(),
        software_version: concat!("household ", env!("CARGO_PKG_VERSION")).into(),
        role: household_proto::v1::Role::Guardian,
    };
    let enrolled = household_client::enroll(hub, code, &about)
        .await
        .with_context(|| format!("pairing with the hub at {hub}"))?;
    let response = enrolled.response;
    if response.role != v1::Role::Guardian as i32 {
        bail!("this pairing code is for a device, not a guardian; give it to `child-agent enroll`");
    }
    Ok(Profile {
        hub: hub.to_owned(),
        display_name: response.display_name,
        identity_id: response.identity_id,
        credential_id: match &response.credential {
            Some(v1::enroll_response::Credential::Certificate(c)) => {
                c.certificate_sha256_hex.clone()
            }
            _ => String::new(),
        },
        ca_pem: enrolled.credential.ca_pem,
        chain_pem: enrolled.credential.chain_pem,
        key_pem: enrolled.credential.key_pem,
    })
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "terminal".into())
}
