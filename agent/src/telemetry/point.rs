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
//! NaN and infinite samples are skipped: line protocol has no spelling for them.

use std::collections::BTreeMap;

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

/// Turns one collection into points, grouped by family.
pub fn from_collection(
    w: &MetricWriter,
    common: &CommonTags,
    timestamp_ns: i64,
) -> Vec<FamilyPoints> {
    let mut out = Vec::new();
    w.for_each_family(|name, ty, body| {
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
    });
    out
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
}
