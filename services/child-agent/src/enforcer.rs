//! The enforcer: runs the user's hook commands when the device must lock,
//! may unlock, or should warn.
//!
//! Only the latest transition matters — if the device was locked and unlocked
//! again before the lock hook could run, running the unlock hook alone is
//! right — so transitions arrive on a `watch` channel. A hook that fails is
//! logged and retried with backoff until it succeeds or a newer transition
//! replaces it; it never stops the agent. A hook still running after the
//! hook timeout (`--hook-timeout`, default 30 s) is killed — its whole process
//! group, so a `sleep` it started goes too — and counts as failed, so a hung
//! hook holds up later ones, and shutdown, for at most that long.

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

/// A change of state the enforcer acts on: the hooks to run, in order, and
/// what they see — the household state's name (`BLOCKED`, `ACTIVE`, …), the
/// minutes left today, and the minutes until the device locks (the sooner
/// of the day's time running out and bedtime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub hooks: &'static [HookKind],
    pub state: &'static str,
    pub remaining_minutes: i64,
    pub minutes_to_lock: i64,
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
        // Stopping wins over a transition that came at the same time.
        if *shutdown.borrow() {
            return;
        }
        let Some(transition) = transitions.borrow_and_update().clone() else {
            continue;
        };
        for &kind in transition.hooks {
            let Some(command) = hook_command(&hooks, kind) else {
                continue;
            };
            let mut delay = FIRST_RETRY;
            while let Err(reason) = run_hook(command, kind, &transition, hooks.timeout).await {
                tracing::warn!(hook = kind.name(), %reason, retry_in = ?delay, "hook failed");
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
            if superseded {
                break;
            }
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

/// Runs one hook to its end, or for `timeout` at most: then its process
/// group is killed and the run counts as failed.
async fn run_hook(
    command: &str,
    kind: HookKind,
    transition: &Transition,
    timeout: Duration,
) -> Result<(), String> {
    tracing::info!(hook = kind.name(), command, "running hook");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("CHILD_AGENT_HOOK", kind.name())
        .env("CHILD_AGENT_STATE", transition.state)
        .env(
            "CHILD_AGENT_REMAINING_MINUTES",
            transition.remaining_minutes.to_string(),
        )
        .env(
            "CHILD_AGENT_MINUTES_TO_LOCK",
            transition.minutes_to_lock.to_string(),
        )
        .stdin(Stdio::null())
        // Its own process group, so a timeout can end everything it started.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.map_err(|e| format!("cannot wait for sh: {e}"))?,
        Err(_) => {
            kill_group(&child);
            // SIGKILL cannot be caught: this returns at once, and reaps it.
            let _ = child.wait().await;
            return Err(format!("still running after {timeout:?}; killed"));
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!("exited with {status}"))
    }
}

/// SIGKILL to the process group that `child` leads.
fn kill_group(child: &tokio::process::Child) {
    let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(-pid, libc::SIGKILL) } != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(pid, error = %e, "cannot kill the hook's process group");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition(kind: HookKind) -> Transition {
        let hooks: &'static [HookKind] = match kind {
            HookKind::Lock => &[HookKind::Lock],
            HookKind::Unlock => &[HookKind::Unlock],
            HookKind::Warning => &[HookKind::Warning],
        };
        Transition {
            hooks,
            state: "BLOCKED",
            remaining_minutes: 0,
            minutes_to_lock: 0,
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

    /// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
    fn ended(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // "pid (comm) state …": the state follows the last ')'.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        }
    }

    #[tokio::test]
    async fn a_hung_hook_is_killed_at_its_timeout_retried_and_does_not_hold_up_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let (pids, out) = (dir.path().join("pids"), dir.path().join("out"));
        let hooks = Hooks {
            // Hangs in a child process of the shell, which must be killed too.
            on_lock: Some(format!("sleep 600 & echo $! >> {}; wait", pids.display())),
            on_unlock: Some(format!("echo unlock >> {}", out.display())),
            timeout: Duration::from_millis(300),
            ..Hooks::default()
        };
        let (tx, rx) = watch::channel(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(hooks, rx, stop_rx));
        tx.send_replace(Some(transition(HookKind::Lock)));
        // Killed at the timeout and, as a failure, tried again.
        let started = wait_for_lines(&pids, 2).await;
        assert_eq!(started.len(), 2, "{started:?}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !ended(&started[0]) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the hook's sleep {} still runs",
                started[0]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tx.send_replace(Some(Transition {
            hooks: &[HookKind::Unlock],
            state: "ACTIVE",
            remaining_minutes: 10,
            minutes_to_lock: 10,
        }));
        assert_eq!(wait_for_lines(&out, 1).await, ["unlock"]);
        stop_tx.send_replace(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_waits_for_a_hung_hook_no_longer_than_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let started = dir.path().join("started");
        let hooks = Hooks {
            on_lock: Some(format!("echo x >> {}; sleep 600", started.display())),
            timeout: Duration::from_millis(500),
            ..Hooks::default()
        };
        let (tx, rx) = watch::channel(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(hooks, rx, stop_rx));
        tx.send_replace(Some(transition(HookKind::Lock)));
        assert_eq!(wait_for_lines(&started, 1).await.len(), 1);
        stop_tx.send_replace(true);
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the enforcer stopped within the hook timeout")
            .unwrap();
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
