//! Running the real `child-agent` binary in tests.

#![allow(dead_code)]

pub mod hub;
pub mod logind;
pub mod netns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_child-agent");

/// A data directory with a policy file in it.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new(policy: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `child-agent run` on this directory with a free legacy port,
    /// simulated use at `speed`, and legacy commands from loopback allowed
    /// (the tests play the parent app on this machine).
    pub fn start(&self, speed: f64, extra: &[&str]) -> Agent {
        self.start_with_env(speed, extra, &[])
    }

    /// [`Home::start`] with extra environment variables for the agent.
    pub fn start_with_env(&self, speed: f64, extra: &[&str], env: &[(&str, String)]) -> Agent {
        let speed = speed.to_string();
        let mut args = vec!["--speed", &speed, "--legacy-allow-local"];
        args.extend_from_slice(extra);
        self.start_plain(&args, env)
    }

    /// Starts `child-agent run` with the data directory, the policy, a free
    /// legacy port on 127.0.0.1 and `args`, nothing else; nothing announced
    /// over mDNS unless `args` names an interface (only ever one of a network
    /// namespace the test made).
    pub fn start_plain(&self, args: &[&str], env: &[(&str, String)]) -> Agent {
        let port = free_udp_port();
        let mdns: &[&str] = if args.contains(&"--mdns-interface") {
            &[]
        } else {
            &["--no-mdns"]
        };
        let child = Command::new(BIN)
            .arg("run")
            .args(mdns)
            .arg("--data-dir")
            .arg(self.path())
            .arg("--policy")
            .arg(self.file("policy.toml"))
            .args([
                "--legacy-bind",
                "127.0.0.1",
                "--legacy-port",
                &port.to_string(),
            ])
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut agent = Agent { child, port };
        let socket = self.file("control.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        // Connecting proves this agent listens (a kill -9 leaves a stale file).
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if let Ok(Some(status)) = agent.child.try_wait() {
                panic!("the agent exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not open its control socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// `child-agent ARGS --data-dir DIR`.
    pub fn command(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(self.path())
            .output()
            .unwrap()
    }

    pub fn status(&self) -> Option<Value> {
        let out = self.command(&["status", "--json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    /// Polls the status until `done` holds; panics after 30 s.
    pub fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_long(what, Duration::from_secs(30), done)
    }

    /// [`Home::wait_for`], giving up after `limit`.
    pub fn wait_for_long(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.status()
                && done(&status)
            {
                return status;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `file` holds a line equal to `line`.
    pub fn wait_for_line(&self, file: &str, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(self.file(file)).unwrap_or_default();
            if text.lines().any(|l| l == line) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {line:?} in {file}; it holds {text:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub struct Agent {
    pub child: Child,
    pub port: u16,
}

impl Agent {
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap().success()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn used_minutes(status: &Value) -> i64 {
    status["used_minutes"].as_i64().unwrap()
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A command that runs `program` as `nobody` (uid and gid 65534, no other
/// groups), as the child would; `Err` says why that cannot be done here.
pub fn as_nobody(program: &str) -> Result<Command, String> {
    // SAFETY: geteuid takes nothing and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("switching to nobody needs root".into());
    }
    let found = Command::new("setpriv")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        return Err("setpriv (util-linux) is not installed".into());
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program);
    Ok(command)
}

/// Resident memory of process `pid` in KiB, from `/proc`.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}
