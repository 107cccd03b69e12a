//! Hand-worked days: the examples of `docs/rules.md`, checked.
//!
//! The household: Europe/Berlin, 120 minutes on weekdays and 180 at weekends, bedtime
//! 20:30–07:00 from Sunday to Thursday night and 22:00–08:30 on Friday and Saturday
//! night, 2 minutes of grace, two 5-minute and one 10-minute credit per day.

mod common;

use common::*;
use household_core::*;
use jiff::civil::date;

fn at(text: &str) -> Option<jiff::Timestamp> {
    Some(t(text))
}

#[test]
fn an_ordinary_day() {
    // Monday 2 June 2025, 120 minutes.
    let mut s = Script::household();
    s.used("tablet", "2025-06-02 07:30", "2025-06-02 08:00");
    s.used("tablet", "2025-06-02 15:00", "2025-06-02 16:00");
    let st = s.status("2025-06-02 16:00");
    assert_eq!(
        (st.state, st.used_minutes(), st.remaining_minutes()),
        (ChildState::Active, 90, 30)
    );
    assert_eq!(st.cst().reply_text(), "TIME_LEFT|30|ACTIVE|120");
    assert_eq!(st.next_change_at, at("2025-06-02 16:25"));

    s.used("tablet", "2025-06-02 16:00", "2025-06-02 16:25");
    let st = s.status("2025-06-02 16:25");
    assert_eq!((st.state, st.remaining_minutes()), (ChildState::Warning, 5));
    assert_eq!(st.grace_remaining_seconds, 120);
    assert_eq!(st.cst().reply_text(), "TIME_LEFT|5|ACTIVE|120");
    assert_eq!(st.next_change_at, at("2025-06-02 16:30"));

    s.used("tablet", "2025-06-02 16:25", "2025-06-02 16:30");
    let st = s.status("2025-06-02 16:30");
    assert_eq!(st.state, ChildState::Grace);
    assert_eq!(st.exhausted_at, at("2025-06-02 16:30"));
    assert_eq!(st.grace_ends_at, at("2025-06-02 16:32"));
    assert_eq!(st.cst().reply_text(), "TIME_LEFT|0|BLOCKED|120");
    assert_eq!(st.next_change_at, at("2025-06-02 16:32"));

    // Saving the game takes the whole grace.
    s.used("tablet", "2025-06-02 16:30", "2025-06-02 16:32");
    let st = s.status("2025-06-02 16:31");
    assert_eq!((st.state, st.used_minutes()), (ChildState::Grace, 121));
    assert_eq!(st.grace_remaining_seconds, 60);
    let st = s.status("2025-06-02 16:32");
    assert_eq!(
        (st.state, st.used_minutes(), st.remaining_seconds),
        (ChildState::Blocked, 122, 0)
    );
    assert_eq!(st.grace_remaining_seconds, 0);
    assert_eq!(st.next_change_at, at("2025-06-02 20:30"));

    // Bedtime outranks BLOCKED; midnight brings a new allowance but bedtime holds.
    let st = s.status("2025-06-02 20:45");
    assert_eq!(st.state, ChildState::Downtime);
    assert_eq!(st.downtime_ends_at, at("2025-06-03 07:00"));
    assert_eq!(st.next_change_at, at("2025-06-03 00:00"));
    let st = s.status("2025-06-03 00:00");
    assert_eq!(
        (st.state, st.remaining_minutes()),
        (ChildState::Downtime, 120)
    );
    assert_eq!(st.cst().reply_text(), "TIME_LEFT|120|BLOCKED|120");
    assert_eq!(s.status("2025-06-03 07:00").state, ChildState::Active);
}

#[test]
fn spring_forward_day_has_23_hours_and_a_shorter_bedtime() {
    // Sunday 30 March 2025: clocks jump from 02:00 to 03:00.
    let s = Script::household();
    let st = s.status("2025-03-29 23:00");
    assert_eq!(st.state, ChildState::Downtime);
    // Saturday 22:00 CET to Sunday 08:30 CEST: 9.5 real hours, not 10.5.
    let end = st.downtime_ends_at.unwrap();
    assert_eq!(end, t("2025-03-30T06:30:00Z"));
    assert_eq!((end - t("2025-03-29 22:00")).get_seconds(), 9 * 3600 + 1800);
    let sunday = s.status("2025-03-30 12:00");
    assert_eq!(sunday.day.length_seconds(), 23 * 3600);
    assert_eq!(sunday.allowance_minutes, 180);
}

#[test]
fn spring_forward_usage_counts_real_minutes_and_splits_at_midnight() {
    // A sleepover: no bedtime on Saturday 29 March, a film from 23:30 to 03:30 by the
    // wall clock, which is 3 real hours because 02:00-03:00 does not exist.
    let mut policy = household_policy();
    policy.exceptions.push(DayException {
        date: date(2025, 3, 29),
        daily_minutes: None,
        skip_downtime: true,
        note: None,
    });
    let mut s = Script::new(policy);
    s.used("tv", "2025-03-29 23:30", "2025-03-30 03:30");
    let saturday = s.status("2025-03-29 23:59");
    assert_eq!(saturday.used_minutes(), 29);
    assert_eq!(s.status("2025-03-29 23:59:59").used_seconds, 30 * 60 - 1);
    let sunday = s.status("2025-03-30 03:30");
    assert_eq!(sunday.day.date, date(2025, 3, 30));
    assert_eq!(sunday.used_minutes(), 150); // 00:00-03:30 on the wall clock is 2.5 h
    assert_eq!(sunday.remaining_minutes(), 30);
    // A request made late on Sunday expires at the 23-hour day's end.
    s.record(
        "2025-03-30 23:30",
        device("tv"),
        EventKind::TimeRequested {
            request_id: RequestId::from("late"),
            minutes: 10,
            note: None,
            requested_at: None,
        },
    );
    let request = s.projection.request(&RequestId::from("late")).unwrap();
    assert_eq!(request.expires_at, t("2025-03-30T22:00:00Z"));
}

