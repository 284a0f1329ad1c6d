//! `time`: the wall clock, the local time zone and its offset, and the kernel's clock sources
//! from `/sys/devices/system/clocksource` (node_exporter's `collector/time.go` and
//! `time_linux.go`).

use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::collector::{CollectError, Collector, Context, Spec};
use crate::metrics::MetricWriter;
use crate::read;

/// The `time` collector: wall clock, time zone and clock sources.
pub const SPEC: Spec = Spec {
    name: "time",
    default_enabled: true,
    help: "wall clock, time zone and clock sources",
    options: &[],
    filters: &[],
    build: |ctx| Box::new(Time::new(ctx)),
};

/// Reads the clock at every scrape and `{sysfs}/devices/system/clocksource/clocksource*/`.
#[derive(Debug)]
pub struct Time {
    clocksource_dir: PathBuf,
    /// `available_clocksource` and `current_clocksource` of each listed device, kept open
    /// across scrapes (`read::KeptFile`); devices no longer listed are dropped.
    files: Mutex<HashMap<PathBuf, [read::KeptFile; 2]>>,
    /// `TZ` names a zone Go cannot load, so node_exporter reports UTC (see `go_uses_utc`).
    utc: bool,
}

impl Time {
    pub fn new(ctx: &Context) -> Self {
        let zoneinfo = std::env::var_os("ZONEINFO");
        Self {
            clocksource_dir: ctx.paths.sysfs.join("devices/system/clocksource"),
            files: Mutex::new(HashMap::new()),
            utc: go_uses_utc(
                std::env::var_os("TZ").as_deref(),
                zoneinfo.as_deref().map(Path::new),
            ),
        }
    }

    /// Reads every `clocksource<N>` device, in the order of node_exporter's sorted glob
    /// `clocksource[0-9]*`. An absent directory yields none, as an empty glob does.
    fn clocksources(&self) -> Result<Vec<Clocksource>, CollectError> {
        let entries = match fs::read_dir(&self.clocksource_dir) {
            Ok(e) => e,
            Err(_) => return Ok(Vec::new()),
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("clocksource"))
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .map(|e| e.path())
            .collect();
        dirs.sort_unstable();
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        files.retain(|dir, _| dirs.contains(dir));
        dirs.into_iter()
            .map(|dir| {
                let [available, current] = files.entry(dir).or_insert_with_key(|dir| {
                    [
                        read::KeptFile::one_record(dir.join("available_clocksource")),
                        read::KeptFile::one_record(dir.join("current_clocksource")),
                    ]
                });
                let available = available.read_string()?;
                let current = current.read_string()?;
                Ok(Clocksource {
                    available: available
                        .split_ascii_whitespace()
                        .map(str::to_owned)
                        .collect(),
                    current: current.trim().to_owned(),
                })
            })
            .collect()
    }
}

/// One clock source device.
#[derive(Debug, PartialEq)]
struct Clocksource {
    available: Vec<String>,
    current: String,
}

/// Whether Go, given this `TZ` (and `ZONEINFO`), falls back to UTC where the C library would
/// not: Go only loads zone files, so a `TZ` naming no file (a typo, or a POSIX rule such as
/// `JST-9`, which glibc interprets) means UTC to node_exporter. An unset `TZ` is left to the C
/// library, which reads `/etc/localtime` and, like Go, falls back to UTC.
fn go_uses_utc(tz: Option<&OsStr>, zoneinfo: Option<&Path>) -> bool {
    let Some(tz) = tz else {
        return false;
    };
    let tz = tz.to_string_lossy();
    let tz = tz.strip_prefix(':').unwrap_or(&tz);
    if tz.is_empty() || tz == "UTC" {
        return true;
    }
    let tz = Path::new(tz);
    if tz.is_absolute() {
        return !tz.is_file();
    }
    // Go 1.19's zone sources on Linux, after $ZONEINFO.
    let dirs = [
        "/usr/share/zoneinfo",
        "/usr/share/lib/zoneinfo",
        "/usr/lib/locale/TZ",
    ];
    !zoneinfo
        .into_iter()
        .chain(dirs.iter().map(Path::new))
        .any(|d| d.join(tz).is_file())
}

/// The local time zone's abbreviation and UTC offset at `secs`, as the C library resolves them
/// from `TZ` and `/etc/localtime`. Like Go's `time.Now().Zone()`, this is "UTC", 0 when `TZ`
/// is unset and `/etc/localtime` is absent. The zone database is loaded once (by the first
/// call), as Go does.
fn local_zone(secs: libc::time_t) -> io::Result<(String, i64)> {
    // SAFETY: `tm` is a plain C struct for which all zeroes is valid (`tm_zone` null).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the thread-safe variant.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return Err(io::Error::last_os_error());
    }
    let name = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: glibc points tm_zone at a NUL-terminated string in its time zone state,
        // which lives for the rest of the process.
        unsafe { CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    #[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets
    Ok((name, tm.tm_gmtoff as i64))
}

