//! `cpu`: per-CPU time by mode from `/proc/stat`, thermal throttle counts, isolated and
//! online CPUs from sysfs, and (opt-in, `--collector.cpu.info`) `/proc/cpuinfo` as info
//! families (node_exporter 1.12's `collector/cpu_linux.go`).
//!
//! Counters never decrease: like node_exporter, the collector remembers the last value per CPU
//! and mode and keeps it when the kernel reports a smaller one (idle and iowait are known to
//! jump backwards). When idle drops by 3 s or more the CPU was hot-plugged, and its cache is
//! reset. CPUs that go offline are forgotten.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use regex_lite::Regex;

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::cpuinfo;
use crate::metrics::MetricWriter;
use crate::read;
use crate::sysfs::SYSFS_READ_MAX;

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
    options: &[GUEST_OPT, INFO_OPT, FLAGS_INCLUDE, BUGS_INCLUDE],
    filters: &[],
    build: |ctx| Box::new(Cpu::new(ctx)),
};

const GUEST_OPT: Opt = Opt::new(
    "guest",
    "collector.cpu.guest",
    Kind::Bool(true),
    "Enables metric node_cpu_guest_seconds_total",
);

const INFO_OPT: Opt = Opt::new(
    "info",
    "collector.cpu.info",
    Kind::Bool(false),
    "Enables metric cpu_info",
);

const FLAGS_INCLUDE: Opt = Opt::new(
    "flags_include",
    "collector.cpu.info.flags-include",
    Kind::Regex(None),
    "Filter the `flags` field in cpuInfo with a value that must be a regular expression",
);

const BUGS_INCLUDE: Opt = Opt::new(
    "bugs_include",
    "collector.cpu.info.bugs-include",
    Kind::Regex(None),
    "Filter the `bugs` field in cpuInfo with a value that must be a regular expression",
);

pub struct Cpu {
    stat: read::KeptFile,
    /// `--collector.cpu.guest`: report `node_cpu_guest_seconds_total`.
    guest: bool,
    cpu_dir: PathBuf,
    /// Last reported seconds per CPU id, indexed by `FIELDS` order.
    last: Mutex<HashMap<String, [f64; FIELDS]>>,
    /// `--collector.cpu.info` (implied by either include pattern): `/proc/cpuinfo` families.
    info: Option<Info>,
    /// `/sys/devices/system/cpu/isolated`, read once at start as node_exporter does, as
    /// sorted unique `cpu` labels; `None` when the file does not exist (or is unparsable).
    isolated: Option<Vec<String>>,
    /// `cpu0/online`: its absence means the kernel cannot take CPUs offline.
    cpu0_online: read::KeptFile,
    /// Every CPU's `online` file, by directory name, kept open between scrapes.
    online: Mutex<HashMap<String, read::KeptFile>>,
}

/// The opt-in `/proc/cpuinfo` families.
#[derive(Debug)]
struct Info {
    file: read::KeptFile,
    /// `node_cpu_flag_info` for the first processor's flags that match; none when unset.
    flags: Option<Regex>,
    /// `node_cpu_bug_info` likewise.
    bugs: Option<Regex>,
    /// `node_cpu_frequency_hertz`, which node_exporter reports only while its cpufreq
    /// collector is enabled (it is by default).
    frequency: bool,
}

impl Cpu {
    pub fn new(ctx: &Context) -> Self {
        let cpu_dir = ctx.paths.sysfs.join("devices/system/cpu");
        let flags = ctx.regex(&FLAGS_INCLUDE);
        let bugs = ctx.regex(&BUGS_INCLUDE);
        let info = if ctx.bool(&INFO_OPT) || flags.is_some() || bugs.is_some() {
            if !ctx.bool(&INFO_OPT) {
                tracing::info!("--collector.cpu.info has been set to `true` because you set the following flags, like --collector.cpu.info.flags-include and --collector.cpu.info.bugs-include");
            }
            Some(Info {
                file: read::KeptFile::new(ctx.paths.procfs.join("cpuinfo")),
                flags,
                bugs,
                frequency: ctx.collector_enabled("cpufreq"),
            })
        } else {
            None
        };
        Self {
            stat: read::KeptFile::one_record(ctx.paths.procfs.join("stat")),
            guest: ctx.bool(&GUEST_OPT),
            isolated: read_isolated(&cpu_dir.join("isolated")),
            cpu0_online: read::KeptFile::new(cpu_dir.join("cpu0/online")),
            online: Mutex::new(HashMap::new()),
            cpu_dir,
            last: Mutex::new(HashMap::new()),
            info,
        }
    }

