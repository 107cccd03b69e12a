//! The measured workloads W1, W2, R1 and R2, identical for every engine.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::engine::{Durability, Engine};
use crate::measure::percentile_ms;
use crate::workload::{
    CHILDREN, EVENT_SPACING_MICROS, KEY_BYTES, Rng, VALUE_BYTES, Workload, compose_key,
};

/// Events per W1 batch.
pub const W1_BATCH_EVENTS: u64 = 256;
/// Events per W2 batch.
pub const W2_BATCH_EVENTS: u64 = 16;
/// R1: number of scans and the events each window should return.
pub const R1_SCANS: u64 = 200;
pub const R1_EVENTS_PER_SCAN: u64 = 1_000;
/// R2: lookups of each kind.
pub const R2_LOOKUPS: u64 = 200_000;

pub struct BatchedAppend {
    pub events_per_s: f64,
    /// Events over the wall time of the whole loop, generating the events included.
    pub wall_events_per_s: f64,
    /// Time of the engine's flush after the last batch; not part of `events_per_s`.
    pub flush_s: f64,
}

/// W1: `events` events in batches of 256 with `Buffered` durability. Only the time spent
/// inside the engine's write calls counts; generating the events does not.
pub fn batched_append(
    engine: &dyn Engine,
    workload: &Workload,
    events: u64,
) -> anyhow::Result<BatchedAppend> {
    let mut writing = Duration::ZERO;
    let mut first = 0;
    let loop_started = Instant::now();
    while first < events {
        let count = W1_BATCH_EVENTS.min(events - first);
        let batch = workload.batch(first, count);
        let started = Instant::now();
        engine
            .write(&batch, Durability::Buffered)
            .with_context(|| format!("W1 batch at event {first}"))?;
        writing += started.elapsed();
        first += count;
    }
    let wall = loop_started.elapsed();
    let started = Instant::now();
    engine.flush().context("flush after W1")?;
    Ok(BatchedAppend {
        events_per_s: events as f64 / writing.as_secs_f64(),
        wall_events_per_s: events as f64 / wall.as_secs_f64(),
        flush_s: started.elapsed().as_secs_f64(),
    })
}

/// How long W2 may run for one writer count, whichever limit comes first.
#[derive(Clone, Copy)]
pub struct DurableLimits {
    pub max_duration: Duration,
    pub max_batches: u64,
}

pub struct DurableAppend {
    pub batches: u64,
    pub batches_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// W2: batches of 16 events with `Sync` durability from `writers` threads at once.
/// `next_event` hands out event indices so concurrent writers never collide and times
/// keep increasing; each batch's latency is the duration of its write call.
pub fn durable_append(
    engine: &dyn Engine,
    workload: &Workload,
    next_event: &AtomicU64,
    writers: usize,
    limits: DurableLimits,
) -> anyhow::Result<DurableAppend> {
    let issued = AtomicU64::new(0);
    let latencies = Mutex::new(Vec::new());
    let started = Instant::now();
    let deadline = started + limits.max_duration;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let mut mine = Vec::new();
                    while Instant::now() < deadline
                        && issued.fetch_add(1, Ordering::Relaxed) < limits.max_batches
                    {
                        let first = next_event.fetch_add(W2_BATCH_EVENTS, Ordering::Relaxed);
                        let batch = workload.batch(first, W2_BATCH_EVENTS);
                        let write_started = Instant::now();
                        engine
                            .write(&batch, Durability::Sync)
                            .with_context(|| format!("W2 batch at event {first}"))?;
                        mine.push(write_started.elapsed());
                    }
                    latencies
                        .lock()
                        .map_err(|_| anyhow::anyhow!("latency list poisoned"))?
                        .extend(mine);
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("W2 writer panicked"))??;
        }
        Ok(())
    })?;
    let elapsed = started.elapsed();
    let mut latencies = latencies
        .into_inner()
        .map_err(|_| anyhow::anyhow!("latency list poisoned"))?;
    let batches = latencies.len() as u64;
    Ok(DurableAppend {
        batches,
        batches_per_s: batches as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile_ms(&mut latencies, 50.0),
        p99_ms: percentile_ms(&mut latencies, 99.0),
    })
}

pub struct RangeScans {
    pub events: u64,
    pub events_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// R1: 200 scans, each over one random child and a random time window sized to hold
/// about 1,000 of that child's events, inside the time span W1 wrote.
pub fn range_scans(
    engine: &dyn Engine,
    workload: &Workload,
    w1_events: u64,
    rng: &mut Rng,
) -> anyhow::Result<RangeScans> {
    let window_micros = R1_EVENTS_PER_SCAN * CHILDREN * EVENT_SPACING_MICROS;
    let span_micros = w1_events * EVENT_SPACING_MICROS;
    let mut latencies = Vec::with_capacity(R1_SCANS as usize);
    let mut events = 0;
    let mut value_bytes = 0u64;
    let mut total = Duration::ZERO;
    for _ in 0..R1_SCANS {
        let child_id = rng.below(CHILDREN);
        let offset = rng.below(span_micros.saturating_sub(window_micros).max(1));
        let from = workload.start_unix_micros() + offset;
        let start = compose_key(child_id, from, 0);
        let end = compose_key(child_id, from + window_micros, 0);
        let started = Instant::now();
        events += engine.scan(&start, &end, &mut |_key, value| {
            value_bytes += value.len() as u64
        })?;
        let elapsed = started.elapsed();
        total += elapsed;
        latencies.push(elapsed);
    }
    if value_bytes != events * VALUE_BYTES as u64 {
        bail!("R1 read {value_bytes} value bytes for {events} events; expected {VALUE_BYTES} each");
    }
    Ok(RangeScans {
        events,
        events_per_s: events as f64 / total.as_secs_f64(),
        p50_ms: percentile_ms(&mut latencies, 50.0),
        p99_ms: percentile_ms(&mut latencies, 99.0),
    })
}

pub struct PointGets {
    pub hit_ops_per_s: f64,
    pub miss_ops_per_s: f64,
}

/// R2: 200k gets of keys W1 wrote, then 200k gets of keys that sit between them but were
/// never written. A wrong answer fails the run rather than inflating the rate.
pub fn point_gets(
    engine: &dyn Engine,
    workload: &Workload,
    w1_events: u64,
    rng: &mut Rng,
) -> anyhow::Result<PointGets> {
    let hits: Vec<[u8; KEY_BYTES]> = (0..R2_LOOKUPS)
        .map(|_| workload.key(rng.below(w1_events)))
        .collect();
    let misses: Vec<[u8; KEY_BYTES]> = (0..R2_LOOKUPS)
        .map(|_| workload.absent_key(rng.below(w1_events)))
        .collect();
    let started = Instant::now();
    for key in &hits {
        if engine.get(key)? != Some(VALUE_BYTES) {
            bail!("R2: a key written in W1 was not found with its {VALUE_BYTES}-byte value");
        }
    }
    let hit_elapsed = started.elapsed();
    let started = Instant::now();
    for key in &misses {
        if engine.get(key)?.is_some() {
            bail!("R2: a key never written was found");
        }
    }
    let miss_elapsed = started.elapsed();
    Ok(PointGets {
        hit_ops_per_s: R2_LOOKUPS as f64 / hit_elapsed.as_secs_f64(),
        miss_ops_per_s: R2_LOOKUPS as f64 / miss_elapsed.as_secs_f64(),
    })
}
