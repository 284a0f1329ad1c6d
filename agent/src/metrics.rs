//! `MetricWriter`: collects samples by family and renders Prometheus text format 0.0.4.
//!
//! Collectors append samples in any order; the writer keeps each family's lines together
//! (the text format requires it) and renders families sorted by name, as node_exporter does.
//! Values are formatted exactly like Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which is what
//! node_exporter's client library uses, so the two exporters print identical numbers.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Untyped,
    /// Lines `<name>{quantile="q"}`, `<name>_sum` and `<name>_count` (see `sample_suffixed`).
    Summary,
    /// Lines `<name>_bucket{le="b"}`, `<name>_sum` and `<name>_count` (see `sample_suffixed`).
    Histogram,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Untyped => "untyped",
            MetricType::Summary => "summary",
            MetricType::Histogram => "histogram",
        }
    }
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    ty: MetricType,
    /// Rendered sample lines, each ending in `\n`.
    body: String,
}

/// Accumulates the samples of one scrape.
#[derive(Debug, Default)]
pub struct MetricWriter {
    families: Vec<Family>,
    index: HashMap<String, usize, BuildHasherDefault<Fnv1a>>,
    /// Index of the family written last: collectors usually write a family's samples in a row.
    last: Option<usize>,
}

impl MetricWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the writer for the next scrape but keeps its families and buffers, so a scrape
    /// of a steady host allocates almost nothing. Family names that stop appearing (textfile
    /// metrics that went away) are dropped once they outnumber the live ones.
    pub fn clear(&mut self) {
        let live = self.families.iter().filter(|f| !f.body.is_empty()).count();
        if self.families.len() > 2 * live + 64 {
            *self = Self::default();
            return;
        }
        for f in &mut self.families {
            f.body.clear();
        }
        self.last = None;
    }

    /// Appends a gauge sample. `labels` must be sorted by label name.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.sample(MetricType::Gauge, name, help, labels, value);
    }

    /// Appends a counter sample. `labels` must be sorted by label name.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.sample(MetricType::Counter, name, help, labels, value);
    }

    /// Appends an untyped sample. `labels` must be sorted by label name.
    pub fn untyped(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.sample(MetricType::Untyped, name, help, labels, value);
    }

    /// Appends one sample to family `name`, creating the family with `help` and `ty` on first
    /// use. Later calls keep the first help text and type.
    pub fn sample(
        &mut self,
        ty: MetricType,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.sample_suffixed(ty, name, "", help, labels, value);
    }

    /// Appends one line of family `name` named `name` + `suffix`: how summaries and
    /// histograms write their `_bucket`, `_sum` and `_count` lines (a quantile line has no
    /// suffix). `labels` must be sorted by name, `le` and `quantile` included.
    pub fn sample_suffixed(
        &mut self,
        ty: MetricType,
        name: &str,
        suffix: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        debug_assert!(
            labels.windows(2).all(|w| w[0].0 < w[1].0),
            "labels of {name} must be sorted by name: {labels:?}"
        );
        let idx = self.family_index(ty, name, help);
        let body = &mut self.families[idx].body;
        body.push_str(name);
        body.push_str(suffix);
        write_labels(body, labels);
        body.push(' ');
        write_value(body, value);
        body.push('\n');
    }

    /// The type of family `name`, if a sample of it was written (the textfile collector uses it
    /// to refuse a file that redefines a family with another type).
    pub fn family_type(&self, name: &str) -> Option<MetricType> {
        self.index.get(name).map(|&i| self.families[i].ty)
    }

    /// Number of samples written so far (for tests and self-checks).
    pub fn sample_count(&self) -> usize {
        self.families
            .iter()
            .map(|f| f.body.bytes().filter(|&b| b == b'\n').count())
            .sum()
    }

    fn family_index(&mut self, ty: MetricType, name: &str, help: &str) -> usize {
        if let Some(i) = self.last {
            if self.families[i].name == name {
                return i;
            }
        }
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                let i = self.families.len();
                self.families.push(Family {
                    name: name.to_owned(),
                    help: help.to_owned(),
                    ty,
                    body: String::new(),
                });
                self.index.insert(name.to_owned(), i);
                i
            }
        };
        self.last = Some(i);
        i
    }

    /// Renders every non-empty family, sorted by name, in text format 0.0.4.
    pub fn render(&self, out: &mut String) {
        let mut order: Vec<&Family> = self
            .families
            .iter()
            .filter(|f| !f.body.is_empty())
            .collect();
        order.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let total: usize = order
            .iter()
            .map(|f| f.body.len() + f.help.len() + 2 * f.name.len() + 24)
            .sum();
        out.reserve(total);
        for f in order {
            out.push_str("# HELP ");
            out.push_str(&f.name);
            out.push(' ');
            escape_help(out, &f.help);
            out.push_str("\n# TYPE ");
            out.push_str(&f.name);
            out.push(' ');
            out.push_str(f.ty.as_str());
            out.push('\n');
            out.push_str(&f.body);
        }
    }

    /// Calls `f(name, type, lines)` for every non-empty family, in the order families were
    /// first written; `lines` are the rendered sample lines (`name{labels} value\n`...). The
    /// telemetry path turns these into points without a second copy of the samples.
    pub fn for_each_family(&self, mut f: impl FnMut(&str, MetricType, &str)) {
        for fam in self.families.iter().filter(|f| !f.body.is_empty()) {
            f(&fam.name, fam.ty, &fam.body);
        }
    }

    /// Renders to a new string.
    pub fn render_to_string(&self) -> String {
        let mut s = String::new();
        self.render(&mut s);
        s
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    out.push('}');
}

