//! The usage meter: turns "in use?" samples into usage intervals.
//!
//! Each clock tick charges the measured part of the step (monotonic time, see
//! [`crate::clock`]) to an open interval that ends at the agent's "now". An
//! interval closes when use stops, when it is [`MAX_INTERVAL_MICROS`] long (so
//! the store holds a bounded number of events per day), or when the agent
//! stops. The open interval is checkpointed often (see [`crate::agent`]), so a
//! kill loses at most the time since the last checkpoint.

use crate::clock::Tick;

/// Longest interval kept open before it is closed into an event.
pub const MAX_INTERVAL_MICROS: i64 = 5 * 60 * 1_000_000;

/// A stretch of agent time during which the device was in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub start_unix_micros: i64,
    pub end_unix_micros: i64,
}

impl Interval {
    pub fn duration_micros(&self) -> i64 {
        self.end_unix_micros - self.start_unix_micros
    }
}

#[derive(Debug)]
pub struct Meter {
    open: Option<Interval>,
    /// An interval this long closes and a new one begins.
    max_micros: i64,
}

impl Default for Meter {
    fn default() -> Self {
        Self {
            open: None,
            max_micros: MAX_INTERVAL_MICROS,
        }
    }
}

impl Meter {
    /// A meter whose intervals close every `every`: an enrolled agent reports
    /// use to its hub that often while the device is in use.
    pub fn reporting_every(every: std::time::Duration) -> Self {
        Self {
            open: None,
            max_micros: i64::try_from(every.as_micros()).unwrap_or(MAX_INTERVAL_MICROS),
        }
    }

    /// The interval still being measured, if any.
    pub fn open(&self) -> Option<Interval> {
        self.open
    }

    /// Records one tick. Returns an interval that this tick closed, ready to
    /// be stored as a usage event.
    pub fn record(&mut self, tick: Tick, active: bool) -> Option<Interval> {
        if !active || tick.measured_micros <= 0 {
            return if active { None } else { self.open.take() };
        }
        let start = tick.now_unix_micros - tick.measured_micros;
        match &mut self.open {
            Some(open) if open.end_unix_micros == start => {
                open.end_unix_micros = tick.now_unix_micros;
                if open.duration_micros() >= self.max_micros {
                    return self.open.take();
                }
                None
            }
            _ => {
                let closed = self.open.take();
                self.open = Some(Interval {
                    start_unix_micros: start,
                    end_unix_micros: tick.now_unix_micros,
                });
                closed
            }
        }
    }

    /// Closes the open interval, e.g. when the agent stops.
    pub fn close(&mut self) -> Option<Interval> {
        self.open.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(previous: i64, now: i64, measured: i64) -> Tick {
        Tick {
            previous_unix_micros: previous,
            now_unix_micros: now,
            measured_micros: measured,
        }
    }

    #[test]
    fn contiguous_use_extends_one_interval() {
        let mut meter = Meter::default();
        assert_eq!(meter.record(tick(0, 10, 10), true), None);
        assert_eq!(meter.record(tick(10, 20, 10), true), None);
        assert_eq!(
            meter.open(),
            Some(Interval {
                start_unix_micros: 0,
                end_unix_micros: 20
            })
        );
    }

    #[test]
    fn idle_closes_the_interval() {
        let mut meter = Meter::default();
        meter.record(tick(0, 10, 10), true);
        let closed = meter.record(tick(10, 20, 10), false).unwrap();
        assert_eq!(closed.duration_micros(), 10);
        assert_eq!(meter.open(), None);
    }

    #[test]
    fn a_jump_starts_a_new_interval_charging_only_measured_time() {
        let mut meter = Meter::default();
        meter.record(tick(0, 10, 10), true);
        let closed = meter.record(tick(10, 1_000, 10), true).unwrap();
        assert_eq!(closed.end_unix_micros, 10);
        assert_eq!(meter.open().unwrap().duration_micros(), 10);
    }

    #[test]
    fn long_use_is_cut_into_bounded_intervals() {
        let mut meter = Meter::default();
        let step = 1_000_000;
        let mut closed = Vec::new();
        for i in 0..(2 * MAX_INTERVAL_MICROS / step + 3) {
            closed.extend(meter.record(tick(i * step, (i + 1) * step, step), true));
        }
        assert_eq!(closed.len(), 2);
        assert!(
            closed
                .iter()
                .all(|c| c.duration_micros() == MAX_INTERVAL_MICROS)
        );
        assert_eq!(meter.open().unwrap().duration_micros(), 3 * step);
    }
}
