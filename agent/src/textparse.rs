//! The text exposition format (0.0.4) parser of the textfile collector: one file's text into
//! metric families, accepted and rejected as node_exporter 1.12's parser (prometheus/common
//! 0.70 `expfmt.TextParser` with legacy name validation) accepts and rejects it, with the
//! 1-based line at fault when it rejects one: quoted names and the name as the first item in
//! the braces (`{"name",label="v"}`) included. Not followed: labels before the name inside the
//! braces (`{label="v","name"}`), which expfmt reads against the previous line's family; such
//! a file is rejected here.

use std::collections::{HashMap, HashSet};

use crate::gonum;
use crate::metrics::MetricType;

/// Why a file is rejected, with the 1-based line at fault.
#[derive(Debug, PartialEq)]
pub(crate) struct FileError {
    pub(crate) line: usize,
    pub(crate) msg: String,
}

/// A family's `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Untyped,
    Summary,
    Histogram,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
        }
    }

    pub(crate) fn from_metric_type(t: MetricType) -> Kind {
        match t {
            MetricType::Counter => Kind::Counter,
            MetricType::Gauge => Kind::Gauge,
            MetricType::Untyped => Kind::Untyped,
            MetricType::Summary => Kind::Summary,
            MetricType::Histogram => Kind::Histogram,
        }
    }
}

/// One family of one file.
#[derive(Debug, PartialEq)]
pub(crate) struct Family {
    pub(crate) name: String,
    pub(crate) help: Option<String>,
    /// Set by `# TYPE`, or to untyped by the first sample.
    pub(crate) kind: Option<Kind>,
    pub(crate) metrics: Vec<Metric>,
    /// Line that first named the family.
    pub(crate) line: usize,
}

/// One series (or, for summaries and histograms, one label set) of a family.
#[derive(Debug, PartialEq)]
pub(crate) struct Metric {
    /// In file order; for summaries and histograms without `quantile` / `le`.
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: Value,
    /// Line of the first sample.
    pub(crate) line: usize,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Value {
    Scalar(f64),
    Summary {
        count: u64,
        sum: f64,
        /// (quantile, value) in file order.
        quantiles: Vec<(f64, f64)>,
    },
    Histogram {
        count: u64,
        sum: f64,
        /// (upper bound, cumulative count) in file order.
        buckets: Vec<(f64, u64)>,
    },
}

/// What a sample line contributes to a summary or histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Role {
    /// A plain sample, quantile or bucket.
    Plain,
    /// `<name>_count` of a summary or histogram.
    Count,
    /// `<name>_sum` of a summary or histogram.
    Sum,
}

/// Parses a whole file. Families without samples are dropped. A file with client-side
/// timestamps is rejected, as node_exporter rejects it.
pub(crate) fn parse(text: &str) -> Result<Vec<Family>, FileError> {
    let mut p = Parser::default();
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let n = i + 1;
        p.line(n, line).map_err(|msg| FileError { line: n, msg })?;
        // The last piece has no newline after it: the parser reached the end of the input
        // inside a line, which node_exporter reports unless the piece is blank.
        if lines.peek().is_none() && !line.bytes().all(|b| b == b' ' || b == b'\t') {
            return Err(FileError {
                line: n,
                msg: "unexpected end of input stream".into(),
            });
        }
    }
    if let Some(line) = p.timestamp_line {
        return Err(FileError {
            line,
            msg: "unsupported client-side timestamp, skipping entire file".into(),
        });
    }
    let mut families = p.families;
    // node_exporter reads a float histogram's integer counts, which expfmt left unset once
    // any count of it was a float (`normalizeHistogram`): all of them read as 0.
    for (f, m) in p.float_histograms {
        if let Value::Histogram { count, buckets, .. } = &mut families[f].metrics[m].value {
            *count = 0;
            for b in buckets.iter_mut() {
                b.1 = 0;
            }
        }
    }
    families.retain(|f| !f.metrics.is_empty());
    Ok(families)
}