#[test]
fn fall_back_day_has_25_hours_and_the_repeated_hour_counts_twice() {
    // Sunday 26 October 2025: clocks go back from 03:00 to 02:00.
    let mut policy = household_policy();
    policy.exceptions.push(DayException {
        date: date(2025, 10, 25),
        daily_minutes: None,
        skip_downtime: true,
        note: None,
    });
    let mut s = Script::new(policy);
    // 01:30 summer time to the second 02:30 (winter time): 2 real hours.
    s.used("tv", "2025-10-26T01:30+02:00", "2025-10-26T02:30+01:00");
    assert_eq!(s.status("2025-10-26T02:15+02:00").used_minutes(), 45);
    assert_eq!(s.status("2025-10-26T02:15+01:00").used_minutes(), 105);
    let st = s.status("2025-10-26T02:30+01:00");
    assert_eq!(st.day.length_seconds(), 25 * 3600);
    assert_eq!((st.used_minutes(), st.remaining_minutes()), (120, 60));

    // Without the exception, Saturday's bedtime lasts 11.5 real hours.
    let s = Script::household();
    let st = s.status("2025-10-25 23:00");
    let end = st.downtime_ends_at.unwrap();
    assert_eq!(end, t("2025-10-26T07:30:00Z"));
    assert_eq!(
        (end - t("2025-10-25 22:00")).get_seconds(),
        11 * 3600 + 1800
    );
}

#[test]
fn window_ends_inside_dst_changes() {
    let window = |start: &str, end: &str| {
        DowntimeWindow::every_day(start.parse().unwrap(), end.parse().unwrap())
    };
    let policy = Policy {
        time_zone: "Europe/Berlin".into(),
        downtime: vec![window("22:00", "02:30")],
        ..Policy::default()
    };
    let s = Script::new(policy);
    // Fall back: 02:30 happens twice; the window ends at the first.
    let st = s.status("2025-10-26T02:15+02:00");
    assert_eq!(st.state, ChildState::Downtime);
    assert_eq!(st.downtime_ends_at, Some(t("2025-10-26T02:30+02:00")));
    assert_eq!(s.status("2025-10-26T02:15+01:00").state, ChildState::Active);
    // Spring forward: 02:30 does not exist; the window ends at 03:30 summer time,
    // 4.5 real hours after 22:00 as on any other night.
    let st = s.status("2025-03-30T03:15+02:00");
    assert_eq!(st.state, ChildState::Downtime);
    assert_eq!(st.downtime_ends_at, Some(t("2025-03-30T03:30+02:00")));
}

#[test]
fn bedtime_crossing_midnight_belongs_to_the_day_it_starts() {
    // Thursday night 20:30-07:00, Friday night 22:00-08:30.
    let mut s = Script::household();
    let st = s.status("2025-06-06 06:59");
    assert_eq!(st.state, ChildState::Downtime);
    assert_eq!(st.downtime_ends_at, at("2025-06-06 07:00"));
    assert_eq!(s.status("2025-06-06 07:00").state, ChildState::Active);
    let st = s.status("2025-06-06 21:59");
    assert_eq!(st.state, ChildState::Active);
    assert_eq!(st.next_downtime_at, at("2025-06-06 22:00"));
    assert_eq!(st.next_change_at, at("2025-06-06 22:00"));
    let st = s.status("2025-06-06 23:30");
    assert_eq!(st.state, ChildState::Downtime);
    assert_eq!(st.downtime_ends_at, at("2025-06-07 08:30"));
    let st = s.status("2025-06-07 08:00");
    assert_eq!(
        (st.state, st.day.date, st.allowance_minutes),
        (ChildState::Downtime, date(2025, 6, 7), 180)
    );
    assert_eq!(s.status("2025-06-07 08:30").state, ChildState::Active);

    // Use across midnight (say the phone was not enforcing) is charged to both days.
    s.used("phone", "2025-06-06 23:50", "2025-06-07 00:20");
    assert_eq!(s.status("2025-06-06 23:59:59").used_seconds, 10 * 60 - 1);
    assert_eq!(s.status("2025-06-07 08:30").used_minutes(), 20);
}

#[test]
fn two_devices_overlapping_count_once() {
    let mut s = Script::household();
    s.used("tablet", "2025-06-02 10:00", "2025-06-02 10:30");
    // The phone reports its open interval as it grows, then closes it.
    s.used("phone", "2025-06-02 10:15", "2025-06-02 10:20");
    s.used("phone", "2025-06-02 10:15", "2025-06-02 10:30");
    s.used("phone", "2025-06-02 10:15", "2025-06-02 10:45");
    s.used("laptop", "2025-06-02 11:00", "2025-06-02 11:10");
    let st = s.status("2025-06-02 12:00");
    // 10:00-10:45 and 11:00-11:10: 55 minutes, though the devices sum to 70.
    assert_eq!(st.used_minutes(), 55);
    let per_device: Vec<(String, i64)> = st
        .used_by_device
        .iter()
        .map(|u| (u.device.to_string(), u.used_seconds / 60))
        .collect();
    assert_eq!(
        per_device,
        vec![
            ("laptop".into(), 10),
            ("phone".into(), 30),
            ("tablet".into(), 30)
        ]
    );
    // A report that sat in an offline outbox arrives late, with a later seq.
    s.used("tablet", "2025-06-02 09:00", "2025-06-02 09:20");
    assert_eq!(s.status("2025-06-02 12:00").used_minutes(), 75);
}

fn blocked_at_1602() -> Script {
    let mut s = Script::household();
    s.used("tablet", "2025-06-02 14:00", "2025-06-02 16:02");
    let st = s.status("2025-06-02 16:02");
    assert_eq!((st.state, st.used_minutes()), (ChildState::Blocked, 122));
    s
}

