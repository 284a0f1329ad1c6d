//! The textfile collector's merger: the families of every accepted `*.prom` file of one
//! scrape, merged by name as node_exporter 1.12's textfile collector and registry merge them
//! (label sets completed, inconsistent HELP texts left out, duplicate series dropped), then
//! written with `node_textfile_mtime_seconds` and `node_textfile_scrape_error`.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::metrics::{self, MetricType, MetricWriter};
use crate::textparse::{Family, FileError, Kind, Value};

/// Everything accepted so far in this scrape, by family name.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    families: Vec<MergedFamily>,
    index: HashMap<String, usize>,
    /// node_exporter 1.12's `metricsNamesToHelpTexts`: per family name, the first HELP text
    /// given and the last inconsistent one (empty when none).
    help_texts: HashMap<String, (String, String)>,
    /// Accepted files and their mtimes, by path (sorted, one per path, as node_exporter's map).
    mtimes: BTreeMap<String, f64>,
}

#[derive(Debug)]
struct MergedFamily {
    name: String,
    kind: Kind,
    /// Each accepted file's part of the family, in read order.
    parts: Vec<Part>,
}

/// A series: labels sorted by name, its value, and the line of its (first) sample.
type Series = (Vec<(String, String)>, Value, usize);

/// One file's family, its label sets completed.
#[derive(Debug)]
struct Part {
    /// The file, for the default help text and warnings.
    source: String,
    /// Its `# HELP`, if it had one.
    help: Option<String>,
    /// With node_exporter's empty label values filled in.
    metrics: Vec<Series>,
}

impl Merged {
    /// The kind a family (or a summary/histogram line name) already has in this scrape.
    fn kind_of(&self, name: &str) -> Option<Kind> {
        self.index.get(name).map(|&i| self.families[i].kind)
    }

    /// Records the mtime of a file whose families were accepted.
    pub(crate) fn accepted(&mut self, path: String, mtime: f64) {
        self.mtimes.insert(path, mtime);
    }

    /// Accepts one parsed file, or rejects it whole when one of its families clashes in type
    /// with an earlier file or another collector. A family whose HELP differs from the first
    /// HELP of its name this scrape (or any family of a name that already had such a
    /// conflict) is left out and sets `errored`, as node_exporter 1.12 does.
    pub(crate) fn add(
        &mut self,
        path: &str,
        families: Vec<Family>,
        out: &MetricWriter,
        errored: &mut bool,
    ) -> Result<(), FileError> {
        for f in &families {
            let kind = f.kind.unwrap_or(Kind::Untyped);
            let earlier = |n: &str| self.kind_of(n);
            if let Some((name, other)) = clash(&f.name, kind, earlier) {
                return Err(FileError {
                    line: f.line,
                    msg: format!(
                        "{} {:?} clashes with {} {name:?} of an earlier file",
                        kind.as_str(),
                        f.name,
                        other.as_str()
                    ),
                });
            }
            let elsewhere = |n: &str| out.family_type(n).map(Kind::from_metric_type);
            if let Some((name, other)) = clash(&f.name, kind, elsewhere) {
                return Err(FileError {
                    line: f.line,
                    msg: format!(
                        "{} {:?} clashes with {} {name:?} of another collector",
                        kind.as_str(),
                        f.name,
                        other.as_str()
                    ),
                });
            }
        }
        for f in families {
            if let Some((first, conflict)) = self.help_texts.get(&f.name) {
                let differs = f.help.as_ref().is_some_and(|h| h != first);
                if differs || !conflict.is_empty() {
                    tracing::warn!(
                        metric = %f.name,
                        original_help_text = %first,
                        new_help_text = %f.help.as_deref().unwrap_or(""),
                        file = %path,
                        "textfile: inconsistent metric help text, leaving the family out"
                    );
                    let entry = (first.clone(), f.help.clone().unwrap_or_default());
                    self.help_texts.insert(f.name.clone(), entry);
                    *errored = true;
                    continue;
                }
            }
            if let Some(h) = &f.help {
                self.help_texts
                    .insert(f.name.clone(), (h.clone(), String::new()));
            }
            let kind = f.kind.unwrap_or(Kind::Untyped);
            let i = match self.index.get(&f.name) {
                Some(&i) => i,
                None => {
                    self.index.insert(f.name.clone(), self.families.len());
                    self.families.push(MergedFamily {
                        name: f.name.clone(),
                        kind,
                        parts: Vec::new(),
                    });
                    self.families.len() - 1
                }
            };
            // node_exporter gives every series of a file's family the union of its label
            // names, with "" for the missing ones.
            let mut names: Vec<&str> = Vec::new();
            for m in &f.metrics {
                for (k, _) in &m.labels {
                    if !names.contains(&k.as_str()) {
                        names.push(k);
                    }
                }
            }
            let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
            let mut metrics = Vec::with_capacity(f.metrics.len());
            for m in f.metrics {
                let mut labels = m.labels;
                for n in &names {
                    if !labels.iter().any(|(k, _)| k == n) {
                        labels.push((n.clone(), String::new()));
                    }
                }
                labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                metrics.push((labels, m.value, m.line));
            }
            self.families[i].parts.push(Part {
                source: path.to_owned(),
                help: f.help,
                metrics,
            });
        }
        Ok(())
    }

