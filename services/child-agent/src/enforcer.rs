//! The enforcer: runs the user's hook commands when the device must lock,
//! may unlock, or should warn.
//!
//! Only the latest transition matters — if the device was locked and unlocked
//! again before the lock hook could run, running the unlock hook alone is
//! right — so transitions arrive on a `watch` channel. A hook that fails is
//! logged and retried with backoff until it succeeds or a newer transition
//! replaces it; it never stops the agent.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;

use crate::config::Hooks;

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);

/// Which hook a transition calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Lock,
    Unlock,
    Warning,
}

impl HookKind {
    fn name(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::Warning => "warning",
        }
    }
}

/// A change of state the enforcer acts on; `state` is the household state's
/// name (`BLOCKED`, `ACTIVE`, …) as hooks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub kind: HookKind,
    pub state: &'static str,
    pub remaining_minutes: i64,
}

/// Runs hooks for the transitions sent on `transitions` until `shutdown` fires.
/// The transition already in the channel when it starts (the state the agent
/// started in) is acted on at once: a new receiver counts the current value
/// as seen, and waiting for a change would skip it.
pub async fn run(
    hooks: Hooks,
    mut transitions: watch::Receiver<Option<Transition>>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Set when a newer transition arrived while a hook was being retried —
    // and at start, for the one already there.
    let mut superseded = true;
    loop {
        if !superseded {
            tokio::select! {
                changed = transitions.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
        superseded = false;
        let Some(transition) = transitions.borrow_and_update().clone() else {
            continue;
        };
        let Some(command) = hook_command(&hooks, transition.kind) else {
            continue;
        };
        let mut delay = FIRST_RETRY;
        while let Err(reason) = run_hook(command, &transition).await {
            tracing::warn!(
                hook = transition.kind.name(),
                %reason,
                retry_in = ?delay,
                "hook failed"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                changed = transitions.changed() => {
                    if changed.is_err() { return }
                    superseded = true;
                    break;
                }
                _ = shutdown.changed() => return,
            }
            delay = (delay * 2).min(LAST_RETRY);
        }
    }
}

fn hook_command(hooks: &Hooks, kind: HookKind) -> Option<&str> {
    match kind {
        HookKind::Lock => hooks.on_lock.as_deref(),
        HookKind::Unlock => hooks.on_unlock.as_deref(),
        HookKind::Warning => hooks.on_warning.as_deref(),
    }
}

async fn run_hook(command: &str, transition: &Transition) -> Result<(), String> {
    tracing::info!(hook = transition.kind.name(), command, "running hook");
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("CHILD_AGENT_HOOK", transition.kind.name())
        .env("CHILD_AGENT_STATE", transition.state)
        .env(
            "CHILD_AGENT_REMAINING_MINUTES",
            transition.remaining_minutes.to_string(),
        )
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("cannot start sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("exited with {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition(kind: HookKind) -> Transition {
        Transition {
            kind,
            state: "BLOCKED",
            remaining_minutes: 0,
        }
    }

    async fn wait_for_lines(path: &std::path::Path, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= n || tokio::time::Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn hooks_see_the_state_in_their_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hooks = Hooks {
            on_lock: Some(format!(
                "echo \"$CHILD_AGENT_HOOK $CHILD_AGENT_STATE $CHILD_AGENT_REMAINING_MINUTES\" >> {}",
                out.display()
            )),
            ..Hooks::default()
        };
        let (tx, rx) = watch::channel(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(hooks, rx, stop_rx));
        tx.send_replace(Some(transition(HookKind::Lock)));
        assert_eq!(wait_for_lines(&out, 1).await, ["lock BLOCKED 0"]);
        stop_tx.send_replace(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_transition_waiting_at_start_is_acted_on() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hooks = Hooks {
            on_lock: Some(format!("echo \"$CHILD_AGENT_HOOK\" >> {}", out.display())),
            ..Hooks::default()
        };
        let (tx, _) = watch::channel(None);
        // The agent opened already out of time, before the enforcer subscribed.
        tx.send_replace(Some(transition(HookKind::Lock)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(hooks, tx.subscribe(), stop_rx));
        assert_eq!(wait_for_lines(&out, 1).await, ["lock"]);
        stop_tx.send_replace(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_failing_hook_is_retried_until_it_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        // Fails twice, then succeeds: each attempt appends one line.
        let hooks = Hooks {
            on_lock: Some(format!(
                "echo x >> {0}; [ $(wc -l < {0}) -ge 3 ]",
                count.display()
            )),
            ..Hooks::default()
        };
        let (tx, rx) = watch::channel(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(hooks, rx, stop_rx));
        tx.send_replace(Some(transition(HookKind::Lock)));
        assert_eq!(wait_for_lines(&count, 3).await.len(), 3);
        stop_tx.send_replace(true);
        task.await.unwrap();
    }
}
