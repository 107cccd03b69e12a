//! One full run for one engine: W1 and space, then the phases asked for (by default W2,
//! R1, R2 and the SIGKILL recovery test), each in that order.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, bail};

use crate::engine::{self, Budget, Engine, EngineKind};
use crate::measure::{dir_bytes, load_avg_1m, peak_rss_mb};
use crate::phases::{self, DurableLimits};
use crate::recovery;
use crate::report::{DurableFields, GetFields, RecoveryFields, Report, ScanFields};
use crate::workload::{KEY_BYTES, Rng, VALUE_BYTES, Workload};

/// The phases that may follow W1; W1 always runs because the others read its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    W2,
    R1,
    R2,
    Recovery,
}

pub struct Settings {
    pub kind: EngineKind,
    pub events: u64,
    pub seed: u64,
    pub parent_dir: PathBuf,
    pub budget: Budget,
    pub recovery_events: u64,
    pub w2_limits: DurableLimits,
    pub phases: Vec<Phase>,
}

pub fn run(settings: &Settings) -> anyhow::Result<Report> {
    if settings.events == 0 {
        bail!("--events must be at least 1");
    }
    let wants = |phase| settings.phases.contains(&phase);
    let load_avg_1m_start = load_avg_1m().unwrap_or(f64::NAN);
    let scratch = tempfile::Builder::new()
        .prefix("eventlog-bench-")
        .tempdir_in(&settings.parent_dir)
        .with_context(|| {
            format!(
                "creating a data directory under {}",
                settings.parent_dir.display()
            )
        })?;
    let kind = settings.kind;
    let workload = Workload::new(settings.seed);
    let mut rng = Rng::new(settings.seed ^ 0xbe4c);

    let data_dir = scratch.path().join("main");
    let engine = engine::open(kind, &data_dir, settings.budget)?;
    progress(kind, "W1 batched append");
    let w1 = phases::batched_append(engine.as_ref(), &workload, settings.events)?;
    let disk_bytes_after_w1 = dir_bytes(&data_dir).context("measuring disk usage after W1")?;
    log_stats(kind, "after W1", engine.as_ref());
    let raw_bytes = settings.events * (KEY_BYTES + VALUE_BYTES) as u64;

    let w2 = if wants(Phase::W2) {
        progress(kind, "W2 durable append");
        let next_event = AtomicU64::new(settings.events);
        let engine = engine.as_ref();
        let one = phases::durable_append(engine, &workload, &next_event, 1, settings.w2_limits)?;
        let many = phases::durable_append(engine, &workload, &next_event, 16, settings.w2_limits)?;
        Some(DurableFields {
            w2_batches_1: one.batches,
            w2_batches_per_s_1: one.batches_per_s,
            w2_p50_ms_1: one.p50_ms,
            w2_p99_ms_1: one.p99_ms,
            w2_batches_16: many.batches,
            w2_batches_per_s_16: many.batches_per_s,
            w2_p50_ms_16: many.p50_ms,
            w2_p99_ms_16: many.p99_ms,
        })
    } else {
        None
    };

    let r1 = if wants(Phase::R1) {
        progress(kind, "R1 range scans");
        let r1 = phases::range_scans(engine.as_ref(), &workload, settings.events, &mut rng)?;
        Some(ScanFields {
            r1_events: r1.events,
            r1_events_per_s: r1.events_per_s,
            r1_p50_ms: r1.p50_ms,
            r1_p99_ms: r1.p99_ms,
        })
    } else {
        None
    };

    let r2 = if wants(Phase::R2) {
        progress(kind, "R2 point gets");
        let r2 = phases::point_gets(engine.as_ref(), &workload, settings.events, &mut rng)?;
        Some(GetFields {
            r2_hit_ops_per_s: r2.hit_ops_per_s,
            r2_miss_ops_per_s: r2.miss_ops_per_s,
        })
    } else {
        None
    };
    log_stats(kind, "at the end", engine.as_ref());
    engine.close()?;

    let recovery = if wants(Phase::Recovery) {
        progress(kind, "recovery after SIGKILL");
        let recovery = recovery::kill_and_reopen(
            kind,
            &scratch.path().join("recovery"),
            settings.budget,
            settings.seed,
            settings.recovery_events,
        )?;
        Some(RecoveryFields {
            reopen_after_kill_s: recovery.reopen_s,
            acked_events_at_kill: recovery.acked_events,
            acked_lost_after_kill: recovery.acked_lost_batches,
            recovered_events: recovery.recovered_events,
            writer_peak_rss_mb: recovery.writer_peak_rss_mb,
        })
    } else {
        None
    };
    scratch.close().context("removing the data directories")?;

    Ok(Report {
        engine: kind.name(),
        events: settings.events,
        seed: settings.seed,
        w1_events_per_s: w1.events_per_s,
        w1_wall_events_per_s: w1.wall_events_per_s,
        w1_flush_s: w1.flush_s,
        disk_bytes_after_w1,
        space_amp: disk_bytes_after_w1 as f64 / raw_bytes as f64,
        w2,
        r1,
        r2,
        recovery,
        peak_rss_mb: peak_rss_mb().unwrap_or(f64::NAN),
        cache_bytes: settings.budget.cache_bytes,
        memtable_bytes: settings.budget.memtable_bytes,
        load_avg_1m_start,
        load_avg_1m_end: load_avg_1m().unwrap_or(f64::NAN),
    })
}

fn progress(kind: EngineKind, phase: &str) {
    eprintln!("[bench {}] {phase}", kind.name());
}

fn log_stats(kind: EngineKind, when: &str, engine: &dyn Engine) {
    if let Some(stats) = engine.stats() {
        eprintln!("[bench {}] stats {when}: {stats}", kind.name());
    }
}
