//! `textfile`: metrics from the `*.prom` files of `collectors.textfile.directory`, written by
//! cron jobs and scripts (node_exporter's `collector/textfile.go`), plus
//! `node_textfile_mtime_seconds` and `node_textfile_scrape_error`.
//!
//! Each file is parsed with the rules of node_exporter 1.5's parser (`expfmt.TextParser`), so a
//! file node_exporter accepts is accepted here and one it rejects is rejected. A rejected file
//! contributes nothing: the scrape still succeeds, `node_textfile_scrape_error` is 1 and a
//! warning names the file and line. Beyond node_exporter, a file is also rejected when it gives
//! a family another type than an earlier file or another collector did; same-named families of
//! several files are merged.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::collector::{self, CollectError, Collector, Context, Opt, Spec};
use crate::gonum;
use crate::metrics::{self, MetricType, MetricWriter};

const DIRECTORY: Opt = Opt::new(
    "directory",
    "collector.textfile.directory",
    collector::Kind::Paths(&[]),
    "Directory to read text files with metrics from, supports glob matching. (repeatable)",
);

/// The `textfile` collector: `*.prom` files written by cron jobs and scripts.
pub const SPEC: Spec = Spec {
    name: "textfile",
    default_enabled: true,
    help: "*.prom files in the textfile directories",
    options: &[DIRECTORY],
    filters: &[],
    build: |ctx| Box::new(Textfile::new(ctx)),
};

/// Reads `*.prom` files from the configured directories at every scrape.
#[derive(Debug)]
pub struct Textfile {
    /// Empty when no directory is configured: the collector then reports only
    /// `node_textfile_scrape_error 0`, as node_exporter does.
    dirs: Vec<PathBuf>,
}

impl Textfile {
    pub fn new(ctx: &Context) -> Self {
        Self {
            dirs: ctx
                .list(&DIRECTORY)
                .into_iter()
                .map(PathBuf::from)
                .collect(),
        }
    }
}

impl Collector for Textfile {
    fn name(&self) -> &'static str {
        "textfile"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        // Without a directory node_exporter still reports `node_textfile_scrape_error 0`, and
        // kube-prometheus's NodeTextFileCollectorScrapeError alert queries that series.
        let mut errored = false;
        let mut merged = Merged::default();
        let files: Vec<PathBuf> = self
            .dirs
            .iter()
            .flat_map(|dir| prom_files(dir, &mut errored))
            .collect();
        for path in files {
            match read_file(&path) {
                Ok((text, mtime)) => match parse(&text) {
                    Ok(families) => match merged.add(&path, families, out, &mut errored) {
                        Ok(()) => merged.mtimes.push((path, mtime)),
                        Err(e) => warn(&path, e, &mut errored),
                    },
                    Err(e) => warn(&path, e, &mut errored),
                },
                Err(e) => {
                    tracing::warn!(
                        file = %path.display(),
                        error = %e,
                        "textfile: skipping unreadable file"
                    );
                    errored = true;
                }
            }
        }
        merged.write(out, &mut errored);
        Ok(())
    }
}

/// The `*.prom` entries of `dir`, sorted by name as Go's `os.ReadDir` returns them. A missing
/// or unreadable directory is logged and sets `errored`.
fn prom_files(dir: &Path, errored: &mut bool) -> Vec<PathBuf> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            let e = CollectError::io(dir, e);
            tracing::warn!(error = %e, "textfile: cannot read directory");
            *errored = true;
            return Vec::new();
        }
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.as_encoded_bytes().ends_with(b".prom"))
        .collect();
    names.sort_unstable();
    names.into_iter().map(|n| dir.join(n)).collect()
}

/// Reads a file and then its mtime from the same handle (stat after reading, as node_exporter
/// does, so a file replaced mid-read does not look fresh), in whole seconds.
fn read_file(path: &Path) -> Result<(String, f64), CollectError> {
    let io = |e| CollectError::io(path, e);
    let mut f = File::open(path).map_err(io)?;
    let mut text = String::with_capacity(4096);
    crate::read::read_to_end_into(&mut f, &mut text).map_err(io)?;
    let modified = f.metadata().and_then(|m| m.modified()).map_err(io)?;
    // Go: float64(mtime.UnixNano() / 1e9), which truncates toward zero.
    let secs = match modified.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as f64,
        Err(e) => -(e.duration().as_secs() as f64),
    };
    Ok((text, secs))
}

