//! `diskstats`: per-device I/O counters from `/proc/diskstats`, plus `node_disk_info` and the
//! udev-derived families (filesystem, device-mapper and ATA properties), as node_exporter 1.5
//! prints them.
//!
//! A `/proc/diskstats` line has 14 fields on kernels before 4.18, 18 with discard counters
//! (4.18+) and 20 with flush counters (5.5+). Like node_exporter, a device gets exactly the
//! families its line has fields for, so an old kernel simply lacks the discard and flush
//! families. Sectors are the kernel's fixed 512-byte units; times are milliseconds, converted by
//! multiplying with 0.001 (not dividing by 1000) so values round exactly as node_exporter's do.
//!
//! udev properties come from `{udev_data}/b<major>:<minor>` (`E:KEY=value` lines). When that
//! file or the whole directory is absent, `node_disk_info` is still reported with empty labels.
//! As in node_exporter 1.12, its `serial` label is the first non-empty of `SCSI_IDENT_SERIAL`
//! (the serial printed on the disk's label), `ID_SERIAL_SHORT` and `ID_SERIAL` (virtio), and its
//! `rotational` label is `{sysfs}/block/<device>/queue/rotational` ("1" for a value of 1, "0"
//! otherwise, including when the file is missing or unreadable). That attribute file is kept
//! open per device (`read::KeptFile`), so it costs one pread(2) per disk per scrape.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::filter::DeviceFilter;
use crate::metrics::{MetricType, MetricWriter};
use crate::read;

/// The kernel's sector unit for `/proc/diskstats`, independent of the device's block size.
const SECTOR_BYTES: f64 = 512.0;
/// Milliseconds to seconds, as node_exporter's `secondsPerTick` (a multiplication, see above).
const SECONDS_PER_TICK: f64 = 1.0 / 1000.0;
/// Major, minor and device name precede the counters.
const HEADER_FIELDS: usize = 3;
/// The shortest valid line (kernels before 4.18).
const MIN_FIELDS: usize = 14;
/// Counters node_exporter knows about (kernel 5.5+); later additions are ignored.
const MAX_COUNTERS: usize = 17;

/// One counter column: family name, help, type and the factor applied to the raw value.
struct Family {
    name: &'static str,
    help: &'static str,
    ty: MetricType,
    scale: f64,
}

const fn counter(name: &'static str, help: &'static str, scale: f64) -> Family {
    Family {
        name,
        help,
        ty: MetricType::Counter,
        scale,
    }
}

/// The `/proc/diskstats` counter columns in file order (Documentation/admin-guide/iostats.rst).
const FAMILIES: [Family; MAX_COUNTERS] = [
    counter(
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        1.0,
    ),
    counter(
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        1.0,
    ),
    counter(
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        SECTOR_BYTES,
    ),
    counter(
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        SECONDS_PER_TICK,
    ),
    counter(
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        1.0,
    ),
    counter(
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        1.0,
    ),
    counter(
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        SECTOR_BYTES,
    ),
    counter(
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        SECONDS_PER_TICK,
    ),
    Family {
        name: "node_disk_io_now",
        help: "The number of I/Os currently in progress.",
        ty: MetricType::Gauge,
        scale: 1.0,
    },
    counter(
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        SECONDS_PER_TICK,
    ),
    counter(
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        SECONDS_PER_TICK,
    ),
    counter(
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        1.0,
    ),
    counter(
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        1.0,
    ),
    // Sectors, not bytes: node_exporter reports this column unscaled.
    counter(
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        1.0,
    ),
    counter(
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        SECONDS_PER_TICK,
    ),
    // node_exporter's help text really lacks the final period.
    counter(
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        1.0,
    ),
    counter(
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        SECONDS_PER_TICK,
    ),
];

const INFO_HELP: &str = "Info of /sys/block/<block_device>.";
const FILESYSTEM_INFO_HELP: &str = "Info about disk filesystem.";
const DEVICE_MAPPER_INFO_HELP: &str = "Info about disk device mapper.";

