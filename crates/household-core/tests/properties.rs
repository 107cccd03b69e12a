//! Property tests: invariants of the fold that must hold for any sequence of events.

mod common;

use common::*;
use household_core::*;
use jiff::Timestamp;
use proptest::prelude::*;

/// Days the generated events are spread over: an ordinary Monday, the Saturday before
/// spring-forward and the Saturday before fall-back in Europe/Berlin (each plus the
/// following day).
const BASES: [&str; 3] = ["2025-06-02 00:00", "2025-03-29 00:00", "2025-10-25 00:00"];
const SPAN_SECONDS: i64 = 48 * 3600;

#[derive(Debug, Clone)]
enum Op {
    Use {
        device: u8,
        start: i64,
        len: i64,
    },
    Grant {
        at: i64,
        minutes: i64,
    },
    Spend {
        at: i64,
        ten: bool,
    },
    Lock {
        at: i64,
        device: Option<u8>,
        until: Option<i64>,
    },
    Unlock {
        at: i64,
        device: Option<u8>,
        until: Option<i64>,
    },
    Request {
        at: i64,
        id: u8,
        minutes: i64,
        asked_before: Option<i64>,
    },
    Answer {
        at: i64,
        id: u8,
        approve: Option<i64>,
    },
    Policy {
        at: i64,
        minutes: i64,
        grace: i64,
    },
}

fn offset() -> impl Strategy<Value = i64> {
    0..SPAN_SECONDS
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, offset(), 0i64..4 * 3600).prop_map(|(device, start, len)| Op::Use { device, start, len }),
        2 => (offset(), prop_oneof![1i64..120, -5i64..2000]).prop_map(|(at, minutes)| Op::Grant { at, minutes }),
        1 => (offset(), any::<bool>()).prop_map(|(at, ten)| Op::Spend { at, ten }),
        1 => (offset(), proptest::option::of(0u8..3), proptest::option::of(0i64..3 * 3600))
            .prop_map(|(at, device, until)| Op::Lock { at, device, until }),
        1 => (offset(), proptest::option::of(0u8..3), proptest::option::of(1i64..6 * 3600))
            .prop_map(|(at, device, until)| Op::Unlock { at, device, until }),
        1 => (offset(), 0u8..4, 1i64..60, proptest::option::of(0i64..30 * 3600))
            .prop_map(|(at, id, minutes, asked_before)| Op::Request { at, id, minutes, asked_before }),
        1 => (offset(), 0u8..4, proptest::option::of(1i64..60)).prop_map(|(at, id, approve)| Op::Answer { at, id, approve }),
        1 => (offset(), 0i64..300, 0i64..5).prop_map(|(at, minutes, grace)| Op::Policy { at, minutes, grace }),
    ]
}

fn base_second(base: usize) -> i64 {
    t(BASES[base]).as_second()
}

fn ts(base: usize, offset: i64) -> Timestamp {
    Timestamp::from_second(base_second(base) + offset).unwrap()
}

fn dev(n: u8) -> DeviceId {
    DeviceId::from(["tablet", "phone", "laptop"][n as usize])
}

fn to_event(base: usize, seq: u64, op: &Op) -> Event {
    let child = ChildId::from(CHILD);
    let (at, actor, kind, device) = match op.clone() {
        Op::Use {
            device: d,
            start,
            len,
        } => (
            start + len,
            Actor::Device { id: dev(d) },
            EventKind::UsageReported {
                start: ts(base, start),
                end: ts(base, start + len),
            },
            Some(dev(d)),
        ),
        Op::Grant { at, minutes } => (
            at,
            guardian("anna"),
            EventKind::TimeGranted {
                minutes,
                granted_at: None,
            },
            None,
        ),
        Op::Spend { at, ten } => {
            let size = if ten {
                CreditSize::TenMinute
            } else {
                CreditSize::FiveMinute
            };
            (
                at,
                device("tablet"),
                EventKind::ExtensionCreditSpent {
                    size,
                    spent_at: None,
                },
                None,
            )
        }
        Op::Lock { at, device, until } => (
            at,
            guardian("ben"),
            EventKind::Locked {
                device: device.map(dev),
                until: until.map(|u| ts(base, at + u)),
                reason: None,
            },
            None,
        ),
        Op::Unlock { at, device, until } => (
            at,
            guardian("anna"),
            EventKind::Unlocked {
                device: device.map(dev),
                until: until.map(|u| ts(base, at + u)),
            },
            None,
        ),
        Op::Request {
            at,
            id,
            minutes,
            asked_before,
        } => (
            at,
            device("phone"),
            EventKind::TimeRequested {
                request_id: RequestId(format!("r{id}")),
                minutes,
                note: None,
                requested_at: asked_before.map(|before| ts(base, at - before)),
            },
            None,
        ),
        Op::Answer { at, id, approve } => (
            at,
            guardian(if id % 2 == 0 { "anna" } else { "ben" }),
            EventKind::RequestResolved {
                request_id: RequestId(format!("r{id}")),
                answer: approve.map_or(Answer::Denied, |minutes| Answer::Approved { minutes }),
            },
            None,
        ),
        Op::Policy { at, minutes, grace } => {
            let mut policy = household_policy();
            policy.daily_minutes = DailyMinutes::every_day(minutes);
            policy.grace_minutes = grace;
            (
                at,
                guardian("anna"),
                EventKind::PolicyChanged { policy },
                None,
            )
        }
    };
    let mut event = Event::new(seq, ts(base, at), actor, child, kind);
    event.device = device;
    event
}

