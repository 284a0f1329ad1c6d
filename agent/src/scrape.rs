//! The scrape loop: runs every enabled collector, times it, records
//! `node_scrape_collector_{duration_seconds,success}`, and appends the agent's own metrics:
//! `process_*` (`process.rs`) and, from a `prometheus` registry, `beacon_agent_build_info` and
//! the telemetry sinks' metrics.
//!
//! Collectors run one after another on the calling thread (the HTTP runtime's): reading procfs costs
//! microseconds, so a thread per collector would cost more than it saves. The one collector that
//! can block (filesystem, on a hung mount) bounds itself with its own timeout.

use std::time::Instant;

use prometheus::Registry;

use crate::collector::Collector;
use crate::collectors;
use crate::config::Config;
use crate::metrics::MetricWriter;
use crate::process::ProcessMetrics;

/// Everything one `/metrics` request needs; shared by all requests.
pub struct Scraper {
    collectors: Vec<Box<dyn Collector>>,
    registry: Registry,
    process: ProcessMetrics,
    /// `process_*`, the metrics about the agent itself; off with
    /// `--web.disable-exporter-metrics`, as node_exporter leaves out its `process_*`, `go_*`
    /// and `promhttp_*` (build info stays).
    exporter_metrics: bool,
    /// Reused across scrapes so a steady host's scrape allocates almost nothing.
    writer: std::sync::Mutex<MetricWriter>,
}

impl std::fmt::Debug for Scraper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.collectors.iter().map(|c| c.name()).collect();
        f.debug_struct("Scraper")
            .field("collectors", &names)
            .finish()
    }
}

impl Scraper {
    /// Builds the collectors of a validated config and the self-metrics registry.
    pub fn new(cfg: &Config) -> Self {
        let collectors = collectors::build(cfg);
        let registry = Registry::new();
        let build_info = prometheus::GaugeVec::new(
            prometheus::Opts::new(
                "beacon_agent_build_info",
                "A metric with a constant '1' value labeled by the version and target of beacon-agent.",
            ),
            &["version", "arch", "os"],
        )
        .expect("static metric definition");
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH,
                std::env::consts::OS,
            ])
            .set(1.0);
        // Registration only fails on duplicate names in this fresh registry: impossible here.
        let _ = registry.register(Box::new(build_info));
        let _ = registry.register(Box::new(node_exporter_build_info()));
        Self {
            collectors,
            registry,
            process: ProcessMetrics::new(),
            exporter_metrics: !cfg.web.disable_exporter_metrics,
            writer: std::sync::Mutex::new(MetricWriter::new()),
        }
    }

    /// The enabled collectors' names, in run order.
    pub fn collector_names(&self) -> Vec<&'static str> {
        self.collectors.iter().map(|c| c.name()).collect()
    }

    /// Runs every collector into `out`, followed by the `node_scrape_collector_*` families.
    /// A failing collector fails only itself.
    pub fn collect_into(&self, out: &mut MetricWriter) {
        let mut results: Vec<(&'static str, f64, bool)> = Vec::with_capacity(self.collectors.len());
        for c in &self.collectors {
            let start = Instant::now();
            let res = c.collect(out);
            let secs = start.elapsed().as_secs_f64();
            match &res {
                Ok(()) => {}
                Err(e) if e.is_no_data() => {
                    tracing::debug!(collector = c.name(), duration_seconds = secs, error = %e, "collector returned no data")
                }
                Err(e) => {
                    tracing::warn!(collector = c.name(), duration_seconds = secs, error = %e, "collector failed")
                }
            }
            results.push((c.name(), secs, res.is_ok()));
        }
        for (name, secs, _) in &results {
            out.gauge(
                "node_scrape_collector_duration_seconds",
                "node_exporter: Duration of a collector scrape.",
                &[("collector", name)],
                *secs,
            );
        }
        for (name, _, ok) in &results {
            out.gauge(
                "node_scrape_collector_success",
                "node_exporter: Whether a collector succeeded.",
                &[("collector", name)],
                if *ok { 1.0 } else { 0.0 },
            );
        }
    }

    /// One full scrape rendered in text format 0.0.4.
    pub fn scrape(&self) -> String {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.clear();
        self.collect_into(&mut w);
        if self.exporter_metrics {
            self.process.collect(&mut w);
        }
        let mut text = String::with_capacity(64 * 1024);
        w.render(&mut text);
        drop(w);
        self.render_self_metrics(&mut text);
        text
    }

    /// Runs one collection into the shared writer and hands it to `f` (telemetry turns it into
    /// points). Serialised with `scrape` by the writer's lock, like concurrent HTTP scrapes.
    pub fn with_collection<R>(&self, f: impl FnOnce(&MetricWriter) -> R) -> R {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.clear();
        self.collect_into(&mut w);
        f(&w)
    }

    /// The registry behind the agent's own metrics, for other components' self-metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Appends the metrics of the `prometheus` registry (build info, telemetry sinks).
    pub fn render_self_metrics(&self, text: &mut String) {
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), text) {
            tracing::warn!(error = %e, "encoding self-metrics failed");
        }
    }
}

/// `node_exporter_build_info`, as node_exporter's version collector (client_golang's
/// `collectors/version`) reports it: dashboards such as kube-prometheus's "USE Method / Node"
/// list their instances from this series. The labels are beacon-agent's own: its version, no
/// Go toolchain (`goversion=""`), Go's names for this OS and architecture, and
/// `tags="beacon-agent"` so a query can tell the two exporters apart.
fn node_exporter_build_info() -> prometheus::Gauge {
    let goarch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    };
    let opts = prometheus::Opts::new(
        "node_exporter_build_info",
        "A metric with a constant '1' value labeled by version, revision, branch, goversion from which node_exporter was built, and the goos and goarch for the build.",
    )
    .const_label("version", env!("CARGO_PKG_VERSION"))
    .const_label("revision", option_env!("BEACON_REVISION").unwrap_or("unknown"))
    .const_label("branch", "")
    .const_label("goversion", "")
    .const_label("goos", std::env::consts::OS)
    .const_label("goarch", goarch)
    .const_label("tags", "beacon-agent");
    let gauge = prometheus::Gauge::with_opts(opts).expect("static metric definition");
    gauge.set(1.0);
    gauge
}
