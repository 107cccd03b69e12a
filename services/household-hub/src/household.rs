//! The household as the event log says it is, folded in memory: children with their
//! projections (household-core), devices, guardians, the idempotency keys of recent
//! guardian calls and the outbox ids each agent instance has had applied.
//!
//! [`Household::apply`] is the only way anything here changes, and it takes logged
//! events: the start-up rebuild and the live writer run the same code, so what a
//! restart rebuilds is what was there before it.

use std::collections::{BTreeMap, HashMap};

use household_core::{ChildId, Policy, Projection, Status};
use household_proto::convert;
use household_proto::v1::{self, event::Payload};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

mod state;
pub use state::HouseholdState;

/// How long a guardian's idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

/// One child and the fold of their events.
pub struct ChildEntry {
    pub child: v1::Child,
    pub projection: Projection,
    /// Who wrote the policy in force, and when (for SetPolicy's stale-revision error).
    pub policy_updated_by: Option<v1::Actor>,
    pub policy_updated_unix_micros: i64,
    /// Every revision with the instant it took effect, oldest first, so a report can
    /// start from the policy in force on its first day.
    pub policy_history: Vec<(i64, Policy)>,
}

/// Where a time request came from, to route updates back to its device.
#[derive(Debug, Clone)]
pub struct RequestOrigin {
    pub child_id: String,
    pub device_id: String,
    pub origin: Option<v1::OutboxOrigin>,
}

/// What a guardian's idempotency key stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    pub request_sha256_hex: String,
    pub first_seq: u64,
    pub at_unix_micros: i64,
}

/// The folded household.
#[derive(Default)]
pub struct Household {
    last_seq: u64,
    children: BTreeMap<String, ChildEntry>,
    child_order: Vec<String>,
    devices: BTreeMap<String, v1::Device>,
    device_order: Vec<String>,
    guardians: BTreeMap<String, v1::Guardian>,
    guardian_order: Vec<String>,
    removed_devices: std::collections::HashSet<String>,
    requests: HashMap<String, RequestOrigin>,
    keys: HashMap<(String, String), KeyUse>,
    outbox_marks: HashMap<(String, String), u64>,
}

impl Household {
    /// The newest seq applied; 0 before any.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// A child not removed.
    pub fn child(&self, child_id: &str) -> Option<&ChildEntry> {
        self.children
            .get(child_id)
            .filter(|entry| entry.projection.removed_at().is_none())
    }

    /// A child ever added, removed or not (ForgetChild).
    pub fn child_ever(&self, child_id: &str) -> Option<&ChildEntry> {
        self.children.get(child_id)
    }

    /// Children not removed, in the order they were added.
    pub fn children(&self) -> impl Iterator<Item = &ChildEntry> {
        self.child_order.iter().filter_map(|id| self.child(id))
    }

    /// A device not removed.
    pub fn device(&self, device_id: &str) -> Option<&v1::Device> {
        self.devices.get(device_id)
    }

    /// Whether a device with this id was ever added (removed ones included).
    pub fn device_ever(&self, device_id: &str) -> bool {
        self.devices.contains_key(device_id) || self.removed_devices.contains(device_id)
    }

