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

use crate::scrape::Scraper;

/// Content type of Prometheus text format 0.0.4.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One finished collection, shared by every request it can answer.
struct Collection {
    started: Instant,
    text: Bytes,
    /// The gzip form, made on first request for it.
    gzip: OnceLock<Result<Bytes, String>>,
    /// The OpenMetrics form and its gzip form, made on first request for them.
    openmetrics: OnceLock<Bytes>,
    openmetrics_gzip: OnceLock<Result<Bytes, String>>,
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
    /// Whether OpenMetrics is offered (`web.openmetrics`).
    openmetrics: bool,
    /// The config the scraper was built from, for `collect[]`/`exclude[]` scrapers.
    config: crate::Config,
    /// Scrapers for `collect[]`/`exclude[]` filters, by sorted collector list.
    filtered: std::sync::Mutex<std::collections::HashMap<Vec<&'static str>, Arc<Scraper>>>,
}

/// The HTTP application with node_exporter's defaults.
pub fn app(scraper: Arc<Scraper>) -> Router {
    app_with(scraper, &crate::Config::default())
}

/// The HTTP application for `cfg`, the config `scraper` was built from (its `web:` settings:
/// path, request limit, OpenMetrics; its collectors for `collect[]`/`exclude[]`).
pub fn app_with(scraper: Arc<Scraper>, cfg: &crate::Config) -> Router {
    let web = &cfg.web;
    let shared = Arc::new(Shared::new(scraper, cfg));
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
    /// The state for `cfg`'s `web:` settings, serving collections of `scraper`.
    fn new(scraper: Arc<Scraper>, cfg: &crate::Config) -> Self {
        Shared {
            scraper,
            latest: tokio::sync::Mutex::new(None),
            deflate: std::sync::Mutex::new(flate2::Compress::new(
                flate2::Compression::fast(),
                false,
            )),
            in_flight: AtomicUsize::new(0),
            max_requests: cfg.web.max_requests,
            openmetrics: cfg.web.openmetrics,
            config: cfg.clone(),
            filtered: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

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
        openmetrics: OnceLock::new(),
        openmetrics_gzip: OnceLock::new(),
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

async fn metrics(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
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
    // Without `web.openmetrics` the Accept header is not even read: node_exporter's answer.
    let format = if shared.openmetrics {
        negotiate(&headers)
    } else {
        Format::Text
    };
    let c = match uri.query() {
        None => collection(&shared, arrival).await,
        // node_exporter's `collect[]`/`exclude[]`: a scrape of some collectors only.
        Some(q) => match filtered(&shared, q) {
            Ok(None) => collection(&shared, arrival).await,
            Ok(Some(scraper)) => Arc::new(Collection {
                started: arrival,
                text: Bytes::from(scraper.scrape()),
                gzip: OnceLock::new(),
                openmetrics: OnceLock::new(),
                openmetrics_gzip: OnceLock::new(),
            }),
            Err(msg) => return (StatusCode::BAD_REQUEST, msg).into_response(),
        },
    };
    let (body, gz_cell) = match format {
        Format::Text => (&c.text, &c.gzip),
        Format::OpenMetrics1 | Format::OpenMetrics0 => (
            c.openmetrics.get_or_init(|| {
                let text = std::str::from_utf8(&c.text).unwrap_or_default();
                let mut om = String::new();
                crate::metrics::text_to_openmetrics(text, &mut om);
                Bytes::from(om)
            }),
            &c.openmetrics_gzip,
        ),
    };
    let mut resp = if want_gzip {
        let compressed = gz_cell.get_or_init(|| {
            let mut deflate = shared.deflate.lock().unwrap_or_else(|p| p.into_inner());
            gzip(&mut deflate, body)
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
        body.clone().into_response()
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}

/// The scraper for a `collect[]`/`exclude[]` query, as node_exporter's handler builds a filtered
/// collector on the fly: `None` without either parameter; its 400 text for both at once, or
/// for a `collect[]` name that is not an enabled collector. Filtered scrapers are kept (a few;
/// a Prometheus job sends the same filter every time), so building one is paid once.
fn filtered(shared: &Shared, query: &str) -> Result<Option<Arc<Scraper>>, String> {
    let mut collect = Vec::new();
    let mut exclude = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(k).as_str() {
            "collect[]" => collect.push(percent_decode(v)),
            "exclude[]" => exclude.push(percent_decode(v)),
            _ => {}
        }
    }
    if collect.is_empty() && exclude.is_empty() {
        return Ok(None);
    }
    if !collect.is_empty() && !exclude.is_empty() {
        return Err("Combined collect and exclude queries are not allowed.".to_owned());
    }
    let enabled = shared.scraper.collector_names();
    let mut keep: Vec<&'static str> = if collect.is_empty() {
        enabled
            .iter()
            .copied()
            .filter(|c| !exclude.iter().any(|e| e == c))
            .collect()
    } else {
        let mut keep = Vec::new();
        for c in &collect {
            let why = match enabled.iter().find(|e| *e == c) {
                Some(name) => {
                    keep.push(*name);
                    continue;
                }
                None if crate::collectors::names().any(|n| n == c) => "disabled collector",
                None => "missing collector",
            };
            return Err(format!(
                "Couldn't create filtered metrics handler: couldn't create collector: {why}: {c}"
            ));
        }
        keep
    };
    keep.sort_unstable();
    keep.dedup();
    let mut cache = shared.filtered.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = cache.get(&keep) {
        return Ok(Some(s.clone()));
    }
    let mut cfg = shared.config.clone();
    for name in crate::collectors::names() {
        // Every registered name is known, so this cannot fail.
        let _ = cfg.collectors.set_enabled(
            name,
            keep.contains(&name),
            crate::config::collectors::Origin::Default,
        );
    }
    let scraper = Arc::new(Scraper::new(&cfg));
    if cache.len() >= FILTERED_KEPT {
        // Arbitrary eviction: more distinct filters than this is not a steady state.
        if let Some(k) = cache.keys().next().cloned() {
            cache.remove(&k);
        }
    }
    cache.insert(keep, scraper.clone());
    Ok(Some(scraper))
}

/// How many filtered scrapers are kept.
const FILTERED_KEPT: usize = 8;

/// `application/x-www-form-urlencoded` decoding of one key or value (`+` is a space).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The exposition formats the agent serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics1,
    /// OpenMetrics 0.0.1 (the same text; Prometheus before 2.x's OpenMetrics 1.0 asked for it).
    OpenMetrics0,
}

impl Format {
    /// The `Content-Type` promhttp sends for it.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_FORMAT,
            Format::OpenMetrics1 => crate::metrics::OPENMETRICS_FORMAT,
            Format::OpenMetrics0 => "application/openmetrics-text; version=0.0.1; charset=utf-8",
        }
    }

    /// Type, subtype and version, as `expfmt.matchFormat` compares them.
    fn media(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Format::Text => ("text", "plain", "0.0.4"),
            Format::OpenMetrics1 => ("application", "openmetrics-text", "1.0.0"),
            Format::OpenMetrics0 => ("application", "openmetrics-text", "0.0.1"),
        }
    }
}

