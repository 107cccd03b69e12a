//! `household`: the guardian's command line.

mod act;
mod children;
mod credentials;
mod demo;
mod devices;
mod history;
mod hub;
mod invite;
mod legacy;
mod pair;
mod policy;
mod profile;
mod report;
mod requests;
mod status;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::hub::{CliError, Hub};

#[derive(Parser)]
#[command(
    name = "household",
    version,
    about = "Screen time for the household, from a terminal",
    after_help = "Examples:
  household pair hh1.… --hub hub.local:7443
  household status
  household extend Mia 30 --note \"homework done\"
  household lock Mia --until 18:30

Exit codes: 0 done; 1 the hub refused (the message says why); 2 bad arguments;
3 not paired (or the profile is unusable); 4 the hub cannot be reached."
)]
struct Cli {
    /// The profile (hub, key, certificate) to act with
    /// [default: $XDG_CONFIG_HOME/household/profile.json].
    #[arg(long, global = true, env = "HOUSEHOLD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Become one of the household's guardians on this machine.
    Pair {
        /// The code from `household-hub invite --role guardian` (or another guardian).
        code: String,
        /// The hub's HOST:PORT; without it the hub is found by mDNS.
        #[arg(long)]
        hub: Option<String>,
        /// The network interface to look for the hub on (all without it).
        #[arg(long, conflicts_with = "hub")]
        mdns_interface: Option<String>,
        /// What to call this terminal in the household's history [default: host name].
        #[arg(long)]
        name: Option<String>,
    },
    /// Where every child (or one) stands: state, time left, credits, devices.
    Status {
        /// A child's name or id.
        child: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The household live, redrawn in place as things change, until q or Ctrl-C.
    ///
    /// On a terminal the screen shows every child's state, time left, devices and
    /// pending requests, and who did what last. With --json, or when the output is not a
    /// terminal, it prints one line per change instead.
    Watch {
        /// One JSON object per line instead of the screen.
        #[arg(long)]
        json: bool,
    },
    /// The household's children.
    #[command(subcommand)]
    Children(children::ChildrenCommand),
    /// Give a child more time today.
    Extend {
        /// A child's name or id.
        child: String,
        /// Minutes to add, 1 to 1440.
        minutes: u32,
        /// Why, for the household's history.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        key: act::KeyArg,
    },
    /// Lock a child's devices now.
    Lock {
        /// A child's name or id.
        child: String,
        /// Until a time of day in the child's time zone (18:30) or an instant
        /// (2026-12-02T18:30:00Z) [default: until unlocked].
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        key: act::KeyArg,
    },
    /// Lift a lock, or allow use until a time whatever the allowance says.
    Unlock {
        /// A child's name or id.
        child: String,
        /// Until a time of day in the child's time zone (18:30) or an instant.
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        key: act::KeyArg,
    },
    /// The children's pending requests for more time.
    Requests {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Approve a request, with the minutes asked for or others.
    Approve {
        /// The request's id (from `household requests`).
        request_id: String,
        /// Minutes to give, 1 to 1440 [default: what was asked].
        minutes: Option<u32>,
    },
    /// Deny a request.
    Deny {
        /// The request's id (from `household requests`).
        request_id: String,
    },
    /// The children's devices.
    #[command(subcommand)]
    Devices(devices::DevicesCommand),
    /// A child's rules: daily minutes, bedtime, credits, grace.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Pairing codes for a new guardian or a child's new device.
    #[command(subcommand)]
    Invite(invite::InviteCommand),
    /// The household's guardians and devices, and the credentials they act with.
    #[command(subcommand)]
    Credentials(credentials::CredentialsCommand),
    /// Who did what for a child, and when.
    History {
        /// A child's name or id.
        child: String,
        /// How far back: a span (7d, 36h, 90m) or an instant.
        #[arg(long, default_value = "7d")]
        since: String,
        /// Only events of this kind (time_granted, locked, …); may be repeated.
        #[arg(long = "kind")]
        kinds: Vec<String>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A child's use per day, split by device, as bars; and the totals.
    Report {
        /// A child's name or id.
        child: String,
        /// Days back from today (today included), 1 to 93.
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the shell completion script for bash, zsh, fish or powershell.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `household man > household.1`.
    Man,
    /// Talk to Child Screen Time devices (and child agents) over the legacy UDP protocol.
    #[command(subcommand)]
    Legacy(legacy::LegacyCommand),
    /// A whole household on this machine: a hub, simulated children's devices and the
    /// live watch, all in a temporary directory that is removed afterwards.
    ///
    /// The hub listens on 127.0.0.1 on a free port, without mDNS; this command is its
    /// guardian (with a profile of its own, never yours). Each child's allowance runs
    /// out during the demo. q or Ctrl-C ends it; so does --duration.
    #[command(after_help = "Examples:
  household demo
  household demo --children 3 --minutes 5
  household demo --duration 2m > demo.txt")]
    Demo(demo::DemoArgs),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Show a child's policy.
    Show {
        /// A child's name or id.
        child: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change what the flags name; a change another guardian made meanwhile is never
    /// overwritten.
    Set {
        /// A child's name or id.
        child: String,
        #[command(flatten)]
        changes: policy::Changes,
    },
    /// One date's exception to the weekday rules: other minutes, no bedtime, a note.
    ///
    /// Changes only what the flags name on that date's exception (made if there is none);
    /// --remove drops it. A change another guardian made meanwhile is never overwritten.
    #[command(after_help = "Examples:
  household policy except Mia 2026-12-24 --minutes 240 --no-bedtime --note \"Christmas Eve\"
  household policy except Mia today --no-limit
  household policy except Mia 2026-12-24 --remove")]
    Except {
        /// A child's name or id.
        child: String,
        /// The date in the child's time zone: 2026-12-24, today or tomorrow.
        date: String,
        #[command(flatten)]
        changes: policy::exception::ExceptionChanges,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo logs to a file of its own, not over its screen.
    if !matches!(cli.command, Command::Demo(_)) {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_writer(std::io::stderr)
            // Colours only for a person at a terminal, not in journald or a log file.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = err
                .downcast_ref::<CliError>()
                .map_or(1, CliError::exit_code);
            eprintln!("household: {err:#}");
            ExitCode::from(code as u8)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let profile_path = || profile::path(cli.config.as_deref()).map_err(CliError::from);
    let hub = || async { Hub::open(&profile_path()?).await };
    match cli.command {
        Command::Pair {
            code,
            hub,
            mdns_interface,
            name,
        } => {
            let hub = match hub {
                Some(hub) => hub,
                None => pair::find_hub(&code, mdns_interface).await?,
            };
            pair::run(&code, &hub, name.as_deref(), &profile_path()?).await?
        }
        Command::Status { child, json } => {
            status::run(&mut hub().await?, child.as_deref(), json).await?
        }
        Command::Watch { json } => watch::run(&mut hub().await?, json).await?,
        Command::Children(command) => children::run(&mut hub().await?, command).await?,
        Command::Extend {
            child,
            minutes,
            note,
            key,
        } => {
            act::run(
                &mut hub().await?,
                &child,
                key,
                act::Action::Extend { minutes, note },
            )
            .await?
        }
        Command::Lock { child, until, key } => {
            act::run(&mut hub().await?, &child, key, act::Action::Lock { until }).await?
        }
        Command::Unlock { child, until, key } => {
            act::run(
                &mut hub().await?,
                &child,
                key,
                act::Action::Unlock { until },
            )
            .await?
        }
        Command::Requests { json } => requests::list(&mut hub().await?, json).await?,
        Command::Approve {
            request_id,
            minutes,
        } => requests::approve(&mut hub().await?, request_id, minutes).await?,
        Command::Deny { request_id } => requests::deny(&mut hub().await?, request_id).await?,
        Command::History {
            child,
            since,
            kinds,
            json,
        } => history::run(&mut hub().await?, &child, &since, &kinds, json).await?,
        Command::Devices(command) => devices::run(&mut hub().await?, command).await?,
        Command::Policy(PolicyCommand::Show { child, json }) => {
            policy::show(&mut hub().await?, &child, json).await?
        }
        Command::Policy(PolicyCommand::Set { child, changes }) => {
            policy::set(&mut hub().await?, &child, &changes).await?
        }
        Command::Policy(PolicyCommand::Except {
            child,
            date,
            changes,
        }) => policy::except(&mut hub().await?, &child, &date, &changes).await?,
        Command::Invite(command) => invite::run(&mut hub().await?, command).await?,
        Command::Credentials(command) => credentials::run(&mut hub().await?, command).await?,
        Command::Report { child, days, json } => {
            report::run(&mut hub().await?, &child, days, json).await?
        }
        Command::Completions { shell } => {
            // Into memory first: the generator panics on a closed stdout (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "household", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)?;
        }
        Command::Man => clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?,
        Command::Legacy(command) => legacy::run(command).await?,
        Command::Demo(args) => demo::run(args).await?,
    }
    Ok(())
}
