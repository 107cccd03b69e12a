//! What the hub shows of a status: a child's status for guardians, a device's budget
//! for its agent, a request for more time, a lock, the credits left.
//!
//! A core [`Status`] knows the rules' side (state, time, locks, per-device use); the
//! registry's side (names, which devices a child has, whether they are online) and the
//! log's (`as_of_seq`) come from the hub as arguments.

use household_core::{
    Answer, CreditsLeft, DeviceId, HeldBudget, LockInfo, RequestState, Status, TimeRequest,
};
use jiff::Timestamp;

use super::error::ConvertError;
use super::policy::policy_to_core;
use super::{
    actor_to_core, actor_to_proto, date_to_core, date_to_proto, saturating_u32, state_to_proto,
    timestamp_to_core,
};
use crate::v1;

/// What the hub's registry knows of one device of the child, for
/// [`child_status_to_proto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo<'a> {
    /// The device's id.
    pub device_id: &'a str,
    /// Its display name.
    pub display_name: &'a str,
    /// Whether it holds a session (or a legacy device answers).
    pub online: bool,
    /// When the hub last heard from it; 0 if never.
    pub last_seen_unix_micros: i64,
}

/// The API's lock for a core lock in force (`locked` is always true: a status lists only
/// locks that hold).
pub fn lock_to_proto(lock: &LockInfo) -> v1::LockInfo {
    v1::LockInfo {
        locked: true,
        until_unix_micros: lock.until.map(|t| t.as_microsecond()),
        locked_by: Some(actor_to_proto(&lock.by)),
        locked_unix_micros: lock.since.as_microsecond(),
        reason: lock.reason.clone().unwrap_or_default(),
    }
}

/// The API's credit counts for the credits left today.
pub fn credits_to_proto(credits: CreditsLeft) -> v1::ExtensionCredits {
    v1::ExtensionCredits {
        five_minute_count: saturating_u32(credits.five_minute),
        ten_minute_count: saturating_u32(credits.ten_minute),
    }
}

/// The lock of `device` alone in `status`, if one holds.
fn device_lock(status: &Status, device: &DeviceId) -> Option<v1::LockInfo> {
    status
        .device_locks
        .iter()
        .find(|l| &l.device == device)
        .map(|l| lock_to_proto(&l.lock))
}

