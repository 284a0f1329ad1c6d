//! `cpu`: per-CPU time by mode from `/proc/stat`, and thermal throttle counts from sysfs.
//!
//! Counters never decrease: like node_exporter, the collector remembers the last value per CPU
//! and mode and keeps it when the kernel reports a smaller one (idle and iowait are known to
//! jump backwards). When idle drops by 3 s or more the CPU was hot-plugged, and its cache is
//! reset. CPUs that go offline are forgotten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::metrics::MetricWriter;
use crate::read;

/// `/proc/stat` counts in USER_HZ, which is 100 on every Linux ABI node_exporter supports.
const USER_HZ: f64 = 100.0;
/// An idle counter dropping by this many seconds means the CPU was replaced (hotplug).
const JUMP_BACK_SECONDS: f64 = 3.0;
/// Field order in `/proc/stat` cpu lines.
const FIELDS: usize = 10;
const USER: usize = 0;
const NICE: usize = 1;
const SYSTEM: usize = 2;
const IDLE: usize = 3;
const IOWAIT: usize = 4;
const IRQ: usize = 5;
const SOFTIRQ: usize = 6;
const STEAL: usize = 7;
const GUEST: usize = 8;
const GUEST_NICE: usize = 9;
/// Modes of `node_cpu_seconds_total`, sorted by name as node_exporter prints them.
const MODES: [(&str, usize); 8] = [
    ("idle", IDLE),
    ("iowait", IOWAIT),
    ("irq", IRQ),
    ("nice", NICE),
    ("softirq", SOFTIRQ),
    ("steal", STEAL),
    ("system", SYSTEM),
    ("user", USER),
];

const SECONDS_HELP: &str = "Seconds the CPUs spent in each mode.";
const GUEST_HELP: &str = "Seconds the CPUs spent in guests (VMs) for each mode.";

/// The `cpu` collector: `/proc/stat` per-CPU times, `/sys/devices/system/cpu` throttles.
pub const SPEC: Spec = Spec {
    name: "cpu",
    default_enabled: true,
    help: "/proc/stat per-CPU times, /sys/devices/system/cpu throttles",
    options: &[GUEST_OPT],
    filters: &[],
    build: |ctx| Box::new(Cpu::new(ctx)),
};

const GUEST_OPT: Opt = Opt::new(
    "guest",
    "collector.cpu.guest",
    Kind::Bool(true),
    "Enables metric node_cpu_guest_seconds_total",
);

pub struct Cpu {
    stat: read::KeptFile,
    /// `--collector.cpu.guest`: report `node_cpu_guest_seconds_total`.
    guest: bool,
    cpu_dir: PathBuf,
    /// Last reported seconds per CPU id, indexed by `FIELDS` order.
    last: Mutex<HashMap<String, [f64; FIELDS]>>,
}

impl Cpu {
    pub fn new(ctx: &Context) -> Self {
        Self {
            stat: read::KeptFile::one_record(ctx.paths.procfs.join("stat")),
            guest: ctx.bool(&GUEST_OPT),
            cpu_dir: ctx.paths.sysfs.join("devices/system/cpu"),
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Applies the never-decrease rule and returns the values to report.
    fn monotonic(&self, current: Vec<(String, [f64; FIELDS])>) -> Vec<(String, [f64; FIELDS])> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(current.len());
        for (id, new) in current {
            let prev = last.entry(id.clone()).or_insert([0.0; FIELDS]);
            if prev[IDLE] - new[IDLE] >= JUMP_BACK_SECONDS {
                tracing::debug!(cpu = %id, old = prev[IDLE], new = new[IDLE], "cpu idle counter jumped backwards, possible hotplug event, resetting cpu stats");
                *prev = [0.0; FIELDS];
            }
            for (p, n) in prev.iter_mut().zip(new) {
                if n >= *p {
                    *p = n;
                }
            }
            out.push((id, *prev));
        }
        if last.len() != out.len() {
            last.retain(|id, _| out.iter().any(|(o, _)| o == id));
        }
        out
    }

    fn throttles(&self, cpus: &[(String, [f64; FIELDS])], out: &mut MetricWriter) {
        // Only x86 exposes thermal_throttle; probe one CPU instead of failing an open per CPU.
        let Some((first, _)) = cpus.first() else {
            return;
        };
        if !self
            .cpu_dir
            .join(format!("cpu{first}/thermal_throttle"))
            .exists()
        {
            return;
        }
        // package -> (package count, core -> core count); BTreeMaps keep the output stable.
        let mut packages: std::collections::BTreeMap<
            u64,
            (Option<u64>, std::collections::BTreeMap<u64, u64>),
        > = Default::default();
        for (id, _) in cpus {
            let dir = self.cpu_dir.join(format!("cpu{id}"));
            let (Ok(pkg), Ok(core)) = (
                read::read_u64(&dir.join("topology/physical_package_id")),
                read::read_u64(&dir.join("topology/core_id")),
            ) else {
                continue;
            };
            let entry = packages.entry(pkg).or_default();
            if let std::collections::btree_map::Entry::Vacant(v) = entry.1.entry(core) {
                if let Ok(n) = read::read_u64(&dir.join("thermal_throttle/core_throttle_count")) {
                    v.insert(n);
                }
            }
            if entry.0.is_none() {
                entry.0 = read::read_u64(&dir.join("thermal_throttle/package_throttle_count")).ok();
            }
        }
        for (pkg, (count, cores)) in &packages {
            let pkg = pkg.to_string();
            for (core, n) in cores {
                out.counter(
                    "node_cpu_core_throttles_total",
                    "Number of times this CPU core has been throttled.",
                    &[("core", &core.to_string()), ("package", &pkg)],
                    *n as f64,
                );
            }
            if let Some(n) = count {
                out.counter(
                    "node_cpu_package_throttles_total",
                    "Number of times this CPU package has been throttled.",
                    &[("package", &pkg)],
                    *n as f64,
                );
            }
        }
    }
}

/// Parses the per-CPU lines of `/proc/stat` into seconds.
fn parse_stat(path: &Path, text: &str) -> Result<Vec<(String, [f64; FIELDS])>, CollectError> {
    let mut cpus = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let mut fields = rest.split_ascii_whitespace();
        let Some(id) = fields.next() else { continue };
        if !id.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() || rest.starts_with(' ') {
            continue; // the aggregate "cpu " line
        }
        let mut v = [0.0; FIELDS];
        for (i, f) in fields.take(FIELDS).enumerate() {
            v[i] = read::parse_u64(path, f)? as f64 / USER_HZ;
        }
        cpus.push((id.to_owned(), v));
    }
    if cpus.is_empty() {
        return Err(CollectError::parse(path, "no per-cpu lines"));
    }
    Ok(cpus)
}