    /// Devices, in the order they were added; of one child if given.
    pub fn devices<'a>(
        &'a self,
        child_id: Option<&'a str>,
    ) -> impl Iterator<Item = &'a v1::Device> {
        self.device_order
            .iter()
            .filter_map(|id| self.devices.get(id))
            .filter(move |d| child_id.is_none_or(|c| d.child_id == c))
    }

    /// Guardians not revoked, in the order they were invited.
    pub fn guardians(&self) -> impl Iterator<Item = &v1::Guardian> {
        self.guardian_order
            .iter()
            .filter_map(|id| self.guardians.get(id))
    }

    /// A guardian's display name, or the id if unknown.
    pub fn guardian_name(&self, guardian_id: &str) -> String {
        self.guardians
            .get(guardian_id)
            .map_or_else(|| guardian_id.to_owned(), |g| g.display_name.clone())
    }

    /// Where a request came from.
    pub fn request(&self, request_id: &str) -> Option<&RequestOrigin> {
        self.requests.get(request_id)
    }

    /// What `guardian_id` used `key` for, if within the window.
    pub fn key_use(&self, guardian_id: &str, key: &str, now_unix_micros: i64) -> Option<&KeyUse> {
        self.keys
            .get(&(guardian_id.to_owned(), key.to_owned()))
            .filter(|k| now_unix_micros - k.at_unix_micros < IDEMPOTENCY_WINDOW_MICROS)
    }

    /// The highest outbox id applied for a device's agent instance; 0 if none.
    pub fn outbox_mark(&self, device_id: &str, instance_id: &str) -> u64 {
        self.outbox_marks
            .get(&(device_id.to_owned(), instance_id.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Raises the outbox mark of an instance without an event (a record refused for
    /// good counts as handled, so a resend is answered the same way).
    pub fn raise_outbox_mark(&mut self, device_id: &str, instance_id: &str, outbox_id: u64) {
        let mark = self
            .outbox_marks
            .entry((device_id.to_owned(), instance_id.to_owned()))
            .or_default();
        *mark = (*mark).max(outbox_id);
    }

    /// A child's status at `now`.
    pub fn status(&self, child_id: &str, now: Timestamp) -> Option<Status> {
        self.child(child_id).map(|c| c.projection.status_at(now))
    }

    /// A child's status in the API's shape.
    pub fn child_status(&self, child_id: &str, now: Timestamp) -> Option<v1::ChildStatus> {
        let entry = self.child(child_id)?;
        let status = entry.projection.status_at(now);
        let devices: Vec<_> = self.devices(Some(child_id)).collect();
        let infos: Vec<convert::DeviceInfo<'_>> = devices
            .iter()
            .map(|d| convert::DeviceInfo {
                device_id: &d.device_id,
                display_name: &d.display_name,
                online: d.online,
                last_seen_unix_micros: d.last_seen_unix_micros,
            })
            .collect();
        Some(convert::child_status_to_proto(
            &status,
            child_id,
            &entry.child.display_name,
            &infos,
            status.pending_requests.len() as u32,
            entry.projection.policy().revision,
            self.last_seq,
            now.as_microsecond(),
        ))
    }

    /// The child's policy in the API's shape.
    pub fn policy(&self, child_id: &str) -> Option<v1::Policy> {
        let entry = self.child(child_id)?;
        let policy = entry.projection.policy();
        Some(convert::policy_from_core(
            policy,
            policy.revision,
            entry.policy_updated_unix_micros,
            entry.policy_updated_by.clone(),
        ))
    }

    /// Applies one logged event. Events come in seq order; an older seq is ignored.
    pub fn apply(&mut self, event: &v1::Event) {
        if event.seq <= self.last_seq && self.last_seq != 0 {
            return;
        }
        self.last_seq = event.seq;
        self.note_keys_and_origin(event);
        if let Some(device) = self.devices.get_mut(&event.device_id) {
            let by_device = matches!(
                event.actor.as_ref().and_then(|a| a.kind.as_ref()),
                Some(v1::actor::Kind::DeviceId(id)) if *id == event.device_id
            );
            if by_device {
                device.last_seen_unix_micros = event.time_unix_micros;
            }
        }
        self.apply_registry_part(event);
        if event.child_id.is_empty() {
            return;
        }
        let Some(entry) = self.children.get_mut(&event.child_id) else {
            return;
        };
        match convert::event_to_core(event) {
            Ok(core_event) => {
                entry.projection.apply(&core_event);
            }
            Err(err) => {
                tracing::warn!(seq = event.seq, error = %err, "event not folded: it does not convert");
            }
        }
        if let Some(Payload::PolicyChanged(change)) = &event.payload {
            entry.policy_updated_by = event.actor.clone();
            entry.policy_updated_unix_micros = event.time_unix_micros;
            if let Some(policy) = &change.policy
                && let Ok(policy) = convert::policy_to_core(policy)
            {
                entry.policy_history.push((event.time_unix_micros, policy));
            }
        }
    }

    fn note_keys_and_origin(&mut self, event: &v1::Event) {
        if let (Some(key), Some(guardian)) = (&event.idempotency, guardian_of(event)) {
            self.keys
                .entry((guardian.to_owned(), key.key.clone()))
                .or_insert(KeyUse {
                    request_sha256_hex: key.request_sha256_hex.clone(),
                    first_seq: event.seq,
                    at_unix_micros: event.time_unix_micros,
                });
        }
        if let Some(origin) = &event.origin {
            self.raise_outbox_mark(&event.device_id, &origin.instance_id, origin.outbox_id);
        }
    }

    /// Forgets what live statuses no longer need, so memory stays flat however long
    /// the hub runs: idempotency keys older than their window, and each child's usage,
    /// grants and answered requests from before yesterday (reports read those from the
    /// log).
    pub fn forget_old(&mut self, now: Timestamp) {
        let now_unix_micros = now.as_microsecond();
        self.keys
            .retain(|_, k| now_unix_micros - k.at_unix_micros < IDEMPOTENCY_WINDOW_MICROS);
        for entry in self.children.values_mut() {
            let today = entry.projection.day_of(now);
            let yesterday = today.previous(entry.projection.zone());
            entry.projection.forget_before(yesterday.date);
        }
    }

    fn apply_registry_part(&mut self, event: &v1::Event) {
        let at = event.time_unix_micros;
        let Some(payload) = &event.payload else {
            return;
        };
        match payload {
            Payload::ChildAdded(added) => {
                let child_id = event.child_id.clone();
                let Ok(projection) = Projection::new(ChildId(child_id.clone()), Policy::default())
                else {
                    return;
                };
                self.child_order.push(child_id.clone());
                self.children.insert(
                    child_id.clone(),
                    ChildEntry {
                        child: v1::Child {
                            child_id,
                            display_name: added.display_name.clone(),
                            created_unix_micros: at,
                            device_ids: Vec::new(),
                        },
                        projection,
                        policy_updated_by: event.actor.clone(),
                        policy_updated_unix_micros: at,
                        policy_history: Vec::new(),
                    },
                );
            }
            Payload::ChildRenamed(renamed) => {
                if let Some(entry) = self.children.get_mut(&event.child_id) {
                    entry.child.display_name = renamed.display_name.clone();
                }
            }
            Payload::ChildRemoved(removed) => {
                self.child_order.retain(|id| *id != event.child_id);
                if removed.history_forgotten {
                    // The log keeps nothing else of the child, so neither does memory
                    // (nor any snapshot taken from it): a fold of the log would not
                    // know the child at all.
                    self.children.remove(&event.child_id);
                    self.requests.retain(|_, r| r.child_id != event.child_id);
                }
            }
            Payload::DeviceAdded(added) => {
                let device_id = event.device_id.clone();
                if let Some(entry) = self.children.get_mut(&event.child_id) {
                    entry.child.device_ids.push(device_id.clone());
                }
                let legacy = added.kind == v1::DeviceKind::LegacyCst as i32;
                self.device_order.push(device_id.clone());
                self.devices.insert(
                    device_id.clone(),
                    v1::Device {
                        device_id,
                        child_id: event.child_id.clone(),
                        display_name: added.display_name.clone(),
                        kind: added.kind,
                        enrolled: legacy,
                        created_unix_micros: at,
                        enrolled_unix_micros: if legacy { at } else { 0 },
                        legacy_address: added.legacy_address.clone(),
                        ..Default::default()
                    },
                );
            }
            Payload::DeviceEnrolled(enrolled) => {
                if let Some(device) = self.devices.get_mut(&event.device_id) {
                    device.enrolled = true;
                    device.enrolled_unix_micros = at;
                    device.platform = enrolled.platform.clone();
                }
            }
            Payload::DeviceOnline(online) => {
                if let Some(device) = self.devices.get_mut(&event.device_id) {
                    device.online = true;
                    device.last_seen_unix_micros = at;
                    device.software_version = online.software_version.clone();
                }
            }
            Payload::DeviceOffline(_) => {
                if let Some(device) = self.devices.get_mut(&event.device_id) {
                    device.online = false;
                    device.last_seen_unix_micros = at;
                }
            }
            Payload::DeviceRenamed(renamed) => {
                if let Some(device) = self.devices.get_mut(&event.device_id) {
                    device.display_name = renamed.display_name.clone();
                }
            }
            Payload::DeviceRemoved(_) => {
                self.devices.remove(&event.device_id);
                self.removed_devices.insert(event.device_id.clone());
                self.device_order.retain(|id| *id != event.device_id);
                if let Some(entry) = self.children.get_mut(&event.child_id) {
                    entry.child.device_ids.retain(|id| *id != event.device_id);
                }
            }
            // An invitation of another credential (a phone) of a guardian who exists
            // leaves them as they are.
            Payload::GuardianInvited(invited)
                if !self.guardians.contains_key(&invited.guardian_id) =>
            {
                self.guardian_order.push(invited.guardian_id.clone());
                self.guardians.insert(
                    invited.guardian_id.clone(),
                    v1::Guardian {
                        guardian_id: invited.guardian_id.clone(),
                        display_name: invited.display_name.clone(),
                        created_unix_micros: at,
                        enrolled: false,
                    },
                );
            }
            Payload::GuardianEnrolled(_) => {
                if let Some(guardian) = guardian_of(event).and_then(|g| self.guardians.get_mut(g)) {
                    guardian.enrolled = true;
                }
            }
            Payload::IdentityRevoked(revoked)
                if revoked.credential_id.is_empty()
                    && revoked.role == v1::Role::Guardian as i32 =>
            {
                self.guardians.remove(&revoked.identity_id);
                self.guardian_order.retain(|id| *id != revoked.identity_id);
            }
            Payload::TimeRequested(requested) => {
                self.requests.insert(
                    requested.request_id.clone(),
                    RequestOrigin {
                        child_id: event.child_id.clone(),
                        device_id: event.device_id.clone(),
                        origin: event.origin.clone(),
                    },
                );
            }
            _ => {}
        }
    }

    /// Pending requests of the given children (all when empty), in the API's shape.
    pub fn pending_requests(&self, now: Timestamp) -> Vec<v1::TimeRequest> {
        let mut out = Vec::new();
        for entry in self.children() {
            for request in entry.projection.requests() {
                if request.state_at(now) == household_core::RequestState::Pending {
                    out.push(self.request_to_proto(&entry.child.child_id, request, now));
                }
            }
        }
        out.sort_by_key(|r| r.requested_unix_micros);
        out
    }

    /// One request in the API's shape, with its device and origin.
    pub fn request_to_proto(
        &self,
        child_id: &str,
        request: &household_core::TimeRequest,
        now: Timestamp,
    ) -> v1::TimeRequest {
        let origin = self.requests.get(&request.id.0);
        let device_id = origin.map_or("", |o| o.device_id.as_str());
        let mut out = convert::time_request_to_proto(request, child_id, device_id, now);
        out.origin = origin.and_then(|o| o.origin.clone());
        out
    }
}

/// The guardian an event's actor names, if it is one.
pub fn guardian_of(event: &v1::Event) -> Option<&str> {
    match event.actor.as_ref()?.kind.as_ref()? {
        v1::actor::Kind::GuardianId(id) => Some(id),
        _ => None,
    }
}
