//! A household of many agents on one machine: how soon a guardian's lock or
//! unlock is carried out on every device of the child, and what the agents
//! cost while nothing happens.
//!
//! ```sh
//! cargo build --release -p household-hub -p child-agent
//! cargo run --release -p child-agent --example fleet -- [AGENTS] [RUNS]
//! ```
//!
//! Starts the release `household-hub` and AGENTS (default 100) release
//! `child-agent` processes, two devices per child, all on loopback with TLS,
//! simulated use, no UDP. Each agent's lock and unlock hooks write a line
//! into a FIFO of its own; the time from the guardian's call to the line is
//! the latency measured (the hook run is part of it). Every run locks and
//! unlocks each child once. Alongside, in the same run, the floor: the same
//! hook (`sh -c 'echo … >> FIFO'`) started directly, so the figure can be
//! read against what the hook alone costs. Then 30 s of quiet: each agent's
//! CPU time over it, and its peak RSS.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use household_proto::v1::{self, household_client::HouseholdClient};
use tokio::io::AsyncBufReadExt as _;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tonic::transport::Channel;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long the quiet phase lasts.
const QUIET: Duration = Duration::from_secs(30);
/// How long one lock may take before the run counts it as missing.
const PATIENCE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let agents: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let runs: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let bin = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .ok_or("no target directory")?
        .to_owned();
    let dir = tempfile::tempdir()?;
    println!(
        "fleet: {agents} agents, {runs} runs, binaries in {}",
        bin.display()
    );

    let hub = Hub::start(&bin, &dir.path().join("hub"))?;
    let mut guardian = guardian(&bin, &hub).await?;
    let mut children = Vec::new();
    let mut fleet = Vec::new();
    let (lines, mut heard) = mpsc::unbounded_channel();
    for n in 0..agents.div_ceil(2) {
        let child = guardian
            .add_child(v1::AddChildRequest {
                display_name: format!("Child {n}"),
                ..Default::default()
            })
            .await?
            .into_inner()
            .child
            .ok_or("no child")?
            .child_id;
        for d in 0..2.min(agents - 2 * n) {
            let home = dir.path().join(format!("agent-{n}-{d}"));
            let agent =
                Agent::start(&bin, &hub, &mut guardian, &child, &home, lines.clone()).await?;
            fleet.push((child.clone(), agent));
        }
        children.push(child);
    }
    // Every device online, and the hook each agent runs at start heard.
    let started = Instant::now();
    loop {
        let status = guardian
            .get_status(v1::GetStatusRequest::default())
            .await?
            .into_inner();
        let online = status
            .children
            .iter()
            .flat_map(|c| &c.devices)
            .filter(|d| d.online)
            .count();
        if online == fleet.len() {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!("only {online} of {} agents came online", fleet.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    while heard.try_recv().is_ok() {}
    println!("fleet online in {:.1} s", started.elapsed().as_secs_f64());

    let devices: HashMap<&str, usize> = children
        .iter()
        .map(|c| (c.as_str(), fleet.iter().filter(|(of, _)| of == c).count()))
        .collect();
    let floor_fifo = dir.path().join("floor.fifo");
    let floor_lines = open_fifo(&floor_fifo, lines.clone())?;
    let mut run_p99 = Vec::new();
    let mut floor_p99 = Vec::new();
    for run in 1..=runs {
        let mut samples = Vec::new();
        let mut missing = 0;
        for child in &children {
            for lock in [true, false] {
                let sent = Instant::now();
                let target = Some(child.clone());
                if lock {
                    guardian
                        .lock(v1::LockRequest {
                            target: target.map(v1::lock_request::Target::ChildId),
                            ..Default::default()
                        })
                        .await?;
                } else {
                    guardian
                        .unlock(v1::UnlockRequest {
                            target: target.map(v1::unlock_request::Target::ChildId),
                            ..Default::default()
                        })
                        .await?;
                }
                let want = if lock { "lock" } else { "unlock" };
                let mut left = devices[child.as_str()];
                while left > 0 {
                    match tokio::time::timeout(PATIENCE, heard.recv()).await {
                        Ok(Some((line, at))) if line == want => {
                            samples.push(at.duration_since(sent));
                            left -= 1;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => {
                            missing += left;
                            break;
                        }
                    }
                }
            }
        }
        let floor = floor_samples(&floor_fifo, samples.len().min(200), &mut heard).await?;
        let hub_stats = Stats::of(&mut samples);
        let floor_stats = Stats::of(&mut floor.clone());
        println!(
            "run {run}: lock/unlock → hook on the device: n {} p50 {:.2} p99 {:.2} max {:.2} ms (missing {missing}); \
             hook alone: p50 {:.2} p99 {:.2} ms",
            samples.len(),
            hub_stats.p50,
            hub_stats.p99,
            hub_stats.max,
            floor_stats.p50,
            floor_stats.p99
        );
        run_p99.push(hub_stats.p99);
        floor_p99.push(floor_stats.p99);
    }
    floor_lines.abort();

    // Quiet: nobody acts; the agents meter, report and keep their sessions.
    let before: Vec<f64> = fleet
        .iter()
        .map(|(_, a)| cpu_seconds(a.pid()))
        .collect::<Result<_>>()?;
    tokio::time::sleep(QUIET).await;
    let mut cpu: Vec<f64> = fleet
        .iter()
        .zip(&before)
        .map(|((_, a), b)| Ok((cpu_seconds(a.pid())? - b) / QUIET.as_secs_f64() * 100.0))
        .collect::<Result<_>>()?;
    let mut rss: Vec<f64> = fleet
        .iter()
        .map(|(_, a)| peak_rss_mib(a.pid()))
        .collect::<Result<_>>()?;
    cpu.sort_by(f64::total_cmp);
    rss.sort_by(f64::total_cmp);
    run_p99.sort_by(f64::total_cmp);
    floor_p99.sort_by(f64::total_cmp);
    println!(
        "quiet {} s: agent CPU median {:.3}% max {:.3}% of a core; agent peak RSS median {:.1} MiB max {:.1} MiB; hub peak RSS {:.1} MiB",
        QUIET.as_secs(),
        cpu[cpu.len() / 2],
        cpu[cpu.len() - 1],
        rss[rss.len() / 2],
        rss[rss.len() - 1],
        peak_rss_mib(hub.process.id())?
    );
    println!(
        "summary: p99 median of {runs} runs {:.2} ms (runs {:.2}–{:.2}); hook alone p99 median {:.2} ms",
        run_p99[run_p99.len() / 2],
        run_p99[0],
        run_p99[run_p99.len() - 1],
        floor_p99[floor_p99.len() / 2]
    );
    drop(fleet);
    drop(hub);
    Ok(())
}

/// The hook alone, started as the agent's enforcer starts it.
async fn floor_samples(
    fifo: &Path,
    count: usize,
    heard: &mut mpsc::UnboundedReceiver<(String, Instant)>,
) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let sent = Instant::now();
        let mut hook = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("echo floor >> '{}'", fifo.display()))
            .spawn()?;
        loop {
            match tokio::time::timeout(PATIENCE, heard.recv()).await {
                Ok(Some((line, at))) if line == "floor" => {
                    samples.push(at.duration_since(sent));
                    break;
                }
                Ok(Some(_)) => {}
                _ => return Err("the floor hook was not heard".into()),
            }
        }
        hook.wait().await?;
    }
    Ok(samples)
}

