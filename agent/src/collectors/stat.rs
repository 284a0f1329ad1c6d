//! `stat`: boot time, context switches, forks, interrupts and process counts from `/proc/stat`,
//! and (opt-in, `--collector.stat.softirq`) softirq calls per vector (node_exporter 1.12's
//! `collector/stat_linux.go` over procfs' `Stat`).

use std::path::Path;

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::metrics::MetricWriter;
use crate::read;

const SOFTIRQ: Opt = Opt::new(
    "softirq",
    "collector.stat.softirq",
    Kind::Bool(false),
    "Export softirq calls per vector",
);

/// The `stat` collector: `/proc/stat`: boot time, context switches, forks, interrupts, process counts.
pub const SPEC: Spec = Spec {
    name: "stat",
    default_enabled: true,
    help: "/proc/stat: boot time, context switches, forks, interrupts, process counts",
    options: &[SOFTIRQ],
    filters: &[],
    build: |ctx| Box::new(Stat::new(ctx)),
};

/// The vectors of the `softirq` line after its total, in the kernel's order.
const VECTORS: [&str; 10] = [
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
];

pub struct Stat {
    file: read::KeptFile,
    /// `--collector.stat.softirq`: report `node_softirqs_total{vector}`.
    softirq: bool,
}

/// What node_exporter reports from `/proc/stat`. A line that is absent reads as 0, as in
/// procfs.
#[derive(Debug, Default, PartialEq)]
struct Values {
    intr: u64,
    ctxt: u64,
    btime: u64,
    forks: u64,
    running: u64,
    blocked: u64,
    softirq: [u64; 10],
}

/// Go's `strconv.ParseUint(s, 10, 64)`: digits only (no sign), no overflow.
fn uint(path: &Path, s: &str) -> Result<u64, CollectError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CollectError::parse(
            path,
            format!("not an unsigned integer: {s:?}"),
        ));
    }
    read::parse_u64(path, s)
}

/// Parses the lines node_exporter reads. procfs parses every number of the `intr` line and
/// the whole `softirq` line whether or not they are reported, so a malformed one fails the
/// collector in either case.
fn parse(path: &Path, text: &str) -> Result<Values, CollectError> {
    let mut v = Values::default();
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        let (Some(key), Some(first)) = (parts.next(), parts.next()) else {
            continue;
        };
        let slot = match key {
            "intr" => {
                for n in parts {
                    uint(path, n)?;
                }
                &mut v.intr
            }
            "ctxt" => &mut v.ctxt,
            "btime" => &mut v.btime,
            "processes" => &mut v.forks,
            "procs_running" => &mut v.running,
            "procs_blocked" => &mut v.blocked,
            "softirq" => {
                // procfs' Sscanf wants the total and all ten vectors; more are ignored.
                uint(path, first)?;
                for slot in &mut v.softirq {
                    let n = parts.next().ok_or_else(|| {
                        CollectError::parse(path, format!("short softirq line: {line:?}"))
                    })?;
                    *slot = uint(path, n)?;
                }
                continue;
            }
            _ => continue,
        };
        *slot = uint(path, first)?;
    }
    Ok(v)
}

impl Stat {
    pub fn new(ctx: &Context) -> Self {
        Self {
            file: read::KeptFile::one_record(ctx.paths.procfs.join("stat")),
            softirq: ctx.bool(&SOFTIRQ),
        }
    }
}

impl Collector for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let text = self.file.read_string()?;
        let v = parse(self.file.path(), &text)?;
        out.counter(
            "node_intr_total",
            "Total number of interrupts serviced.",
            &[],
            v.intr as f64,
        );
        out.counter(
            "node_context_switches_total",
            "Total number of context switches.",
            &[],
            v.ctxt as f64,
        );
        out.gauge(
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
            &[],
            v.btime as f64,
        );
        out.counter(
            "node_forks_total",
            "Total number of forks.",
            &[],
            v.forks as f64,
        );
        out.gauge(
            "node_procs_running",
            "Number of processes in runnable state.",
            &[],
            v.running as f64,
        );
        out.gauge(
            "node_procs_blocked",
            "Number of processes blocked waiting for I/O to complete.",
            &[],
            v.blocked as f64,
        );
        if self.softirq {
            // Sorted by vector name, as node_exporter's registry sorts them.
            let mut vectors: Vec<(&str, u64)> = VECTORS.into_iter().zip(v.softirq).collect();
            vectors.sort_unstable();
            for (vector, n) in vectors {
                out.counter(
                    "node_softirqs_total",
                    "Number of softirq calls.",
                    &[("vector", vector)],
                    n as f64,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_lines_read_as_zero_and_softirq_needs_ten_vectors() {
        let p = Path::new("/proc/stat");
        let v = parse(p, "ctxt 5\nbtime 7\nsoftirq 55 1 2 3 4 5 6 7 8 9 10 11\n").expect("valid");
        assert_eq!(
            v,
            Values {
                ctxt: 5,
                btime: 7,
                softirq: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                ..Values::default()
            }
        );
        for bad in [
            "softirq 55 1 2 3 4 5 6 7 8 9\n",
            "softirq 55 1 2 3 4 5 6 7 8 9 x\n",
            "intr 5 1 x\n",
            "ctxt +5\n",
            "btime -1\n",
        ] {
            assert!(parse(p, bad).is_err(), "{bad:?}");
        }
        // A key without a value is skipped, as procfs skips lines of one field.
        assert_eq!(parse(p, "ctxt\n").expect("valid"), Values::default());
    }

    #[test]
    fn softirq_family_follows_its_flag() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host");
        for on in [false, true] {
            let mut cfg = crate::Config::default();
            cfg.paths.procfs = fixtures.join("proc");
            if on {
                cfg.collectors
                    .set_flag("collector.stat.softirq", None)
                    .expect("valid flag");
            }
            let mut w = MetricWriter::new();
            Stat::new(&cfg.context("stat").expect("registered"))
                .collect(&mut w)
                .expect("fixture");
            let text = w.render_to_string();
            assert_eq!(
                text.contains("node_softirqs_total{vector=\"rcu\"} 508444\n"),
                on,
                "{text}"
            );
            assert_eq!(w.sample_count(), if on { 16 } else { 6 });
        }
    }
}