/// prometheus/common's `NegotiateIncludingOpenMetrics` without the protobuf formats: the Accept
/// entries by falling `q` (concrete types before wildcards, as goautoneg sorts them), each
/// compared with OpenMetrics 1.0.0, 0.0.1 and text 0.0.4 in that order by type, subtype and
/// `version` (defaulting to 0.0.1 for OpenMetrics and 0.0.4 for text); text when none matches.
pub fn negotiate(headers: &HeaderMap) -> Format {
    struct Accept<'a> {
        ty: &'a str,
        sub: &'a str,
        version: Option<&'a str>,
        q: f32,
    }
    let mut accepts: Vec<Accept<'_>> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| {
            let mut params = part.split(';');
            let (ty, sub) = params.next()?.trim().split_once('/')?;
            let mut a = Accept {
                ty: ty.trim(),
                sub: sub.trim(),
                version: None,
                q: 1.0,
            };
            for p in params {
                match p.trim().split_once('=') {
                    Some(("q", q)) => a.q = q.trim().parse().unwrap_or(0.0),
                    Some(("version", v)) => a.version = Some(v.trim().trim_matches('"')),
                    _ => {}
                }
            }
            (a.q > 0.0).then_some(a)
        })
        .collect();
    accepts.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then((a.ty == "*").cmp(&(b.ty == "*")))
            .then((a.sub == "*").cmp(&(b.sub == "*")))
    });
    for a in &accepts {
        for f in [Format::OpenMetrics1, Format::OpenMetrics0, Format::Text] {
            let (ty, sub, version) = f.media();
            if a.ty == "*" && a.sub == "*" {
                return f;
            }
            if (a.ty != "*" && !a.ty.eq_ignore_ascii_case(ty))
                || (a.sub != "*" && !a.sub.eq_ignore_ascii_case(sub))
            {
                continue;
            }
            let default = if a.ty.eq_ignore_ascii_case(ty) && a.sub.eq_ignore_ascii_case(sub) {
                Some(version_default(f))
            } else {
                None
            };
            if a.version.or(default) == Some(version) {
                return f;
            }
        }
    }
    Format::Text
}

fn version_default(f: Format) -> &'static str {
    match f {
        Format::Text => "0.0.4",
        Format::OpenMetrics1 | Format::OpenMetrics0 => "0.0.1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_negotiation_as_prometheus_asks() {
        let accept = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            negotiate(&h)
        };
        // Prometheus 2.x's default scrape Accept header.
        assert_eq!(
            accept("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::OpenMetrics1
        );
        // Prometheus 3.x's.
        assert_eq!(
            accept("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"),
            Format::OpenMetrics1
        );
        // Text preferred by q, whatever the order.
        assert_eq!(
            accept(
                "application/openmetrics-text;version=1.0.0;q=0.2,text/plain;version=0.0.4;q=0.9"
            ),
            Format::Text
        );
        assert_eq!(
            accept("application/openmetrics-text;q=0.9"),
            Format::OpenMetrics0
        );
        // Protobuf only (not served): text, promhttp's fallback.
        assert_eq!(
            accept("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"),
            Format::Text
        );
        assert_eq!(accept("text/plain;version=1.0.0"), Format::Text);
        assert_eq!(negotiate(&HeaderMap::new()), Format::Text);
    }

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

    /// The default config's state with `--web.max-requests=max`.
    fn limited(max: usize) -> Shared {
        let mut cfg = crate::Config::default();
        cfg.web.max_requests = max;
        Shared::new(Arc::new(Scraper::new(&cfg)), &cfg)
    }

    #[tokio::test]
    async fn over_max_requests_is_answered_503_as_promhttp_does() {
        let shared = Arc::new(limited(2));
        let first = shared.slot().expect("first of two");
        let second = shared.slot().expect("second of two");
        let r = metrics(
            State(shared.clone()),
            "/metrics".parse().expect("uri"),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(r.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(
            &body[..],
            b"Limit of concurrent requests reached (2), try again later.\n"
        );
        drop(first);
        let r = metrics(
            State(shared.clone()),
            "/metrics".parse().expect("uri"),
            HeaderMap::new(),
        )
        .await;
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
        let shared = limited(0);
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
