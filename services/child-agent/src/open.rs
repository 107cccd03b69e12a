//! Opening the agent's state at start: the device ID, the store (moved
//! aside when damaged), the policy, and the day's use.
//!
//! Start-up fails closed. A store that cannot be read is renamed
//! `store.damaged-<seconds>` and a new one started; the device ID survives
//! that (it is kept in its own file, see [`crate::identity`]); and since
//! today's use is then unknown, today counts as spent: the device is locked
//! until the end of the day or until a guardian extends.

use std::path::Path;

use anyhow::Context;
use household_core::Policy;

use crate::agent::Agent;
use crate::clock::Reading;
use crate::identity;
use crate::policy::PolicyFileError;
use crate::store::{self, KEEP_EVENTS_DAYS, Store, StoreError};

/// Shown on the lock screen and in the log when today's use was lost.
pub const UNKNOWN_DAY: &str = "today's use was lost with the agent's store; \
                               the day counts as spent until a guardian extends it";

/// Opens the store and the agent under `policy`, and prunes events past
/// [`KEEP_EVENTS_DAYS`]. A policy file that cannot be used leaves the last
/// good policy in the store in force (the agent says so, in its log and in
/// `status`); with none stored, the agent does not start. Blocking: disk.
pub fn open(
    data_dir: &Path,
    policy: Result<Policy, PolicyFileError>,
    speed: f64,
    hub: Option<String>,
) -> anyhow::Result<Agent> {
    if let Err(e) = &policy
        && !store::store_path(data_dir).exists()
    {
        return Err(OpenError::Policy(e.clone()).into());
    }
    let from_file = match identity::read(data_dir) {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "the device ID file is damaged; using the store's copy");
            None
        }
    };
    let mut moved_aside = false;
    let (agent, lost) = loop {
        match open_once(data_dir, from_file.as_deref(), &policy, speed, hub.clone()) {
            Err(OpenError::Policy(e)) => return Err(e.into()),
            Ok(opened) => break opened,
            Err(OpenError::Store(e)) if e.is_damage() && !moved_aside => {
                let aside = store::move_aside(data_dir)
                    .with_context(|| format!("cannot move the damaged store aside ({e})"))?;
                tracing::error!(
                    error = %e,
                    moved_to = %aside.display(),
                    "the store cannot be read; it was moved aside and a new one started"
                );
                moved_aside = true;
            }
            Err(OpenError::Store(e)) => return Err(e.into()),
        }
    };
    if moved_aside || lost {
        tracing::error!("{UNKNOWN_DAY}");
        agent
            .lock_unknown_day(UNKNOWN_DAY)
            .context("cannot lock the day")?;
    }
    match agent.prune_events(KEEP_EVENTS_DAYS) {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(
            pruned,
            "events older than {KEEP_EVENTS_DAYS} days removed from the store"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot prune old events"),
    }
    Ok(agent)
}

#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}; no earlier policy is stored to keep enforcing, so the agent does not start")]
    Policy(PolicyFileError),
}

/// One attempt. Returns the agent and whether the store turned out empty
/// although the device has run before (its use is lost).
fn open_once(
    data_dir: &Path,
    from_file: Option<&str>,
    policy: &Result<Policy, PolicyFileError>,
    speed: f64,
    hub: Option<String>,
) -> Result<(Agent, bool), OpenError> {
    let store = Store::open(data_dir)?;
    let (policy, policy_error) = match policy {
        Ok(policy) => {
            if let Err(e) = store.save_policy(policy) {
                tracing::error!(error = %e, "cannot save the policy in the store");
            }
            (policy.clone(), None)
        }
        Err(e) => match store.policy() {
            Ok(Some(last_good)) => {
                tracing::error!(error = %e, "the policy file cannot be used; the last good policy stays in force");
                (last_good, Some(e.to_string()))
            }
            Ok(None) | Err(_) => return Err(OpenError::Policy(e.clone())),
        },
    };
    let from_store = store.device_id()?;
    let empty = store.is_empty()?;
    let device_id = match (from_file, from_store) {
        (Some(file), Some(stored)) if file != stored => {
            tracing::warn!("the store's copy of the device ID differs; the file wins");
            file.to_owned()
        }
        (Some(file), _) => file.to_owned(),
        (None, Some(stored)) if identity::is_valid(&stored) => stored,
        (None, _) => identity::new_id(),
    };
    // Both copies written where missing; a failure is logged, not fatal:
    // the ID in memory serves, and the next start tries again.
    if from_file != Some(device_id.as_str())
        && let Err(e) = identity::write(data_dir, &device_id)
    {
        tracing::error!(error = %e, "cannot save the device ID");
    }
    if let Err(e) = store.save_device_id(&device_id) {
        tracing::error!(error = %e, "cannot save the device ID in the store");
    }
    // A device that had an ID before but whose store holds nothing lost
    // its record: today's use is unknown.
    let lost = empty && from_file.is_some();
    let agent =
        Agent::open(store, device_id, policy, speed, Reading::now(), hub).map_err(|e| match e {
            crate::agent::AgentError::Store(e) => e,
            other => StoreError::Corrupt {
                what: "replayed events",
                message: other.to_string(),
            },
        })?;
    if let Some(error) = policy_error {
        let shown = format!("{error}; the last good policy stays in force");
        if let Err(e) = agent.set_policy_error(Some(shown)) {
            tracing::error!(error = %e, "cannot note the policy error");
        }
    }
    Ok((agent, lost))
}