    /// Writes every merged family, the mtimes and the error flag. A family's HELP is the first
    /// part's (its own, or "Metric read from" every file that gave the family); parts whose HELP
    /// differs from it are dropped, as node_exporter's registry drops them. A series that an
    /// earlier line or file already gave is dropped with a warning and sets `errored`.
    pub(crate) fn write(mut self, out: &mut MetricWriter, errored: &mut bool) {
        let mut seen: HashSet<Vec<(String, String)>> = HashSet::new();
        for fam in &mut self.families {
            let default_help = {
                let sources: Vec<&str> = fam.parts.iter().map(|p| p.source.as_str()).collect();
                format!("Metric read from {}", sources.join(", "))
            };
            let help_of = |p: &Part| p.help.clone().unwrap_or_else(|| default_help.clone());
            let Some(help) = fam.parts.first().map(help_of) else {
                continue;
            };
            seen.clear();
            let mut metrics = Vec::new();
            for part in std::mem::take(&mut fam.parts) {
                if help_of(&part) != help {
                    tracing::warn!(
                        file = %part.source,
                        metric = %fam.name,
                        "textfile: dropping a family whose help text differs from the first one"
                    );
                    continue;
                }
                for (labels, value, line) in part.metrics {
                    if !seen.insert(labels.clone()) {
                        tracing::warn!(
                            file = %part.source,
                            line,
                            metric = %fam.name,
                            "textfile: dropping duplicate series"
                        );
                        *errored = true;
                        continue;
                    }
                    metrics.push((labels, value));
                }
            }
            // node_exporter's registry sorts a family's series by label count, then values.
            metrics.sort_by(|(a, _), (b, _)| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| a.iter().map(|(_, v)| v).cmp(b.iter().map(|(_, v)| v)))
            });
            for (labels, value) in &metrics {
                write_metric(out, &fam.name, fam.kind, &help, labels, value);
            }
        }
        for (file, mtime) in &self.mtimes {
            out.gauge(
                "node_textfile_mtime_seconds",
                "Unixtime mtime of textfiles successfully read.",
                &[("file", file)],
                *mtime,
            );
        }
        out.gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            &[],
            if *errored { 1.0 } else { 0.0 },
        );
    }
}

/// Whether a family `name` of `kind` clashes with a family `kind_of` already knows: the same
/// name with another type, or the `_bucket`/`_sum`/`_count` line names of a summary or
/// histogram on either side. Returns the clashing name and its type.
pub(crate) fn clash(
    name: &str,
    kind: Kind,
    kind_of: impl Fn(&str) -> Option<Kind>,
) -> Option<(String, Kind)> {
    if let Some(other) = kind_of(name) {
        if other != kind {
            return Some((name.to_owned(), other));
        }
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if matches!(kind, Kind::Summary | Kind::Histogram) {
            let part = format!("{name}{suffix}");
            if let Some(other) = kind_of(&part) {
                return Some((part, other));
            }
        } else if let Some(base) = name.strip_suffix(suffix).filter(|b| !b.is_empty()) {
            match kind_of(base) {
                Some(other @ Kind::Histogram) => return Some((base.to_owned(), other)),
                Some(other @ Kind::Summary) if suffix != "_bucket" => {
                    return Some((base.to_owned(), other))
                }
                _ => {}
            }
        }
    }
    None
}

