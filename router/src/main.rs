//! beacon-router's command line: the daemon (`beacon-router [--config FILE]`), `check-config`,
//! `send-test --receiver NAME`, and `dead-letters list|replay`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use beacon_router::admin::{self, ReplayRequest};
use beacon_router::app::{Active, App};
use beacon_router::config::{Config, Loaded};
use beacon_router::model::{Alert, Group, LabelSet, Source, Status};
use beacon_router::notify::Attempt;
use beacon_router::store::{EmbeddedStore, RedisConfig, RedisStore, Replicas, Store, StoreError};
use clap::{Parser, Subcommand};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Alert router: Alertmanager and Sentry webhooks in, Slack and Google Chat out.
#[derive(Debug, Parser)]
#[command(name = "beacon-router", version, about)]
struct Cli {
    /// YAML config file (built-in defaults when absent: listen on :9094, log to the console).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace) or per-target directives in `RUST_LOG`
    /// syntax, e.g. `beacon_router=debug,reqwest=debug`. The HTTP crates (hyper, reqwest, h2,
    /// rustls) stay at warn unless named.
    #[arg(
        long = "log.level",
        global = true,
        env = "RUST_LOG",
        default_value = "info",
        value_parser = parse_log_filter
    )]
    log_level: Targets,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate the config file (and read its secret files); report every problem with its path.
    CheckConfig,
    /// Send a sample alert through every integration of a receiver, directly (not queued).
    SendTest {
        /// The receiver's name.
        #[arg(long)]
        receiver: String,
        /// Send the sample as resolved.
        #[arg(long)]
        resolved: bool,
    },
    /// List or replay notifications that were given up on.
    DeadLetters {
        #[command(subcommand)]
        action: DeadLetterAction,
    },
}

