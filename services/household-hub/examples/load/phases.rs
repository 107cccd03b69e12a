//! The measurements: grant fan-out (hub or floor), Watch streams held, usage
//! ingestion.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use household_proto::v1::{self, household_client::HouseholdClient};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::clients::{Agent, AgentLog, Credential, Stamp, Watch, WatchLog, connect_as};
use crate::procs;
use crate::stats::Latency;

/// Where a receiver's stamps come from.
#[derive(Clone)]
pub enum Source {
    Watch(Arc<WatchLog>),
    Agent(Arc<AgentLog>),
}

impl Source {
    fn stamps(&self) -> Vec<Stamp> {
        match self {
            Source::Watch(log) => log.stamps(),
            Source::Agent(log) => log.stamps(),
        }
    }
}

/// One receiver of grants: a guardian's watch (every grant) or a device of one child
/// (that child's grants).
#[derive(Clone)]
pub struct Receiver {
    pub source: Source,
    /// `None`: every grant; `Some(c)`: only grants to child `c`.
    pub child: Option<usize>,
}

impl Receiver {
    fn expects(&self, child: usize) -> bool {
        self.child.is_none_or(|c| c == child)
    }
}

/// How grants are sent.
pub struct Pacing {
    /// Grants measured.
    pub grants: usize,
    /// Grants sent first and not measured.
    pub warmup: usize,
    /// Grants per second.
    pub rate: f64,
}

/// Delivery latencies of one fan-out measurement, in milliseconds.
pub struct Fanout {
    /// Every (grant × receiver) delivery.
    pub all: Latency,
    /// Deliveries to guardians' watches.
    pub watchers: Latency,
    /// Deliveries to devices.
    pub devices: Latency,
    /// The GrantTime call itself, request to response.
    pub call: Latency,
    /// Deliveries that never arrived (within 15 s after the last grant).
    pub missing: usize,
    /// GrantTime calls that failed.
    pub failed: usize,
    /// CPU seconds the server and this generator used during the measurement.
    pub server_cpu: f64,
    pub load_cpu: f64,
    /// Seconds the measurement took.
    pub seconds: f64,
}

struct Sent {
    index: usize,
    child: usize,
    start: Instant,
    call_ms: f64,
    seq: u64,
}

