//! The agent's clock: the time the rules are evaluated at.
//!
//! It is anchored once, at start, to the wall clock — but never earlier than
//! the last time the agent saved, so a restart with the clock set back does
//! not replay a day. From then on it advances only by `CLOCK_BOOTTIME`, the
//! kernel's count of time since boot, which keeps counting while the machine
//! is suspended. Changing the wall clock while the agent runs, back or
//! forth, therefore changes nothing: setting the date to tomorrow does not
//! bring tomorrow's allowance (the change is logged). Use is charged from
//! `CLOCK_MONOTONIC`, which stops during suspend, so a night in suspend moves
//! the agent's day on but charges none of it as use.
//!
//! What this cannot catch: the wall clock as it is when the agent starts is
//! believed (if it is later than the last save). A clock set forward while
//! the agent is stopped, with no hub to say otherwise, moves the agent's day
//! forward; once the agent talks to a hub, the hub's time is the authority.
//! And a device without a battery-backed clock should start the agent only
//! once its clock is synchronised, or the agent keeps the stale time it
//! started with until it is restarted.
//!
//! With `--speed F` both clocks are scaled by F, so a demo day passes in
//! 24/F hours.

use std::time::{Duration, Instant};

/// A change of the wall clock, relative to the agent's, that is worth a log line.
const WALL_CHANGE_LOGGED: Duration = Duration::from_secs(60);

/// The machine's clocks, read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// `CLOCK_MONOTONIC` (stops while suspended): use is charged from it.
    pub mono: Instant,
    /// `CLOCK_BOOTTIME` (counts suspend): the agent's time advances by it.
    pub boot: Duration,
    /// The wall clock: only anchors the agent's time at start.
    pub wall_unix_micros: i64,
}

impl Reading {
    pub fn now() -> Self {
        Self {
            mono: Instant::now(),
            boot: boot_time(),
            wall_unix_micros: jiff::Timestamp::now().as_microsecond(),
        }
    }

    /// This reading, `elapsed` later by both clocks, the wall clock showing
    /// `wall_unix_micros`.
    #[cfg(test)]
    pub fn after(self, elapsed: Duration, wall_unix_micros: i64) -> Self {
        Self {
            mono: self.mono + elapsed,
            boot: self.boot + elapsed,
            wall_unix_micros,
        }
    }
}

/// `CLOCK_BOOTTIME`; where it cannot be read, `CLOCK_MONOTONIC`.
fn boot_time() -> Duration {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const CLOCK: libc::clockid_t = libc::CLOCK_BOOTTIME;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec for the call's duration.
    let status = unsafe { libc::clock_gettime(CLOCK, &mut time) };
    if status != 0 {
        // SAFETY: as above; CLOCK_MONOTONIC is always available.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    }
    Duration::new(
        u64::try_from(time.tv_sec).unwrap_or(0),
        u32::try_from(time.tv_nsec).unwrap_or(0),
    )
}

/// One reading of the agent's clock: how far it moved since the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Agent time at the previous reading.
    pub previous_unix_micros: i64,
    /// Agent time now.
    pub now_unix_micros: i64,
    /// How much of the step the device was awake for (monotonic time, scaled
    /// by the speed); usage is charged from this only. Never more than the
    /// step itself.
    pub measured_micros: i64,
}

#[derive(Debug, Clone)]
pub struct AgentClock {
    speed: f64,
    last: Reading,
    now_unix_micros: i64,
    /// Wall clock minus agent time when last logged, to notice changes.
    wall_offset_micros: i64,
}

impl AgentClock {
    /// Starts at `max(wall, saved)`, the saved time being the last one the
    /// agent persisted (0 on first start).
    pub fn start(speed: f64, reading: Reading, saved_unix_micros: i64) -> Self {
        let now = reading.wall_unix_micros.max(saved_unix_micros);
        if saved_unix_micros > reading.wall_unix_micros {
            tracing::warn!(
                behind = ?micros(saved_unix_micros - reading.wall_unix_micros),
                "the wall clock is behind the time the agent last saved; going on from the saved time"
            );
        }
        Self {
            speed,
            last: reading,
            now_unix_micros: now,
            wall_offset_micros: reading.wall_unix_micros - now,
        }
    }

    /// The agent's current time, as of the last tick.
    pub fn now_unix_micros(&self) -> i64 {
        self.now_unix_micros
    }

