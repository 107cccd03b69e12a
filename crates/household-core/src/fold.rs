//! The fold from events to a child's status.
//!
//! A [`Projection`] holds what the events of one child have established — usage
//! intervals, grants, locks, requests, the policy — and answers "what is the status at
//! `now`?" ([`Projection::status_at`], in [`crate::status`]). Events are applied one at
//! a time in `seq` order, so the hub can keep a projection live and the agent can rebuild
//! one from its own record; from scratch and incrementally are the same code path.
//!
//! Applying is deliberately forgiving: an event that the rules would have refused (a
//! second answer to a request, a credit beyond the day's count, an invalid policy)
//! changes nothing and says why in the [`ApplyOutcome`]. The `check_*` and
//! [`Projection::resolve_request`] functions make the same decisions *before* an event
//! is written, so a service can refuse with a typed error instead.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::error::{CreditRefusal, InputError, PolicyChangeError, RequestRefusal};
use crate::event::{Answer, ChildId, CreditSize, DeviceId, Event, EventKind, RequestId};
use crate::grant::{Grant, GrantSource, check_grant_minutes, day_credit, minutes_to_seconds};
use crate::lock::{LockInfo, Locks, MAX_LOCK_DAYS};
use crate::policy::Policy;
use crate::request::{Resolution, TimeRequest};
use crate::state::ChildState;
use crate::time::{LocalDay, unix_seconds, zone_named};
use crate::unlock::{MAX_UNLOCK_HOURS, UnlockUntil};
use crate::usage::UsageSet;

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The event is now part of the projection.
    Applied,
    /// The event's seq is not after the last applied one; it was already seen.
    Stale { last_seq: u64 },
    /// The event was consumed (its seq counts as seen) but changed nothing.
    Ignored(Ignored),
}

/// Why an event changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// It concerns another child.
    OtherChild { child: ChildId },
    /// A usage interval that ends before or where it starts.
    EmptyUsage,
    /// A grant or request with minutes out of range.
    InvalidMinutes(InputError),
    /// A policy that does not validate; the previous policy stays.
    InvalidPolicy(InputError),
    /// An unlock the rules refuse (an unlock-until with a device target); no lock is
    /// lifted either.
    InvalidUnlock(InputError),
    /// A second request with an id already used; the first stays.
    DuplicateRequest { id: RequestId },
    /// An answer the request rules refuse (second answer, expired, unknown).
    Request(RequestRefusal),
    /// A credit spent beyond the day's count.
    Credit(CreditRefusal),
    /// The child was removed at `at`; nothing applies after that.
    ChildRemoved { at: Timestamp },
}

/// What is known about one device's presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePresence {
    /// The device.
    pub device: DeviceId,
    /// Whether it is connected, as far as the events say.
    pub online: bool,
    /// Time of the last event about it.
    pub last_seen: Timestamp,
}

/// Everything the events of one child have established; see the module docs.
///
/// It serializes (serde) so that a service can keep a snapshot of it and apply only the
/// events after the snapshot's seq at start; the time zone is resolved again from the
/// policy when it is read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "ProjectionState", try_from = "ProjectionState")]
pub struct Projection {
    pub(crate) child: ChildId,
    pub(crate) policy: Policy,
    pub(crate) zone: TimeZone,
    pub(crate) last_seq: Option<u64>,
    /// Union of all devices' usage: what the child's day is charged.
    pub(crate) usage: UsageSet,
    /// Each device's own usage, for per-device reports only.
    pub(crate) usage_by_device: BTreeMap<DeviceId, UsageSet>,
    /// Grants keyed by (instant, seq): the order they apply in.
    pub(crate) grants: BTreeMap<(i64, u64), Grant>,
    pub(crate) locks: Locks,
    /// The latest unlock-until of the child, until a child lock ends it (see
    /// [`crate::unlock`]); kept after it ran out until forgotten.
    pub(crate) unlock: Option<UnlockUntil>,
    pub(crate) requests: BTreeMap<RequestId, TimeRequest>,
    pub(crate) devices: BTreeMap<DeviceId, DevicePresence>,
    /// The latest policy change that found the child with time left (Unix seconds).
    /// If that change used the time up, the grace period starts there, not at the
    /// (earlier) moment usage passed the new, lower allowance.
    pub(crate) exhaustion_floor_second: Option<i64>,
    /// When the child was removed; no event applies after that.
    pub(crate) removed_at: Option<Timestamp>,
}

