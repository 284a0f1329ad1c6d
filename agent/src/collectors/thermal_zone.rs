//! `thermal_zone`: zone temperatures and cooling device states from `{sysfs}/class/thermal`, as
//! node_exporter 1.12's `thermal_zone_linux.go` reports them from procfs' (v0.21) `sysfs`
//! package.
//!
//! A missing `class/thermal` directory is a success with no samples (procfs globs, and a glob
//! of a missing directory is empty). Since procfs 0.13 a zone never fails: an attribute that
//! cannot be read or parsed leaves its zero value (an empty `type`, a temperature of 0), so
//! every `thermal_zoneN` is reported. A cooling device whose attribute is absent, not
//! permitted, or answers EINVAL/EOPNOTSUPP is skipped; any other read or parse error fails the
//! collector after the zone temperatures were reported.

use std::io;
use std::path::{Path, PathBuf};

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::metrics::MetricWriter;
use crate::sysfs::{read_sysfs, SYSFS_READ_MAX};

const ZONE_PREFIX: &str = "thermal_zone";
const COOLING_PREFIX: &str = "cooling_device";

/// The `thermal_zone` collector: `/sys/class/thermal`.
pub const SPEC: Spec = Spec {
    name: "thermal_zone",
    default_enabled: true,
    help: "/sys/class/thermal",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(ThermalZone::new(ctx)),
};

/// Reads `{sysfs}/class/thermal`.
#[derive(Debug)]
pub struct ThermalZone {
    dir: PathBuf,
}

/// A thermal zone: `zone` label, `type` label, temperature in millidegrees Celsius.
#[derive(Debug)]
struct Zone {
    zone: String,
    ty: String,
    millicelsius: i64,
}

/// A cooling device: `name` label, `type` label, current and maximum state.
#[derive(Debug)]
struct Cooling {
    name: String,
    ty: String,
    cur: i64,
    max: i64,
}

impl ThermalZone {
    pub fn new(ctx: &Context) -> Self {
        Self {
            dir: ctx.paths.sysfs.join("class/thermal"),
        }
    }

    /// Entries matching the glob `<prefix>[0-9]*`, sorted like Go's `filepath.Glob`. Errors
    /// listing the directory yield no entries, as they do in Glob.
    fn glob(&self, names: &[String], prefix: &str) -> Vec<String> {
        let mut v: Vec<String> = names
            .iter()
            .filter(|n| {
                n.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .cloned()
            .collect();
        v.sort_unstable();
        v
    }

    /// procfs' `parseClassThermalZone`, limited to what node_exporter exports. Read errors
    /// are collected by procfs and never looked at by node_exporter, so they leave zero values.
    fn zone(&self, entry: &str) -> Zone {
        let mut path = self.dir.join(entry);
        path.push("type");
        let ty = read_trimmed(&path).unwrap_or_default();
        path.set_file_name("temp");
        let millicelsius = read_trimmed(&path)
            .map(|s| go_parse_int(&s))
            .unwrap_or_default();
        Zone {
            zone: entry[ZONE_PREFIX.len()..].to_owned(),
            ty,
            millicelsius,
        }
    }

    /// procfs' `parseCoolingDeviceStats`: every attribute is required. `Ok(None)` for a device
    /// procfs skips (its `canIgnoreError`).
    fn cooling(&self, entry: &str) -> Result<Option<Cooling>, CollectError> {
        let mut path = self.dir.join(entry);
        let read = |path: &Path| match read_trimmed(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if can_ignore(&e) => Ok(None),
            Err(e) => Err(CollectError::io(path, e)),
        };
        path.push("type");
        let Some(ty) = read(&path)? else {
            return Ok(None);
        };
        path.set_file_name("max_state");
        let Some(max) = read(&path)? else {
            return Ok(None);
        };
        let max = parse_i64(&path, &max)?;
        // cur_state is -1 for intel_powerclamp while it is idle.
        path.set_file_name("cur_state");
        let Some(cur) = read(&path)? else {
            return Ok(None);
        };
        let cur = parse_i64(&path, &cur)?;
        Ok(Some(Cooling {
            name: entry[COOLING_PREFIX.len()..].to_owned(),
            ty,
            cur,
            max,
        }))
    }
}

/// procfs' `canIgnoreError`: errors that make it skip a cooling device rather than fail.
fn can_ignore(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    ) || matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP))
}

/// Go's `strconv.ParseInt(s, 10, 64)` where procfs keeps the value despite the error: 0 for
/// bad syntax, the nearest limit when out of range.
fn go_parse_int(s: &str) -> i64 {
    match s.parse::<i64>() {
        Ok(v) => v,
        Err(e) => match e.kind() {
            std::num::IntErrorKind::PosOverflow => i64::MAX,
            std::num::IntErrorKind::NegOverflow => i64::MIN,
            _ => 0,
        },
    }
}

/// procfs' `util.SysReadFile`: one 128-byte read, surrounding white space trimmed.
fn read_trimmed(path: &Path) -> io::Result<String> {
    let mut buf = [0u8; SYSFS_READ_MAX];
    let raw = read_sysfs(path, &mut buf)?;
    Ok(String::from_utf8_lossy(raw).trim().to_owned())
}

/// Go's `strconv.ParseInt(s, 10, 64)`, which Rust's `i64` parser matches (optional sign,
/// decimal digits only).
fn parse_i64(path: &Path, s: &str) -> Result<i64, CollectError> {
    s.parse()
        .map_err(|_| CollectError::parse(path, format!("not an integer: {s:?}")))
}

