//! The event stream every engine is fed: deterministic, random-access by event index.
//!
//! Each event is derived from `(seed, index)` alone, so the writer, the readers and the
//! recovery checker can all regenerate any key without storing the stream.

/// How many children share the log; keys interleave them.
pub const CHILDREN: u64 = 50;
/// child id ‖ time ‖ sequence, each a big-endian u64.
pub const KEY_BYTES: usize = 24;
/// JSON-like payload, about half fixed text and half random characters.
pub const VALUE_BYTES: usize = 96;
/// Mean gap between consecutive events; each event gets a jitter below this.
pub const EVENT_SPACING_MICROS: u64 = 20;
/// 2026-01-01T00:00:00Z, so times look like real hub times.
const START_UNIX_MICROS: u64 = 1_767_225_600_000_000;

const KINDS: [&str; 5] = ["usage", "grant", "lock", "unlock", "request"];
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// One key/value pair as the bench hands it to an engine.
pub struct Event {
    pub key: [u8; KEY_BYTES],
    pub value: [u8; VALUE_BYTES],
}

/// The seeded generator; cheap to copy into threads.
#[derive(Clone, Copy)]
pub struct Workload {
    seed: u64,
}

/// SplitMix64's finaliser: a good 64-bit mix of a counter, stable across Rust versions.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A sequential PRNG for choosing query parameters (children, windows, indices).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix64(self.0)
    }

    /// Uniform in `0..bound` (bound > 0); the modulo bias is negligible for our bounds.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

impl Workload {
    pub fn new(seed: u64) -> Self {
        Workload { seed }
    }

    fn hash(&self, index: u64, stream: u64) -> u64 {
        mix64(self.seed ^ mix64(index.wrapping_mul(8).wrapping_add(stream)))
    }

    pub fn child_id(&self, index: u64) -> u64 {
        self.hash(index, 0) % CHILDREN
    }

    /// Strictly increasing in `index`: slot `index * spacing` plus a jitter inside the slot.
    pub fn time_unix_micros(&self, index: u64) -> u64 {
        START_UNIX_MICROS
            + index * EVENT_SPACING_MICROS
            + self.hash(index, 1) % EVENT_SPACING_MICROS
    }

    pub fn key(&self, index: u64) -> [u8; KEY_BYTES] {
        compose_key(self.child_id(index), self.time_unix_micros(index), index)
    }

    /// A key between present keys (same child and time as event `index`) that is never
    /// written: its sequence number is far beyond any event index.
    pub fn absent_key(&self, index: u64) -> [u8; KEY_BYTES] {
        compose_key(
            self.child_id(index),
            self.time_unix_micros(index),
            u64::MAX - index,
        )
    }

    pub fn value(&self, index: u64) -> [u8; VALUE_BYTES] {
        let mut out = [0u8; VALUE_BYTES];
        let mut len = 0;
        let mut put = |bytes: &[u8], len: &mut usize| {
            out[*len..*len + bytes.len()].copy_from_slice(bytes);
            *len += bytes.len();
        };
        let mut bits = self.hash(index, 2);
        let kind = KINDS[(bits % KINDS.len() as u64) as usize];
        bits /= KINDS.len() as u64;
        let minutes = bits % 60;
        put(b"{\"type\":\"", &mut len);
        put(kind.as_bytes(), &mut len);
        put(b"\",\"device\":\"", &mut len);
        let device_len = 8;
        let mut random = [0u8; VALUE_BYTES];
        self.random_chars(index, &mut random);
        put(&random[..device_len], &mut len);
        put(b"\",\"min\":", &mut len);
        put(
            &[b'0' + (minutes / 10) as u8, b'0' + (minutes % 10) as u8],
            &mut len,
        );
        put(b",\"token\":\"", &mut len);
        let token_len = VALUE_BYTES - len - 2;
        put(&random[device_len..device_len + token_len], &mut len);
        put(b"\"}", &mut len);
        debug_assert_eq!(len, VALUE_BYTES);
        out
    }

    fn random_chars(&self, index: u64, out: &mut [u8]) {
        for (word, chunk) in out.chunks_mut(10).enumerate() {
            let mut bits = self.hash(index, 3 + word as u64);
            for byte in chunk {
                *byte = ALPHABET[(bits & 63) as usize];
                bits >>= 6;
            }
        }
    }

    pub fn event(&self, index: u64) -> Event {
        Event {
            key: self.key(index),
            value: self.value(index),
        }
    }

    /// Events `first..first + count`, the unit every write phase hands to an engine.
    pub fn batch(&self, first: u64, count: u64) -> Vec<Event> {
        (first..first + count)
            .map(|index| self.event(index))
            .collect()
    }

    /// The first time the stream uses; range-scan windows start at or after it.
    pub fn start_unix_micros(&self) -> u64 {
        START_UNIX_MICROS
    }
}

pub fn compose_key(child_id: u64, time_unix_micros: u64, sequence: u64) -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    key[..8].copy_from_slice(&child_id.to_be_bytes());
    key[8..16].copy_from_slice(&time_unix_micros.to_be_bytes());
    key[16..].copy_from_slice(&sequence.to_be_bytes());
    key
}

/// The sequence number (event index) stored in the last eight bytes of a key.
pub fn key_sequence(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(KEY_BYTES - 8..KEY_BYTES)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_child_time_sequence_and_times_increase() {
        let workload = Workload::new(7);
        let mut previous_time = 0;
        for index in 0..10_000 {
            let key = workload.key(index);
            assert_eq!(
                u64::from_be_bytes(key[..8].try_into().unwrap()),
                workload.child_id(index)
            );
            assert!(workload.child_id(index) < CHILDREN);
            let time = u64::from_be_bytes(key[8..16].try_into().unwrap());
            assert!(time > previous_time, "time must increase at event {index}");
            previous_time = time;
            assert_eq!(key_sequence(&key), Some(index));
        }
    }

    #[test]
    fn values_are_json_like_and_deterministic() {
        let workload = Workload::new(7);
        let value = workload.value(42);
        assert_eq!(value, Workload::new(7).value(42));
        assert_ne!(value, Workload::new(8).value(42));
        let text = std::str::from_utf8(&value).unwrap();
        assert!(
            text.starts_with("{\"type\":\"") && text.ends_with("\"}"),
            "{text}"
        );
        assert!(text.contains("\"token\":\""), "{text}");
    }

    #[test]
    fn absent_keys_never_match_written_keys() {
        let workload = Workload::new(7);
        for index in 0..1_000 {
            let absent = workload.absent_key(index);
            assert_eq!(absent[..16], workload.key(index)[..16]);
            assert!(key_sequence(&absent).unwrap() > 1 << 62);
        }
    }
}
