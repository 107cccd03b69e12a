//! The conversions, checked both ways: a policy survives proto → core → proto, every
//! payload kind converts to the core kind it means, bad input names its field, and a
//! status reads in the API as the rules decided it.

use household_core::{
    Actor, Answer, ChildId, ChildState, CreditSize, DeviceId, EventKind, GuardianId, Identity,
    InputError, LegacyOutcome, Projection, RequestId,
};
use jiff::Timestamp;
use jiff::civil::date;

use super::*;
use crate::v1::event::Payload;

/// Monday 2 June 2025 at `hh:mm` Berlin time (UTC+2), in microseconds.
fn micros(hh_mm: &str) -> i64 {
    ts(hh_mm).as_microsecond()
}

fn ts(hh_mm: &str) -> Timestamp {
    format!("2025-06-02T{hh_mm}:00+02:00").parse().unwrap()
}

fn guardian(id: &str) -> v1::Actor {
    v1::Actor {
        kind: Some(v1::actor::Kind::GuardianId(id.into())),
        credential_id: "3f1a".repeat(16),
    }
}

fn device_actor(id: &str) -> v1::Actor {
    v1::Actor {
        kind: Some(v1::actor::Kind::DeviceId(id.into())),
        credential_id: String::new(),
    }
}

fn window(start: u32, end: u32, label: &str) -> v1::DowntimeWindow {
    v1::DowntimeWindow {
        start_minute_of_day: start,
        end_minute_of_day: end,
        label: label.into(),
    }
}

/// The household of `docs/rules.md` in the API's shape: 120 minutes on weekdays, 180 at
/// weekends, bedtime 20:30-07:00 Sunday to Thursday night and 22:00-08:30 Friday and
/// Saturday night, two 5-minute and one 10-minute credit, 2 minutes of grace, and two
/// exceptions.
fn household_policy() -> v1::Policy {
    let school_night = || vec![window(1230, 420, "bedtime")];
    let weekend_night = || vec![window(1320, 510, "")];
    let rule = |weekday: v1::Weekday, minutes, windows| v1::WeekdayRule {
        weekday: weekday.into(),
        daily_minutes: minutes,
        downtime_windows: windows,
    };
    v1::Policy {
        revision: 4,
        time_zone: "Europe/Berlin".into(),
        weekdays: vec![
            rule(v1::Weekday::Monday, 120, school_night()),
            rule(v1::Weekday::Tuesday, 120, school_night()),
            rule(
                v1::Weekday::Wednesday,
                90,
                vec![window(900, 960, "homework"), window(1230, 420, "bedtime")],
            ),
            rule(v1::Weekday::Thursday, 120, school_night()),
            rule(v1::Weekday::Friday, 120, weekend_night()),
            rule(v1::Weekday::Saturday, 180, weekend_night()),
            rule(v1::Weekday::Sunday, 180, school_night()),
        ],
        extension_credits_per_day: Some(v1::ExtensionCredits {
            five_minute_count: 2,
            ten_minute_count: 1,
        }),
        grace_minutes: 2,
        exceptions: vec![
            v1::DateException {
                date: Some(v1::Date {
                    year: 2025,
                    month: 12,
                    day: 24,
                }),
                daily_minutes: Some(240),
                skip_downtime: true,
                note: "Christmas Eve".into(),
            },
            v1::DateException {
                date: Some(v1::Date {
                    year: 2025,
                    month: 12,
                    day: 31,
                }),
                daily_minutes: None,
                skip_downtime: true,
                note: String::new(),
            },
        ],
        updated_unix_micros: micros("09:00"),
        updated_by: Some(guardian("g-anna")),
    }
}

#[test]
fn a_policy_survives_proto_core_proto() {
    let sent = household_policy();
    let core = policy_to_core(&sent).unwrap();
    assert_eq!(core.revision, 4);
    assert_eq!(core.allowance_minutes(date(2025, 6, 4)), 90); // a Wednesday
    assert_eq!(core.allowance_minutes(date(2025, 12, 24)), 240);
    assert_eq!(core.extension_credits_per_day.ten_minute_count, 1);
    let back = policy_from_core(
        &core,
        sent.revision,
        sent.updated_unix_micros,
        sent.updated_by.clone(),
    );
    assert_eq!(back, sent);
}