#[test]
fn two_guardians_granting_at_once_add_up() {
    let mut anna_first = blocked_at_1602();
    anna_first.grant("2025-06-02 17:00", "anna", 15);
    anna_first.grant("2025-06-02 17:00", "ben", 15);
    let mut ben_first = blocked_at_1602();
    ben_first.grant("2025-06-02 17:00", "ben", 15);
    ben_first.grant("2025-06-02 17:00", "anna", 15);
    let st = anna_first.status("2025-06-02 17:00");
    assert_eq!(st, ben_first.status("2025-06-02 17:00"));
    // max(0, 0) + 15, then max(15, 0) + 15. CST's credit = used + n would give 15.
    assert_eq!((st.state, st.remaining_minutes()), (ChildState::Active, 30));
    assert_eq!(st.cst().reply_text(), "TIME_LEFT|30|ACTIVE|152");
    // With time left, a grant adds to it.
    anna_first.grant("2025-06-02 17:05", "anna", 10);
    assert_eq!(
        anna_first.status("2025-06-02 17:05").remaining_minutes(),
        40
    );
}

#[test]
fn a_grant_during_grace_forgives_the_overshoot() {
    let mut s = Script::household();
    s.used("tablet", "2025-06-02 14:00", "2025-06-02 16:01");
    let st = s.status("2025-06-02 16:01");
    assert_eq!(
        (st.state, st.grace_ends_at),
        (ChildState::Grace, at("2025-06-02 16:02"))
    );
    s.grant("2025-06-02 16:01", "anna", 10);
    let st = s.status("2025-06-02 16:01");
    assert_eq!(
        (st.state, st.remaining_minutes(), st.exhausted_at),
        (ChildState::Active, 10, None)
    );
    // When the new credit runs out, a fresh grace starts.
    s.used("tablet", "2025-06-02 16:01", "2025-06-02 16:11");
    let st = s.status("2025-06-02 16:11");
    assert_eq!(st.state, ChildState::Grace);
    assert_eq!(st.grace_ends_at, at("2025-06-02 16:13"));
}

#[test]
fn self_serve_credits_use_the_grant_rule_and_run_out() {
    let mut s = blocked_at_1602();
    let now = t("2025-06-02 16:10");
    let spend = s
        .projection
        .check_credit_spend(CreditSize::FiveMinute, now)
        .unwrap();
    s.record("2025-06-02 16:10", device("tablet"), spend);
    let st = s.status("2025-06-02 16:10");
    assert_eq!((st.state, st.remaining_minutes()), (ChildState::Warning, 5));
    let spend = s
        .projection
        .check_credit_spend(CreditSize::TenMinute, now)
        .unwrap();
    s.record("2025-06-02 16:10", device("tablet"), spend);
    let st = s.status("2025-06-02 16:10");
    assert_eq!((st.state, st.remaining_minutes()), (ChildState::Active, 15));
    assert_eq!(
        st.credits_left,
        CreditsLeft {
            five_minute: 1,
            ten_minute: 0
        }
    );
    assert_eq!(
        s.projection.check_credit_spend(CreditSize::TenMinute, now),
        Err(CreditRefusal::NoneLeft {
            size: CreditSize::TenMinute,
            date: date(2025, 6, 2),
            allowed: 1
        })
    );
    // Credits do not lift bedtime.
    assert_eq!(
        s.projection
            .check_credit_spend(CreditSize::FiveMinute, t("2025-06-02 20:40")),
        Err(CreditRefusal::NotNow {
            state: ChildState::Downtime
        })
    );
}

#[test]
fn a_lock_that_expires() {
    let mut s = Script::household();
    let lock = s
        .projection
        .check_lock(None, at("2025-06-02 15:30"), t("2025-06-02 14:00"))
        .unwrap();
    s.record("2025-06-02 14:00", guardian("anna"), lock);
    let st = s.status("2025-06-02 14:10");
    assert_eq!(st.state, ChildState::Locked);
    assert_eq!(st.lock.as_ref().unwrap().until, at("2025-06-02 15:30"));
    assert_eq!(st.next_change_at, at("2025-06-02 15:30"));
    // As an Android child after LOCK_DEVICE: nothing left while locked.
    assert_eq!(st.cst().reply_text(), "TIME_LEFT|0|BLOCKED|120");
    let st = s.status("2025-06-02 15:30");
    assert_eq!((st.state, st.lock), (ChildState::Active, None));
}

#[test]
fn device_locks_and_unlocking_the_child() {
    let mut s = Script::household();
    let tablet = DeviceId::from("tablet");
    s.record(
        "2025-06-02 16:00",
        guardian("ben"),
        EventKind::Locked {
            device: Some(tablet.clone()),
            until: None,
            reason: Some("homework first".into()),
        },
    );
    let st = s.status("2025-06-02 16:10");
    assert_eq!(st.state, ChildState::Active);
    assert_eq!(st.state_on_device(&tablet), ChildState::Locked);
    assert_eq!(
        st.state_on_device(&DeviceId::from("phone")),
        ChildState::Active
    );
    assert_eq!(st.cst_on_device(&tablet).state, CstState::Blocked);
    assert_eq!(
        st.device_locks[0].lock.reason.as_deref(),
        Some("homework first")
    );
    // Locking again replaces the lock: "until 17:00" shortens an open-ended one.
    s.record(
        "2025-06-02 16:15",
        guardian("anna"),
        EventKind::Locked {
            device: None,
            until: at("2025-06-02 18:00"),
            reason: None,
        },
    );
    s.record(
        "2025-06-02 16:16",
        guardian("anna"),
        EventKind::Locked {
            device: None,
            until: at("2025-06-02 17:00"),
            reason: None,
        },
    );
    assert_eq!(s.status("2025-06-02 16:30").state, ChildState::Locked);
    assert_eq!(
        s.status("2025-06-02 17:00").state_on_device(&tablet),
        ChildState::Locked
    );
    s.record(
        "2025-06-02 17:10",
        guardian("anna"),
        EventKind::Unlocked {
            device: None,
            until: None,
        },
    );
    let st = s.status("2025-06-02 17:10");
    assert_eq!(
        (st.state, st.state_on_device(&tablet)),
        (ChildState::Active, ChildState::Active)
    );
}

