//! `pressure`: pressure stall information (PSI) from `/proc/pressure/{cpu,io,memory,irq}`
//! (node_exporter 1.12's `collector/pressure_linux.go`): the `total=` stall time of the `some`
//! and `full` lines, in seconds.

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
    /// Linux 6.1+ with CONFIG_IRQ_TIME_ACCOUNTING; only a `full` line.
    irq: read::KeptFile,
}

impl Pressure {
    pub fn new(ctx: &Context) -> Self {
        let dir = ctx.paths.procfs.join("pressure");
        Self {
            cpu: read::KeptFile::one_record(dir.join("cpu")),
            io: read::KeptFile::one_record(dir.join("io")),
            memory: read::KeptFile::one_record(dir.join("memory")),
            irq: read::KeptFile::one_record(dir.join("irq")),
        }
    }
}

/// The `total=` values (microseconds) of one PSI file's `some` and `full` lines.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    some: Option<u64>,
    full: Option<u64>,
}

/// Reads one PSI file: `None` when it does not exist (a kernel older than 4.20, or without
/// CONFIG_PSI; for irq, older than 6.1), which node_exporter 1.12 skips resource by resource.
/// EOPNOTSUPP (PSI disabled with `psi=0`) means the host has no pressure data at all.
fn read_totals(file: &read::KeptFile) -> Result<Option<Totals>, CollectError> {
    let path = file.path();
    match file.read_string_io() {
        Ok(text) => parse_totals(path, &text).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Err(CollectError::NoData(format!(
            "pressure information is disabled: {}",
            path.display()
        ))),
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
fn seconds(total: u64) -> f64 {
    total as f64 / 1000.0 / 1000.0
}

/// A line node_exporter requires but the file lacks: it gives up with `ErrNoData`, keeping
/// what the resources before it already sent.
fn missing(path: &Path, line: &str) -> CollectError {
    CollectError::NoData(format!(
        "pressure information returned no {line:?} data: {}",
        path.display()
    ))
}

impl Collector for Pressure {
    fn name(&self) -> &'static str {
        "pressure"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        // Resources in node_exporter's order, each written once read, as it sends them: an
        // absent file is skipped, and only a host with none of them has no data. node_exporter
        // ignores the `full` line of cpu (added in Linux 5.13); irq has only `full`.
        let mut found = 0;
        if let Some(cpu) = read_totals(&self.cpu)? {
            let some = cpu.some.ok_or_else(|| missing(self.cpu.path(), "some"))?;
            out.counter(
                "node_pressure_cpu_waiting_seconds_total",
                "Total time in seconds that processes have waited for CPU time",
                &[],
                seconds(some),
            );
            found += 1;
        }
        if let Some(io) = read_totals(&self.io)? {
            let some = io.some.ok_or_else(|| missing(self.io.path(), "some"))?;
            let full = io.full.ok_or_else(|| missing(self.io.path(), "full"))?;
            out.counter(
                "node_pressure_io_waiting_seconds_total",
                "Total time in seconds that processes have waited due to IO congestion",
                &[],
                seconds(some),
            );
            out.counter(
                "node_pressure_io_stalled_seconds_total",
                "Total time in seconds no process could make progress due to IO congestion",
                &[],
                seconds(full),
            );
            found += 1;
        }
        if let Some(memory) = read_totals(&self.memory)? {
            let some = memory
                .some
                .ok_or_else(|| missing(self.memory.path(), "some"))?;
            let full = memory
                .full
                .ok_or_else(|| missing(self.memory.path(), "full"))?;
            out.counter(
                "node_pressure_memory_waiting_seconds_total",
                "Total time in seconds that processes have waited for memory",
                &[],
                seconds(some),
            );
            out.counter(
                "node_pressure_memory_stalled_seconds_total",
                "Total time in seconds no process could make progress due to memory congestion",
                &[],
                seconds(full),
            );
            found += 1;
        }
        if let Some(irq) = read_totals(&self.irq)? {
            let full = irq.full.ok_or_else(|| missing(self.irq.path(), "full"))?;
            out.counter(
                "node_pressure_irq_stalled_seconds_total",
                "Total time in seconds no process could make progress due to IRQ congestion",
                &[],
                seconds(full),
            );
            found += 1;
        }
        if found == 0 {
            return Err(CollectError::NoData(format!(
                "pressure information is unavailable: no {}/{{cpu,io,memory,irq}}",
                self.cpu.path().parent().unwrap_or(Path::new("")).display()
            )));
        }
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
        let v = seconds(14946068);
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

    /// Writes `files` (name, content) under `{dir}/pressure`.
    fn psi_files(dir: &Path, files: &[(&str, &str)]) {
        let p = dir.join("pressure");
        std::fs::create_dir_all(&p).expect("mkdir");
        for (name, text) in files {
            std::fs::write(p.join(name), text).expect("write");
        }
    }

    const SOME: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n";
    const BOTH: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n\
                        full avg10=0.00 avg60=0.00 avg300=0.00 total=2000000\n";

    #[test]
    fn missing_full_line_is_no_data_after_earlier_resources() {
        let dir = tempfile::tempdir().expect("tempdir");
        psi_files(dir.path(), &[("cpu", SOME), ("io", SOME)]);
        let mut w = MetricWriter::new();
        let e = pressure_in(dir.path())
            .collect(&mut w)
            .expect_err("io lacks full");
        assert!(e.is_no_data(), "{e}");
        assert!(e.to_string().contains("no \"full\" data"), "{e}");
        let got = w.render_to_string();
        assert!(
            got.contains("node_pressure_cpu_waiting_seconds_total 1\n"),
            "{got}"
        );
        assert!(!got.contains("node_pressure_io_"), "{got}");
    }

    #[test]
    fn absent_resources_are_skipped_one_by_one() {
        // A kernel older than 6.1 has no irq file; one without memory cgroups' PSI, no memory
        // file: node_exporter 1.12 reports what exists and succeeds.
        let dir = tempfile::tempdir().expect("tempdir");
        psi_files(dir.path(), &[("cpu", SOME), ("io", BOTH)]);
        let mut w = MetricWriter::new();
        pressure_in(dir.path()).collect(&mut w).expect("some psi");
        let got = w.render_to_string();
        assert!(
            got.contains("node_pressure_io_stalled_seconds_total 2\n"),
            "{got}"
        );
        assert!(!got.contains("memory"), "{got}");
        assert!(!got.contains("irq"), "{got}");
        assert_eq!(w.sample_count(), 3);
    }

    #[test]
    fn irq_has_only_a_full_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        psi_files(
            dir.path(),
            &[("irq", "full avg10=0.00 avg60=0.00 avg300=0.00 total=8494")],
        );
        let mut w = MetricWriter::new();
        pressure_in(dir.path()).collect(&mut w).expect("irq psi");
        assert_eq!(
            w.render_to_string(),
            "# HELP node_pressure_irq_stalled_seconds_total Total time in seconds no process \
             could make progress due to IRQ congestion\n\
             # TYPE node_pressure_irq_stalled_seconds_total counter\n\
             node_pressure_irq_stalled_seconds_total 0.008494\n"
        );
        // An irq file without `full` is node_exporter's "no 'full' data".
        psi_files(dir.path(), &[("irq", SOME)]);
        let e = pressure_in(dir.path())
            .collect(&mut MetricWriter::new())
            .expect_err("irq lacks full");
        assert!(e.is_no_data(), "{e}");
    }
}
