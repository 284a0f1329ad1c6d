//! beacon-agent: host metrics in node_exporter's exact format.
//!
//! `run` serves `/metrics` from a `Scraper` until `shutdown` resolves, on one listener or
//! (`run_on`) several, over TLS and with basic auth when `web.config_file` says so. The binary
//! (`main.rs`) only parses flags and binds, and calls into here, so tests run the real server
//! in-process.

pub mod collector;
pub mod collectors;
pub mod config;
pub mod cpuinfo;
pub mod error;
pub mod ethtool;
pub mod filter;
pub mod flags;
pub mod glob;
pub mod gonum;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod mountinfo;
pub mod process;
pub mod read;
pub mod rtnetlink;
pub mod scrape;
pub mod statfs;
pub mod sysfs;
#[cfg(feature = "telemetry")]
pub mod telemetry;
pub mod textmerge;
pub mod textparse;
pub mod tls;
pub mod upstream;
pub mod web;
pub mod web_config;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Config;
pub use http::{app, app_with, TEXT_FORMAT};
pub use scrape::Scraper;

/// Serves the agent on `listener` until `shutdown` completes; with a `telemetry:` section, also
/// pushes telemetry (on its own thread) and waits for it to say goodbye before returning.
pub async fn run(
    cfg: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_on(cfg, vec![listener], shutdown).await
}

/// `run` on every listener (each `--web.listen-address`, or systemd's sockets).
pub async fn run_on(
    cfg: Config,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // A broken web config stops the start, as in node_exporter.
    let web = match &cfg.web.config_file {
        Some(p) => Some(Arc::new(web_config::Reloader::new(p)?)),
        None => None,
    };
    let tls = match &web {
        Some(w) => w.current().map_err(anyhow::Error::msg)?.tls.is_some(),
        None => false,
    };
    let scraper = Arc::new(Scraper::new(&cfg));
    let mut router = app_with(scraper.clone(), &cfg);
    if let Some(w) = &web {
        router = router.layer(axum::middleware::from_fn_with_state(
            web::WebLayer::new(w.clone())?,
            web::layer,
        ));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let telemetry = start_telemetry(&cfg, &scraper, stop_rx.clone())?;
    tracing::info!(collectors = ?scraper.collector_names(), "beacon-agent starting");
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        tracing::info!(address = %listener.local_addr()?, tls, "beacon-agent listening");
        let mut http_stop = stop_rx.clone();
        let stopped = async move {
            let _ = http_stop.wait_for(|s| *s).await;
        };
        let router = router.clone();
        match &web {
            // Plain HTTP is axum's own TCP server, untouched by TLS.
            Some(w) if tls => {
                let l = tls::TlsListener {
                    tcp: listener,
                    web: w.clone(),
                };
                servers.spawn(async move {
                    axum::serve(l, router).with_graceful_shutdown(stopped).await
                });
            }
            _ => {
                servers.spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(stopped)
                        .await
                });
            }
        }
    }
    while let Some(done) = servers.join_next().await {
        done??;
    }
    if let Some(t) = telemetry {
        // The telemetry thread bounds its own goodbye; join off the async thread.
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    Ok(())
}

#[cfg(feature = "telemetry")]
fn start_telemetry(
    cfg: &Config,
    scraper: &Arc<Scraper>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    match &cfg.telemetry {
        Some(t) => Ok(Some(telemetry::start(t, scraper.clone(), stop)?)),
        None => Ok(None),
    }
}

#[cfg(not(feature = "telemetry"))]
fn start_telemetry(
    _cfg: &Config,
    _scraper: &Arc<Scraper>,
    _stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    // Validation rejects a `telemetry:` section in this build.
    Ok(None)
}