impl Collector for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let text = self.stat.read_string()?;
        let cpus = self.monotonic(parse_stat(self.stat.path(), &text)?);
        for (id, v) in &cpus {
            for (mode, i) in MODES {
                out.counter(
                    "node_cpu_seconds_total",
                    SECONDS_HELP,
                    &[("cpu", id), ("mode", mode)],
                    v[i],
                );
            }
        }
        for (id, v) in cpus.iter().filter(|_| self.guest) {
            out.counter(
                "node_cpu_guest_seconds_total",
                GUEST_HELP,
                &[("cpu", id), ("mode", "nice")],
                v[GUEST_NICE],
            );
            out.counter(
                "node_cpu_guest_seconds_total",
                GUEST_HELP,
                &[("cpu", id), ("mode", "user")],
                v[GUEST],
            );
        }
        self.throttles(&cpus, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn cpu() -> Cpu {
        Cpu::new(&Config::default().context("cpu").expect("registered"))
    }

    #[test]
    fn guest_seconds_follow_the_guest_flag() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host");
        for (flag, want) in [("true", true), ("false", false)] {
            let mut cfg = Config::default();
            cfg.paths.procfs = fixtures.join("proc");
            cfg.paths.sysfs = fixtures.join("sys");
            cfg.collectors
                .set_flag("collector.cpu.guest", Some(flag))
                .expect("valid flag");
            let mut w = MetricWriter::new();
            Cpu::new(&cfg.context("cpu").expect("registered"))
                .collect(&mut w)
                .expect("fixture /proc/stat");
            let text = w.render_to_string();
            assert!(text.contains("node_cpu_seconds_total{"), "{text}");
            assert_eq!(
                text.contains("node_cpu_guest_seconds_total{"),
                want,
                "{text}"
            );
        }
    }

    fn line(idle: u64, user: u64) -> (String, [f64; FIELDS]) {
        let mut v = [0.0; FIELDS];
        v[IDLE] = idle as f64 / USER_HZ;
        v[USER] = user as f64 / USER_HZ;
        ("0".to_owned(), v)
    }

    #[test]
    fn counters_never_decrease() {
        let c = cpu();
        c.monotonic(vec![line(1000, 500)]);
        // idle drops by 1 s (less than the hotplug threshold), user drops by 0.5 s
        let out = c.monotonic(vec![line(900, 450)]);
        assert_eq!(out[0].1[IDLE], 10.0);
        assert_eq!(out[0].1[USER], 5.0);
    }

    #[test]
    fn hotplug_resets_the_cpu() {
        let c = cpu();
        c.monotonic(vec![line(100_000, 500)]);
        let out = c.monotonic(vec![line(200, 100)]);
        assert_eq!(out[0].1[IDLE], 2.0);
        assert_eq!(out[0].1[USER], 1.0);
    }

    #[test]
    fn aggregate_line_is_skipped_and_bad_numbers_fail() {
        let p = Path::new("/proc/stat");
        let ok = parse_stat(
            p,
            "cpu  1 2 3 4\ncpu0 1 2 3 4 5 6 7 8 9 10\ncpufreq x\nintr 1\n",
        )
        .expect("parse");
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].0, "0");
        let err = parse_stat(p, "cpu0 1 x\n").expect_err("bad number");
        assert_eq!(
            err.to_string(),
            "parse /proc/stat: not an unsigned integer: \"x\""
        );
    }
}
