//! Load generator for the household hub, with a floor measured in the same run.
//!
//! ```sh
//! cargo build --release -p household-hub --bin household-hub --example load
//! cargo run --release -p household-hub --example load -- --runs 5
//! ```
//!
//! Each run starts the real release hub on a fresh data directory (loopback, TLS,
//! mDNS off, rate limit off), enrolls one guardian and `--agents` devices spread over
//! `--children` children, and measures:
//!
//! 1. grant fan-out: `--watchers` guardian Watch streams and every agent's Session
//!    open; a guardian sends `--grants` GrantTime calls at `--grant-rate`/s to the
//!    children in turn; the time from just before each call until every watcher sees
//!    the TimeGranted event and each of the child's devices sees the GrantCommand;
//! 2. the same against the floor: a bare tonic `Household` server (this example with
//!    `--serve-floor`, its own process like the hub) with the hub's CA, server
//!    certificate and transport settings, whose GrantTime only broadcasts and whose
//!    Watch streams the broadcast, with the same number of receivers on as many
//!    connections;
//! 3. the disk alone: fdatasync of 200-byte appends in the data directory, as many and
//!    at the same pace as the grants;
//! 4. `--watch-streams` Watch streams held on `--watch-connections` connections while
//!    grants go on, each checked for Snapshot, CaughtUp and the last grant;
//! 5. usage ingestion: every agent streams 1-second usage records with at most 256
//!    unacknowledged for `--reports-seconds`; reports/s = records acknowledged (the hub
//!    acknowledges after fdatasync) ÷ time to the last acknowledgement;
//! 6. the hub's peak RSS (VmHWM) over the whole run.
//!
//! A Markdown table of every run and the medians goes to stdout, progress to stderr.
//! With `LOAD_TRACE` set, every GrantTime call slower than 15 ms is printed with its
//! time in the measurement. Every loop is bounded in count and time; all traffic is on
//! 127.0.0.1.

mod clients;
mod floor;
mod phases;
mod procs;
mod stats;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use household_proto::v1::{self, household_client::HouseholdClient};
use tokio::task::JoinSet;

use clients::{Agent, Credential, Watch, connect_as, enroll};
use phases::{Pacing, Receiver, Source};
use stats::{Table, median};

#[derive(Parser, Debug)]
#[command(about = "Load generator for the household hub, with a bare tonic floor")]
struct Args {
    /// Simulated child agents (devices), each with its own connection and Session.
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Children the agents are spread over.
    #[arg(long, default_value_t = 25)]
    children: usize,
    /// Guardian Watch streams during the fan-out, each on its own connection.
    #[arg(long, default_value_t = 20)]
    watchers: usize,
    /// GrantTime calls measured per fan-out.
    #[arg(long, default_value_t = 300)]
    grants: usize,
    /// GrantTime calls sent before measuring.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// GrantTime calls per second.
    #[arg(long, default_value_t = 20.0)]
    grant_rate: f64,
    /// Seconds the agents stream usage records.
    #[arg(long, default_value_t = 10.0)]
    reports_seconds: f64,
    /// Guardian Watch streams kept open during ingestion (the rest are closed first).
    #[arg(long, default_value_t = 0)]
    ingest_watchers: usize,
    /// Watch streams held at once.
    #[arg(long, default_value_t = 1000)]
    watch_streams: usize,
    /// Connections the held Watch streams are spread over.
    #[arg(long, default_value_t = 10)]
    watch_connections: usize,
    /// Seconds the Watch streams are held while grants go on.
    #[arg(long, default_value_t = 5.0)]
    hold_seconds: f64,
    /// Whole runs, each on a fresh data directory.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where the data directories are made [default: the system temp directory].
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Serve the floor with the CA and server certificate in this directory (used by
    /// the generator itself).
    #[arg(long, hide = true)]
    serve_floor: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(tls_dir) = &args.serve_floor {
        return floor::serve(tls_dir).await;
    }
    if args.agents == 0 || args.children == 0 || args.grants == 0 || args.grant_rate <= 0.0 {
        bail!("--agents, --children, --grants and --grant-rate must be positive");
    }
    let hub_bin = procs::hub_binary()?;
    let data_root = args.data_root.clone().unwrap_or_else(std::env::temp_dir);
    let machine = procs::Machine::probe(&data_root);
    eprintln!(
        "machine: {} CPUs, {}, Linux {}, {:.0} GiB; data on {}",
        machine.cpus, machine.model, machine.kernel, machine.memory_gib, machine.data_fs
    );
    let mut runs = Vec::new();
    for run in 0..args.runs {
        eprintln!("run {} of {}", run + 1, args.runs);
        let dir = tempfile::Builder::new()
            .prefix("hub-load-")
            .tempdir_in(&data_root)
            .context("making a data directory")?;
        let figures = one_run(&args, &hub_bin, dir.path(), run).await?;
        figures.print_line();
        runs.push(figures);
    }
    print_report(&args, &machine, &runs);
    Ok(())
}

/// Everything one run measured.
struct Figures {
    hub: phases::Fanout,
    floor: phases::Fanout,
    hold: phases::Hold,
    ingest: phases::Ingest,
    hub_peak_kib: u64,
    floor_peak_kib: u64,
    hub_rss_after_setup_kib: u64,
    fsync: stats::Latency,
}

impl Figures {
    fn ratio(&self) -> f64 {
        self.hub.all.p99 / self.floor.all.p99
    }

