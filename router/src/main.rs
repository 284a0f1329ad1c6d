//! beacon-router: the alert router. Skeleton until its issue lands: it parses its flags and
//! says what it is, so the workspace, CI and packaging are in place.

use clap::Parser;

/// Alert router: Alertmanager and Sentry webhooks in, Slack and Google Chat out.
#[derive(Debug, Parser)]
#[command(name = "beacon-router", version, about)]
struct Cli {
    /// YAML config file.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::bail!(
        "beacon-router is not implemented yet (config {:?}); see the router issue",
        cli.config
    )
}
