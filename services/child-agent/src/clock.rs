//! The agent's clock: the time the rules are evaluated at.
//!
//! It advances with the monotonic clock, so setting the wall clock back gains
//! nothing: the agent's time never goes backwards, not even across a restart
//! (it starts from the later of the wall clock and the last time it saved).
//! At normal speed it does follow the wall clock *forwards*, because that is
//! what waking from suspend looks like (the monotonic clock stops while the
//! machine sleeps). A child who sets the clock to tomorrow therefore spends
//! tomorrow's allowance early and gets it back no sooner than tomorrow: time
//! moves on, but never twice over the same day.
//!
//! With `--speed F` the clock runs F times as fast as real time, so a demo day
//! passes in 24/F hours; then the wall clock is only read at start.

use std::time::{Duration, Instant};

/// One reading of the agent's clock: how far it moved since the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Agent time at the previous reading.
    pub previous_unix_micros: i64,
    /// Agent time now.
    pub now_unix_micros: i64,
    /// How much of the step was measured on the monotonic clock (scaled by the
    /// speed). Usage is charged from this only; a forward jump of the wall
    /// clock moves `now` but adds nothing here.
    pub measured_micros: i64,
}

#[derive(Debug, Clone)]
pub struct AgentClock {
    speed: f64,
    last_mono: Instant,
    now_unix_micros: i64,
}

impl AgentClock {
    /// Starts at `max(wall, saved)`, the saved time being the last one the
    /// agent persisted (0 on first start).
    pub fn start(speed: f64, mono: Instant, wall_unix_micros: i64, saved_unix_micros: i64) -> Self {
        Self {
            speed,
            last_mono: mono,
            now_unix_micros: wall_unix_micros.max(saved_unix_micros),
        }
    }

    /// The agent's current time, as of the last tick.
    pub fn now_unix_micros(&self) -> i64 {
        self.now_unix_micros
    }

    /// Advances the clock to the monotonic instant `mono`, given the wall clock
    /// read at the same moment.
    pub fn tick(&mut self, mono: Instant, wall_unix_micros: i64) -> Tick {
        let elapsed = mono.saturating_duration_since(self.last_mono);
        self.last_mono = mono;
        let measured_micros = scaled_micros(elapsed, self.speed);
        let previous = self.now_unix_micros;
        let mut now = previous.saturating_add(measured_micros);
        if self.speed == 1.0 && wall_unix_micros > now {
            now = wall_unix_micros;
        }
        self.now_unix_micros = now;
        Tick {
            previous_unix_micros: previous,
            now_unix_micros: now,
            measured_micros,
        }
    }
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

    #[test]
    fn a_backward_jump_of_the_wall_clock_is_ignored() {
        let t0 = Instant::now();
        let mut clock = AgentClock::start(1.0, t0, 100 * HOUR, 0);
        let tick = clock.tick(t0 + Duration::from_secs(60), 100 * HOUR - 5 * HOUR);
        assert_eq!(tick.measured_micros, 60_000_000);
        assert_eq!(tick.now_unix_micros, 100 * HOUR + 60_000_000);
    }

    #[test]
    fn a_forward_jump_moves_the_clock_but_measures_nothing_extra() {
        let t0 = Instant::now();
        let mut clock = AgentClock::start(1.0, t0, 100 * HOUR, 0);
        let tick = clock.tick(t0 + Duration::from_secs(1), 103 * HOUR);
        assert_eq!(tick.measured_micros, 1_000_000);
        assert_eq!(tick.now_unix_micros, 103 * HOUR);
    }

    #[test]
    fn a_restart_never_goes_back_before_the_saved_time() {
        let clock = AgentClock::start(1.0, Instant::now(), 90 * HOUR, 100 * HOUR);
        assert_eq!(clock.now_unix_micros(), 100 * HOUR);
    }

    #[test]
    fn speed_scales_measured_time_and_ignores_the_wall_clock() {
        let t0 = Instant::now();
        let mut clock = AgentClock::start(60.0, t0, 100 * HOUR, 0);
        let tick = clock.tick(t0 + Duration::from_secs(2), 200 * HOUR);
        assert_eq!(tick.measured_micros, 120_000_000);
        assert_eq!(tick.now_unix_micros, 100 * HOUR + 120_000_000);
    }
}
