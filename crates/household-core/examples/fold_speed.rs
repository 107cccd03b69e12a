//! How fast the fold is: a month of a busy child (three devices reporting every minute,
//! grants, requests, credits) folded from scratch, then statuses read.
//!
//! `cargo run --release -p household-core --example fold_speed`

use std::time::Instant;

use household_core::{
    Actor, Answer, ChildId, CreditSize, DeviceId, Event, EventKind, GuardianId, Policy, Projection,
    RequestId,
};
use jiff::{SignedDuration, Timestamp};

fn main() {
    let child = ChildId::from("mia");
    let policy = Policy {
        time_zone: "Europe/Berlin".into(),
        ..Policy::default()
    };
    let start: Timestamp = "2025-06-01T06:00:00Z".parse().expect("constant instant");
    let mut events = Vec::new();
    let mut seq = 0u64;
    let mut push = |at: Timestamp, actor: Actor, device: Option<DeviceId>, kind: EventKind| {
        seq += 1;
        let mut event = Event::new(seq, at, actor, child.clone(), kind);
        event.device = device;
        events.push(event);
    };
    let guardian = Actor::Guardian {
        id: GuardianId::from("anna"),
    };
    for day in 0..30i64 {
        let morning = start + SignedDuration::from_hours(24 * day);
        for minute in 0..180i64 {
            for (d, name) in ["tablet", "phone", "laptop"].iter().enumerate() {
                let from = morning + SignedDuration::from_mins(minute + 20 * d as i64);
                let device = DeviceId::from(*name);
                push(
                    from + SignedDuration::from_mins(1),
                    Actor::Device { id: device.clone() },
                    Some(device),
                    EventKind::UsageReported {
                        start: from,
                        end: from + SignedDuration::from_mins(1),
                    },
                );
            }
        }
        let evening = morning + SignedDuration::from_hours(8);
        let id = RequestId(format!("r{day}"));
        push(
            evening,
            guardian.clone(),
            None,
            EventKind::TimeGranted {
                minutes: 15,
                granted_at: None,
            },
        );
        push(
            evening,
            Actor::System,
            None,
            EventKind::TimeRequested {
                request_id: id.clone(),
                minutes: 20,
                note: None,
                requested_at: None,
            },
        );
        push(
            evening + SignedDuration::from_mins(1),
            guardian.clone(),
            None,
            EventKind::RequestResolved {
                request_id: id,
                answer: Answer::Approved { minutes: 10 },
            },
        );
        push(
            evening + SignedDuration::from_mins(2),
            Actor::System,
            None,
            EventKind::ExtensionCreditSpent {
                size: CreditSize::FiveMinute,
                spent_at: None,
            },
        );
    }

    let began = Instant::now();
    let projection = Projection::from_events(child.clone(), policy, &events).expect("valid policy");
    let fold_time = began.elapsed();

    let now = start + SignedDuration::from_hours(24 * 29 + 9);
    let reads = 10_000u32;
    let began = Instant::now();
    let mut remaining_total = 0i64;
    for i in 0..reads {
        let status = projection.status_at(now + SignedDuration::from_secs(i64::from(i)));
        remaining_total += status.remaining_seconds;
    }
    let read_time = began.elapsed();
    println!(
        "fold: {} events in {:.1} ms ({:.0} ns/event); status_at: {:.1} µs per read over {} reads (checksum {})",
        events.len(),
        fold_time.as_secs_f64() * 1e3,
        fold_time.as_secs_f64() * 1e9 / events.len() as f64,
        read_time.as_secs_f64() * 1e6 / f64::from(reads),
        reads,
        remaining_total,
    );
}