#[derive(Debug, Default)]
pub(crate) struct Parser {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    /// Summary and histogram metrics by family and label signature.
    grouped: HashMap<(usize, String), usize>,
    /// First line with a timestamp.
    timestamp_line: Option<usize>,
    /// Histograms (family, metric) given a count or bucket population that is not a whole
    /// number: expfmt (since prometheus/common 0.50) stores them as float histograms.
    float_histograms: HashSet<(usize, usize)>,
}

/// A histogram count or bucket population as expfmt stores it: `Ok(Some(n))` for a whole
/// number (Go's `value == float64(uint64(value))`), `Ok(None)` for any other non-negative
/// value (a float count), an error for a negative one.
fn histogram_count(value: f64, what: &str, name: &str) -> Result<Option<u64>, String> {
    // 2^64 itself does not survive Go's conversion to uint64.
    if (0.0..18_446_744_073_709_551_616.0).contains(&value) && value.fract() == 0.0 {
        return Ok(Some(value as u64));
    }
    if value < 0.0 {
        return Err(format!("negative {what} for histogram {name:?}"));
    }
    Ok(None)
}

impl Parser {
    fn line(&mut self, n: usize, line: &str) -> Result<(), String> {
        let mut c = Cursor::new(line);
        c.skip_blanks();
        match c.peek() {
            None => Ok(()),
            Some(b'#') => {
                c.bump();
                self.comment(n, &mut c)
            }
            Some(_) => self.sample(n, &mut c),
        }
    }

    /// `# HELP name text`, `# TYPE name type`, or any other comment (ignored).
    fn comment(&mut self, n: usize, c: &mut Cursor) -> Result<(), String> {
        c.skip_blanks();
        let keyword = c.take_until_blank();
        if c.at_end() {
            return Ok(());
        }
        let help = match keyword {
            "HELP" => true,
            "TYPE" => false,
            _ => return Ok(()),
        };
        c.skip_blanks();
        let name = c.take_name(true)?;
        if c.at_end() {
            return Ok(());
        }
        if !c.at_blank() {
            return Err("invalid metric name in comment".into());
        }
        check_metric_name(&name)?;
        let name = name.as_str();
        let (fi, _) = self.family(name, n);
        c.skip_blanks();
        if c.at_end() {
            return Ok(());
        }
        let fam = &mut self.families[fi];
        if help {
            if fam.help.is_some() {
                return Err(format!("second HELP line for metric name {:?}", fam.name));
            }
            fam.help = Some(unescape_help(c.rest())?);
        } else {
            if fam.kind.is_some() {
                return Err(format!(
                    "second TYPE line for metric name {:?}, or TYPE reported after samples",
                    fam.name
                ));
            }
            let t = c.rest();
            fam.kind = Some(match t.to_ascii_uppercase().as_str() {
                "COUNTER" => Kind::Counter,
                "GAUGE" => Kind::Gauge,
                "UNTYPED" => Kind::Untyped,
                "SUMMARY" => Kind::Summary,
                "HISTOGRAM" => Kind::Histogram,
                _ => return Err(format!("unknown metric type {t:?}")),
            });
        }
        Ok(())
    }

