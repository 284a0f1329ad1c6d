//! The router's self-metrics (`GET /metrics`): webhooks received, notifications sent, failed and
//! dead-lettered by receiver, integration and reason, delivery latency, template errors,
//! duplicates, digests, reloads, listener connections, and the queue depth and oldest age per destination (read from
//! the store at scrape time, so every replica reports the shared queue truthfully).
//!
//! Label values are bounded: receivers and integrations come from the config, reasons from the
//! fixed set in `notify::Reason`, sources from `model::Source`; never a URL or an error text.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::store::Store;

/// Every self-metric, registered in one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Webhooks received, by source and HTTP status answered.
    pub webhooks: IntCounterVec,
    /// Notifications queued, by receiver and integration.
    pub received: IntCounterVec,
    /// Notifications delivered, by receiver and integration.
    pub sent: IntCounterVec,
    /// Failed delivery attempts, by receiver, integration and reason.
    pub failed: IntCounterVec,
    /// Notifications moved to the dead-letter list, by receiver, integration and reason.
    pub dead_letters: IntCounterVec,
    /// Notifications dropped as duplicates at intake, by source.
    pub duplicates: IntCounterVec,
    /// Custom templates that failed (the default message was sent), by receiver and integration.
    pub template_errors: IntCounterVec,
    /// Digest messages sent, by receiver and integration.
    pub digests: IntCounterVec,
    /// Notifications folded into digests, by receiver and integration.
    pub coalesced: IntCounterVec,
    /// Seconds from intake to delivery, by receiver and integration.
    pub latency: HistogramVec,
    /// Config reloads, by result.
    pub reloads: IntCounterVec,
    /// Whether the last reload succeeded.
    pub last_reload_ok: IntGauge,
    /// Intake batches committed (each one durable write holding one or more webhooks).
    pub intake_batches: IntCounter,
    /// Connections the webhook listener is serving.
    pub connections_open: IntGauge,
    /// Connections the listener closed itself, by reason (`header_timeout`, `idle_timeout`,
    /// `evicted`: made room at the connection cap).
    pub connections_closed: IntCounterVec,
    store_up: IntGauge,
    /// Mirrors `Store::unreplicated_writes` (a count kept by the store) at each scrape.
    unreplicated: IntCounter,
    queue_depth: GaugeVec,
    queue_oldest: GaugeVec,
    dead_letter_depth: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("metric {name} is well formed: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| unreachable!("metric {name} registered once: {e}"));
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("metric {name} is well formed: {e}"));
    registry
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| unreachable!("metric {name} registered once: {e}"));
    g
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help)
        .unwrap_or_else(|e| unreachable!("metric {name} is well formed: {e}"));
    registry
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| unreachable!("metric {name} registered once: {e}"));
    g
}

const RI: &[&str] = &["receiver", "integration"];

