//! The agent's mDNS announcement (`_household-agent._tcp`, see
//! [`household_client::mdns::agents`]): how the hub learns of every agent on the home
//! network, enrolled or not, and what an unenrolled agent hears hubs by.
//!
//! It is made on the interface `--mdns-interface` names, else the one the agent
//! enrolled with, else every interface; not at all with `--no-mdns`.

use household_client::mdns::agents::{AgentPresence, AgentSpec};

use crate::config::{AgentConfig, LegacyModeArg, Mdns};
use crate::link::Enrollment;

/// Where to announce: `None` with `--no-mdns`, else the interface (`None` for all).
pub fn interface(config: &AgentConfig, enrollment: Option<&Enrollment>) -> Option<Option<String>> {
    match &config.mdns {
        Mdns::Off => None,
        Mdns::On { interface } => Some(
            interface
                .clone()
                .or_else(|| enrollment.and_then(|e| e.mdns_interface.clone())),
        ),
    }
}

/// Starts announcing the agent with the key fingerprint `key_sha256_hex`: as the
/// enrollment's household's, or (without one) as unenrolled and listening for hubs.
/// Off the async runtime: starting and stopping the daemon block briefly.
pub async fn start(
    config: &AgentConfig,
    enrollment: Option<&Enrollment>,
    key_sha256_hex: String,
) -> anyhow::Result<Option<AgentPresence>> {
    let Some(interface) = interface(config, enrollment) else {
        tracing::info!("not announced over mDNS (--no-mdns)");
        return Ok(None);
    };
    let spec = AgentSpec {
        interface,
        host_name: config.host_name.clone(),
        platform: std::env::consts::OS.into(),
        household_id: enrollment.map(|e| {
            e.household_id
                .clone()
                // Enrolled before hubs told the household's id: enrolled all the same.
                .unwrap_or_else(|| "enrolled".to_owned())
        }),
        key_sha256_hex,
        legacy_port: match config.legacy_mode {
            LegacyModeArg::Off => 0,
            _ => config.legacy_port,
        },
    };
    let browse_hubs = enrollment.is_none();
    let started =
        tokio::task::spawn_blocking(move || AgentPresence::start(&spec, browse_hubs)).await?;
    match started {
        Ok(presence) => Ok(Some(presence)),
        Err(err @ household_client::mdns::MdnsError::UnknownInterface(_)) => {
            Err(anyhow::anyhow!("mdns_interface: {err}"))
        }
        Err(err) => {
            tracing::warn!(error = %err, "not announced over mDNS");
            Ok(None)
        }
    }
}
