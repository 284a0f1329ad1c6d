//! `pressure`: pressure stall information (PSI) from `/proc/pressure/{cpu,io,memory}`
//! (node_exporter's `collector/pressure_linux.go`): the `total=` stall time of the `some` and
//! `full` lines, in seconds.

use std::io;
use std::path::Path;

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::metrics::MetricWriter;
use crate::read;

/// The `pressure` collector: `/proc/pressure/*`: pressure stall information.
pub const SPEC: Spec = Spec {
    name: "pressure",
    default_enabled: true,
    help: "/proc/pressure/*: pressure stall information",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(Pressure::new(ctx)),
};

/// Reads `{procfs}/pressure/*`.
#[derive(Debug)]
pub struct Pressure {
    cpu: read::KeptFile,
    io: read::KeptFile,
    memory: read::KeptFile,
}

impl Pressure {
    pub fn new(ctx: &Context) -> Self {
        let dir = ctx.paths.procfs.join("pressure");
        Self {
            cpu: read::KeptFile::one_record(dir.join("cpu")),
            io: read::KeptFile::one_record(dir.join("io")),
            memory: read::KeptFile::one_record(dir.join("memory")),
        }
    }
}

/// The `total=` values (microseconds) of one PSI file's `some` and `full` lines.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    some: Option<u64>,
    full: Option<u64>,
}

/// Reads one PSI file. Absent files (kernel older than 4.20 or without CONFIG_PSI) and
/// EOPNOTSUPP (PSI disabled with `psi=0`) mean the host has no pressure data.
fn read_totals(file: &read::KeptFile) -> Result<Totals, CollectError> {
    let path = file.path();
    match file.read_string_io() {
        Ok(text) => parse_totals(path, &text),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::EOPNOTSUPP) =>
        {
            Err(CollectError::NoData(format!(
                "pressure information is unavailable: {}: {}",
                path.display(),
                crate::error::io_reason(&e)
            )))
        }
        Err(e) => Err(CollectError::io(path, e)),
    }
}

/// Parses lines like `some avg10=0.06 avg60=0.21 avg300=0.99 total=8537362`. Lines with another
/// prefix are ignored, as procfs does, so future kernels can add kinds.
fn parse_totals(path: &Path, text: &str) -> Result<Totals, CollectError> {
    let mut totals = Totals::default();
    for line in text.lines() {
        let mut fields = line.split(' ');
        let slot = match fields.next() {
            Some("some") => &mut totals.some,
            Some("full") => &mut totals.full,
            _ => continue,
        };
        let bad = || CollectError::parse(path, format!("invalid line: {line:?}"));
        let mut total = None;
        for (i, key) in ["avg10=", "avg60=", "avg300=", "total="]
            .into_iter()
            .enumerate()
        {
            let value = fields
                .next()
                .and_then(|f| f.strip_prefix(key))
                .ok_or_else(bad)?;
            if i < 3 {
                value.parse::<f64>().map_err(|_| bad())?;
            } else {
                total = Some(value.parse::<u64>().map_err(|_| bad())?);
            }
        }
        *slot = total;
    }
    Ok(totals)
}

/// Microseconds to seconds, computed as node_exporter does (two divisions), so that both
/// exporters print the same last digit.
fn seconds(path: &Path, total: Option<u64>, line: &str) -> Result<f64, CollectError> {
    let total = total.ok_or_else(|| CollectError::parse(path, format!("missing {line:?} line")))?;
    Ok(total as f64 / 1000.0 / 1000.0)
}

impl Collector for Pressure {
    fn name(&self) -> &'static str {
        "pressure"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        // Each file's samples are written once it is read, as node_exporter sends them.
        // node_exporter 1.5 ignores the `full` line of cpu (added in Linux 5.13).
        let cpu = read_totals(&self.cpu)?;
        out.counter(
            "node_pressure_cpu_waiting_seconds_total",
            "Total time in seconds that processes have waited for CPU time",
            &[],
            seconds(self.cpu.path(), cpu.some, "some")?,
        );
        let io = read_totals(&self.io)?;
        out.counter(
            "node_pressure_io_waiting_seconds_total",
            "Total time in seconds that processes have waited due to IO congestion",
            &[],
            seconds(self.io.path(), io.some, "some")?,
        );
        out.counter(
            "node_pressure_io_stalled_seconds_total",
            "Total time in seconds no process could make progress due to IO congestion",
            &[],
            seconds(self.io.path(), io.full, "full")?,
        );
        let memory = read_totals(&self.memory)?;
        out.counter(
            "node_pressure_memory_waiting_seconds_total",
            "Total time in seconds that processes have waited for memory",
            &[],
            seconds(self.memory.path(), memory.some, "some")?,
        );
        out.counter(
            "node_pressure_memory_stalled_seconds_total",
            "Total time in seconds no process could make progress due to memory congestion",
            &[],
            seconds(self.memory.path(), memory.full, "full")?,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn parses_some_and_full() {
        let text = "some avg10=2.49 avg60=1.41 avg300=1.60 total=14835472\n\
                    full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        let t = parse_totals(Path::new("/p"), text).expect("valid psi");
        assert_eq!(
            t,
            Totals {
                some: Some(14835472),
                full: Some(0)
            }
        );
        // Unknown kinds are skipped; an old kernel's cpu file has no `full` line.
        let t = parse_totals(
            Path::new("/p"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=7\nother x\n",
        )
        .expect("valid psi");
        assert_eq!(
            t,
            Totals {
                some: Some(7),
                full: None
            }
        );
    }

    #[test]
    fn seconds_match_go_rounding() {
        // node_exporter 1.5 printed 14.946067999999999 for total=14946068.
        let v = seconds(Path::new("/p"), Some(14946068), "some").expect("value");
        let mut s = String::new();
        crate::metrics::write_value(&mut s, v);
        assert_eq!(s, "14.946067999999999");
    }

    #[test]
    fn malformed_lines_are_parse_errors() {
        for text in [
            "some avg10=0.00 avg60=0.00 avg300=0.00\n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=-1\n",
            "some avg10=x avg60=0.00 avg300=0.00 total=1\n",
            "full total=1\n",
        ] {
            let e = parse_totals(Path::new("/p"), text).expect_err(text);
            assert!(e.to_string().starts_with("parse /p: invalid line: "), "{e}");
        }
    }

    fn pressure_in(dir: &Path) -> Pressure {
        let mut cfg = Config::default();
        cfg.paths.procfs = dir.to_owned();
        Pressure::new(&cfg.context("pressure").expect("registered"))
    }

    #[test]
    fn absent_pressure_dir_is_no_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = pressure_in(dir.path())
            .collect(&mut MetricWriter::new())
            .expect_err("no psi");
        assert!(e.is_no_data(), "{e}");
    }

    #[test]
    fn missing_full_line_is_a_parse_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pressure");
        std::fs::create_dir(&p).expect("mkdir");
        let some = "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n";
        std::fs::write(p.join("cpu"), some).expect("write");
        std::fs::write(p.join("io"), some).expect("write");
        let mut w = MetricWriter::new();
        let e = pressure_in(dir.path())
            .collect(&mut w)
            .expect_err("io lacks full");
        assert!(
            e.to_string()
                .ends_with("pressure/io: missing \"full\" line"),
            "{e}"
        );
        assert!(w
            .render_to_string()
            .contains("node_pressure_cpu_waiting_seconds_total 1\n"));
    }
}