    fn print_line(&self) {
        eprintln!(
            "  fan-out hub p50 {:.2} p99 {:.2} max {:.2} ms (missing {}, failed {}); floor p50 {:.2} p99 {:.2} max {:.2} ms (missing {}); ratio {:.2}",
            self.hub.all.p50,
            self.hub.all.p99,
            self.hub.all.max,
            self.hub.missing,
            self.hub.failed,
            self.floor.all.p50,
            self.floor.all.p99,
            self.floor.all.max,
            self.floor.missing,
            self.ratio()
        );
        eprintln!(
            "  CPU during fan-out: hub {:.2} s, floor {:.2} s, generator {:.2} + {:.2} s; fdatasync alone p50 {:.2} p99 {:.2} max {:.2} ms",
            self.hub.server_cpu,
            self.floor.server_cpu,
            self.hub.load_cpu,
            self.floor.load_cpu,
            self.fsync.p50,
            self.fsync.p99,
            self.fsync.max
        );
        eprintln!(
            "  held {}/{} watch streams (caught up {} in {:.2} s, snapshot {} bytes), RSS {:.1} MiB (before {:.1} MiB), grant delivery p99 {:.1} ms{}",
            self.hold.held,
            self.hold.requested,
            self.hold.opened,
            self.hold.open_seconds,
            self.hold.snapshot_bytes,
            mib(self.hold.rss_kib),
            mib(self.hold.rss_before_kib),
            self.hold.delivery.p99,
            self.hold
                .first_end
                .as_ref()
                .map(|e| format!("; a stream ended: {e}"))
                .unwrap_or_default()
        );
        eprintln!(
            "  ingest {:.0} reports/s ({} acked, {} rejected{}, {} sent, {:.2} s, {} agents capped), hub CPU {:.2} s, generator CPU {:.2} s, hub RSS after {:.1} MiB",
            self.ingest.rate,
            self.ingest.acked,
            self.ingest.rejected,
            self.ingest
                .first_rejection
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            self.ingest.sent,
            self.ingest.elapsed,
            self.ingest.capped,
            self.ingest.hub_cpu,
            self.ingest.load_cpu,
            mib(self.ingest.hub_rss_kib)
        );
        eprintln!(
            "  hub peak RSS {:.1} MiB (after setup {:.1} MiB), floor peak RSS {:.1} MiB",
            mib(self.hub_peak_kib),
            mib(self.hub_rss_after_setup_kib),
            mib(self.floor_peak_kib)
        );
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn one_run(args: &Args, hub_bin: &Path, data_dir: &Path, run: usize) -> Result<Figures> {
    let hub = procs::start_hub(hub_bin, data_dir, 2 * args.watch_streams.max(1000))?;
    let addr = hub.addr;
    let admin_socket = data_dir.join("admin.sock");
    let ca_pem =
        std::fs::read_to_string(data_dir.join("tls/ca.pem")).context("reading the hub's ca.pem")?;

    // Setup: a guardian, the children, a device per agent.
    let setup_started = Instant::now();
    let code = procs::invite(hub_bin, &admin_socket, "guardian", "load-guardian", None).await?;
    let guardian = enroll(addr, &ca_pem, &code, "load-guardian").await?;
    let mut household = HouseholdClient::new(connect_as(addr, &guardian).await?);
    let mut children = Vec::new();
    for c in 0..args.children {
        let child = household
            .add_child(v1::AddChildRequest {
                display_name: format!("child-{c}"),
                ..Default::default()
            })
            .await
            .context("AddChild")?
            .into_inner()
            .child
            .context("AddChild returned no child")?;
        children.push(child.child_id);
    }
    let mut codes = Vec::new();
    for a in 0..args.agents {
        let child = &children[a % children.len()];
        let name = format!("device-{a}");
        codes.push(procs::invite(hub_bin, &admin_socket, "device", &name, Some(child)).await?);
    }
    let mut enrolling = JoinSet::new();
    let child_count = children.len();
    for (a, code) in codes.into_iter().enumerate() {
        let ca_pem = ca_pem.clone();
        enrolling.spawn(async move {
            let credential = enroll(addr, &ca_pem, &code, &format!("device-{a}")).await?;
            let channel = connect_as(addr, &credential).await?;
            let agent = Agent::open(channel, format!("load-{run}-{a}"), a % child_count).await?;
            anyhow::Ok((a, credential, agent))
        });
    }
    let mut agents: Vec<Option<Arc<Agent>>> = (0..args.agents).map(|_| None).collect();
    while let Some(joined) = enrolling.join_next().await {
        let (a, credential, agent) = joined.context("an enrolling task")??;
        if credential.child_id != children[agent.child] {
            bail!("device-{a} was enrolled for another child");
        }
        agents[a] = Some(Arc::new(agent));
    }
    let agents: Vec<Arc<Agent>> = agents.into_iter().flatten().collect();
    let mut watchers = Vec::new();
    for _ in 0..args.watchers {
        let mut client = HouseholdClient::new(connect_as(addr, &guardian).await?);
        watchers.push(Watch::open(&mut client, Vec::new()).await?);
    }
    for watch in &watchers {
        if !watch.caught_up(Duration::from_secs(30)).await {
            bail!("a guardian watch did not catch up");
        }
    }
    let hub_rss_after_setup_kib = procs::proc_kib(hub.pid(), "VmRSS")?;
    eprintln!(
        "  setup: {} children, {} agents, {} watchers in {:.1} s",
        children.len(),
        agents.len(),
        watchers.len(),
        setup_started.elapsed().as_secs_f64()
    );

    // The floor, with the same receivers.
    let floor = procs::start_floor(&data_dir.join("tls"))?;
    let floor_granter = HouseholdClient::new(connect_as(floor.addr, &guardian).await?);
    let mut floor_watches = Vec::new();
    let mut floor_receivers = Vec::new();
    for _ in 0..args.watchers {
        let watch = open_floor_watch(floor.addr, &guardian, Vec::new()).await?;
        floor_receivers.push(Receiver {
            source: Source::Watch(watch.log.clone()),
            child: None,
        });
        floor_watches.push(watch);
    }
    for agent in &agents {
        let watch =
            open_floor_watch(floor.addr, &guardian, vec![children[agent.child].clone()]).await?;
        floor_receivers.push(Receiver {
            source: Source::Watch(watch.log.clone()),
            child: Some(agent.child),
        });
        floor_watches.push(watch);
    }
    for watch in &floor_watches {
        if !watch.caught_up(Duration::from_secs(30)).await {
            bail!("a floor watch did not catch up");
        }
    }

    let hub_receivers: Vec<Receiver> = watchers
        .iter()
        .map(|w| Receiver {
            source: Source::Watch(w.log.clone()),
            child: None,
        })
        .chain(agents.iter().map(|a| Receiver {
            source: Source::Agent(a.log.clone()),
            child: Some(a.child),
        }))
        .collect();
    let pacing = Pacing {
        grants: args.grants,
        warmup: args.warmup,
        rate: args.grant_rate,
    };
    // Alternate which goes first, so neither always runs on a warmer machine.
    let (hub_fanout, floor_fanout) = if run.is_multiple_of(2) {
        let h = phases::fanout(
            "hub",
            &household,
            &children,
            &hub_receivers,
            &pacing,
            hub.pid(),
        )
        .await?;
        let f = phases::fanout(
            "floor",
            &floor_granter,
            &children,
            &floor_receivers,
            &pacing,
            floor.pid(),
        )
        .await?;
        (h, f)
    } else {
        let f = phases::fanout(
            "floor",
            &floor_granter,
            &children,
            &floor_receivers,
            &pacing,
            floor.pid(),
        )
        .await?;
        let h = phases::fanout(
            "hub",
            &household,
            &children,
            &hub_receivers,
            &pacing,
            hub.pid(),
        )
        .await?;
        (h, f)
    };
    let floor_peak_kib = procs::proc_kib(floor.pid(), "VmHWM")?;
    for watch in floor_watches {
        watch.close();
    }
    drop(floor_granter);
    floor.stop()?;

    // The disk under the data directory, alone, at the grants' pace.
    let probe_dir = data_dir.to_owned();
    let (count, rate) = (args.grants, args.grant_rate);
    let fsync = tokio::task::spawn_blocking(move || phases::fsync_probe(&probe_dir, count, rate))
        .await
        .context("the fsync probe")??;

    // Many Watch streams held.
    let hold = phases::hold(
        addr,
        &guardian,
        &household,
        &children,
        args.watch_streams,
        args.watch_connections,
        Duration::from_secs_f64(args.hold_seconds),
        hub.pid(),
    )
    .await?;
    // Let the hub notice the closed streams before the next phase.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Usage ingestion.
    let keep = args.ingest_watchers.min(watchers.len());
    for watch in watchers.drain(keep..) {
        watch.close();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    eprintln!(
        "  streaming usage from {} agents for {} s",
        agents.len(),
        args.reports_seconds
    );
    let snapshots_before: u64 = watchers
        .iter()
        .map(|w| w.log.snapshots.load(Ordering::Acquire))
        .sum();
    let events_before: Vec<u64> = watchers
        .iter()
        .map(|w| w.log.events.load(Ordering::Acquire))
        .collect();
    let ingest = phases::ingest(&agents, args.reports_seconds, hub.pid()).await?;
    if !watchers.is_empty() {
        let resyncs = watchers
            .iter()
            .map(|w| w.log.snapshots.load(Ordering::Acquire))
            .sum::<u64>()
            - snapshots_before;
        let ended = watchers.iter().filter(|w| w.log.ended().is_some()).count();
        let fewest = watchers
            .iter()
            .zip(&events_before)
            .map(|(w, before)| w.log.events.load(Ordering::Acquire) - before)
            .min()
            .unwrap_or(0);
        eprintln!(
            "  {} guardian watches open during ingestion: {resyncs} resync snapshots, {ended} ended, the slowest received {fewest} events by the last acknowledgement",
            watchers.len()
        );
    }

    let hub_peak_kib = procs::proc_kib(hub.pid(), "VmHWM")?;
    for agent in &agents {
        agent.close();
    }
    for watch in watchers {
        watch.close();
    }
    drop(agents);
    drop(household);
    hub.stop()?;
    Ok(Figures {
        hub: hub_fanout,
        floor: floor_fanout,
        hold,
        ingest,
        hub_peak_kib,
        floor_peak_kib,
        hub_rss_after_setup_kib,
        fsync,
    })
}

/// A Watch on the floor, on its own connection.
async fn open_floor_watch(
    addr: SocketAddr,
    guardian: &Credential,
    child_ids: Vec<String>,
) -> Result<Watch> {
    let channel = connect_as(addr, guardian).await?;
    Watch::open(&mut HouseholdClient::new(channel), child_ids).await
}

fn print_report(args: &Args, machine: &procs::Machine, runs: &[Figures]) {
    println!(
        "\nMachine: {} CPUs ({}), {:.0} GiB RAM, Linux {}; data directory on {}.",
        machine.cpus, machine.model, machine.memory_gib, machine.kernel, machine.data_fs
    );
    println!(
        "Load: {} agents over {} children, {} watchers, {} grants at {}/s (after {} warm-up), {} Watch streams on {} connections, usage for {} s.\n",
        args.agents,
        args.children,
        args.watchers,
        args.grants,
        args.grant_rate,
        args.warmup,
        args.watch_streams,
        args.watch_connections,
        args.reports_seconds
    );
    let main = Table {
        columns: vec![
            ("hub p50 ms", 2),
            ("hub p99 ms", 2),
            ("hub max ms", 2),
            ("floor p50 ms", 2),
            ("floor p99 ms", 2),
            ("floor max ms", 2),
            ("p99 hub/floor", 2),
            ("Watch streams held", 0),
            ("hub RSS holding them MiB", 1),
            ("usage reports/s", 0),
            ("hub peak RSS MiB", 1),
        ],
        rows: runs
            .iter()
            .map(|r| {
                vec![
                    r.hub.all.p50,
                    r.hub.all.p99,
                    r.hub.all.max,
                    r.floor.all.p50,
                    r.floor.all.p99,
                    r.floor.all.max,
                    r.ratio(),
                    r.hold.held as f64,
                    mib(r.hold.rss_kib),
                    r.ingest.rate,
                    mib(r.hub_peak_kib),
                ]
            })
            .collect(),
    };
    println!("{}", main.render());
    let detail = Table {
        columns: vec![
            ("hub watchers p99 ms", 2),
            ("hub devices p99 ms", 2),
            ("floor watchers p99 ms", 2),
            ("floor devices p99 ms", 2),
            ("hub GrantTime p50 ms", 2),
            ("hub GrantTime p99 ms", 2),
            ("floor GrantTime p99 ms", 2),
            ("fdatasync alone p50 ms", 2),
            ("fdatasync alone p99 ms", 2),
            ("hub CPU in fan-out %", 1),
            ("missing hub/floor", 0),
            ("held streams: open s", 2),
            ("held streams: delivery p99 ms", 1),
            ("ingest hub CPU s", 2),
            ("ingest generator CPU s", 2),
            ("floor peak RSS MiB", 1),
        ],
        rows: runs
            .iter()
            .map(|r| {
                vec![
                    r.hub.watchers.p99,
                    r.hub.devices.p99,
                    r.floor.watchers.p99,
                    r.floor.devices.p99,
                    r.hub.call.p50,
                    r.hub.call.p99,
                    r.floor.call.p99,
                    r.fsync.p50,
                    r.fsync.p99,
                    100.0 * r.hub.server_cpu / r.hub.seconds,
                    (r.hub.missing + r.floor.missing + r.hub.failed + r.floor.failed) as f64,
                    r.hold.open_seconds,
                    r.hold.delivery.p99,
                    r.ingest.hub_cpu,
                    r.ingest.load_cpu,
                    mib(r.floor_peak_kib),
                ]
            })
            .collect(),
    };
    println!("{}", detail.render());
    let med = |f: &dyn Fn(&Figures) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let deliveries: usize = runs.iter().map(|r| r.hub.all.count).sum();
    println!(
        "Targets (medians of {} runs, {} hub deliveries in all):",
        runs.len(),
        deliveries
    );
    let p99 = med(&|r| r.hub.all.p99);
    let ratio = med(&|r| r.ratio());
    let held = med(&|r| r.hold.held as f64);
    let rate = med(&|r| r.ingest.rate);
    let peak = med(&|r| mib(r.hub_peak_kib));
    let verdict = |ok: bool| if ok { "holds" } else { "missed" };
    println!(
        "- grant fan-out p99 {p99:.2} ms < 20 ms: {}",
        verdict(p99 < 20.0)
    );
    println!(
        "- p99 ratio to the floor {ratio:.2} ≤ 3: {}",
        verdict(ratio <= 3.0)
    );
    println!(
        "- Watch streams held {held:.0} of {}: {}",
        args.watch_streams,
        verdict(held >= args.watch_streams as f64)
    );
    println!(
        "- usage reports {rate:.0}/s ≥ 50,000/s: {}",
        verdict(rate >= 50_000.0)
    );
    println!(
        "- hub peak RSS {peak:.1} MiB ({:.1} MB) < 64 MB: {}",
        peak * 1.048_576,
        verdict(peak * 1.048_576 < 64.0)
    );
}
