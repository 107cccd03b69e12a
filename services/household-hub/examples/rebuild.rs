//! How long the hub takes to fold its log at start: writes a log of N events shaped like
//! a household's (usage reports from agents, grants, locks, requests), then times
//! `rebuild::household_from_log`, several runs, and prints the median.
//!
//! `cargo run --release -p household-hub --example rebuild -- [EVENTS] [RUNS]`

use std::time::Instant;

use household_hub::rebuild::household_from_log;
use household_hub::store::EventStore;
use household_proto::convert;
use household_proto::v1::{self, event::Payload};

const CHILDREN: usize = 4;
const DEVICES_PER_CHILD: usize = 2;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let dir = tempfile::tempdir()?;
    let store = EventStore::open(dir.path())?;
    let written = Instant::now();
    write_log(&store, events)?;
    println!(
        "wrote {events} events in {:.1} s; log {} MB",
        written.elapsed().as_secs_f64(),
        household_hub::serve::dir_bytes(dir.path()) / 1_000_000
    );
    let mut seconds = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let household = household_from_log(&store)?;
        let took = started.elapsed().as_secs_f64();
        assert_eq!(household.last_seq(), events);
        println!("run {run}: folded {events} events in {took:.2} s");
        seconds.push(took);
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    println!(
        "median {median:.2} s for {events} events ({:.0} events/s)",
        events as f64 / median
    );
    Ok(())
}

/// A household's worth of events: children with a policy, devices, then usage reports
/// (one per device every 10 s of use, as agents send them) with a grant, a lock and a
/// request now and then, over as many days as it takes.
fn write_log(store: &EventStore, total: u64) -> anyhow::Result<()> {
    let start = jiff::Timestamp::now().as_microsecond() - 400 * 24 * 3_600_000_000;
    let mut seq = 0u64;
    let mut batch = Vec::new();
    let mut event = |child: usize, device: Option<usize>, at: i64, payload: Payload| {
        seq += 1;
        v1::Event {
            seq,
            time_unix_micros: at,
            actor: Some(v1::Actor {
                kind: Some(v1::actor::Kind::GuardianId("g-anna".into())),
                credential_id: String::new(),
            }),
            child_id: format!("c-{child}"),
            device_id: device.map(|d| format!("d-{child}-{d}")).unwrap_or_default(),
            payload: Some(payload),
            ..Default::default()
        }
    };
    let policy = convert::policy_from_core(&household_core::Policy::default(), 1, 0, None);
    for child in 0..CHILDREN {
        batch.push(event(
            child,
            None,
            start,
            Payload::ChildAdded(v1::ChildAdded {
                display_name: format!("child {child}"),
            }),
        ));
        batch.push(event(
            child,
            None,
            start,
            Payload::PolicyChanged(v1::PolicyChanged {
                policy: Some(policy.clone()),
                previous_revision: 0,
            }),
        ));
        for device in 0..DEVICES_PER_CHILD {
            batch.push(event(
                child,
                Some(device),
                start,
                Payload::DeviceAdded(v1::DeviceAdded {
                    display_name: format!("device {device}"),
                    kind: v1::DeviceKind::Agent as i32,
                    legacy_address: String::new(),
                }),
            ));
        }
    }
    let mut at = start;
    let mut n = batch.len() as u64;
    while n < total {
        at += 10_000_000;
        let i = n as usize;
        let child = i % CHILDREN;
        let device = (i / CHILDREN) % DEVICES_PER_CHILD;
        let payload = match i % 500 {
            0 => Payload::TimeGranted(v1::TimeGranted {
                minutes: 15,
                day: None,
                note: String::new(),
                granted_unix_micros: None,
            }),
            1 => Payload::Locked(v1::Locked {
                until_unix_micros: Some(at + 3_600_000_000),
                reason: "dinner".into(),
            }),
            2 => Payload::TimeRequested(v1::TimeRequested {
                request_id: format!("r-{i}"),
                minutes: 10,
                note: String::new(),
                day: None,
                requested_unix_micros: at,
            }),
            _ => Payload::UsageReported(v1::UsageReported {
                start_unix_micros: at - 10_000_000,
                end_unix_micros: at,
            }),
        };
        batch.push(event(child, Some(device), at, payload));
        n += 1;
        if batch.len() >= 10_000 {
            store.append(&batch)?;
            batch.clear();
        }
    }
    store.append(&batch)?;
    Ok(())
}
