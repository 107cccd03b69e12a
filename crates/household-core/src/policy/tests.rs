use std::collections::BTreeSet;

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
    assert_eq!(policy.time_zone, "UTC");
    for day in Weekday::ALL {
        assert_eq!(policy.daily_minutes.for_weekday(day), 120);
    }
    assert!(policy.downtime.is_empty());
    assert_eq!(
        policy.extension_credits_per_day,
        Credits {
            five_minute_count: 2,
            ten_minute_count: 1
        }
    );
    assert_eq!(policy.grace_minutes, 1);
}

#[test]
fn full_toml_shape_reads() {
    let text = r#"
        revision = 3
        time_zone = "Europe/Berlin"
        grace_minutes = 2

        [daily_minutes]
        default = 120
        sat = 180
        sun = 180

        [[bedtime]]
        days = ["sun", "mon", "tue", "wed", "thu"]
        start = "21:00"
        end = "07:00"

        [extension_credits_per_day]
        five_minute_count = 2
        ten_minute_count = 1

        [[exceptions]]
        date = "2025-12-24"
        daily_minutes = 240
        skip_downtime = true
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
    assert_eq!(policy.extension_credits_per_day, Credits::default());
    let policy: Policy = toml::from_str("[daily_minutes]\nsat = 200").unwrap();
    assert_eq!(policy.daily_minutes.for_weekday(Weekday::Mon), 120);
    assert_eq!(policy.daily_minutes.for_weekday(Weekday::Sat), 200);
}

#[test]
fn toml_round_trip_keeps_everything() {
    let mut policy = Policy {
        time_zone: "America/New_York".into(),
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
        skip_downtime: true,
        note: None,
    });
    let text = toml::to_string(&policy).unwrap();
    assert!(text.contains("start = \"22:30\""), "{text}");
    let back: Policy = toml::from_str(&text).unwrap();
    assert_eq!(back, policy);
}