/// The serialized form of a [`Projection`]: every field but the time zone (named by
/// the policy), and the grants as a list, since their keys are pairs.
#[derive(Serialize, Deserialize)]
struct ProjectionState {
    child: ChildId,
    policy: Policy,
    last_seq: Option<u64>,
    usage: UsageSet,
    usage_by_device: BTreeMap<DeviceId, UsageSet>,
    grants: Vec<((i64, u64), Grant)>,
    locks: Locks,
    unlock: Option<UnlockUntil>,
    requests: BTreeMap<RequestId, TimeRequest>,
    devices: BTreeMap<DeviceId, DevicePresence>,
    exhaustion_floor_second: Option<i64>,
    removed_at: Option<Timestamp>,
}

impl From<Projection> for ProjectionState {
    fn from(p: Projection) -> ProjectionState {
        ProjectionState {
            child: p.child,
            policy: p.policy,
            last_seq: p.last_seq,
            usage: p.usage,
            usage_by_device: p.usage_by_device,
            grants: p.grants.into_iter().collect(),
            locks: p.locks,
            unlock: p.unlock,
            requests: p.requests,
            devices: p.devices,
            exhaustion_floor_second: p.exhaustion_floor_second,
            removed_at: p.removed_at,
        }
    }
}

impl TryFrom<ProjectionState> for Projection {
    type Error = InputError;

    fn try_from(s: ProjectionState) -> Result<Projection, InputError> {
        let zone = zone_named(&s.policy.time_zone)?;
        Ok(Projection {
            child: s.child,
            policy: s.policy,
            zone,
            last_seq: s.last_seq,
            usage: s.usage,
            usage_by_device: s.usage_by_device,
            grants: s.grants.into_iter().collect(),
            locks: s.locks,
            unlock: s.unlock,
            requests: s.requests,
            devices: s.devices,
            exhaustion_floor_second: s.exhaustion_floor_second,
            removed_at: s.removed_at,
        })
    }
}

impl Projection {
    /// A projection with no events yet, under `policy` (validated here).
    pub fn new(child: ChildId, policy: Policy) -> Result<Projection, InputError> {
        policy.validate()?;
        let zone = zone_named(&policy.time_zone)?;
        Ok(Projection {
            child,
            policy,
            zone,
            last_seq: None,
            usage: UsageSet::new(),
            usage_by_device: BTreeMap::new(),
            grants: BTreeMap::new(),
            locks: Locks::default(),
            unlock: None,
            requests: BTreeMap::new(),
            devices: BTreeMap::new(),
            exhaustion_floor_second: None,
            removed_at: None,
        })
    }

    /// Build a projection from scratch by applying `events` in order.
    pub fn from_events<'a>(
        child: ChildId,
        policy: Policy,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<Projection, InputError> {
        let mut projection = Projection::new(child, policy)?;
        for event in events {
            projection.apply(event);
        }
        Ok(projection)
    }