/// One device's line of `/proc/diskstats`, borrowing the file's text.
#[derive(Debug, PartialEq)]
struct Disk<'a> {
    name: &'a str,
    major: u32,
    minor: u32,
    /// Raw counters; only the first `count` are present on this kernel.
    counters: [u64; MAX_COUNTERS],
    count: usize,
}

/// The udev properties node_exporter 1.5 reads, borrowing the udev data file's text.
#[derive(Debug, Default)]
struct Udev<'a> {
    path: Option<&'a str>,
    wwn: Option<&'a str>,
    model: Option<&'a str>,
    serial_short: Option<&'a str>,
    serial: Option<&'a str>,
    scsi_ident_serial: Option<&'a str>,
    revision: Option<&'a str>,
    fs_type: Option<&'a str>,
    fs_usage: Option<&'a str>,
    fs_uuid: Option<&'a str>,
    fs_version: Option<&'a str>,
    dm_name: Option<&'a str>,
    dm_uuid: Option<&'a str>,
    dm_vg_name: Option<&'a str>,
    dm_lv_name: Option<&'a str>,
    dm_lv_layer: Option<&'a str>,
    ata: Option<&'a str>,
    ata_write_cache: Option<&'a str>,
    ata_write_cache_enabled: Option<&'a str>,
    ata_rotation_rate_rpm: Option<&'a str>,
}

impl<'a> Udev<'a> {
    /// Parses the `E:KEY=value` property lines of a udev data file; other record types
    /// (`S:` symlinks, `I:`, `G:`, ...) are skipped. A repeated key keeps its last value.
    fn parse(text: &'a str) -> Self {
        let mut u = Udev::default();
        for line in text.lines() {
            let Some(prop) = line.strip_prefix("E:") else {
                continue;
            };
            let Some((key, value)) = prop.split_once('=') else {
                continue;
            };
            let slot = match key {
                "ID_PATH" => &mut u.path,
                "ID_WWN" => &mut u.wwn,
                "ID_MODEL" => &mut u.model,
                "ID_SERIAL_SHORT" => &mut u.serial_short,
                "ID_SERIAL" => &mut u.serial,
                "SCSI_IDENT_SERIAL" => &mut u.scsi_ident_serial,
                "ID_REVISION" => &mut u.revision,
                "ID_FS_TYPE" => &mut u.fs_type,
                "ID_FS_USAGE" => &mut u.fs_usage,
                "ID_FS_UUID" => &mut u.fs_uuid,
                "ID_FS_VERSION" => &mut u.fs_version,
                "DM_NAME" => &mut u.dm_name,
                "DM_UUID" => &mut u.dm_uuid,
                "DM_VG_NAME" => &mut u.dm_vg_name,
                "DM_LV_NAME" => &mut u.dm_lv_name,
                "DM_LV_LAYER" => &mut u.dm_lv_layer,
                "ID_ATA" => &mut u.ata,
                "ID_ATA_WRITE_CACHE" => &mut u.ata_write_cache,
                "ID_ATA_WRITE_CACHE_ENABLED" => &mut u.ata_write_cache_enabled,
                "ID_ATA_ROTATION_RATE_RPM" => &mut u.ata_rotation_rate_rpm,
                _ => continue,
            };
            *slot = Some(value);
        }
        u
    }

    /// node_exporter 1.12's `serial` label: the first non-empty of `SCSI_IDENT_SERIAL`,
    /// `ID_SERIAL_SHORT` and `ID_SERIAL`.
    fn serial_label(&self) -> &'a str {
        [self.scsi_ident_serial, self.serial_short, self.serial]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            .unwrap_or("")
    }
}

