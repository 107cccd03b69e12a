//! The default enforcement on Linux: while the device may not be used
//! (BLOCKED, DOWNTIME, LOCKED), every session of the child's is locked
//! through logind — at once when the state changes, and again every
//! [`RELOCK_EVERY`], so a session the child unlocks is locked again within
//! that time.
//!
//! Every session is asked every time, whatever its `LockedHint` says: the
//! session's owner may set that hint at will, and a desktop may not set it
//! at all. A desktop ignores a lock request while it is locked; failing
//! closed, a lock too many is better than one too few. Each attempt's outcome is published (see
//! [`LockOutcome`]), so a caller that just locked the device (the legacy
//! `LOCK_DEVICE`) can tell whether it was enforced.

use std::time::Duration;

use household_core::ChildState;
use tokio::sync::watch;

use crate::logind::{Logind, LogindError};

/// How often the child's sessions are checked while the device must be locked.
pub const RELOCK_EVERY: Duration = Duration::from_secs(2);

/// What the last enforcement round found; `round` counts rounds while the
/// device must be locked, so a waiter can tell a new result from an old one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockOutcome {
    pub round: u64,
    /// `Ok(n)`: every session of the child is locked (`n` were locked just
    /// now); `Err`: why not.
    pub result: Option<Result<usize, String>>,
}

/// Runs until `shutdown` fires.
pub async fn run(
    logind: Logind,
    mut states: watch::Receiver<ChildState>,
    outcomes: watch::Sender<LockOutcome>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failing = false;
    let mut round = 0u64;
    loop {
        let state = *states.borrow_and_update();
        if !state.allows_use() {
            round += 1;
            let result = lock_all(&logind, state).await;
            match &result {
                Ok(_) if failing => {
                    tracing::warn!("the child's sessions can be locked again");
                    failing = false;
                }
                Err(e) if !failing => {
                    tracing::error!(error = %e, %state, "cannot lock the child's sessions; retrying");
                    failing = true;
                }
                _ => {}
            }
            outcomes.send_replace(LockOutcome {
                round,
                result: Some(result.map_err(|e| e.to_string())),
            });
        }
        tokio::select! {
            changed = states.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RELOCK_EVERY) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
    }
}

/// Asks logind to lock every session of the child's; returns how many were
/// not reported locked before.
async fn lock_all(logind: &Logind, state: ChildState) -> Result<usize, LogindError> {
    let mut locked = 0;
    for session in logind.child_sessions().await? {
        logind.lock(&session).await?;
        if !session.locked {
            tracing::info!(session = %session.id, %state, "locked the child's session");
            locked += 1;
        }
    }
    Ok(locked)
}
