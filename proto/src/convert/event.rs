//! A logged event, from the API's shape into core's, so the hub folds exactly what it
//! logged.
//!
//! Core keeps what the rules need and a little for audit; the rest of the message stays
//! in the log: idempotency keys, outbox origins, the days the hub wrote next to
//! instants (core works the day out from the instant), notes and reasons other than a
//! lock's, a legacy command's path and peer, a device's kind, a certificate's hash, an
//! invite's expiry.

use household_core::{
    Answer, ChildId, CreditSize, DeviceId, Event, EventKind, GuardianId, Identity, LegacyOutcome,
    RequestId,
};

use super::error::enum_value;
use super::{
    ConvertError, actor_to_core, non_empty, optional_timestamp, policy_to_core, timestamp_to_core,
};
use crate::v1;
use crate::v1::event::Payload;

/// The core event for a logged API event, every payload kind included.
///
/// The event's `device_id` is the target of a lock or unlock (none: the whole child)
/// and the device of registry kinds that name one (added, renamed, removed, enrolled,
/// online, offline), where it is required. An instant of 0 in a field added later
/// (`TimeRequested.requested_unix_micros`, `ExtensionCreditSpent.spent_unix_micros`)
/// means the event's own time, as in events logged before the field existed.
///
/// Errors name the field in the event: `time_unix_micros`, `actor`, `device_id`,
/// `payload`, or a payload's own (`extension_credit_spent.minutes`,
/// `policy_changed.policy.weekdays[2].daily_minutes`).
pub fn event_to_core(event: &v1::Event) -> Result<Event, ConvertError> {
    let at = timestamp_to_core(event.time_unix_micros, "time_unix_micros")?;
    let actor = actor_to_core(event.actor.as_ref(), "actor")?;
    let device = non_empty(&event.device_id).map(DeviceId);
    let payload = event
        .payload
        .as_ref()
        .ok_or_else(|| ConvertError::missing("payload"))?;
    let kind = kind_to_core(payload, device.as_ref())?;
    Ok(Event {
        seq: event.seq,
        at,
        actor,
        child: ChildId(event.child_id.clone()),
        device,
        kind,
    })
}

/// The device a registry kind is about: the event's `device_id`, which must be set.
fn required(device: Option<&DeviceId>) -> Result<DeviceId, ConvertError> {
    device
        .cloned()
        .ok_or_else(|| ConvertError::missing("device_id"))
}