#[test]
fn an_exception_day() {
    let mut policy = household_policy();
    policy.exceptions.push(DayException {
        date: date(2025, 12, 24),
        daily_minutes: Some(240),
        skip_downtime: true,
        note: None,
    });
    policy.exceptions.push(DayException {
        date: date(2025, 12, 26),
        daily_minutes: Some(0),
        skip_downtime: false,
        note: None,
    });
    let mut s = Script::new(policy);
    // Tuesday night's bedtime still ends on the 24th's morning.
    assert_eq!(s.status("2025-12-24 06:30").state, ChildState::Downtime);
    let st = s.status("2025-12-24 21:30");
    assert_eq!(
        (st.state, st.allowance_minutes, st.remaining_minutes()),
        (ChildState::Active, 240, 240)
    );
    // No bedtime starts on the 24th, so none reaches into the 25th either.
    assert_eq!(s.status("2025-12-25 06:00").state, ChildState::Active);
    let st = s.status("2025-12-25 21:00");
    assert_eq!(
        (st.state, st.allowance_minutes),
        (ChildState::Downtime, 120)
    );
    // A day with no screen time: blocked from the start (grace ran out at 00:02).
    let st = s.status("2025-12-26 10:00");
    assert_eq!(
        (st.state, st.exhausted_at),
        (ChildState::Blocked, at("2025-12-26 00:00"))
    );
    assert_eq!(st.cst().reply_text(), "TIME_LEFT|0|BLOCKED|0");
    let spend = s
        .projection
        .check_credit_spend(CreditSize::TenMinute, t("2025-12-26 10:00"))
        .unwrap();
    s.record("2025-12-26 10:00", device("tablet"), spend);
    assert_eq!(s.status("2025-12-26 10:00").remaining_minutes(), 10);
}

#[test]
fn a_request_answered_twice() {
    let mut s = Script::household();
    let id = RequestId::from("r1");
    let ask = s
        .projection
        .check_request(id.clone(), 30, Some("finish the episode".into()), None)
        .unwrap();
    s.record("2025-06-02 16:00", device("tablet"), ask);
    let st = s.status("2025-06-02 16:01");
    assert_eq!(st.pending_requests.len(), 1);
    assert_eq!(st.pending_requests[0].minutes, 30);

    let anna = s
        .projection
        .resolve_request(&id, Answer::Approved { minutes: 20 }, t("2025-06-02 16:05"))
        .unwrap();
    assert_eq!(
        s.record("2025-06-02 16:05", guardian("anna"), anna),
        ApplyOutcome::Applied
    );

    let refusal = s
        .projection
        .resolve_request(&id, Answer::Denied, t("2025-06-02 16:06"))
        .unwrap_err();
    assert_eq!(
        refusal,
        RequestRefusal::AlreadyAnswered {
            id: id.clone(),
            answer: Answer::Approved { minutes: 20 },
            answered_at: t("2025-06-02 16:05"),
            same_answer: false,
        }
    );
    assert!(!refusal.is_repeat());
    assert_eq!(
        refusal.to_string(),
        "request r1 was already approved with 20 minutes at 2025-06-02T14:05:00Z; \
         the first answer stands"
    );
    // Approving with other minutes is a different answer too.
    let other = s
        .projection
        .resolve_request(&id, Answer::Approved { minutes: 30 }, t("2025-06-02 16:06"))
        .unwrap_err();
    assert!(!other.is_repeat());
    // Anna's phone retries her tap: the same answer, refused as a repeat that the API
    // reports as already resolved.
    let retry = s
        .projection
        .resolve_request(&id, Answer::Approved { minutes: 20 }, t("2025-06-02 16:07"))
        .unwrap_err();
    assert!(retry.is_repeat());
    assert_eq!(
        retry.to_string(),
        "request r1 was already approved with 20 minutes at 2025-06-02T14:05:00Z; \
         answering the same again changes nothing"
    );
    // Had Ben's answer reached the log anyway, the fold would refuse it the same way.
    let ben = EventKind::RequestResolved {
        request_id: id.clone(),
        answer: Answer::Denied,
    };
    assert_eq!(
        s.record("2025-06-02 16:06", guardian("ben"), ben),
        ApplyOutcome::Ignored(Ignored::Request(refusal))
    );
    // Nor does a repeated approval that reached the log grant twice.
    let again = EventKind::RequestResolved {
        request_id: id.clone(),
        answer: Answer::Approved { minutes: 20 },
    };
    assert_eq!(
        s.record("2025-06-02 16:07", guardian("anna"), again),
        ApplyOutcome::Ignored(Ignored::Request(retry))
    );
    let st = s.status("2025-06-02 16:10");
    assert_eq!(
        (st.remaining_minutes(), st.pending_requests.len()),
        (140, 0)
    );
    assert_eq!(
        s.projection
            .request(&id)
            .unwrap()
            .state_at(t("2025-06-02 16:10")),
        RequestState::Answered {
            answer: Answer::Approved { minutes: 20 }
        }
    );
}

#[test]
fn an_unanswered_request_expires_at_midnight() {
    let mut s = Script::household();
    let id = RequestId::from("r2");
    s.record(
        "2025-06-02 23:00",
        device("tablet"),
        EventKind::TimeRequested {
            request_id: id.clone(),
            minutes: 15,
            note: None,
            requested_at: None,
        },
    );
    assert_eq!(s.status("2025-06-02 23:59").pending_requests.len(), 1);
    assert!(s.status("2025-06-03 00:00").pending_requests.is_empty());
    assert_eq!(
        s.projection
            .resolve_request(&id, Answer::Approved { minutes: 15 }, t("2025-06-03 00:05")),
        Err(RequestRefusal::Expired {
            id,
            expired_at: t("2025-06-03 00:00")
        })
    );
}