/// Writes one series. Summaries and histograms are written the way node_exporter's client
/// library renders them: quantiles or buckets sorted (the last value given for a bound wins),
/// a `+Inf` bucket added when missing, then `_sum` and `_count`.
pub(crate) fn write_metric(
    out: &mut MetricWriter,
    name: &str,
    kind: Kind,
    help: &str,
    labels: &[(String, String)],
    value: &Value,
) {
    let labels: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let lines = Lines {
        ty: match kind {
            Kind::Summary => MetricType::Summary,
            _ => MetricType::Histogram,
        },
        name,
        help,
        labels: &labels,
    };
    match value {
        Value::Scalar(v) => {
            let ty = match kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                _ => MetricType::Untyped,
            };
            out.sample(ty, name, help, &labels, *v);
        }
        Value::Summary {
            count,
            sum,
            quantiles,
        } => {
            for (q, v) in dedup_sorted(quantiles) {
                lines.write(out, "", Some(("quantile", q)), v);
            }
            lines.write(out, "_sum", None, *sum);
            lines.write(out, "_count", None, *count as f64);
        }
        Value::Histogram {
            count,
            sum,
            buckets,
        } => {
            let buckets = dedup_sorted(buckets);
            for &(le, c) in &buckets {
                lines.write(out, "_bucket", Some(("le", le)), c as f64);
            }
            if !buckets.last().is_some_and(|&(le, _)| le == f64::INFINITY) {
                let inf = Some(("le", f64::INFINITY));
                lines.write(out, "_bucket", inf, *count as f64);
            }
            lines.write(out, "_sum", None, *sum);
            lines.write(out, "_count", None, *count as f64);
        }
    }
}

/// Sorts (bound, value) pairs by bound, keeping the last value given for each bound, as
/// node_exporter's map from bound to value does.
pub(crate) fn dedup_sorted<T: Copy>(pairs: &[(f64, T)]) -> Vec<(f64, T)> {
    let mut v: Vec<(f64, T)> = Vec::with_capacity(pairs.len());
    for &(b, x) in pairs {
        match v.iter_mut().find(|(seen, _)| *seen == b) {
            Some(slot) => slot.1 = x,
            None => v.push((b, x)),
        }
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// The lines of one summary or histogram series.
#[derive(Debug)]
pub(crate) struct Lines<'a> {
    /// `Summary` or `Histogram`.
    ty: MetricType,
    name: &'a str,
    help: &'a str,
    /// Sorted by name, without `quantile` / `le`.
    labels: &'a [(&'a str, &'a str)],
}

impl Lines<'_> {
    /// Writes `<name><suffix>{labels[,extra]} value`; `extra` is the `quantile` or `le` label,
    /// placed in label-name order (node_exporter puts it last; the series are the same).
    fn write(&self, out: &mut MetricWriter, suffix: &str, extra: Option<(&str, f64)>, value: f64) {
        let (ty, name, help) = (self.ty, self.name, self.help);
        let Some((label, bound)) = extra else {
            out.sample_suffixed(ty, name, suffix, help, self.labels, value);
            return;
        };
        let mut formatted = String::new();
        metrics::write_value(&mut formatted, bound);
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(self.labels.len() + 1);
        all.extend_from_slice(self.labels);
        let at = all.partition_point(|(k, _)| *k < label);
        all.insert(at, (label, &formatted));
        out.sample_suffixed(ty, name, suffix, help, &all, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_clashes_with_its_line_names() {
        let kinds: HashMap<&str, Kind> = [
            ("rpc", Kind::Summary),
            ("lat", Kind::Histogram),
            ("g_sum", Kind::Gauge),
        ]
        .into_iter()
        .collect();
        let lookup = |n: &str| kinds.get(n).copied();
        assert_eq!(
            clash("rpc_sum", Kind::Untyped, lookup),
            Some(("rpc".into(), Kind::Summary))
        );
        assert_eq!(clash("rpc_bucket", Kind::Untyped, lookup), None);
        assert_eq!(
            clash("lat_bucket", Kind::Gauge, lookup),
            Some(("lat".into(), Kind::Histogram))
        );
        assert_eq!(
            clash("g", Kind::Summary, lookup),
            Some(("g_sum".into(), Kind::Gauge))
        );
        assert_eq!(
            clash("rpc", Kind::Histogram, lookup),
            Some(("rpc".into(), Kind::Summary))
        );
        assert_eq!(clash("rpc", Kind::Summary, lookup), None);
        assert_eq!(clash("_sum", Kind::Gauge, lookup), None);
    }
}