fn kind_to_core(payload: &Payload, device: Option<&DeviceId>) -> Result<EventKind, ConvertError> {
    Ok(match payload {
        Payload::UsageReported(u) => EventKind::UsageReported {
            start: timestamp_to_core(u.start_unix_micros, "usage_reported.start_unix_micros")?,
            end: timestamp_to_core(u.end_unix_micros, "usage_reported.end_unix_micros")?,
        },
        Payload::TimeGranted(g) => EventKind::TimeGranted {
            minutes: i64::from(g.minutes),
            granted_at: g
                .granted_unix_micros
                .map(|micros| timestamp_to_core(micros, "time_granted.granted_unix_micros"))
                .transpose()?,
        },
        Payload::Locked(l) => EventKind::Locked {
            device: device.cloned(),
            until: l
                .until_unix_micros
                .map(|micros| timestamp_to_core(micros, "locked.until_unix_micros"))
                .transpose()?,
            reason: non_empty(&l.reason),
        },
        Payload::Unlocked(u) => EventKind::Unlocked {
            device: device.cloned(),
            until: u
                .until_unix_micros
                .map(|micros| timestamp_to_core(micros, "unlocked.until_unix_micros"))
                .transpose()?,
        },
        Payload::PolicyChanged(c) => {
            let policy = c
                .policy
                .as_ref()
                .ok_or_else(|| ConvertError::missing("policy_changed.policy"))?;
            EventKind::PolicyChanged {
                policy: policy_to_core(policy).map_err(|e| e.within("policy_changed.policy"))?,
            }
        }
        Payload::TimeRequested(r) => EventKind::TimeRequested {
            request_id: RequestId(
                non_empty(&r.request_id)
                    .ok_or_else(|| ConvertError::missing("time_requested.request_id"))?,
            ),
            minutes: i64::from(r.minutes),
            note: non_empty(&r.note),
            requested_at: optional_timestamp(
                r.requested_unix_micros,
                "time_requested.requested_unix_micros",
            )?,
        },
        Payload::RequestResolved(r) => EventKind::RequestResolved {
            request_id: RequestId(
                non_empty(&r.request_id)
                    .ok_or_else(|| ConvertError::missing("request_resolved.request_id"))?,
            ),
            answer: answer_to_core(r)?,
        },
        Payload::ExtensionCreditSpent(c) => EventKind::ExtensionCreditSpent {
            size: match c.minutes {
                5 => CreditSize::FiveMinute,
                10 => CreditSize::TenMinute,
                other => {
                    return Err(ConvertError::not_allowed(
                        "extension_credit_spent.minutes",
                        other.to_string(),
                        "5 or 10",
                    ));
                }
            },
            spent_at: optional_timestamp(
                c.spent_unix_micros,
                "extension_credit_spent.spent_unix_micros",
            )?,
        },
        Payload::DeviceEnrolled(_) => EventKind::DeviceEnrolled {
            device: required(device)?,
        },
        Payload::DeviceOnline(_) => EventKind::DeviceOnline {
            device: required(device)?,
        },
        Payload::DeviceOffline(_) => EventKind::DeviceOffline {
            device: required(device)?,
        },
        Payload::DeviceTrouble(t) => EventKind::DeviceTrouble {
            device: required(device)?,
            trouble: t.trouble.clone(),
            cleared: t.cleared,
        },
        Payload::LegacyCommand(c) => EventKind::LegacyCommand {
            command: legacy_command_text(c)?,
            outcome: legacy_outcome_to_core(c.outcome)?,
            reply: c.reply.clone(),
        },
        Payload::ChildAdded(c) => EventKind::ChildAdded {
            display_name: c.display_name.clone(),
        },
        Payload::ChildRenamed(c) => EventKind::ChildRenamed {
            display_name: c.display_name.clone(),
            previous_display_name: c.previous_display_name.clone(),
        },
        Payload::ChildRemoved(c) => EventKind::ChildRemoved {
            history_forgotten: c.history_forgotten,
        },
        Payload::DeviceAdded(d) => EventKind::DeviceAdded {
            device: required(device)?,
            display_name: d.display_name.clone(),
            legacy_address: non_empty(&d.legacy_address),
        },
        Payload::DeviceRenamed(d) => EventKind::DeviceRenamed {
            device: required(device)?,
            display_name: d.display_name.clone(),
            previous_display_name: d.previous_display_name.clone(),
        },
        Payload::DeviceRemoved(_) => EventKind::DeviceRemoved {
            device: required(device)?,
        },
        Payload::GuardianEnrolled(g) => EventKind::GuardianEnrolled {
            display_name: g.display_name.clone(),
        },
        Payload::IdentityRevoked(r) => EventKind::IdentityRevoked {
            identity: identity_to_core(r)?,
            credential_id: non_empty(&r.credential_id),
        },
        Payload::GuardianInvited(g) => EventKind::GuardianInvited {
            guardian: GuardianId(
                non_empty(&g.guardian_id)
                    .ok_or_else(|| ConvertError::missing("guardian_invited.guardian_id"))?,
            ),
            display_name: g.display_name.clone(),
        },
    })
}

/// An answer from `RequestResolved.status`: APPROVED with the granted minutes, or
/// DENIED. PENDING and EXPIRED are never answers.
fn answer_to_core(resolved: &v1::RequestResolved) -> Result<Answer, ConvertError> {
    match v1::TimeRequestStatus::try_from(resolved.status) {
        Ok(v1::TimeRequestStatus::Approved) => Ok(Answer::Approved {
            minutes: i64::from(resolved.granted_minutes),
        }),
        Ok(v1::TimeRequestStatus::Denied) => Ok(Answer::Denied),
        other => Err(ConvertError::not_allowed(
            "request_resolved.status",
            enum_value(resolved.status, other.ok().map(|s| s.as_str_name())),
            "TIME_REQUEST_STATUS_APPROVED, TIME_REQUEST_STATUS_DENIED",
        )),
    }
}