#[test]
fn lowering_the_limit_below_what_was_used_still_gives_grace() {
    let mut s = Script::household();
    s.used("tablet", "2025-06-02 09:00", "2025-06-02 10:30");
    let mut lower = household_policy();
    lower.daily_minutes = DailyMinutes::every_day(60);
    let lower = s.projection.check_policy_change(lower, Some(0)).unwrap();
    s.record(
        "2025-06-02 11:00",
        guardian("anna"),
        EventKind::PolicyChanged {
            policy: lower.clone(),
        },
    );
    let st = s.status("2025-06-02 11:00");
    assert_eq!((st.state, st.policy_revision), (ChildState::Grace, 1));
    assert_eq!(st.grace_ends_at, at("2025-06-02 11:02"));
    assert_eq!(s.status("2025-06-02 11:02").state, ChildState::Blocked);
    // A later change while blocked does not hand out another grace.
    let again = s.projection.check_policy_change(lower, Some(1)).unwrap();
    s.record(
        "2025-06-02 12:00",
        guardian("ben"),
        EventKind::PolicyChanged { policy: again },
    );
    let st = s.status("2025-06-02 12:00");
    assert_eq!(
        (st.state, st.exhausted_at),
        (ChildState::Blocked, at("2025-06-02 11:00"))
    );
}

#[test]
fn the_agent_asks_in_one_call_with_events_from_json() {
    // What a standalone agent does: its own events, stored as JSON, a policy from TOML.
    let mut s = Script::household();
    s.used("tablet", "2025-06-02 15:00", "2025-06-02 16:00");
    let legacy = Actor::LegacyAddress {
        address: "192.168.1.20:40123".into(),
    };
    let events = vec![
        s.event(
            "2025-06-02 15:00",
            device("tablet"),
            EventKind::UsageReported {
                start: t("2025-06-02 15:00"),
                end: t("2025-06-02 16:00"),
            },
        ),
        s.event(
            "2025-06-02 16:00",
            legacy.clone(),
            EventKind::LegacyCommand {
                command: "EXTEND_TIME:30".into(),
                outcome: household_core::LegacyOutcome::Applied,
                reply: String::new(),
            },
        ),
        s.event(
            "2025-06-02 16:00",
            legacy,
            EventKind::TimeGranted {
                minutes: 30,
                granted_at: None,
            },
        ),
    ];
    let json = serde_json::to_string(&events).unwrap();
    let back: Vec<Event> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, events);
    let now = t("2025-06-02 16:00");
    let st = status_from_events(ChildId::from(CHILD), household_policy(), &back, now).unwrap();
    assert_eq!(st.cst().reply_text(), "TIME_LEFT|90|ACTIVE|150");
    let projection =
        Projection::from_events(ChildId::from(CHILD), household_policy(), &back).unwrap();
    assert_eq!(
        projection
            .status_at_unix_micros(now.as_microsecond())
            .unwrap(),
        st
    );
}

#[test]
fn registry_events_change_a_status_only_where_they_must() {
    let mut s = Script::household();
    let tablet = DeviceId::from("tablet");
    s.record(
        "2025-06-02 08:00",
        guardian("anna"),
        EventKind::ChildAdded {
            display_name: "Mia".into(),
        },
    );
    s.record(
        "2025-06-02 08:01",
        guardian("anna"),
        EventKind::DeviceAdded {
            device: tablet.clone(),
            display_name: "Old tablet".into(),
            legacy_address: Some("192.168.1.23:8888".into()),
        },
    );
    s.record(
        "2025-06-02 08:02",
        device("tablet"),
        EventKind::DeviceOnline {
            device: tablet.clone(),
        },
    );
    s.used("tablet", "2025-06-02 15:00", "2025-06-02 15:30");
    s.record(
        "2025-06-02 15:30",
        guardian("ben"),
        EventKind::Locked {
            device: Some(tablet.clone()),
            until: None,
            reason: None,
        },
    );
    let before = s.status("2025-06-02 16:00");
    assert_eq!(before.state_on_device(&tablet), ChildState::Locked);
    assert_eq!(before.devices.len(), 1);

    // Renaming changes nothing a status shows but the seq it is as of.
    for kind in [
        EventKind::ChildRenamed {
            display_name: "Mia K.".into(),
            previous_display_name: "Mia".into(),
        },
        EventKind::DeviceRenamed {
            device: tablet.clone(),
            display_name: "Mia's tablet".into(),
            previous_display_name: "Old tablet".into(),
        },
    ] {
        assert_eq!(
            s.record("2025-06-02 15:40", guardian("anna"), kind),
            ApplyOutcome::Applied
        );
    }
    let renamed = s.status("2025-06-02 16:00");
    assert_eq!(
        Status {
            last_seq: before.last_seq,
            ..renamed
        },
        before
    );

    // Household-wide events concern no child: a child's projection passes them by.
    let invited = Event::household_wide(
        99,
        t("2025-06-02 15:44"),
        guardian("anna"),
        EventKind::GuardianInvited {
            guardian: GuardianId::from("grandma"),
            display_name: "Grandma".into(),
        },
    );
    assert!(invited.kind.is_household_wide() && invited.child.0.is_empty());
    assert!(matches!(
        s.projection.apply(&invited),
        ApplyOutcome::Ignored(Ignored::OtherChild { .. })
    ));
    let enrolled = Event::household_wide(
        100,
        t("2025-06-02 15:45"),
        guardian("grandma"),
        EventKind::GuardianEnrolled {
            display_name: "Grandma".into(),
        },
    );
    assert!(enrolled.kind.is_household_wide());
    assert!(matches!(
        s.projection.apply(&enrolled),
        ApplyOutcome::Ignored(Ignored::OtherChild { .. })
    ));
    let revoked = Event::household_wide(
        101,
        t("2025-06-02 15:46"),
        guardian("anna"),
        EventKind::IdentityRevoked {
            identity: Identity::Guardian {
                id: GuardianId::from("grandma"),
            },
            credential_id: Some("tok-7".into()),
        },
    );
    assert!(matches!(
        s.projection.apply(&revoked),
        ApplyOutcome::Ignored(Ignored::OtherChild { .. })
    ));

    // Removing the tablet lifts its own lock and forgets its presence; the 30 minutes
    // it was used stay charged to Mia's day.
    s.record(
        "2025-06-02 15:50",
        guardian("anna"),
        EventKind::DeviceRemoved {
            device: tablet.clone(),
        },
    );
    let st = s.status("2025-06-02 16:00");
    assert_eq!(st.state_on_device(&tablet), ChildState::Active);
    assert!(st.device_locks.is_empty() && st.devices.is_empty());
    assert_eq!((st.used_minutes(), st.remaining_minutes()), (30, 90));

    // Removing the child closes the projection: nothing applies afterwards.
    s.record(
        "2025-06-02 17:00",
        guardian("anna"),
        EventKind::ChildRemoved {
            history_forgotten: false,
        },
    );
    assert_eq!(s.projection.removed_at(), at("2025-06-02 17:00"));
    assert_eq!(
        s.used("phone", "2025-06-02 17:00", "2025-06-02 17:30"),
        ApplyOutcome::Ignored(Ignored::ChildRemoved {
            at: t("2025-06-02 17:00")
        })
    );
    assert_eq!(s.status("2025-06-02 18:00").used_minutes(), 30);
}