#[test]
fn absent_credits_mean_none() {
    let mut sent = household_policy();
    sent.extension_credits_per_day = None;
    let core = policy_to_core(&sent).unwrap();
    assert_eq!(
        (
            core.extension_credits_per_day.five_minute_count,
            core.extension_credits_per_day.ten_minute_count
        ),
        (0, 0)
    );
}

#[test]
fn a_bad_policy_names_the_field_and_the_allowed_values() {
    let field_of = |policy: &v1::Policy| policy_to_core(policy).unwrap_err();

    let mut six_days = household_policy();
    six_days.weekdays.pop();
    let err = field_of(&six_days);
    assert_eq!(err.field(), "weekdays");
    assert_eq!(
        err.message(),
        "weekdays has 6 entries; exactly 7 are required"
    );

    let mut unnamed = household_policy();
    unnamed.weekdays[6].weekday = v1::Weekday::Unspecified.into();
    let err = field_of(&unnamed);
    assert_eq!(err.field(), "weekdays[6].weekday");
    assert_eq!(
        err.message(),
        "weekdays[6].weekday is 0; allowed range is 1..=7"
    );

    let mut too_long = household_policy();
    too_long.weekdays[2].daily_minutes = 2000;
    let err = field_of(&too_long);
    assert_eq!(
        err,
        ConvertError::Invalid(InputError::out_of_range(
            "weekdays[2].daily_minutes",
            2000,
            0,
            1440
        ))
    );
    let err = err.within("policy");
    assert_eq!(err.field(), "policy.weekdays[2].daily_minutes");
    assert_eq!(
        err.message(),
        "policy.weekdays[2].daily_minutes is 2000; allowed range is 0..=1440"
    );

    let mut mars = household_policy();
    mars.time_zone = "Mars/Base".into();
    let err = field_of(&mars);
    assert_eq!(err.field(), "time_zone");
    assert_eq!(
        err.message(),
        "time_zone: unknown time zone \"Mars/Base\"; expected an IANA name such as \
         \"Europe/Berlin\""
    );

    let mut empty_window = household_policy();
    empty_window.weekdays[0].downtime_windows[0].end_minute_of_day = 1230;
    assert_eq!(
        field_of(&empty_window).field(),
        "weekdays[0].downtime_windows[0].end_minute_of_day"
    );

    let mut no_date = household_policy();
    no_date.exceptions[1].date = None;
    assert_eq!(
        field_of(&no_date),
        ConvertError::Missing {
            field: "exceptions[1].date".into()
        }
    );

    let mut february_30 = household_policy();
    february_30.exceptions[0].date = Some(v1::Date {
        year: 2026,
        month: 2,
        day: 30,
    });
    let err = field_of(&february_30);
    assert_eq!(err.field(), "exceptions[0].date.day");
    assert_eq!(
        err.message(),
        "exceptions[0].date.day is 30; allowed range is 1..=28"
    );

    let mut grace = household_policy();
    grace.grace_minutes = 31;
    assert_eq!(field_of(&grace).field(), "grace_minutes");

    let mut credits = household_policy();
    credits.extension_credits_per_day = Some(v1::ExtensionCredits {
        five_minute_count: 13,
        ten_minute_count: 0,
    });
    assert_eq!(
        field_of(&credits).field(),
        "extension_credits_per_day.five_minute_count"
    );
}

#[test]
fn dates_convert_both_ways_within_the_api_range() {
    let day = date(2024, 2, 29);
    assert_eq!(date_to_core(&date_to_proto(day), "day"), Ok(day));
    let bad = |year, month, day| {
        date_to_core(&v1::Date { year, month, day }, "start_date")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        bad(1969, 12, 31),
        "start_date.year is 1969; allowed range is 1970..=9999"
    );
    assert_eq!(
        bad(2025, 13, 1),
        "start_date.month is 13; allowed range is 1..=12"
    );
    assert_eq!(
        bad(2025, 4, 31),
        "start_date.day is 31; allowed range is 1..=30"
    );
    assert_eq!(
        bad(2025, 4, 0),
        "start_date.day is 0; allowed range is 1..=30"
    );
}

fn event(seq: u64, at: &str, actor: v1::Actor, device: &str, payload: Payload) -> v1::Event {
    v1::Event {
        seq,
        time_unix_micros: micros(at),
        actor: Some(actor),
        child_id: "c-mia".into(),
        device_id: device.into(),
        idempotency: None,
        origin: None,
        payload: Some(payload),
    }
}

