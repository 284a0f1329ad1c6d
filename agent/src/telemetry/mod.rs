//! Telemetry push: every `telemetry.interval` one collection (the same `Scraper` that serves
//! `/metrics`) becomes points, which are encoded per sink, appended to that sink's on-disk spool,
//! and sent by the sink's worker, which removes them once the sink acknowledged them.
//!
//! Everything runs on a thread of its own with its own runtime, so a slow disk, a dead broker
//! or a hung database never delays `/metrics`; each sink has its own spool and worker, so one
//! sink down never delays the other.

pub mod influxdb;
pub mod json;
pub mod lineproto;
pub mod mqtt;
mod mqtt_protocol;
mod mqtt_v3;
mod mqtt_v5;
mod mqtt_window;
pub mod point;
pub mod spool;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::sync::{watch, Notify};

use crate::config::telemetry::{Format, TelemetryConfig};
use crate::scrape::Scraper;
use point::{CommonTags, FamilyPoints, Point};
use spool::Spool;

/// The `beacon_agent_telemetry_*` self-metrics, labelled by sink.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Points acknowledged by the sink.
    pub sent: IntCounterVec,
    /// Points in send attempts that failed (they stay spooled and are retried).
    pub failed: IntCounterVec,
    /// Points given up on, by reason (`spool_full`, `rejected`, `too_large`).
    pub dropped: IntCounterVec,
    /// Unacknowledged bytes in the spool.
    pub spooled_bytes: IntGaugeVec,
    /// Age of the oldest unacknowledged point.
    pub backlog_age: GaugeVec,
    /// 1 while the sink is reachable.
    pub connected: IntGaugeVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> anyhow::Result<Metrics> {
        let m = Metrics {
            sent: IntCounterVec::new(
                Opts::new("beacon_agent_telemetry_points_sent_total", "Points the sink acknowledged."),
                &["sink"],
            )?,
            failed: IntCounterVec::new(
                Opts::new(
                    "beacon_agent_telemetry_points_failed_total",
                    "Points in failed send attempts (kept in the spool and retried).",
                ),
                &["sink"],
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "beacon_agent_telemetry_dropped_total",
                    "Points given up on: spool_full (oldest dropped), rejected (HTTP 400, MQTT 5 PUBACK refusal), too_large.",
                ),
                &["sink", "reason"],
            )?,
            spooled_bytes: IntGaugeVec::new(
                Opts::new(
                    "beacon_agent_telemetry_spooled_bytes",
                    "Unacknowledged bytes in the sink's spool.",
                ),
                &["sink"],
            )?,
            backlog_age: GaugeVec::new(
                Opts::new(
                    "beacon_agent_telemetry_backlog_age_seconds",
                    "Age of the oldest unacknowledged point (0 when caught up).",
                ),
                &["sink"],
            )?,
            connected: IntGaugeVec::new(
                Opts::new(
                    "beacon_agent_telemetry_connected",
                    "Whether the sink is reachable (MQTT connected, last InfluxDB write answered).",
                ),
                &["sink"],
            )?,
        };
        registry.register(Box::new(m.sent.clone()))?;
        registry.register(Box::new(m.failed.clone()))?;
        registry.register(Box::new(m.dropped.clone()))?;
        registry.register(Box::new(m.spooled_bytes.clone()))?;
        registry.register(Box::new(m.backlog_age.clone()))?;
        registry.register(Box::new(m.connected.clone()))?;
        Ok(m)
    }
}

/// What a sink worker shares with the producer.
#[derive(Debug)]
pub struct SinkShared {
    /// `mqtt` or `influxdb`: the `sink` label.
    pub name: &'static str,
    /// The sink's spool.
    pub spool: Mutex<Spool>,
    /// Woken when records were appended.
    pub notify: Notify,
    /// Self-metrics.
    pub metrics: Metrics,
}

impl SinkShared {
    /// Locks the spool (a panic elsewhere must not stop telemetry).
    pub fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Acknowledges records up to `end` and counts `points` as sent.
    pub fn ack(&self, end: spool::Cursor, points: u64) {
        if let Err(e) = self.spool().ack(end) {
            tracing::error!(sink = self.name, error = %e, "spool: persisting the ack cursor failed");
        }
        self.metrics
            .sent
            .with_label_values(&[self.name])
            .inc_by(points);
    }

    /// Refreshes the spooled-bytes and backlog-age gauges.
    pub fn update_gauges(&self) {
        let (bytes, oldest) = {
            let s = self.spool();
            (s.backlog_bytes(), s.oldest_timestamp())
        };
        self.metrics
            .spooled_bytes
            .with_label_values(&[self.name])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        let age = oldest.map_or(0.0, |ts| ((now_ns() - ts) as f64 / 1e9).max(0.0));
        self.metrics
            .backlog_age
            .with_label_values(&[self.name])
            .set(age);
    }
}