#[test]
fn a_late_usage_report_counts_for_a_grant_made_before_it_arrived() {
    // The tablet reports as it goes; the phone is offline from 15:30, enforcing on its
    // own: it ran out of time at 16:00 and blocked after grace at 16:02.
    let mut s = Script::household();
    s.used("tablet", "2025-06-02 14:00", "2025-06-02 15:30");
    // 16:05: the hub knows of 90 minutes. Anna grants 15.
    s.grant("2025-06-02 16:05", "anna", 15);
    let st = s.status("2025-06-02 16:05");
    assert_eq!(
        (
            st.credit_seconds / 60,
            st.used_minutes(),
            st.remaining_minutes()
        ),
        (135, 90, 45)
    );
    // 16:10: the phone is back; its report of 15:30-16:02 arrives, with a later seq
    // than the grant but an interval before it. The grant is worked out again with the
    // usage up to its instant, now 122: max(120, 122) + 15 = 137, so Mia has Anna's 15
    // minutes, not 45, and not 13 (what fixing the grant at the 90 minutes the hub had
    // counted would leave: the phone's grace taken out of Anna's grant).
    s.reported(
        "2025-06-02 16:10",
        "phone",
        "2025-06-02 15:30",
        "2025-06-02 16:02",
    );
    let st = s.status("2025-06-02 16:10");
    assert_eq!(
        (
            st.credit_seconds / 60,
            st.used_minutes(),
            st.remaining_minutes()
        ),
        (137, 122, 15)
    );
    assert_eq!(st.state, ChildState::Active);
    // Use after the grant counts against it as always.
    s.used("phone", "2025-06-02 16:10", "2025-06-02 16:20");
    let st = s.status("2025-06-02 16:20");
    assert_eq!((st.state, st.remaining_minutes()), (ChildState::Warning, 5));
}

#[test]
fn a_credit_spent_offline_counts_from_when_it_was_spent() {
    // The phone, offline since 15:30, ran out at 16:00, blocked at 16:02, took its
    // 10-minute credit at 16:03, used it up at 16:13 and blocked after grace at 16:15.
    // At 16:30 it reconnects and its outbox arrives: usage, the credit, usage.
    let offline_day = |spent_at: Option<jiff::Timestamp>| {
        let mut s = Script::household();
        s.used("tablet", "2025-06-02 14:00", "2025-06-02 15:30");
        s.reported(
            "2025-06-02 16:30",
            "phone",
            "2025-06-02 15:30",
            "2025-06-02 16:02",
        );
        let credit = EventKind::ExtensionCreditSpent {
            size: CreditSize::TenMinute,
            spent_at,
        };
        assert_eq!(
            s.record("2025-06-02 16:30", device("phone"), credit),
            ApplyOutcome::Applied
        );
        s.reported(
            "2025-06-02 16:30",
            "phone",
            "2025-06-02 16:03",
            "2025-06-02 16:15",
        );
        s.status("2025-06-02 16:30")
    };
    // At 16:03, 122 minutes were used: max(120, 122) + 10 = 132, reached at 16:13.
    // The hub agrees with what the phone did.
    let st = offline_day(at("2025-06-02 16:03"));
    assert_eq!(
        (st.credit_seconds / 60, st.used_minutes(), st.state),
        (132, 134, ChildState::Blocked)
    );
    assert_eq!(
        (st.exhausted_at, st.grace_ends_at),
        (at("2025-06-02 16:13"), at("2025-06-02 16:15"))
    );
    assert_eq!(st.credits_left.ten_minute, 0);
    // Counted at the time it reached the log instead, the credit would come after all
    // 134 minutes and hand out 10 the phone never showed.
    let st = offline_day(None);
    assert_eq!(
        (st.credit_seconds / 60, st.remaining_minutes(), st.state),
        (144, 10, ChildState::Active)
    );
}

