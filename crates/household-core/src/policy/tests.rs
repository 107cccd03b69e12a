use jiff::civil::date;

use super::*;
use crate::time::ClockTime;

fn hm(h: i64, m: i64) -> ClockTime {
    ClockTime::new(h, m).unwrap()
}

#[test]
fn default_policy_is_valid_and_documented() {
    let policy = Policy::default();
    policy.validate().unwrap();
    assert_eq!(policy.timezone, "UTC");
    for day in Weekday::ALL {
        assert_eq!(policy.daily_minutes.for_weekday(day), 120);
    }
    assert!(policy.downtime.is_empty());
    assert_eq!(
        policy.credits,
        Credits {
            five_minute: 2,
            ten_minute: 1
        }
    );
    assert_eq!(policy.grace_minutes, 1);
}

#[test]
fn full_toml_shape_reads() {
    let text = r#"
        revision = 3
        timezone = "Europe/Berlin"
        grace_minutes = 2

        [daily_minutes]
        default = 120
        sat = 180
        sun = 180

        [[bedtime]]
        days = ["sun", "mon", "tue", "wed", "thu"]
        start = "21:00"
        end = "07:00"

        [credits]
        five_minute = 2
        ten_minute = 1

        [[exceptions]]
        date = "2025-12-24"
        daily_minutes = 240
        no_bedtime = true
    "#;
    let policy: Policy = toml::from_str(text).unwrap();
    policy.validate().unwrap();
    assert_eq!(policy.revision, 3);
    assert_eq!(policy.daily_minutes.for_weekday(Weekday::Sat), 180);
    assert_eq!(policy.daily_minutes.for_weekday(Weekday::Fri), 120);
    assert_eq!(policy.downtime.len(), 1);
    assert!(policy.downtime[0].crosses_midnight());
    assert!(!policy.downtime[0].starts_on(Weekday::Fri));
    assert_eq!(policy.allowance_minutes(date(2025, 12, 24)), 240);
    assert_eq!(policy.downtime_starting_on(date(2025, 12, 24)).count(), 0);
    assert_eq!(policy.downtime_starting_on(date(2025, 12, 22)).count(), 1);
    assert_eq!(policy.allowance_minutes(date(2025, 12, 27)), 180);
}

#[test]
fn short_toml_shapes_read_and_missing_fields_default() {
    let policy: Policy =
        toml::from_str("daily_minutes = 90\ntimezone = \"Europe/Berlin\"").unwrap();
    assert_eq!(policy.daily_minutes, DailyMinutes::every_day(90));
    assert_eq!(policy.credits, Credits::default());
    let policy: Policy = toml::from_str("[daily_minutes]\nsat = 200").unwrap();
    assert_eq!(policy.daily_minutes.for_weekday(Weekday::Mon), 120);
    assert_eq!(policy.daily_minutes.for_weekday(Weekday::Sat), 200);
}

#[test]
fn toml_round_trip_keeps_everything() {
    let mut policy = Policy {
        timezone: "America/New_York".into(),
        revision: 7,
        ..Policy::default()
    };
    policy.daily_minutes.set(Weekday::Wed, 45);
    policy.downtime.push(DowntimeWindow {
        days: Some(vec![Weekday::Fri, Weekday::Sat]),
        start: hm(22, 30),
        end: hm(8, 0),
        label: Some("weekend bedtime".into()),
    });
    policy
        .downtime
        .push(DowntimeWindow::every_day(hm(12, 0), hm(13, 0)));
    policy.exceptions.push(DayException {
        date: date(2025, 7, 4),
        daily_minutes: None,
        no_downtime: true,
        note: None,
    });
    let text = toml::to_string(&policy).unwrap();
    assert!(text.contains("start = \"22:30\""), "{text}");
    let back: Policy = toml::from_str(&text).unwrap();
    assert_eq!(back, policy);
}

#[test]
fn unknown_fields_are_rejected() {
    assert!(toml::from_str::<Policy>("grace_minute = 2").is_err());
    assert!(toml::from_str::<Policy>("[credits]\nfive_minutes = 2").is_err());
}

