//! The `telemetry:` config section: push interval, device identity, the on-disk spool, and the
//! MQTT and InfluxDB sinks, with validation that names every problem by its path.
//!
//! The section parses in every build so a config file stays portable; a build without the
//! `telemetry` Cargo feature rejects it in validation instead of ignoring it silently.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration;

/// `telemetry:`: what is pushed, how often, and where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Time between two collections pushed to the sinks.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// The `device_id` tag of every point; the hostname when absent.
    pub device_id: Option<String>,
    /// Static tags added to every point.
    pub tags: BTreeMap<String, String>,
    /// The store-and-forward spool every point goes through.
    pub spool: SpoolConfig,
    /// Messages (MQTT) or batches (InfluxDB) per second a sink sends at most while it replays
    /// a backlog, so a reconnect after a long outage does not flood the link.
    pub replay_rate: u32,
    /// The MQTT sink; off when absent.
    pub mqtt: Option<MqttConfig>,
    /// The InfluxDB 2 sink; off when absent.
    pub influxdb: Option<InfluxConfig>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            device_id: None,
            tags: BTreeMap::new(),
            spool: SpoolConfig::default(),
            replay_rate: 50,
            mqtt: None,
            influxdb: None,
        }
    }
}

/// `telemetry.spool`: one directory per sink under `dir`, each bounded by `max_bytes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Parent directory of the per-sink spools.
    pub dir: PathBuf,
    /// Disk budget of each sink's spool (`64MiB` or a byte count); when full, the oldest
    /// points are dropped.
    #[serde(deserialize_with = "super::size")]
    pub max_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            dir: "/var/lib/beacon-agent/spool".into(),
            max_bytes: 64 << 20,
        }
    }
}

/// Message encoding of the MQTT sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// InfluxDB line protocol, as Telegraf's `mqtt_consumer` parses it.
    Influx,
    /// Telegraf's JSON shape: `name`, `tags`, `fields`, `timestamp`.
    Json,
}

/// `telemetry.mqtt`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]`.
    pub url: String,
    /// MQTT client id; `beacon-agent-{device_id}` when absent.
    pub client_id: Option<String>,
    /// Topic of metric messages; takes `{device_id}`, `{hostname}` and `{measurement}`.
    pub topic: String,
    /// Topic of the retained `online`/`offline` presence messages.
    pub status_topic: String,
    /// Only 1: a spooled record is removed when its PUBACK arrives.
    pub qos: u8,
    /// Message encoding.
    pub format: Format,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// File holding the password (trailing newline ignored).
    pub password_file: Option<PathBuf>,
    /// TLS options for `mqtts://`.
    pub tls: Option<TlsConfig>,
    /// MQTT keep-alive; the broker publishes the Last Will after 1.5 times this of silence.
    #[serde(deserialize_with = "duration")]
    pub keep_alive: Duration,
    /// MQTT protocol version: `"3.1.1"` or `"5"` (also `"5.0"`). MQTT 5 adds PUBACK reason codes
    /// (a refusal is not an acknowledgement), the broker's receive maximum and maximum packet
    /// size, and a payload format indicator and content type on every message.
    pub protocol: String,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            client_id: None,
            topic: "beacon/{device_id}/metrics".into(),
            status_topic: "beacon/{device_id}/status".into(),
            qos: 1,
            format: Format::Influx,
            username: None,
            password_file: None,
            tls: None,
            keep_alive: Duration::from_secs(30),
            protocol: "3.1.1".into(),
        }
    }
}

impl MqttConfig {
    /// Whether `protocol` asks for MQTT 5.
    pub fn is_mqtt5(&self) -> bool {
        matches!(self.protocol.as_str(), "5" | "5.0")
    }
}

/// `telemetry.mqtt.tls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM CA bundle; the system's roots when absent.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub key_file: Option<PathBuf>,
}

/// `telemetry.influxdb`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InfluxConfig {
    /// Base URL, e.g. `https://influx.example.com:8086`.
    pub url: String,
    /// Organisation (`org=` of `/api/v2/write`).
    pub org: String,
    /// Bucket (`bucket=`).
    pub bucket: String,
    /// File holding the API token (trailing newline ignored).
    pub token_file: Option<PathBuf>,
    /// Most points in one write request.
    pub batch_size: usize,
    /// Longest a partial batch waits for more points.
    #[serde(deserialize_with = "duration")]
    pub flush_interval: Duration,
    /// Compress request bodies.
    pub gzip: bool,
    /// Timeout of one write request.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for InfluxConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            org: String::new(),
            bucket: String::new(),
            token_file: None,
            batch_size: 5000,
            flush_interval: Duration::from_secs(1),
            gzip: true,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Host and port of an `mqtt://` or `mqtts://` URL, and whether it is TLS.
