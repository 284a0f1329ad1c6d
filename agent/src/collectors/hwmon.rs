//! `hwmon`: hardware sensors (temperatures, voltages, fans, power, GPU clocks, ...) from
//! `{sysfs}/class/hwmon/hwmonN`, a port of node_exporter 1.12's `collector/hwmon_linux.go`.
//!
//! node_exporter's quirks are kept on purpose because dashboards depend on them: unit
//! conversions by sensor type (`temp1_crit_alarm` becomes `node_hwmon_temp_crit_alarm_celsius`
//! with value 0.001), HELP texts that embed the element, `chip` labels built from the device
//! path (with a suffix when several chips share it), raw (unsanitised) sensor labels, and
//! `freq` sensors reported as `node_hwmon_freq_freq_mhz` under their cleaned label.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::filter::DeviceFilter;
use crate::gonum;
use crate::metrics::{MetricType, MetricWriter};
use crate::sysfs::{SysfsDir, SYSFS_READ_MAX};

/// The sensor file types node_exporter reads (`hwmonSensorTypes`); other files are ignored.
const SENSOR_TYPES: [&str; 14] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
    "freq",
];

/// One sensor file: `temp1_crit` is sensor `temp1` of type `temp`, element `crit`.
#[derive(Debug)]
struct Reading {
    sensor: String,
    ty: &'static str,
    element: String,
    /// The file content without surrounding line feeds.
    value: String,
}

/// Everything read from one hwmon device.
#[derive(Debug)]
struct Chip {
    /// The `chip` label.
    name: String,
    /// `chip_name` labels of `node_hwmon_chip_names` (more than one only when two devices
    /// still resolve to the same `chip`).
    chip_names: Vec<String>,
    /// Sorted by (sensor, element), unique.
    readings: Vec<Reading>,
}

/// One `hwmonN` directory found in the first pass, before its `chip` label is final.
#[derive(Debug)]
struct Found {
    dir: PathBuf,
    hw: SysfsDir,
    /// node_exporter's `hwmonName`: the label before disambiguation.
    base: String,
    /// The `name` attribute with white space trimmed (empty when absent).
    name_file: String,
}

const CHIP_INCLUDE: Opt = Opt::new(
    "chip_include",
    "collector.hwmon.chip-include",
    Kind::Regex(None),
    "Regexp of hwmon chip to include (mutually exclusive to device-exclude).",
);

const CHIP_EXCLUDE: Opt = Opt::new(
    "chip_exclude",
    "collector.hwmon.chip-exclude",
    Kind::Regex(None),
    "Regexp of hwmon chip to exclude (mutually exclusive to device-include).",
);

const SENSOR_INCLUDE: Opt = Opt::new(
    "sensor_include",
    "collector.hwmon.sensor-include",
    Kind::Regex(None),
    "Regexp of hwmon sensor to include (mutually exclusive to sensor-exclude).",
);

const SENSOR_EXCLUDE: Opt = Opt::new(
    "sensor_exclude",
    "collector.hwmon.sensor-exclude",
    Kind::Regex(None),
    "Regexp of hwmon sensor to exclude (mutually exclusive to sensor-include).",
);

/// The `hwmon` collector: `/sys/class/hwmon`.
pub const SPEC: Spec = Spec {
    name: "hwmon",
    default_enabled: true,
    help: "/sys/class/hwmon",
    options: &[CHIP_INCLUDE, CHIP_EXCLUDE, SENSOR_INCLUDE, SENSOR_EXCLUDE],
    // Not declared as `filters`: despite the help texts, node_exporter's hwmon accepts an
    // include and an exclude pattern together and applies both (and has no defaults to drop).
    filters: &[],
    build: |ctx| Box::new(Hwmon::new(ctx)),
};

/// Reads `{sysfs}/class/hwmon`.
#[derive(Debug)]
pub struct Hwmon {
    dir: PathBuf,
    /// Matched against the final `chip` label; `None` when no pattern is set.
    chips: Option<DeviceFilter>,
    /// Matched against `<chip>;<sensor>` (`platform_coretemp_0;temp3`), so a pattern can name
    /// one sensor of one chip; `None` when no pattern is set.
    sensors: Option<DeviceFilter>,
}

/// A filter, or `None` when neither pattern is set (so the common case builds no keys).
fn filter(ctx: &Context, exclude: &Opt, include: &Opt) -> Option<DeviceFilter> {
    match (ctx.regex(exclude), ctx.regex(include)) {
        (None, None) => None,
        (exclude, include) => Some(DeviceFilter::new(exclude, include)),
    }
}

impl Hwmon {
    pub fn new(ctx: &Context) -> Self {
        Self {
            dir: ctx.paths.sysfs.join("class/hwmon"),
            chips: filter(ctx, &CHIP_EXCLUDE, &CHIP_INCLUDE),
            sensors: filter(ctx, &SENSOR_EXCLUDE, &SENSOR_INCLUDE),
        }
    }

