//! The processes the load generator drives: the real hub binary, the floor (this same
//! example run with `--serve-floor`), `household-hub invite`, and what /proc says about
//! them and the machine.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// A server process that printed `PREFIX ADDR` on stdout and is drained from then on.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Spawns `command` and waits (at most 60 s) for the line `prefix ADDR`.
    fn spawn(mut command: Command, prefix: &'static str) -> Result<Server> {
        command.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = command.spawn().context("spawning a server process")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut sent = false;
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if !sent && let Some(addr) = line.strip_prefix(prefix) {
                    let _ = tx.send(addr.trim().to_owned());
                    sent = true;
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server did not print {prefix:?} within 60 s");
            }
        };
        let addr = addr
            .parse()
            .with_context(|| format!("parsing the server address {addr:?}"))?;
        Ok(Server { child, addr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL if it has not exited after 10 s.
    pub fn stop(mut self) -> Result<()> {
        // SAFETY: kill(2) on a child this process spawned and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `target/release/household-hub`, beside this example's own directory.
pub fn hub_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this example")?;
    // target/release/examples/load → target/release/household-hub
    let release = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("unexpected example path {}", exe.display()))?;
    let hub = release.join("household-hub");
    if !hub.exists() {
        bail!(
            "{} is missing: cargo build --release -p household-hub --bin household-hub",
            hub.display()
        );
    }
    Ok(hub)
}

/// The hub on `data_dir`, on a free loopback port, rate limit off.
pub fn start_hub(hub: &Path, data_dir: &Path, max_watches: usize) -> Result<Server> {
    let mut command = Command::new(hub);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--no-mdns"])
        .args(["--advertise", "localhost:7443", "--rate-limit", "0"])
        .arg("--max-watches")
        .arg(max_watches.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn");
    Server::spawn(command, "household hub serving on ")
}

/// The floor: this example with `--serve-floor TLS_DIR`.
pub fn start_floor(tls_dir: &Path) -> Result<Server> {
    let exe = std::env::current_exe().context("locating this example")?;
    let mut command = Command::new(exe);
    command.arg("--serve-floor").arg(tls_dir);
    Server::spawn(command, "floor serving on ")
}

/// `household-hub invite …`: the pairing code, the last line printed.
pub async fn invite(
    hub: &Path,
    admin_socket: &Path,
    role: &str,
    name: &str,
    child: Option<&str>,
) -> Result<String> {
    let mut command = tokio::process::Command::new(hub);
    command
        .args(["invite", "--role", role, "--name", name])
        .arg("--admin-socket")
        .arg(admin_socket)
        .env("RUST_LOG", "warn");
    if let Some(child) = child {
        command.args(["--child", child]);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .context("household-hub invite took over 30 s")?
        .context("running household-hub invite")?;
    if !output.status.success() {
        bail!(
            "household-hub invite failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout)?
        .lines()
        .last()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("household-hub invite printed nothing"))
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
pub fn proc_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))
}

/// User + system CPU seconds a process has used so far (`/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("malformed /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: f64 = [11, 12]
        .iter()
        .map(|&i| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        })
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks / if hz > 0 { hz as f64 } else { 100.0 })
}

/// CPU seconds of this process so far.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// What the figures were measured on.
pub struct Machine {
    pub cpus: usize,
    pub model: String,
    pub kernel: String,
    pub memory_gib: f64,
    pub data_fs: String,
}

impl Machine {
    pub fn probe(data_root: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map(|kib| kib / 1024.0 / 1024.0)
            .unwrap_or(0.0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            model,
            kernel,
            memory_gib,
            data_fs: filesystem_of(data_root),
        }
    }
}

/// The file system type of the mount holding `path` (longest matching mount point).
fn filesystem_of(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let device = parts.next()?;
            let point = parts.next()?;
            let kind = parts.next()?;
            path.starts_with(point)
                .then(|| (point.len(), format!("{kind} on {device}")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, found)| found)
        .unwrap_or_else(|| "unknown".into())
}