    /// `node_cpu_info`, `node_cpu_frequency_hertz`, `node_cpu_flag_info`, `node_cpu_bug_info`.
    fn info(&self, info: &Info, out: &mut MetricWriter) -> Result<(), CollectError> {
        let path = info.file.path();
        let text = info.file.read_string()?;
        let cpus = cpuinfo::parse(&text).map_err(|e| CollectError::parse(path, e))?;
        let mut rows: Vec<[String; 10]> = cpus
            .iter()
            .map(|c| {
                // Label names sorted: cachesize, core, cpu, family, microcode, model,
                // model_name, package, stepping, vendor.
                [
                    c.cache_size.clone(),
                    c.core_id.clone(),
                    c.processor.to_string(),
                    c.cpu_family.clone(),
                    c.microcode.clone(),
                    c.model.clone(),
                    c.model_name.clone(),
                    c.physical_id.clone(),
                    c.stepping.clone(),
                    c.vendor_id.clone(),
                ]
            })
            .collect();
        // node_exporter's registry sorts by label values and drops repeated label sets,
        // keeping the first (a stable sort keeps it first).
        rows.sort();
        rows.dedup();
        for r in &rows {
            out.gauge(
                "node_cpu_info",
                "CPU information from /proc/cpuinfo.",
                &[
                    ("cachesize", &r[0]),
                    ("core", &r[1]),
                    ("cpu", &r[2]),
                    ("family", &r[3]),
                    ("microcode", &r[4]),
                    ("model", &r[5]),
                    ("model_name", &r[6]),
                    ("package", &r[7]),
                    ("stepping", &r[8]),
                    ("vendor", &r[9]),
                ],
                1.0,
            );
        }
        if info.frequency {
            let mut rows: Vec<(&str, String, &str, f64)> = cpus
                .iter()
                .map(|c| {
                    let cpu = c.processor.to_string();
                    (
                        c.core_id.as_str(),
                        cpu,
                        c.physical_id.as_str(),
                        c.cpu_mhz * 1e6,
                    )
                })
                .collect();
            rows.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
            rows.dedup_by(|a, b| (a.0, &a.1, a.2) == (b.0, &b.1, b.2));
            for (core, cpu, package, hz) in &rows {
                out.gauge(
                    "node_cpu_frequency_hertz",
                    "CPU frequency in hertz from /proc/cpuinfo.",
                    &[("core", core), ("cpu", cpu), ("package", package)],
                    *hz,
                );
            }
        }
        if let Some(first) = cpus.first() {
            field_info(
                out,
                "node_cpu_flag_info",
                "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
                "flag",
                &first.flags,
                info.flags.as_ref(),
            );
            field_info(
                out,
                "node_cpu_bug_info",
                "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
                "bug",
                &first.bugs,
                info.bugs.as_ref(),
            );
        }
        Ok(())
    }

