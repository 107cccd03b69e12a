//! The demo's household: this CLI paired as a guardian, the children with a small daily
//! allowance, their devices, and a simulated child agent enrolled on each.

use std::path::Path;

use anyhow::Context as _;
use child_agent::config::{LegacyModeArg, RunArgs, SessionLock, UsageSourceKind};
use child_agent::enroll::EnrollArgs;
use household_proto::v1;

use super::progress::Progress;
use super::running::{HubAddress, Running};
use super::{CHILD_NAMES, DemoArgs};
use crate::act::idempotency_key;
use crate::hub::Hub;
use crate::policy::Changes;

/// The guardian the demo pairs as.
const GUARDIAN: &str = "Demo guardian";
/// The first child's devices; every other child has the first of them.
const DEVICES: [&str; 2] = ["laptop", "tablet"];
/// Minutes a pairing code made here works: it is used at once.
const INVITE_VALID_MINUTES: u32 = 15;

/// Starts the hub in `dir/hub`, makes the household and starts its agents; the guardian,
/// connected and ready to watch.
pub async fn household(
    running: &mut Running,
    dir: &Path,
    args: &DemoArgs,
    progress: &Progress,
) -> anyhow::Result<Hub> {
    progress.step("starting the hub (mDNS off: everyone is told its address)");
    let hub = running.start_hub(&dir.join("hub")).await?;
    progress.step(format!("hub serving on {}", hub.address));
    progress.step(format!("pairing this terminal as {GUARDIAN:?}"));
    let mut guardian = pair(&hub, &dir.join("guardian").join("profile.json")).await?;
    for (index, name) in CHILD_NAMES
        .iter()
        .take(usize::from(args.children))
        .enumerate()
    {
        progress.step(format!("adding {name}, {} min a day", args.minutes));
        let child = add_child(&mut guardian, name, args.minutes).await?;
        let devices = if index == 0 {
            &DEVICES[..]
        } else {
            &DEVICES[..1]
        };
        for device in devices {
            let device_name = format!("{name}'s {device}");
            progress.step(format!("enrolling {device_name}"));
            let data_dir = dir
                .join("agents")
                .join(format!("{}-{device}", name.to_lowercase()));
            let code = device_code(&mut guardian, &child, &device_name).await?;
            child_agent::enroll::join(EnrollArgs {
                code,
                data_dir: data_dir.clone(),
                hub: Some(hub.address.clone()),
                mdns_interface: None,
                name: Some(device_name.clone()),
            })
            .await
            .with_context(|| format!("enrolling {device_name}"))?;
            progress.step(format!("starting the agent on {device_name}"));
            running.start_agent(agent_config(&data_dir)?);
        }
    }
    Ok(guardian)
}

/// A guardian invite from the admin socket, redeemed into a profile at `profile_path`
/// (in the demo's directory: the user's own profile is never touched).
async fn pair(hub: &HubAddress, profile_path: &Path) -> anyhow::Result<Hub> {
    let mut admin = household_hub::admin_client::connect(&hub.admin_socket).await?;
    let invite = admin
        .create_invite(v1::CreateInviteRequest {
            role: v1::Role::Guardian as i32,
            display_name: GUARDIAN.into(),
            child_id: String::new(),
            valid_minutes: INVITE_VALID_MINUTES,
        })
        .await
        .map_err(|status| anyhow::anyhow!("the hub refused an invite: {}", status.message()))?
        .into_inner()
        .invite
        .context("the hub sent no invite")?;
    let profile =
        crate::pair::guardian(&invite.pairing_code, &hub.address, Some("household demo")).await?;
    profile.save(profile_path)?;
    Ok(Hub::open(profile_path).await?)
}

/// Adds a child whose every day has `minutes`.
async fn add_child(guardian: &mut Hub, name: &str, minutes: u32) -> anyhow::Result<v1::Child> {
    let child = guardian
        .client
        .add_child(v1::AddChildRequest {
            display_name: name.into(),
            policy: None,
            idempotency_key: idempotency_key(),
        })
        .await
        .map_err(|status| guardian.refused(status))?
        .into_inner()
        .child
        .with_context(|| format!("the hub sent no child for {name}"))?;
    let changes = Changes {
        daily: Some(format!("all={minutes}")),
        ..Changes::default()
    };
    crate::policy::change(guardian, &child, &changes).await?;
    Ok(child)
}

/// Adds an agent device for `child`: its pairing code.
async fn device_code(guardian: &mut Hub, child: &v1::Child, name: &str) -> anyhow::Result<String> {
    let invite = guardian
        .client
        .add_device(v1::AddDeviceRequest {
            child_id: child.child_id.clone(),
            display_name: name.into(),
            kind: Some(v1::add_device_request::Kind::Agent(v1::AgentDeviceSpec {
                invite_valid_minutes: INVITE_VALID_MINUTES,
            })),
            idempotency_key: idempotency_key(),
        })
        .await
        .map_err(|status| guardian.refused(status))?
        .into_inner()
        .invite
        .with_context(|| format!("the hub made no invite for {name}"))?;
    Ok(invite.pairing_code)
}

/// A simulated agent in `data_dir`: always in use at the real clock's pace (the hub
/// keeps real time, so a faster agent would disagree with it), no legacy UDP socket, no
/// hooks, nothing locked for real, nothing announced on the network.
fn agent_config(data_dir: &Path) -> anyhow::Result<child_agent::config::AgentConfig> {
    Ok(RunArgs {
        data_dir: Some(data_dir.to_owned()),
        usage_source: Some(UsageSourceKind::Simulated),
        speed: Some(1.0),
        session_lock: Some(SessionLock::Off),
        legacy_mode: Some(LegacyModeArg::Off),
        no_mdns: true,
        ..RunArgs::default()
    }
    .resolve()?)
}
