//! beacon-agent: host metrics in node_exporter's exact format.
//!
//! `run` serves `/metrics` from a `Scraper` until `shutdown` resolves. The binary (`main.rs`)
//! only parses flags and calls into here, so tests run the real server in-process.

pub mod collectors;
pub mod config;
pub mod http;
pub mod metrics;
pub mod read;
pub mod scrape;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Config;
pub use http::{app, TEXT_FORMAT};
pub use scrape::Scraper;

/// Serves the agent on `listener` until `shutdown` completes.
pub async fn run(
    cfg: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let scraper = Arc::new(Scraper::new(&cfg));
    tracing::info!(
        address = %listener.local_addr()?,
        collectors = ?scraper.collector_names(),
        "beacon-agent listening"
    );
    axum::serve(listener, app(scraper))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
