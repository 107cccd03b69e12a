//! `household demo`: a whole household on this machine, in one command.
//!
//! A hub, simulated child agents and this CLI as a guardian all run inside this process
//! ([`running`]), in a temporary directory, on `127.0.0.1` with a port the system picks
//! and with mDNS off: every part is told the hub's address, so nothing is multicast and
//! nothing needs root. [`setup`] makes the household (children with a small allowance,
//! their devices, an agent on each), [`progress`] shows a spinner meanwhile, and then
//! the live `household watch` runs until `q`, Ctrl-C, a signal or `--duration`. Then
//! the agents stop, the hub stops, and the directory is removed.

mod progress;
mod running;
mod setup;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::signal::unix::{Signal, SignalKind, signal};

use self::progress::Progress;
use self::running::Running;

/// The children's names, in the order they are added.
pub const CHILD_NAMES: [&str; 8] = ["Mia", "Leo", "Ava", "Noah", "Emma", "Finn", "Lina", "Ben"];

/// `household demo` flags.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// How many children (1 to 8); the first has two devices, the others one.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub children: u8,
    /// Each child's daily allowance in minutes (1 to 1440); the default runs out during
    /// the demo: warning, then grace, then blocked.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub minutes: u32,
    /// Stop by itself once the live view has been open this long (5s, 2m, 1h 30m)
    /// [default: until q or Ctrl-C].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // Before anything is made, so a Ctrl-C at any moment stops cleanly.
    let mut signals = Signals::new().context("listening for Ctrl-C")?;
    let dir = tempfile::Builder::new()
        .prefix("household-demo-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("making the demo's temporary directory")?;
    let path = dir.path().to_owned();
    println!("household demo in {}", path.display());
    log_to_file(&path.join("demo.log"))?;

    let mut running = Running::default();
    let outcome = tokio::select! {
        outcome = start_and_watch(&mut running, &path, &args) => outcome,
        () = signals.received() => Ok(()),
    };
    // The watch (and with it the terminal's screen) is gone; stop the rest.
    let stopped = running.stop().await;
    dir.close()
        .with_context(|| format!("removing {}", path.display()))?;
    // Not println!: the terminal may be gone (SIGHUP), and that is no reason to panic.
    let _ = writeln!(
        std::io::stdout(),
        "household demo stopped; removed {}",
        path.display()
    );
    outcome.and(stopped)
}

async fn start_and_watch(running: &mut Running, dir: &Path, args: &DemoArgs) -> anyhow::Result<()> {
    let progress = Progress::new();
    let mut guardian = setup::household(running, dir, args, &progress).await?;
    progress.step(match args.duration {
        Some(duration) => format!(
            "watching for {:#}; q or Ctrl-C stops the demo sooner",
            jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX)
        ),
        None => "watching; q or Ctrl-C stops the demo".to_owned(),
    });
    drop(progress);
    let until = async {
        match args.duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        watched = crate::watch::run(&mut guardian, false) => Ok(watched?),
        failed = running.failed() => Err(failed),
        () = until => Ok(()),
    }
}

/// The hub's, the agents' and this command's logs go to a file in the demo's directory,
/// not over the screen (`RUST_LOG` filters them; info by default).
fn log_to_file(path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("creating the log file {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .try_init()
        .map_err(|err| anyhow::anyhow!("setting up the log: {err}"))
}

/// `5s`, `2m`, `1h 30m` (or an ISO 8601 duration), more than zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("a duration like 5s, 2m or 1h 30m; got {text:?}");
    let duration: jiff::SignedDuration = text.trim().parse().map_err(|_| bad())?;
    Duration::try_from(duration)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(bad)
}

/// SIGINT (Ctrl-C while the spinner turns, or with the line output), SIGTERM and SIGHUP.
/// On the live screen Ctrl-C is a key, and the watch ends by itself.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn received(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_spans_of_time_and_never_zero() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        for bad in ["0s", "-5s", "soon", "5", ""] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("like 5s"), "{bad}: {err}");
        }
    }
}