    /// `node_cpu_online`. node_exporter looks at the first CPU directory's `online` file
    /// (cpu0's): where it does not exist (x86, whose boot CPU cannot go offline) it reports
    /// nothing, so the common case costs one failed open.
    fn online(&self, out: &mut MetricWriter) {
        let mut buf = [0u8; SYSFS_READ_MAX];
        let first = self.cpu0_online.read_once(&mut buf);
        if matches!(&first, Err(e) if e.kind() == io::ErrorKind::NotFound)
            && self.cpu_dir.join("cpu0").is_dir()
        {
            return;
        }
        // Go's filepath.Glob("cpu[0-9]*"), sorted; it ignores I/O errors.
        let mut names: Vec<String> = std::fs::read_dir(&self.cpu_dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| {
                n.strip_prefix("cpu")
                    .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
            })
            .collect();
        names.sort_unstable();
        let mut files = self.online.lock().unwrap_or_else(PoisonError::into_inner);
        files.retain(|name, _| names.binary_search(name).is_ok());
        let mut states = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let file = files
                .entry(name.clone())
                .or_insert_with(|| read::KeptFile::new(self.cpu_dir.join(name).join("online")));
            let read = file.read_once(&mut buf);
            if i == 0 && matches!(&read, Err(e) if e.kind() == io::ErrorKind::NotFound) {
                return;
            }
            // procfs trims the value; anything but "1" (or an unreadable file) is offline.
            let on = read.is_ok_and(|n| buf[..n].trim_ascii() == b"1");
            states.push((&name[3..], on));
        }
        // Sorted by the `cpu` label as a string, as node_exporter's registry sorts.
        states.sort_unstable();
        for (cpu, on) in states {
            out.gauge(
                "node_cpu_online",
                "CPUs that are online and being scheduled.",
                &[("cpu", cpu)],
                if on { 1.0 } else { 0.0 },
            );
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

/// One `node_cpu_{flag,bug}_info` family: the values matching `filter`, sorted and unique as
/// node_exporter's registry leaves them; nothing without a filter.
fn field_info(
    out: &mut MetricWriter,
    name: &str,
    help: &str,
    label: &str,
    values: &[String],
    filter: Option<&Regex>,
) {
    let Some(filter) = filter else {
        return;
    };
    let mut matched: Vec<&str> = values
        .iter()
        .map(String::as_str)
        .filter(|v| filter.is_match(v))
        .collect();
    matched.sort_unstable();
    matched.dedup();
    for v in matched {
        out.gauge(name, help, &[(label, v)], 1.0);
    }
}

/// Reads `isolated` (a CPU list such as `2-3,8`) as procfs' `IsolatedCPUs` does. node_exporter
/// refuses to start when the file exists but cannot be parsed; here that is one warning and
/// no `node_cpu_isolated`.
fn read_isolated(path: &Path) -> Option<Vec<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %crate::error::io_reason(&e), "unable to get isolated cpus");
            }
            return None;
        }
    };
    match parse_cpu_list(&text) {
        Ok(cpus) => {
            let mut labels: Vec<String> = cpus.iter().map(u16::to_string).collect();
            labels.sort_unstable();
            labels.dedup();
            Some(labels)
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unable to get isolated cpus");
            None
        }
    }
}