/// How the producer turns one collection into a sink's spool records.
#[derive(Debug, Clone)]
enum Encoder {
    /// One record per message: `topic_len u16 LE | topic | payload`.
    Mqtt {
        topic: String,
        format: Format,
        hostname: String,
        device_id: String,
    },
    /// One record of line protocol per collection.
    Influx,
}

/// Splits an MQTT record into topic and payload.
pub fn mqtt_record(data: &[u8]) -> Option<(&str, &[u8])> {
    let len = usize::from(u16::from_le_bytes([*data.first()?, *data.get(1)?]));
    let topic = std::str::from_utf8(data.get(2..2 + len)?).ok()?;
    Some((topic, data.get(2 + len..)?))
}

fn payload(format: Format, points: &[&Point]) -> Vec<u8> {
    match format {
        Format::Influx => {
            let mut s = String::new();
            for p in points {
                lineproto::encode_point(&mut s, p);
            }
            s.into_bytes()
        }
        Format::Json => {
            let owned: Vec<Point> = points.iter().map(|p| (*p).clone()).collect();
            json::encode(&owned).into_bytes()
        }
    }
}

impl Encoder {
    /// Records `(points, data)` for one collection.
    fn records(&self, fams: &[FamilyPoints]) -> Vec<(u32, Vec<u8>)> {
        match self {
            Encoder::Influx => {
                let mut s = String::new();
                let mut n = 0u32;
                for f in fams {
                    lineproto::encode(&mut s, &f.points);
                    n += f.points.len() as u32;
                }
                if n == 0 {
                    return Vec::new();
                }
                vec![(n, s.into_bytes())]
            }
            Encoder::Mqtt {
                topic,
                format,
                hostname,
                device_id,
            } => {
                let base = topic
                    .replace("{device_id}", device_id)
                    .replace("{hostname}", hostname);
                let mut groups: Vec<(String, Vec<&Point>)> = Vec::new();
                if base.contains("{measurement}") {
                    for f in fams {
                        groups.push((
                            base.replace("{measurement}", &f.name),
                            f.points.iter().collect(),
                        ));
                    }
                } else {
                    groups.push((base, fams.iter().flat_map(|f| f.points.iter()).collect()));
                }
                groups
                    .into_iter()
                    .filter(|(_, p)| !p.is_empty())
                    .map(|(topic, points)| {
                        let body = payload(*format, &points);
                        let t = topic.as_bytes();
                        let mut data = Vec::with_capacity(2 + t.len() + body.len());
                        data.extend_from_slice(
                            &(t.len().min(usize::from(u16::MAX)) as u16).to_le_bytes(),
                        );
                        data.extend_from_slice(&t[..t.len().min(usize::from(u16::MAX))]);
                        data.extend_from_slice(&body);
                        (points.len() as u32, data)
                    })
                    .collect()
            }
        }
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The host's name (the default `device_id`).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and we stop at the first NUL or the end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Jitter in [0, 1) without a random-number dependency.
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ns());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Capped exponential backoff with full jitter in its upper half: attempt 0 waits ~`base`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    exp.mul_f64(0.5 + 0.5 * jitter())
}

/// Resolves once `shutdown` turns true.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            // The sender is gone: treat as shutdown.
            return;
        }
    }
}

