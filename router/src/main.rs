//! beacon-router's command line. `check-config` works; serving webhooks lands with the router's
//! HTTP server and delivery pipeline (see ARCHITECTURE.md for what exists).

use std::path::PathBuf;
use std::process::ExitCode;

use beacon_router::config::Config;
use clap::{Parser, Subcommand};

/// Alert router: Alertmanager and Sentry webhooks in, Slack and Google Chat out.
#[derive(Debug, Parser)]
#[command(name = "beacon-router", version, about)]
struct Cli {
    /// YAML config file.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the config file (and read its secret files); report every problem with its path.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig) => {
            let Some(path) = cli.config else {
                eprintln!("beacon-router: check-config needs --config FILE");
                return ExitCode::from(2);
            };
            match Config::load(&path) {
                Ok(_) => {
                    println!("config ok");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        None => {
            eprintln!(
                "beacon-router: serving webhooks is not built yet; `beacon-router check-config --config FILE` validates a config"
            );
            ExitCode::from(2)
        }
    }
}