#[test]
fn earlier_spellings_still_read() {
    let text = r#"
        timezone = "Europe/Berlin"
        [credits]
        five_minute = 3
        ten_minute = 0
        [[exceptions]]
        date = "2025-12-24"
        no_bedtime = true
        [[exceptions]]
        date = "2025-12-31"
        no_downtime = true
    "#;
    let policy: Policy = toml::from_str(text).unwrap();
    assert_eq!(policy.time_zone, "Europe/Berlin");
    assert_eq!(
        policy.extension_credits_per_day,
        Credits {
            five_minute_count: 3,
            ten_minute_count: 0
        }
    );
    assert!(policy.exceptions.iter().all(|e| e.skip_downtime));
    // Written back, the API's names are used.
    let written = toml::to_string(&policy).unwrap();
    assert!(written.contains("time_zone = "), "{written}");
    assert!(written.contains("five_minute_count = 3"), "{written}");
    assert!(written.contains("skip_downtime = true"), "{written}");
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
        extension_credits_per_day: Credits {
            five_minute_count: -1,
            ten_minute_count: 1,
        },
        ..Policy::default()
    };
    assert_eq!(
        policy.validate(),
        Err(InputError::out_of_range(
            "extension_credits_per_day.five_minute_count",
            -1,
            0,
            12
        ))
    );
    let policy = Policy {
        exceptions: vec![DayException {
            date: date(2025, 1, 1),
            daily_minutes: Some(1441),
            skip_downtime: false,
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
        time_zone: "Mars/Olympus".into(),
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
        skip_downtime: false,
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

fn week(minutes: [i64; 7]) -> Vec<WeekdayRule> {
    (1..=7)
        .zip(minutes)
        .map(|(weekday, daily_minutes)| WeekdayRule {
            weekday,
            daily_minutes,
            downtime_windows: Vec::new(),
        })
        .collect()
}

#[test]
fn weekday_rules_in_the_apis_shape_round_trip() {
    let mut policy = Policy {
        time_zone: "Europe/Berlin".into(),
        ..Policy::default()
    };
    policy.daily_minutes.set(Weekday::Sat, 180);
    policy.daily_minutes.set(Weekday::Sun, 180);
    policy.downtime.push(DowntimeWindow {
        days: Some(vec![Weekday::Fri, Weekday::Sat]),
        start: hm(22, 0),
        end: hm(8, 30),
        label: Some("bedtime".into()),
    });
    policy
        .downtime
        .push(DowntimeWindow::every_day(hm(12, 0), hm(12, 30)));
    let rules = policy.weekday_rules();
    assert_eq!(rules.len(), 7);
    assert_eq!((rules[0].weekday, rules[0].daily_minutes), (1, 120));
    assert_eq!((rules[5].weekday, rules[5].daily_minutes), (6, 180));
    assert_eq!(
        rules[4].downtime_windows[0],
        WeekdayWindow {
            start_minute_of_day: 1320,
            end_minute_of_day: 510,
            label: Some("bedtime".into())
        }
    );
    assert_eq!(rules[0].downtime_windows.len(), 1);

    // The API may list the weekdays in any order.
    let mut shuffled = rules.clone();
    shuffled.reverse();
    let mut back = Policy {
        time_zone: "Europe/Berlin".into(),
        ..Policy::default()
    };
    back.set_weekday_rules(&shuffled).unwrap();
    back.validate().unwrap();
    assert_eq!(back.weekday_rules(), rules);
    assert_eq!(back.daily_minutes, policy.daily_minutes);
    for day in 1..=7 {
        let date = date(2025, 6, day + 1); // Monday 2 June 2025 onwards
        assert_eq!(back.allowance_minutes(date), policy.allowance_minutes(date));
        let windows = |p: &Policy| {
            p.downtime_starting_on(date)
                .map(|w| (w.start, w.end))
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(windows(&back), windows(&policy));
    }
}

#[test]
fn weekday_rules_errors_name_the_apis_fields() {
    let mut policy = Policy::default();
    let before = policy.clone();

    let err = policy.set_weekday_rules(&week([90; 7])[..6]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "weekdays has 6 entries; exactly 7 are required"
    );

    let mut rules = week([90; 7]);
    rules[2].daily_minutes = 1500;
    let err = policy.set_weekday_rules(&rules).unwrap_err();
    assert_eq!(
        err.within("policy").to_string(),
        "policy.weekdays[2].daily_minutes is 1500; allowed range is 0..=1440"
    );

    let mut rules = week([90; 7]);
    rules[6].weekday = 0;
    let err = policy.set_weekday_rules(&rules).unwrap_err();
    assert_eq!(
        err.to_string(),
        "weekdays[6].weekday is 0; allowed range is 1..=7"
    );
    rules[6].weekday = 1;
    let err = policy.set_weekday_rules(&rules).unwrap_err();
    assert_eq!(
        err.to_string(),
        "weekdays[6].weekday: more than one rule for mon; allowed is one per weekday"
    );

    let window = |start, end| WeekdayWindow {
        start_minute_of_day: start,
        end_minute_of_day: end,
        label: None,
    };
    let mut rules = week([90; 7]);
    rules[0].downtime_windows = vec![window(1260, 420), window(1440, 420)];
    let err = policy.set_weekday_rules(&rules).unwrap_err();
    assert_eq!(
        err.to_string(),
        "weekdays[0].downtime_windows[1].start_minute_of_day is 1440; allowed range is 0..=1439"
    );
    rules[0].downtime_windows[1] = window(780, 780);
    let err = policy.set_weekday_rules(&rules).unwrap_err();
    assert_eq!(
        err.field(),
        "weekdays[0].downtime_windows[1].end_minute_of_day"
    );
    assert!(
        err.to_string().contains("starts and ends at 13:00"),
        "{err}"
    );
    rules[0].downtime_windows = (0..5).map(|h| window(h * 60, h * 60 + 30)).collect();
    let err = policy.set_weekday_rules(&rules).unwrap_err();
    assert_eq!(
        err.to_string(),
        "weekdays[0].downtime_windows has 5 entries; allowed is at most 4"
    );
    // Nothing was taken from the refused rules.
    assert_eq!(policy, before);
}

#[test]
fn the_messages_docs_api_md_shows() {
    let mut policy = Policy::default();
    let mut rules = week([90; 7]);
    rules[0].downtime_windows = vec![
        WeekdayWindow {
            start_minute_of_day: 1260,
            end_minute_of_day: 420,
            label: None,
        },
        WeekdayWindow {
            start_minute_of_day: 780,
            end_minute_of_day: 780,
            label: None,
        },
    ];
    let message = |e: InputError| e.within("policy").to_string();
    assert_eq!(
        message(policy.set_weekday_rules(&rules).unwrap_err()),
        "policy.weekdays[0].downtime_windows[1].end_minute_of_day: window starts and ends at \
         13:00; a window must end at a different time than it starts"
    );
    policy.time_zone = "Mars/Olympus".into();
    assert_eq!(
        message(policy.validate().unwrap_err()),
        "policy.time_zone: unknown time zone \"Mars/Olympus\"; expected an IANA name such as \
         \"Europe/Berlin\""
    );
    policy.time_zone = "UTC".into();
    policy.extension_credits_per_day.five_minute_count = 13;
    assert_eq!(
        message(policy.validate().unwrap_err()),
        "policy.extension_credits_per_day.five_minute_count is 13; allowed range is 0..=12"
    );
    assert_eq!(
        crate::grant::check_grant_minutes(0)
            .unwrap_err()
            .to_string(),
        "minutes is 0; allowed range is 1..=1440"
    );
}