    /// The child this projection is about.
    pub fn child(&self) -> &ChildId {
        &self.child
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The household zone of the policy in force.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// When the child was removed, if a `ChildRemoved` event was applied.
    pub fn removed_at(&self) -> Option<Timestamp> {
        self.removed_at
    }

    /// The seq of the last event applied or ignored, `None` before the first.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Every request still remembered, answered or not.
    pub fn requests(&self) -> impl Iterator<Item = &TimeRequest> {
        self.requests.values()
    }

    /// One request by id.
    pub fn request(&self, id: &RequestId) -> Option<&TimeRequest> {
        self.requests.get(id)
    }

    /// The union of usage of all devices.
    pub fn usage(&self) -> &UsageSet {
        &self.usage
    }

    /// The local day containing `at`.
    pub fn day_of(&self, at: Timestamp) -> LocalDay {
        LocalDay::containing(unix_seconds(at), &self.zone)
    }

    /// Apply one event. Events must come in increasing `seq`; an event whose seq is not
    /// after the last one is reported [`ApplyOutcome::Stale`] and skipped, so replaying
    /// an overlap (snapshot plus log tail) is harmless.
    pub fn apply(&mut self, event: &Event) -> ApplyOutcome {
        if event.child != self.child {
            return ApplyOutcome::Ignored(Ignored::OtherChild {
                child: event.child.clone(),
            });
        }
        if let Some(last_seq) = self.last_seq
            && event.seq <= last_seq
        {
            return ApplyOutcome::Stale { last_seq };
        }
        self.last_seq = Some(event.seq);
        if let Some(at) = self.removed_at {
            return ApplyOutcome::Ignored(Ignored::ChildRemoved { at });
        }
        match self.apply_kind(event) {
            Ok(()) => ApplyOutcome::Applied,
            Err(why) => ApplyOutcome::Ignored(why),
        }
    }

    fn apply_kind(&mut self, event: &Event) -> Result<(), Ignored> {
        let at_second = unix_seconds(event.at);
        match &event.kind {
            EventKind::UsageReported { start, end } => {
                let (start, end) = (unix_seconds(*start), unix_seconds(*end));
                if end <= start {
                    return Err(Ignored::EmptyUsage);
                }
                self.usage.insert(start, end);
                if let Some(device) = &event.device {
                    self.usage_by_device
                        .entry(device.clone())
                        .or_default()
                        .insert(start, end);
                }
            }
            EventKind::TimeGranted {
                minutes,
                granted_at,
            } => {
                let minutes = check_grant_minutes(*minutes).map_err(Ignored::InvalidMinutes)?;
                let at = granted_at.unwrap_or(event.at);
                self.add_grant(event, at, minutes, GrantSource::Guardian);
            }
            EventKind::Locked {
                device,
                until,
                reason,
            } => {
                let info = LockInfo {
                    since: event.at,
                    until: *until,
                    reason: reason.clone(),
                    by: event.actor.clone(),
                    seq: event.seq,
                };
                // The newest act about the whole child wins: a lock ends an unlock-until.
                if device.is_none() {
                    self.unlock = None;
                }
                self.locks.lock(device.clone(), info);
            }
            EventKind::Unlocked { device, until } => {
                if let (Some(_), Some(_)) = (device, until) {
                    return Err(Ignored::InvalidUnlock(until_needs_child_target()));
                }
                self.locks.unlock(device.as_ref());
                if let Some(until) = until {
                    self.unlock = Some(UnlockUntil {
                        since: event.at,
                        until: *until,
                        by: event.actor.clone(),
                        seq: event.seq,
                    });
                }
            }
            EventKind::PolicyChanged { policy } => {
                policy.validate().map_err(Ignored::InvalidPolicy)?;
                let zone = zone_named(&policy.time_zone).map_err(Ignored::InvalidPolicy)?;
                let day = LocalDay::containing(at_second, &self.zone);
                if self.credit_of_day(&day, at_second)
                    > self.usage.seconds_between(day.start_second, at_second)
                {
                    self.exhaustion_floor_second = Some(at_second);
                }
                self.policy = policy.clone();
                self.zone = zone;
            }
            EventKind::TimeRequested {
                request_id,
                minutes,
                note,
                requested_at,
            } => {
                check_grant_minutes(*minutes).map_err(Ignored::InvalidMinutes)?;
                if self.requests.contains_key(request_id) {
                    return Err(Ignored::DuplicateRequest {
                        id: request_id.clone(),
                    });
                }
                // The request belongs to the day the child asked on; an instant after
                // the event's own time cannot be when they asked.
                let asked_at = requested_at.map_or(event.at, |at| at.min(event.at));
                let day = LocalDay::containing(unix_seconds(asked_at), &self.zone);
                self.requests.insert(
                    request_id.clone(),
                    TimeRequest {
                        id: request_id.clone(),
                        minutes: *minutes,
                        note: note.clone(),
                        requested_at: asked_at,
                        day: day.date,
                        requested_by: event.actor.clone(),
                        seq: event.seq,
                        expires_at: day.end(),
                        resolution: None,
                    },
                );
            }
            EventKind::RequestResolved { request_id, answer } => {
                let request = self.requests.get_mut(request_id).ok_or_else(|| {
                    Ignored::Request(RequestRefusal::Unknown {
                        id: request_id.clone(),
                    })
                })?;
                request
                    .check_answer(*answer, event.at)
                    .map_err(Ignored::Request)?;
                request.resolution = Some(Resolution {
                    answer: *answer,
                    at: event.at,
                    by: event.actor.clone(),
                    seq: event.seq,
                });
                if let Answer::Approved { minutes } = *answer {
                    let source = GrantSource::Request {
                        request_id: request_id.clone(),
                    };
                    self.add_grant(event, event.at, minutes, source);
                }
            }
            EventKind::ExtensionCreditSpent { size, spent_at } => {
                let at = spent_at.unwrap_or(event.at);
                let day = LocalDay::containing(unix_seconds(at), &self.zone);
                self.credit_left(&day, *size).map_err(Ignored::Credit)?;
                self.add_grant(
                    event,
                    at,
                    size.minutes(),
                    GrantSource::Credit { size: *size },
                );
            }
            EventKind::DeviceEnrolled { device } | EventKind::DeviceOnline { device } => {
                self.set_presence(device, true, event.at);
            }
            EventKind::DeviceOffline { device } => self.set_presence(device, false, event.at),
            // Kept in the log for audit; its effect is a separate grant or lock event.
            EventKind::LegacyCommand { .. } => {}
            EventKind::ChildRemoved { .. } => self.removed_at = Some(event.at),
            EventKind::DeviceRemoved { device } => {
                self.locks.forget_device(device);
                self.devices.remove(device);
            }
            // The registry's business; no status depends on them.
            EventKind::ChildAdded { .. }
            | EventKind::ChildRenamed { .. }
            | EventKind::DeviceAdded { .. }
            | EventKind::DeviceRenamed { .. }
            | EventKind::GuardianEnrolled { .. }
            | EventKind::GuardianInvited { .. }
            | EventKind::DeviceTrouble { .. }
            | EventKind::IdentityRevoked { .. } => {}
        }
        Ok(())
    }

    /// Record a grant of `minutes` that took effect at `at` (the event's time, or the
    /// earlier instant a device applied it).
    fn add_grant(&mut self, event: &Event, at: Timestamp, minutes: i64, source: GrantSource) {
        let at_second = unix_seconds(at);
        self.grants.insert(
            (at_second, event.seq),
            Grant {
                at_second,
                seq: event.seq,
                seconds: minutes_to_seconds(minutes),
                source,
            },
        );
    }

    fn set_presence(&mut self, device: &DeviceId, online: bool, at: Timestamp) {
        self.devices.insert(
            device.clone(),
            DevicePresence {
                device: device.clone(),
                online,
                last_seen: at,
            },
        );
    }

    /// The grants made on `day`, in the order they apply.
    pub(crate) fn grants_on(&self, day: &LocalDay) -> impl Iterator<Item = &Grant> {
        self.grants
            .range((day.start_second, 0)..(day.end_second, 0))
            .map(|(_, g)| g)
    }

    /// The day's credit (allowance after grants) counted up to `now_second`.
    pub(crate) fn credit_of_day(&self, day: &LocalDay, now_second: i64) -> i64 {
        let allowance = minutes_to_seconds(self.policy.allowance_minutes(day.date));
        day_credit(
            allowance,
            self.grants_on(day),
            &self.usage,
            day.start_second,
            now_second,
        )
    }

    /// Credits of `size` spent on `day`.
    pub(crate) fn credits_spent(&self, day: &LocalDay, size: CreditSize) -> i64 {
        self.grants_on(day)
            .filter(|g| g.source == GrantSource::Credit { size })
            .count() as i64
    }

    /// Credits of `size` the policy allows per day.
    pub(crate) fn credits_allowed(&self, size: CreditSize) -> i64 {
        match size {
            CreditSize::FiveMinute => self.policy.extension_credits_per_day.five_minute_count,
            CreditSize::TenMinute => self.policy.extension_credits_per_day.ten_minute_count,
        }
    }

    /// How many credits of `size` are left on `day`, or why none are.
    fn credit_left(&self, day: &LocalDay, size: CreditSize) -> Result<i64, CreditRefusal> {
        let allowed = self.credits_allowed(size);
        let left = allowed - self.credits_spent(day, size);
        if left > 0 {
            Ok(left)
        } else {
            Err(CreditRefusal::NoneLeft {
                size,
                date: day.date,
                allowed,
            })
        }
    }

    /// Decide a guardian's "extend by `minutes`": the event to record, or the typed error.
    /// The grant takes effect when the event is logged (`granted_at` is `None`); a
    /// service logging an extension a device applied earlier sets `granted_at`.
    pub fn check_grant(&self, minutes: i64) -> Result<EventKind, InputError> {
        Ok(EventKind::TimeGranted {
            minutes: check_grant_minutes(minutes)?,
            granted_at: None,
        })
    }

    /// Decide a lock of `device` (or the whole child) until `until`: an end, if given,
    /// must be after `now` and at most [`MAX_LOCK_DAYS`] (of 24 hours) later. Errors name
    /// the API's field, `until_unix_micros`. The returned event has no reason; set one on
    /// it if given.
    pub fn check_lock(
        &self,
        device: Option<DeviceId>,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<EventKind, InputError> {
        if let Some(until) = until {
            check_until(until, now, MAX_LOCK_DAYS * 24)?;
        }
        Ok(EventKind::Locked {
            device,
            until,
            reason: None,
        })
    }

    /// Decide an unlock of `device`, or of the whole child when `None`, and with `until`
    /// an unlock-until (see [`crate::unlock`]): `until` must be after `now`, at most
    /// [`MAX_UNLOCK_HOURS`] later, and comes only with the whole child, since downtime
    /// and the allowance are the child's. Errors name the API's field,
    /// `until_unix_micros`.
    ///
    /// Whether a plain unlock would change anything (the API logs nothing then) is
    /// [`Projection::unlock_changes_anything`].
    pub fn check_unlock(
        &self,
        device: Option<&DeviceId>,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<EventKind, InputError> {
        if let Some(until) = until {
            if device.is_some() {
                return Err(until_needs_child_target());
            }
            check_until(until, now, MAX_UNLOCK_HOURS)?;
        }
        Ok(EventKind::Unlocked {
            device: device.cloned(),
            until,
        })
    }

    /// Whether an unlock of `device` (or of the whole child when `None`) with `until`
    /// would change anything at `now`: it sets an unlock-until, or a lock it lifts is in
    /// force. An expired lock needs no unlock, and a plain unlock leaves an unlock-until
    /// alone, so neither counts.
    pub fn unlock_changes_anything(
        &self,
        device: Option<&DeviceId>,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> bool {
        if until.is_some() {
            return true;
        }
        let device_locks = self.locks.device_locks_at(now);
        match device {
            None => self.locks.child_lock_at(now).is_some() || !device_locks.is_empty(),
            Some(device) => device_locks.iter().any(|l| &l.device == device),
        }
    }

    /// Decide a request for `minutes` more (1..=1440), made at `requested_at` if that
    /// was before the event is logged (an agent's offline outbox; `None`: when logged).
    /// The request belongs to the day of that instant and expires at its end, so one
    /// made yesterday is logged already expired: the agent learns so, and no guardian is
    /// asked for time on a day that is over.
    pub fn check_request(
        &self,
        request_id: RequestId,
        minutes: i64,
        note: Option<String>,
        requested_at: Option<Timestamp>,
    ) -> Result<EventKind, InputError> {
        Ok(EventKind::TimeRequested {
            request_id,
            minutes: check_grant_minutes(minutes)?,
            note,
            requested_at,
        })
    }

    /// Decide whether the child may spend a credit of `size` at `now`: refused when
    /// today's credits of that size are spent, or while LOCKED or in DOWNTIME (a credit
    /// extends time; it does not lift a lock or a bedtime). The event carries
    /// `spent_at: Some(now)`, so it counts from `now` however late it is logged.
    pub fn check_credit_spend(
        &self,
        size: CreditSize,
        now: Timestamp,
    ) -> Result<EventKind, CreditRefusal> {
        let status = self.status_at(now);
        if matches!(status.state, ChildState::Locked | ChildState::Downtime) {
            return Err(CreditRefusal::NotNow {
                state: status.state,
            });
        }
        self.credit_left(&status.day, size)?;
        Ok(EventKind::ExtensionCreditSpent {
            size,
            spent_at: Some(now),
        })
    }

    /// Decide a guardian's answer to request `id` at `now`: the event to record, or why
    /// not (unknown, already answered — the first answer stands — expired at the end of
    /// its day, or an approval with minutes outside 1..=1440).
    ///
    /// A second answer is always refused, so nothing is granted twice. For the API's
    /// `already_resolved`, [`RequestRefusal::is_repeat`] tells a repeat of the first
    /// answer (the same approval with the same minutes, or a second denial: report
    /// success, log nothing) from a different answer (refuse it).
    pub fn resolve_request(
        &self,
        id: &RequestId,
        answer: Answer,
        now: Timestamp,
    ) -> Result<EventKind, RequestRefusal> {
        let request = self
            .requests
            .get(id)
            .ok_or_else(|| RequestRefusal::Unknown { id: id.clone() })?;
        request.check_answer(answer, now)?;
        Ok(EventKind::RequestResolved {
            request_id: id.clone(),
            answer,
        })
    }

    /// Decide a policy change made against `expected_revision` (if the caller knows
    /// which revision it edited): validated, and given the next revision number.
    pub fn check_policy_change(
        &self,
        mut policy: Policy,
        expected_revision: Option<u64>,
    ) -> Result<Policy, PolicyChangeError> {
        let current = self.policy.revision;
        if let Some(expected) = expected_revision
            && expected != current
        {
            return Err(PolicyChangeError::StaleRevision { expected, current });
        }
        policy.validate()?;
        policy.revision = current + 1;
        Ok(policy)
    }

    /// Forget detail from before `date` (usage, grants, answered or expired requests,
    /// ended locks), so a long-running projection stays small. Statuses for `date` and
    /// later are unchanged.
    pub fn forget_before(&mut self, date: Date) {
        let cutoff = LocalDay::of(date, &self.zone);
        self.usage.forget_before(cutoff.start_second);
        for usage in self.usage_by_device.values_mut() {
            usage.forget_before(cutoff.start_second);
        }
        self.usage_by_device.retain(|_, u| !u.is_empty());
        self.grants = self.grants.split_off(&(cutoff.start_second, 0));
        self.requests.retain(|_, r| r.expires_at > cutoff.start());
        self.locks.forget_ended_before(cutoff.start());
        if self
            .unlock
            .as_ref()
            .is_some_and(|u| !u.holds_at(cutoff.start()))
        {
            self.unlock = None;
        }
    }
}

/// Check the end of a lock or an unlock: after `now` and at most `max_hours` later,
/// naming the API's field `until_unix_micros`.
fn check_until(until: Timestamp, now: Timestamp, max_hours: i64) -> Result<(), InputError> {
    let field = "until_unix_micros";
    if until <= now {
        return Err(InputError::NotAfterNow {
            field: field.into(),
            value: until,
            now,
        });
    }
    let latest = now
        .checked_add(jiff::SignedDuration::from_hours(max_hours))
        .unwrap_or(Timestamp::MAX);
    if until > latest {
        return Err(InputError::TooFarAhead {
            field: field.into(),
            value: until,
            now,
            latest,
            max_hours,
        });
    }
    Ok(())
}

/// The refusal of an unlock-until with a device target.
fn until_needs_child_target() -> InputError {
    InputError::NotApplicable {
        field: "until_unix_micros".into(),
        reason: "an unlock until a time lifts downtime and BLOCKED, which are the child's, \
                 so it needs a child target (child_id), not a device"
            .into(),
    }
}

#[cfg(test)]
mod tests;
