//! beacon-agent: host metrics in node_exporter's exact format.
//!
//! `run` serves `/metrics` from a `Scraper` until `shutdown` resolves. The binary (`main.rs`)
//! only parses flags and calls into here, so tests run the real server in-process.

pub mod collectors;
pub mod config;
pub mod metrics;
pub mod read;
pub mod scrape;

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

pub use config::Config;
pub use scrape::Scraper;

/// Content type of Prometheus text format 0.0.4.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The HTTP application: `/metrics`, `/healthz` and a landing page.
pub fn app(scraper: Arc<Scraper>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/", get(landing))
        .with_state(scraper)
}

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

async fn landing() -> Html<&'static str> {
    Html(concat!(
        "<html><head><title>beacon-agent</title></head><body><h1>beacon-agent ",
        env!("CARGO_PKG_VERSION"),
        "</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n"
    ))
}

/// Whether the client accepts gzip (Prometheus sends `Accept-Encoding: gzip`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

async fn metrics(State(scraper): State<Arc<Scraper>>, headers: HeaderMap) -> Response {
    let gzip = accepts_gzip(&headers);
    let rendered = tokio::task::spawn_blocking(move || {
        let text = scraper.scrape();
        if !gzip {
            return Ok::<_, std::io::Error>(text.into_bytes());
        }
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(text.len() / 4),
            flate2::Compression::fast(),
        );
        enc.write_all(text.as_bytes())?;
        enc.finish()
    })
    .await;
    match rendered {
        Ok(Ok(body)) => {
            let mut resp = (StatusCode::OK, body).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
            if gzip {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            resp
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "compressing metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "compressing metrics failed\n",
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "scrape task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "scrape failed\n").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("deflate, GZIP;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
    }
}
