//! beacon-agent's command line: parses flags, loads the config, and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use beacon_agent::flags::CollectorFlags;
use beacon_agent::{config, Config, Scraper};
use beacon_common::logfmt::LogFormat;
use clap::{Parser, Subcommand};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Host metrics agent: a node_exporter-compatible Prometheus exporter.
#[derive(Debug, Parser)]
#[command(name = "beacon-agent", version, about)]
struct Cli {
    /// YAML config file; built-in defaults when absent.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, repeatable (overrides `listen` in the config): `:9100`,
    /// `[::1]:9100`, `localhost:9100`.
    #[arg(
        long,
        visible_alias = "web.listen-address",
        global = true,
        value_name = "ADDR"
    )]
    listen: Vec<String>,
    /// exporter-toolkit web config file: TLS, client certificates, basic auth, headers.
    #[arg(long = "web.config.file", global = true, value_name = "FILE")]
    web_config_file: Option<PathBuf>,
    /// Path of the metrics endpoint (default /metrics).
    #[arg(long = "web.telemetry-path", global = true, value_name = "PATH")]
    telemetry_path: Option<String>,
    /// Leave out the metrics about the agent itself (process_*).
    #[arg(long = "web.disable-exporter-metrics", global = true, num_args = 0..=1,
        require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    disable_exporter_metrics: Option<bool>,
    /// Most scrapes answered at once; more get 503. 0: no limit (default 40).
    #[arg(long = "web.max-requests", global = true, value_name = "N")]
    max_requests: Option<usize>,
    /// Serve on the sockets systemd passes instead of listening (socket activation).
    #[arg(long = "web.systemd-socket", global = true, num_args = 0..=1,
        require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    systemd_socket: Option<bool>,
    /// procfs mount point (overrides `paths.procfs`).
    #[arg(long = "path.procfs", global = true, value_name = "DIR")]
    procfs: Option<PathBuf>,
    /// sysfs mount point (overrides `paths.sysfs`).
    #[arg(long = "path.sysfs", global = true, value_name = "DIR")]
    sysfs: Option<PathBuf>,
    /// Root filesystem of the host (overrides `paths.rootfs`).
    #[arg(long = "path.rootfs", global = true, value_name = "DIR")]
    rootfs: Option<PathBuf>,
    /// udev database directory (overrides `paths.udev_data`).
    #[arg(long = "path.udev.data", global = true, value_name = "DIR")]
    udev_data: Option<PathBuf>,
    /// Log filter, e.g. `info` or `beacon_agent=debug` (RUST_LOG also works).
    #[arg(
        long = "log.level",
        global = true,
        default_value = "info",
        value_name = "FILTER"
    )]
    log_level: String,
    /// Log line format: `logfmt` (node_exporter's default) or `json`.
    #[arg(long = "log.format", global = true, default_value = "logfmt", value_name = "FORMAT",
          value_parser = ["logfmt", "json"])]
    log_format: String,
    /// Accepted for node_exporter compatibility (Go's GOMAXPROCS); beacon-agent always serves
    /// from one thread.
    #[arg(
        long = "runtime.gomaxprocs",
        global = true,
        value_name = "N",
        hide = true
    )]
    gomaxprocs: Option<u32>,
    #[command(flatten)]
    collector_flags: CollectorFlags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve /metrics (the default).
    Run,
    /// Validate the config file and report every problem with its path.
    CheckConfig,
    /// Run one collection and print it to stdout, like Telegraf's --test.
    Collect,
}

impl Cli {
    fn load(&self) -> Result<Config, config::ConfigError> {
        let mut cfg = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        if !self.listen.is_empty() {
            cfg.listen = beacon_agent::listen::Listen(self.listen.clone());
        }
        if let Some(p) = &self.web_config_file {
            cfg.web.config_file = Some(p.clone());
        }
        if let Some(p) = &self.telemetry_path {
            cfg.web.telemetry_path = p.clone();
        }
        if let Some(b) = self.disable_exporter_metrics {
            cfg.web.disable_exporter_metrics = b;
        }
        if let Some(n) = self.max_requests {
            cfg.web.max_requests = n;
        }
        if let Some(b) = self.systemd_socket {
            cfg.web.systemd_socket = b;
        }
        if let Some(p) = &self.procfs {
            cfg.paths.procfs = p.clone();
        }
        if let Some(p) = &self.sysfs {
            cfg.paths.sysfs = p.clone();
        }
        if let Some(p) = &self.rootfs {
            cfg.paths.rootfs = p.clone();
        }
        if let Some(p) = &self.udev_data {
            cfg.paths.udev_data = p.clone();
        }
        let mut problems = self.collector_flags.apply(&mut cfg.collectors);
        // Flags can make a valid file invalid (a relative --path.procfs), so check again.
        problems.extend(cfg.validate());
        if !problems.is_empty() {
            return Err(config::ConfigError {
                file: self.config.clone(),
                problems,
            });
        }
        Ok(cfg)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `Targets` takes the same `info` / `beacon_agent=debug,info` syntax as EnvFilter without
    // pulling a second regex engine into the binary (resident memory is a headline figure).
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| cli.log_level.clone());
    let filter: Targets = match spec.parse() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("beacon-agent: invalid log filter {spec:?}: {e}");
            return ExitCode::from(1);
        }
    };
    // node_exporter's log line formats (clap already restricted the value).
    let format = LogFormat::parse(&cli.log_format).unwrap_or(LogFormat::Logfmt);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(format),
        )
        .with(filter)
        .init();
    // One arena: one HTTP thread and one scrape at a time.
    beacon_common::tune_malloc(1);

    let cfg = match cli.load() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    if cli.gomaxprocs.is_some() {
        tracing::info!("--runtime.gomaxprocs is a Go runtime setting; beacon-agent serves from one thread and ignores it");
    }
    for warning in cfg.collectors.warnings() {
        tracing::warn!("{warning}");
    }
    let command = cli.command.unwrap_or(Command::Run);
    if let (Some(p), Command::Run | Command::CheckConfig) = (&cfg.web.config_file, &command) {
        if let Err(e) = beacon_agent::web_config::WebConfig::load(p) {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    }
    let result = match command {
        Command::CheckConfig => {
            println!("config ok");
            Ok(())
        }
        Command::Collect => {
            print!("{}", Scraper::new(&cfg).scrape());
            Ok(())
        }
        Command::Run => serve(cfg),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("beacon-agent: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn serve(cfg: Config) -> anyhow::Result<()> {
    // One thread serves HTTP; collections run one at a time on the blocking pool (see http.rs),
    // so a small pool bounds memory however many scrapers connect.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()
        .context("start runtime")?;
    rt.block_on(async move {
        let listeners = if cfg.web.systemd_socket {
            beacon_agent::listen::systemd_listeners()?
        } else {
            let mut v = Vec::new();
            for addr in &cfg.listen.0 {
                v.push(beacon_agent::listen::bind(addr).await?);
            }
            v
        };
        beacon_agent::run_on(cfg, listeners, shutdown_signal()).await
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install SIGTERM handler");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
