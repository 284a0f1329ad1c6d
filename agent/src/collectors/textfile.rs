//! `textfile`: metrics from the `*.prom` files of `collectors.textfile.directory`, written by
//! cron jobs and scripts (node_exporter's `collector/textfile.go`), plus
//! `node_textfile_mtime_seconds` and `node_textfile_scrape_error`.
//!
//! As in node_exporter 1.12, the option is repeatable and each value is a glob pattern
//! (Go's `filepath.Glob`; a pattern matching nothing is read as a literal directory). Each
//! file is parsed with the rules of node_exporter's parser (`textparse.rs`), so a file
//! node_exporter accepts is accepted here and one it rejects is rejected; accepted files are
//! merged by `textmerge.rs`. A rejected file contributes nothing: the scrape still succeeds,
//! `node_textfile_scrape_error` is 1 and a warning names the file and line. Beyond
//! node_exporter, a file is also rejected when it gives a family another type than an earlier
//! file or another collector did; same-named families of several files are merged.

use std::fs::{self, File};
use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::collector::{self, CollectError, Collector, Context, Opt, Spec};
use crate::glob;
use crate::metrics::MetricWriter;
use crate::textmerge::Merged;
use crate::textparse::{parse, FileError};

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
    /// Directory glob patterns. Empty when no directory is configured: the collector then
    /// reports only `node_textfile_scrape_error 0`, as node_exporter does.
    patterns: Vec<String>,
}

impl Textfile {
    pub fn new(ctx: &Context) -> Self {
        Self {
            patterns: ctx.list(&DIRECTORY),
        }
    }

