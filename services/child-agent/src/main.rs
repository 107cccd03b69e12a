//! `child-agent`: meters use of a child's device, locks it when the day's
//! time is gone, and answers the legacy CST parent app.

use std::path::PathBuf;

use child_agent::{client, config, enroll, run};

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "child-agent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent.
    Run(Box<config::RunArgs>),
    /// Join a household: enroll with its hub using a pairing code.
    Enroll(Box<enroll::EnrollArgs>),
    /// Print the device ID to type into the CST parent app.
    ShowId(DataDir),
    /// Show today's time, state and credits.
    Status {
        #[command(flatten)]
        data_dir: DataDir,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Keep watching: print the status again whenever it changes (Ctrl-C ends).
        #[arg(long)]
        follow: bool,
    },
    /// Print the last events the agent recorded, one JSON object per line.
    Log {
        #[command(flatten)]
        data_dir: DataDir,
        /// How many events, counting back from the newest.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Spend one of today's self-serve credits: 5 or 10 minutes.
    RequestTime {
        minutes: i64,
        #[command(flatten)]
        data_dir: DataDir,
    },
    /// Ask the guardians for more time (1 to 1440 minutes); they see it on the hub.
    Ask {
        minutes: i64,
        /// A word to the guardians, at most 200 characters.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        data_dir: DataDir,
    },
}

#[derive(Args)]
struct DataDir {
    /// The agent's data directory.
    #[arg(long, env = "CHILD_AGENT_DATA_DIR")]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Run(args) => run::run(args.resolve()?).await,
        Command::Enroll(args) => enroll::enroll(*args).await,
        Command::ShowId(dir) => client::show_id(&dir.data_dir).await,
        Command::Status {
            data_dir,
            json,
            follow,
        } => client::status(&data_dir.data_dir, json, follow).await,
        Command::Log { data_dir, limit } => client::log(&data_dir.data_dir, limit).await,
        Command::Ask {
            minutes,
            note,
            data_dir,
        } => client::ask_time(&data_dir.data_dir, minutes, note).await,
        Command::RequestTime { minutes, data_dir } => {
            client::request_time(&data_dir.data_dir, minutes).await
        }
    }
}
