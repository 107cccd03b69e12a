//! The JSON record of one run, and the side-by-side table built from several runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

/// One run of one engine. Field names are the contract scripts compare on; the fields
/// of a phase left out with `--phases` are left out of the record.
#[derive(Serialize)]
pub struct Report {
    pub engine: &'static str,
    pub events: u64,
    pub seed: u64,
    pub w1_events_per_s: f64,
    pub w1_wall_events_per_s: f64,
    pub w1_flush_s: f64,
    pub disk_bytes_after_w1: u64,
    pub space_amp: f64,
    #[serde(flatten)]
    pub w2: Option<DurableFields>,
    #[serde(flatten)]
    pub r1: Option<ScanFields>,
    #[serde(flatten)]
    pub r2: Option<GetFields>,
    #[serde(flatten)]
    pub recovery: Option<RecoveryFields>,
    pub peak_rss_mb: f64,
    pub cache_bytes: u64,
    pub memtable_bytes: u64,
    pub load_avg_1m_start: f64,
    pub load_avg_1m_end: f64,
}

#[derive(Serialize)]
pub struct DurableFields {
    pub w2_batches_1: u64,
    pub w2_batches_per_s_1: f64,
    pub w2_p50_ms_1: f64,
    pub w2_p99_ms_1: f64,
    pub w2_batches_16: u64,
    pub w2_batches_per_s_16: f64,
    pub w2_p50_ms_16: f64,
    pub w2_p99_ms_16: f64,
}

#[derive(Serialize)]
pub struct ScanFields {
    pub r1_events: u64,
    pub r1_events_per_s: f64,
    pub r1_p50_ms: f64,
    pub r1_p99_ms: f64,
}

#[derive(Serialize)]
pub struct GetFields {
    pub r2_hit_ops_per_s: f64,
    pub r2_miss_ops_per_s: f64,
}

#[derive(Serialize)]
pub struct RecoveryFields {
    pub reopen_after_kill_s: f64,
    pub acked_events_at_kill: u64,
    pub acked_lost_after_kill: u64,
    pub recovered_events: u64,
    pub writer_peak_rss_mb: f64,
}

/// Rows of the table: field, how to print it, and the target for `eventlog`.
const ROWS: &[(&str, &str, &str)] = &[
    (
        "w1_events_per_s",
        "W1 batched append, events/s",
        "≥ 1,000,000",
    ),
    (
        "w1_wall_events_per_s",
        "W1 incl. generating events, events/s",
        "",
    ),
    ("w1_flush_s", "W1 final flush, s", ""),
    ("w2_batches_per_s_1", "W2 durable, 1 writer, batches/s", ""),
    ("w2_p50_ms_1", "W2 1 writer p50, ms", ""),
    ("w2_p99_ms_1", "W2 1 writer p99, ms", ""),
    (
        "w2_batches_per_s_16",
        "W2 durable, 16 writers, batches/s",
        "≥ 5,000",
    ),
    ("w2_p50_ms_16", "W2 16 writers p50, ms", ""),
    ("w2_p99_ms_16", "W2 16 writers p99, ms", "≤ 5"),
    ("r1_events_per_s", "R1 range scans, events/s", "≥ 3,000,000"),
    ("r1_p50_ms", "R1 per-scan p50, ms", ""),
    ("r1_p99_ms", "R1 per-scan p99, ms", ""),
    ("r2_hit_ops_per_s", "R2 gets present, ops/s", "≥ 200,000"),
    ("r2_miss_ops_per_s", "R2 gets absent, ops/s", "≥ 1,000,000"),
    ("space_amp", "Space after W1 (disk ÷ raw)", "≤ 0.8"),
    ("reopen_after_kill_s", "Reopen after SIGKILL, s", "≤ 0.2"),
    (
        "acked_events_at_kill",
        "Acknowledged events at kill",
        "≥ 1,000,000",
    ),
    ("acked_lost_after_kill", "Acknowledged batches lost", "0"),
    ("peak_rss_mb", "Peak RSS (bench process), MB", "≤ 256"),
    ("writer_peak_rss_mb", "Peak RSS (recovery writer), MB", ""),
    ("load_avg_1m_start", "1-min load average at start", ""),
];

const ENGINE_ORDER: [&str; 4] = ["eventlog", "fjall", "fjall-lz4", "sled"];

/// Reads JSON records (one per line) from `files` and prints a Markdown table with the
/// per-field median for each engine, engines side by side, targets last.
pub fn print_table(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut by_engine: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for line in text
            .lines()
            .filter(|line| line.trim_start().starts_with('{'))
        {
            let record: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("parsing a line of {}", file.display()))?;
            let engine = record["engine"]
                .as_str()
                .context("record without engine")?
                .to_owned();
            by_engine.entry(engine).or_default().push(record);
        }
    }
    let engines: Vec<&str> = ENGINE_ORDER
        .iter()
        .copied()
        .filter(|engine| by_engine.contains_key(*engine))
        .collect();
    let mut out = String::new();
    write!(out, "| metric |")?;
    for engine in &engines {
        write!(out, " {engine} (n={}) |", by_engine[*engine].len())?;
    }
    writeln!(out, " target (eventlog) |")?;
    writeln!(out, "|---|{}---|", "---:|".repeat(engines.len()))?;
    for (field, label, target) in ROWS {
        write!(out, "| {label} |")?;
        for engine in &engines {
            let mut values: Vec<f64> = by_engine[*engine]
                .iter()
                .filter_map(|record| record[*field].as_f64())
                .collect();
            match median(&mut values) {
                Some(value) => write!(out, " {} |", format_number(value))?,
                None => write!(out, " – |")?,
            }
        }
        writeln!(out, " {target} |")?;
    }
    print!("{out}");
    Ok(())
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

/// Thousands separators for big numbers, two or three decimals for small ones.
fn format_number(value: f64) -> String {
    if value.abs() >= 1000.0 {
        let digits = format!("{:.0}", value.abs());
        let mut grouped = String::new();
        for (position, digit) in digits.chars().enumerate() {
            if position > 0 && (digits.len() - position) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if value < 0.0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if value.abs() >= 10.0 || value == value.trunc() {
        format!("{value:.1}").trim_end_matches(".0").to_owned()
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(format_number(1_234_567.4), "1,234,567");
        assert_eq!(format_number(999.0), "999");
        assert_eq!(format_number(0.1234), "0.123");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(12.34), "12.3");
    }
}