/// One API event of every payload kind and the core kind it must become. The match in
/// the loop has no catch-all, so a new payload kind does not compile until it is here.
fn one_of_each() -> Vec<(v1::Event, EventKind)> {
    let tablet = || DeviceId::from("d-tablet");
    let anna = || guardian("g-anna");
    let date = |day| {
        Some(v1::Date {
            year: 2025,
            month: 6,
            day,
        })
    };
    let cases = vec![
        (
            event(
                1,
                "10:30",
                device_actor("d-tablet"),
                "d-tablet",
                Payload::UsageReported(v1::UsageReported {
                    start_unix_micros: micros("10:00"),
                    end_unix_micros: micros("10:30"),
                }),
            ),
            EventKind::UsageReported {
                start: ts("10:00"),
                end: ts("10:30"),
            },
        ),
        (
            event(
                2,
                "10:40",
                v1::Actor {
                    kind: Some(v1::actor::Kind::LegacyAddress("192.168.1.40:50123".into())),
                    credential_id: String::new(),
                },
                "d-tablet",
                Payload::TimeGranted(v1::TimeGranted {
                    minutes: 15,
                    day: date(2),
                    note: String::new(),
                    granted_unix_micros: Some(micros("10:35")),
                }),
            ),
            EventKind::TimeGranted {
                minutes: 15,
                granted_at: Some(ts("10:35")),
            },
        ),
        (
            event(
                3,
                "11:00",
                anna(),
                "d-tablet",
                Payload::Locked(v1::Locked {
                    until_unix_micros: Some(micros("12:00")),
                    reason: "homework first".into(),
                }),
            ),
            EventKind::Locked {
                device: Some(tablet()),
                until: Some(ts("12:00")),
                reason: Some("homework first".into()),
            },
        ),
        (
            event(
                4,
                "19:00",
                anna(),
                "",
                Payload::Unlocked(v1::Unlocked {
                    reason: "film night".into(),
                    until_unix_micros: Some(micros("20:45")),
                }),
            ),
            EventKind::Unlocked {
                device: None,
                until: Some(ts("20:45")),
            },
        ),
        (
            event(
                5,
                "09:00",
                anna(),
                "",
                Payload::PolicyChanged(v1::PolicyChanged {
                    policy: Some(household_policy()),
                    previous_revision: 3,
                }),
            ),
            EventKind::PolicyChanged {
                policy: policy_to_core(&household_policy()).unwrap(),
            },
        ),
        (
            event(
                6,
                "16:00",
                device_actor("d-tablet"),
                "d-tablet",
                Payload::TimeRequested(v1::TimeRequested {
                    request_id: "r-1".into(),
                    minutes: 30,
                    note: "finish the episode".into(),
                    day: date(2),
                    requested_unix_micros: micros("15:50"),
                }),
            ),
            EventKind::TimeRequested {
                request_id: RequestId::from("r-1"),
                minutes: 30,
                note: Some("finish the episode".into()),
                requested_at: Some(ts("15:50")),
            },
        ),
        (
            event(
                7,
                "16:05",
                anna(),
                "",
                Payload::RequestResolved(v1::RequestResolved {
                    request_id: "r-1".into(),
                    status: v1::TimeRequestStatus::Approved.into(),
                    granted_minutes: 20,
                    note: "20 is enough".into(),
                    day: date(2),
                }),
            ),
            EventKind::RequestResolved {
                request_id: RequestId::from("r-1"),
                answer: Answer::Approved { minutes: 20 },
            },
        ),
        (
            event(
                8,
                "16:30",
                device_actor("d-tablet"),
                "d-tablet",
                Payload::ExtensionCreditSpent(v1::ExtensionCreditSpent {
                    minutes: 10,
                    day: date(2),
                    spent_unix_micros: micros("16:03"),
                }),
            ),
            EventKind::ExtensionCreditSpent {
                size: CreditSize::TenMinute,
                spent_at: Some(ts("16:03")),
            },
        ),
        (
            event(
                9,
                "08:00",
                device_actor("d-tablet"),
                "d-tablet",
                Payload::DeviceEnrolled(v1::DeviceEnrolled {
                    display_name: "Tablet".into(),
                    platform: "linux".into(),
                    certificate_sha256_hex: "ab".repeat(32),
                }),
            ),
            EventKind::DeviceEnrolled { device: tablet() },
        ),
        (
            event(
                10,
                "08:01",
                device_actor("d-tablet"),
                "d-tablet",
                Payload::DeviceOnline(v1::DeviceOnline {
                    remote_address: "192.168.1.23:40000".into(),
                    software_version: "0.1.0".into(),
                }),
            ),
            EventKind::DeviceOnline { device: tablet() },
        ),
        (
            event(
                11,
                "08:02",
                v1::Actor {
                    kind: Some(v1::actor::Kind::System(v1::SystemActor {
                        reason: "session closed".into(),
                    })),
                    credential_id: String::new(),
                },
                "d-tablet",
                Payload::DeviceOffline(v1::DeviceOffline {
                    reason: "session closed".into(),
                }),
            ),
            EventKind::DeviceOffline { device: tablet() },
        ),
        (
            event(
                11,
                "08:03",
                device_actor("d-tablet"),
                "d-tablet",
                Payload::DeviceTrouble(v1::DeviceTrouble {
                    trouble: "store failing: No space left on device".into(),
                    cleared: false,
                }),
            ),
            EventKind::DeviceTrouble {
                device: tablet(),
                trouble: "store failing: No space left on device".into(),
                cleared: false,
            },
        ),
        (
            event(
                12,
                "10:39",
                device_actor("d-tablet"),
                "d-tablet",
                Payload::LegacyCommand(v1::LegacyCommand {
                    path: v1::LegacyPath::AgentResponder.into(),
                    peer_address: "192.168.1.40:50123".into(),
                    command: v1::LegacyCommandKind::ExtendTime.into(),
                    extend_minutes: 15,
                    outcome: v1::LegacyOutcome::Applied.into(),
                    reply: "TIME_EXTENDED|15 minutes added".into(),
                }),
            ),
            EventKind::LegacyCommand {
                command: "EXTEND_TIME:15".into(),
                outcome: LegacyOutcome::Applied,
                reply: "TIME_EXTENDED|15 minutes added".into(),
            },
        ),
        (
            event(
                13,
                "07:00",
                anna(),
                "",
                Payload::ChildAdded(v1::ChildAdded {
                    display_name: "Mia".into(),
                }),
            ),
            EventKind::ChildAdded {
                display_name: "Mia".into(),
            },
        ),
        (
            event(
                14,
                "07:01",
                anna(),
                "",
                Payload::ChildRenamed(v1::ChildRenamed {
                    display_name: "Mia K.".into(),
                    previous_display_name: "Mia".into(),
                }),
            ),
            EventKind::ChildRenamed {
                display_name: "Mia K.".into(),
                previous_display_name: "Mia".into(),
            },
        ),
        (
            event(
                15,
                "23:00",
                anna(),
                "",
                Payload::ChildRemoved(v1::ChildRemoved {
                    history_forgotten: false,
                }),
            ),
            EventKind::ChildRemoved {
                history_forgotten: false,
            },
        ),
        (
            event(
                16,
                "07:02",
                anna(),
                "d-tablet",
                Payload::DeviceAdded(v1::DeviceAdded {
                    display_name: "Tablet".into(),
                    kind: v1::DeviceKind::Agent.into(),
                    legacy_address: String::new(),
                }),
            ),
            EventKind::DeviceAdded {
                device: tablet(),
                display_name: "Tablet".into(),
                legacy_address: None,
            },
        ),
        (
            event(
                17,
                "07:03",
                anna(),
                "d-tablet",
                Payload::DeviceRenamed(v1::DeviceRenamed {
                    display_name: "Mia's tablet".into(),
                    previous_display_name: "Tablet".into(),
                }),
            ),
            EventKind::DeviceRenamed {
                device: tablet(),
                display_name: "Mia's tablet".into(),
                previous_display_name: "Tablet".into(),
            },
        ),
        (
            event(
                18,
                "22:00",
                anna(),
                "d-tablet",
                Payload::DeviceRemoved(v1::DeviceRemoved {}),
            ),
            EventKind::DeviceRemoved { device: tablet() },
        ),
        (
            v1::Event {
                child_id: String::new(),
                ..event(
                    19,
                    "12:00",
                    guardian("g-grandma"),
                    "",
                    Payload::GuardianEnrolled(v1::GuardianEnrolled {
                        display_name: "Grandma".into(),
                        certificate_sha256_hex: String::new(),
                    }),
                )
            },
            EventKind::GuardianEnrolled {
                display_name: "Grandma".into(),
            },
        ),
        (
            v1::Event {
                child_id: String::new(),
                ..event(
                    20,
                    "12:30",
                    anna(),
                    "",
                    Payload::IdentityRevoked(v1::IdentityRevoked {
                        identity_id: "g-grandma".into(),
                        role: v1::Role::Guardian.into(),
                        credential_id: "tok-7".into(),
                    }),
                )
            },
            EventKind::IdentityRevoked {
                identity: Identity::Guardian {
                    id: GuardianId::from("g-grandma"),
                },
                credential_id: Some("tok-7".into()),
            },
        ),
        (
            v1::Event {
                child_id: String::new(),
                ..event(
                    21,
                    "11:55",
                    anna(),
                    "",
                    Payload::GuardianInvited(v1::GuardianInvited {
                        guardian_id: "g-grandma".into(),
                        display_name: "Grandma".into(),
                        expires_unix_micros: micros("23:55"),
                        another_credential: false,
                    }),
                )
            },
            EventKind::GuardianInvited {
                guardian: GuardianId::from("g-grandma"),
                display_name: "Grandma".into(),
            },
        ),
    ];
    for (event, _) in &cases {
        match event.payload.as_ref().unwrap() {
            Payload::UsageReported(_)
            | Payload::TimeGranted(_)
            | Payload::Locked(_)
            | Payload::Unlocked(_)
            | Payload::PolicyChanged(_)
            | Payload::TimeRequested(_)
            | Payload::RequestResolved(_)
            | Payload::ExtensionCreditSpent(_)
            | Payload::DeviceEnrolled(_)
            | Payload::DeviceOnline(_)
            | Payload::DeviceOffline(_)
            | Payload::LegacyCommand(_)
            | Payload::ChildAdded(_)
            | Payload::ChildRenamed(_)
            | Payload::ChildRemoved(_)
            | Payload::DeviceAdded(_)
            | Payload::DeviceRenamed(_)
            | Payload::DeviceRemoved(_)
            | Payload::GuardianEnrolled(_)
            | Payload::IdentityRevoked(_)
            | Payload::GuardianInvited(_)
            | Payload::DeviceTrouble(_) => {}
        }
    }
    cases
}