    /// The directories to read this scrape: each pattern's matches, or the pattern itself
    /// when it matches nothing or is malformed (node_exporter then lets reading it fail).
    fn dirs(&self) -> Vec<String> {
        let mut dirs = Vec::with_capacity(self.patterns.len());
        for pattern in &self.patterns {
            match glob::glob(pattern) {
                Ok(matched) if !matched.is_empty() => dirs.extend(matched),
                _ => dirs.push(pattern.clone()),
            }
        }
        dirs
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
        let files: Vec<String> = self
            .dirs()
            .iter()
            .flat_map(|dir| prom_files(dir, &mut errored))
            .collect();
        for path in files {
            match read_file(Path::new(&path)) {
                Ok((text, mtime)) => match parse(&text) {
                    Ok(families) => match merged.add(&path, families, out, &mut errored) {
                        Ok(()) => merged.accepted(path, mtime),
                        Err(e) => warn(Path::new(&path), e, &mut errored),
                    },
                    Err(e) => warn(Path::new(&path), e, &mut errored),
                },
                Err(e) => {
                    tracing::warn!(
                        file = %path,
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

/// The `*.prom` entries of `dir`, sorted by name as Go's `os.ReadDir` returns them, each
/// joined as Go's `filepath.Join` does (that path is the `file` label). A missing or
/// unreadable directory is logged and sets `errored`.
fn prom_files(dir: &str, errored: &mut bool) -> Vec<String> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            let e = CollectError::io(Path::new(dir), e);
            tracing::warn!(error = %e, "textfile: cannot read directory");
            *errored = true;
            return Vec::new();
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".prom"))
        .collect();
    names.sort_unstable();
    names.into_iter().map(|n| glob::join(dir, &n)).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

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
        let d = dir.path().display();
        let got = collect_dir(dir.path(), &mut w);
        // 1.prom has no HELP, so the family's HELP is the default naming both files that gave
        // it, and node_exporter's registry drops 2.prom's series, whose HELP differs (without
        // counting it as a scrape error).
        assert!(
            got.contains(&format!(
                "# HELP jobs_total Metric read from {d}/1.prom, {d}/2.prom\n\
                 # TYPE jobs_total counter\njobs_total{{q=\"a\"}} 1\n# HELP"
            )),
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

    /// node_exporter 1.12's `metrics_merge_*` fixtures: two files giving one family.
    fn merge_two(a_help: &str, b_help: &str) -> (String, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, help, file) in [("a.prom", a_help, "a"), ("b.prom", b_help, "b")] {
            write(
                dir.path(),
                name,
                &format!(
                    "{help}# TYPE events_total counter\n\
                     events_total{{foo=\"bar\",file=\"{file}\"}} 10\n\
                     events_total{{foo=\"baz\",file=\"{file}\"}} 20\n\n"
                ),
            );
        }
        let got = collect_dir(dir.path(), &mut MetricWriter::new());
        let d = dir.path().display().to_string();
        (got.replace(&d, "D"), d)
    }

    #[test]
    fn help_texts_merge_as_node_exporter_1_12() {
        let events = |help: &str, files: &[&str]| {
            let mut s = format!("# HELP events_total {help}\n# TYPE events_total counter\n");
            for f in files {
                s.push_str(&format!(
                    "events_total{{file=\"{f}\",foo=\"bar\"}} 10\n\
                     events_total{{file=\"{f}\",foo=\"baz\"}} 20\n"
                ));
            }
            s
        };
        let tail = |error: u8| {
            format!(
                "# HELP node_textfile_mtime_seconds Unixtime mtime of textfiles successfully read.\n\
                 # TYPE node_textfile_mtime_seconds gauge\n\
                 node_textfile_mtime_seconds{{file=\"D/a.prom\"}} MTIME\n\
                 node_textfile_mtime_seconds{{file=\"D/b.prom\"}} MTIME\n\
                 # HELP node_textfile_scrape_error 1 if there was an error opening or reading a file, 0 otherwise\n\
                 # TYPE node_textfile_scrape_error gauge\n\
                 node_textfile_scrape_error {error}\n"
            )
        };
        let mtime_free = |s: String| {
            s.lines()
                .map(|l| match l.strip_prefix("node_textfile_mtime_seconds{") {
                    Some(rest) => format!(
                        "node_textfile_mtime_seconds{{{} MTIME",
                        rest.rsplit_once(' ').expect("value").0
                    ),
                    None => l.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        };
        let default = "Metric read from D/a.prom, D/b.prom";
        // No HELP, and an empty one (expfmt keeps no HELP for `# HELP name `): the default.
        for help in ["", "# HELP events_total \n"] {
            let (got, _) = merge_two(help, help);
            assert_eq!(
                mtime_free(got),
                events(default, &["a", "b"]) + &tail(0),
                "{help:?}"
            );
        }
        let same = "# HELP events_total The same help.\n";
        assert_eq!(
            mtime_free(merge_two(same, same).0),
            events("The same help.", &["a", "b"]) + &tail(0)
        );
        // A different HELP: the second file's family is left out and counted as an error,
        // though the file itself was read (its mtime is reported).
        let (got, _) = merge_two(
            "# HELP events_total A nice help message.\n",
            "# HELP events_total A different help message.\n",
        );
        assert_eq!(
            mtime_free(got),
            events("A nice help message.", &["a"]) + &tail(1)
        );
    }

    #[test]
    fn directories_are_glob_patterns_and_repeatable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for sub in ["x/a", "x/b", "y"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        write(&root.join("x/a"), "one.prom", "one 1\n");
        write(&root.join("x/b"), "two.prom", "two 2\n");
        write(&root.join("y"), "three.prom", "three 3\n");
        let r = root.display();
        let mut cfg = Config::default();
        for pattern in [
            format!("{r}/x/*"),
            format!("{r}/y/"),
            format!("{r}/nothing*"),
        ] {
            cfg.collectors
                .set_flag("collector.textfile.directory", Some(&pattern))
                .expect("valid flag");
        }
        let mut w = MetricWriter::new();
        Textfile::new(&cfg.context("textfile").expect("registered"))
            .collect(&mut w)
            .expect("textfile never fails");
        let got = w.render_to_string();
        for want in ["one 1\n", "two 2\n", "three 3\n"] {
            assert!(got.contains(want), "{want:?} in {got}");
        }
        // The `file` label is Go's filepath.Join of directory and name (the trailing slash of
        // `y/` cleaned away), sorted.
        let files: Vec<&str> = got
            .lines()
            .filter_map(|l| l.strip_prefix("node_textfile_mtime_seconds{file=\""))
            .map(|l| l.split('"').next().expect("label"))
            .collect();
        assert_eq!(
            files,
            [
                format!("{r}/x/a/one.prom"),
                format!("{r}/x/b/two.prom"),
                format!("{r}/y/three.prom")
            ]
        );
        // `nothing*` matches nothing, so it is read as a directory, which does not exist.
        assert_eq!(scrape_error(&got), "1");
    }
}