    /// `name{label="value",...} value [timestamp]`.
    fn sample(&mut self, n: usize, c: &mut Cursor) -> Result<(), String> {
        // Since prometheus/common 0.60 the name may also open the braces: `{"name",a="b"} 1`.
        let in_braces = c.peek() == Some(b'{');
        let name = if in_braces {
            c.bump();
            c.skip_blanks();
            let name = c.take_name(false)?;
            if name.is_empty() {
                return Err("invalid metric name".into());
            }
            c.skip_blanks();
            match c.peek() {
                Some(b',' | b'}') => {}
                // A label before the name: expfmt reads it against the previous line's family
                // (with none, it fails as here); that is not followed.
                Some(b'=') if self.families.is_empty() => return Err("invalid metric name".into()),
                Some(b'=') => return Err("labels before the metric name are not supported".into()),
                other => return Err(format!("unexpected end of metric name {}", describe(other))),
            }
            name
        } else {
            let name = c.take_name(true)?;
            if name.is_empty() {
                return Err("invalid metric name".into());
            }
            name
        };
        check_metric_name(&name)?;
        let (fi, role) = self.family(&name, n);
        let kind = *self.families[fi].kind.get_or_insert(Kind::Untyped);
        let mut labels = Vec::new();
        // The `quantile` of a summary line or the `le` of a histogram line.
        let mut bound = f64::NAN;
        let more_labels = if in_braces {
            // `,` continues with labels, `}` ends them.
            let comma = c.peek() == Some(b',');
            c.bump();
            comma
        } else {
            c.skip_blanks();
            let open = c.peek() == Some(b'{');
            if open {
                c.bump();
            }
            open
        };
        if more_labels {
            let fam_name = &self.families[fi].name;
            read_labels(c, kind, fam_name, &mut labels, &mut bound)?;
        }
        c.skip_blanks();
        let token = c.take_until_blank();
        let value = gonum::parse_float(token)
            .ok_or_else(|| format!("expected float as value, got {token:?}"))?;
        if !c.at_end() {
            c.skip_blanks();
            let ts = c.take_until_blank();
            if ts.parse::<i64>().is_err() {
                return Err(format!("expected integer as timestamp, got {ts:?}"));
            }
            if !c.rest().is_empty() {
                return Err(format!("spurious string after timestamp: {:?}", c.rest()));
            }
            self.timestamp_line.get_or_insert(n);
        }
        match kind {
            Kind::Counter | Kind::Gauge | Kind::Untyped => {
                self.families[fi].metrics.push(Metric {
                    labels,
                    value: Value::Scalar(value),
                    line: n,
                });
            }
            Kind::Summary => {
                let m = self.grouped_metric(fi, labels, n, kind);
                if let Value::Summary {
                    count,
                    sum,
                    quantiles,
                } = &mut self.families[fi].metrics[m].value
                {
                    match role {
                        Role::Count => *count = value as u64,
                        Role::Sum => *sum = value,
                        // A line without `quantile` still creates the (empty) summary.
                        Role::Plain if !bound.is_nan() => quantiles.push((bound, value)),
                        Role::Plain => {}
                    }
                }
            }
            Kind::Histogram => {
                let m = self.grouped_metric(fi, labels, n, kind);
                let family = &mut self.families[fi];
                let mut float = false;
                if let Value::Histogram {
                    count,
                    sum,
                    buckets,
                } = &mut family.metrics[m].value
                {
                    match role {
                        Role::Count => match histogram_count(value, "count", &family.name)? {
                            Some(c) => *count = c,
                            None => float = true,
                        },
                        Role::Sum => *sum = value,
                        Role::Plain if !bound.is_nan() => {
                            let c = histogram_count(value, "bucket population", &family.name)?;
                            // A float population is kept as 0 (what node_exporter reads).
                            buckets.push((bound, c.unwrap_or(0)));
                            float |= c.is_none();
                        }
                        Role::Plain => {}
                    }
                }
                if float {
                    self.float_histograms.insert((fi, m));
                }
            }
        }
        Ok(())
    }

    /// The family a sample or comment named `name` belongs to: the family of that name, else the
    /// summary or histogram it is the `_sum`, `_count` (or `_bucket`) line of, else a new one.
    fn family(&mut self, name: &str, n: usize) -> (usize, Role) {
        if let Some(&i) = self.index.get(name) {
            return (i, Role::Plain);
        }
        let parts = [
            ("_count", Role::Count, true),
            ("_sum", Role::Sum, true),
            ("_bucket", Role::Plain, false),
        ];
        for want in [Kind::Summary, Kind::Histogram] {
            for (suffix, role, in_summary) in parts {
                if want == Kind::Summary && !in_summary {
                    continue;
                }
                let Some(base) = name.strip_suffix(suffix).filter(|b| !b.is_empty()) else {
                    continue;
                };
                if let Some(&i) = self.index.get(base) {
                    if self.families[i].kind == Some(want) {
                        return (i, role);
                    }
                }
            }
        }
        let i = self.families.len();
        self.families.push(Family {
            name: name.to_owned(),
            help: None,
            kind: None,
            metrics: Vec::new(),
            line: n,
        });
        self.index.insert(name.to_owned(), i);
        (i, Role::Plain)
    }