#[test]
fn every_event_kind_converts_to_the_core_kind_it_means() {
    let cases = one_of_each();
    let kinds: std::collections::BTreeSet<_> = cases
        .iter()
        .map(|(e, _)| e.payload.as_ref().unwrap().kind())
        .collect();
    assert_eq!(kinds.len(), 22, "one case per payload kind");
    for (event, kind) in cases {
        let core = event_to_core(&event).unwrap_or_else(|e| panic!("{event:?}: {e}"));
        assert_eq!(core.kind, kind, "seq {}", event.seq);
        assert_eq!(core.seq, event.seq);
        assert_eq!(core.at.as_microsecond(), event.time_unix_micros);
        assert_eq!(core.child.0, event.child_id);
        assert_eq!(
            core.device.as_ref().map(|d| d.0.as_str()).unwrap_or(""),
            event.device_id
        );
        assert_eq!(core.kind.is_household_wide(), event.child_id.is_empty());
    }
}

#[test]
fn actors_convert_both_ways() {
    for (api, core) in [
        (
            guardian("g-anna"),
            Actor::Guardian {
                id: GuardianId::from("g-anna"),
            },
        ),
        (
            device_actor("d-tablet"),
            Actor::Device {
                id: DeviceId::from("d-tablet"),
            },
        ),
        (
            v1::Actor {
                kind: Some(v1::actor::Kind::LegacyAddress("192.168.1.40:50123".into())),
                credential_id: String::new(),
            },
            Actor::LegacyAddress {
                address: "192.168.1.40:50123".into(),
            },
        ),
        (
            v1::Actor {
                kind: Some(v1::actor::Kind::System(v1::SystemActor {
                    reason: "admin socket".into(),
                })),
                credential_id: String::new(),
            },
            Actor::System,
        ),
    ] {
        assert_eq!(actor_to_core(Some(&api), "actor"), Ok(core.clone()));
        let back = actor_to_proto(&core);
        assert_eq!(back.credential_id, "");
        assert_eq!(actor_to_core(Some(&back), "actor"), Ok(core));
    }
    assert_eq!(
        actor_to_core(None, "policy.updated_by"),
        Err(ConvertError::Missing {
            field: "policy.updated_by".into()
        })
    );
    assert_eq!(
        actor_to_core(Some(&guardian("")), "actor")
            .unwrap_err()
            .field(),
        "actor.guardian_id"
    );
}