pub fn parse_mqtt_url(url: &str) -> Result<(String, u16, bool), String> {
    let (rest, tls) = if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false)
    } else {
        return Err(format!(
            "invalid url {url:?}: want mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"
        ));
    };
    let rest = rest.trim_end_matches('/');
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("invalid port in url {url:?}"))?;
            (h, port)
        }
        _ => (rest, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') {
        return Err(format!("invalid host in url {url:?}"));
    }
    Ok((host.to_owned(), port, tls))
}

impl TelemetryConfig {
    /// Adds every problem of the section to `bad(path, message)`.
    pub fn validate(&self, bad: &mut impl FnMut(&str, String)) {
        if cfg!(not(feature = "telemetry")) {
            bad(
                "telemetry",
                "this beacon-agent was built without the `telemetry` feature".into(),
            );
        }
        if self.interval < Duration::from_millis(10) {
            bad("telemetry.interval", "must be at least 10ms".into());
        }
        if let Some(id) = &self.device_id {
            if id.trim().is_empty() {
                bad("telemetry.device_id", "must not be empty".into());
            }
        }
        for k in self.tags.keys() {
            if k.is_empty() || k == "device_id" {
                bad(
                    &format!("telemetry.tags.{k}"),
                    "tag names must be non-empty and not `device_id`".into(),
                );
            }
        }
        if !self.spool.dir.is_absolute() {
            bad(
                "telemetry.spool.dir",
                format!(
                    "must be an absolute path, got {:?}",
                    self.spool.dir.display().to_string()
                ),
            );
        }
        if self.spool.max_bytes < 64 * 1024 {
            bad(
                "telemetry.spool.max_bytes",
                "must be at least 65536 bytes".into(),
            );
        }
        if self.replay_rate == 0 {
            bad("telemetry.replay_rate", "must be greater than zero".into());
        }
        if self.mqtt.is_none() && self.influxdb.is_none() {
            bad(
                "telemetry",
                "enable at least one sink (`mqtt` or `influxdb`)".into(),
            );
        }
        if let Some(m) = &self.mqtt {
            m.validate(bad);
        }
        if let Some(i) = &self.influxdb {
            i.validate(bad);
        }
    }
}

fn absolute(bad: &mut impl FnMut(&str, String), path: &str, p: &Option<PathBuf>) {
    if let Some(p) = p {
        if !p.is_absolute() {
            bad(
                path,
                format!(
                    "must be an absolute path, got {:?}",
                    p.display().to_string()
                ),
            );
        }
    }
}

impl MqttConfig {
    fn validate(&self, bad: &mut impl FnMut(&str, String)) {
        let tls = match parse_mqtt_url(&self.url) {
            Ok((_, _, tls)) => tls,
            Err(e) => {
                bad("telemetry.mqtt.url", e);
                false
            }
        };
        if self.qos != 1 {
            bad(
                "telemetry.mqtt.qos",
                format!(
                    "only QoS 1 is supported (a spooled point is removed on its PUBACK), got {}",
                    self.qos
                ),
            );
        }
        if self.protocol != "3.1.1" && !self.is_mqtt5() {
            bad(
                "telemetry.mqtt.protocol",
                format!("want \"3.1.1\" or \"5\", got {:?}", self.protocol),
            );
        }
        for (path, t) in [
            ("telemetry.mqtt.topic", &self.topic),
            ("telemetry.mqtt.status_topic", &self.status_topic),
        ] {
            if t.is_empty() || t.contains(['+', '#']) {
                bad(
                    path,
                    format!("must be a non-empty topic without wildcards, got {t:?}"),
                );
            }
        }
        if self.status_topic.contains("{measurement}") {
            bad(
                "telemetry.mqtt.status_topic",
                "cannot use {measurement}".into(),
            );
        }
        if self.keep_alive < Duration::from_secs(1) {
            bad("telemetry.mqtt.keep_alive", "must be at least 1s".into());
        } else if self.is_mqtt5() && self.keep_alive < Duration::from_secs(5) {
            // rumqttc's MQTT 5 client refuses (panics on) a shorter one.
            bad(
                "telemetry.mqtt.keep_alive",
                "must be at least 5s with protocol \"5\"".into(),
            );
        }
        absolute(bad, "telemetry.mqtt.password_file", &self.password_file);
        if self.password_file.is_some() && self.username.is_none() {
            bad(
                "telemetry.mqtt.password_file",
                "needs telemetry.mqtt.username".into(),
            );
        }
        if let Some(t) = &self.tls {
            if !tls {
                bad("telemetry.mqtt.tls", "needs an mqtts:// url".into());
            }
            absolute(bad, "telemetry.mqtt.tls.ca_file", &t.ca_file);
            absolute(bad, "telemetry.mqtt.tls.cert_file", &t.cert_file);
            absolute(bad, "telemetry.mqtt.tls.key_file", &t.key_file);
            if t.cert_file.is_some() != t.key_file.is_some() {
                bad(
                    "telemetry.mqtt.tls",
                    "cert_file and key_file go together".into(),
                );
            }
        }
    }
}