#[test]
fn out_of_range_minutes_name_the_field_and_range() {
    let mut policy = Policy::default();
    policy.daily_minutes.set(Weekday::Mon, -5);
    assert_eq!(
        policy.validate(),
        Err(InputError::out_of_range("daily_minutes.mon", -5, 0, 1440))
    );
    let policy = Policy {
        daily_minutes: DailyMinutes::every_day(5000),
        ..Policy::default()
    };
    assert_eq!(
        policy.validate(),
        Err(InputError::out_of_range(
            "daily_minutes.default",
            5000,
            0,
            1440
        ))
    );
    let policy = Policy {
        grace_minutes: 31,
        ..Policy::default()
    };
    assert_eq!(
        policy.validate(),
        Err(InputError::out_of_range("grace_minutes", 31, 0, 30))
    );
    let policy = Policy {
        credits: Credits {
            five_minute: -1,
            ten_minute: 1,
        },
        ..Policy::default()
    };
    assert_eq!(
        policy.validate(),
        Err(InputError::out_of_range("credits.five_minute", -1, 0, 12))
    );
    let policy = Policy {
        exceptions: vec![DayException {
            date: date(2025, 1, 1),
            daily_minutes: Some(1441),
            no_downtime: false,
            note: None,
        }],
        ..Policy::default()
    };
    assert_eq!(
        policy.validate(),
        Err(InputError::out_of_range(
            "exceptions[0].daily_minutes",
            1441,
            0,
            1440
        ))
    );
}

#[test]
fn a_window_that_ends_where_it_starts_is_refused() {
    let policy = Policy {
        downtime: vec![
            DowntimeWindow::every_day(hm(21, 0), hm(7, 0)),
            DowntimeWindow::every_day(hm(13, 0), hm(13, 0)),
        ],
        ..Policy::default()
    };
    let err = policy.validate().unwrap_err();
    assert_eq!(
        err,
        InputError::EmptyWindow {
            field: "downtime[1].end".into(),
            at: "13:00".into()
        }
    );
    assert!(err.to_string().contains("downtime[1].end"));
}

#[test]
fn other_invalid_policies() {
    let policy = Policy {
        timezone: "Mars/Olympus".into(),
        ..Policy::default()
    };
    assert!(matches!(
        policy.validate(),
        Err(InputError::UnknownTimeZone { .. })
    ));

    let policy = Policy {
        downtime: vec![DowntimeWindow {
            days: Some(vec![]),
            start: hm(21, 0),
            end: hm(7, 0),
            label: None,
        }],
        ..Policy::default()
    };
    assert_eq!(policy.validate().unwrap_err().field(), "downtime[0].days");

    let exception = DayException {
        date: date(2025, 1, 1),
        daily_minutes: Some(10),
        no_downtime: false,
        note: None,
    };
    let policy = Policy {
        exceptions: vec![exception.clone(), exception],
        ..Policy::default()
    };
    assert_eq!(policy.validate().unwrap_err().field(), "exceptions[1].date");

    let bad_time = toml::from_str::<Policy>("[[downtime]]\nstart = \"25:00\"\nend = \"07:00\"");
    assert!(bad_time.unwrap_err().to_string().contains("HH:MM"));
}

#[test]
fn limits_on_windows_per_weekday_and_text_lengths() {
    let mut policy = Policy::default();
    for h in 0..4 {
        policy
            .downtime
            .push(DowntimeWindow::every_day(hm(h, 0), hm(h, 30)));
    }
    policy.validate().unwrap();
    policy.downtime.push(DowntimeWindow {
        days: Some(vec![Weekday::Tue]),
        start: hm(12, 0),
        end: hm(13, 0),
        label: None,
    });
    let err = policy.validate().unwrap_err();
    assert!(
        matches!(err, InputError::TooMany { len: 5, max: 4, .. }),
        "{err}"
    );
    assert!(err.field().contains("tue"));

    let mut policy = Policy::default();
    let mut window = DowntimeWindow::every_day(hm(21, 0), hm(7, 0));
    window.label = Some("x".repeat(65));
    policy.downtime.push(window);
    assert_eq!(
        policy.validate(),
        Err(InputError::TooLong {
            field: "downtime[0].label".into(),
            len: 65,
            max: 64
        })
    );
}