    /// First pass over one `hwmonN` entry: `Ok(None)` when node_exporter skips it silently
    /// (not a directory, a dangling link, or no name can be derived).
    fn find(&self, dir: PathBuf) -> Result<Option<Found>, CollectError> {
        let hw = match SysfsDir::open(&dir) {
            Ok(d) => d,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ENOENT)) => {
                return Ok(None)
            }
            Err(e) => return Err(CollectError::io(&dir, e)),
        };
        let name_file = read_name(&hw);
        let clean = name_file.as_deref().map(clean_name);
        let clean = clean.as_deref().filter(|n| !n.is_empty());
        // node_exporter 1.12 skips a chip whose name cannot be derived (1.5 failed the scrape).
        let Some(base) = chip_label(&dir, &dir.join("device"), clean) else {
            return Ok(None);
        };
        let name_file = name_file.map(|n| n.trim().to_owned()).unwrap_or_default();
        Ok(Some(Found {
            dir,
            hw,
            base,
            name_file,
        }))
    }

    /// Second pass: reads the sensors of a chip whose `chip` label is `name`.
    fn chip(&self, found: &Found, name: String) -> Result<Chip, CollectError> {
        let (dir, hw) = (&found.dir, &found.hw);
        let mut readings = Vec::with_capacity(32);
        collect_sensors(hw, dir, &mut readings)?;
        // Older kernels keep the sensor files in hwmonN/device/; newer ones may have both.
        let device = dir.join("device");
        match SysfsDir::open(&device) {
            Ok(d) => collect_sensors(&d, &device, &mut readings)?,
            // node_exporter stats `device` first and lists it only if that works, so only a
            // `device` that exists but is no directory is an error.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(CollectError::io(&device, e))
            }
            Err(_) => {}
        }
        // Go's map assignment: a later file for the same (sensor, element) wins, and the
        // device directory is read last.
        readings.sort_by(|a, b| (&a.sensor, &a.element).cmp(&(&b.sensor, &b.element)));
        let mut unique: Vec<Reading> = Vec::with_capacity(readings.len());
        for r in readings {
            match unique.last_mut() {
                Some(last) if last.sensor == r.sensor && last.element == r.element => *last = r,
                _ => unique.push(r),
            }
        }
        if let Some(sensors) = &self.sensors {
            let mut key = String::with_capacity(name.len() + 16);
            unique.retain(|r| {
                key.clear();
                key.push_str(&name);
                key.push(';');
                key.push_str(&r.sensor);
                !sensors.ignored(&key)
            });
        }
        let chip_names = Some(clean_name(&found.name_file))
            .filter(|n| !n.is_empty())
            .into_iter()
            .collect();
        Ok(Chip {
            name,
            chip_names,
            readings: unique,
        })
    }
}

/// node_exporter 1.12's `chip` labels: a base name shared by several chips (two hwmon nodes
/// of one device, such as asus-nb-wmi's fan control and WMI sensors, or two `acpitz` zones
/// without a device link) gets `_<name file>` appended, or `_<hwmonN>` when the name file is
/// empty or shared too. Returns one label per entry of `found`, in order.
fn disambiguate(found: &[Found]) -> Vec<String> {
    let mut bases: HashMap<&str, usize> = HashMap::with_capacity(found.len());
    let mut names: HashMap<(&str, &str), usize> = HashMap::with_capacity(found.len());
    for f in found {
        *bases.entry(&f.base).or_default() += 1;
        *names.entry((&f.base, &f.name_file)).or_default() += 1;
    }
    found
        .iter()
        .map(|f| {
            if bases[f.base.as_str()] < 2 {
                return f.base.clone();
            }
            let mut suffix = clean_name(&f.name_file);
            if suffix.is_empty() || names[&(f.base.as_str(), f.name_file.as_str())] > 1 {
                let dir_name = f.dir.file_name().unwrap_or_default().to_string_lossy();
                suffix = clean_name(&dir_name);
            }
            format!("{}_{suffix}", f.base)
        })
        .collect()
}

/// The `name` attribute, if readable and non-empty.
fn read_name(dir: &SysfsDir) -> Option<String> {
    let mut buf = [0u8; SYSFS_READ_MAX];
    let raw = dir.read(c"name", &mut buf).ok()?;
    (!raw.is_empty()).then(|| String::from_utf8_lossy(raw).into_owned())
}