/// procfs' `parseCPURange`: comma-separated numbers and `a-b` ranges (one trailing line feed
/// dropped, empty items skipped), each number as Go's `strconv.Atoi` reads it and truncated to
/// 16 bits as procfs stores it.
fn parse_cpu_list(text: &str) -> Result<Vec<u16>, String> {
    let atoi = |s: &str| -> Result<i64, String> {
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid cpu number {s:?}"));
        }
        s.parse::<i64>()
            .map_err(|_| format!("invalid cpu number {s:?}"))
    };
    let mut cpus = Vec::new();
    for item in text.strip_suffix('\n').unwrap_or(text).split(',') {
        if item.is_empty() {
            continue;
        }
        if item.contains('-') {
            let mut ends = item.split('-');
            let (Some(a), Some(b), None) = (ends.next(), ends.next(), ends.next()) else {
                return Err(format!("invalid cpu range: {item}"));
            };
            let (a, b) = (atoi(a)?, atoi(b)?);
            let mut i = a;
            while i <= b {
                cpus.push(i as u16);
                i += 1;
            }
            continue;
        }
        cpus.push(atoi(item)? as u16);
    }
    Ok(cpus)
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
        // node_exporter's order: a failing /proc/cpuinfo fails the collector before the rest.
        if let Some(info) = &self.info {
            self.info(info, out)?;
        }
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
        for cpu in self.isolated.iter().flatten() {
            out.gauge(
                "node_cpu_isolated",
                "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
                &[("cpu", cpu)],
                1.0,
            );
        }
        self.throttles(&cpus, out);
        self.online(out);
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

    #[test]
    fn cpu_lists_parse_as_procfs_does() {
        assert_eq!(parse_cpu_list("").expect("empty"), Vec::<u16>::new());
        assert_eq!(parse_cpu_list("\n").expect("empty"), Vec::<u16>::new());
        assert_eq!(
            parse_cpu_list("1-3,8,,+9\n").expect("list"),
            vec![1, 2, 3, 8, 9]
        );
        for bad in ["1-2-3", "a", "1-x", "1 ", "1\n\n"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
    }

    fn cpu_over(sysfs: &Path, flags: &[(&str, Option<&str>)]) -> (Cpu, MetricWriter) {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host");
        let mut cfg = Config::default();
        cfg.paths.procfs = fixtures.join("proc");
        cfg.paths.sysfs = sysfs.to_owned();
        for (flag, value) in flags {
            if let Some(name) = flag.strip_prefix("collector.cpufreq") {
                let on = !name.starts_with("=false");
                cfg.collectors
                    .set_enabled("cpufreq", on, crate::config::collectors::Origin::Flag(""))
                    .expect("known collector");
                continue;
            }
            cfg.collectors.set_flag(flag, *value).expect("valid flag");
        }
        let cpu = Cpu::new(&cfg.context("cpu").expect("registered"));
        let mut w = MetricWriter::new();
        cpu.collect(&mut w).expect("fixture");
        (cpu, w)
    }

    #[test]
    fn online_needs_the_first_cpus_online_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cpus = dir.path().join("devices/system/cpu");
        // x86: cpu0 cannot go offline and has no `online` file, so nothing is reported even
        // though cpu1 has one.
        std::fs::create_dir_all(cpus.join("cpu0")).expect("mkdir");
        std::fs::create_dir_all(cpus.join("cpu1")).expect("mkdir");
        std::fs::create_dir_all(cpus.join("cpufreq")).expect("mkdir");
        std::fs::write(cpus.join("cpu1/online"), "1\n").expect("write");
        let (cpu, w) = cpu_over(dir.path(), &[]);
        assert!(!w.render_to_string().contains("node_cpu_online"));
        // Once cpu0 has one, every CPU is reported; an unreadable one as offline.
        std::fs::write(cpus.join("cpu0/online"), "1\n").expect("write");
        std::fs::create_dir_all(cpus.join("cpu10")).expect("mkdir");
        let mut w = MetricWriter::new();
        cpu.collect(&mut w).expect("fixture");
        let text = w.render_to_string();
        let online: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("node_cpu_online{"))
            .collect();
        assert_eq!(
            online,
            [
                "node_cpu_online{cpu=\"0\"} 1",
                "node_cpu_online{cpu=\"1\"} 1",
                "node_cpu_online{cpu=\"10\"} 0",
            ]
        );
        // No isolated file: no node_cpu_isolated; an empty one: none either.
        assert!(!text.contains("node_cpu_isolated"));
    }

    #[test]
    fn info_families_follow_their_flags() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host");
        let sys = fixtures.join("sys");
        let (_, w) = cpu_over(&sys, &[]);
        assert!(!w.render_to_string().contains("node_cpu_info"));
        // --collector.cpu.info alone: no flag or bug families (no filter), frequency while
        // node_exporter's cpufreq collector is on (its default).
        let (_, w) = cpu_over(&sys, &[("collector.cpu.info", None)]);
        let text = w.render_to_string();
        assert!(text.contains("node_cpu_info{"), "{text}");
        assert!(text.contains("node_cpu_frequency_hertz{"), "{text}");
        assert!(!text.contains("node_cpu_flag_info"), "{text}");
        assert!(!text.contains("node_cpu_bug_info"), "{text}");
        let (_, w) = cpu_over(
            &sys,
            &[
                ("collector.cpu.info", None),
                ("collector.cpufreq=false", None),
            ],
        );
        let text = w.render_to_string();
        assert!(text.contains("node_cpu_info{"), "{text}");
        assert!(!text.contains("node_cpu_frequency_hertz"), "{text}");
        // An include pattern turns the info families on by itself.
        let (_, w) = cpu_over(&sys, &[("collector.cpu.info.bugs-include", Some("l1tf"))]);
        let text = w.render_to_string();
        assert!(text.contains("node_cpu_info{"), "{text}");
        assert!(
            text.contains("node_cpu_bug_info{bug=\"l1tf\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("node_cpu_flag_info"), "{text}");
    }

    #[test]
    fn unreadable_cpuinfo_fails_the_collector_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = Config::default();
        cfg.paths.procfs = dir.path().to_owned();
        cfg.collectors
            .set_flag("collector.cpu.info", None)
            .expect("valid flag");
        std::fs::write(dir.path().join("stat"), "cpu0 1 2 3 4\n").expect("write");
        std::fs::write(dir.path().join("cpuinfo"), "vendor_id : x\n").expect("write");
        let mut w = MetricWriter::new();
        let e = Cpu::new(&cfg.context("cpu").expect("registered"))
            .collect(&mut w)
            .expect_err("bad cpuinfo");
        assert!(e.to_string().contains("cpuinfo: cannot parse line"), "{e}");
        assert_eq!(w.sample_count(), 0);
    }
}
