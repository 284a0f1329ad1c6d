//! The HTTP face of the agent: the metrics endpoint (`--web.telemetry-path`, default
//! `/metrics`), `/healthz` and a landing page.
//!
//! Concurrent scrapes share one collection. A request is answered by a collection that started
//! after the request arrived — never by older data — so two Prometheus servers scraping at the
//! same moment cost one collection, and a burst of scrapers cannot pile up blocking threads
//! (each with its own malloc arena) or read procfs N times over.
//!
//! The collection runs on the runtime's own thread, not on tokio's blocking pool: it takes a
//! few hundred microseconds of CPU, and handing it to a blocking thread and back cost two thread
//! wake-ups per scrape, about 16% of the agent's CPU per scrape. What could block it for longer
//! (statfs of a hung network mount) runs on the filesystem collector's worker and is bounded by
//! `mount_timeout`, once per newly hung mount; until then the runtime waits with it, and so
//! would every scrape, which shares the collection anyway.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::config::web::WebSettings;
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
    /// One deflate state for every scrape: allocating it afresh each time (a few hundred KiB,
    /// mapped and unmapped by malloc) cost more CPU than compressing.
    deflate: std::sync::Mutex<flate2::Compress>,
    /// Scrapes being answered now, and the most allowed (`--web.max-requests`; 0: no limit).
    in_flight: AtomicUsize,
    max_requests: usize,
}

/// The HTTP application with node_exporter's defaults.
pub fn app(scraper: Arc<Scraper>) -> Router {
    app_with(scraper, &WebSettings::default())
}

/// The HTTP application for the `web:` settings (path and request limit).
pub fn app_with(scraper: Arc<Scraper>, web: &WebSettings) -> Router {
    let shared = Arc::new(Shared {
        scraper,
        latest: tokio::sync::Mutex::new(None),
        deflate: std::sync::Mutex::new(flate2::Compress::new(flate2::Compression::fast(), false)),
        in_flight: AtomicUsize::new(0),
        max_requests: web.max_requests,
    });
    let path = web.telemetry_path.as_str();
    let mut router = Router::new()
        .route(path, get(metrics))
        .route("/healthz", get(|| async { "ok\n" }));
    // As node_exporter: no landing page when the metrics are served at `/`.
    if path != "/" {
        let page = Bytes::from(landing_page(path));
        router = router.route("/", get(move || async move { Html(page.clone()) }));
    }
    router.with_state(shared)
}

fn landing_page(metrics_path: &str) -> String {
    let href = metrics_path
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    format!(
        "<html><head><title>beacon-agent</title></head><body><h1>beacon-agent {}</h1><p><a href=\"{href}\">Metrics</a></p></body></html>\n",
        env!("CARGO_PKG_VERSION"),
    )
}

/// One scrape's place under `--web.max-requests`, given back on drop.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    /// A place for one more scrape, or `None` when `max_requests` are being answered (promhttp's
    /// `MaxRequestsInFlight`: the request is refused at once, never queued).
    fn slot(&self) -> Option<Slot<'_>> {
        let n = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(&self.in_flight);
        (self.max_requests == 0 || n < self.max_requests).then_some(slot)
    }
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
async fn collection(shared: &Shared, arrival: Instant) -> Arc<Collection> {
    let mut latest = shared.latest.lock().await;
    if let Some(c) = latest.as_ref() {
        if c.started >= arrival {
            return c.clone();
        }
    }
    // The collection blocks this thread: let the requests already waiting on their sockets
    // arrive first (tokio runs a yielded task after polling for I/O), so they share it.
    tokio::task::yield_now().await;
    let started = Instant::now();
    let text = shared.scraper.scrape();
    let c = Arc::new(Collection {
        started,
        text: Bytes::from(text),
        gzip: OnceLock::new(),
    });
    *latest = Some(c.clone());
    c
}

/// The gzip member (RFC 1952) of `text`: a fixed header, raw deflate from the reused `deflate`
/// state, then CRC-32 and length.
fn gzip(deflate: &mut flate2::Compress, text: &[u8]) -> Result<Bytes, String> {
    // ID1 ID2, CM=deflate, no flags, no mtime, XFL 0, OS unknown (as flate2's GzEncoder writes).
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    deflate.reset();
    let mut out = Vec::with_capacity(text.len() / 4 + HEADER.len() + 8);
    out.extend_from_slice(&HEADER);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.len() / 2 + 1024);
        }
        let consumed = usize::try_from(deflate.total_in()).unwrap_or(text.len());
        let status = deflate
            .compress_vec(
                text.get(consumed..).unwrap_or(&[]),
                &mut out,
                flate2::FlushCompress::Finish,
            )
            .map_err(|e| format!("compress metrics: {e}"))?;
        if status == flate2::Status::StreamEnd {
            break;
        }
    }
    let mut crc = flate2::Crc::new();
    crc.update(text);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the length modulo 2^32 (the truncation is the format's).
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    Ok(Bytes::from(out))
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let arrival = Instant::now();
    let Some(_slot) = shared.slot() else {
        // promhttp's answer, word for word (Go's http.Error adds the newline and headers).
        let mut r = (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Limit of concurrent requests reached ({}), try again later.\n",
                shared.max_requests
            ),
        )
            .into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        return r;
    };
    let want_gzip = accepts_gzip(&headers);
    let c = collection(&shared, arrival).await;
    let mut resp = if want_gzip {
        let compressed = c.gzip.get_or_init(|| {
            let mut deflate = shared.deflate.lock().unwrap_or_else(|p| p.into_inner());
            gzip(&mut deflate, &c.text)
        });
        match compressed {
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

    #[tokio::test]
    async fn over_max_requests_is_answered_503_as_promhttp_does() {
        let shared = Arc::new(Shared {
            scraper: Arc::new(Scraper::new(&crate::Config::default())),
            latest: tokio::sync::Mutex::new(None),
            deflate: std::sync::Mutex::new(flate2::Compress::new(
                flate2::Compression::fast(),
                false,
            )),
            in_flight: AtomicUsize::new(0),
            max_requests: 2,
        });
        let first = shared.slot().expect("first of two");
        let second = shared.slot().expect("second of two");
        let r = metrics(State(shared.clone()), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(r.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(
            &body[..],
            b"Limit of concurrent requests reached (2), try again later.\n"
        );
        drop(first);
        let r = metrics(State(shared.clone()), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::OK);
        drop(second);
        assert_eq!(
            shared.in_flight.load(Ordering::Relaxed),
            0,
            "slots given back"
        );
    }

    #[test]
    fn no_limit_with_max_requests_0() {
        let shared = Shared {
            scraper: Arc::new(Scraper::new(&crate::Config::default())),
            latest: tokio::sync::Mutex::new(None),
            deflate: std::sync::Mutex::new(flate2::Compress::new(
                flate2::Compression::fast(),
                false,
            )),
            in_flight: AtomicUsize::new(0),
            max_requests: 0,
        };
        let slots: Vec<_> = (0..100).map(|_| shared.slot().expect("slot")).collect();
        assert_eq!(slots.len(), 100);
    }

    #[test]
    fn gzip_round_trips_and_the_state_is_reused() {
        use std::io::Read as _;
        let mut deflate = flate2::Compress::new(flate2::Compression::fast(), false);
        for text in [&b""[..], b"node_load1 0.5\n", &b"x".repeat(300_000)] {
            let gz = gzip(&mut deflate, text).expect("gzip");
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .expect("valid gzip");
            assert_eq!(back, text);
        }
    }
}
