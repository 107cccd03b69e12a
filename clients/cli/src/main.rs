//! `household`: the guardian's command line.

mod legacy;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "household",
    version,
    about = "Screen time for the household, from a terminal"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Talk to Child Screen Time devices (and child agents) over the legacy UDP protocol.
    #[command(subcommand)]
    Legacy(legacy::LegacyCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Legacy(command) => legacy::run(command).await,
    }
}