const DEVICE_EXCLUDE: Opt = Opt::new(
    "device_exclude",
    "collector.diskstats.device-exclude",
    Kind::Regex(Some(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")),
    "Regexp of diskstats devices to exclude (mutually exclusive to device-include).",
)
.deprecated(&["collector.diskstats.ignored-devices"]);
const DEVICE_INCLUDE: Opt = Opt::new(
    "device_include",
    "collector.diskstats.device-include",
    Kind::Regex(None),
    "Regexp of diskstats devices to include (mutually exclusive to device-exclude).",
);

/// The `diskstats` collector: `/proc/diskstats` with udev's device properties.
pub const SPEC: Spec = Spec {
    name: "diskstats",
    default_enabled: true,
    help: "/proc/diskstats",
    options: &[DEVICE_EXCLUDE, DEVICE_INCLUDE],
    filters: &[("device_exclude", "device_include")],
    build: |ctx| Box::new(Diskstats::new(ctx)),
};

/// Reads `/proc/diskstats` and the udev database.
#[derive(Debug)]
pub struct Diskstats {
    file: read::KeptFile,
    udev_dir: PathBuf,
    /// `--collector.diskstats.device-exclude` / `device-include`.
    filter: DeviceFilter,
    /// Whether `udev_dir` existed when last checked. While it is absent, one stat per scrape
    /// replaces an open per device; it is re-checked so a udev that starts after the agent
    /// is picked up.
    udev_present: AtomicBool,
    /// `{sysfs}/block`.
    block_dir: PathBuf,
    /// Each reported device's `queue/rotational`, kept open; devices no longer listed are
    /// dropped at the next scrape.
    rotational: Mutex<HashMap<String, read::KeptFile>>,
}

impl Diskstats {
    pub fn new(ctx: &Context) -> Self {
        let udev_dir = ctx.paths.udev_data.clone();
        let udev_present = AtomicBool::new(udev_dir.is_dir());
        if !udev_present.load(Ordering::Relaxed) {
            tracing::info!(path = %udev_dir.display(), "udev data directory not found, node_disk_info will lack udev properties");
        }
        Self {
            file: read::KeptFile::new(ctx.paths.procfs.join("diskstats")),
            udev_dir,
            filter: ctx.filter(&DEVICE_EXCLUDE, &DEVICE_INCLUDE),
            udev_present,
            block_dir: ctx.paths.sysfs.join("block"),
            rotational: Mutex::new(HashMap::new()),
        }
    }

    /// The `rotational` label of each of `disks` (sorted by name): procfs'
    /// `SysBlockDeviceRotational`, "1" only for a value of 1, "0" for anything else or an error.
    fn rotational(&self, disks: &[Disk]) -> Vec<&'static str> {
        let mut files = self
            .rotational
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // One binary search per kept device: linear in the number of disks.
        files.retain(|name, _| {
            disks
                .binary_search_by(|d| d.name.cmp(name.as_str()))
                .is_ok()
        });
        let mut buf = [0u8; 32];
        disks
            .iter()
            .map(|d| {
                let file = files.entry(d.name.to_owned()).or_insert_with(|| {
                    read::KeptFile::one_record(self.block_dir.join(d.name).join("queue/rotational"))
                });
                match file.read_once(&mut buf) {
                    Ok(n) if std::str::from_utf8(&buf[..n]).ok().map(str::trim) == Some("1") => "1",
                    _ => "0",
                }
            })
            .collect()
    }

    fn ignored(&self, device: &str) -> bool {
        self.filter.ignored(device)
    }

    /// Reads the udev data file of a device into `buf`; false when there is none.
    fn read_udev(&self, major: u32, minor: u32, file: &mut PathBuf, buf: &mut String) -> bool {
        use std::fmt::Write as _;
        buf.clear();
        let mut name = String::with_capacity(16);
        let _ = write!(name, "b{major}:{minor}");
        file.push(&name);
        let res = std::fs::File::open(&*file)
            .and_then(|mut f| crate::read::read_to_end_into(&mut f, buf));
        file.pop();
        match res {
            Ok(_) => true,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::debug!(path = %self.udev_dir.join(&name).display(), error = %e, "failed to read udev data");
                }
                buf.clear();
                false
            }
        }
    }
}

