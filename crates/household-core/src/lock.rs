//! Guardian locks.
//!
//! A lock covers the whole child (every device) or one device, until a given instant or
//! until someone unlocks. The newest lock event for a target replaces the previous one
//! (locking again "until 18:00" shortens or lengthens the lock). Unlocking the child
//! lifts every lock of the child, its devices' included; unlocking a device lifts only
//! that device's own lock. A lock whose `until` has passed is simply over — no event is
//! needed for it to expire (and a child-wide lock that expires leaves device locks be:
//! expiring is not a guardian's act).
//!
//! Why unlocking the child lifts device locks too: a guardian who unlocks a child means
//! "she may use her screens again". A device lock left behind — perhaps set by another
//! guardian, perhaps not shown on the screen at hand — would make that tap look broken.
//! Keeping one device locked is one more lock of that device afterwards. The API's
//! `UnlockRequest` documents the same rule.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::event::{Actor, DeviceId};

/// Furthest ahead a lock's `until` may lie, in days of 24 hours: far enough for "no
/// tablet until the end of the month", near enough that a typo in the year does not
/// lock a child out for good. `Projection::check_lock` enforces it, as does the API's
/// `LockRequest.until_unix_micros`.
pub const MAX_LOCK_DAYS: i64 = 30;

/// One lock as set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// When it was set.
    pub since: Timestamp,
    /// When it ends by itself; `None` means until unlocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// Why, shown on the child's lock screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who set it.
    pub by: Actor,
    /// Seq of the `Locked` event.
    pub seq: u64,
}

impl LockInfo {
    /// Whether the lock holds at `now`.
    pub fn holds_at(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// A device-level lock, as a status lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceLock {
    /// The locked device.
    pub device: DeviceId,
    /// The lock.
    pub lock: LockInfo,
}

/// The locks of one child.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locks {
    child: Option<LockInfo>,
    devices: BTreeMap<DeviceId, LockInfo>,
}

impl Locks {
    /// Record a lock of `device` (or of the whole child when `None`).
    pub fn lock(&mut self, device: Option<DeviceId>, info: LockInfo) {
        match device {
            None => self.child = Some(info),
            Some(device) => {
                self.devices.insert(device, info);
            }
        }
    }

    /// Lift the lock of `device`, or every lock of the child (device locks included)
    /// when `None`.
    pub fn unlock(&mut self, device: Option<&DeviceId>) {
        match device {
            None => {
                self.child = None;
                self.devices.clear();
            }
            Some(device) => {
                self.devices.remove(device);
            }
        }
    }

    /// Forget `device`'s own lock, as when the device is removed.
    pub fn forget_device(&mut self, device: &DeviceId) {
        self.devices.remove(device);
    }

    /// The child-wide lock in force at `now`.
    pub fn child_lock_at(&self, now: Timestamp) -> Option<&LockInfo> {
        self.child.as_ref().filter(|l| l.holds_at(now))
    }

    /// Device locks in force at `now`.
    pub fn device_locks_at(&self, now: Timestamp) -> Vec<DeviceLock> {
        self.devices
            .iter()
            .filter(|(_, l)| l.holds_at(now))
            .map(|(device, lock)| DeviceLock {
                device: device.clone(),
                lock: lock.clone(),
            })
            .collect()
    }

    /// Instants after `now` at which a lock in force ends by itself.
    pub fn ends_after(&self, now: Timestamp) -> impl Iterator<Item = Timestamp> + '_ {
        self.child
            .iter()
            .chain(self.devices.values())
            .filter_map(move |l| l.until.filter(|&until| until > now))
    }

    /// Forget locks that ended before `before`.
    pub fn forget_ended_before(&mut self, before: Timestamp) {
        if self.child.as_ref().is_some_and(|l| !l.holds_at(before)) {
            self.child = None;
        }
        self.devices.retain(|_, l| l.holds_at(before));
    }
}
