//! `stat`: boot time, context switches, forks, interrupts and process counts from `/proc/stat`.

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::metrics::MetricWriter;
use crate::read;

/// The `stat` collector: `/proc/stat`: boot time, context switches, forks, interrupts, process counts.
pub const SPEC: Spec = Spec {
    name: "stat",
    default_enabled: true,
    help: "/proc/stat: boot time, context switches, forks, interrupts, process counts",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(Stat::new(ctx)),
};

pub struct Stat {
    file: read::KeptFile,
}

impl Stat {
    pub fn new(ctx: &Context) -> Self {
        Self {
            file: read::KeptFile::one_record(ctx.paths.procfs.join("stat")),
        }
    }
}

impl Collector for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let text = self.file.read_string()?;
        let (mut intr, mut ctxt, mut btime, mut forks, mut running, mut blocked) =
            (None, None, None, None, None, None);
        for line in text.lines() {
            let Some((key, rest)) = line.split_once(' ') else {
                continue;
            };
            let slot = match key {
                "intr" => &mut intr,
                "ctxt" => &mut ctxt,
                "btime" => &mut btime,
                "processes" => &mut forks,
                "procs_running" => &mut running,
                "procs_blocked" => &mut blocked,
                _ => continue,
            };
            // `intr` is followed by per-IRQ counts; its first number is the total.
            let first = rest.split_ascii_whitespace().next().unwrap_or("");
            *slot = Some(read::parse_u64(self.file.path(), first)? as f64);
        }
        let need = |v: Option<f64>, key: &str| {
            v.ok_or_else(|| CollectError::parse(self.file.path(), format!("missing {key:?} line")))
        };
        out.counter(
            "node_intr_total",
            "Total number of interrupts serviced.",
            &[],
            need(intr, "intr")?,
        );
        out.counter(
            "node_context_switches_total",
            "Total number of context switches.",
            &[],
            need(ctxt, "ctxt")?,
        );
        out.gauge(
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
            &[],
            need(btime, "btime")?,
        );
        out.counter(
            "node_forks_total",
            "Total number of forks.",
            &[],
            need(forks, "processes")?,
        );
        out.gauge(
            "node_procs_running",
            "Number of processes in runnable state.",
            &[],
            need(running, "procs_running")?,
        );
        out.gauge(
            "node_procs_blocked",
            "Number of processes blocked waiting for I/O to complete.",
            &[],
            need(blocked, "procs_blocked")?,
        );
        Ok(())
    }
}
