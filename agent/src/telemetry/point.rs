//! The one mapping from a collection's metric families to telemetry points, shared by every
//! sink and encoding so the fleet dashboard can rely on what lands.
//!
//! Mapping (stable; documented in the README):
//! - measurement = the family name (`node_cpu_seconds_total`, `node_load1`, ...);
//! - tags = the sample's labels, then `device_id`, then the configured static tags (a label
//!   wins over a static tag of the same name); sorted by key;
//! - one field per sample: `value` for counter, gauge, untyped and summary-quantile samples;
//!   `sum`, `count` and `bucket` (with its `le` tag) for a summary's or histogram's suffixed lines;
//! - timestamp = the start of the collection, in nanoseconds since the Unix epoch, the same for
//!   every point of one collection.
//!
//! Pushed families: every collector family and `node_scrape_collector_*` (one collection), plus
//! the agent's own `beacon_agent_telemetry_*` families from its registry ([`from_registry`]).
//!
//! NaN and infinite samples are skipped: line protocol has no spelling for them.

use std::collections::BTreeMap;

use prometheus::{Registry, TextEncoder};

use crate::metrics::{MetricType, MetricWriter};

/// A field value, with the line protocol types.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A float (no suffix in line protocol).
    Float(f64),
    /// A signed integer (`i` suffix).
    Int(i64),
    /// An unsigned integer (`u` suffix).
    UInt(u64),
    /// A boolean.
    Bool(bool),
    /// A string (double-quoted).
    Str(String),
}

/// One point: what InfluxDB stores and MQTT carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Measurement name.
    pub measurement: String,
    /// Tags, sorted by key.
    pub tags: Vec<(String, String)>,
    /// Fields, at least one.
    pub fields: Vec<(String, FieldValue)>,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
}

/// Tags every point gets: `device_id` and the static tags.
#[derive(Debug, Clone)]
pub struct CommonTags {
    tags: BTreeMap<String, String>,
}

impl CommonTags {
    /// `device_id` plus `static_tags` (which cannot override `device_id`).
    pub fn new(device_id: &str, static_tags: &BTreeMap<String, String>) -> Self {
        let mut tags = static_tags.clone();
        tags.insert("device_id".into(), device_id.into());
        Self { tags }
    }
}

/// Points of one family, in sample order.
#[derive(Debug, Clone)]
pub struct FamilyPoints {
    /// The family name (the measurement of each point).
    pub name: String,
    /// Its points.
    pub points: Vec<Point>,
}

/// The agent's own families that are pushed as well, so the fleet dashboard sees each device's
/// telemetry health (backlog, drops, sent and failed points) beside its host metrics. The rest
/// of the registry (`process_*`, `beacon_agent_build_info`) stays on `/metrics` only.
pub const PUSHED_SELF_PREFIX: &str = "beacon_agent_telemetry_";

/// Turns one collection into points, grouped by family.
pub fn from_collection(
    w: &MetricWriter,
    common: &CommonTags,
    timestamp_ns: i64,
) -> Vec<FamilyPoints> {
    let mut out = Vec::new();
    w.for_each_family(|name, ty, body| push_family(&mut out, name, ty, body, common, timestamp_ns));
    out
}

/// Points of the families in `registry` whose name starts with `prefix`, mapped exactly like a
/// collection's families (the registry is rendered in text format and parsed the same way).
pub fn from_registry(
    registry: &Registry,
    prefix: &str,
    common: &CommonTags,
    timestamp_ns: i64,
) -> Vec<FamilyPoints> {
    let mut families = registry.gather();
    families.retain(|f| f.name().starts_with(prefix));
    let mut text = String::new();
    if let Err(e) = TextEncoder::new().encode_utf8(&families, &mut text) {
        tracing::warn!(error = %e, "encoding self-metrics for telemetry failed");
        return Vec::new();
    }
    let mut out = Vec::new();
    // The encoder writes `# HELP`, `# TYPE <name> <type>`, then the family's samples.
    let mut current: Option<(&str, MetricType)> = None;
    let mut body = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, ty)) = current.take() {
                push_family(&mut out, name, ty, &body, common, timestamp_ns);
            }
            body.clear();
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap_or("");
            let ty = match parts.next() {
                Some("counter") => MetricType::Counter,
                Some("gauge") => MetricType::Gauge,
                Some("summary") => MetricType::Summary,
                Some("histogram") => MetricType::Histogram,
                _ => MetricType::Untyped,
            };
            current = Some((name, ty));
        } else if !line.starts_with('#') && !line.is_empty() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((name, ty)) = current {
        push_family(&mut out, name, ty, &body, common, timestamp_ns);
    }
    out
}

