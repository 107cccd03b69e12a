//! A small script language for hand-worked days: local times in Europe/Berlin, seqs
//! assigned in order, one call per thing that happens.
#![allow(dead_code)]

use household_core::time::zone_named;
use household_core::*;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

pub const CHILD: &str = "mia";

/// The example household of `docs/rules.md`.
pub fn household_policy() -> Policy {
    let text = r#"
        time_zone = "Europe/Berlin"
        grace_minutes = 2

        [daily_minutes]
        default = 120
        sat = 180
        sun = 180

        [[bedtime]]
        days = ["sun", "mon", "tue", "wed", "thu"]
        start = "20:30"
        end = "07:00"

        [[bedtime]]
        days = ["fri", "sat"]
        start = "22:00"
        end = "08:30"

        [extension_credits_per_day]
        five_minute_count = 2
        ten_minute_count = 1
    "#;
    let policy: Policy = toml::from_str(text).unwrap();
    policy.validate().unwrap();
    policy
}

pub fn berlin() -> TimeZone {
    zone_named("Europe/Berlin").unwrap()
}

/// `"2025-06-02 10:00"` as a Berlin wall-clock time, or any RFC 3339 instant with an
/// offset (`"2025-10-26T02:30+01:00"`) when the wall clock is ambiguous.
pub fn t(text: &str) -> Timestamp {
    if let Ok(instant) = text.parse::<Timestamp>() {
        return instant;
    }
    let local: DateTime = text.replace(' ', "T").parse().unwrap();
    berlin().to_zoned(local).unwrap().timestamp()
}

pub fn guardian(name: &str) -> Actor {
    Actor::Guardian {
        id: GuardianId::from(name),
    }
}

pub fn device(name: &str) -> Actor {
    Actor::Device {
        id: DeviceId::from(name),
    }
}

/// A projection plus a seq counter.
pub struct Script {
    pub projection: Projection,
    pub seq: u64,
}

impl Script {
    pub fn new(policy: Policy) -> Script {
        Script {
            projection: Projection::new(ChildId::from(CHILD), policy).unwrap(),
            seq: 0,
        }
    }

    pub fn household() -> Script {
        Script::new(household_policy())
    }

    pub fn event(&mut self, at: &str, actor: Actor, kind: EventKind) -> Event {
        self.seq += 1;
        Event::new(self.seq, t(at), actor, ChildId::from(CHILD), kind)
    }

    pub fn record(&mut self, at: &str, actor: Actor, kind: EventKind) -> ApplyOutcome {
        let event = self.event(at, actor, kind);
        self.projection.apply(&event)
    }

    /// `device` reports use from `from` to `to` (reported at `to`).
    pub fn used(&mut self, device_name: &str, from: &str, to: &str) -> ApplyOutcome {
        self.reported(to, device_name, from, to)
    }

    /// `device`'s use from `from` to `to`, reaching the log only at `at` (it waited in
    /// an offline outbox).
    pub fn reported(&mut self, at: &str, device_name: &str, from: &str, to: &str) -> ApplyOutcome {
        let mut event = self.event(
            at,
            device(device_name),
            EventKind::UsageReported {
                start: t(from),
                end: t(to),
            },
        );
        event.device = Some(DeviceId::from(device_name));
        self.projection.apply(&event)
    }

    pub fn grant(&mut self, at: &str, who: &str, minutes: i64) -> ApplyOutcome {
        self.record(
            at,
            guardian(who),
            EventKind::TimeGranted {
                minutes,
                granted_at: None,
            },
        )
    }

    pub fn status(&self, at: &str) -> Status {
        self.projection.status_at(t(at))
    }
}