/// Starts the telemetry thread; it returns after `shutdown` turns true and the sinks said
/// goodbye. Opening the spools or reading secrets fails here, at startup.
pub fn start(
    cfg: &TelemetryConfig,
    scraper: Arc<Scraper>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let metrics = Metrics::register(scraper.registry()).context("register telemetry metrics")?;
    let hostname = hostname();
    let device_id = cfg.device_id.clone().unwrap_or_else(|| hostname.clone());
    let common = CommonTags::new(&device_id, &cfg.tags);
    let open = |name: &'static str| -> anyhow::Result<Arc<SinkShared>> {
        let dir = cfg.spool.dir.join(name);
        let spool = Spool::open(&dir, cfg.spool.max_bytes)
            .with_context(|| format!("open spool {}", dir.display()))?;
        Ok(Arc::new(SinkShared {
            name,
            spool: Mutex::new(spool),
            notify: Notify::new(),
            metrics: metrics.clone(),
        }))
    };
    let mut sinks: Vec<(Arc<SinkShared>, Encoder)> = Vec::new();
    let mut mqtt_worker = None;
    let mut influx_worker = None;
    if let Some(m) = &cfg.mqtt {
        let shared = open("mqtt")?;
        let worker = mqtt::Worker::new(m, &device_id, &hostname, cfg.replay_rate, shared.clone())?;
        sinks.push((
            shared,
            Encoder::Mqtt {
                topic: m.topic.clone(),
                format: m.format,
                hostname: hostname.clone(),
                device_id: device_id.clone(),
            },
        ));
        mqtt_worker = Some(worker);
    }
    if let Some(i) = &cfg.influxdb {
        let shared = open("influxdb")?;
        let worker = influxdb::Worker::new(i, cfg.replay_rate, shared.clone())?;
        sinks.push((shared, Encoder::Influx));
        influx_worker = Some(worker);
    }
    for (s, _) in &sinks {
        s.metrics.connected.with_label_values(&[s.name]).set(0);
        // Counters exist at 0 from the start, so rate() and increase() see the first failure.
        s.metrics.sent.with_label_values(&[s.name]);
        s.metrics.failed.with_label_values(&[s.name]);
        // MQTT `rejected`: an invalid topic name, or a permanent MQTT 5 PUBACK refusal.
        for reason in ["spool_full", "rejected", "too_large"] {
            s.metrics.dropped.with_label_values(&[s.name, reason]);
        }
        s.update_gauges();
    }
    let interval = cfg.interval;
    tracing::info!(
        device_id,
        interval = ?interval,
        sinks = ?sinks.iter().map(|(s, _)| s.name).collect::<Vec<_>>(),
        "telemetry starting"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .context("start telemetry runtime")?;
    std::thread::Builder::new()
        .name("telemetry".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut tasks = Vec::new();
                if let Some(w) = mqtt_worker {
                    tasks.push(tokio::spawn(w.run(shutdown.clone())));
                }
                if let Some(w) = influx_worker {
                    tasks.push(tokio::spawn(w.run(shutdown.clone())));
                }
                produce(interval, scraper, common, sinks, shutdown).await;
                for t in tasks {
                    let _ = t.await;
                }
            });
        })
        .context("spawn telemetry thread")
}

/// The producer: collect, encode, spool, wake the workers; until shutdown.
async fn produce(
    interval: Duration,
    scraper: Arc<Scraper>,
    common: CommonTags,
    sinks: Vec<(Arc<SinkShared>, Encoder)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sinks = Arc::new(sinks);
    let common = Arc::new(common);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped(&mut shutdown) => return,
        }
        let (scraper, sinks2, common) = (scraper.clone(), sinks.clone(), common.clone());
        // Collection, encoding and the fsync are blocking work: off the async thread.
        let res = tokio::task::spawn_blocking(move || {
            let ts = now_ns();
            let mut fams = scraper.with_collection(|w| point::from_collection(w, &common, ts));
            fams.extend(point::from_registry(
                scraper.registry(),
                point::PUSHED_SELF_PREFIX,
                &common,
                ts,
            ));
            for (sink, enc) in sinks2.iter() {
                let recs = enc.records(&fams);
                let refs: Vec<(u32, i64, &[u8])> =
                    recs.iter().map(|(n, d)| (*n, ts, d.as_slice())).collect();
                let res = sink.spool().append(&refs);
                match res {
                    Ok(dropped) => {
                        if dropped > 0 {
                            tracing::warn!(sink = sink.name, points = dropped, "spool full: dropped the oldest points");
                            sink.metrics
                                .dropped
                                .with_label_values(&[sink.name, "spool_full"])
                                .inc_by(dropped);
                        }
                    }
                    Err(e) => {
                        tracing::error!(sink = sink.name, error = %e, "spool: append failed; this collection is lost for the sink");
                    }
                }
                sink.notify.notify_one();
                sink.update_gauges();
            }
        })
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "telemetry collection task failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_records_follow_the_topic_template() {
        let p = |m: &str| Point {
            measurement: m.into(),
            tags: vec![],
            fields: vec![("value".into(), point::FieldValue::Float(1.0))],
            timestamp_ns: 5,
        };
        let fams = vec![
            FamilyPoints {
                name: "a".into(),
                points: vec![p("a"), p("a")],
            },
            FamilyPoints {
                name: "b".into(),
                points: vec![p("b")],
            },
        ];
        let enc = |topic: &str| Encoder::Mqtt {
            topic: topic.into(),
            format: Format::Influx,
            hostname: "h".into(),
            device_id: "d".into(),
        };
        let recs = enc("x/{device_id}/{hostname}/{measurement}").records(&fams);
        let topics: Vec<(u32, &str)> = recs
            .iter()
            .map(|(n, d)| (*n, mqtt_record(d).expect("record").0))
            .collect();
        assert_eq!(topics, [(2, "x/d/h/a"), (1, "x/d/h/b")]);
        let recs = enc("x/{device_id}").records(&fams);
        assert_eq!(recs.len(), 1);
        let (topic, body) = mqtt_record(&recs[0].1).expect("record");
        assert_eq!(topic, "x/d");
        assert_eq!(
            std::str::from_utf8(body).expect("utf8"),
            "a value=1 5\na value=1 5\nb value=1 5\n"
        );
        assert!(
            backoff(3, Duration::from_millis(100), Duration::from_secs(1))
                <= Duration::from_millis(800)
        );
    }
}