    /// The summary or histogram metric of family `fi` with these labels, created if new.
    fn grouped_metric(
        &mut self,
        fi: usize,
        labels: Vec<(String, String)>,
        n: usize,
        kind: Kind,
    ) -> usize {
        let mut sorted: Vec<&(String, String)> = labels.iter().collect();
        sorted.sort_unstable();
        let mut key = String::new();
        for (k, v) in sorted {
            key.push_str(k);
            key.push('\u{0}');
            key.push_str(v);
            key.push('\u{0}');
        }
        let metrics = &mut self.families[fi].metrics;
        *self.grouped.entry((fi, key)).or_insert_with(|| {
            let value = if kind == Kind::Summary {
                Value::Summary {
                    count: 0,
                    sum: 0.0,
                    quantiles: Vec::new(),
                }
            } else {
                Value::Histogram {
                    count: 0,
                    sum: 0.0,
                    buckets: Vec::new(),
                }
            };
            metrics.push(Metric {
                labels,
                value,
                line: n,
            });
            metrics.len() - 1
        })
    }
}

/// Reads `label="value",...}` (the `{` already consumed) into `labels`; a summary's `quantile`
/// and a histogram's `le` go to `bound` instead.
pub(crate) fn read_labels(
    c: &mut Cursor,
    kind: Kind,
    family: &str,
    labels: &mut Vec<(String, String)>,
    bound: &mut f64,
) -> Result<(), String> {
    loop {
        c.skip_blanks();
        if c.peek() == Some(b'}') {
            c.bump();
            return Ok(());
        }
        let name = c.take_name(false)?;
        if name.is_empty() {
            return Err(format!("invalid label name for metric {family:?}"));
        }
        let name = name.as_str();
        c.skip_blanks();
        if c.peek() != Some(b'=') {
            return Err(format!(
                "expected '=' after label name, found {}",
                describe(c.peek())
            ));
        }
        c.bump();
        if name == "__name__" {
            return Err("label name \"__name__\" is reserved".into());
        }
        // Legacy validation: a quoted name must still be a classic label name.
        if !is_legacy_name(name, false) {
            return Err(format!("invalid label name {name:?}"));
        }
        let special = (kind == Kind::Summary && name == "quantile")
            || (kind == Kind::Histogram && name == "le");
        if !special && labels.iter().any(|(k, _)| k == name) {
            return Err(format!("duplicate label names for metric {family:?}"));
        }
        c.skip_blanks();
        if c.peek() != Some(b'"') {
            return Err(format!(
                "expected '\"' at start of label value, found {}",
                describe(c.peek())
            ));
        }
        c.bump();
        let value = c.take_label_value()?;
        if special {
            *bound = gonum::parse_float(&value).ok_or_else(|| {
                format!("expected float as value for {name:?} label, got {value:?}")
            })?;
        } else {
            labels.push((name.to_owned(), value));
        }
        c.skip_blanks();
        match c.peek() {
            Some(b',') => c.bump(),
            Some(b'}') => {
                c.bump();
                return Ok(());
            }
            _ => {
                let value = labels.last().map_or("", |(_, v)| v.as_str());
                return Err(format!("unexpected end of label value {value:?}"));
            }
        }
    }
}

/// Whether `name` is a classic (legacy) metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`, or label
/// name, `[a-zA-Z_][a-zA-Z0-9_]*`: node_exporter parses textfiles with legacy validation.
fn is_legacy_name(name: &str, metric: bool) -> bool {
    let ok = |i: usize, b: u8| {
        b.is_ascii_alphabetic()
            || b == b'_'
            || (metric && b == b':')
            || (i > 0 && b.is_ascii_digit())
    };
    !name.is_empty() && name.bytes().enumerate().all(|(i, b)| ok(i, b))
}