fn events(base: usize, ops: &[Op]) -> Vec<Event> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| to_event(base, i as u64 + 1, op))
        .collect()
}

fn fold(events: &[Event]) -> Projection {
    Projection::from_events(ChildId::from(CHILD), household_policy(), events).unwrap()
}

/// The parts of a status that time and grants decide (not which seq made a grant).
fn time_view(
    s: &Status,
) -> (
    ChildState,
    i64,
    i64,
    i64,
    Option<Timestamp>,
    Option<Timestamp>,
    Option<Timestamp>,
) {
    (
        s.state,
        s.credit_seconds,
        s.used_seconds,
        s.remaining_seconds,
        s.exhausted_at,
        s.grace_ends_at,
        s.next_change_at,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn remaining_is_never_negative_and_the_views_agree(
        base in 0usize..3,
        ops in proptest::collection::vec(op(), 0..40),
        now in offset(),
    ) {
        let p = fold(&events(base, &ops));
        let s = p.status_at(ts(base, now));
        prop_assert!(s.remaining_seconds >= 0);
        prop_assert_eq!(s.remaining_seconds, (s.credit_seconds - s.used_seconds).max(0));
        prop_assert!(s.used_seconds >= 0);
        prop_assert!(s.used_seconds <= ts(base, now).as_second() - s.day.start_second + 1);
        let cst = s.cst();
        // A locked child reports nothing left, as a CST child after LOCK_DEVICE does.
        let cst_remaining = if s.state == ChildState::Locked { 0 } else { (s.remaining_seconds + 59) / 60 };
        prop_assert_eq!(i64::from(cst.remaining_minutes), cst_remaining);
        prop_assert_eq!(cst.state == CstState::Active, matches!(s.state, ChildState::Active | ChildState::Warning));
        // An unlock-until allows use whatever the time left; a lock ends it.
        let unlocked = s.unlock.is_some();
        prop_assert!(!(unlocked && s.lock.is_some()));
        match s.state {
            ChildState::Active => prop_assert!(unlocked || s.remaining_seconds > WARNING_SECONDS),
            ChildState::Warning => prop_assert!(unlocked || (s.remaining_seconds > 0 && s.remaining_seconds <= WARNING_SECONDS)),
            ChildState::Grace | ChildState::Blocked => prop_assert!(!unlocked && s.remaining_seconds == 0),
            ChildState::Downtime => prop_assert!(!unlocked && s.downtime_ends_at.is_some()),
            ChildState::Locked => prop_assert!(s.lock.is_some()),
        }
        if let Some(next) = s.next_change_at {
            prop_assert!(next > s.at);
        }
        if let Some(unlock) = &s.unlock {
            prop_assert!(unlock.until > s.at);
            prop_assert!(s.next_change_at.is_some_and(|next| next <= unlock.until));
        }
        for request in &s.pending_requests {
            prop_assert!(request.expires_at > s.at);
            prop_assert_eq!(p.day_of(request.requested_at).end(), request.expires_at);
        }
        prop_assert!(s.credits_left.five_minute >= 0 && s.credits_left.ten_minute >= 0);
        prop_assert!(s.grace_remaining_seconds >= 0 && s.grace_remaining_seconds <= 30 * 60);
        prop_assert_eq!(s.state == ChildState::Grace, !unlocked && s.lock.is_none() && s.downtime_ends_at.is_none() && s.remaining_seconds == 0 && s.grace_remaining_seconds > 0);
    }

    #[test]
    fn the_fold_is_deterministic(
        base in 0usize..3,
        ops in proptest::collection::vec(op(), 0..40),
        split in 0usize..40,
        now in offset(),
    ) {
        let evs = events(base, &ops);
        let now = ts(base, now);
        let once = fold(&evs).status_at(now);
        prop_assert_eq!(&fold(&evs).status_at(now), &once);
        // Incrementally, with a copy taken midway (a hub snapshot), and replayed twice.
        let split = split.min(evs.len());
        let mut first = fold(&evs[..split]);
        let mut snapshot = first.clone();
        for e in &evs[split..] {
            first.apply(e);
            snapshot.apply(e);
        }
        for e in &evs {
            let stale = matches!(first.apply(e), ApplyOutcome::Stale { .. });
            prop_assert!(stale);
        }
        prop_assert_eq!(&first.status_at(now), &once);
        prop_assert_eq!(&snapshot.status_at(now), &once);
        // Through the JSON an agent would store.
        let back: Vec<Event> = serde_json::from_str(&serde_json::to_string(&evs).unwrap()).unwrap();
        prop_assert_eq!(&fold(&back).status_at(now), &once);
    }

    #[test]
    fn grants_give_the_same_result_in_any_order(
        base in 0usize..3,
        ops in proptest::collection::vec(op(), 0..30),
        grants in proptest::collection::vec((0i64..6, 1i64..60), 1..6),
        grant_at in offset(),
        shuffle_seed in any::<u64>(),
        now in offset(),
    ) {
        // Several guardians grant, some at the very same instant (offsets 0..6 minutes
        // apart), and the log may order them any way.
        let grant_ops: Vec<Op> = grants
            .iter()
            .map(|&(minute, minutes)| Op::Grant { at: grant_at + minute * 60, minutes })
            .collect();
        let mut shuffled = grant_ops.clone();
        let mut seed = shuffle_seed;
        for i in (1..shuffled.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let in_order: Vec<Op> = ops.iter().cloned().chain(grant_ops).collect();
        let reordered: Vec<Op> = ops.iter().cloned().chain(shuffled).collect();
        let now = ts(base, now);
        let a = fold(&events(base, &in_order)).status_at(now);
        let b = fold(&events(base, &reordered)).status_at(now);
        prop_assert_eq!(time_view(&a), time_view(&b));
    }

    #[test]
    fn usage_reported_late_counts_as_if_it_had_come_in_time(
        base in 0usize..3,
        ops in proptest::collection::vec(op(), 0..40),
        now in offset(),
    ) {
        // Every usage report held back in an outbox until after the grants, locks and
        // requests: the grants are worked out with the usage up to their instants either
        // way. (A policy change is left out: whether it found the child with time left,
        // which decides where grace starts, is judged on the usage known when it is made.)
        let ops: Vec<Op> = ops.into_iter().filter(|op| !matches!(op, Op::Policy { .. })).collect();
        let (usage, rest): (Vec<Op>, Vec<Op>) =
            ops.iter().cloned().partition(|op| matches!(op, Op::Use { .. }));
        let late: Vec<Op> = rest.into_iter().chain(usage).collect();
        let now = ts(base, now);
        let in_time = fold(&events(base, &ops)).status_at(now);
        let reported_late = fold(&events(base, &late)).status_at(now);
        prop_assert_eq!(time_view(&in_time), time_view(&reported_late));
    }

    #[test]
    fn a_grant_leaves_max_remaining_zero_plus_n(
        base in 0usize..3,
        ops in proptest::collection::vec(op(), 0..30),
        now in offset(),
        minutes in 1i64..=120,
    ) {
        let mut evs = events(base, &ops);
        let now_ts = ts(base, now);
        let before = fold(&evs).status_at(now_ts);
        evs.push(Event::new(evs.len() as u64 + 1, now_ts, guardian("anna"), ChildId::from(CHILD), EventKind::TimeGranted { minutes, granted_at: None }));
        let after = fold(&evs).status_at(now_ts);
        let later_grants = before.grants.iter().any(|g| g.at_second > now_ts.as_second());
        if later_grants {
            prop_assert!(after.remaining_seconds >= before.remaining_seconds);
        } else {
            prop_assert_eq!(after.remaining_seconds, before.remaining_seconds + minutes * 60);
        }
    }

    #[test]
    fn more_usage_never_leaves_more_time(
        base in 0usize..3,
        ops in proptest::collection::vec(op(), 0..30),
        extra in (0u8..3, offset(), 0i64..4 * 3600),
        now in offset(),
    ) {
        let (device, start, len) = extra;
        let mut evs = events(base, &ops);
        let now = ts(base, now);
        let before = fold(&evs).status_at(now);
        evs.push(to_event(base, evs.len() as u64 + 1, &Op::Use { device, start, len }));
        let after = fold(&evs).status_at(now);
        prop_assert!(after.remaining_seconds <= before.remaining_seconds);
        prop_assert!(after.used_seconds >= before.used_seconds);
    }

    #[test]
    fn union_measure_matches_counting_seconds(
        intervals in proptest::collection::vec((0i64..400, 0i64..80), 0..25),
        from in 0i64..500,
        to in 0i64..500,
        amount in 0i64..500,
    ) {
        let mut usage = UsageSet::new();
        let mut seconds = [false; 500];
        for &(start, len) in &intervals {
            usage.insert(start, start + len);
            for s in &mut seconds[start as usize..(start + len) as usize] {
                *s = true;
            }
        }
        let counted = (from..to.max(from)).filter(|&s| seconds[s as usize]).count() as i64;
        prop_assert_eq!(usage.seconds_between(from, to), counted);
        let spans: Vec<_> = usage.spans().collect();
        for pair in spans.windows(2) {
            prop_assert!(pair[0].1 < pair[1].0, "spans overlap or touch: {:?}", spans);
        }
        match usage.instant_reaching(from, to, amount) {
            Some(t) => {
                prop_assert_eq!(usage.seconds_between(from, t), amount.max(0));
                prop_assert!(t == from || usage.seconds_between(from, t - 1) < amount);
            }
            None => prop_assert!(counted < amount),
        }
    }

    #[test]
    fn local_days_tile_time_with_23_24_or_25_hours(
        second in 946_684_800i64..2_114_380_800,
        zone in prop_oneof![Just("Europe/Berlin"), Just("America/New_York"), Just("Australia/Sydney"), Just("UTC")],
    ) {
        let zone = household_core::time::zone_named(zone).unwrap();
        let day = LocalDay::containing(second, &zone);
        prop_assert!(day.contains(second));
        prop_assert!([23 * 3600, 24 * 3600, 25 * 3600].contains(&day.length_seconds()));
        let next = day.next(&zone);
        prop_assert_eq!(next.start_second, day.end_second);
        prop_assert_eq!(day.previous(&zone).end_second, day.start_second);
    }

    #[test]
    fn valid_policies_survive_toml_and_bad_minutes_are_named(
        minutes in proptest::collection::vec(proptest::option::of(0i64..=1440), 7),
        default in 0i64..=1440,
        grace in 0i64..=30,
        five in 0i64..=12,
        ten in 0i64..=12,
        windows in proptest::collection::vec((0i64..24, 0i64..60, 1i64..1440, proptest::collection::btree_set(1i64..=7, 1..=7)), 0..4),
        bad in prop_oneof![-10_000i64..0, 1441i64..100_000],
        bad_day in 1i64..=7,
    ) {
        let mut policy = Policy { time_zone: "Europe/Berlin".into(), grace_minutes: grace, ..Policy::default() };
        policy.daily_minutes = DailyMinutes::every_day(default);
        for (i, m) in minutes.iter().enumerate() {
            if let Some(m) = m {
                policy.daily_minutes.set(Weekday::ALL[i], *m);
            }
        }
        policy.extension_credits_per_day = Credits { five_minute_count: five, ten_minute_count: ten };
        for (h, m, len, days) in windows {
            let start = ClockTime::new(h, m).unwrap();
            let end_minute = (h * 60 + m + len) % 1440;
            let end = ClockTime::new(end_minute / 60, end_minute % 60).unwrap();
            let days = days.into_iter().map(|d| Weekday::from_iso_number(d).unwrap()).collect();
            policy.downtime.push(DowntimeWindow { days: Some(days), start, end, label: None });
        }
        prop_assert_eq!(policy.validate(), Ok(()));
        let back: Policy = toml::from_str(&toml::to_string(&policy).unwrap()).unwrap();
        prop_assert_eq!(&back, &policy);

        let day = Weekday::from_iso_number(bad_day).unwrap();
        policy.daily_minutes.set(day, bad);
        prop_assert_eq!(
            policy.validate(),
            Err(InputError::out_of_range(format!("daily_minutes.{day}"), bad, 0, 1440))
        );
    }
}