/// A child's status as guardians see it, with one entry per device in `devices` (the
/// registry's list, in its order): each device's state (`Status::state_on_device`, so
/// LOCKED if that device alone is locked), its use today from the status's per-device
/// usage (0 if it reported none), and its own lock.
///
/// `allowance_seconds` is the day's credit (the allowance after grants, approvals and
/// credits), as the API defines it.
#[allow(clippy::too_many_arguments)] // The API's fields, each from a different owner.
pub fn child_status_to_proto(
    status: &Status,
    child_id: &str,
    display_name: &str,
    devices: &[DeviceInfo<'_>],
    pending_request_count: u32,
    policy_revision: u64,
    as_of_seq: u64,
    computed_unix_micros: i64,
) -> v1::ChildStatus {
    let devices = devices
        .iter()
        .map(|info| {
            let device = DeviceId::from(info.device_id);
            v1::DeviceStatus {
                device_id: info.device_id.to_owned(),
                display_name: info.display_name.to_owned(),
                state: state_to_proto(status.state_on_device(&device)).into(),
                online: info.online,
                last_seen_unix_micros: info.last_seen_unix_micros,
                used_seconds_today: status
                    .used_by_device
                    .iter()
                    .find(|u| u.device == device)
                    .map_or(0, |u| u.used_seconds),
                lock: device_lock(status, &device),
            }
        })
        .collect();
    v1::ChildStatus {
        child_id: child_id.to_owned(),
        display_name: display_name.to_owned(),
        state: state_to_proto(status.state).into(),
        day: Some(date_to_proto(status.day.date)),
        allowance_seconds: status.credit_seconds,
        used_seconds: status.used_seconds,
        remaining_seconds: status.remaining_seconds,
        grace_remaining_seconds: status.grace_remaining_seconds,
        credits_left: Some(credits_to_proto(status.credits_left)),
        lock: status.lock.as_ref().map(lock_to_proto),
        next_change_unix_micros: status.next_change_at.map(|t| t.as_microsecond()),
        devices,
        pending_request_count,
        policy_revision,
        as_of_seq,
        computed_unix_micros,
        unlocked_until_unix_micros: status.unlock.as_ref().map(|u| u.until.as_microsecond()),
    }
}

/// The budget for one device of the child: the status as that device must enforce it
/// (its state is `Status::state_on_device`), with the child's and the device's own
/// lock, and `policy` (as the hub serves it, revision included) to go on enforcing
/// offline.
pub fn budget_to_proto(
    status: &Status,
    device_id: &str,
    policy: v1::Policy,
    as_of_seq: u64,
    computed_unix_micros: i64,
) -> v1::Budget {
    let device = DeviceId::from(device_id);
    v1::Budget {
        day: Some(date_to_proto(status.day.date)),
        state: state_to_proto(status.state_on_device(&device)).into(),
        allowance_seconds: status.credit_seconds,
        used_seconds: status.used_seconds,
        remaining_seconds: status.remaining_seconds,
        grace_remaining_seconds: status.grace_remaining_seconds,
        credits_left: Some(credits_to_proto(status.credits_left)),
        policy: Some(policy),
        child_lock: status.lock.as_ref().map(lock_to_proto),
        device_lock: device_lock(status, &device),
        next_change_unix_micros: status.next_change_at.map(|t| t.as_microsecond()),
        as_of_seq,
        computed_unix_micros,
        unlocked_until_unix_micros: status.unlock.as_ref().map(|u| u.until.as_microsecond()),
    }
}

/// The budget an agent received, in the rules' own types, for the child `child_id` of
/// its Welcome. Nothing in it is trusted less than the hub that sent it; it is checked
/// all the same (a budget with no day or policy, or a policy the rules refuse, is not
/// enforced), since the device keeps enforcing the last good one.
pub fn budget_to_core(budget: &v1::Budget, child_id: &str) -> Result<HeldBudget, ConvertError> {
    let lock =
        |lock: &Option<v1::LockInfo>, field: &str| -> Result<Option<LockInfo>, ConvertError> {
            lock.as_ref()
                .filter(|l| l.locked)
                .map(|l| {
                    Ok(LockInfo {
                        since: timestamp_to_core(
                            l.locked_unix_micros,
                            &format!("{field}.locked_unix_micros"),
                        )?,
                        until: l
                            .until_unix_micros
                            .map(|u| timestamp_to_core(u, &format!("{field}.until_unix_micros")))
                            .transpose()?,
                        reason: (!l.reason.is_empty()).then(|| l.reason.clone()),
                        by: actor_to_core(l.locked_by.as_ref(), &format!("{field}.locked_by"))
                            .unwrap_or(household_core::Actor::System),
                        seq: budget.as_of_seq,
                    })
                })
                .transpose()
        };
    let credits = budget.credits_left.unwrap_or_default();
    Ok(HeldBudget {
        child: household_core::ChildId::from(child_id),
        day: date_to_core(
            budget
                .day
                .as_ref()
                .ok_or_else(|| ConvertError::missing("day"))?,
            "day",
        )?,
        computed_at: timestamp_to_core(budget.computed_unix_micros, "computed_unix_micros")?,
        as_of_seq: budget.as_of_seq,
        allowance_seconds: budget.allowance_seconds,
        used_seconds: budget.used_seconds,
        remaining_seconds: budget.remaining_seconds.max(0),
        grace_remaining_seconds: budget.grace_remaining_seconds.max(0),
        credits_left: CreditsLeft {
            five_minute: i64::from(credits.five_minute_count),
            ten_minute: i64::from(credits.ten_minute_count),
        },
        policy: policy_to_core(
            budget
                .policy
                .as_ref()
                .ok_or_else(|| ConvertError::missing("policy"))?,
        )
        .map_err(|e| e.within("policy"))?,
        child_lock: lock(&budget.child_lock, "child_lock")?,
        device_lock: lock(&budget.device_lock, "device_lock")?,
        unlocked_until: budget
            .unlocked_until_unix_micros
            .map(|u| timestamp_to_core(u, "unlocked_until_unix_micros"))
            .transpose()?,
    })
}

/// A request for more time as the API shows it at `now`: PENDING, APPROVED, DENIED or
/// EXPIRED (`TimeRequest::state_at`), with who answered, when, and the minutes granted.
///
/// `requested_unix_micros` is when the child asked and `day` the day the request belongs
/// to. Core keeps neither the guardian's note nor the agent's outbox origin, so
/// `resolution_note` is empty and `origin` unset: the hub fills both from its log.
pub fn time_request_to_proto(
    request: &TimeRequest,
    child_id: &str,
    device_id: &str,
    now: Timestamp,
) -> v1::TimeRequest {
    let status = match request.state_at(now) {
        RequestState::Pending => v1::TimeRequestStatus::Pending,
        RequestState::Answered {
            answer: Answer::Approved { .. },
        } => v1::TimeRequestStatus::Approved,
        RequestState::Answered {
            answer: Answer::Denied,
        } => v1::TimeRequestStatus::Denied,
        RequestState::Expired => v1::TimeRequestStatus::Expired,
    };
    let resolution = request.resolution.as_ref();
    v1::TimeRequest {
        request_id: request.id.0.clone(),
        child_id: child_id.to_owned(),
        device_id: device_id.to_owned(),
        minutes: saturating_u32(request.minutes),
        note: request.note.clone().unwrap_or_default(),
        requested_unix_micros: request.requested_at.as_microsecond(),
        day: Some(date_to_proto(request.day)),
        status: status.into(),
        resolved_by: resolution.map(|r| actor_to_proto(&r.by)),
        resolved_unix_micros: resolution.map_or(0, |r| r.at.as_microsecond()),
        granted_minutes: match resolution.map(|r| r.answer) {
            Some(Answer::Approved { minutes }) => saturating_u32(minutes),
            _ => 0,
        },
        resolution_note: String::new(),
        origin: None,
    }
}
