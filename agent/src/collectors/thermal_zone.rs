//! `thermal_zone`: zone temperatures and cooling device states from `{sysfs}/class/thermal`, as
//! node_exporter 1.5's `thermal_zone_linux.go` reports them from procfs' `sysfs` package.
//!
//! Behaviour measured on node_exporter 1.5: a missing `class/thermal` directory is a success
//! with no samples (procfs globs, and a glob of a missing directory is empty); a zone whose
//! sensor answers ENODATA is skipped; any other read or parse error fails the collector, after
//! the zone temperatures were reported if it is a cooling device that failed.

use std::fs::File;
use std::io::{self, Read};
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

    /// procfs' `parseClassThermalZone`, limited to what node_exporter exports. `Ok(None)` for
    /// a zone the kernel answers ENODATA for (e.g. a Wi-Fi card's sensor while it is down).
    fn zone(&self, entry: &str) -> Result<Option<Zone>, CollectError> {
        let mut path = self.dir.join(entry);
        path.push("type");
        let ty = match read_trimmed(&path) {
            Ok(s) => s,
            Err(e) if is_no_data(&e) => return Ok(None),
            Err(e) => return Err(CollectError::io(&path, e)),
        };
        path.set_file_name("temp");
        let temp = match read_full(&path) {
            Ok(s) => s,
            Err(e) if is_no_data(&e) => return Ok(None),
            Err(e) => return Err(CollectError::io(&path, e)),
        };
        let millicelsius = parse_i64(&path, temp.trim())?;
        Ok(Some(Zone {
            zone: entry[ZONE_PREFIX.len()..].to_owned(),
            ty,
            millicelsius,
        }))
    }

    /// procfs' `parseCoolingDeviceStats`: every attribute is required.
    fn cooling(&self, entry: &str) -> Result<Cooling, CollectError> {
        let mut path = self.dir.join(entry);
        path.push("type");
        let ty = read_trimmed(&path).map_err(|e| CollectError::io(&path, e))?;
        path.set_file_name("max_state");
        let max = read_int(&path)?;
        // cur_state is -1 for intel_powerclamp while it is idle.
        path.set_file_name("cur_state");
        let cur = read_int(&path)?;
        Ok(Cooling {
            name: entry[COOLING_PREFIX.len()..].to_owned(),
            ty,
            cur,
            max,
        })
    }
}

/// ENODATA: the sensor exists but has no reading now; procfs skips such zones.
fn is_no_data(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENODATA)
}

/// procfs' `util.SysReadFile`: one 128-byte read, surrounding white space trimmed.
fn read_trimmed(path: &Path) -> io::Result<String> {
    let mut buf = [0u8; SYSFS_READ_MAX];
    let raw = read_sysfs(path, &mut buf)?;
    Ok(String::from_utf8_lossy(raw).trim().to_owned())
}

/// procfs reads `temp` with `os.ReadFile` (until EOF), not with the 128-byte read.
fn read_full(path: &Path) -> io::Result<String> {
    let mut raw = Vec::with_capacity(16);
    File::open(path)?.read_to_end(&mut raw)?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// A trimmed attribute holding one integer.
fn read_int(path: &Path) -> Result<i64, CollectError> {
    let s = read_trimmed(path).map_err(|e| CollectError::io(path, e))?;
    parse_i64(path, &s)
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

        // All zones are read before any is reported: an error reports none, as in procfs.
        let mut zones = Vec::with_capacity(4);
        for entry in self.glob(&names, ZONE_PREFIX) {
            if let Some(z) = self.zone(&entry)? {
                zones.push(z);
            }
        }
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

        let cooling = self
            .glob(&names, COOLING_PREFIX)
            .iter()
            .map(|entry| self.cooling(entry))
            .collect::<Result<Vec<_>, _>>()?;
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
        res.expect("node_exporter 1.5 reports success");
        assert!(text.is_empty());
    }

    #[test]
    fn only_enodata_skips_a_zone() {
        assert!(is_no_data(&io::Error::from_raw_os_error(libc::ENODATA)));
        assert!(!is_no_data(&io::Error::from_raw_os_error(libc::ENOENT)));
        assert!(!is_no_data(&io::Error::from_raw_os_error(libc::EAGAIN)));
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
    fn missing_temp_fails_the_collector_without_samples() {
        let dir = tempfile::tempdir().expect("tempdir");
        let th = dir.path().join("class/thermal");
        write(
            &th.join("thermal_zone0"),
            &[("type", "acpitz\n"), ("temp", "27800\n")],
        );
        write(&th.join("thermal_zone1"), &[("type", "broken\n")]);
        let (res, text) = collect(dir.path());
        let msg = res.expect_err("missing temp").to_string();
        assert!(
            msg.ends_with("class/thermal/thermal_zone1/temp: no such file or directory"),
            "{msg}"
        );
        assert!(text.is_empty(), "{text}");
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

        write(&th.join("thermal_zone0"), &[("temp", "12.5\n")]);
        let msg = collect(dir.path()).0.expect_err("bad temp").to_string();
        assert!(
            msg.ends_with("thermal_zone0/temp: not an integer: \"12.5\""),
            "{msg}"
        );
    }
}