/// node_exporter's `hwmonName`: the `chip` label before disambiguation. Preferred is
/// `<parent>_<device>` of the resolved device link (stable across reboots, e.g.
/// `platform_coretemp_0`), then the chip's cleaned `name`, then the `hwmonN` directory name;
/// `None` when none of them gives a name.
fn chip_label(dir: &Path, device: &Path, name: Option<&str>) -> Option<String> {
    if let Ok(real) = fs::canonicalize(device) {
        let dev = real.file_name().map(|n| clean_name(&n.to_string_lossy()));
        let parent = real
            .parent()
            .and_then(Path::file_name)
            .map(|n| clean_name(&n.to_string_lossy()));
        match (parent, dev) {
            (Some(p), Some(d)) if !p.is_empty() && !d.is_empty() => {
                return Some(format!("{p}_{d}"))
            }
            (_, Some(d)) if !d.is_empty() => return Some(d),
            _ => {}
        }
    }
    if let Some(name) = name {
        return Some(name.to_owned());
    }
    let real = fs::canonicalize(dir).ok()?;
    real.file_name()
        .map(|n| clean_name(&n.to_string_lossy()))
        .filter(|n| !n.is_empty())
}

/// Reads every sensor file of one directory into `out`. Unreadable files are skipped, as
/// node_exporter does (drivers return EAGAIN, EIO or ENODATA for absent probes).
fn collect_sensors(
    dir: &SysfsDir,
    path: &Path,
    out: &mut Vec<Reading>,
) -> Result<(), CollectError> {
    let rd = fs::read_dir(path).map_err(|e| CollectError::io(path, e))?;
    let mut buf = [0u8; SYSFS_READ_MAX];
    // The file name with its NUL terminator, for openat(2); reused across files.
    let mut c_name = Vec::with_capacity(32);
    for entry in rd {
        let entry = entry.map_err(|e| CollectError::io(path, e))?;
        // `power/` and friends: reading a directory fails anyway, so skip the open.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let Some((ty, num, element)) = explode(file_name) else {
            continue;
        };
        let Some(ty) = SENSOR_TYPES.iter().copied().find(|t| *t == ty) else {
            continue;
        };
        c_name.clear();
        c_name.extend_from_slice(file_name.as_bytes());
        c_name.push(0);
        // A name from readdir holds no NUL byte, so this only fails on a kernel bug.
        let Ok(c_name) = CStr::from_bytes_with_nul(&c_name) else {
            continue;
        };
        let Ok(raw) = dir.read(c_name, &mut buf) else {
            continue;
        };
        let value = String::from_utf8_lossy(raw);
        out.push(Reading {
            sensor: format!("{ty}{num}"),
            ty,
            element: element.to_owned(),
            value: value.trim_matches('\n').to_owned(),
        });
    }
    Ok(())
}

/// Splits a sensor file name into type, number and property with the semantics of
/// node_exporter's `^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$` (leftmost-first,
/// greedy, backtracking): `temp1_crit_alarm` is (`temp`, 1, `crit_alarm`), `beep_enable` is
/// (`beep_enable`, 0, ``), `temp_1x` is (`temp`, 0, `1x`). `None` when it does not match or
/// the number overflows (Go's `strconv.Atoi` fails).
fn explode(name: &str) -> Option<(&str, i64, &str)> {
    let b = name.as_bytes();
    let n = b.iter().position(u8::is_ascii_digit).unwrap_or(b.len());
    if n == 0 {
        return None;
    }
    let id_end = n + b[n..].iter().take_while(|c| c.is_ascii_digit()).count();
    let property = |rest: &'_ str| -> bool { !rest.is_empty() && !rest.contains('\n') };
    let rest = &name[id_end..];
    if rest.is_empty() || rest.strip_prefix('_').is_some_and(property) {
        let id = &name[n..id_end];
        let num = if id.is_empty() { 0 } else { id.parse().ok()? };
        return Some((&name[..n], num, rest.get(1..).unwrap_or("")));
    }
    // The greedy split failed: the regex backtracks to a shorter type followed by an empty id
    // and `_property`.
    (1..n)
        .rev()
        .find(|&t| b[t] == b'_' && property(&name[t + 1..]))
        .map(|t| (&name[..t], 0, &name[t + 1..]))
}

/// node_exporter's `cleanMetricName`: lower case, every character outside `[a-z0-9:_]`
/// replaced by `_`, then `_` trimmed from both ends.
fn clean_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        // Go's unicode.ToLower maps one rune to one rune; only U+0130 differs from Rust's
        // full mapping in a way that can survive the filter.
        let lower = if c == '\u{130}' { 'i' } else { c };
        for l in lower.to_lowercase() {
            if l.is_ascii_lowercase() || l.is_ascii_digit() || l == ':' || l == '_' {
                out.push(l);
            } else {
                out.push('_');
            }
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.len() == out.len() {
        out
    } else {
        trimmed.to_owned()
    }
}

