//! beacon-agent: host metrics in node_exporter's exact format.
//!
//! `run` serves `/metrics` from a `Scraper` until `shutdown` resolves. The binary (`main.rs`)
//! only parses flags and calls into here, so tests run the real server in-process.

pub mod collector;
pub mod collectors;
pub mod config;
pub mod cpuinfo;
pub mod error;
pub mod filter;
pub mod flags;
pub mod glob;
pub mod gonum;
pub mod http;
pub mod metrics;
pub mod process;
pub mod read;
pub mod rtnetlink;
pub mod scrape;
pub mod sysfs;
#[cfg(feature = "telemetry")]
pub mod telemetry;
pub mod textmerge;
pub mod textparse;
pub mod upstream;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Config;
pub use http::{app, TEXT_FORMAT};
pub use scrape::Scraper;

/// Serves the agent on `listener` until `shutdown` completes; with a `telemetry:` section, also
/// pushes telemetry (on its own thread) and waits for it to say goodbye before returning.
pub async fn run(
    cfg: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let scraper = Arc::new(Scraper::new(&cfg));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let telemetry = start_telemetry(&cfg, &scraper, stop_rx.clone())?;
    tracing::info!(
        address = %listener.local_addr()?,
        collectors = ?scraper.collector_names(),
        "beacon-agent listening"
    );
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut http_stop = stop_rx;
    axum::serve(listener, app(scraper))
        .with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|s| *s).await;
        })
        .await?;
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
