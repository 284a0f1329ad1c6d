//! The InfluxDB 2 sink: line protocol batches from the spool to `/api/v2/write` with reqwest
//! (the `influxdb2` crate is stale: old reqwest, no retries).
//!
//! 204 acknowledges the batch. 429 and 503 wait `Retry-After` (or back off); 413 splits the
//! batch in two, recursively, down to single lines; 400 drops the batch (it would never
//! succeed) with a log line carrying the server's message, which names the bad line; other
//! failures (no answer within `timeout`, connection errors, other 5xx, 401/403/404) retry with
//! capped exponential backoff and count the batch's points as failed. A partly written batch
//! that is retried writes some points twice: InfluxDB treats a point with the same series and
//! timestamp as an overwrite, so that is harmless.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use tokio::sync::watch;

use super::{backoff, stopped, SinkShared};
use crate::config::telemetry::InfluxConfig;
use beacon_common::secret::Secret;

const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The InfluxDB sink's worker.
#[derive(Debug)]
pub struct Worker {
    client: reqwest::Client,
    url: reqwest::Url,
    token: Option<Secret>,
    batch_size: usize,
    flush_interval: Duration,
    gzip: bool,
    /// `telemetry.influxdb.timeout`: a request without an answer by then is retried.
    timeout: Duration,
    min_gap: Duration,
    shared: Arc<SinkShared>,
}

/// What one write request came back with.
#[derive(Debug)]
enum Outcome {
    Written,
    /// 400: the batch can never succeed.
    Rejected(String),
    /// 413.
    TooLarge,
    /// Anything worth retrying, with the server's wait if it gave one.
    Retry(String, Option<Duration>),
}

impl Worker {
    /// Builds the client; reads the token file.
    pub fn new(
        cfg: &InfluxConfig,
        replay_rate: u32,
        shared: Arc<SinkShared>,
    ) -> anyhow::Result<Worker> {
        let token = match &cfg.token_file {
            Some(p) => Some(Secret::from_file(p).context("telemetry.influxdb.token_file")?),
            None => None,
        };
        let mut url = reqwest::Url::parse(cfg.url.trim_end_matches('/'))
            .with_context(|| format!("telemetry.influxdb.url {:?}", cfg.url))?;
        url.set_path(&format!(
            "{}/api/v2/write",
            url.path().trim_end_matches('/')
        ));
        url.query_pairs_mut()
            .append_pair("org", &cfg.org)
            .append_pair("bucket", &cfg.bucket)
            .append_pair("precision", "ns");
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .build()
            .context("build HTTP client")?;
        Ok(Worker {
            client,
            url,
            token,
            batch_size: cfg.batch_size,
            flush_interval: cfg.flush_interval,
            gzip: cfg.gzip,
            timeout: cfg.timeout,
            min_gap: Duration::from_secs_f64(1.0 / f64::from(replay_rate.max(1))),
            shared,
        })
    }

