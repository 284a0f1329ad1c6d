//! The `web:` section: how `/metrics` is served (node_exporter's `--web.*` flags).

use std::path::PathBuf;

use serde::Deserialize;

use super::Problem;

/// node_exporter's `--web.max-requests` default.
pub const DEFAULT_MAX_REQUESTS: usize = 40;

/// How the agent serves HTTP; each key has the node_exporter flag of the same meaning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSettings {
    /// exporter-toolkit web config file enabling TLS, client certificates, basic auth and
    /// response headers (`--web.config.file`); plain HTTP without it.
    pub config_file: Option<PathBuf>,
    /// Path of the metrics endpoint (`--web.telemetry-path`).
    pub telemetry_path: String,
    /// Leave out the metrics about the agent itself, `process_*` (`--web.disable-exporter-metrics`).
    pub disable_exporter_metrics: bool,
    /// Most scrapes served at once; more are answered 503. 0 means no limit (`--web.max-requests`).
    pub max_requests: usize,
    /// Serve on the sockets systemd passes (socket activation) instead of `listen`
    /// (`--web.systemd-socket`).
    pub systemd_socket: bool,
    /// Answer OpenMetrics 1.0.0 to scrapers that prefer it (Prometheus does). Off by default,
    /// as in node_exporter, whose promhttp handler leaves `EnableOpenMetrics` unset and so
    /// always serves text format 0.0.4; there is no node_exporter flag for it.
    pub openmetrics: bool,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            config_file: None,
            telemetry_path: "/metrics".to_owned(),
            disable_exporter_metrics: false,
            max_requests: DEFAULT_MAX_REQUESTS,
            systemd_socket: false,
            openmetrics: false,
        }
    }
}

impl WebSettings {
    /// Problems with their paths under `web.`.
    pub fn validate(&self, problems: &mut Vec<Problem>) {
        let p = &self.telemetry_path;
        if !p.starts_with('/') {
            problems.push(Problem::new(
                "web.telemetry_path",
                format!("must start with '/', got {p:?}"),
            ));
        } else if p == "/healthz" {
            problems.push(Problem::new(
                "web.telemetry_path",
                "/healthz is the agent's health endpoint",
            ));
        }
    }
}