#[test]
fn a_bad_event_names_the_field() {
    let field_of = |event: v1::Event| event_to_core(&event).unwrap_err();
    let anna = || guardian("g-anna");

    let seven = field_of(event(
        1,
        "16:30",
        device_actor("d-tablet"),
        "d-tablet",
        Payload::ExtensionCreditSpent(v1::ExtensionCreditSpent {
            minutes: 7,
            day: None,
            spent_unix_micros: micros("16:03"),
        }),
    ));
    assert_eq!(seven.field(), "extension_credit_spent.minutes");
    assert_eq!(
        seven.message(),
        "extension_credit_spent.minutes is 7; allowed values are 5 or 10"
    );

    let pending = field_of(event(
        2,
        "16:05",
        anna(),
        "",
        Payload::RequestResolved(v1::RequestResolved {
            request_id: "r-1".into(),
            status: v1::TimeRequestStatus::Pending.into(),
            granted_minutes: 0,
            note: String::new(),
            day: None,
        }),
    ));
    assert_eq!(
        pending.message(),
        "request_resolved.status is 1 (TIME_REQUEST_STATUS_PENDING); allowed values are \
         TIME_REQUEST_STATUS_APPROVED, TIME_REQUEST_STATUS_DENIED"
    );

    let mut policy = household_policy();
    policy.time_zone = "Mars/Base".into();
    let mars = field_of(event(
        3,
        "09:00",
        anna(),
        "",
        Payload::PolicyChanged(v1::PolicyChanged {
            policy: Some(policy),
            previous_revision: 3,
        }),
    ));
    assert_eq!(mars.field(), "policy_changed.policy.time_zone");

    let no_device = field_of(event(
        4,
        "22:00",
        anna(),
        "",
        Payload::DeviceRemoved(v1::DeviceRemoved {}),
    ));
    assert_eq!(no_device.field(), "device_id");

    let unknown_role = field_of(event(
        5,
        "12:30",
        anna(),
        "",
        Payload::IdentityRevoked(v1::IdentityRevoked {
            identity_id: "g-grandma".into(),
            role: 9,
            credential_id: String::new(),
        }),
    ));
    assert_eq!(
        unknown_role.message(),
        "identity_revoked.role is 9; allowed values are ROLE_GUARDIAN, ROLE_DEVICE"
    );

    let mut no_payload = event(
        6,
        "12:00",
        anna(),
        "",
        Payload::ChildAdded(v1::ChildAdded::default()),
    );
    no_payload.payload = None;
    assert_eq!(field_of(no_payload).field(), "payload");

    let mut far = event(
        7,
        "12:00",
        anna(),
        "",
        Payload::ChildAdded(v1::ChildAdded::default()),
    );
    far.time_unix_micros = i64::MAX;
    assert_eq!(field_of(far).field(), "time_unix_micros");

    let unspecified = field_of(event(
        8,
        "10:39",
        device_actor("d-tablet"),
        "d-tablet",
        Payload::LegacyCommand(v1::LegacyCommand {
            command: v1::LegacyCommandKind::GetTimeLeft.into(),
            ..v1::LegacyCommand::default()
        }),
    ));
    assert_eq!(unspecified.field(), "legacy_command.outcome");
}