impl Collector for Time {
    fn name(&self) -> &'static str {
        "time"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| CollectError::Other("system clock is before 1970".into()))?;
        // As Go computes it: float64(UnixNano) / 1e9.
        let nanos = i64::try_from(now.as_nanos()).unwrap_or(i64::MAX);
        out.gauge(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            &[],
            nanos as f64 / 1e9,
        );
        let (zone, offset) = if self.utc {
            ("UTC".to_owned(), 0)
        } else {
            let secs = libc::time_t::try_from(now.as_secs()).unwrap_or(libc::time_t::MAX);
            local_zone(secs).map_err(|e| {
                CollectError::Other(format!("localtime: {}", crate::error::io_reason(&e)))
            })?
        };
        out.gauge(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            &[("time_zone", &zone)],
            offset as f64,
        );
        let sources = self.clocksources()?;
        let mut device = itoa::Buffer::new();
        for (i, cs) in sources.iter().enumerate() {
            // node_exporter labels devices by their index in the sorted list.
            let device = device.format(i);
            for name in &cs.available {
                out.gauge(
                    "node_time_clocksource_available_info",
                    "Available clocksources read from '/sys/devices/system/clocksource'.",
                    &[("clocksource", name), ("device", device)],
                    1.0,
                );
            }
            out.gauge(
                "node_time_clocksource_current_info",
                "Current clocksource read from '/sys/devices/system/clocksource'.",
                &[("clocksource", &cs.current), ("device", device)],
                1.0,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use std::path::Path;

    fn fixture_time() -> Time {
        let mut cfg = Config::default();
        cfg.paths.sysfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host/sys");
        Time::new(&cfg.context("time").expect("registered"))
    }

    #[test]
    fn clocksources_from_fixture() {
        let got = fixture_time().clocksources().expect("fixture clocksources");
        assert_eq!(
            got,
            [
                Clocksource {
                    available: vec!["tsc".into(), "hpet".into(), "acpi_pm".into()],
                    current: "tsc".into(),
                },
                Clocksource {
                    available: vec!["kvm-clock".into()],
                    current: "kvm-clock".into(),
                },
            ]
        );
    }

    #[test]
    fn renders_every_family() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        let mut w = MetricWriter::new();
        let t = fixture_time();
        t.collect(&mut w).expect("time");
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        let got = w.render_to_string();
        let (zone, offset) = if t.utc {
            ("UTC".to_owned(), 0)
        } else {
            local_zone(after as libc::time_t).expect("zone")
        };
        let mut zone_line = String::from("node_time_zone_offset_seconds{time_zone=\"");
        crate::metrics::escape_label_value(&mut zone_line, &zone);
        zone_line.push_str(&format!("\"}} {offset}\n"));
        assert!(got.contains(&zone_line), "want {zone_line:?} in\n{got}");
        for want in [
            "# TYPE node_time_seconds gauge\n",
            "node_time_clocksource_available_info{clocksource=\"tsc\",device=\"0\"} 1\n",
            "node_time_clocksource_available_info{clocksource=\"hpet\",device=\"0\"} 1\n",
            "node_time_clocksource_available_info{clocksource=\"acpi_pm\",device=\"0\"} 1\n",
            "node_time_clocksource_available_info{clocksource=\"kvm-clock\",device=\"1\"} 1\n",
            "node_time_clocksource_current_info{clocksource=\"tsc\",device=\"0\"} 1\n",
            "node_time_clocksource_current_info{clocksource=\"kvm-clock\",device=\"1\"} 1\n",
        ] {
            assert!(got.contains(want), "missing {want:?} in\n{got}");
        }
        let now: f64 = got
            .lines()
            .find_map(|l| l.strip_prefix("node_time_seconds "))
            .expect("node_time_seconds")
            .parse()
            .expect("number");
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
        assert_eq!(w.sample_count(), 8);
    }

    #[test]
    fn zone_agrees_with_date() {
        // date(1) resolves TZ and /etc/localtime independently of this process.
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let out = std::process::Command::new("date")
            .args([format!("--date=@{secs}"), "+%Z %z".to_owned()])
            .output()
            .expect("run date");
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let (abbrev, hhmm) = text.trim().split_once(' ').expect("two fields");
        let sign = if hhmm.starts_with('-') { -1 } else { 1 };
        let hours: i64 = hhmm[1..3].parse().expect("hours");
        let minutes: i64 = hhmm[3..5].parse().expect("minutes");
        let (zone, offset) = local_zone(secs as libc::time_t).expect("zone");
        assert_eq!(zone, abbrev);
        assert_eq!(offset, sign * (hours * 3600 + minutes * 60));
    }

    #[test]
    fn tz_values_go_cannot_load_mean_utc() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("Europe")).expect("mkdir");
        fs::write(dir.path().join("Europe/Berlin"), "TZif").expect("write");
        let zi = Some(dir.path());
        let utc = |tz: &str| go_uses_utc(Some(OsStr::new(tz)), zi);
        assert!(!go_uses_utc(None, zi), "unset TZ is /etc/localtime");
        assert!(utc(""));
        assert!(utc(":"));
        assert!(utc("UTC"));
        assert!(!utc("Europe/Berlin"));
        assert!(!utc(":Europe/Berlin"));
        assert!(utc("Europe/Atlantis"));
        assert!(utc("JST-9"), "POSIX rules are not zone files");
        let abs = dir.path().join("Europe/Berlin");
        assert!(!utc(abs.to_str().expect("utf-8")));
        assert!(utc("/nonexistent/zone"));
    }

    #[test]
    fn absent_clocksource_dir_yields_only_time() {
        let mut cfg = Config::default();
        cfg.paths.sysfs = "/nonexistent-sysfs".into();
        let mut w = MetricWriter::new();
        Time::new(&cfg.context("time").expect("registered"))
            .collect(&mut w)
            .expect("time");
        assert_eq!(w.sample_count(), 2);
    }

    #[test]
    fn unreadable_clocksource_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cs = dir.path().join("devices/system/clocksource/clocksource0");
        fs::create_dir_all(&cs).expect("mkdir");
        fs::write(cs.join("available_clocksource"), "tsc \n").expect("write");
        let mut cfg = Config::default();
        cfg.paths.sysfs = dir.path().to_owned();
        let e = Time::new(&cfg.context("time").expect("registered"))
            .collect(&mut MetricWriter::new())
            .expect_err("no current_clocksource");
        assert!(
            e.to_string()
                .ends_with("clocksource0/current_clocksource: no such file or directory"),
            "{e}"
        );
    }
}