#[test]
fn an_unlock_until_lets_the_film_run_into_bedtime() {
    // Monday 2 June 2025. Mia used her 120 minutes and the 2 of grace: BLOCKED at 16:02.
    let mut s = blocked_at_1602();
    assert_eq!(s.status("2025-06-02 19:00").state, ChildState::Blocked);
    // 19:00: Anna lets her watch a film until 20:45, past the 20:30 bedtime.
    let unlock = s
        .projection
        .check_unlock(None, at("2025-06-02 20:45"), t("2025-06-02 19:00"))
        .unwrap();
    assert_eq!(
        s.record("2025-06-02 19:00", guardian("anna"), unlock),
        ApplyOutcome::Applied
    );
    let st = s.status("2025-06-02 19:00");
    assert_eq!((st.state, st.remaining_seconds), (ChildState::Active, 0));
    assert_eq!(st.unlock.as_ref().unwrap().until, t("2025-06-02 20:45"));
    // The screens stop at 20:45 (bedtime then, and out of time): warned from 20:40.
    // Neither 20:30 (bedtime) nor anything about the allowance changes the state before.
    assert_eq!(st.next_change_at, at("2025-06-02 20:40"));
    // A legacy CST device sees the state, with the allowance's 0 minutes.
    assert_eq!(st.cst().reply_text(), "TIME_LEFT|0|ACTIVE|120");

    // The film counts against the day.
    s.used("tv", "2025-06-02 19:00", "2025-06-02 20:40");
    let st = s.status("2025-06-02 20:35");
    assert_eq!(
        (st.state, st.used_minutes(), st.downtime_ends_at),
        (ChildState::Active, 217, at("2025-06-03 07:00"))
    );
    let st = s.status("2025-06-02 20:40");
    assert_eq!(st.state, ChildState::Warning);
    assert_eq!(st.next_change_at, at("2025-06-02 20:45"));

    // 20:45: the unlock is over; bedtime holds as on any night.
    s.used("tv", "2025-06-02 20:40", "2025-06-02 20:45");
    let st = s.status("2025-06-02 20:45");
    assert_eq!(
        (st.state, st.used_minutes(), st.unlock.is_none()),
        (ChildState::Downtime, 227, true)
    );
    assert_eq!(st.next_change_at, at("2025-06-03 00:00"));
    // Tuesday starts with its own 120 minutes.
    let st = s.status("2025-06-03 07:00");
    assert_eq!(
        (st.state, st.remaining_minutes()),
        (ChildState::Active, 120)
    );
}

#[test]
fn an_unlock_until_warns_before_the_screens_stop_not_before_the_allowance_runs_out() {
    // Monday: 117 minutes used by 14:57, so 3 are left (WARNING).
    let mut s = Script::household();
    s.used("tablet", "2025-06-02 12:00", "2025-06-02 13:57");
    let before = s.status("2025-06-02 14:57");
    assert_eq!(before.state, ChildState::Warning);
    // Anna: "until 16:00". The screens now go on for an hour, so no warning yet,
    // though the allowance has 3 minutes left.
    let unlock = s
        .projection
        .check_unlock(None, at("2025-06-02 16:00"), t("2025-06-02 14:57"))
        .unwrap();
    s.record("2025-06-02 14:57", guardian("anna"), unlock);
    let st = s.status("2025-06-02 14:57");
    assert_eq!((st.state, st.remaining_minutes()), (ChildState::Active, 3));
    assert_eq!(st.next_change_at, at("2025-06-02 15:55"));
    // Use goes on; the allowance runs out at 15:00 and its grace at 15:02, unseen.
    s.used("tablet", "2025-06-02 14:57", "2025-06-02 15:55");
    let st = s.status("2025-06-02 15:55");
    assert_eq!(st.state, ChildState::Warning);
    assert_eq!(
        (st.exhausted_at, st.grace_ends_at, st.next_change_at),
        (
            at("2025-06-02 15:00"),
            at("2025-06-02 15:02"),
            at("2025-06-02 16:00")
        )
    );
    // 16:00: BLOCKED at once. No fresh grace: it ran from 15:00; the warning was the
    // notice.
    s.used("tablet", "2025-06-02 15:55", "2025-06-02 16:00");
    let st = s.status("2025-06-02 16:00");
    assert_eq!((st.state, st.used_minutes()), (ChildState::Blocked, 180));
}

#[test]
fn an_unlock_until_in_the_morning_and_across_midnight() {
    let mut s = Script::household();
    // Tuesday 06:30, still Monday night's bedtime (until 07:00). "Until 07:30": at
    // 07:30 Mia still has time and no bedtime holds, so the screens go on after it and
    // only the allowance decides when she is warned: 120 minutes of continuous use
    // from 06:30 is 08:30, so WARNING would begin at 08:25. Bedtime's end at 07:00
    // changes nothing under the unlock; its own end at 07:30 is the next change.
    assert_eq!(s.status("2025-06-03 06:30").state, ChildState::Downtime);
    let unlock = s
        .projection
        .check_unlock(None, at("2025-06-03 07:30"), t("2025-06-03 06:30"))
        .unwrap();
    s.record("2025-06-03 06:30", guardian("ben"), unlock);
    let st = s.status("2025-06-03 06:30");
    assert_eq!(st.state, ChildState::Active);
    assert_eq!(st.next_change_at, at("2025-06-03 07:30"));
    s.used("phone", "2025-06-03 06:30", "2025-06-03 07:30");
    let st = s.status("2025-06-03 07:30");
    assert_eq!(
        (st.state, st.remaining_minutes(), st.unlock),
        (ChildState::Active, 60, None)
    );

    // Friday 23:00, in Friday's bedtime (22:00-08:30): "until 00:30". The unlock runs
    // into Saturday; at 00:30 it is still bedtime, so the screens stop then.
    let unlock = s
        .projection
        .check_unlock(None, at("2025-06-07 00:30"), t("2025-06-06 23:00"))
        .unwrap();
    s.record("2025-06-06 23:00", guardian("anna"), unlock);
    let st = s.status("2025-06-06 23:00");
    assert_eq!(st.state, ChildState::Active);
    assert_eq!(st.next_change_at, at("2025-06-07 00:00"));
    let st = s.status("2025-06-07 00:10");
    assert_eq!(
        (st.state, st.day.date),
        (ChildState::Active, date(2025, 6, 7))
    );
    assert_eq!(st.next_change_at, at("2025-06-07 00:25"));
    assert_eq!(s.status("2025-06-07 00:25").state, ChildState::Warning);
    assert_eq!(s.status("2025-06-07 00:30").state, ChildState::Downtime);
}