/// expfmt's check of a metric name once read (`setOrCreateCurrentMF`).
fn check_metric_name(name: &str) -> Result<(), String> {
    if is_legacy_name(name, true) {
        Ok(())
    } else {
        Err(format!("invalid metric name {name:?}"))
    }
}

/// A byte for an error message: `'x'`, or "end of line".
pub(crate) fn describe(b: Option<u8>) -> String {
    match b {
        Some(b) => format!("{:?}", b as char),
        None => "end of line".into(),
    }
}

/// HELP text escapes: `\\`, `\n` and (since prometheus/common 0.60) `\"`; any other is an
/// error.
pub(crate) fn unescape_help(s: &str) -> Result<String, String> {
    if !s.contains('\\') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            Some(other) => return Err(format!("invalid escape sequence '\\{other}'")),
            None => return Err("invalid escape sequence at end of line".into()),
        }
    }
    Ok(out)
}

/// A position in one line.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn at_blank(&self) -> bool {
        matches!(self.peek(), Some(b' ' | b'\t'))
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_blanks(&mut self) {
        while self.at_blank() {
            self.pos += 1;
        }
    }

    /// Bytes up to the next blank or the end. Stops only at ASCII bytes, so slicing is safe.
    fn take_while(&mut self, mut keep: impl FnMut(usize, u8) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if !keep(self.pos - start, b) {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn take_until_blank(&mut self) -> &'a str {
        self.take_while(|_, b| b != b' ' && b != b'\t')
    }

    /// A metric name (`metric`) or label name as prometheus/common 0.70's
    /// `readTokenAsMetricName`/`readTokenAsLabelName` read it: classic name characters, in
    /// which double quotes open and close quoted parts (where any character, and the escapes
    /// `\\`, `\n` and `\"`, are allowed); a closing quote ends the name. Empty when the next
    /// character cannot start a name.
    fn take_name(&mut self, metric: bool) -> Result<String, String> {
        let start =
            |b: u8| b.is_ascii_alphabetic() || b == b'_' || b == b'"' || (metric && b == b':');
        if !self.peek().is_some_and(start) {
            return Ok(String::new());
        }
        let what = if metric { "metric" } else { "label" };
        let mut out: Vec<u8> = Vec::new();
        let (mut quoted, mut escaped) = (false, false);
        while let Some(b) = self.peek() {
            if escaped {
                match b {
                    b'\\' => out.push(b'\\'),
                    b'n' => out.push(b'\n'),
                    b'"' => out.push(b'"'),
                    _ => return Err(format!("invalid escape sequence '\\{}'", b as char)),
                }
                escaped = false;
            } else {
                match b {
                    b'"' => {
                        quoted = !quoted;
                        if !quoted {
                            self.bump();
                            break;
                        }
                    }
                    b'\\' => escaped = true,
                    _ => out.push(b),
                }
            }
            self.bump();
            match self.peek() {
                // The line ends: Go's next byte is the new-line.
                None if escaped => return Err("invalid escape sequence '\\\n'".into()),
                None if quoted => {
                    return Err(format!(
                        "{what} name {:?} contains unescaped new-line",
                        String::from_utf8_lossy(&out)
                    ))
                }
                None => break,
                Some(next) => {
                    let goes_on = quoted
                        || next.is_ascii_alphanumeric()
                        || next == b'_'
                        || next == b'"'
                        || (metric && next == b':');
                    if !goes_on {
                        break;
                    }
                }
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// A quoted label value after its opening `"`, with the escapes `\"`, `\\` and `\n`.
    fn take_label_value(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, '"')) => out.push('"'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, other)) => return Err(format!("invalid escape sequence '\\{other}'")),
                    None => break,
                },
                ch => out.push(ch),
            }
        }
        Err(format!("label value {out:?} contains unescaped new-line"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families(text: &str) -> Vec<Family> {
        parse(text).unwrap_or_else(|e| panic!("parse failed: {e:?}"))
    }

    fn error(text: &str) -> FileError {
        parse(text).expect_err("want a parse error")
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_help_type_and_samples() {
        let f = families(
            "# A comment.\n\
             # HELP jobs_total Jobs run, by\\nqueue \\\\ kind.\n\
             # TYPE jobs_total counter\n\
             \n\
             jobs_total{queue=\"a\",kind=\"b\"} 12\n\
             \t jobs_total { queue = \"c\" , } 1e3\n\
             free_bytes -Inf\n",
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, "jobs_total");
        assert_eq!(f[0].help.as_deref(), Some("Jobs run, by\nqueue \\ kind."));
        assert_eq!(f[0].kind, Some(Kind::Counter));
        assert_eq!(f[0].line, 2);
        assert_eq!(
            f[0].metrics[0].labels,
            labels(&[("queue", "a"), ("kind", "b")])
        );
        assert_eq!(f[0].metrics[0].value, Value::Scalar(12.0));
        assert_eq!(f[0].metrics[1].labels, labels(&[("queue", "c")]));
        assert_eq!(f[0].metrics[1].value, Value::Scalar(1000.0));
        assert_eq!(f[0].metrics[1].line, 6);
        assert_eq!(f[1].kind, Some(Kind::Untyped));
        assert_eq!(f[1].help, None);
        assert_eq!(f[1].metrics[0].value, Value::Scalar(f64::NEG_INFINITY));
    }

    #[test]
    fn label_value_escapes() {
        let f = families("m{a=\"q\\\"uote\",b=\"back\\\\slash\",c=\"new\\nline\",d=\"}{,=\"} 1\n");
        assert_eq!(
            f[0].metrics[0].labels,
            labels(&[
                ("a", "q\"uote"),
                ("b", "back\\slash"),
                ("c", "new\nline"),
                ("d", "}{,=")
            ])
        );
        assert_eq!(
            error("m{a=\"\\t\"} 1\n"),
            FileError {
                line: 1,
                msg: "invalid escape sequence '\\t'".into()
            }
        );
        assert_eq!(
            error("m{a=\"open} 1\n").msg,
            "label value \"open} 1\" contains unescaped new-line"
        );
    }

    #[test]
    fn special_values() {
        let f = families("a NaN\nb +Inf\nc -inf\nd Infinity\ne .5\nf 5.\ng +1.5E3\nh -0\n");
        let v: Vec<f64> = f
            .iter()
            .map(|f| match f.metrics[0].value {
                Value::Scalar(v) => v,
                _ => panic!("scalar"),
            })
            .collect();
        assert!(v[0].is_nan());
        assert_eq!(
            v[1..7],
            [
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                0.5,
                5.0,
                1500.0
            ]
        );
        for bad in ["0x10", "1e400", "1_000", "0x1p3", "+NaN", "one", ""] {
            let e = error(&format!("m {bad}\n"));
            assert_eq!(
                e.msg,
                format!("expected float as value, got {bad:?}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let f = families(
            "#\n#HELP\n# TYPE\n# HELP m\n# HELP m \n# some text\n   \n\t\n# TYPE m gauge\nm 1\n  \t",
        );
        assert_eq!(f.len(), 1);
        // "# HELP m" without text sets no help, so a HELP line may still follow.
        assert_eq!(f[0].help, None);
        assert_eq!(f[0].kind, Some(Kind::Gauge));
        // A file of only comments and HELP/TYPE lines has no families.
        assert!(families("# HELP x Nothing.\n# TYPE x gauge\n").is_empty());
        assert!(families("").is_empty());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("a 1\nb 2", 2, "unexpected end of input stream"),
            ("a 1\r\n", 1, "expected float as value, got \"1\\r\""),
            ("a 1 \n", 1, "expected integer as timestamp, got \"\""),
            ("a 1 12 x\n", 1, "spurious string after timestamp: \" x\""),
            ("a 1 1.5\n", 1, "expected integer as timestamp, got \"1.5\""),
            (
                "\n\nx{a=\"b\" 12\n",
                3,
                "unexpected end of label value \"b\"",
            ),
            (
                "x{a-b=\"c\"} 1\n",
                1,
                "expected '=' after label name, found '-'",
            ),
            (
                "x{a=b} 1\n",
                1,
                "expected '\"' at start of label value, found 'b'",
            ),
            ("x{9=\"b\"} 1\n", 1, "invalid label name for metric \"x\""),
            (
                "x{a=\"1\",a=\"2\"} 1\n",
                1,
                "duplicate label names for metric \"x\"",
            ),
            (
                "x{__name__=\"y\"} 1\n",
                1,
                "label name \"__name__\" is reserved",
            ),
            ("x{a=\"b\"}\n", 1, "expected float as value, got \"\""),
            ("9x 1\n", 1, "invalid metric name"),
            ("{a=\"b\"} 1\n", 1, "invalid metric name"),
            ("# HELP 9x text\n", 1, "invalid metric name in comment"),
            ("# HELP x a \\' b\n", 1, "invalid escape sequence '\\''"),
            ("# TYPE x gauge \n", 1, "unknown metric type \"gauge \""),
            ("# TYPE x gauges\n", 1, "unknown metric type \"gauges\""),
            (
                "# HELP x one\n# HELP x two\n",
                2,
                "second HELP line for metric name \"x\"",
            ),
            (
                "x 1\n# TYPE x gauge\n",
                2,
                "second TYPE line for metric name \"x\", or TYPE reported after samples",
            ),
        ];
        for (text, line, msg) in cases {
            let e = error(text);
            assert_eq!((e.line, e.msg.as_str()), (*line, *msg), "{text:?}");
        }
    }

    #[test]
    fn timestamps_reject_the_file() {
        let e = error("a 1\nb 2 1700000000000\nc 3 -5\n");
        assert_eq!(
            e,
            FileError {
                line: 2,
                msg: "unsupported client-side timestamp, skipping entire file".into()
            }
        );
    }

    #[test]
    fn histograms_group_by_labels() {
        let f = families(
            "# TYPE lat histogram\n\
             lat_bucket{path=\"/a\",le=\"0.5\"} 1\n\
             lat_bucket{le=\"+Inf\",path=\"/a\"} 3\n\
             lat_bucket{path=\"/b\",le=\"1\"} 2\n\
             lat_sum{path=\"/a\"} 1.25\n\
             lat_count{path=\"/a\"} 3.9\n\
             lat_bucket{path=\"/a\",le=\"NaN\"} 9\n\
             lat_bucket{path=\"/a\"} 9\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].metrics.len(), 2);
        assert_eq!(f[0].metrics[0].labels, labels(&[("path", "/a")]));
        // The count 3.9 makes /a a float histogram, whose counts node_exporter 1.12 reads as 0
        // (1.5 truncated it to 3).
        assert_eq!(
            f[0].metrics[0].value,
            Value::Histogram {
                count: 0,
                sum: 1.25,
                buckets: vec![(0.5, 0), (f64::INFINITY, 0)],
            }
        );
        assert_eq!(
            f[0].metrics[1].value,
            Value::Histogram {
                count: 0,
                sum: 0.0,
                buckets: vec![(1.0, 2)],
            }
        );
        assert_eq!(
            error("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n").msg,
            "expected float as value for \"le\" label, got \"x\""
        );
    }

    #[test]
    fn summaries_and_suffix_rules() {
        let f = families(
            "# TYPE rpc summary\n\
             rpc{quantile=\"0.99\"} 7\n\
             rpc{quantile=\"0.5\"} 2\n\
             rpc_sum 30\n\
             rpc_count 10\n\
             rpc_bucket 1\n\
             rpc_total_count 4\n\
             # TYPE gauge_count gauge\n\
             gauge_count 5\n",
        );
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        // `_bucket` is not a summary line, and `_count` of a non-summary is its own family.
        assert_eq!(
            names,
            ["rpc", "rpc_bucket", "rpc_total_count", "gauge_count"]
        );
        assert_eq!(
            f[0].metrics[0].value,
            Value::Summary {
                count: 10,
                sum: 30.0,
                quantiles: vec![(0.99, 7.0), (0.5, 2.0)],
            }
        );
        // `quantile` is an ordinary label outside summaries, `le` outside histograms.
        let f = families("g{quantile=\"x\",le=\"y\"} 1\n");
        assert_eq!(
            f[0].metrics[0].labels,
            labels(&[("quantile", "x"), ("le", "y")])
        );
    }

    #[test]
    fn float_histogram_counts_read_as_zero() {
        // prometheus/common 0.50+ stores a histogram with any non-whole count as a float
        // histogram, whose integer counts node_exporter 1.12 then reads as 0; the sum stays.
        let f = families(
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3.5\nh_sum 4\nh_count 3.5\n\
             # TYPE w histogram\nw_bucket{le=\"1\"} 2\nw_sum 1\nw_count 2\n",
        );
        assert_eq!(
            f[0].metrics[0].value,
            Value::Histogram {
                count: 0,
                sum: 4.0,
                buckets: vec![(1.0, 0), (f64::INFINITY, 0)],
            }
        );
        assert_eq!(
            f[1].metrics[0].value,
            Value::Histogram {
                count: 2,
                sum: 1.0,
                buckets: vec![(1.0, 2)],
            }
        );
        let e = error("# TYPE h histogram\nh_bucket{le=\"1\"} -1\n");
        assert_eq!(
            e,
            FileError {
                line: 2,
                msg: "negative bucket population for histogram \"h\"".into()
            }
        );
        let e = error("# TYPE h histogram\nh_count -2\n");
        assert_eq!(e.msg, "negative count for histogram \"h\"");
    }

    #[test]
    fn names_may_be_quoted_or_open_the_braces() {
        // prometheus/common 0.60+ (node_exporter 1.9+): quoted names, and the name as the first
        // item inside the braces; node_exporter's legacy validation still wants classic names.
        let f = families(
            "# HELP \"jobs_total\" Jobs run.\n# TYPE jobs_total counter\n\
             {\"jobs_total\",q=\"a\"} 1\n{jobs_total} 2\n\"jobs_total\"{\"q\"=\"c\"} 3\n\
             job\"s_total\"{q=\"d\"} 4\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].help.as_deref(), Some("Jobs run."));
        let got: Vec<_> = f[0].metrics.iter().map(|m| (&m.labels, &m.value)).collect();
        let want = [
            (labels(&[("q", "a")]), Value::Scalar(1.0)),
            (labels(&[]), Value::Scalar(2.0)),
            (labels(&[("q", "c")]), Value::Scalar(3.0)),
            (labels(&[("q", "d")]), Value::Scalar(4.0)),
        ];
        let want: Vec<_> = want.iter().map(|(l, v)| (l, v)).collect();
        assert_eq!(got, want);
        for (text, msg) in [
            ("{\"my.metric\"} 1\n", "invalid metric name \"my.metric\""),
            ("x{\"a.b\"=\"v\"} 1\n", "invalid label name \"a.b\""),
            ("{x y} 1\n", "unexpected end of metric name 'y'"),
            ("\"x\\q\" 1\n", "invalid escape sequence '\\q'"),
            ("\"x 1\n", "metric name \"x 1\" contains unescaped new-line"),
            ("{} 1\n", "invalid metric name"),
        ] {
            assert_eq!(error(text).msg, msg, "{text:?}");
        }
    }

    #[test]
    fn help_takes_an_escaped_quote() {
        let f = families("# HELP x a \\\"quoted\\\" word\nx 1\n");
        assert_eq!(f[0].help.as_deref(), Some("a \"quoted\" word"));
    }
}