impl Collector for ThermalZone {
    fn name(&self) -> &'static str {
        "thermal_zone"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let names: Vec<String> = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => return Ok(()),
        };

        let mut zones: Vec<Zone> = self
            .glob(&names, ZONE_PREFIX)
            .iter()
            .map(|entry| self.zone(entry))
            .collect();
        // node_exporter's output is sorted by label values: type, then zone.
        zones.sort_by(|a, b| (&a.ty, &a.zone).cmp(&(&b.ty, &b.zone)));
        for z in &zones {
            out.gauge(
                "node_thermal_zone_temp",
                "Zone temperature in Celsius",
                &[("type", &z.ty), ("zone", &z.zone)],
                z.millicelsius as f64 / 1000.0,
            );
        }

        let mut cooling = Vec::with_capacity(4);
        for entry in self.glob(&names, COOLING_PREFIX) {
            cooling.extend(self.cooling(&entry)?);
        }
        for c in &cooling {
            out.gauge(
                "node_cooling_device_cur_state",
                "Current throttle state of the cooling device",
                &[("name", &c.name), ("type", &c.ty)],
                c.cur as f64,
            );
        }
        for c in &cooling {
            out.gauge(
                "node_cooling_device_max_state",
                "Maximum throttle state of the cooling device",
                &[("name", &c.name), ("type", &c.ty)],
                c.max as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for (k, v) in files {
            std::fs::write(dir.join(k), v).expect("write");
        }
    }

    fn collect(sysfs: &Path) -> (Result<(), CollectError>, String) {
        let mut cfg = Config::default();
        cfg.paths.sysfs = sysfs.to_owned();
        let mut w = MetricWriter::new();
        let res =
            ThermalZone::new(&cfg.context("thermal_zone").expect("registered")).collect(&mut w);
        (res, w.render_to_string())
    }

    #[test]
    fn missing_directory_is_success_without_samples() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (res, text) = collect(dir.path());
        res.expect("node_exporter reports success");
        assert!(text.is_empty());
    }

    #[test]
    fn cooling_devices_skip_only_ignorable_errors() {
        for errno in [libc::ENOENT, libc::EACCES, libc::EINVAL, libc::EOPNOTSUPP] {
            assert!(can_ignore(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        for errno in [libc::ENODATA, libc::EAGAIN, libc::EIO] {
            assert!(!can_ignore(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
    }

    #[test]
    fn glob_needs_a_digit_and_sorts_by_name() {
        let t = ThermalZone::new(
            &Config::default()
                .context("thermal_zone")
                .expect("registered"),
        );
        let names: Vec<String> = [
            "thermal_zone10",
            "thermal_zone2",
            "thermal_zone",
            "cooling_device0",
            "thermal_zonex",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            t.glob(&names, ZONE_PREFIX),
            ["thermal_zone10", "thermal_zone2"]
        );
        assert_eq!(t.glob(&names, COOLING_PREFIX), ["cooling_device0"]);
    }

    #[test]
    fn unreadable_zone_attributes_leave_zero_values() {
        // procfs 0.13+ keeps a zone whose attributes fail, with zero values; node_exporter
        // 1.12 reports it (1.5 failed the collector, or skipped the zone on ENODATA).
        let dir = tempfile::tempdir().expect("tempdir");
        let th = dir.path().join("class/thermal");
        write(
            &th.join("thermal_zone0"),
            &[("type", "acpitz\n"), ("temp", "27800\n")],
        );
        write(&th.join("thermal_zone1"), &[("type", "broken\n")]);
        write(&th.join("thermal_zone2"), &[("temp", "12.5\n")]);
        write(
            &th.join("thermal_zone3"),
            &[("type", "hot\n"), ("temp", "99999999999999999999\n")],
        );
        // A cooling device without max_state is skipped.
        write(
            &th.join("cooling_device0"),
            &[("type", "Fan\n"), ("cur_state", "0\n")],
        );
        let (res, text) = collect(dir.path());
        res.expect("zones never fail");
        assert_eq!(
            text,
            "# HELP node_thermal_zone_temp Zone temperature in Celsius
# TYPE node_thermal_zone_temp gauge
node_thermal_zone_temp{type=\"\",zone=\"2\"} 0
node_thermal_zone_temp{type=\"acpitz\",zone=\"0\"} 27.8
node_thermal_zone_temp{type=\"broken\",zone=\"1\"} 0
node_thermal_zone_temp{type=\"hot\",zone=\"3\"} 9.223372036854776e+15
"
        );
    }

    #[test]
    fn bad_numbers_are_parse_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let th = dir.path().join("class/thermal");
        write(
            &th.join("thermal_zone0"),
            &[("type", "acpitz\n"), ("temp", "27800\n")],
        );
        write(
            &th.join("cooling_device0"),
            &[
                ("type", "Fan\n"),
                ("max_state", "1\n"),
                ("cur_state", "x\n"),
            ],
        );
        let (res, text) = collect(dir.path());
        let err = res.expect_err("bad cur_state");
        assert!(matches!(err, CollectError::Parse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.ends_with("cooling_device0/cur_state: not an integer: \"x\""),
            "{msg}"
        );
        // Zones are reported before the cooling devices fail, as in node_exporter.
        assert!(
            text.contains("node_thermal_zone_temp{type=\"acpitz\",zone=\"0\"} 27.8\n"),
            "{text}"
        );
        assert!(!text.contains("node_cooling_device"), "{text}");
    }
}
