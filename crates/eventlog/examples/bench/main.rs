//! Compares the `eventlog` engine with sled and fjall on the hub's event-log workload.
//!
//! One engine per process, so peak RSS is that engine's own:
//! `cargo run --release -p eventlog --example bench -- --engine fjall --events 2000000 --json`.
//! `--table FILE...` turns collected JSON lines into the Markdown table (median per field).
//! See docs/benchmarks.md for the workloads and how the published numbers were taken.

mod engine;
mod measure;
mod phases;
mod recovery;
mod report;
mod run;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::engine::EngineKind;

#[derive(Parser)]
#[command(
    about = "Event-log storage benchmark: eventlog vs fjall (default and LZ4 everywhere) vs sled"
)]
struct Args {
    /// Engine to measure (one per process).
    #[arg(long, value_enum, required_unless_present = "table")]
    engine: Option<EngineKind>,
    /// Events written by W1; R1 and R2 read within them.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Parent directory for the data directories (removed afterwards).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// Acknowledged events the recovery writer must reach before it is killed.
    #[arg(long, default_value_t = 1_000_000)]
    recovery_events: u64,
    /// Upper bound on W2's run time per writer count, in seconds.
    #[arg(long, default_value_t = 4)]
    w2_seconds: u64,
    /// Upper bound on W2's batch count per writer count.
    #[arg(long, default_value_t = 20_000)]
    w2_max_batches: u64,
    /// Block/page cache for every engine, in MiB.
    #[arg(long, default_value_t = 32)]
    cache_mib: u64,
    /// Memtable (write buffer) for the LSM engines, in MiB; sled has no such knob.
    #[arg(long, default_value_t = 16)]
    memtable_mib: u64,
    /// Phases to run after W1 (which always runs), e.g. `--phases r2` to profile gets.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "w2,r1,r2,recovery"
    )]
    phases: Vec<run::Phase>,
    /// Print the Markdown table from these JSON-lines files and exit.
    #[arg(long, num_args = 1.., conflicts_with = "engine")]
    table: Vec<PathBuf>,
    /// Internal: run as the recovery writer in this directory.
    #[arg(long, hide = true)]
    writer: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.table.is_empty() {
        return report::print_table(&args.table);
    }
    let Some(kind) = args.engine else {
        anyhow::bail!("--engine is required");
    };
    let budget = engine::Budget {
        cache_bytes: args.cache_mib << 20,
        memtable_bytes: args.memtable_mib << 20,
    };
    if let Some(dir) = &args.writer {
        return recovery::run_writer(kind, dir, budget, args.seed, args.recovery_events);
    }
    let settings = run::Settings {
        kind,
        events: args.events,
        seed: args.seed,
        parent_dir: args.dir,
        budget,
        phases: args.phases,
        recovery_events: args.recovery_events,
        w2_limits: phases::DurableLimits {
            max_duration: Duration::from_secs(args.w2_seconds),
            max_batches: args.w2_max_batches,
        },
    };
    let report = run::run(&settings)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