#[test]
fn events_logged_before_the_new_fields_read_as_logged_when_they_were() {
    let request = event_to_core(&event(
        1,
        "16:00",
        device_actor("d-tablet"),
        "d-tablet",
        Payload::TimeRequested(v1::TimeRequested {
            request_id: "r-1".into(),
            minutes: 30,
            ..v1::TimeRequested::default()
        }),
    ))
    .unwrap();
    assert!(matches!(
        request.kind,
        EventKind::TimeRequested {
            requested_at: None,
            ..
        }
    ));
    let unlock = event_to_core(&event(
        2,
        "17:00",
        guardian("g-anna"),
        "d-phone",
        Payload::Unlocked(v1::Unlocked::default()),
    ))
    .unwrap();
    assert_eq!(
        unlock.kind,
        EventKind::Unlocked {
            device: Some(DeviceId::from("d-phone")),
            until: None
        }
    );
}

/// Mia's Monday from the API's log, folded through the conversions: 14:00-16:02 on the
/// tablet (BLOCKED), the phone locked on its own at 18:00, Anna's unlock until 20:45 at
/// 19:00, a request made at 19:10.
fn mias_monday() -> Projection {
    let policy = policy_to_core(&household_policy()).unwrap();
    let log = [
        event(
            1,
            "16:02",
            device_actor("d-tablet"),
            "d-tablet",
            Payload::UsageReported(v1::UsageReported {
                start_unix_micros: micros("14:00"),
                end_unix_micros: micros("16:02"),
            }),
        ),
        event(
            2,
            "18:00",
            guardian("g-ben"),
            "d-phone",
            Payload::Locked(v1::Locked {
                until_unix_micros: None,
                reason: "phone stays in the kitchen".into(),
            }),
        ),
        event(
            3,
            "19:00",
            guardian("g-anna"),
            "",
            Payload::Unlocked(v1::Unlocked {
                reason: "film night".into(),
                until_unix_micros: Some(micros("20:45")),
            }),
        ),
        event(
            4,
            "19:05",
            guardian("g-ben"),
            "d-phone",
            Payload::Locked(v1::Locked {
                until_unix_micros: None,
                reason: "phone stays in the kitchen".into(),
            }),
        ),
        event(
            5,
            "19:10",
            device_actor("d-tablet"),
            "d-tablet",
            Payload::TimeRequested(v1::TimeRequested {
                request_id: "r-1".into(),
                minutes: 30,
                note: "and the next one".into(),
                day: None,
                requested_unix_micros: micros("19:10"),
            }),
        ),
    ];
    let events: Vec<_> = log.iter().map(|e| event_to_core(e).unwrap()).collect();
    Projection::from_events(ChildId::from("c-mia"), policy, &events).unwrap()
}