/// Parses `/proc/diskstats`. Every line needs at least `MIN_FIELDS` fields.
fn parse<'a>(path: &Path, text: &'a str) -> Result<Vec<Disk<'a>>, CollectError> {
    let mut disks = Vec::with_capacity(32);
    for (n, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(major), Some(minor), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(CollectError::parse(
                path,
                format!("line {}: too few fields: {line:?}", n + 1),
            ));
        };
        let number = |f: &str| {
            f.parse::<u32>().map_err(|_| {
                CollectError::parse(path, format!("line {}: invalid device number {f:?}", n + 1))
            })
        };
        let mut disk = Disk {
            name,
            major: number(major)?,
            minor: number(minor)?,
            counters: [0; MAX_COUNTERS],
            count: 0,
        };
        let mut total = HEADER_FIELDS;
        for f in fields {
            if disk.count < MAX_COUNTERS {
                disk.counters[disk.count] = read::parse_u64(path, f)?;
                disk.count += 1;
            }
            total += 1;
        }
        if total < MIN_FIELDS {
            return Err(CollectError::parse(
                path,
                format!(
                    "line {}: want at least {MIN_FIELDS} fields, got {total}: {line:?}",
                    n + 1
                ),
            ));
        }
        disks.push(disk);
    }
    Ok(disks)
}

/// A udev property as a label value: absent is empty, as a Go map lookup gives.
fn s(v: Option<&str>) -> &str {
    v.unwrap_or("")
}

/// Parses an ATA property the way Go's `strconv.ParseFloat` would accept it.
fn ata_value(v: Option<&str>) -> Option<f64> {
    v.and_then(|s| s.parse::<f64>().ok())
}