impl InfluxConfig {
    fn validate(&self, bad: &mut impl FnMut(&str, String)) {
        let rest = self
            .url
            .strip_prefix("http://")
            .or_else(|| self.url.strip_prefix("https://"));
        if rest.is_none_or(|r| r.trim_end_matches('/').is_empty()) {
            bad(
                "telemetry.influxdb.url",
                format!(
                    "want http://HOST:PORT or https://HOST:PORT, got {:?}",
                    self.url
                ),
            );
        }
        if self.org.is_empty() {
            bad("telemetry.influxdb.org", "must not be empty".into());
        }
        if self.bucket.is_empty() {
            bad("telemetry.influxdb.bucket", "must not be empty".into());
        }
        absolute(bad, "telemetry.influxdb.token_file", &self.token_file);
        if self.batch_size == 0 {
            bad(
                "telemetry.influxdb.batch_size",
                "must be greater than zero".into(),
            );
        }
        if self.flush_interval.is_zero() {
            bad(
                "telemetry.influxdb.flush_interval",
                "must be greater than zero".into(),
            );
        }
        if self.timeout.is_zero() {
            bad(
                "telemetry.influxdb.timeout",
                "must be greater than zero".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn mqtt_urls() {
        assert_eq!(
            parse_mqtt_url("mqtt://broker").expect("url"),
            ("broker".into(), 1883, false)
        );
        assert_eq!(
            parse_mqtt_url("mqtts://b.example:8884/").expect("url"),
            ("b.example".into(), 8884, true)
        );
        assert!(parse_mqtt_url("http://b").is_err());
        assert!(parse_mqtt_url("mqtt://b:x").is_err());
        assert!(parse_mqtt_url("mqtt://").is_err());
    }

    #[test]
    #[cfg(not(feature = "telemetry"))]
    fn slim_build_rejects_the_section() {
        let e = Config::from_yaml(
            "telemetry:\n  spool: {dir: /tmp/x}\n  mqtt: {url: 'mqtt://127.0.0.1:1'}\n",
        )
        .expect_err("no telemetry feature");
        assert!(
            e.to_string().contains("without the `telemetry` feature"),
            "{e}"
        );
    }

    #[test]
    #[cfg(feature = "telemetry")]
    fn defaults_and_problems() {
        let c = Config::from_yaml(
            "telemetry:\n  spool: {dir: /tmp/x}\n  mqtt: {url: 'mqtt://127.0.0.1:1'}\n",
        )
        .expect("valid telemetry");
        let t = c.telemetry.expect("telemetry");
        assert_eq!(t.interval, Duration::from_secs(10));
        let m = t.mqtt.expect("mqtt");
        assert_eq!(m.topic, "beacon/{device_id}/metrics");
        assert_eq!(m.format, Format::Influx);

        let e = Config::from_yaml(
            "telemetry:\n  spool: {dir: rel}\n  mqtt: {url: 'http://x', qos: 2, protocol: '3'}\n  influxdb: {url: 'x', batch_size: 0}\n",
        )
        .expect_err("bad telemetry");
        let paths: Vec<&str> = e.problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "telemetry.spool.dir",
            "telemetry.mqtt.url",
            "telemetry.mqtt.qos",
            "telemetry.mqtt.protocol",
            "telemetry.influxdb.url",
            "telemetry.influxdb.org",
            "telemetry.influxdb.batch_size",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
    }

    #[test]
    #[cfg(feature = "telemetry")]
    fn mqtt5_is_accepted_and_garbage_is_named_by_path() {
        for (protocol, v5) in [("3.1.1", false), ("5", true), ("5.0", true)] {
            let c = Config::from_yaml(&format!(
                "telemetry:\n  spool: {{dir: /tmp/x}}\n  mqtt: {{url: 'mqtt://127.0.0.1:1', protocol: '{protocol}'}}\n"
            ))
            .unwrap_or_else(|e| panic!("protocol {protocol}: {e}"));
            let m = c.telemetry.and_then(|t| t.mqtt).expect("mqtt");
            assert_eq!(m.is_mqtt5(), v5, "{protocol}");
        }
        for (mqtt, path, message) in [
            (
                "protocol: '5.1'",
                "telemetry.mqtt.protocol",
                "want \"3.1.1\" or \"5\", got \"5.1\"",
            ),
            (
                "protocol: mqttv5",
                "telemetry.mqtt.protocol",
                "got \"mqttv5\"",
            ),
            (
                "protocol: '5', keep_alive: 2s",
                "telemetry.mqtt.keep_alive",
                "at least 5s",
            ),
        ] {
            let e = Config::from_yaml(&format!(
                "telemetry:\n  spool: {{dir: /tmp/x}}\n  mqtt: {{url: 'mqtt://127.0.0.1:1', {mqtt}}}\n"
            ))
            .expect_err(mqtt);
            assert!(
                e.problems
                    .iter()
                    .any(|p| p.path == path && p.message.contains(message)),
                "{mqtt}: want {path}: {message}, got {e}"
            );
        }
    }
}