/// FNV-1a: family names are short and trusted (they come from collectors and the operator's own
/// textfiles), so a fast non-keyed hash beats SipHash on the scrape path.
#[derive(Debug, Default, Clone, Copy)]
struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Escapes a label value: backslash, double quote and line feed.
pub fn escape_label_value(out: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes a HELP text: backslash and line feed.
fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes `v` as Go's `strconv.FormatFloat(v, 'g', -1, 64)` does, with the text format's
/// spellings of the special values: the shortest digits that round-trip, in `%e` form when the
/// decimal exponent is below -4 or at least 6, else in `%f` form.
pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    // Fast path for the common case: small integers print as themselves.
    if v.fract() == 0.0 && v.abs() < 1e6 {
        let mut b = itoa::Buffer::new();
        out.push_str(b.format(v as i64));
        return;
    }
    // Rust's `{:e}` prints the shortest round-trip digits, e.g. `1.2345e9` or `-5e-7`; format
    // into a stack buffer, since this runs for every non-integer sample of every scrape.
    let mut buf = StackStr::default();
    let _ = write!(buf, "{v:e}");
    let formatted = buf.as_str();
    let (mantissa, exp) = formatted.split_once('e').unwrap_or((formatted, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(mantissa);
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        let mut b = itoa::Buffer::new();
        out.push_str(b.format(e));
        return;
    }
    // %f form: the digits are the mantissa's first digit and its fraction ("1.2345" → "1",
    // "2345"); place the decimal point `exp + 1` digits in.
    let (first, frac) = mantissa.split_at(1);
    let frac = frac.strip_prefix('.').unwrap_or(frac);
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(first);
        out.push_str(frac);
    } else {
        // `exp` more integer digits after `first` (0 <= exp < 6).
        let more = exp as usize;
        out.push_str(first);
        if frac.len() <= more {
            out.push_str(frac);
            for _ in frac.len()..more {
                out.push('0');
            }
        } else {
            out.push_str(&frac[..more]);
            out.push('.');
            out.push_str(&frac[more..]);
        }
    }
}

/// A fixed-size `fmt::Write` target for one formatted f64 (`{:e}` needs at most 24 bytes).
#[derive(Default)]
struct StackStr {
    buf: [u8; 32],
    len: usize,
}