impl Metrics {
    /// A fresh registry with every metric, plus `process_*` and `beacon_router_build_info`.
    pub fn new() -> Self {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        {
            // Registration fails only on duplicate names, impossible in a fresh registry.
            let _ = r.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        gauge(
            &r,
            "beacon_router_build_info",
            "Always 1: the running beacon-router's version.",
            &["version"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1.0);
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "beacon_router_delivery_latency_seconds",
                "Seconds from a webhook's acknowledgement to its delivery.",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
            RI,
        )
        .unwrap_or_else(|e| unreachable!("latency histogram is well formed: {e}"));
        let _ = r.register(Box::new(latency.clone()));
        Metrics {
            webhooks: counter(
                &r,
                "beacon_router_webhooks_received_total",
                "Inbound webhooks, by source and the HTTP status they were answered with.",
                &["source", "code"],
            ),
            received: counter(
                &r,
                "beacon_router_notifications_received_total",
                "Notifications durably queued, by receiver and integration.",
                RI,
            ),
            sent: counter(
                &r,
                "beacon_router_notifications_sent_total",
                "Notifications delivered, by receiver and integration.",
                RI,
            ),
            failed: counter(
                &r,
                "beacon_router_notifications_failed_total",
                "Failed delivery attempts, by receiver, integration and reason.",
                &["receiver", "integration", "reason"],
            ),
            dead_letters: counter(
                &r,
                "beacon_router_dead_letters_total",
                "Notifications moved to the dead-letter list, by receiver, integration and reason.",
                &["receiver", "integration", "reason"],
            ),
            duplicates: counter(
                &r,
                "beacon_router_notifications_duplicate_total",
                "Notifications not queued because the same group state was queued within the dedup window.",
                &["source"],
            ),
            template_errors: counter(
                &r,
                "beacon_router_template_errors_total",
                "Custom templates that failed to render; the default message was sent instead.",
                RI,
            ),
            connections_open: int_gauge(
                &r,
                "beacon_router_connections_open",
                "Connections the webhook listener is serving (at most inbound.max_connections).",
            ),
            connections_closed: counter(
                &r,
                "beacon_router_connections_closed_total",
                "Connections the listener closed itself: header_timeout (no complete header in time), idle_timeout, evicted (made room at inbound.max_connections).",
                &["reason"],
            ),
            digests: counter(
                &r,
                "beacon_router_digests_sent_total",
                "Digest messages sent for a backlog, by receiver and integration.",
                RI,
            ),
            coalesced: counter(
                &r,
                "beacon_router_notifications_coalesced_total",
                "Notifications delivered inside digest messages, by receiver and integration.",
                RI,
            ),
            latency,
            reloads: counter(
                &r,
                "beacon_router_config_reloads_total",
                "Config reloads, by result (success or failure).",
                &["result"],
            ),
            last_reload_ok: int_gauge(
                &r,
                "beacon_router_config_last_reload_successful",
                "1 if the last config reload succeeded (or none was attempted), else 0.",
            ),
            intake_batches: {
                let c = IntCounter::new(
                    "beacon_router_intake_commits_total",
                    "Durable intake writes; each holds one or more webhooks.",
                )
                .unwrap_or_else(|e| unreachable!("intake counter is well formed: {e}"));
                let _ = r.register(Box::new(c.clone()));
                c
            },
            store_up: int_gauge(
                &r,
                "beacon_router_store_up",
                "1 if the store (the embedded file, or Redis) accepts writes, else 0.",
            ),
            unreplicated: {
                let c = IntCounter::new(
                    "beacon_router_store_unreplicated_writes_total",
                    "Store writes (webhooks answered 503, acks, dedup and thread state) that too few Redis replicas confirmed in time (storage.redis.min_replicas).",
                )
                .unwrap_or_else(|e| unreachable!("unreplicated counter is well formed: {e}"));
                let _ = r.register(Box::new(c.clone()));
                c
            },
            queue_depth: gauge(
                &r,
                "beacon_router_queue_depth",
                "Notifications queued per destination (in flight included).",
                &["destination"],
            ),
            queue_oldest: gauge(
                &r,
                "beacon_router_queue_oldest_age_seconds",
                "Age of the oldest queued notification per destination.",
                &["destination"],
            ),
            dead_letter_depth: int_gauge(
                &r,
                "beacon_router_dead_letters",
                "Notifications currently in the dead-letter list.",
            ),
            registry: r,
        }
    }

    /// The text exposition of every metric, with the queue gauges refreshed from `store`. A
    /// store that cannot be read leaves the queue gauges out rather than reporting stale ones.
    pub fn render(&self, store: &dyn Store) -> String {
        self.store_up.set(i64::from(store.healthy()));
        let unreplicated = store.unreplicated_writes();
        if unreplicated > self.unreplicated.get() {
            self.unreplicated
                .inc_by(unreplicated - self.unreplicated.get());
        }
        self.queue_depth.reset();
        self.queue_oldest.reset();
        let now = std::time::SystemTime::now();
        if let Ok(destinations) = store.destinations() {
            for d in destinations {
                if let Ok((depth, oldest)) = store.depth(&d) {
                    self.queue_depth.with_label_values(&[&d]).set(depth as f64);
                    let age = oldest
                        .and_then(|t| now.duration_since(t).ok())
                        .map_or(0.0, |a| a.as_secs_f64());
                    self.queue_oldest.with_label_values(&[&d]).set(age);
                }
            }
        }
        if let Ok(dead) = store.dead_letters() {
            self.dead_letter_depth
                .set(i64::try_from(dead.len()).unwrap_or(i64::MAX));
        }
        let mut out = Vec::new();
        // Encoding into a Vec fails only on a malformed family, which registration rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
