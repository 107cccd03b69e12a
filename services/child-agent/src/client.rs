//! The child's side commands: `show-id`, `status`, `request-time`. They ask
//! the running agent over its control socket; with no agent running, the
//! read-only ones open the store directly.

use std::path::Path;

use std::io::Write;

use anyhow::{Context, bail};

use crate::agent::Agent;
use crate::clock::Reading;
use crate::control::{self, ControlRequest, ControlResponse, HubView, StatusView};
use crate::store::Store;

/// How often `status --follow` asks again.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn show_id(data_dir: &Path) -> anyhow::Result<()> {
    let id = match control::call(data_dir, &ControlRequest::ShowId).await? {
        Some(ControlResponse::DeviceId(id)) => id,
        Some(ControlResponse::Error(message)) => bail!("{message}"),
        Some(other) => bail!("unexpected answer from the agent: {other:?}"),
        None => match crate::identity::read(data_dir)? {
            Some(id) => id,
            None => open_store(data_dir)?
                .device_id()?
                .context("the agent has not run yet: no device ID")?,
        },
    };
    println!("{id}");
    Ok(())
}

pub async fn status(data_dir: &Path, json: bool, follow: bool) -> anyhow::Result<()> {
    let mut shown: Option<StatusView> = None;
    loop {
        let view = match control::call(data_dir, &ControlRequest::Status).await? {
            Some(response) => expect_status(response)?,
            None => offline_status(data_dir)?,
        };
        if shown.as_ref() != Some(&view) {
            let text = if json {
                serde_json::to_string(&view)?
            } else if follow {
                format!("--- {}\n{view}", jiff::Zoned::now().strftime("%H:%M:%S"))
            } else {
                view.to_string()
            };
            // A reader that went away (`| head`) ends the watch quietly.
            match writeln!(std::io::stdout().lock(), "{text}") {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                written => written?,
            }
            shown = Some(view);
        }
        if !follow {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

pub async fn log(data_dir: &Path, limit: usize) -> anyhow::Result<()> {
    let events = match control::call(data_dir, &ControlRequest::Log { limit }).await? {
        Some(ControlResponse::Events(events)) => events,
        Some(ControlResponse::Error(message)) => bail!("{message}"),
        Some(other) => bail!("unexpected answer from the agent: {other:?}"),
        None => open_store(data_dir)?.recent_events(limit)?,
    };
    for event in events {
        println!("{}", serde_json::to_string(&event)?);
    }
    Ok(())
}

pub async fn request_time(data_dir: &Path, minutes: i64) -> anyhow::Result<()> {
    match control::call(data_dir, &ControlRequest::RequestTime { minutes }).await? {
        Some(response) => {
            let view = expect_status(response)?;
            println!("{minutes} minutes added.\n{view}");
            Ok(())
        }
        None => bail!(
            "no child-agent is running on {}; credits are spent through the running agent",
            data_dir.display()
        ),
    }
}

pub async fn ask_time(data_dir: &Path, minutes: i64, note: Option<String>) -> anyhow::Result<()> {
    match control::call(data_dir, &ControlRequest::AskTime { minutes, note }).await? {
        Some(response) => {
            let view = expect_status(response)?;
            println!("Asked for {minutes} more minutes; a guardian will answer.\n{view}");
            Ok(())
        }
        None => bail!(
            "no child-agent is running on {}; requests go through the running agent",
            data_dir.display()
        ),
    }
}

fn expect_status(response: ControlResponse) -> anyhow::Result<StatusView> {
    match response {
        ControlResponse::Status(view) => Ok(*view),
        ControlResponse::Error(message) => bail!("{message}"),
        other => bail!("unexpected answer from the agent: {other:?}"),
    }
}

fn open_store(data_dir: &Path) -> anyhow::Result<Store> {
    if !data_dir.join("store").exists() {
        bail!(
            "{} holds no agent store; start `child-agent run --data-dir {}` first",
            data_dir.display(),
            data_dir.display()
        );
    }
    // Owner-only: another user gets "permission denied", said plainly.
    if let Err(e) = std::fs::read_dir(crate::store::store_path(data_dir)) {
        bail!(
            "cannot read the agent's store in {}: {e} (it is for root and the agent's user; \
             is the agent running?)",
            data_dir.display()
        );
    }
    Ok(Store::open(data_dir)?)
}

/// The status from the store, as of now, with the policy the agent last ran.
fn offline_status(data_dir: &Path) -> anyhow::Result<StatusView> {
    let store = open_store(data_dir)?;
    let policy = store
        .policy()?
        .context("the agent has not run yet: no policy stored")?;
    let device_id = store
        .device_id()?
        .context("the agent has not run yet: no device ID")?;
    let hub = crate::link::Enrollment::load(data_dir)?.map(|e| e.hub);
    let agent = Agent::open(store, device_id, policy, 1.0, Reading::now(), hub)?;
    let status = agent.status()?;
    let mut view = StatusView::new(&status, &household_core::DeviceId::from(agent.device_id()));
    view.hub = agent.link_view()?.map(|link| HubView::new(&link));
    Ok(view)
}