#[test]
fn a_status_reads_in_the_api_as_the_rules_decided_it() {
    let projection = mias_monday();
    let now = ts("19:30");
    let status = projection.status_at(now);
    assert_eq!(status.state, ChildState::Active);
    let devices = [
        DeviceInfo {
            device_id: "d-tablet",
            display_name: "Tablet",
            online: true,
            last_seen_unix_micros: micros("19:29"),
        },
        DeviceInfo {
            device_id: "d-phone",
            display_name: "Phone",
            online: false,
            last_seen_unix_micros: 0,
        },
    ];
    let api = child_status_to_proto(&status, "c-mia", "Mia", &devices, 1, 4, 5, micros("19:30"));
    assert_eq!(api.state, i32::from(v1::ScreenState::Active));
    assert_eq!(
        api.day,
        Some(v1::Date {
            year: 2025,
            month: 6,
            day: 2
        })
    );
    assert_eq!(
        (
            api.allowance_seconds,
            api.used_seconds,
            api.remaining_seconds,
            api.grace_remaining_seconds
        ),
        (120 * 60, 122 * 60, 0, 0)
    );
    assert_eq!(
        api.credits_left,
        Some(v1::ExtensionCredits {
            five_minute_count: 2,
            ten_minute_count: 1
        })
    );
    assert_eq!(api.lock, None);
    // The unlock's WARNING begins at 20:40: the next change.
    assert_eq!(api.next_change_unix_micros, Some(micros("20:40")));
    assert_eq!(
        (
            api.pending_request_count,
            api.policy_revision,
            api.as_of_seq,
            api.computed_unix_micros
        ),
        (1, 4, 5, micros("19:30"))
    );
    let tablet = &api.devices[0];
    assert_eq!(
        (
            tablet.device_id.as_str(),
            tablet.state,
            tablet.online,
            tablet.used_seconds_today,
            tablet.lock.is_none()
        ),
        (
            "d-tablet",
            i32::from(v1::ScreenState::Active),
            true,
            122 * 60,
            true
        )
    );
    let phone = &api.devices[1];
    assert_eq!(
        (phone.state, phone.used_seconds_today),
        (i32::from(v1::ScreenState::Locked), 0)
    );
    let lock = phone.lock.as_ref().unwrap();
    assert_eq!(
        (
            lock.locked,
            lock.until_unix_micros,
            lock.locked_unix_micros,
            lock.reason.as_str()
        ),
        (true, None, micros("19:05"), "phone stays in the kitchen")
    );
    assert_eq!(
        actor_to_core(lock.locked_by.as_ref(), "locked_by"),
        Ok(Actor::Guardian {
            id: GuardianId::from("g-ben")
        })
    );

    let served = policy_from_core(projection.policy(), 4, micros("09:00"), None);
    let budget = budget_to_proto(&status, "d-phone", served.clone(), 5, micros("19:30"));
    assert_eq!(budget.state, i32::from(v1::ScreenState::Locked));
    assert_eq!(budget.device_lock, phone.lock);
    assert_eq!(budget.child_lock, None);
    assert_eq!(budget.policy, Some(served.clone()));
    let budget = budget_to_proto(&status, "d-tablet", served, 5, micros("19:30"));
    assert_eq!(
        (
            budget.state,
            budget.device_lock,
            budget.next_change_unix_micros
        ),
        (
            i32::from(v1::ScreenState::Active),
            None,
            Some(micros("20:40"))
        )
    );

    // After the unlock: bedtime, as on any night.
    let later = projection.status_at(ts("20:45"));
    let api = child_status_to_proto(&later, "c-mia", "Mia", &devices, 1, 4, 5, 0);
    assert_eq!(api.state, i32::from(v1::ScreenState::Downtime));
}