/// Appends the points of one family (`body` = its rendered sample lines) to `out`, if any.
fn push_family(
    out: &mut Vec<FamilyPoints>,
    name: &str,
    ty: MetricType,
    body: &str,
    common: &CommonTags,
    timestamp_ns: i64,
) {
    let mut points = Vec::new();
    for line in body.lines() {
        let Some(sample) = parse_sample(line) else {
            tracing::debug!(line, "unparsable sample line skipped");
            continue;
        };
        if !sample.value.is_finite() {
            continue;
        }
        let suffix = sample.name.strip_prefix(name).unwrap_or("");
        let field = match (ty, suffix) {
            (MetricType::Summary | MetricType::Histogram, "_sum") => "sum",
            (MetricType::Summary | MetricType::Histogram, "_count") => "count",
            (MetricType::Histogram, "_bucket") => "bucket",
            _ => "value",
        };
        let mut tags = common.tags.clone();
        for (k, v) in sample.labels {
            tags.insert(k, v);
        }
        points.push(Point {
            measurement: name.to_owned(),
            tags: tags.into_iter().collect(),
            fields: vec![(field.to_owned(), FieldValue::Float(sample.value))],
            timestamp_ns,
        });
    }
    if !points.is_empty() {
        out.push(FamilyPoints {
            name: name.to_owned(),
            points,
        });
    }
}

/// One parsed text-format sample line.
#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses a line the `MetricWriter` rendered: `name{k="v",...} value`, label values escaped
/// with `\\`, `\"` and `\n`.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find("=\"")?;
            let key = rest[..eq].to_owned();
            let mut value = String::new();
            let mut chars = rest[eq + 2..].char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()? {
                        (_, 'n') => value.push('\n'),
                        (_, c) => value.push(c),
                    },
                    (i, '"') => break eq + 2 + i + 1,
                    (_, c) => value.push(c),
                }
            };
            labels.push((key, value));
            rest = &rest[end..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let value_text = rest.trim_start().split(' ').next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rendered_lines() {
        let s = parse_sample(r#"node_x{a="q\"\\\n",b=""} 1.5e+09"#).expect("sample");
        assert_eq!(s.name, "node_x");
        assert_eq!(
            s.labels,
            vec![("a".into(), "q\"\\\n".into()), ("b".into(), String::new())]
        );
        assert_eq!(s.value, 1.5e9);
        assert_eq!(parse_sample("up 1").expect("bare").labels, vec![]);
        assert!(parse_sample("garbage").is_none());
    }

    #[test]
    fn families_become_points() {
        let mut w = MetricWriter::new();
        w.counter(
            "node_cpu_seconds_total",
            "h",
            &[("cpu", "0"), ("mode", "idle")],
            12.5,
        );
        w.gauge("node_load1", "h", &[], 0.25);
        w.gauge("node_nan", "h", &[], f64::NAN);
        w.sample_suffixed(
            MetricType::Histogram,
            "h",
            "_bucket",
            "h",
            &[("le", "1")],
            3.0,
        );
        w.sample_suffixed(MetricType::Histogram, "h", "_sum", "h", &[], 4.0);
        let tags: BTreeMap<String, String> = [("site".to_owned(), "north".to_owned())].into();
        let fams = from_collection(&w, &CommonTags::new("dev1", &tags), 42);
        let names: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["node_cpu_seconds_total", "node_load1", "h"]);
        let cpu = &fams[0].points[0];
        assert_eq!(
            cpu.tags,
            vec![
                ("cpu".into(), "0".into()),
                ("device_id".into(), "dev1".into()),
                ("mode".into(), "idle".into()),
                ("site".into(), "north".into())
            ]
        );
        assert_eq!(cpu.fields, vec![("value".into(), FieldValue::Float(12.5))]);
        assert_eq!(cpu.timestamp_ns, 42);
        let h: Vec<&str> = fams[2]
            .points
            .iter()
            .map(|p| p.fields[0].0.as_str())
            .collect();
        assert_eq!(h, ["bucket", "sum"]);
    }

    #[test]
    fn telemetry_self_metrics_become_points() {
        let registry = Registry::new();
        let m = crate::telemetry::Metrics::register(&registry).expect("register");
        m.dropped
            .with_label_values(&["influxdb", "spool_full"])
            .inc_by(3);
        m.backlog_age.with_label_values(&["influxdb"]).set(1.5);
        let other = prometheus::IntGauge::new("beacon_agent_build_info", "h").expect("gauge");
        registry.register(Box::new(other)).expect("register other");
        let fams = from_registry(
            &registry,
            PUSHED_SELF_PREFIX,
            &CommonTags::new("dev1", &BTreeMap::new()),
            7,
        );
        let names: Vec<&str> = fams.iter().map(|f| f.name.as_str()).collect();
        // Vectors without children have no samples, hence no points; other families stay out.
        assert_eq!(
            names,
            [
                "beacon_agent_telemetry_backlog_age_seconds",
                "beacon_agent_telemetry_dropped_total"
            ]
        );
        let dropped = &fams[1].points[0];
        assert_eq!(
            dropped.tags,
            vec![
                ("device_id".into(), "dev1".into()),
                ("reason".into(), "spool_full".into()),
                ("sink".into(), "influxdb".into())
            ]
        );
        assert_eq!(
            dropped.fields,
            vec![("value".into(), FieldValue::Float(3.0))]
        );
        assert_eq!(dropped.timestamp_ns, 7);
        assert_eq!(
            fams[0].points[0].fields,
            vec![("value".into(), FieldValue::Float(1.5))]
        );
    }
}