/// Go's `strings.ToValidUTF8(s, "\u{FFFD}")`: each run of invalid bytes becomes one U+FFFD.
fn to_valid_utf8(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_invalid_run = false;
    for chunk in raw.utf8_chunks() {
        if !chunk.valid().is_empty() {
            out.push_str(chunk.valid());
            in_invalid_run = false;
        }
        if !chunk.invalid().is_empty() && !in_invalid_run {
            out.push('\u{FFFD}');
            in_invalid_run = true;
        }
    }
    out
}

/// Appends one sample, building the HELP text only for a family's first sample.
fn emit(
    out: &mut MetricWriter,
    ty: MetricType,
    name: &str,
    help: impl FnOnce() -> String,
    labels: &[(&str, &str)],
    v: f64,
) {
    if out.family_type(name).is_some() {
        out.sample(ty, name, "", labels, v);
    } else {
        out.sample(ty, name, &help(), labels, v);
    }
}

/// A `freq` sensor's reading: (family, chip, cleaned label, MHz). Written after the other
/// families because its `sensor` label is the cleaned label, which sorts differently from
/// `freqN`. The family is `node_hwmon_freq_freq_mhz` (`node_hwmon_freq_input_freq_mhz` beside
/// a bare `freqN` file, by node_exporter's naming rule).
type Freq<'a> = (String, &'a str, String, f64);

/// Writes one sensor's samples: node_exporter's `updateHwmon` loop body. `freq` inputs go to
/// `freqs`.
fn write_sensor<'a>(
    out: &mut MetricWriter,
    chip: &'a str,
    readings: &[Reading],
    freqs: &mut Vec<Freq<'a>>,
) {
    let Some(first) = readings.first() else {
        return;
    };
    let (sensor, ty) = (first.sensor.as_str(), first.ty);
    let labels = [("chip", chip), ("sensor", sensor)];
    let get = |element: &str| {
        readings
            .iter()
            .find(|r| r.element == element)
            .map(|r| r.value.as_str())
    };
    match ty {
        "beep_enable" => {
            let v = if get("") == Some("1") { 1.0 } else { 0.0 };
            out.gauge(
                "node_hwmon_beep_enabled",
                "Hardware beep enabled",
                &labels,
                v,
            );
            return;
        }
        "vrm" => {
            if let Some(v) = gonum::parse_float(get("").unwrap_or("")) {
                out.gauge(
                    "node_hwmon_voltage_regulator_version",
                    "Hardware voltage regulator",
                    &labels,
                    v,
                );
            }
            return;
        }
        "update_interval" => {
            if let Some(v) = gonum::parse_float(get("").unwrap_or("")) {
                out.gauge(
                    "node_hwmon_update_interval_seconds",
                    "Hardware monitor update interval",
                    &labels,
                    v * 0.001,
                );
            }
            return;
        }
        _ => {}
    }
    let has_bare_value = get("").is_some();
    let mut name = String::with_capacity(64);
    for r in readings {
        let element = r.element.as_str();
        if element == "label" {
            continue;
        }
        name.clear();
        name.push_str("node_hwmon_");
        name.push_str(ty);
        if element == "input" {
            // `temp1_input` is the value, unless a bare `temp1` file is the value.
            if has_bare_value {
                name.push_str("_input");
            }
        } else if !element.is_empty() {
            name.push('_');
            name.push_str(&clean_name(element));
        }
        let Some(v) = gonum::parse_float(&r.value) else {
            continue;
        };
        let gauge = MetricType::Gauge;
        if ty == "freq" && element == "input" {
            // node_exporter 1.12 reports a clock only when it has a label (amdgpu's `sclk`,
            // `mclk`), in MHz, with the cleaned label in place of `freqN` as `sensor`.
            if let Some(label) = get("label") {
                name.push_str("_freq_mhz");
                freqs.push((name.clone(), chip, clean_name(label), v / 1000000.0));
            }
            continue;
        }
        if element == "fault" || element == "alarm" {
            let help = || format!("Hardware sensor {element} status ({ty})");
            emit(out, gauge, &name, help, &labels, v);
            continue;
        }
        if element == "beep" {
            name.push_str("_enabled");
            let help = || "Hardware monitor sensor has beeping enabled".to_owned();
            emit(out, gauge, &name, help, &labels, v);
            continue;
        }
        // Everything else gets a unit; the arithmetic matches Go's bit for bit
        // (`v * 0.001`, not `v / 1000`). HELP is the concatenation of `help`.
        let (suffix, value, mtype, help): (&str, f64, MetricType, [&str; 4]) = match (ty, element)
        {
            ("in" | "cpu", e) => (
                "_volts",
                v * 0.001,
                gauge,
                ["Hardware monitor for voltage (", e, ")", ""],
            ),
            ("temp", e) if e != "type" => {
                let e = if e.is_empty() { "input" } else { e };
                (
                    "_celsius",
                    v * 0.001,
                    gauge,
                    ["Hardware monitor for temperature (", e, ")", ""],
                )
            }
            ("curr", e) => (
                "_amps",
                v * 0.001,
                gauge,
                ["Hardware monitor for current (", e, ")", ""],
            ),
            ("energy", e) => (
                "_joule_total",
                v / 1000000.0,
                MetricType::Counter,
                ["Hardware monitor for joules used so far (", e, ")", ""],
            ),
            ("power", "accuracy") => (
                "",
                v / 1000000.0,
                gauge,
                ["Hardware monitor power meter accuracy, as a ratio", "", "", ""],
            ),
            ("power", e @ ("average_interval" | "average_interval_min" | "average_interval_max")) => (
                "_seconds",
                v * 0.001,
                gauge,
                ["Hardware monitor power usage update interval (", e, ")", ""],
            ),
            ("power", e) => (
                "_watt",
                v / 1000000.0,
                gauge,
                ["Hardware monitor for power usage in watts (", e, ")", ""],
            ),
            ("humidity", e) => (
                "",
                v / 1000000.0,
                gauge,
                [
                    "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) (",
                    e,
                    ")",
                    "",
                ],
            ),
            ("fan", e @ ("input" | "min" | "max" | "target")) => (
                "_rpm",
                v,
                gauge,
                ["Hardware monitor for fan revolutions per minute (", e, ")", ""],
            ),
            (t, e) => ("", v, gauge, ["Hardware monitor ", t, " element ", e]),
        };
        name.push_str(suffix);
        emit(out, mtype, &name, || help.concat(), &labels, value);
    }
}