/// Sends `pacing.warmup + pacing.grants` GrantTime calls at `pacing.rate`, each with a
/// fresh idempotency key, to the children in turn, and measures when each receiver
/// that should see a grant sees it.
pub async fn fanout(
    label: &str,
    client: &HouseholdClient<Channel>,
    children: &[String],
    receivers: &[Receiver],
    pacing: &Pacing,
    server_pid: u32,
) -> Result<Fanout> {
    let server_cpu_before = procs::cpu_seconds(server_pid)?;
    let load_cpu_before = procs::own_cpu_seconds();
    let began = Instant::now();
    let total = pacing.warmup + pacing.grants;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / pacing.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut calls = JoinSet::new();
    for index in 0..total {
        ticker.tick().await;
        let child = index % children.len();
        let mut client = client.clone();
        let request = v1::GrantTimeRequest {
            child_id: children[child].clone(),
            minutes: 1,
            idempotency_key: format!("{label}-{index}"),
            note: String::new(),
        };
        calls.spawn(async move {
            let start = Instant::now();
            let response =
                tokio::time::timeout(Duration::from_secs(10), client.grant_time(request)).await;
            let call_ms = start.elapsed().as_secs_f64() * 1e3;
            let seq = match response {
                Ok(Ok(response)) => response.into_inner().event.map(|e| e.seq),
                _ => None,
            };
            seq.map(|seq| Sent {
                index,
                child,
                start,
                call_ms,
                seq,
            })
        });
    }
    let mut sent = Vec::new();
    let mut failed = 0;
    while let Some(joined) = calls.join_next().await {
        match joined.context("a grant task")? {
            Some(done) if done.index >= pacing.warmup => sent.push(done),
            Some(_) => {}
            None => failed += 1,
        }
    }

    // Wait (at most 15 s) until every receiver has every grant it should see.
    let deadline = Instant::now() + Duration::from_secs(15);
    let stamps = loop {
        let stamps: Vec<HashMap<u64, Instant>> = receivers
            .iter()
            .map(|r| r.source.stamps().into_iter().collect())
            .collect();
        let complete = sent.iter().all(|grant| {
            receivers
                .iter()
                .zip(&stamps)
                .filter(|(r, _)| r.expects(grant.child))
                .all(|(_, s)| s.contains_key(&grant.seq))
        });
        if complete || Instant::now() >= deadline {
            break stamps;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let server_cpu = procs::cpu_seconds(server_pid)? - server_cpu_before;
    let load_cpu = procs::own_cpu_seconds() - load_cpu_before;
    let seconds = began.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut watchers = Vec::new();
    let mut devices = Vec::new();
    let mut missing = 0;
    for grant in &sent {
        for (receiver, stamps) in receivers.iter().zip(&stamps) {
            if !receiver.expects(grant.child) {
                continue;
            }
            match stamps.get(&grant.seq) {
                Some(at) => {
                    let ms = at.saturating_duration_since(grant.start).as_secs_f64() * 1e3;
                    all.push(ms);
                    match receiver.child {
                        None => watchers.push(ms),
                        Some(_) => devices.push(ms),
                    }
                }
                None => missing += 1,
            }
        }
    }
    let call: Vec<f64> = sent.iter().map(|s| s.call_ms).collect();
    if std::env::var_os("LOAD_TRACE").is_some() {
        let origin = sent.iter().map(|s| s.start).min();
        for s in &sent {
            if s.call_ms > 15.0 {
                let at = origin.map_or(0.0, |o| s.start.duration_since(o).as_secs_f64());
                eprintln!(
                    "  TRACE {label} grant {} at {at:.3} s: call {:.1} ms",
                    s.index, s.call_ms
                );
            }
        }
    }
    Ok(Fanout {
        all: Latency::of(&all),
        watchers: Latency::of(&watchers),
        devices: Latency::of(&devices),
        call: Latency::of(&call),
        missing,
        failed,
        server_cpu,
        load_cpu,
        seconds,
    })
}

/// What holding many Watch streams showed.
pub struct Hold {
    pub requested: usize,
    /// Streams that got their Snapshot and CaughtUp.
    pub opened: usize,
    /// Seconds until every stream had caught up.
    pub open_seconds: f64,
    /// Streams still open at the end that saw the last grant.
    pub held: usize,
    /// Delivery of the grants made while holding, to every stream.
    pub delivery: Latency,
    /// The hub's RSS while holding them, and just before opening them, KiB.
    pub rss_kib: u64,
    pub rss_before_kib: u64,
    /// Encoded size of one Snapshot, bytes.
    pub snapshot_bytes: u64,
    /// The first reason a stream ended, if any did.
    pub first_end: Option<String>,
}

/// Opens `streams` Watch streams over `connections` connections with one guardian
/// credential, checks each caught up, grants at 2/s for `hold` while they stay open,
/// and checks that every one saw the last grant.
#[allow(clippy::too_many_arguments)]
pub async fn hold(
    addr: SocketAddr,
    guardian: &Credential,
    granter: &HouseholdClient<Channel>,
    children: &[String],
    streams: usize,
    connections: usize,
    hold: Duration,
    hub_pid: u32,
) -> Result<Hold> {
    let rss_before_kib = procs::proc_kib(hub_pid, "VmRSS")?;
    let mut clients = Vec::new();
    for _ in 0..connections.max(1) {
        clients.push(HouseholdClient::new(connect_as(addr, guardian).await?));
    }
    let started = Instant::now();
    let mut opening = JoinSet::new();
    for i in 0..streams {
        let mut client = clients[i % clients.len()].clone();
        opening.spawn(async move { Watch::open(&mut client, Vec::new()).await });
    }
    let mut watches = Vec::new();
    let mut open_errors = Vec::new();
    while let Some(joined) = opening.join_next().await {
        match joined.context("a watch task")? {
            Ok(watch) => watches.push(watch),
            Err(err) => open_errors.push(format!("{err:#}")),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut opened = 0;
    for watch in &watches {
        let left = deadline.saturating_duration_since(Instant::now());
        if watch.caught_up(left).await && watch.log.snapshot.load(Ordering::Acquire) {
            opened += 1;
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    if let Some(first) = open_errors.first() {
        eprintln!(
            "  {} of {streams} watches could not open; first: {first}",
            open_errors.len()
        );
    }

    let receivers: Vec<Receiver> = watches
        .iter()
        .map(|w| Receiver {
            source: Source::Watch(w.log.clone()),
            child: None,
        })
        .collect();
    let pacing = Pacing {
        grants: ((hold.as_secs_f64() * 2.0).ceil() as usize).max(1),
        warmup: 0,
        rate: 2.0,
    };
    let label = format!("hold-{}", jiff::Timestamp::now().as_microsecond());
    let delivery = fanout(&label, granter, children, &receivers, &pacing, hub_pid).await?;
    let rss_kib = procs::proc_kib(hub_pid, "VmRSS")?;
    let last = watches
        .iter()
        .map(|w| w.log.last_grant.load(Ordering::Acquire))
        .max()
        .unwrap_or(0);
    let held = watches
        .iter()
        .filter(|w| w.log.ended().is_none() && w.log.last_grant.load(Ordering::Acquire) == last)
        .count();
    let first_end = watches.iter().find_map(|w| w.log.ended());
    let snapshot_bytes = watches
        .iter()
        .map(|w| w.log.snapshot_bytes.load(Ordering::Acquire))
        .max()
        .unwrap_or(0);
    for watch in watches {
        watch.close();
    }
    Ok(Hold {
        requested: streams,
        opened,
        open_seconds,
        held,
        delivery: delivery.all,
        rss_kib,
        rss_before_kib,
        snapshot_bytes,
        first_end,
    })
}

/// What streaming usage showed.
pub struct Ingest {
    pub sent: u64,
    pub acked: u64,
    pub rejected: u64,
    pub first_rejection: Option<String>,
    /// From the first record sent to the last acknowledgement.
    pub elapsed: f64,
    /// Acknowledged records per second over `elapsed`.
    pub rate: f64,
    /// Agents that sent their last allowed record before the time was up.
    pub capped: usize,
    /// CPU seconds the hub and this generator used during the phase.
    pub hub_cpu: f64,
    pub load_cpu: f64,
    pub hub_rss_kib: u64,
}

/// Every agent streams usage for `seconds` (bounded window of unacknowledged
/// records), then the phase waits (at most 60 s) for the remaining acknowledgements.
pub async fn ingest(agents: &[Arc<Agent>], seconds: f64, hub_pid: u32) -> Result<Ingest> {
    let max_records = ((seconds * 5_000.0) as u64).clamp(1, 80_000);
    // Back-to-back 1-second intervals that end a minute ago at the latest.
    let first_second = jiff::Timestamp::now().as_second() - max_records as i64 - 60;
    let already: u64 = agents
        .iter()
        .map(|a| a.log.acked.load(Ordering::Acquire))
        .sum();
    if already != 0 {
        bail!("the agents have records acknowledged already");
    }
    let hub_cpu_before = procs::cpu_seconds(hub_pid)?;
    let load_cpu_before = procs::own_cpu_seconds();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = JoinSet::new();
    for agent in agents {
        let agent = agent.clone();
        tasks.spawn(async move {
            agent
                .stream_usage(first_second, max_records, deadline)
                .await
        });
    }
    let mut sent = 0;
    let mut capped = 0;
    while let Some(joined) = tasks.join_next().await {
        let n = joined.context("a usage task")?;
        sent += n;
        if n == max_records {
            capped += 1;
        }
    }
    let settle = Instant::now() + Duration::from_secs(60);
    loop {
        let answered: u64 = agents
            .iter()
            .map(|a| a.log.acked.load(Ordering::Acquire) + a.log.rejected.load(Ordering::Acquire))
            .sum();
        let gone = agents.iter().filter(|a| a.log.ended().is_some()).count();
        if answered >= sent || gone > 0 || Instant::now() >= settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let hub_cpu = procs::cpu_seconds(hub_pid)? - hub_cpu_before;
    let load_cpu = procs::own_cpu_seconds() - load_cpu_before;
    let hub_rss_kib = procs::proc_kib(hub_pid, "VmRSS")?;
    let acked: u64 = agents
        .iter()
        .map(|a| a.log.acked.load(Ordering::Acquire))
        .sum();
    let rejected: u64 = agents
        .iter()
        .map(|a| a.log.rejected.load(Ordering::Acquire))
        .sum();
    let first_rejection = agents
        .iter()
        .find_map(|a| a.log.first_rejection.lock().ok().and_then(|r| r.clone()));
    let last_ack = agents
        .iter()
        .filter_map(|a| a.log.last_ack.lock().ok().and_then(|l| *l))
        .max()
        .unwrap_or(started);
    let elapsed = last_ack.saturating_duration_since(started).as_secs_f64();
    if let Some(end) = agents.iter().find_map(|a| a.log.ended()) {
        eprintln!("  a session ended during ingestion: {end}");
    }
    Ok(Ingest {
        sent,
        acked,
        rejected,
        first_rejection,
        elapsed,
        rate: if elapsed > 0.0 {
            acked as f64 / elapsed
        } else {
            0.0
        },
        capped,
        hub_cpu,
        load_cpu,
        hub_rss_kib,
    })
}

/// fdatasync of small appends to a new file in `dir`, `count` times at `rate` per
/// second: what the disk under the data directory costs a durable write, apart from
/// the hub.
pub fn fsync_probe(dir: &std::path::Path, count: usize, rate: f64) -> Result<Latency> {
    use std::io::Write as _;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let record = [b'x'; 200];
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        file.write_all(&record)?;
        let start = Instant::now();
        file.sync_data()?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
        next += period;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(Latency::of(&samples))
}
