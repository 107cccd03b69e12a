//! How long the hub takes to rebuild its household at start: writes a log of N events
//! shaped like a household's (usage reports from agents, grants, locks, requests) with a
//! snapshot taken 10,000 events before its end, then times, several runs each, folding
//! the whole log and reading the snapshot and folding the events after it, checks that
//! both give every child the same status, and prints the medians.
//!
//! `cargo run --release -p household-hub --example rebuild -- [EVENTS] [RUNS]`

use std::time::Instant;

use household_hub::household::HouseholdState;
use household_hub::snapshot::SnapshotFile;
use household_hub::store::EventStore;
use household_proto::convert;
use household_proto::v1::{self, event::Payload};

const CHILDREN: usize = 4;
const DEVICES_PER_CHILD: usize = 2;
/// Events logged after the snapshot.
const TAIL_EVENTS: u64 = 10_000;
/// Time between two events.
const STEP_MICROS: i64 = 10_000_000;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let tail = TAIL_EVENTS.min(events / 2);
    let dir = tempfile::tempdir()?;
    let store = EventStore::open(&dir.path().join("log"))?;
    let snapshot_file = SnapshotFile::new(dir.path().join("snapshot"));
    // The log ends now, so its last day is today, as on a hub in use.
    let start = jiff::Timestamp::now().as_microsecond() - events as i64 * STEP_MICROS;
    let written = Instant::now();
    let mut log = LogWriter::new(start);
    log.write(&store, events - tail)?;

    // What a running hub has in memory when it takes a snapshot: the fold, with what
    // statuses no longer need forgotten (it does that hourly).
    let (mut household, _) = SnapshotFile::new(dir.path().join("none")).rebuild(&store)?;
    household.forget_old(jiff::Timestamp::now());
    snapshot_file.write(&store, HouseholdState::from(&household))?;
    log.write(&store, events)?;
    println!(
        "wrote {events} events in {:.1} s; log {} MB; snapshot at seq {} ({} KB)",
        written.elapsed().as_secs_f64(),
        household_hub::serve::dir_bytes(&dir.path().join("log")) / 1_000_000,
        events - tail,
        household_hub::serve::dir_bytes(&dir.path().join("snapshot")) / 1_000,
    );

    let mut whole = Vec::new();
    let mut from_snapshot = Vec::new();
    let now = jiff::Timestamp::now();
    for run in 1..=runs {
        let started = Instant::now();
        let (full, rebuilt) = SnapshotFile::new(dir.path().join("none")).rebuild(&store)?;
        let took = started.elapsed().as_secs_f64();
        assert_eq!((full.last_seq(), rebuilt.snapshot_seq), (events, None));
        whole.push(took);

        let started = Instant::now();
        let (quick, rebuilt) = snapshot_file.rebuild(&store)?;
        let quick_took = started.elapsed().as_secs_f64();
        assert_eq!(rebuilt.snapshot_seq, Some(events - tail));
        assert_eq!(rebuilt.events_folded, tail);
        for child in full.children() {
            let id = &child.child.child_id;
            assert_eq!(full.status(id, now), quick.status(id, now), "child {id}");
        }
        println!(
            "run {run}: whole log {took:.2} s; snapshot and the last {tail} events {quick_took:.3} s"
        );
        from_snapshot.push(quick_took);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (whole, from_snapshot) = (median(whole), median(from_snapshot));
    println!(
        "median: whole log {whole:.2} s for {events} events ({:.0} events/s); snapshot and {tail} events {from_snapshot:.3} s",
        events as f64 / whole
    );
    Ok(())
}

/// Writes a household's worth of events: children with a policy, devices, then usage
/// reports (one per device every 10 s of use, as agents send them) with a grant, a lock
/// and a request now and then, over as many days as it takes.
struct LogWriter {
    start: i64,
    /// The seq of the last event made.
    seq: u64,
}

impl LogWriter {
    fn new(start: i64) -> LogWriter {
        LogWriter { start, seq: 0 }
    }

    fn event(
        &mut self,
        child: usize,
        device: Option<usize>,
        at: i64,
        payload: Payload,
    ) -> v1::Event {
        self.seq += 1;
        v1::Event {
            seq: self.seq,
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
    }

    /// The household's first events: its children, their policies and devices.
    fn setup(&mut self) -> Vec<v1::Event> {
        let start = self.start;
        let policy = convert::policy_from_core(&household_core::Policy::default(), 1, 0, None);
        let mut events = Vec::new();
        for child in 0..CHILDREN {
            events.push(self.event(
                child,
                None,
                start,
                Payload::ChildAdded(v1::ChildAdded {
                    display_name: format!("child {child}"),
                }),
            ));
            events.push(self.event(
                child,
                None,
                start,
                Payload::PolicyChanged(v1::PolicyChanged {
                    policy: Some(policy.clone()),
                    previous_revision: 0,
                }),
            ));
            for device in 0..DEVICES_PER_CHILD {
                events.push(self.event(
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
        events
    }

    /// Appends events until the log holds `total`.
    fn write(&mut self, store: &EventStore, total: u64) -> anyhow::Result<()> {
        let mut batch = if self.seq == 0 {
            self.setup()
        } else {
            Vec::new()
        };
        while self.seq < total {
            let i = self.seq as usize;
            let at = self.start + i as i64 * STEP_MICROS;
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
                    start_unix_micros: at - STEP_MICROS,
                    end_unix_micros: at,
                }),
            };
            batch.push(self.event(child, Some(device), at, payload));
            if batch.len() >= 10_000 {
                store.append(&batch)?;
                batch.clear();
            }
        }
        store.append(&batch)?;
        Ok(())
    }
}
