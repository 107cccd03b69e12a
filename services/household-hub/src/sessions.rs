//! Which agents hold a session now. One session per device: a new one replaces the old,
//! which ends with ABORTED. A revoked or removed device's session is ended the same way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use household_proto::v1;
use tokio::sync::oneshot;

/// Why a session was told to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// A newer session of the same device took over.
    Replaced,
    /// The device was removed or its credential revoked.
    Revoked,
}

struct Entry {
    id: u64,
    end: oneshot::Sender<EndReason>,
}

/// The live sessions, by device id, and the commands each device has not acknowledged.
#[derive(Default)]
pub struct Sessions {
    next_id: AtomicU64,
    live: Mutex<HashMap<String, Entry>>,
    /// Commands sent but not acknowledged, resent on the device's next session. Kept in
    /// memory only: the budget every session opens with carries the same locks and
    /// allowance, so a hub restart loses a notification, never a decision.
    unacked: Mutex<HashMap<String, Vec<v1::Command>>>,
    /// The clock offset each device's reports are corrected by (hub minus agent, µs),
    /// kept from session to session while new estimates stay within
    /// [`OFFSET_TOLERANCE_MICROS`] of it.
    offsets: Mutex<HashMap<String, i64>>,
}

/// How far a new estimate of a device's clock offset may stray from the one in use
/// before it replaces it.
///
/// An estimate taken at Hello is off by however long Hello took to arrive and be read:
/// milliseconds, or seconds on a loaded hub just restarted. Were every session to
/// correct by its own estimate, the usage intervals either side of a reconnection
/// would be shifted by different amounts, and whole seconds would be lost or counted
/// twice where they meet. A device's clock that is really off (set wrong, or moved by
/// a child) is off by more than this, and is corrected from its first session.
pub const OFFSET_TOLERANCE_MICROS: i64 = 2_000_000;

/// Most unacknowledged commands kept per device; the oldest go first.
const MAX_UNACKED_COMMANDS: usize = 64;

/// A registered session: its id and the signal that ends it.
pub struct Registration {
    pub id: u64,
    pub ended: oneshot::Receiver<EndReason>,
}

impl Sessions {
    /// Registers a new session for `device_id`, ending the one it replaces.
    pub fn open(&self, device_id: &str) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (end, ended) = oneshot::channel();
        let previous = self.lock().insert(device_id.to_owned(), Entry { id, end });
        if let Some(previous) = previous {
            let _ = previous.end.send(EndReason::Replaced);
        }
        Registration { id, ended }
    }

    /// Forgets session `id` of `device_id` if it is still the live one. Returns whether
    /// it was (a replaced session leaves the device online).
    pub fn close(&self, device_id: &str, id: u64) -> bool {
        let mut live = self.lock();
        if live.get(device_id).is_some_and(|e| e.id == id) {
            live.remove(device_id);
            true
        } else {
            false
        }
    }

    /// Ends the session of `device_id`, if there is one.
    pub fn end(&self, device_id: &str, reason: EndReason) {
        if let Some(entry) = self.lock().remove(device_id) {
            let _ = entry.end.send(reason);
        }
    }

    /// How many sessions are open.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Whether `device_id` holds a session.
    pub fn is_open(&self, device_id: &str) -> bool {
        self.lock().contains_key(device_id)
    }

    /// Remembers a command sent to `device_id` until it is acknowledged.
    pub fn remember_command(&self, device_id: &str, command: v1::Command) {
        let mut unacked = self.unacked.lock().unwrap_or_else(|p| p.into_inner());
        let commands = unacked.entry(device_id.to_owned()).or_default();
        if commands.len() >= MAX_UNACKED_COMMANDS {
            commands.remove(0);
        }
        commands.push(command);
    }

    /// Forgets an acknowledged command.
    pub fn acknowledge(&self, device_id: &str, command_id: &str) {
        let mut unacked = self.unacked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(commands) = unacked.get_mut(device_id) {
            commands.retain(|c| c.command_id != command_id);
        }
    }

    /// Commands `device_id` has not acknowledged, oldest first.
    pub fn unacked_commands(&self, device_id: &str) -> Vec<v1::Command> {
        let unacked = self.unacked.lock().unwrap_or_else(|p| p.into_inner());
        unacked.get(device_id).cloned().unwrap_or_default()
    }

    /// The offset to correct `device_id`'s reports by, given the estimate of a new
    /// session: the one in use (none at first) while the estimate stays within
    /// [`OFFSET_TOLERANCE_MICROS`] of it, else the estimate.
    pub fn settle_offset(&self, device_id: &str, estimate_micros: i64) -> i64 {
        let mut offsets = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        let in_use = offsets.entry(device_id.to_owned()).or_insert(0);
        if in_use.abs_diff(estimate_micros) > OFFSET_TOLERANCE_MICROS.unsigned_abs() {
            *in_use = estimate_micros;
        }
        *in_use
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_replaces_the_old_one() {
        let sessions = Sessions::default();
        let mut first = sessions.open("d-1");
        let second = sessions.open("d-1");
        assert_eq!(first.ended.try_recv(), Ok(EndReason::Replaced));
        assert!(
            !sessions.close("d-1", first.id),
            "the old session is not the live one"
        );
        assert!(sessions.is_open("d-1"));
        assert!(sessions.close("d-1", second.id));
        assert_eq!(sessions.count(), 0);
    }

    #[test]
    fn a_clock_offset_stays_put_until_an_estimate_strays_past_the_tolerance() {
        let sessions = Sessions::default();
        assert_eq!(
            sessions.settle_offset("d-1", 40_000),
            0,
            "latency, not skew"
        );
        assert_eq!(sessions.settle_offset("d-1", -1_900_000), 0);
        let skewed = 3_600_000_000;
        assert_eq!(sessions.settle_offset("d-1", skewed), skewed);
        assert_eq!(sessions.settle_offset("d-1", skewed + 150_000), skewed);
        assert_eq!(sessions.settle_offset("d-1", skewed - 2_000_000), skewed);
        assert_eq!(
            sessions.settle_offset("d-1", skewed - 2_000_001),
            skewed - 2_000_001
        );
        assert_eq!(
            sessions.settle_offset("d-2", 2_500_000),
            2_500_000,
            "per device"
        );
    }
}