/// Logs why a file was skipped: which file, which line, what is wrong.
fn warn(path: &Path, e: FileError, errored: &mut bool) {
    let err = CollectError::parse(path, format!("line {}: {}", e.line, e.msg));
    tracing::warn!(file = %path.display(), line = e.line, error = %err, "textfile: skipping file");
    *errored = true;
}

/// Why a file is rejected, with the 1-based line at fault.
#[derive(Debug, PartialEq)]
struct FileError {
    line: usize,
    msg: String,
}

// ---------------------------------------------------------------------------------------------
// Parsing: one file's text into families, with node_exporter 1.5's rules.
// ---------------------------------------------------------------------------------------------

/// A family's `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Untyped,
    Summary,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
        }
    }

    fn from_metric_type(t: MetricType) -> Kind {
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
struct Family {
    name: String,
    help: Option<String>,
    /// Set by `# TYPE`, or to untyped by the first sample.
    kind: Option<Kind>,
    metrics: Vec<Metric>,
    /// Line that first named the family.
    line: usize,
}

/// One series (or, for summaries and histograms, one label set) of a family.
#[derive(Debug, PartialEq)]
struct Metric {
    /// In file order; for summaries and histograms without `quantile` / `le`.
    labels: Vec<(String, String)>,
    value: Value,
    /// Line of the first sample.
    line: usize,
}

#[derive(Debug, PartialEq)]
enum Value {
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
enum Role {
    /// A plain sample, quantile or bucket.
    Plain,
    /// `<name>_count` of a summary or histogram.
    Count,
    /// `<name>_sum` of a summary or histogram.
    Sum,
}

/// Parses a whole file. Families without samples are dropped. A file with client-side
/// timestamps is rejected, as node_exporter rejects it.
fn parse(text: &str) -> Result<Vec<Family>, FileError> {
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
    families.retain(|f| !f.metrics.is_empty());
    Ok(families)
}

#[derive(Debug, Default)]
struct Parser {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    /// Summary and histogram metrics by family and label signature.
    grouped: HashMap<(usize, String), usize>,
    /// First line with a timestamp.
    timestamp_line: Option<usize>,
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
        let name = c.take_metric_name();
        if c.at_end() {
            return Ok(());
        }
        if !c.at_blank() {
            return Err("invalid metric name in comment".into());
        }
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
        let name = c.take_metric_name();
        if name.is_empty() {
            return Err("invalid metric name".into());
        }
        let (fi, role) = self.family(name, n);
        let kind = *self.families[fi].kind.get_or_insert(Kind::Untyped);
        c.skip_blanks();
        let mut labels = Vec::new();
        // The `quantile` of a summary line or the `le` of a histogram line.
        let mut bound = f64::NAN;
        if c.peek() == Some(b'{') {
            c.bump();
            let fam_name = &self.families[fi].name;
            read_labels(c, kind, fam_name, &mut labels, &mut bound)?;
            c.skip_blanks();
        }
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
                if let Value::Histogram {
                    count,
                    sum,
                    buckets,
                } = &mut self.families[fi].metrics[m].value
                {
                    match role {
                        Role::Count => *count = value as u64,
                        Role::Sum => *sum = value,
                        Role::Plain if !bound.is_nan() => buckets.push((bound, value as u64)),
                        Role::Plain => {}
                    }
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
fn read_labels(
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
        let name = c.take_label_name();
        if name.is_empty() {
            return Err(format!("invalid label name for metric {family:?}"));
        }
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

/// A byte for an error message: `'x'`, or "end of line".
fn describe(b: Option<u8>) -> String {
    match b {
        Some(b) => format!("{:?}", b as char),
        None => "end of line".into(),
    }
}

/// HELP text escapes: `\\` and `\n` (node_exporter 1.5 rejects any other, even `\"`).
fn unescape_help(s: &str) -> Result<String, String> {
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
            Some(other) => return Err(format!("invalid escape sequence '\\{other}'")),
            None => return Err("invalid escape sequence at end of line".into()),
        }
    }
    Ok(out)
}

/// A position in one line.
#[derive(Debug)]
struct Cursor<'a> {
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

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, possibly empty.
    fn take_metric_name(&mut self) -> &'a str {
        self.take_while(|i, b| {
            b.is_ascii_alphabetic() || b == b'_' || b == b':' || (i > 0 && b.is_ascii_digit())
        })
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, possibly empty.
    fn take_label_name(&mut self) -> &'a str {
        self.take_while(|i, b| {
            b.is_ascii_alphabetic() || b == b'_' || (i > 0 && b.is_ascii_digit())
        })
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

// ---------------------------------------------------------------------------------------------
// Merging the accepted files and writing them out.
// ---------------------------------------------------------------------------------------------

/// Everything accepted so far in this scrape, by family name.
#[derive(Debug, Default)]
struct Merged {
    families: Vec<MergedFamily>,
    index: HashMap<String, usize>,
    /// Series already taken, as `name\0label\0value...`, to drop duplicates.
    series: std::collections::HashSet<String>,
    /// Accepted files and their mtimes, in read (= sorted) order.
    mtimes: Vec<(PathBuf, f64)>,
}

#[derive(Debug)]
struct MergedFamily {
    name: String,
    kind: Kind,
    /// The first HELP any file gave.
    help: Option<String>,
    /// Files that contributed, for the default help text.
    sources: Vec<String>,
    /// Labels sorted by name, with node_exporter's empty values filled in.
    metrics: Vec<(Vec<(String, String)>, Value)>,
}

impl Merged {
    /// The kind a family (or a summary/histogram line name) already has in this scrape.
    fn kind_of(&self, name: &str) -> Option<Kind> {
        self.index.get(name).map(|&i| self.families[i].kind)
    }

    /// Accepts one parsed file, or rejects it whole when one of its families clashes in type
    /// with an earlier file or another collector. A series that an earlier line or file already
    /// gave is dropped with a warning and sets `errored` (node_exporter's registry drops it too).
    fn add(
        &mut self,
        path: &Path,
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
        let source = path.display().to_string();
        for f in families {
            let kind = f.kind.unwrap_or(Kind::Untyped);
            let i = match self.index.get(&f.name) {
                Some(&i) => i,
                None => {
                    self.index.insert(f.name.clone(), self.families.len());
                    self.families.push(MergedFamily {
                        name: f.name.clone(),
                        kind,
                        help: None,
                        sources: Vec::new(),
                        metrics: Vec::new(),
                    });
                    self.families.len() - 1
                }
            };
            let fam = &mut self.families[i];
            if fam.help.is_none() {
                fam.help = f.help;
            }
            fam.sources.push(source.clone());
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
            for m in f.metrics {
                let mut labels = m.labels;
                for n in &names {
                    if !labels.iter().any(|(k, _)| k == n) {
                        labels.push((n.clone(), String::new()));
                    }
                }
                labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                let mut key = f.name.clone();
                for (k, v) in &labels {
                    key.push('\u{0}');
                    key.push_str(k);
                    key.push('\u{0}');
                    key.push_str(v);
                }
                if !self.series.insert(key) {
                    tracing::warn!(
                        file = %path.display(),
                        line = m.line,
                        metric = %f.name,
                        "textfile: dropping duplicate series"
                    );
                    *errored = true;
                    continue;
                }
                fam.metrics.push((labels, m.value));
            }
        }
        Ok(())
    }

    /// Writes every merged family, the mtimes and the error flag.
    fn write(mut self, out: &mut MetricWriter, errored: &mut bool) {
        let mut default_help = String::new();
        for fam in &mut self.families {
            let help = match &fam.help {
                Some(h) => h.as_str(),
                None => {
                    default_help.clear();
                    default_help.push_str("Metric read from ");
                    default_help.push_str(&fam.sources.join(", "));
                    &default_help
                }
            };
            // node_exporter's registry sorts a family's series by label count, then values.
            fam.metrics.sort_by(|(a, _), (b, _)| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| a.iter().map(|(_, v)| v).cmp(b.iter().map(|(_, v)| v)))
            });
            for (labels, value) in &fam.metrics {
                write_metric(out, &fam.name, fam.kind, help, labels, value);
            }
        }
        for (path, mtime) in &self.mtimes {
            let file = path.display().to_string();
            out.gauge(
                "node_textfile_mtime_seconds",
                "Unixtime mtime of textfiles successfully read.",
                &[("file", &file)],
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
fn clash(name: &str, kind: Kind, kind_of: impl Fn(&str) -> Option<Kind>) -> Option<(String, Kind)> {
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
fn write_metric(
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
fn dedup_sorted<T: Copy>(pairs: &[(f64, T)]) -> Vec<(f64, T)> {
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
struct Lines<'a> {
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
    use crate::Config;

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
            ("# HELP x a \\\" b\n", 1, "invalid escape sequence '\\\"'"),
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
        assert_eq!(
            f[0].metrics[0].value,
            Value::Histogram {
                count: 3,
                sum: 1.25,
                buckets: vec![(0.5, 1), (f64::INFINITY, 3)],
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

    fn collect_dir(dir: &Path, out: &mut MetricWriter) -> String {
        let mut cfg = Config::default();
        cfg.collectors
            .set_flag("collector.textfile.directory", dir.to_str())
            .expect("valid flag");
        Textfile::new(&cfg.context("textfile").expect("registered"))
            .collect(out)
            .expect("textfile never fails");
        out.render_to_string()
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write fixture");
    }

    fn scrape_error(text: &str) -> &str {
        text.lines()
            .find_map(|l| l.strip_prefix("node_textfile_scrape_error "))
            .expect("scrape_error line")
    }

    #[test]
    fn no_directory_reports_only_scrape_error() {
        let mut w = MetricWriter::new();
        Textfile::new(&Config::default().context("textfile").expect("registered"))
            .collect(&mut w)
            .expect("success");
        assert_eq!(w.sample_count(), 1);
        assert_eq!(scrape_error(&w.render_to_string()), "0");
    }

    #[test]
    fn missing_directory_sets_scrape_error() {
        let mut w = MetricWriter::new();
        let got = collect_dir(Path::new("/nonexistent/textfile-dir"), &mut w);
        assert_eq!(
            got,
            "# HELP node_textfile_scrape_error 1 if there was an error opening or reading a file, 0 otherwise\n\
             # TYPE node_textfile_scrape_error gauge\nnode_textfile_scrape_error 1\n"
        );
    }

    #[test]
    fn mtime_is_whole_seconds_of_each_file_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "b.prom", "b_metric 1\n");
        write(dir.path(), "a.prom", "a_metric 2\n");
        write(dir.path(), "bad.prom", "bad_metric\n");
        write(dir.path(), "c.prom.tmp", "garbage\n");
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_123_987);
        for name in ["a.prom", "b.prom", "bad.prom"] {
            File::open(dir.path().join(name))
                .and_then(|f| f.set_modified(t))
                .expect("set mtime");
        }
        let mut w = MetricWriter::new();
        let got = collect_dir(dir.path(), &mut w);
        let d = dir.path().display();
        let want = format!(
            "# HELP node_textfile_mtime_seconds Unixtime mtime of textfiles successfully read.\n\
             # TYPE node_textfile_mtime_seconds gauge\n\
             node_textfile_mtime_seconds{{file=\"{d}/a.prom\"}} 1.700000123e+09\n\
             node_textfile_mtime_seconds{{file=\"{d}/b.prom\"}} 1.700000123e+09\n"
        );
        assert!(got.contains(&want), "want\n{want}in\n{got}");
        assert_eq!(scrape_error(&got), "1");
        assert!(got.contains(&format!("# HELP a_metric Metric read from {d}/a.prom\n")));
        assert!(!got.contains("garbage"));
        assert!(!got.contains("bad_metric"));
    }

    #[test]
    fn files_merge_and_type_clashes_reject_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "1.prom",
            "# TYPE jobs_total counter\njobs_total{q=\"a\"} 1\n",
        );
        write(
            dir.path(),
            "2.prom",
            "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{q=\"b\"} 2\n",
        );
        write(
            dir.path(),
            "3.prom",
            "ok 1\n# TYPE jobs_total gauge\njobs_total{q=\"c\"} 3\n",
        );
        write(dir.path(), "4.prom", "jobs_total{q=\"d\"} 4\n");
        let mut w = MetricWriter::new();
        let got = collect_dir(dir.path(), &mut w);
        let d = dir.path().display();
        assert!(
            got.contains(
                "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\n\
                 jobs_total{q=\"a\"} 1\njobs_total{q=\"b\"} 2\n# HELP"
            ),
            "{got}"
        );
        // 3.prom (gauge) and 4.prom (untyped) are rejected whole, even their other families.
        assert!(!got.contains("ok 1"), "{got}");
        assert!(!got.contains("3.prom"), "{got}");
        assert!(got.contains(&format!("{{file=\"{d}/2.prom\"}}")));
        assert_eq!(scrape_error(&got), "1");
    }

    #[test]
    fn clash_with_another_collector_rejects_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "load.prom",
            "# TYPE node_load1 counter\nnode_load1 9\n",
        );
        write(
            dir.path(),
            "more.prom",
            "# TYPE node_load5 gauge\nnode_load5{src=\"file\"} 3\n",
        );
        let mut w = MetricWriter::new();
        w.gauge("node_load1", "1m load average.", &[], 0.5);
        w.gauge("node_load5", "5m load average.", &[], 0.25);
        let got = collect_dir(dir.path(), &mut w);
        assert!(
            got.contains("# TYPE node_load1 gauge\nnode_load1 0.5\n# HELP"),
            "{got}"
        );
        // A family of the same type merges into the other collector's family.
        assert!(
            got.contains("node_load5 0.25\nnode_load5{src=\"file\"} 3\n"),
            "{got}"
        );
        assert_eq!(scrape_error(&got), "1");
    }

    #[test]
    fn missing_labels_are_filled_and_duplicates_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "a.prom",
            "m{b=\"2\"} 1\nm{a=\"1\",b=\"1\"} 2\nm{b=\"1\",a=\"1\"} 3\n",
        );
        write(
            dir.path(),
            "b.prom",
            "m{a=\"\",b=\"2\"} 4\nm{a=\"0\",b=\"0\"} 5\n",
        );
        let mut w = MetricWriter::new();
        let got = collect_dir(dir.path(), &mut w);
        let body: Vec<&str> = got.lines().filter(|l| l.starts_with("m{")).collect();
        assert_eq!(
            body,
            [
                "m{a=\"\",b=\"2\"} 1",
                "m{a=\"0\",b=\"0\"} 5",
                "m{a=\"1\",b=\"1\"} 2"
            ]
        );
        // Duplicates are dropped with a warning; the rest of the file is kept.
        assert!(got.contains("/b.prom\"}"), "{got}");
        assert_eq!(scrape_error(&got), "1");
    }

    #[test]
    fn histogram_and_summary_lines_render_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "h.prom",
            "# HELP lat Latency.\n# TYPE lat histogram\n\
             lat_count{path=\"/a\"} 4\nlat_sum{path=\"/a\"} 2.5\n\
             lat_bucket{path=\"/a\",le=\"1.0\"} 3\nlat_bucket{path=\"/a\",le=\"0.25\"} 1\n\
             lat_bucket{path=\"/a\",le=\"1\"} 2\n\
             # TYPE rpc summary\nrpc_sum 3\nrpc{quantile=\"0.9\"} 2\nrpc{quantile=\"0.5\"} 1\nrpc_count 4\n",
        );
        let mut w = MetricWriter::new();
        let got = collect_dir(dir.path(), &mut w);
        let body: Vec<&str> = got
            .lines()
            .filter(|l| l.starts_with("lat") || l.starts_with("rpc"))
            .collect();
        assert_eq!(
            body,
            [
                "lat_bucket{le=\"0.25\",path=\"/a\"} 1",
                "lat_bucket{le=\"1\",path=\"/a\"} 2",
                "lat_bucket{le=\"+Inf\",path=\"/a\"} 4",
                "lat_sum{path=\"/a\"} 2.5",
                "lat_count{path=\"/a\"} 4",
                "rpc{quantile=\"0.5\"} 1",
                "rpc{quantile=\"0.9\"} 2",
                "rpc_sum 3",
                "rpc_count 4",
            ]
        );
        assert!(
            got.contains("# HELP lat Latency.\n# TYPE lat histogram\n"),
            "{got}"
        );
        assert!(got.contains("# TYPE rpc summary\n"), "{got}");
        assert_eq!(scrape_error(&got), "0");
    }

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
