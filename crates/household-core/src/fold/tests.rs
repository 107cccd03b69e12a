//! Unit tests of applying events: what is taken, what is skipped and why.

use jiff::Timestamp;

use super::*;
use crate::event::{Actor, GuardianId};
use crate::policy::Policy;

const CHILD: &str = "mia";

fn policy() -> Policy {
    Policy {
        time_zone: "Europe/Berlin".into(),
        ..Policy::default()
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn guardian() -> Actor {
    Actor::Guardian {
        id: GuardianId::from("anna"),
    }
}

fn event(seq: u64, at: &str, kind: EventKind) -> Event {
    Event::new(seq, ts(at), guardian(), ChildId::from(CHILD), kind)
}

fn projection() -> Projection {
    Projection::new(ChildId::from(CHILD), policy()).unwrap()
}

#[test]
fn repeated_or_older_seq_is_stale_and_changes_nothing() {
    let mut p = projection();
    let grant = event(
        5,
        "2025-06-02T08:00:00Z",
        EventKind::TimeGranted {
            minutes: 10,
            granted_at: None,
        },
    );
    assert_eq!(p.apply(&grant), ApplyOutcome::Applied);
    assert_eq!(p.apply(&grant), ApplyOutcome::Stale { last_seq: 5 });
    let older = event(
        4,
        "2025-06-02T08:00:00Z",
        EventKind::TimeGranted {
            minutes: 10,
            granted_at: None,
        },
    );
    assert_eq!(p.apply(&older), ApplyOutcome::Stale { last_seq: 5 });
    let status = p.status_at(ts("2025-06-02T09:00:00Z"));
    assert_eq!(status.credit_seconds, 130 * 60);
}

#[test]
fn another_childs_event_is_ignored_without_consuming_its_seq() {
    let mut p = projection();
    let mut other = event(
        1,
        "2025-06-02T08:00:00Z",
        EventKind::TimeGranted {
            minutes: 10,
            granted_at: None,
        },
    );
    other.child = ChildId::from("leo");
    assert!(matches!(
        p.apply(&other),
        ApplyOutcome::Ignored(Ignored::OtherChild { .. })
    ));
    assert_eq!(p.last_seq(), None);
}

#[test]
fn invalid_policy_in_the_log_keeps_the_previous_one() {
    let mut p = projection();
    let bad = Policy {
        daily_minutes: crate::policy::DailyMinutes::every_day(-1),
        ..policy()
    };
    let outcome = p.apply(&event(
        1,
        "2025-06-02T08:00:00Z",
        EventKind::PolicyChanged { policy: bad },
    ));
    assert!(matches!(
        outcome,
        ApplyOutcome::Ignored(Ignored::InvalidPolicy(_))
    ));
    assert_eq!(p.policy(), &policy());
    assert_eq!(p.last_seq(), Some(1));
}

#[test]
fn grants_with_absurd_minutes_are_ignored() {
    let mut p = projection();
    for (seq, minutes) in [(1, 0), (2, -10), (3, 1441)] {
        let outcome = p.apply(&event(
            seq,
            "2025-06-02T08:00:00Z",
            EventKind::TimeGranted {
                minutes,
                granted_at: None,
            },
        ));
        assert!(
            matches!(outcome, ApplyOutcome::Ignored(Ignored::InvalidMinutes(_))),
            "{minutes}"
        );
    }
    assert_eq!(
        p.status_at(ts("2025-06-02T09:00:00Z")).credit_seconds,
        120 * 60
    );
}

#[test]
fn credits_beyond_the_days_count_grant_nothing() {
    let mut p = projection();
    let spend = |seq, at| {
        event(
            seq,
            at,
            EventKind::ExtensionCreditSpent {
                size: CreditSize::TenMinute,
                spent_at: None,
            },
        )
    };
    assert_eq!(
        p.apply(&spend(1, "2025-06-02T08:00:00Z")),
        ApplyOutcome::Applied
    );
    assert!(matches!(
        p.apply(&spend(2, "2025-06-02T08:01:00Z")),
        ApplyOutcome::Ignored(Ignored::Credit(CreditRefusal::NoneLeft { allowed: 1, .. }))
    ));
    // A new day brings new credits.
    assert_eq!(
        p.apply(&spend(3, "2025-06-03T08:00:00Z")),
        ApplyOutcome::Applied
    );
    let status = p.status_at(ts("2025-06-02T09:00:00Z"));
    assert_eq!(status.credit_seconds, 130 * 60);
    assert_eq!(status.credits_left.ten_minute, 0);
    assert_eq!(status.credits_left.five_minute, 2);
}

#[test]
fn duplicate_request_id_keeps_the_first() {
    let mut p = projection();
    let ask = |seq, minutes| {
        event(
            seq,
            "2025-06-02T08:00:00Z",
            EventKind::TimeRequested {
                request_id: RequestId::from("r1"),
                minutes,
                note: None,
                requested_at: None,
            },
        )
    };
    assert_eq!(p.apply(&ask(1, 15)), ApplyOutcome::Applied);
    assert!(matches!(
        p.apply(&ask(2, 30)),
        ApplyOutcome::Ignored(Ignored::DuplicateRequest { .. })
    ));
    assert_eq!(p.request(&RequestId::from("r1")).unwrap().minutes, 15);
}

#[test]
fn legacy_commands_and_presence_do_not_touch_time() {
    let mut p = projection();
    let before = p.status_at(ts("2025-06-02T09:00:00Z"));
    p.apply(&event(
        1,
        "2025-06-02T08:00:00Z",
        EventKind::LegacyCommand {
            command: "GET_TIME_LEFT".into(),
            outcome: crate::LegacyOutcome::Applied,
            reply: String::new(),
        },
    ));
    p.apply(&event(
        2,
        "2025-06-02T08:00:00Z",
        EventKind::DeviceOnline {
            device: DeviceId::from("tab"),
        },
    ));
    let after = p.status_at(ts("2025-06-02T09:00:00Z"));
    assert_eq!(after.state, before.state);
    assert_eq!(after.remaining_seconds, before.remaining_seconds);
    assert_eq!(after.devices.len(), 1);
    assert!(after.devices[0].online);
    p.apply(&event(
        3,
        "2025-06-02T08:30:00Z",
        EventKind::DeviceOffline {
            device: DeviceId::from("tab"),
        },
    ));
    assert!(!p.status_at(ts("2025-06-02T09:00:00Z")).devices[0].online);
}

#[test]
fn policy_change_needs_the_current_revision_and_bumps_it() {
    let p = projection();
    let next = p.check_policy_change(policy(), Some(0)).unwrap();
    assert_eq!(next.revision, 1);
    assert_eq!(
        p.check_policy_change(policy(), Some(3)),
        Err(PolicyChangeError::StaleRevision {
            expected: 3,
            current: 0
        })
    );
    assert_eq!(
        p.check_policy_change(policy(), Some(3))
            .unwrap_err()
            .to_string(),
        "expected_revision is 3, but the policy is at revision 0; read it again, reapply the \
         change, retry"
    );
    let bad = Policy {
        grace_minutes: -1,
        ..policy()
    };
    assert!(matches!(
        p.check_policy_change(bad, None),
        Err(PolicyChangeError::Invalid(InputError::OutOfRange { .. }))
    ));
}

#[test]
fn decisions_refuse_bad_input_with_typed_errors() {
    let p = projection();
    let now = ts("2025-06-02T08:00:00Z");
    assert_eq!(
        p.check_grant(0),
        Err(InputError::out_of_range("minutes", 0, 1, 1440))
    );
    assert!(p.check_grant(15).is_ok());
    assert!(matches!(
        p.check_lock(None, Some(now), now),
        Err(InputError::NotAfterNow { .. })
    ));
    assert!(
        p.check_lock(None, Some(ts("2025-06-02T09:00:00Z")), now)
            .is_ok()
    );
    assert!(
        p.check_request(RequestId::from("r"), 2000, None, None)
            .is_err()
    );
    assert!(matches!(
        p.resolve_request(&RequestId::from("nope"), Answer::Denied, now),
        Err(RequestRefusal::Unknown { .. })
    ));
}

#[test]
fn a_lock_ends_after_now_and_at_most_30_days_ahead() {
    let p = projection();
    let now = ts("2025-06-02T08:00:00Z");
    let latest = ts("2025-07-02T08:00:00Z");
    assert!(p.check_lock(None, Some(latest), now).is_ok());
    assert!(p.check_lock(None, None, now).is_ok());
    let too_far = ts("2025-07-02T08:00:01Z");
    let err = p
        .check_lock(Some(DeviceId::from("tab")), Some(too_far), now)
        .unwrap_err();
    assert_eq!(
        err,
        InputError::TooFarAhead {
            field: "until_unix_micros".into(),
            value: too_far,
            now,
            latest,
            max_hours: MAX_LOCK_DAYS * 24,
        }
    );
    assert_eq!(
        err.to_string(),
        "until_unix_micros is 2025-07-02T08:00:01Z; allowed range is after now \
         (2025-06-02T08:00:00Z) up to 30 days ahead (2025-07-02T08:00:00Z)"
    );
    let err = p.check_lock(None, Some(now), now).unwrap_err();
    assert_eq!(err.field(), "until_unix_micros");
    assert_eq!(err.clone().within("lock").field(), "lock.until_unix_micros");
}

#[test]
fn forgetting_old_days_keeps_todays_status() {
    let mut p = projection();
    let usage = |seq, start: &str, end: &str| {
        let mut e = event(
            seq,
            end,
            EventKind::UsageReported {
                start: ts(start),
                end: ts(end),
            },
        );
        e.device = Some(DeviceId::from("tab"));
        e
    };
    p.apply(&usage(1, "2025-06-01T10:00:00Z", "2025-06-01T11:00:00Z"));
    p.apply(&event(
        2,
        "2025-06-01T12:00:00Z",
        EventKind::TimeGranted {
            minutes: 20,
            granted_at: None,
        },
    ));
    // Straddles local midnight (22:00 UTC): 30 minutes each side.
    p.apply(&usage(3, "2025-06-01T21:30:00Z", "2025-06-01T22:30:00Z"));
    p.apply(&event(
        4,
        "2025-06-02T07:00:00Z",
        EventKind::TimeGranted {
            minutes: 5,
            granted_at: None,
        },
    ));
    let now = ts("2025-06-02T08:00:00Z");
    let before = p.status_at(now);
    assert_eq!(before.used_seconds, 30 * 60);
    p.forget_before(before.day.date);
    assert_eq!(p.status_at(now), before);
    assert_eq!(p.usage().spans().count(), 1);
}

#[test]
fn an_unlock_until_ends_after_now_at_most_24_hours_ahead_and_only_for_the_child() {
    let p = projection();
    let tab = DeviceId::from("tab");
    let now = ts("2025-06-02T18:00:00Z");
    let latest = ts("2025-06-03T18:00:00Z");
    assert_eq!(
        p.check_unlock(None, Some(latest), now),
        Ok(EventKind::Unlocked {
            device: None,
            until: Some(latest),
        })
    );
    assert_eq!(
        p.check_unlock(Some(&tab), None, now),
        Ok(EventKind::Unlocked {
            device: Some(tab.clone()),
            until: None,
        })
    );
    let too_far = ts("2025-06-03T18:00:01Z");
    let err = p.check_unlock(None, Some(too_far), now).unwrap_err();
    assert_eq!(
        err,
        InputError::TooFarAhead {
            field: "until_unix_micros".into(),
            value: too_far,
            now,
            latest,
            max_hours: MAX_UNLOCK_HOURS,
        }
    );
    assert_eq!(
        err.to_string(),
        "until_unix_micros is 2025-06-03T18:00:01Z; allowed range is after now \
         (2025-06-02T18:00:00Z) up to 24 hours ahead (2025-06-03T18:00:00Z)"
    );
    assert!(matches!(
        p.check_unlock(None, Some(now), now),
        Err(InputError::NotAfterNow { .. })
    ));
    let err = p
        .check_unlock(Some(&tab), Some(ts("2025-06-02T19:00:00Z")), now)
        .unwrap_err();
    assert_eq!(err.field(), "until_unix_micros");
    assert_eq!(
        err.to_string(),
        "until_unix_micros cannot be set here: an unlock until a time lifts downtime and \
         BLOCKED, which are the child's, so it needs a child target (child_id), not a device"
    );
}

#[test]
fn forgetting_old_days_drops_an_unlock_until_that_ended() {
    let mut p = projection();
    p.apply(&event(
        1,
        "2025-06-01T18:00:00Z",
        EventKind::Unlocked {
            device: None,
            until: Some(ts("2025-06-01T20:00:00Z")),
        },
    ));
    assert!(p.unlock.is_some());
    p.forget_before(jiff::civil::date(2025, 6, 2));
    assert!(p.unlock.is_none());
}

#[test]
fn a_projection_read_back_from_its_serialized_form_folds_on_the_same() {
    let mut p = projection();
    let mut usage = event(
        1,
        "2025-06-02T09:00:00Z",
        EventKind::UsageReported {
            start: ts("2025-06-02T08:00:00Z"),
            end: ts("2025-06-02T09:00:00Z"),
        },
    );
    usage.device = Some(DeviceId::from("tab"));
    p.apply(&usage);
    p.apply(&event(
        2,
        "2025-06-02T09:05:00Z",
        EventKind::TimeGranted {
            minutes: 15,
            granted_at: None,
        },
    ));
    p.apply(&event(
        3,
        "2025-06-02T09:06:00Z",
        EventKind::Locked {
            device: Some(DeviceId::from("tab")),
            until: Some(ts("2025-06-02T12:00:00Z")),
            reason: Some("homework".into()),
        },
    ));
    p.apply(&event(
        4,
        "2025-06-02T09:07:00Z",
        EventKind::TimeRequested {
            request_id: RequestId::from("r1"),
            minutes: 20,
            note: None,
            requested_at: None,
        },
    ));
    let json = serde_json::to_string(&p).unwrap();
    let mut back: Projection = serde_json::from_str(&json).unwrap();
    let now = ts("2025-06-02T10:00:00Z");
    assert_eq!(back.status_at(now), p.status_at(now));
    assert_eq!(back.last_seq(), Some(4));

    // Both take the next event the same way.
    let answer = event(
        5,
        "2025-06-02T09:30:00Z",
        EventKind::RequestResolved {
            request_id: RequestId::from("r1"),
            answer: Answer::Approved { minutes: 20 },
        },
    );
    assert_eq!(back.apply(&answer), p.apply(&answer));
    assert_eq!(back.status_at(now), p.status_at(now));

    // A time zone the policy names must exist to be read back.
    let unknown = json.replace("Europe/Berlin", "Mars/Olympus_Mons");
    assert!(serde_json::from_str::<Projection>(&unknown).is_err());
}