#[test]
fn a_request_reads_as_it_stands() {
    let mut projection = mias_monday();
    let id = RequestId::from("r-1");
    let pending = time_request_to_proto(
        projection.request(&id).unwrap(),
        "c-mia",
        "d-tablet",
        ts("19:30"),
    );
    assert_eq!(
        (
            pending.request_id.as_str(),
            pending.device_id.as_str(),
            pending.minutes,
            pending.note.as_str(),
            pending.requested_unix_micros,
            pending.status,
            pending.resolved_by.is_none(),
            pending.resolved_unix_micros,
        ),
        (
            "r-1",
            "d-tablet",
            30,
            "and the next one",
            micros("19:10"),
            i32::from(v1::TimeRequestStatus::Pending),
            true,
            0
        )
    );
    assert_eq!(pending.day, Some(date_to_proto(date(2025, 6, 2))));
    // Unanswered at midnight, it has expired.
    let expired = time_request_to_proto(
        projection.request(&id).unwrap(),
        "c-mia",
        "d-tablet",
        "2025-06-03T00:00:00+02:00".parse().unwrap(),
    );
    assert_eq!(expired.status, i32::from(v1::TimeRequestStatus::Expired));

    let approve = event(
        6,
        "19:40",
        guardian("g-anna"),
        "",
        Payload::RequestResolved(v1::RequestResolved {
            request_id: "r-1".into(),
            status: v1::TimeRequestStatus::Approved.into(),
            granted_minutes: 20,
            note: "20 is enough".into(),
            day: None,
        }),
    );
    projection.apply(&event_to_core(&approve).unwrap());
    let approved = time_request_to_proto(
        projection.request(&id).unwrap(),
        "c-mia",
        "d-tablet",
        ts("19:45"),
    );
    assert_eq!(
        (
            approved.status,
            approved.granted_minutes,
            approved.resolved_unix_micros
        ),
        (
            i32::from(v1::TimeRequestStatus::Approved),
            20,
            micros("19:40")
        )
    );
    assert_eq!(
        approved.resolved_by,
        Some(actor_to_proto(&Actor::Guardian {
            id: GuardianId::from("g-anna")
        }))
    );
}

#[test]
fn states_keep_their_names() {
    for state in [
        ChildState::Active,
        ChildState::Warning,
        ChildState::Grace,
        ChildState::Blocked,
        ChildState::Downtime,
        ChildState::Locked,
    ] {
        assert_eq!(
            state_to_proto(state).as_str_name(),
            format!("SCREEN_STATE_{}", state.name())
        );
    }
}

#[test]
fn credits_convert_with_their_counts() {
    assert_eq!(
        credits_to_proto(household_core::CreditsLeft {
            five_minute: 1,
            ten_minute: 0
        }),
        v1::ExtensionCredits {
            five_minute_count: 1,
            ten_minute_count: 0
        }
    );
}