struct Stats {
    p50: f64,
    p99: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &mut [Duration]) -> Stats {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            ms(samples[i])
        };
        if samples.is_empty() {
            return Stats {
                p50: f64::NAN,
                p99: f64::NAN,
                max: f64::NAN,
            };
        }
        Stats {
            p50: at(0.5),
            p99: at(0.99),
            max: ms(samples[samples.len() - 1]),
        }
    }
}

/// Opens `path` as a FIFO (made if missing) and forwards each line written
/// to it, with the moment it was read, until aborted.
fn open_fifo(
    path: &Path,
    lines: mpsc::UnboundedSender<(String, Instant)>,
) -> Result<tokio::task::JoinHandle<()>> {
    if !path.exists() {
        let status = Command::new("mkfifo").arg(path).status()?;
        if !status.success() {
            return Err(format!("mkfifo {}", path.display()).into());
        }
    }
    // Read and write: the FIFO stays open between hook runs.
    let receiver = pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(path)?;
    Ok(tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::new(receiver).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if lines.send((line, Instant::now())).is_err() {
                return;
            }
        }
    }))
}

struct Hub {
    process: Child,
    address: String,
    data: PathBuf,
}

impl Hub {
    fn start(bin: &Path, data: &Path) -> Result<Hub> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let mut process = Command::new(bin.join("household-hub"))
            .args([
                "serve",
                "--no-mdns",
                "--rate-limit",
                "0",
                "--legacy-poll",
                "0",
            ])
            .args(["--listen", &address])
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = process.stdout.take().ok_or("no stdout")?;
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        loop {
            let line = lines.next().ok_or("the hub exited")??;
            if line.starts_with("household hub serving on ") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Ok(Hub {
            process,
            address,
            data: data.to_owned(),
        })
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn guardian(bin: &Path, hub: &Hub) -> Result<HouseholdClient<Channel>> {
    let invite = Command::new(bin.join("household-hub"))
        .args(["invite", "--role", "guardian", "--name", "Bench"])
        .arg("--admin-socket")
        .arg(hub.data.join("admin.sock"))
        .output()?;
    let code = String::from_utf8(invite.stdout)?
        .lines()
        .last()
        .ok_or("no pairing code")?
        .trim()
        .to_owned();
    let about = household_client::About {
        hostname: "bench".into(),
        platform: "linux".into(),
        software_version: "bench".into(),
        role: household_proto::v1::Role::Guardian,
    };
    let c = household_client::enroll(&hub.address, &code, &about)
        .await?
        .credential;
    let channel =
        household_client::connect(&hub.address, &c.ca_pem, Some((&c.chain_pem, &c.key_pem)))
            .await?;
    Ok(HouseholdClient::new(channel))
}

struct Agent {
    process: Child,
    reader: tokio::task::JoinHandle<()>,
}

impl Agent {
    async fn start(
        bin: &Path,
        hub: &Hub,
        guardian: &mut HouseholdClient<Channel>,
        child: &str,
        home: &Path,
        lines: mpsc::UnboundedSender<(String, Instant)>,
    ) -> Result<Agent> {
        std::fs::create_dir_all(home)?;
        let added = guardian
            .add_device(v1::AddDeviceRequest {
                child_id: child.into(),
                display_name: home
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                kind: Some(v1::add_device_request::Kind::Agent(
                    v1::AgentDeviceSpec::default(),
                )),
                ..Default::default()
            })
            .await?
            .into_inner();
        let code = added.invite.ok_or("no invite")?.pairing_code;
        let agent = bin.join("child-agent");
        let enrolled = Command::new(&agent)
            .args(["enroll", &code, "--hub", &hub.address])
            .arg("--data-dir")
            .arg(home)
            .output()?;
        if !enrolled.status.success() {
            return Err(String::from_utf8_lossy(&enrolled.stderr)
                .into_owned()
                .into());
        }
        let policy = home.join("policy.toml");
        std::fs::write(&policy, "[daily_minutes]\ndefault = 1440\n")?;
        let fifo = home.join("hooks.fifo");
        let reader = open_fifo(&fifo, lines)?;
        let hook = |word: &str| format!("echo {word} >> '{}'", fifo.display());
        let process = Command::new(&agent)
            .args(["run", "--no-mdns"])
            .arg("--data-dir")
            .arg(home)
            .arg("--policy")
            .arg(&policy)
            .args(["--usage-source", "simulated", "--legacy-mode", "off"])
            .args(["--on-lock", &hook("lock"), "--on-unlock", &hook("unlock")])
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .spawn()?;
        Ok(Agent { process, reader })
    }

    fn pid(&self) -> u32 {
        self.process.id()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.reader.abort();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// User plus system CPU time of `pid` so far, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses); utime and
    // stime are the 14th and 15th fields of the line.
    let after = stat.rsplit_once(')').ok_or("bad /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf(3) reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

/// Peak resident memory of `pid` (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .ok_or("no VmHWM")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}
