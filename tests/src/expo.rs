//! A small parser for Prometheus text format 0.0.4, for comparing exporters in tests.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::anyhow;

/// One sample: metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// The label set without the metric name, e.g. `{cpu="0",mode="idle"}`.
    pub fn label_key(&self) -> String {
        let parts: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{{{}}}", parts.join(","))
    }
}

/// A parsed exposition: family types and every sample.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: BTreeMap<String, String>,
    pub helps: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Names of the families that have at least one sample.
    pub fn family_names(&self) -> BTreeSet<String> {
        self.samples
            .iter()
            .map(|s| self.family_of(&s.name))
            .collect()
    }

    /// The family a sample name belongs to (histogram and summary suffixes stripped).
    pub fn family_of(&self, name: &str) -> String {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if matches!(
                    self.types.get(base).map(String::as_str),
                    Some("histogram" | "summary")
                ) {
                    return base.to_owned();
                }
            }
        }
        name.to_owned()
    }

    /// Samples of one metric name.
    pub fn get(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// The value of the one sample of `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

/// Parses text format, failing on anything malformed.
pub fn parse(text: &str) -> anyhow::Result<Exposition> {
    let mut e = Exposition::default();
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest
                .split_once(' ')
                .ok_or_else(|| anyhow!("line {lineno}: bad TYPE"))?;
            e.types.insert(name.to_owned(), ty.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            e.helps.insert(name.to_owned(), help.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        e.samples
            .push(parse_sample(line).map_err(|err| anyhow!("line {lineno}: {err}: {line}"))?);
    }
    Ok(e)
}

fn parse_sample(line: &str) -> anyhow::Result<Sample> {
    let name_end = line.find(['{', ' ']).ok_or_else(|| anyhow!("no value"))?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut i = 0;
        loop {
            let tail = r[i..].trim_start_matches([',', ' ']);
            i = r.len() - tail.len();
            if tail.starts_with('}') {
                i += 1;
                break;
            }
            let eq = tail.find('=').ok_or_else(|| anyhow!("label without ="))?;
            let key = tail[..eq].trim().to_owned();
            let after = &tail[eq + 1..];
            let body = after
                .strip_prefix('"')
                .ok_or_else(|| anyhow!("label value not quoted"))?;
            let mut value = String::new();
            let mut escaped = false;
            let mut close = None;
            for (j, c) in body.char_indices() {
                match (escaped, c) {
                    (true, 'n') => (value.push('\n'), escaped = false).1,
                    (true, c) => (value.push(c), escaped = false).1,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        close = Some(j);
                        break;
                    }
                    (false, c) => value.push(c),
                }
            }
            let close = close.ok_or_else(|| anyhow!("unterminated label value"))?;
            labels.insert(key, value);
            // position just after the closing quote, relative to r
            i = r.len() - body.len() + close + 1;
        }
        rest = &r[i..];
    }
    let mut fields = rest.split_ascii_whitespace();
    let v = fields.next().ok_or_else(|| anyhow!("no value"))?;
    let value = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| anyhow!("bad value {v:?}"))?,
    };
    Ok(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_with_escapes() {
        let e = parse("# TYPE a counter\na{x=\"1\",y=\"q\\\"\\\\\\n,}\"} 2.5e+06\nb 1\n")
            .expect("parse");
        assert_eq!(e.samples.len(), 2);
        assert_eq!(e.samples[0].labels["y"], "q\"\\\n,}");
        assert_eq!(e.samples[0].value, 2.5e6);
        assert_eq!(e.value("b", &[]), Some(1.0));
        assert!(parse("a{x=1} 2\n").is_err());
    }
}