impl Collector for Hwmon {
    fn name(&self) -> &'static str {
        "hwmon"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CollectError::NoData(format!(
                    "hwmon collector metrics are not available for this system: {} does not exist",
                    self.dir.display()
                )))
            }
            Err(e) => return Err(CollectError::io(&self.dir, e)),
        };
        let mut entries = Vec::with_capacity(8);
        for entry in rd {
            let entry = entry.map_err(|e| CollectError::io(&self.dir, e))?;
            // Entries are symlinks into /sys/devices; plain files are not devices.
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            entries.push(entry.file_name());
        }
        entries.sort_unstable();

        // Like node_exporter, a failing device does not stop the others; the last error is
        // returned after everything readable was reported.
        let mut last_err = None;
        // Pass 1: every chip's base name, so that names shared by several chips can be told
        // apart before any filter sees them.
        let mut found = Vec::with_capacity(entries.len());
        for entry in entries {
            match self.find(self.dir.join(entry)) {
                Ok(Some(f)) => found.push(f),
                Ok(None) => {}
                Err(e) => last_err = Some(e),
            }
        }
        // Pass 2: the chip filter matches the final label, then the sensors are read.
        let mut chips: Vec<Chip> = Vec::with_capacity(found.len());
        for (f, name) in found.iter().zip(disambiguate(&found)) {
            if self.chips.as_ref().is_some_and(|c| c.ignored(&name)) {
                continue;
            }
            match self.chip(f, name) {
                Ok(chip) => merge(&mut chips, chip),
                Err(e) => last_err = Some(e),
            }
        }
        chips.sort_by(|a, b| a.name.cmp(&b.name));

        for chip in &chips {
            for chip_name in &chip.chip_names {
                out.gauge(
                    "node_hwmon_chip_names",
                    "Annotation metric for human-readable chip names",
                    &[("chip", &chip.name), ("chip_name", chip_name)],
                    1.0,
                );
            }
        }
        // node_exporter's output is sorted by label values: chip, label, sensor.
        let mut labels: Vec<(&str, String, &str)> = chips
            .iter()
            .flat_map(|c| {
                c.readings.iter().filter(|r| r.element == "label").map(|r| {
                    (
                        c.name.as_str(),
                        to_valid_utf8(r.value.as_bytes()),
                        r.sensor.as_str(),
                    )
                })
            })
            .collect();
        labels.sort();
        for (chip, label, sensor) in &labels {
            out.gauge(
                "node_hwmon_sensor_label",
                "Label for given chip and sensor",
                &[("chip", chip), ("label", label), ("sensor", sensor)],
                1.0,
            );
        }
        let mut freqs = Vec::new();
        for chip in &chips {
            for sensor in chip.readings.chunk_by(|a, b| a.sensor == b.sensor) {
                write_sensor(out, &chip.name, sensor, &mut freqs);
            }
        }
        freqs.sort_by(|a, b| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)));
        for (name, chip, sensor, mhz) in &freqs {
            out.gauge(
                name,
                "Hardware monitor for GPU frequency in MHz",
                &[("chip", chip), ("sensor", sensor)],
                *mhz,
            );
        }
        last_err.map_or(Ok(()), Err)
    }
}