impl Collector for Diskstats {
    fn name(&self) -> &'static str {
        "diskstats"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let text = match self.file.read_string_io() {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CollectError::NoData(format!(
                    "{} not found",
                    self.file.path().display()
                )))
            }
            Err(e) => return Err(CollectError::io(self.file.path(), e)),
        };
        let mut disks = parse(self.file.path(), &text)?;
        disks.retain(|d| !self.ignored(d.name));
        // node_exporter's client library sorts a family's samples by label values.
        disks.sort_unstable_by(|a, b| a.name.cmp(b.name));

        let udev_present = self.udev_present.load(Ordering::Relaxed) || {
            let now = self.udev_dir.is_dir();
            if now {
                self.udev_present.store(true, Ordering::Relaxed);
            }
            now
        };
        let rotational = self.rotational(&disks);
        let mut file = self.udev_dir.clone();
        let mut buf = String::new();
        let (mut major, mut minor) = (itoa::Buffer::new(), itoa::Buffer::new());
        for (d, rotational) in disks.iter().zip(rotational) {
            let dev = d.name;
            for (fam, &raw) in FAMILIES.iter().zip(&d.counters[..d.count]) {
                out.sample(
                    fam.ty,
                    fam.name,
                    fam.help,
                    &[("device", dev)],
                    raw as f64 * fam.scale,
                );
            }

            let found = udev_present && self.read_udev(d.major, d.minor, &mut file, &mut buf);
            let u = if found {
                Udev::parse(&buf)
            } else {
                Udev::default()
            };
            out.gauge(
                "node_disk_info",
                INFO_HELP,
                &[
                    ("device", dev),
                    ("major", major.format(d.major)),
                    ("minor", minor.format(d.minor)),
                    ("model", s(u.model)),
                    ("path", s(u.path)),
                    ("revision", s(u.revision)),
                    ("rotational", rotational),
                    ("serial", u.serial_label()),
                    ("wwn", s(u.wwn)),
                ],
                1.0,
            );
            if let Some(fs_type) = u.fs_type.filter(|t| !t.is_empty()) {
                out.gauge(
                    "node_disk_filesystem_info",
                    FILESYSTEM_INFO_HELP,
                    &[
                        ("device", dev),
                        ("type", fs_type),
                        ("usage", s(u.fs_usage)),
                        ("uuid", s(u.fs_uuid)),
                        ("version", s(u.fs_version)),
                    ],
                    1.0,
                );
            }
            if let Some(name) = u.dm_name.filter(|n| !n.is_empty()) {
                out.gauge(
                    "node_disk_device_mapper_info",
                    DEVICE_MAPPER_INFO_HELP,
                    &[
                        ("device", dev),
                        ("lv_layer", s(u.dm_lv_layer)),
                        ("lv_name", s(u.dm_lv_name)),
                        ("name", name),
                        ("uuid", s(u.dm_uuid)),
                        ("vg_name", s(u.dm_vg_name)),
                    ],
                    1.0,
                );
            }
            if u.ata.is_some_and(|a| !a.is_empty()) {
                let ata = [
                    (
                        "node_disk_ata_rotation_rate_rpm",
                        "ATA disk rotation rate in RPMs (0 for SSDs).",
                        u.ata_rotation_rate_rpm,
                    ),
                    (
                        "node_disk_ata_write_cache",
                        "ATA disk has a write cache.",
                        u.ata_write_cache,
                    ),
                    (
                        "node_disk_ata_write_cache_enabled",
                        "ATA disk has its write cache enabled.",
                        u.ata_write_cache_enabled,
                    ),
                ];
                for (name, help, raw) in ata {
                    match ata_value(raw) {
                        Some(v) => out.gauge(name, help, &[("device", dev)], v),
                        None if raw.is_some() => {
                            tracing::debug!(device = dev, family = name, value = ?raw, "unparsable ata udev property")
                        }
                        None => {}
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const LINE_20: &str = " 259       0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17";

    #[test]
    fn field_counts_of_each_kernel_generation() {
        let p = Path::new("/proc/diskstats");
        let text = format!(
            "{LINE_20}\n   8       0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n   8      16 sdb 1 2 3 4 5 6 7 8 9 10 11\n"
        );
        let disks = parse(p, &text).expect("parse");
        let counts: Vec<(&str, usize)> = disks.iter().map(|d| (d.name, d.count)).collect();
        assert_eq!(counts, [("nvme0n1", 17), ("sda", 15), ("sdb", 11)]);
        assert_eq!(disks[0].major, 259);
        assert_eq!(disks[0].counters[16], 17);
    }

    #[test]
    fn too_few_fields_is_a_parse_error_naming_the_file() {
        let p = Path::new("/proc/diskstats");
        let err = parse(p, "   8       0 sda 1 2 3 4 5 6 7 8 9 10\n").expect_err("short line");
        assert!(matches!(err, CollectError::Parse { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "parse /proc/diskstats: line 1: want at least 14 fields, got 13: \"   8       0 sda 1 2 3 4 5 6 7 8 9 10\""
        );
        let err = parse(p, "   8       0\n").expect_err("no name");
        assert_eq!(
            err.to_string(),
            "parse /proc/diskstats: line 1: too few fields: \"   8       0\""
        );
    }

    #[test]
    fn bad_numbers_are_parse_errors() {
        let p = Path::new("/proc/diskstats");
        let err = parse(p, "   8       0 sda 1 2 x 4 5 6 7 8 9 10 11\n").expect_err("bad counter");
        assert_eq!(
            err.to_string(),
            "parse /proc/diskstats: not an unsigned integer: \"x\""
        );
        let err = parse(p, "   8      -1 sda 1 2 3 4 5 6 7 8 9 10 11\n").expect_err("bad minor");
        assert_eq!(
            err.to_string(),
            "parse /proc/diskstats: line 1: invalid device number \"-1\""
        );
        // One past u64::MAX does not fit the kernel's counters either.
        let err = parse(
            p,
            "   8       0 sda 18446744073709551616 2 3 4 5 6 7 8 9 10 11\n",
        )
        .expect_err("overflow");
        assert!(matches!(err, CollectError::Parse { .. }));
    }

    #[test]
    fn huge_counters_and_blank_lines() {
        let p = Path::new("/proc/diskstats");
        let disks = parse(
            p,
            "\n   8       0 sda 18446744073709551615 0 0 0 0 0 0 0 0 0 0\n",
        )
        .expect("parse");
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].counters[0], u64::MAX);
    }

    #[test]
    fn default_filter_drops_partitions_loop_and_ram() {
        let cfg = Config::default();
        let d = Diskstats::new(&cfg.context("diskstats").expect("registered"));
        for dev in [
            "sda1",
            "nvme0n1p1",
            "loop0",
            "ram0",
            "zram0",
            "vdb2",
            "xvda1",
            "fd0",
        ] {
            assert!(d.ignored(dev), "{dev} should be ignored");
        }
        for dev in ["sda", "nvme0n1", "dm-0", "md0", "vda", "mmcblk0"] {
            assert!(!d.ignored(dev), "{dev} should be reported");
        }
        // As in node_exporter 1.12: an include pattern alone replaces the default exclude.
        let mut cfg = Config::default();
        cfg.collectors
            .set_flag("collector.diskstats.device-include", Some("^nvme"))
            .expect("valid flag");
        let d = Diskstats::new(&cfg.context("diskstats").expect("registered"));
        assert!(!d.ignored("nvme0n1"));
        assert!(d.ignored("sda"));
        assert!(
            !d.ignored("nvme0n1p1"),
            "the default exclude no longer applies"
        );
    }

    #[test]
    fn udev_properties_skip_other_records_and_keep_equals_in_values() {
        let u = Udev::parse(
            "S:disk/by-id/ata-X\nW:4\nE:ID_MODEL=First\nE:ID_MODEL=Disk_Model\nE:BROKEN\nE:ID_FS_UUID=a=b\nI:123\nE:ID_ATA=1\n",
        );
        assert_eq!(u.model, Some("Disk_Model"));
        assert_eq!(u.fs_uuid, Some("a=b"));
        assert_eq!(u.ata, Some("1"));
        assert_eq!(u.path, None);
    }

    #[test]
    fn serial_prefers_the_label_serial_then_short_then_full() {
        let u =
            Udev::parse("E:ID_SERIAL=full\nE:ID_SERIAL_SHORT=short\nE:SCSI_IDENT_SERIAL=label\n");
        assert_eq!(u.serial_label(), "label");
        let u = Udev::parse("E:ID_SERIAL=full\nE:ID_SERIAL_SHORT=short\nE:SCSI_IDENT_SERIAL=\n");
        assert_eq!(u.serial_label(), "short");
        let u = Udev::parse("E:ID_SERIAL=virtio-abc\n");
        assert_eq!(u.serial_label(), "virtio-abc");
        assert_eq!(Udev::parse("").serial_label(), "");
    }

    #[test]
    fn rotational_is_one_only_for_a_value_of_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (dev, v) in [("sda", "1\n"), ("sdb", "0\n"), ("sdc", "x\n")] {
            let q = dir.path().join("block").join(dev).join("queue");
            std::fs::create_dir_all(&q).expect("mkdir");
            std::fs::write(q.join("rotational"), v).expect("write");
        }
        let mut cfg = Config::default();
        cfg.paths.sysfs = dir.path().to_owned();
        let d = Diskstats::new(&cfg.context("diskstats").expect("registered"));
        let disk = |name| Disk {
            name,
            major: 8,
            minor: 0,
            counters: [0; MAX_COUNTERS],
            count: 11,
        };
        let disks = [disk("sda"), disk("sdb"), disk("sdc"), disk("sdd")];
        assert_eq!(d.rotational(&disks), ["1", "0", "0", "0"]);
        // A device that left /proc/diskstats is forgotten.
        assert_eq!(d.rotational(&disks[1..2]), ["0"]);
        assert_eq!(d.rotational.lock().expect("lock").len(), 1);
    }

    #[test]
    fn ata_values_parse_like_go() {
        assert_eq!(ata_value(Some("7200")), Some(7200.0));
        assert_eq!(ata_value(Some("")), None);
        assert_eq!(ata_value(Some("yes")), None);
        assert_eq!(ata_value(None), None);
    }

    #[test]
    fn missing_file_is_no_data() {
        let mut cfg = Config::default();
        cfg.paths.procfs = PathBuf::from("/nonexistent/proc");
        let err = Diskstats::new(&cfg.context("diskstats").expect("registered"))
            .collect(&mut MetricWriter::new())
            .expect_err("missing file");
        assert!(err.is_no_data(), "{err:?}");
    }
}