/// The identity a revocation names, by its role.
fn identity_to_core(revoked: &v1::IdentityRevoked) -> Result<Identity, ConvertError> {
    let id = non_empty(&revoked.identity_id)
        .ok_or_else(|| ConvertError::missing("identity_revoked.identity_id"))?;
    match v1::Role::try_from(revoked.role) {
        Ok(v1::Role::Guardian) => Ok(Identity::Guardian { id: GuardianId(id) }),
        Ok(v1::Role::Device) => Ok(Identity::Device { id: DeviceId(id) }),
        other => Err(ConvertError::not_allowed(
            "identity_revoked.role",
            enum_value(revoked.role, other.ok().map(|r| r.as_str_name())),
            "ROLE_GUARDIAN, ROLE_DEVICE",
        )),
    }
}

/// The command as CST writes it, which is how core records it: `GET_TIME_LEFT`,
/// `LOCK_DEVICE`, `EXTEND_TIME:15`. An unknown command's text is not in the API, so it
/// reads `UNKNOWN`.
fn legacy_command_text(command: &v1::LegacyCommand) -> Result<String, ConvertError> {
    match v1::LegacyCommandKind::try_from(command.command) {
        Ok(v1::LegacyCommandKind::GetTimeLeft) => Ok("GET_TIME_LEFT".into()),
        Ok(v1::LegacyCommandKind::LockDevice) => Ok("LOCK_DEVICE".into()),
        Ok(v1::LegacyCommandKind::ExtendTime) => {
            Ok(format!("EXTEND_TIME:{}", command.extend_minutes))
        }
        Ok(v1::LegacyCommandKind::Unknown) => Ok("UNKNOWN".into()),
        other => Err(ConvertError::not_allowed(
            "legacy_command.command",
            enum_value(command.command, other.ok().map(|k| k.as_str_name())),
            "LEGACY_COMMAND_KIND_GET_TIME_LEFT, LEGACY_COMMAND_KIND_LOCK_DEVICE, \
             LEGACY_COMMAND_KIND_EXTEND_TIME, LEGACY_COMMAND_KIND_UNKNOWN",
        )),
    }
}

/// What became of a legacy command; UNSPECIFIED is refused rather than guessed.
fn legacy_outcome_to_core(outcome: i32) -> Result<LegacyOutcome, ConvertError> {
    match v1::LegacyOutcome::try_from(outcome) {
        Ok(v1::LegacyOutcome::Applied) => Ok(LegacyOutcome::Applied),
        Ok(v1::LegacyOutcome::RejectedReplay) => Ok(LegacyOutcome::RejectedReplay),
        Ok(v1::LegacyOutcome::RejectedRateLimit) => Ok(LegacyOutcome::RejectedRateLimit),
        Ok(v1::LegacyOutcome::RejectedReadOnly) => Ok(LegacyOutcome::RejectedReadOnly),
        Ok(v1::LegacyOutcome::RejectedInvalid) => Ok(LegacyOutcome::RejectedInvalid),
        Ok(v1::LegacyOutcome::Failed) => Ok(LegacyOutcome::Failed),
        Ok(v1::LegacyOutcome::RejectedLocal) => Ok(LegacyOutcome::RejectedLocal),
        other => Err(ConvertError::not_allowed(
            "legacy_command.outcome",
            enum_value(outcome, other.ok().map(|o| o.as_str_name())),
            "LEGACY_OUTCOME_APPLIED, LEGACY_OUTCOME_REJECTED_REPLAY, \
             LEGACY_OUTCOME_REJECTED_RATE_LIMIT, LEGACY_OUTCOME_REJECTED_READ_ONLY, \
             LEGACY_OUTCOME_REJECTED_INVALID, LEGACY_OUTCOME_FAILED, LEGACY_OUTCOME_REJECTED_LOCAL",
        )),
    }
}