#[derive(Debug, Subcommand)]
enum DeadLetterAction {
    /// List dead letters, oldest first.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Queue dead letters again.
    Replay {
        /// Ids to replay (from `list`).
        ids: Vec<u64>,
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

/// HTTP client and server internals: chatty at debug (a line per connection and pool checkout),
/// so they log at warn unless a directive names them.
const QUIET_TARGETS: [&str; 4] = ["hyper", "reqwest", "h2", "rustls"];

fn parse_log_filter(s: &str) -> Result<Targets, String> {
    s.parse::<Targets>().map_err(|e| {
        format!("{e} (want a level such as debug, or beacon_router=debug,reqwest=debug)")
    })
}

/// The filter the logger runs with: the operator's directives, plus [`QUIET_TARGETS`] at warn
/// (or the default level, if lower) for each one no directive names. `reqwest` and `rustls`
/// log through the `log` crate, which `tracing-subscriber`'s `tracing-log` bridge turns into
/// events these directives filter like any other. None of them logs a request's path, query or
/// headers (reqwest names the scheme and host of a new connection), where webhook URLs and
/// tokens live.
fn log_filter(user: Targets) -> Targets {
    let cap = user
        .default_level()
        .unwrap_or(LevelFilter::OFF)
        .min(LevelFilter::WARN);
    let named = |quiet: &str| {
        user.iter()
            .any(|(target, _)| target.starts_with(quiet) || quiet.starts_with(target))
    };
    let mut filter = user.clone();
    for quiet in QUIET_TARGETS.into_iter().filter(|q| !named(q)) {
        filter = filter.with_target(quiet, cap);
    }
    filter
}

fn main() -> ExitCode {
    // Two arenas for two runtime workers; the intake writer and blocking pool share them.
    beacon_common::tune_malloc(2);
    let cli = Cli::parse();
    let filter = log_filter(cli.log_level);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi),
        )
        .with(filter)
        .init();
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            let Some(path) = cli.config else {
                eprintln!("beacon-router: check-config needs --config FILE");
                return ExitCode::from(2);
            };
            match Config::load(&path) {
                Ok(_) => {
                    println!("config ok");
                    return ExitCode::SUCCESS;
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            }
        }
        Command::Run => load(cli.config.as_deref()).and_then(|c| daemon(c, cli.config)),
        Command::SendTest { receiver, resolved } => {
            load(cli.config.as_deref()).and_then(|c| send_test(c, &receiver, resolved))
        }
        Command::DeadLetters { action } => {
            load(cli.config.as_deref()).and_then(|c| dead_letters(&c, action))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("beacon-router: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The config file, or the built-in defaults.
fn load(path: Option<&Path>) -> anyhow::Result<Loaded> {
    let loaded = match path {
        Some(p) => Config::load(p)?,
        None => Config::default().build()?,
    };
    Ok(loaded)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("start the async runtime")
}

fn store_file(config: &Loaded) -> PathBuf {
    config.storage_path.join("router.redb")
}

/// The configured store: Redis when `storage.redis` is set, else the embedded file.
fn open_store(config: &Loaded) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(r) = &config.redis {
        let store = RedisStore::open(RedisConfig {
            password: r.password.clone(),
            username: r.username.clone(),
            prefix: r.key_prefix.clone(),
            idle_timeout: r.claim_after,
            replicas: r.min_replicas.map_or(Replicas::Auto, Replicas::AtLeast),
            wait_timeout: r.wait_timeout,
            cluster: r.cluster,
            sentinel_password: r.sentinel_password.clone(),
            ..RedisConfig::new(r.url.clone())
        })?;
        tracing::info!(redis = %store.location(), consumer = %store.consumer(), "sharing state through redis");
        return Ok(Arc::new(store));
    }
    std::fs::create_dir_all(&config.storage_path)
        .with_context(|| format!("create storage.path {}", config.storage_path.display()))?;
    Ok(Arc::new(EmbeddedStore::open(&store_file(config))?))
}

fn daemon(config: Loaded, config_path: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = open_store(&config)?;
    let listen = config.listen;
    let rt = runtime()?;
    rt.block_on(async move {
        let app = App::new(store, config, config_path)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listen on {listen}"))?;
        tracing::info!(address = %listener.local_addr()?, destinations = app.active().destinations.len(), "beacon-router listening");
        tokio::spawn(reload_on_sighup(app.clone()));
        beacon_router::server::run(app, listener, terminated()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn reload_on_sighup(app: Arc<App>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload with POST /-/reload");
        return;
    };
    while hup.recv().await.is_some() {
        let a = app.clone();
        // The outcome is logged and counted by `reload`.
        let _ = tokio::task::spawn_blocking(move || a.reload()).await;
    }
}

async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot install the SIGTERM handler");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A sample group for `send-test`.
fn sample(receiver: &str, resolved: bool) -> Group {
    let status = if resolved {
        Status::Resolved
    } else {
        Status::Firing
    };
    let labels: LabelSet = [
        ("alertname", "BeaconRouterTest"),
        ("severity", "info"),
        ("instance", "beacon-router"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut annotations = LabelSet::new();
    annotations.insert(
        "summary".into(),
        format!("Test notification from beacon-router send-test for receiver {receiver}"),
    );
    let key = format!("beacon-router/send-test/{receiver}");
    Group {
        receiver: Some(receiver.to_string()),
        common_labels: labels.clone(),
        common_annotations: annotations.clone(),
        alerts: vec![Alert {
            status,
            labels,
            annotations,
            starts_at: Some(
                humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            ),
            ends_at: None,
            generator_url: None,
            fingerprint: "beacon-send-test".into(),
        }],
        ..Group::empty(Source::Alertmanager, key.clone(), status, key)
    }
}

fn send_test(config: Loaded, receiver: &str, resolved: bool) -> anyhow::Result<ExitCode> {
    if config.receiver(receiver).is_none() {
        let names: Vec<&str> = config.receivers.iter().map(|r| r.name.as_str()).collect();
        bail!(
            "no receiver named {receiver:?} (receivers: {})",
            names.join(", ")
        );
    }
    let client = beacon_router::notify::client(beacon_router::app::SEND_TIMEOUT)
        .map_err(anyhow::Error::msg)?;
    let active = Active::new(config, &client);
    let group = sample(receiver, resolved);
    let rt = runtime()?;
    let mut failed = 0;
    let mut sent = 0;
    for (name, dest) in active
        .destinations
        .iter()
        .filter(|(_, d)| d.receiver == receiver)
    {
        let attempt = Attempt {
            group: &group,
            templates: dest.templates.as_ref(),
            thread: None,
            digest: false,
        };
        match rt.block_on(dest.notifier.send(attempt)) {
            Ok(s) => {
                sent += 1;
                match s.template_error {
                    Some(e) => println!("{name}: sent (custom template failed, default used: {e})"),
                    None => println!("{name}: sent"),
                }
            }
            Err(e) => {
                failed += 1;
                println!("{name}: FAILED: {e}");
            }
        }
    }
    if sent + failed == 0 {
        println!("receiver {receiver} has no integrations: nothing to send");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn dead_letters(config: &Loaded, action: DeadLetterAction) -> anyhow::Result<ExitCode> {
    let opened = if config.redis.is_some() {
        // Redis is shared: open it like another replica would.
        open_store(config).map_err(|e| StoreError::Open {
            location: "redis".into(),
            detail: format!("{e:#}"),
        })
    } else {
        EmbeddedStore::open(&store_file(config)).map(|s| Arc::new(s) as Arc<dyn Store>)
    };
    match opened {
        Ok(store) => {
            match action {
                DeadLetterAction::List { json } => print_list(&admin::list(store.as_ref())?, json)?,
                DeadLetterAction::Replay { ids, all } => {
                    print_replayed(&admin::replay(store.as_ref(), &ReplayRequest { ids, all })?)
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        // A running router holds the file: ask it.
        Err(StoreError::Open { detail, .. }) if detail.contains("already open") => {
            via_daemon(config.listen, action)
        }
        Err(e) => Err(e.into()),
    }
}

fn print_list(list: &[admin::DeadLetterView], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(list)?);
    } else {
        print!("{}", admin::format_list(list));
    }
    Ok(())
}

fn print_replayed(done: &[admin::Replayed]) {
    for r in done {
        println!("dead letter {} queued again as {}", r.id, r.queued_as);
    }
    if done.is_empty() {
        println!("nothing to replay");
    }
}

fn via_daemon(listen: SocketAddr, action: DeadLetterAction) -> anyhow::Result<ExitCode> {
    let port = listen.port();
    let base = format!("http://127.0.0.1:{port}/api/v1/dead-letters");
    let rt = runtime()?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let resp = match &action {
            DeadLetterAction::List { .. } => client.get(&base).send().await,
            DeadLetterAction::Replay { ids, all } => {
                let req = ReplayRequest {
                    ids: ids.clone(),
                    all: *all,
                };
                client
                    .post(format!("{base}/replay"))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(&req)?)
                    .send()
                    .await
            }
        }
        .with_context(|| {
            format!("the store is in use and the running router at 127.0.0.1:{port} did not answer")
        })?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("router answered {status}: {}", body.trim());
        }
        match action {
            DeadLetterAction::List { json } => print_list(
                &serde_json::from_str::<Vec<admin::DeadLetterView>>(&body)?,
                json,
            )?,
            DeadLetterAction::Replay { .. } => {
                print_replayed(&serde_json::from_str::<Vec<admin::Replayed>>(&body)?)
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(filter: &Targets, target: &str) -> bool {
        filter.would_enable(target, &tracing::Level::DEBUG)
    }

    #[test]
    fn http_crates_stay_quiet_unless_named() {
        let f = log_filter(parse_log_filter("debug").unwrap_or_else(|e| panic!("{e}")));
        assert!(level(&f, "beacon_router::delivery"));
        assert!(!level(&f, "reqwest::connect") && !level(&f, "hyper_util::client"));
        let f = log_filter(
            parse_log_filter("beacon_router=debug,reqwest=debug").unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(level(&f, "beacon_router::delivery") && level(&f, "reqwest::connect"));
        assert!(!level(&f, "hyper_util::client") && !level(&f, "redb"));
        let f = log_filter(parse_log_filter("trace,hyper=trace").unwrap_or_else(|e| panic!("{e}")));
        assert!(level(&f, "hyper_util::client::legacy") && !level(&f, "rustls::client"));
        assert!(parse_log_filter("beacon_router=loud").is_err());
    }
}