    /// Advances the clock to `reading`.
    pub fn tick(&mut self, reading: Reading) -> Tick {
        let awake = reading.mono.saturating_duration_since(self.last.mono);
        let elapsed = reading.boot.saturating_sub(self.last.boot);
        self.last = reading;
        let previous = self.now_unix_micros;
        let now = previous.saturating_add(scaled_micros(elapsed, self.speed));
        self.now_unix_micros = now;
        if self.speed == 1.0 {
            self.notice_wall_change(reading.wall_unix_micros - now);
        }
        Tick {
            previous_unix_micros: previous,
            now_unix_micros: now,
            measured_micros: scaled_micros(awake.min(elapsed), self.speed),
        }
    }

    /// Logs a change of the wall clock, once per change; the agent's time
    /// does not follow it.
    fn notice_wall_change(&mut self, offset_micros: i64) {
        let moved = offset_micros - self.wall_offset_micros;
        if moved.unsigned_abs() < WALL_CHANGE_LOGGED.as_micros() as u64 {
            return;
        }
        self.wall_offset_micros = offset_micros;
        let direction = if moved > 0 { "forward" } else { "back" };
        tracing::warn!(
            by = ?micros(moved),
            direction,
            "the wall clock was changed; the agent's time goes on by the boot clock and ignores it"
        );
    }
}

fn micros(micros: i64) -> Duration {
    Duration::from_micros(micros.unsigned_abs())
}

fn scaled_micros(elapsed: Duration, speed: f64) -> i64 {
    let micros = elapsed.as_micros() as f64 * speed;
    if micros >= i64::MAX as f64 {
        i64::MAX
    } else {
        micros as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    fn reading(wall_unix_micros: i64) -> Reading {
        Reading {
            mono: Instant::now(),
            boot: Duration::from_secs(1000),
            wall_unix_micros,
        }
    }

    #[test]
    fn a_backward_jump_of_the_wall_clock_is_ignored() {
        let r0 = reading(100 * HOUR);
        let mut clock = AgentClock::start(1.0, r0, 0);
        let tick = clock.tick(r0.after(Duration::from_secs(60), 100 * HOUR - 5 * HOUR));
        assert_eq!(tick.measured_micros, 60_000_000);
        assert_eq!(tick.now_unix_micros, 100 * HOUR + 60_000_000);
    }

    #[test]
    fn a_forward_jump_of_the_wall_clock_is_ignored_too() {
        let r0 = reading(100 * HOUR);
        let mut clock = AgentClock::start(1.0, r0, 0);
        let tick = clock.tick(r0.after(Duration::from_secs(1), 124 * HOUR));
        assert_eq!(tick.measured_micros, 1_000_000);
        assert_eq!(tick.now_unix_micros, 100 * HOUR + 1_000_000);
        let tick = clock.tick(r0.after(Duration::from_secs(2), 124 * HOUR + 1_000_000));
        assert_eq!(tick.now_unix_micros, 100 * HOUR + 2_000_000);
    }

    #[test]
    fn suspend_moves_the_clock_on_but_is_not_measured() {
        let r0 = reading(100 * HOUR);
        let mut clock = AgentClock::start(1.0, r0, 0);
        // Eight hours asleep: the boot clock counts them, the monotonic one does not.
        let resumed = Reading {
            mono: r0.mono + Duration::from_secs(1),
            boot: r0.boot + Duration::from_secs(8 * 3600 + 1),
            wall_unix_micros: 108 * HOUR + 1_000_000,
        };
        let tick = clock.tick(resumed);
        assert_eq!(tick.now_unix_micros, 108 * HOUR + 1_000_000);
        assert_eq!(tick.measured_micros, 1_000_000);
    }

    #[test]
    fn a_restart_never_goes_back_before_the_saved_time() {
        let clock = AgentClock::start(1.0, reading(90 * HOUR), 100 * HOUR);
        assert_eq!(clock.now_unix_micros(), 100 * HOUR);
    }

    #[test]
    fn speed_scales_both_clocks_and_ignores_the_wall_clock() {
        let r0 = reading(100 * HOUR);
        let mut clock = AgentClock::start(60.0, r0, 0);
        let tick = clock.tick(r0.after(Duration::from_secs(2), 200 * HOUR));
        assert_eq!(tick.measured_micros, 120_000_000);
        assert_eq!(tick.now_unix_micros, 100 * HOUR + 120_000_000);
    }

    #[test]
    fn the_boot_clock_reads_and_does_not_go_back() {
        let (a, b) = (boot_time(), boot_time());
        assert!(a > Duration::ZERO && b >= a);
    }
}