#[test]
fn a_lock_ends_an_unlock_until_and_a_plain_unlock_leaves_it() {
    let mut s = blocked_at_1602();
    let tablet = DeviceId::from("tablet");
    let unlock = s
        .projection
        .check_unlock(None, at("2025-06-02 21:00"), t("2025-06-02 18:00"))
        .unwrap();
    s.record("2025-06-02 18:00", guardian("anna"), unlock);
    // Ben's plain unlock would lift nothing (there is no lock), so the API logs
    // nothing; had it been logged, the unlock-until stays: it lifts locks only.
    assert!(
        !s.projection
            .unlock_changes_anything(None, None, t("2025-06-02 18:30"))
    );
    let plain = s
        .projection
        .check_unlock(None, None, t("2025-06-02 18:30"))
        .unwrap();
    s.record("2025-06-02 18:30", guardian("ben"), plain);
    let st = s.status("2025-06-02 18:30");
    assert_eq!(st.state, ChildState::Active);
    assert_eq!(st.unlock.as_ref().unwrap().until, t("2025-06-02 21:00"));

    // A device lock locks that device only; the phone keeps the unlock.
    let lock = s
        .projection
        .check_lock(Some(tablet.clone()), None, t("2025-06-02 18:40"))
        .unwrap();
    s.record("2025-06-02 18:40", guardian("ben"), lock);
    let st = s.status("2025-06-02 18:40");
    assert_eq!(
        (
            st.state,
            st.state_on_device(&tablet),
            st.state_on_device(&DeviceId::from("phone"))
        ),
        (ChildState::Active, ChildState::Locked, ChildState::Active)
    );
    assert!(
        s.projection
            .unlock_changes_anything(Some(&tablet), None, t("2025-06-02 18:40"))
    );

    // A second unlock-until replaces the first (here sooner) and, as any unlock of the
    // child, lifts the tablet's lock.
    let sooner = s
        .projection
        .check_unlock(None, at("2025-06-02 20:00"), t("2025-06-02 19:00"))
        .unwrap();
    s.record("2025-06-02 19:00", guardian("anna"), sooner);
    let st = s.status("2025-06-02 19:00");
    assert_eq!(
        (st.state_on_device(&tablet), st.next_change_at),
        (ChildState::Active, at("2025-06-02 19:55"))
    );

    // A lock of the child wins, and ends the unlock: "dinner, until 19:45". When the
    // lock runs out, Mia is back under the ordinary rules, out of time.
    let dinner = s
        .projection
        .check_lock(None, at("2025-06-02 19:45"), t("2025-06-02 19:30"))
        .unwrap();
    s.record("2025-06-02 19:30", guardian("ben"), dinner);
    let st = s.status("2025-06-02 19:30");
    assert_eq!((st.state, st.unlock), (ChildState::Locked, None));
    assert_eq!(st.next_change_at, at("2025-06-02 19:45"));
    let st = s.status("2025-06-02 19:45");
    assert_eq!((st.state, st.unlock), (ChildState::Blocked, None));

    // An unlock-until of one device is refused, and ignored if it reached the log.
    let refused =
        s.projection
            .check_unlock(Some(&tablet), at("2025-06-02 20:30"), t("2025-06-02 19:50"));
    assert_eq!(refused.unwrap_err().field(), "until_unix_micros");
    let outcome = s.record(
        "2025-06-02 19:50",
        guardian("anna"),
        EventKind::Unlocked {
            device: Some(tablet),
            until: at("2025-06-02 20:30"),
        },
    );
    assert!(matches!(
        outcome,
        ApplyOutcome::Ignored(Ignored::InvalidUnlock(InputError::NotApplicable { .. }))
    ));
    assert_eq!(s.status("2025-06-02 19:50").state, ChildState::Blocked);
}

#[test]
fn a_request_made_offline_belongs_to_the_day_it_was_made() {
    // Monday 20:20 Mia asks for 20 more minutes on her tablet, which is offline. It
    // reconnects on Tuesday at 07:10 and its outbox reaches the hub.
    let mut s = Script::household();
    let yesterday = RequestId::from("r-mon");
    let ask = s
        .projection
        .check_request(
            yesterday.clone(),
            20,
            Some("one more episode".into()),
            at("2025-06-02 20:20"),
        )
        .unwrap();
    s.record("2025-06-03 07:10", device("tablet"), ask);
    let request = s.projection.request(&yesterday).unwrap();
    assert_eq!(
        (request.requested_at, request.day, request.expires_at),
        (
            t("2025-06-02 20:20"),
            date(2025, 6, 2),
            t("2025-06-03 00:00")
        )
    );
    // It is logged already expired: nobody is asked for Monday's time on Tuesday.
    assert_eq!(
        request.state_at(t("2025-06-03 07:10")),
        RequestState::Expired
    );
    let st = s.status("2025-06-03 07:10");
    assert!(st.pending_requests.is_empty());
    assert_eq!(
        s.projection.resolve_request(
            &yesterday,
            Answer::Approved { minutes: 20 },
            t("2025-06-03 07:15")
        ),
        Err(RequestRefusal::Expired {
            id: yesterday,
            expired_at: t("2025-06-03 00:00")
        })
    );

    // One asked this morning at 07:05, offline too, counts on Tuesday and is pending.
    let today = RequestId::from("r-tue");
    let ask = s
        .projection
        .check_request(today.clone(), 15, None, at("2025-06-03 07:05"))
        .unwrap();
    s.record("2025-06-03 07:10", device("tablet"), ask);
    let st = s.status("2025-06-03 07:10");
    assert_eq!(st.pending_requests.len(), 1);
    assert_eq!(
        (
            st.pending_requests[0].requested_at,
            st.pending_requests[0].expires_at
        ),
        (t("2025-06-03 07:05"), t("2025-06-04 00:00"))
    );

    // A time after the event's own (a device clock running ahead, uncorrected) is not
    // when the child asked: the fold caps it at the event's time.
    let ahead = RequestId::from("r-ahead");
    let ask = s
        .projection
        .check_request(ahead.clone(), 15, None, at("2025-06-03 07:30"))
        .unwrap();
    s.record("2025-06-03 07:12", device("phone"), ask);
    assert_eq!(
        s.projection.request(&ahead).unwrap().requested_at,
        t("2025-06-03 07:12")
    );
}
