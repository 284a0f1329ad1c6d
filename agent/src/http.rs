//! The HTTP face of the agent: `/metrics`, `/healthz` and a landing page.
//!
//! Concurrent scrapes share one collection. A request is answered by a collection that started
//! after the request arrived — never by older data — so two Prometheus servers scraping at the
//! same moment cost one collection, and a burst of scrapers cannot pile up blocking threads
//! (each with its own malloc arena) or read procfs N times over.

use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::scrape::Scraper;

/// Content type of Prometheus text format 0.0.4.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One finished collection, shared by every request it can answer.
struct Collection {
    started: Instant,
    text: Bytes,
    /// The gzip form, made on first request for it.
    gzip: OnceLock<Result<Bytes, String>>,
}

/// State behind the routes.
struct Shared {
    scraper: Arc<Scraper>,
    /// The latest collection; the lock also makes collections run one at a time.
    latest: tokio::sync::Mutex<Option<Arc<Collection>>>,
}

/// The HTTP application.
pub fn app(scraper: Arc<Scraper>) -> Router {
    let shared = Arc::new(Shared {
        scraper,
        latest: tokio::sync::Mutex::new(None),
    });
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/", get(landing))
        .with_state(shared)
}

async fn landing() -> Html<&'static str> {
    Html(concat!(
        "<html><head><title>beacon-agent</title></head><body><h1>beacon-agent ",
        env!("CARGO_PKG_VERSION"),
        "</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n"
    ))
}

/// Whether the client accepts gzip (Prometheus sends `Accept-Encoding: gzip`).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
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

/// Returns a collection that started no earlier than `arrival`, running one if needed.
async fn collection(shared: &Shared, arrival: Instant) -> Result<Arc<Collection>, String> {
    let mut latest = shared.latest.lock().await;
    if let Some(c) = latest.as_ref() {
        if c.started >= arrival {
            return Ok(c.clone());
        }
    }
    let scraper = shared.scraper.clone();
    let started = Instant::now();
    let text = tokio::task::spawn_blocking(move || scraper.scrape())
        .await
        .map_err(|e| format!("scrape task failed: {e}"))?;
    let c = Arc::new(Collection {
        started,
        text: Bytes::from(text),
        gzip: OnceLock::new(),
    });
    *latest = Some(c.clone());
    Ok(c)
}

fn gzip(text: &[u8]) -> Result<Bytes, String> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(text)
        .and_then(|()| enc.finish())
        .map(Bytes::from)
        .map_err(|e| format!("compress metrics: {e}"))
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let arrival = Instant::now();
    let want_gzip = accepts_gzip(&headers);
    let c = match collection(&shared, arrival).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "scrape failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "scrape failed\n").into_response();
        }
    };
    let mut resp = if want_gzip {
        match c.gzip.get_or_init(|| gzip(&c.text)) {
            Ok(bytes) => {
                let mut r = bytes.clone().into_response();
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            Err(e) => {
                tracing::error!(error = %e, "compressing metrics failed");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "compressing metrics failed\n",
                )
                    .into_response();
            }
        }
    } else {
        c.text.clone().into_response()
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    resp
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