impl StackStr {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are valid UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Content type of OpenMetrics 1.0.0, as client_golang's promhttp sends it.
pub const OPENMETRICS_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Rewrites a rendered text format 0.0.4 exposition (the writer's families and the
/// `prometheus` registry's) as OpenMetrics 1.0.0 text, the way client_golang's OpenMetrics
/// encoder writes the same families: a counter named `*_total` becomes family `*` (samples keep
/// their names), other counters and untyped families are `unknown`, HELP escapes `"` too,
/// sample values are floats (`1.0`) except bucket and sample counts, `le` and `quantile` are
/// floats, timestamps are seconds, and `# EOF` ends it. Done on the finished text, once per
/// collection and only when a scraper asks for it, so the text path stays as it is.
pub fn text_to_openmetrics(text: &str, out: &mut String) {
    out.reserve(text.len() + text.len() / 8 + 8);
    let mut help: Option<(&str, &str)> = None;
    let mut family: Option<(&str, &str)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let h = help.take().filter(|(n, _)| *n == name).map(|(_, h)| h);
            om_header(out, name, ty, h);
            family = Some((name, ty));
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        if !family.is_some_and(|(f, ty)| in_family(name, f, ty)) {
            // A family without a TYPE line is untyped.
            let h = help.take().filter(|(n, _)| *n == name).map(|(_, h)| h);
            om_header(out, name, "untyped", h);
            family = Some((name, "untyped"));
        }
        let ty = family.map_or("untyped", |(_, ty)| ty);
        om_sample(out, line, name_end, ty);
    }
    out.push_str("# EOF\n");
}

fn in_family(sample: &str, family: &str, ty: &str) -> bool {
    match sample.strip_prefix(family) {
        Some("") => true,
        Some("_sum" | "_count") => ty == "summary" || ty == "histogram",
        Some("_bucket") => ty == "histogram",
        _ => false,
    }
}

fn om_header(out: &mut String, name: &str, ty: &str, help: Option<&str>) {
    let (name, ty) = match ty {
        "counter" => match name.strip_suffix("_total") {
            Some(base) => (base, "counter"),
            None => (name, "unknown"),
        },
        "gauge" | "summary" | "histogram" => (name, ty),
        _ => (name, "unknown"),
    };
    if let Some(h) = help {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        // Text 0.0.4 already escapes backslash and newline; OpenMetrics also escapes quotes.
        for c in h.chars() {
            if c == '"' {
                out.push_str("\\\"");
            } else {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(ty);
    out.push('\n');
}

fn om_sample(out: &mut String, line: &str, name_end: usize, ty: &str) {
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    out.push_str(name);
    let float_label = match ty {
        "histogram" if name.ends_with("_bucket") => Some("le"),
        "summary" if !name.ends_with("_sum") && !name.ends_with("_count") => Some("quantile"),
        _ => None,
    };
    if rest.starts_with('{') {
        let end = labels_end(rest);
        let labels = &rest[..end];
        rest = &rest[end..];
        match float_label {
            Some(key) => rewrite_float_label(out, labels, key),
            None => out.push_str(labels),
        }
    }
    let mut parts = rest.split_whitespace();
    let value = parts.next().unwrap_or("NaN");
    out.push(' ');
    let count = (ty == "histogram" && (name.ends_with("_bucket") || name.ends_with("_count")))
        || (ty == "summary" && name.ends_with("_count"));
    if count && value.bytes().all(|b| b.is_ascii_digit()) {
        out.push_str(value);
    } else {
        om_float(out, value);
    }
    if let Some(ts) = parts.next().and_then(|t| t.parse::<i64>().ok()) {
        out.push(' ');
        let mut secs = String::new();
        write_value(&mut secs, ts as f64 / 1000.0);
        om_float(out, &secs);
    }
    out.push('\n');
}

/// The length of the `{...}` label block at the start of `s`, quotes and escapes respected.
fn labels_end(s: &str) -> usize {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'}' if !in_quotes => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// Copies a `{...}` label block, writing label `key`'s value as an OpenMetrics float.
fn rewrite_float_label(out: &mut String, labels: &str, key: &str) {
    let needle = format!("{key}=\"");
    let at = labels
        .match_indices(&needle)
        .find(|(i, _)| matches!(labels.as_bytes().get(i.wrapping_sub(1)), Some(b'{' | b',')))
        .map(|(i, _)| i + needle.len());
    match at.and_then(|start| labels[start..].find('"').map(|len| (start, start + len))) {
        Some((start, end)) => {
            out.push_str(&labels[..start]);
            om_float(out, &labels[start..end]);
            out.push_str(&labels[end..]);
        }
        None => out.push_str(labels),
    }
}

/// A Go-formatted float as OpenMetrics writes it: integers get `.0`, `-0` is `0.0`.
fn om_float(out: &mut String, v: &str) {
    match v {
        "NaN" | "+Inf" | "-Inf" => out.push_str(v),
        "-0" => out.push_str("0.0"),
        _ => {
            out.push_str(v);
            if !v.contains(['.', 'e', 'E']) {
                out.push_str(".0");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(v: f64) -> String {
        let mut s = String::new();
        write_value(&mut s, v);
        s
    }

    #[test]
    fn values_match_go_formatting() {
        // Each pair is what node_exporter 1.5 printed for the value.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (262590.0, "262590"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (2466183.0, "2.466183e+06"),
            (1.795491807e9, "1.795491807e+09"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
            (514.83, "514.83"),
            (0.06, "0.06"),
            (0.000174469, "0.000174469"),
            (6.9964e-05, "6.9964e-05"),
            (1.795492323205221e9, "1.795492323205221e+09"),
            (-125000.0, "-125000"),
            (3.601967, "3.601967"),
            (0.01, "0.01"),
            (123456.5, "123456.5"),
            (1234567.5, "1.2345675e+06"),
            (-0.5, "-0.5"),
            (1e-300, "1e-300"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(fmt(*v), *want, "formatting {v:?}");
        }
    }

    #[test]
    fn clear_keeps_families_but_not_samples() {
        let mut w = MetricWriter::new();
        w.gauge("a", "A.", &[], 1.0);
        w.gauge("b", "B.", &[], 2.0);
        w.clear();
        assert_eq!(w.render_to_string(), "");
        w.gauge("b", "B.", &[], 3.0);
        assert_eq!(w.render_to_string(), "# HELP b B.\n# TYPE b gauge\nb 3\n");
        // Names that stopped appearing are dropped once they dominate.
        for i in 0..200 {
            w.gauge(&format!("churn_{i}"), "C.", &[], 1.0);
        }
        w.clear();
        w.gauge("b", "B.", &[], 4.0);
        w.clear();
        assert!(w.families.len() <= 201);
        w.clear();
        assert_eq!(w.families.len(), 0, "mostly-dead writer is reset");
    }

    #[test]
    fn families_render_sorted_and_grouped() {
        let mut w = MetricWriter::new();
        w.counter("node_b_total", "B.", &[("cpu", "0")], 1.0);
        w.gauge("node_a", "A with \\ and\nnewline.", &[], 2.5);
        w.counter("node_b_total", "ignored", &[("cpu", "1")], 3.0);
        w.gauge("node_c", "C.", &[("path", "a\"b\\c\nd")], 1.0);
        let want = "# HELP node_a A with \\\\ and\\nnewline.\n# TYPE node_a gauge\nnode_a 2.5\n\
# HELP node_b_total B.\n# TYPE node_b_total counter\nnode_b_total{cpu=\"0\"} 1\nnode_b_total{cpu=\"1\"} 3\n\
# HELP node_c C.\n# TYPE node_c gauge\nnode_c{path=\"a\\\"b\\\\c\\nd\"} 1\n";
        assert_eq!(w.render_to_string(), want);
        assert_eq!(w.sample_count(), 4);
        assert_eq!(w.family_type("node_b_total"), Some(MetricType::Counter));
    }

    #[test]
    fn histogram_lines_stay_in_their_family() {
        let mut w = MetricWriter::new();
        let h = MetricType::Histogram;
        w.sample_suffixed(
            h,
            "lat",
            "_bucket",
            "Latency.",
            &[("le", "1"), ("p", "/")],
            2.0,
        );
        w.sample_suffixed(h, "lat", "_bucket", "", &[("le", "+Inf"), ("p", "/")], 3.0);
        w.sample_suffixed(h, "lat", "_sum", "", &[("p", "/")], 1.5);
        w.sample_suffixed(h, "lat", "_count", "", &[("p", "/")], 3.0);
        w.gauge("lat_a", "Sorts after lat.", &[], 1.0);
        let want = "# HELP lat Latency.\n# TYPE lat histogram\n\
lat_bucket{le=\"1\",p=\"/\"} 2\nlat_bucket{le=\"+Inf\",p=\"/\"} 3\n\
lat_sum{p=\"/\"} 1.5\nlat_count{p=\"/\"} 3\n\
# HELP lat_a Sorts after lat.\n# TYPE lat_a gauge\nlat_a 1\n";
        assert_eq!(w.render_to_string(), want);
        assert_eq!(w.family_type("lat"), Some(MetricType::Histogram));
        assert_eq!(w.sample_count(), 5);
    }
    #[test]
    fn openmetrics_as_client_golang_writes_it() {
        let text = r#"# HELP a_total A "quoted" \\ help.
# TYPE a_total counter
a_total{x="}\""} 3
# HELP b B.
# TYPE b counter
b 1.5
# HELP c C.
# TYPE c gauge
c -0
c{k="v"} 1e+06
# HELP d D.
# TYPE d untyped
d NaN
# HELP h H.
# TYPE h histogram
h_bucket{path="le=\"x",le="1"} 2
h_bucket{le="+Inf"} 3
h_sum 4
h_count 3
# HELP s S.
# TYPE s summary
s{quantile="0.5"} 7
s_sum 8
s_count 2
e 5 1700000000123
"#;
        let mut om = String::new();
        text_to_openmetrics(text, &mut om);
        assert_eq!(
            om,
            r#"# HELP a A \"quoted\" \\ help.
# TYPE a counter
a_total{x="}\""} 3.0
# HELP b B.
# TYPE b unknown
b 1.5
# HELP c C.
# TYPE c gauge
c 0.0
c{k="v"} 1e+06
# HELP d D.
# TYPE d unknown
d NaN
# HELP h H.
# TYPE h histogram
h_bucket{path="le=\"x",le="1.0"} 2
h_bucket{le="+Inf"} 3
h_sum 4.0
h_count 3
# HELP s S.
# TYPE s summary
s{quantile="0.5"} 7.0
s_sum 8.0
s_count 2
# TYPE e unknown
e 5.0 1.700000000123e+09
# EOF
"#
        );
    }
}