/// Adds a chip to the list. After `disambiguate`, two devices resolve to the same `chip` label
/// only in contrived cases (names that differ only in what `clean_name` replaces);
/// node_exporter then drops the second copy of each series as a duplicate, so the first
/// device's readings win.
fn merge(chips: &mut Vec<Chip>, chip: Chip) {
    let Some(existing) = chips.iter_mut().find(|c| c.name == chip.name) else {
        chips.push(chip);
        return;
    };
    for n in chip.chip_names {
        if !existing.chip_names.contains(&n) {
            existing.chip_names.push(n);
        }
    }
    for r in chip.readings {
        let key = (&r.sensor, &r.element);
        if let Err(at) = existing
            .readings
            .binary_search_by(|e| (&e.sensor, &e.element).cmp(&key))
        {
            existing.readings.insert(at, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn explode_matches_node_exporters_regex() {
        let re = regex_lite::Regex::new(r"^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$")
            .expect("regex");
        let names = [
            "temp1_input",
            "temp1_crit_alarm",
            "temp10_label",
            "temp01_max",
            "in0_input",
            "fan1",
            "pwm1_enable",
            "beep_enable",
            "update_interval",
            "vrm",
            "cpu0_vid",
            "power1_average_interval_max",
            "intrusion0_alarm",
            "power",
            "name",
            "uevent",
            "device",
            "temp_1x",
            "temp_a_b",
            "in_0",
            "temp1x",
            "temp1_",
            "temp_",
            "_temp1",
            "1temp",
            "temp_1_",
            "temp99999999999999999999_input",
            "",
            "é1_x",
        ];
        for name in names {
            let want = re.captures(name).and_then(|c| {
                let id = c.name("id").map_or("", |m| m.as_str());
                let num: i64 = if id.is_empty() { 0 } else { id.parse().ok()? };
                Some((
                    c.name("type").map_or("", |m| m.as_str()),
                    num,
                    c.name("property").map_or("", |m| m.as_str()),
                ))
            });
            assert_eq!(explode(name), want, "exploding {name:?}");
        }
    }

    #[test]
    fn clean_name_matches_clean_metric_name() {
        assert_eq!(clean_name("coretemp\n"), "coretemp");
        assert_eq!(clean_name("coretemp.0"), "coretemp_0");
        assert_eq!(clean_name("0000:00:18.3"), "0000:00:18_3");
        assert_eq!(clean_name("Foo Bar-1"), "foo_bar_1");
        assert_eq!(clean_name("__x__"), "x");
        assert_eq!(clean_name("\n"), "");
        assert_eq!(clean_name("İnt"), "int");
        assert_eq!(clean_name("Ünit"), "nit");
    }

    #[test]
    fn invalid_utf8_runs_become_one_replacement() {
        assert_eq!(to_valid_utf8(b"Core 0"), "Core 0");
        assert_eq!(to_valid_utf8(b"bad\xffutf"), "bad\u{FFFD}utf");
        assert_eq!(to_valid_utf8(b"a\xff\xfe\xe2\x82b"), "a\u{FFFD}b");
        assert_eq!(to_valid_utf8(b"\xffa\xff"), "\u{FFFD}a\u{FFFD}");
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        fs::create_dir_all(dir).expect("mkdir");
        for (k, v) in files {
            fs::write(dir.join(k), v).expect("write");
        }
    }

    fn collect(sysfs: &Path, flags: &[(&str, &str)]) -> (Result<(), CollectError>, String) {
        let mut cfg = Config::default();
        cfg.paths.sysfs = sysfs.to_owned();
        for (flag, value) in flags {
            cfg.collectors
                .set_flag(flag, Some(value))
                .expect("valid flag");
        }
        let mut w = MetricWriter::new();
        let res = Hwmon::new(&cfg.context("hwmon").expect("registered")).collect(&mut w);
        (res, w.render_to_string())
    }

    #[test]
    fn missing_class_hwmon_is_no_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (res, text) = collect(dir.path(), &[]);
        assert!(res.expect_err("no hwmon").is_no_data());
        assert!(text.is_empty());
    }

    #[test]
    fn chips_sharing_a_name_get_the_hwmon_directory_as_suffix() {
        // Two acpitz zones without device links and with the same name file: node_exporter
        // 1.12 appends the hwmonN directory name (1.5 merged them and lost a reading).
        let dir = tempfile::tempdir().expect("tempdir");
        let hw = dir.path().join("class/hwmon");
        write(
            &hw.join("hwmon0"),
            &[("name", "acpitz\n"), ("temp1_input", "27800\n")],
        );
        write(
            &hw.join("hwmon1"),
            &[
                ("name", "acpitz\n"),
                ("temp1_input", "50000\n"),
                ("temp2_input", "1000\n"),
            ],
        );
        write(
            &hw.join("hwmon2"),
            &[("name", "nvme\n"), ("temp1_input", "30000\n")],
        );
        let (res, text) = collect(dir.path(), &[]);
        res.expect("collect");
        let want = "# HELP node_hwmon_chip_names Annotation metric for human-readable chip names
# TYPE node_hwmon_chip_names gauge
node_hwmon_chip_names{chip=\"acpitz_hwmon0\",chip_name=\"acpitz\"} 1
node_hwmon_chip_names{chip=\"acpitz_hwmon1\",chip_name=\"acpitz\"} 1
node_hwmon_chip_names{chip=\"nvme\",chip_name=\"nvme\"} 1
# HELP node_hwmon_temp_celsius Hardware monitor for temperature (input)
# TYPE node_hwmon_temp_celsius gauge
node_hwmon_temp_celsius{chip=\"acpitz_hwmon0\",sensor=\"temp1\"} 27.8
node_hwmon_temp_celsius{chip=\"acpitz_hwmon1\",sensor=\"temp1\"} 50
node_hwmon_temp_celsius{chip=\"acpitz_hwmon1\",sensor=\"temp2\"} 1
node_hwmon_temp_celsius{chip=\"nvme\",sensor=\"temp1\"} 30
";
        assert_eq!(text, want);
    }

    #[test]
    fn disambiguation_prefers_a_distinct_name_file() {
        let found = |dir: &str, base: &str, name_file: &str| Found {
            dir: PathBuf::from(format!("/sys/class/hwmon/{dir}")),
            hw: SysfsDir::open(Path::new("/")).expect("open /"),
            base: base.to_owned(),
            name_file: name_file.to_owned(),
        };
        let got = disambiguate(&[
            found("hwmon3", "platform_asus_nb_wmi", "asus"),
            found("hwmon4", "platform_asus_nb_wmi", "Asus WMI Sensors"),
            found("hwmon5", "platform_asus_nb_wmi", ""),
            found("hwmon6", "platform_x", "same"),
            found("hwmon7", "platform_x", "same"),
            found("hwmon8", "platform_x", "other"),
            found("hwmon9", "acpitz", "acpitz"),
        ]);
        assert_eq!(
            got,
            [
                "platform_asus_nb_wmi_asus",
                "platform_asus_nb_wmi_asus_wmi_sensors",
                "platform_asus_nb_wmi_hwmon5",
                "platform_x_hwmon6",
                "platform_x_hwmon7",
                "platform_x_other",
                "acpitz",
            ]
        );
    }

    #[test]
    fn chip_and_sensor_filters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hw = dir.path().join("class/hwmon");
        write(
            &hw.join("hwmon0"),
            &[
                ("name", "coretemp\n"),
                ("temp1_input", "1000\n"),
                ("temp1_label", "Package\n"),
                ("temp2_input", "2000\n"),
            ],
        );
        write(
            &hw.join("hwmon1"),
            &[("name", "nvme\n"), ("temp1_input", "3000\n")],
        );
        // The chip filter matches the chip label: nvme's chip_names go too.
        let (res, text) = collect(dir.path(), &[("collector.hwmon.chip-exclude", "^nv")]);
        res.expect("collect");
        assert!(!text.contains("nvme"), "{text}");
        assert!(
            text.contains("chip=\"coretemp\",sensor=\"temp2\""),
            "{text}"
        );
        let (_, text) = collect(dir.path(), &[("collector.hwmon.chip-include", "^nv")]);
        assert!(!text.contains("coretemp"), "{text}");
        assert!(text.contains("chip=\"nvme\",sensor=\"temp1\""), "{text}");

        // The sensor filter matches `<chip>;<sensor>`; an excluded sensor loses its label too,
        // while the chip keeps node_hwmon_chip_names.
        let (_, text) = collect(
            dir.path(),
            &[("collector.hwmon.sensor-exclude", "^coretemp;temp1$")],
        );
        assert!(
            !text.contains("chip=\"coretemp\",sensor=\"temp1\""),
            "{text}"
        );
        assert!(!text.contains("node_hwmon_sensor_label"), "{text}");
        assert!(text.contains("chip=\"nvme\",sensor=\"temp1\""), "{text}");
        assert!(
            text.contains("chip=\"coretemp\",sensor=\"temp2\""),
            "{text}"
        );
        assert!(
            text.contains("chip=\"coretemp\",chip_name=\"coretemp\""),
            "{text}"
        );
        // Include and exclude together both apply, as in node_exporter.
        let (_, text) = collect(
            dir.path(),
            &[
                ("collector.hwmon.sensor-include", ";temp1$"),
                ("collector.hwmon.sensor-exclude", "^nvme"),
            ],
        );
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("node_hwmon_temp"))
            .collect();
        assert_eq!(
            samples,
            ["node_hwmon_temp_celsius{chip=\"coretemp\",sensor=\"temp1\"} 1"]
        );
    }

    #[test]
    fn freq_sensors_need_a_label() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hw = dir.path().join("class/hwmon/hwmon0");
        write(
            &hw,
            &[
                ("name", "amdgpu\n"),
                ("freq1_input", "1800000000\n"),
                ("freq1_label", "sclk\n"),
                ("freq2_input", "875000000\n"),
                ("freq2_label", "M Clk\n"),
                ("freq3_input", "100000000\n"),
            ],
        );
        let (res, text) = collect(dir.path(), &[]);
        res.expect("collect");
        let want = "# HELP node_hwmon_chip_names Annotation metric for human-readable chip names
# TYPE node_hwmon_chip_names gauge
node_hwmon_chip_names{chip=\"amdgpu\",chip_name=\"amdgpu\"} 1
# HELP node_hwmon_freq_freq_mhz Hardware monitor for GPU frequency in MHz
# TYPE node_hwmon_freq_freq_mhz gauge
node_hwmon_freq_freq_mhz{chip=\"amdgpu\",sensor=\"m_clk\"} 875
node_hwmon_freq_freq_mhz{chip=\"amdgpu\",sensor=\"sclk\"} 1800
# HELP node_hwmon_sensor_label Label for given chip and sensor
# TYPE node_hwmon_sensor_label gauge
node_hwmon_sensor_label{chip=\"amdgpu\",label=\"M Clk\",sensor=\"freq2\"} 1
node_hwmon_sensor_label{chip=\"amdgpu\",label=\"sclk\",sensor=\"freq1\"} 1
";
        assert_eq!(text, want);
    }

    #[test]
    fn bare_value_file_and_edge_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hw = dir.path().join("class/hwmon/hwmon7");
        // An empty name falls back to the directory name and gives no chip_names.
        write(
            &hw,
            &[
                ("name", "\n"),
                ("temp1", "2000\n"),
                ("temp1_input", "1000\n"),
                ("temp1_label", "\n"),
                ("in1_label", "bad\u{7f}label \"x\"\n"),
                ("in1_input", "5\n"),
                ("fan1_input", " 12 \n"),
                ("temp_1x", "1\n"),
                ("freq1_input", "1800000000\n"),
            ],
        );
        fs::write(dir.path().join("class/hwmon/not-a-device"), "").expect("write");
        let (res, text) = collect(dir.path(), &[]);
        res.expect("collect");
        let want = "# HELP node_hwmon_in_volts Hardware monitor for voltage (input)
# TYPE node_hwmon_in_volts gauge
node_hwmon_in_volts{chip=\"hwmon7\",sensor=\"in1\"} 0.005
# HELP node_hwmon_sensor_label Label for given chip and sensor
# TYPE node_hwmon_sensor_label gauge
node_hwmon_sensor_label{chip=\"hwmon7\",label=\"\",sensor=\"temp1\"} 1
node_hwmon_sensor_label{chip=\"hwmon7\",label=\"bad\u{7f}label \\\"x\\\"\",sensor=\"in1\"} 1
# HELP node_hwmon_temp_1x_celsius Hardware monitor for temperature (1x)
# TYPE node_hwmon_temp_1x_celsius gauge
node_hwmon_temp_1x_celsius{chip=\"hwmon7\",sensor=\"temp0\"} 0.001
# HELP node_hwmon_temp_celsius Hardware monitor for temperature (input)
# TYPE node_hwmon_temp_celsius gauge
node_hwmon_temp_celsius{chip=\"hwmon7\",sensor=\"temp1\"} 2
# HELP node_hwmon_temp_input_celsius Hardware monitor for temperature (input)
# TYPE node_hwmon_temp_input_celsius gauge
node_hwmon_temp_input_celsius{chip=\"hwmon7\",sensor=\"temp1\"} 1
";
        assert_eq!(text, want);
    }

    #[test]
    fn unreadable_device_directory_fails_only_that_chip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hw = dir.path().join("class/hwmon");
        write(
            &hw.join("hwmon0"),
            &[("name", "good\n"), ("temp1_input", "1000\n")],
        );
        // `device` exists but is not a directory: node_exporter's ReadDir fails for this chip.
        write(
            &hw.join("hwmon1"),
            &[("name", "bad\n"), ("temp1_input", "2000\n"), ("device", "")],
        );
        let (res, text) = collect(dir.path(), &[]);
        let msg = res.expect_err("hwmon1 fails").to_string();
        assert!(
            msg.ends_with("class/hwmon/hwmon1/device: not a directory"),
            "{msg}"
        );
        assert!(text.contains("chip=\"good\""), "{text}");
        assert!(!text.contains("chip=\"bad\""), "{text}");
    }
}
