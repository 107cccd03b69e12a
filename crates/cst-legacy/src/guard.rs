//! The responder's hardening: a replay window and a per-source rate limit,
//! both bounded in memory and both driven by tokio's clock (so tests can
//! pause it).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Remembers sealed commands seen recently, so the same datagram sent again
/// (a capture replayed) is not executed twice. A real parent app seals every
/// command with a fresh random IV, so it never repeats a ciphertext. The
/// responder feeds it the decoded `IV ‖ ciphertext`, never the base64 text,
/// whose whitespace and padding a replayer may change freely.
#[derive(Debug)]
pub struct ReplayWindow {
    window: Duration,
    capacity: usize,
    seen: HashMap<Digest, Instant>,
    order: VecDeque<(Instant, Digest)>,
}

/// What the replay window remembers of a sealed command: the first 16
/// bytes of SHA-256 of its decoded `IV ‖ ciphertext`. Stable across
/// processes, so a child agent can keep its window across a restart.
pub type Digest = [u8; 16];

/// The [`Digest`] of decoded sealed bytes.
pub fn digest(sealed: &[u8]) -> Digest {
    use sha2::Digest as _;
    let full = sha2::Sha256::digest(sealed);
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&full[..16]);
    digest
}

impl ReplayWindow {
    /// `capacity` bounds memory: past it the oldest entries are forgotten
    /// early, and the responder counts that (see `Counters::replay_evicted`).
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `sealed` at `now`; returns false if it was already seen
    /// within the window. The second value says whether an entry younger
    /// than the window had to be forgotten to stay within capacity.
    #[cfg(test)]
    pub fn first_sight(&mut self, sealed: &[u8], now: Instant) -> (bool, bool) {
        self.first_sight_of(digest(sealed), now)
    }

    /// Remembers commands seen before this window existed (by an earlier
    /// run), each `age` ago; those older than the window are skipped.
    pub fn seed(&mut self, seen: &[(Digest, Duration)], now: Instant) {
        let mut entries: Vec<(Instant, Digest)> = seen
            .iter()
            .filter(|(_, age)| *age < self.window)
            .map(|(d, age)| (now.checked_sub(*age).unwrap_or(now), *d))
            .collect();
        entries.sort();
        for (at, digest) in entries {
            self.first_sight_of(digest, at);
        }
    }

    /// [`ReplayWindow::first_sight`] by digest.
    pub fn first_sight_of(&mut self, hash: Digest, now: Instant) -> (bool, bool) {
        while let Some(&(at, hash)) = self.order.front() {
            if now.duration_since(at) < self.window {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&hash) == Some(&at) {
                self.seen.remove(&hash);
            }
        }
        if self.seen.contains_key(&hash) {
            return (false, false);
        }
        let mut evicted = false;
        while self.seen.len() >= self.capacity {
            let Some((at, old)) = self.order.pop_front() else {
                break;
            };
            if self.seen.get(&old) == Some(&at) {
                self.seen.remove(&old);
                evicted = true;
            }
        }
        self.seen.insert(hash, now);
        self.order.push_back((now, hash));
        (true, evicted)
    }
}

/// Token buckets per source address: `burst` datagrams at once, refilled at
/// `per_second`. At most `capacity` sources are tracked; when the table is
/// full, sources whose bucket has refilled are forgotten, and if none has, a
/// new source is refused until one does (so a flood from many forged
/// addresses cannot grow memory).
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    burst: f64,
    capacity: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    pub fn new(per_second: f64, burst: u32, capacity: usize) -> Self {
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            capacity: capacity.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `source`; false means drop the datagram.
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.capacity {
            let (per_second, burst) = (self.per_second, self.burst);
            self.buckets
                .retain(|_, b| refilled(b, now, per_second, burst) < burst);
            if self.buckets.len() >= self.capacity {
                return false;
            }
        }
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = refilled(bucket, now, self.per_second, self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One token bucket for all sources together, beside the per-source ones:
/// many addresses (a local user has all of 127.0.0.0/8) cannot add up to
/// more than `per_second` after a `burst`.
#[derive(Debug)]
pub struct GlobalRate {
    per_second: f64,
    burst: f64,
    bucket: Bucket,
}

impl GlobalRate {
    pub fn new(per_second: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_second,
            burst,
            bucket: Bucket {
                tokens: burst,
                at: now,
            },
        }
    }

    /// Takes one token; false means drop the datagram.
    pub fn allow(&mut self, now: Instant) -> bool {
        self.bucket.tokens = refilled(&self.bucket, now, self.per_second, self.burst);
        self.bucket.at = now;
        if self.bucket.tokens >= 1.0 {
            self.bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn refilled(bucket: &Bucket, now: Instant, per_second: f64, burst: f64) -> f64 {
    let elapsed = now.duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_inside_the_window_is_caught_and_forgotten_after_it() {
        let mut window = ReplayWindow::new(Duration::from_secs(600), 16);
        let t0 = Instant::now();
        assert_eq!(window.first_sight(b"abc", t0), (true, false));
        assert!(!window.first_sight(b"abc", t0 + Duration::from_secs(599)).0);
        assert!(window.first_sight(b"abc", t0 + Duration::from_secs(601)).0);
    }

    #[test]
    fn a_seeded_window_remembers_what_an_earlier_run_saw() {
        let t0 = Instant::now() + Duration::from_secs(3600);
        let mut window = ReplayWindow::new(Duration::from_secs(600), 16);
        window.seed(
            &[
                (digest(b"recent"), Duration::from_secs(60)),
                (digest(b"old"), Duration::from_secs(700)),
            ],
            t0,
        );
        assert!(!window.first_sight(b"recent", t0).0);
        assert!(window.first_sight(b"old", t0).0);
        assert!(
            window
                .first_sight(b"recent", t0 + Duration::from_secs(541))
                .0
        );
    }

    #[test]
    fn the_window_stays_within_capacity() {
        let mut window = ReplayWindow::new(Duration::from_secs(600), 4);
        let t0 = Instant::now();
        for i in 0..4u8 {
            assert_eq!(window.first_sight(&[i], t0), (true, false));
        }
        assert_eq!(window.first_sight(&[9], t0), (true, true));
        assert!(window.seen.len() <= 4 && window.order.len() <= 4);
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let mut limit = RateLimit::new(2.0, 3, 8);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        assert!((0..3).all(|_| limit.allow(ip, t0)));
        assert!(!limit.allow(ip, t0));
        assert!(limit.allow(ip, t0 + Duration::from_millis(500)));
        assert!(!limit.allow(ip, t0 + Duration::from_millis(500)));
        let other: IpAddr = [10, 0, 0, 2].into();
        assert!(limit.allow(other, t0), "sources are limited separately");
    }

    #[test]
    fn the_global_rate_holds_across_sources() {
        let t0 = Instant::now();
        let mut global = GlobalRate::new(10.0, 5, t0);
        assert!((0..5).all(|_| global.allow(t0)));
        assert!(!global.allow(t0));
        assert!(global.allow(t0 + Duration::from_millis(100)));
        assert!(!global.allow(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn a_full_table_forgets_idle_sources_and_refuses_new_ones_otherwise() {
        let mut limit = RateLimit::new(1.0, 1, 2);
        let t0 = Instant::now();
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        assert!(limit.allow(ip(1), t0));
        assert!(limit.allow(ip(2), t0));
        assert!(!limit.allow(ip(3), t0), "table full of busy sources");
        assert!(
            limit.allow(ip(3), t0 + Duration::from_secs(2)),
            "idle ones forgotten"
        );
        assert!(limit.buckets.len() <= 2);
    }
}
