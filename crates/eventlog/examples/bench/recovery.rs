//! Recovery after SIGKILL: a writer process is killed mid-stream, then the store is
//! reopened and checked against what the writer had been told was durable.
//!
//! The writer (this binary re-executed with `--writer DIR`) writes rounds of 16 batches
//! of 256 events: 15 `Buffered` batches, then one `Sync` batch. When the `Sync` write
//! returns it prints `ack <events>`: every event of that round and all earlier rounds is
//! acknowledged, because a synced write promises that it and every write issued before
//! it by the same writer survive a crash. Buffered events after the last `ack` line are
//! not counted either way. The parent kills the writer (SIGKILL) as soon as at least
//! `target_events` are acknowledged, then times `open` plus one read of the last
//! acknowledged key, and finally scans the whole store to find acknowledged batches with
//! any event missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::engine::{self, Budget, Durability, EngineKind};
use crate::measure::peak_rss_kib;
use crate::workload::{KEY_BYTES, Workload, key_sequence};

pub const BATCH_EVENTS: u64 = 256;
pub const BATCHES_PER_ROUND: u64 = 16;
pub const ROUND_EVENTS: u64 = BATCH_EVENTS * BATCHES_PER_ROUND;
/// Rounds the writer may go past the target before it stops on its own.
const SPARE_ROUNDS: u64 = 64;

pub struct Recovery {
    pub reopen_s: f64,
    pub acked_events: u64,
    pub acked_lost_batches: u64,
    pub recovered_events: u64,
    pub writer_peak_rss_mb: f64,
}

/// The child side: write rounds until the parent kills us or the cap is reached, then
/// wait for the parent to close our stdin.
pub fn run_writer(
    kind: EngineKind,
    dir: &Path,
    budget: Budget,
    seed: u64,
    target_events: u64,
) -> anyhow::Result<()> {
    let engine = engine::open(kind, dir, budget)?;
    let workload = Workload::new(seed);
    let rounds = target_events.div_ceil(ROUND_EVENTS) + SPARE_ROUNDS;
    let mut stdout = std::io::stdout().lock();
    for round in 0..rounds {
        for batch in 0..BATCHES_PER_ROUND {
            let first = round * ROUND_EVENTS + batch * BATCH_EVENTS;
            let durability = if batch + 1 == BATCHES_PER_ROUND {
                Durability::Sync
            } else {
                Durability::Buffered
            };
            engine.write(&workload.batch(first, BATCH_EVENTS), durability)?;
        }
        writeln!(
            stdout,
            "ack {} {}",
            (round + 1) * ROUND_EVENTS,
            peak_rss_kib()
        )?;
        stdout.flush()?;
    }
    writeln!(stdout, "done")?;
    stdout.flush()?;
    // Bounded: returns at EOF, when the parent kills us or drops its end of the pipe.
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    engine.close()
}

/// The parent side: run the writer in `dir`, kill it, reopen and verify.
pub fn kill_and_reopen(
    kind: EngineKind,
    dir: &Path,
    budget: Budget,
    seed: u64,
    target_events: u64,
) -> anyhow::Result<Recovery> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let mut child = Command::new(exe)
        .arg("--writer")
        .arg(dir)
        .args(["--engine", kind.name(), "--seed", &seed.to_string()])
        .args(["--recovery-events", &target_events.to_string()])
        .args(["--cache-mib", &(budget.cache_bytes >> 20).to_string()])
        .args(["--memtable-mib", &(budget.memtable_bytes >> 20).to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the recovery writer")?;
    let stdout = child.stdout.take().context("writer stdout")?;
    let mut acked_events = 0;
    let mut writer_peak_rss_kib = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("ack"), Some(events), Some(rss_kib)) => {
                acked_events = events.parse().context("writer ack count")?;
                writer_peak_rss_kib = rss_kib.parse().context("writer rss")?;
                if acked_events >= target_events {
                    break;
                }
            }
            _ => break,
        }
    }
    child.kill().context("SIGKILL to the writer")?;
    child.wait().context("reaping the writer")?;
    if acked_events < target_events {
        bail!(
            "the writer stopped after {acked_events} acknowledged events, before {target_events}"
        );
    }

    let workload = Workload::new(seed);
    let last_acked = workload.key(acked_events - 1);
    let started = Instant::now();
    let engine = engine::open(kind, dir, budget).context("reopening after SIGKILL")?;
    let last_found = engine.get(&last_acked)?.is_some();
    let reopen_s = started.elapsed().as_secs_f64();

    let cap_events = (target_events.div_ceil(ROUND_EVENTS) + SPARE_ROUNDS) * ROUND_EVENTS;
    let mut present = vec![false; cap_events as usize];
    let mut strays = 0u64;
    let recovered_events = engine.scan(
        &[0u8; KEY_BYTES],
        &[0xffu8; KEY_BYTES],
        &mut |key, _value| match key_sequence(key)
            .and_then(|sequence| present.get_mut(sequence as usize))
        {
            Some(slot) => *slot = true,
            None => strays += 1,
        },
    )?;
    engine.close()?;
    if strays > 0 {
        bail!("{strays} keys after recovery were never written by the writer");
    }
    let acked_lost_batches = (0..acked_events / BATCH_EVENTS)
        .filter(|batch| {
            let first = (batch * BATCH_EVENTS) as usize;
            present[first..first + BATCH_EVENTS as usize]
                .iter()
                .any(|found| !found)
        })
        .count() as u64;
    if !last_found && acked_lost_batches == 0 {
        bail!("the first read missed the last acknowledged key but the scan found it");
    }
    Ok(Recovery {
        reopen_s,
        acked_events,
        acked_lost_batches,
        recovered_events,
        writer_peak_rss_mb: writer_peak_rss_kib as f64 / 1024.0,
    })
}