    /// Sends spooled batches until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let name = self.shared.name;
        let mut last_send = Instant::now() - self.flush_interval;
        // After a full batch the next one goes without waiting (a backlog drains at replay_rate).
        let mut last_full = false;
        loop {
            // Wait for data; a partial batch waits out flush_interval since the last send.
            let has = self.shared.spool().has_unread();
            if !has {
                tokio::select! {
                    _ = self.shared.notify.notified() => continue,
                    _ = stopped(&mut shutdown) => return,
                }
            }
            let since = last_send.elapsed();
            if since < self.flush_interval && !last_full {
                tokio::select! {
                    _ = tokio::time::sleep(self.flush_interval - since) => {}
                    _ = stopped(&mut shutdown) => return,
                }
            }
            let batch = match self.read_batch() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(sink = name, error = %e, "spool: read failed");
                    tokio::select! {
                        _ = tokio::time::sleep(BACKOFF_CAP) => continue,
                        _ = stopped(&mut shutdown) => return,
                    }
                }
            };
            let Some((text, end, points)) = batch else {
                continue;
            };
            last_send = Instant::now();
            last_full = points >= self.batch_size as u64;
            let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
            if !self.send_all(&lines, &mut shutdown).await {
                // Shut down mid-batch: it stays spooled (read again after restart).
                return;
            }
            self.shared.ack(end, points);
            self.shared.update_gauges();
            // Bounded replay rate: a backlog goes out at most replay_rate batches a second.
            tokio::select! {
                _ = tokio::time::sleep(self.min_gap) => {}
                _ = stopped(&mut shutdown) => return,
            }
        }
    }

    /// Up to `batch_size` points from the spool: text, end cursor, points.
    fn read_batch(&self) -> std::io::Result<Option<(String, super::spool::Cursor, u64)>> {
        let mut spool = self.shared.spool();
        // Every batch is read from the ack cursor: what is not acknowledged goes again.
        spool.rewind();
        let mut text = String::new();
        let mut points = 0u64;
        let mut end = None;
        while points < self.batch_size as u64 {
            let Some(r) = spool.next_record()? else { break };
            points += u64::from(r.points);
            text.push_str(&String::from_utf8_lossy(&r.data));
            end = Some(r.end);
        }
        Ok(end.map(|e| (text, e, points)))
    }

    /// Writes `lines`, splitting on 413, until all are written or dropped. False on shutdown.
    async fn send_all(&self, lines: &[&str], shutdown: &mut watch::Receiver<bool>) -> bool {
        let name = self.shared.name;
        let m = &self.shared.metrics;
        let mut todo: std::collections::VecDeque<&[&str]> = [lines].into();
        let mut attempt = 0u32;
        while let Some(part) = todo.pop_front() {
            if part.is_empty() {
                continue;
            }
            // A hung request must not hold up shutdown: the batch stays spooled.
            let outcome = tokio::select! {
                o = self.write(part) => o,
                _ = stopped(shutdown) => return false,
            };
            let n = part.len() as u64;
            let wait = match outcome {
                Outcome::Written => {
                    m.connected.with_label_values(&[name]).set(1);
                    attempt = 0;
                    continue;
                }
                Outcome::TooLarge if part.len() > 1 => {
                    m.connected.with_label_values(&[name]).set(1);
                    let (a, b) = part.split_at(part.len() / 2);
                    tracing::info!(sink = name, lines = part.len(), "413: splitting the batch");
                    todo.push_front(b);
                    todo.push_front(a);
                    continue;
                }
                Outcome::TooLarge => {
                    tracing::error!(
                        sink = name,
                        line = part[0],
                        "413 for a single line: dropped"
                    );
                    m.dropped.with_label_values(&[name, "too_large"]).inc_by(n);
                    continue;
                }
                Outcome::Rejected(msg) => {
                    m.connected.with_label_values(&[name]).set(1);
                    tracing::error!(
                        sink = name,
                        server = %msg,
                        first_line = part[0],
                        points = n,
                        "400: InfluxDB rejected the batch; dropped (it would never succeed)"
                    );
                    m.dropped.with_label_values(&[name, "rejected"]).inc_by(n);
                    continue;
                }
                Outcome::Retry(why, retry_after) => {
                    m.failed.with_label_values(&[name]).inc_by(n);
                    let wait =
                        retry_after.unwrap_or_else(|| backoff(attempt, BACKOFF_BASE, BACKOFF_CAP));
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(sink = name, error = %why, retry_in = ?wait, "write failed; retrying");
                    wait
                }
            };
            todo.push_front(part);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(shutdown) => return false,
            }
        }
        true
    }

    async fn write(&self, lines: &[&str]) -> Outcome {
        let mut body = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines {
            body.push_str(l);
            body.push('\n');
        }
        let mut req = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8");
        if let Some(t) = &self.token {
            match HeaderValue::from_str(&format!("Token {}", t.expose())) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    req = req.header(AUTHORIZATION, v);
                }
                Err(_) => return Outcome::Retry("token is not a valid header value".into(), None),
            }
        }
        req = if self.gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            match enc.write_all(body.as_bytes()).and_then(|()| enc.finish()) {
                Ok(z) => req.header(CONTENT_ENCODING, "gzip").body(z),
                Err(e) => return Outcome::Retry(format!("gzip: {e}"), None),
            }
        } else {
            req.body(body)
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.shared
                    .metrics
                    .connected
                    .with_label_values(&[self.shared.name])
                    .set(0);
                // reqwest's message says neither that it timed out nor why it failed.
                let why = if e.is_timeout() {
                    format!(
                        "no answer within {:?} (telemetry.influxdb.timeout)",
                        self.timeout
                    )
                } else {
                    format!("{:#}", anyhow::Error::from(e))
                };
                return Outcome::Retry(why, None);
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if status.is_success() {
            return Outcome::Written;
        }
        let text = resp.text().await.unwrap_or_default();
        let text: String = text.chars().take(500).collect();
        match status {
            StatusCode::BAD_REQUEST => Outcome::Rejected(text),
            StatusCode::PAYLOAD_TOO_LARGE => Outcome::TooLarge,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                Outcome::Retry(format!("HTTP {status}: {text}"), retry_after)
            }
            _ => Outcome::Retry(format!("HTTP {status}: {text}"), None),
        }
    }
}
