//! `netclass`: network interface properties from `{sysfs}/class/net/<iface>/*`, as
//! node_exporter 1.5's `netclass_linux.go` reports them from procfs' `sysfs.NetClass`.
//!
//! Also home of `read_sysfs`, the attribute read shared by the sysfs collectors (netclass,
//! hwmon, thermal_zone), which mirrors procfs' `util.SysReadFile`.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use regex_lite::Regex;

use super::{CollectError, Collector};
use crate::config::{self, Config};
use crate::metrics::{MetricType, MetricWriter};

/// The most bytes node_exporter reads from one sysfs attribute (procfs' `util.SysReadFile` and
/// hwmon's `sysReadFile` both do a single 128-byte read(2)); longer values are truncated.
pub(super) const SYSFS_READ_MAX: usize = 128;

/// Reads a sysfs attribute with one read(2) of at most `SYSFS_READ_MAX` bytes, as node_exporter
/// does. A single read matters beyond speed: some drivers return EAGAIN forever, which a
/// read-until-EOF loop would retry.
pub(super) fn read_sysfs<'a>(
    path: &Path,
    buf: &'a mut [u8; SYSFS_READ_MAX],
) -> io::Result<&'a [u8]> {
    read_once(File::open(path)?, buf)
}

fn read_once(mut f: File, buf: &mut [u8; SYSFS_READ_MAX]) -> io::Result<&[u8]> {
    let n = f.read(buf)?;
    Ok(&buf[..n])
}

/// A sysfs directory held open (O_PATH) so that its attributes are opened with openat(2)
/// relative to it. Opening a sysfs attribute by absolute path makes the kernel walk every
/// component and follow the `class/*` symlink each time, which is about a third of the cost
/// of reading the attribute.
#[derive(Debug)]
pub(super) struct SysfsDir {
    fd: OwnedFd,
}

impl SysfsDir {
    pub(super) fn open(path: &Path) -> io::Result<Self> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(path)?;
        Ok(Self { fd: dir.into() })
    }

    /// Reads attribute `name` of this directory like `read_sysfs`.
    pub(super) fn read<'a>(
        &self,
        name: &CStr,
        buf: &'a mut [u8; SYSFS_READ_MAX],
    ) -> io::Result<&'a [u8]> {
        // SAFETY: `name` is NUL-terminated and `self.fd` is an open descriptor.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openat returned a new descriptor that nothing else owns.
        read_once(unsafe { File::from_raw_fd(fd) }, buf)
    }
}

/// The numeric attributes node_exporter exports: file name, family name, HELP and type.
const NUMERIC: [(&CStr, &str, &str, MetricType); 17] = [
    (
        c"addr_assign_type",
        "node_network_address_assign_type",
        "Network device property: address_assign_type",
        MetricType::Gauge,
    ),
    (
        c"carrier",
        "node_network_carrier",
        "Network device property: carrier",
        MetricType::Gauge,
    ),
    (
        c"carrier_changes",
        "node_network_carrier_changes_total",
        "Network device property: carrier_changes_total",
        MetricType::Counter,
    ),
    (
        c"carrier_up_count",
        "node_network_carrier_up_changes_total",
        "Network device property: carrier_up_changes_total",
        MetricType::Counter,
    ),
    (
        c"carrier_down_count",
        "node_network_carrier_down_changes_total",
        "Network device property: carrier_down_changes_total",
        MetricType::Counter,
    ),
    (
        c"dev_id",
        "node_network_device_id",
        "Network device property: device_id",
        MetricType::Gauge,
    ),
    (
        c"dormant",
        "node_network_dormant",
        "Network device property: dormant",
        MetricType::Gauge,
    ),
    (
        c"flags",
        "node_network_flags",
        "Network device property: flags",
        MetricType::Gauge,
    ),
    (
        c"ifindex",
        "node_network_iface_id",
        "Network device property: iface_id",
        MetricType::Gauge,
    ),
    (
        c"iflink",
        "node_network_iface_link",
        "Network device property: iface_link",
        MetricType::Gauge,
    ),
    (
        c"link_mode",
        "node_network_iface_link_mode",
        "Network device property: iface_link_mode",
        MetricType::Gauge,
    ),
    (
        c"mtu",
        "node_network_mtu_bytes",
        "Network device property: mtu_bytes",
        MetricType::Gauge,
    ),
    (
        c"name_assign_type",
        "node_network_name_assign_type",
        "Network device property: name_assign_type",
        MetricType::Gauge,
    ),
    (
        c"netdev_group",
        "node_network_net_dev_group",
        "Network device property: net_dev_group",
        MetricType::Gauge,
    ),
    (
        c"speed",
        "node_network_speed_bytes",
        "Network device property: speed_bytes",
        MetricType::Gauge,
    ),
    (
        c"tx_queue_len",
        "node_network_transmit_queue_length",
        "Network device property: transmit_queue_length",
        MetricType::Gauge,
    ),
    (
        c"type",
        "node_network_protocol_type",
        "Network device property: protocol_type",
        MetricType::Gauge,
    ),
];
/// Index of `speed` in `NUMERIC`: reported in bytes per second.
const SPEED: usize = 14;

/// The string attributes of `node_network_info`, in label-name order.
const TEXT: [&CStr; 4] = [c"address", c"broadcast", c"duplex", c"ifalias"];

/// One interface's attributes; `None` where the kernel refused to produce a value.
#[derive(Debug)]
struct Iface {
    name: String,
    /// `TEXT` values, empty when unavailable.
    text: [String; 4],
    operstate: String,
    numeric: [Option<i64>; 17],
}

/// Reads `{sysfs}/class/net`.
#[derive(Debug)]
pub struct Netclass {
    dir: PathBuf,
    /// `--collector.netclass.ignored-devices` (node_exporter's default `^$` ignores nothing).
    exclude: Option<Regex>,
}

impl Netclass {
    pub fn new(cfg: &Config) -> Self {
        Self {
            dir: cfg.paths.sysfs.join("class/net"),
            exclude: cfg
                .collectors
                .netclass
                .device_exclude
                .as_deref()
                .map(config::compile),
        }
    }

    /// Interface names: every entry of `class/net` but regular files (`bonding_masters`).
    fn devices(&self) -> Result<Vec<String>, CollectError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            // node_exporter returns ErrNoData when the directory is missing or unreadable.
            Err(e) if is_absent(&e) => {
                return Err(CollectError::NoData(format!(
                    "read {}: {}",
                    self.dir.display(),
                    super::io_reason(&e)
                )))
            }
            Err(e) => return Err(CollectError::io(&self.dir, e)),
        };
        let mut names = Vec::with_capacity(8);
        for entry in entries {
            let entry = entry.map_err(|e| CollectError::io(&self.dir, e))?;
            // d_type from readdir: no extra stat for the usual symlinks.
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if self.exclude.as_ref().is_some_and(|re| re.is_match(&name)) {
                continue;
            }
            names.push(name);
        }
        names.sort_unstable();
        Ok(names)
    }

    /// Reads one interface's attributes. Only the files node_exporter exports are opened; a
    /// file the kernel refuses to produce is left out, any other read error fails the scrape
    /// as it does in procfs.
    fn iface(&self, name: String) -> Result<Iface, CollectError> {
        let path = self.dir.join(&name);
        let dir = match SysfsDir::open(&path) {
            Ok(d) => d,
            // procfs lists the interface directory first; node_exporter turns its absence
            // (an interface removed during the scrape, a dangling link) into ErrNoData.
            Err(e) if is_absent(&e) => {
                return Err(CollectError::NoData(format!(
                    "read {}: {}",
                    path.display(),
                    super::io_reason(&e)
                )))
            }
            Err(e) => return Err(CollectError::io(&path, e)),
        };
        let mut buf = [0u8; SYSFS_READ_MAX];
        let mut read = |attr: &CStr| -> Result<Option<String>, CollectError> {
            match dir.read(attr, &mut buf) {
                Ok(b) => Ok(Some(String::from_utf8_lossy(b).trim().to_owned())),
                Err(e) if is_unavailable(&e) => Ok(None),
                Err(e) => Err(CollectError::io(
                    &path.join(attr.to_string_lossy().as_ref()),
                    e,
                )),
            }
        };
        let mut text: [String; 4] = Default::default();
        for (value, attr) in text.iter_mut().zip(TEXT) {
            *value = read(attr)?.unwrap_or_default();
        }
        let operstate = read(c"operstate")?.unwrap_or_default();
        let mut numeric = [None; 17];
        for (value, (attr, ..)) in numeric.iter_mut().zip(NUMERIC) {
            // procfs' ValueParser yields 0 for a value it cannot parse.
            *value = read(attr)?.map(|s| parse_go_int(&s).unwrap_or(0));
        }
        Ok(Iface {
            name,
            text,
            operstate,
            numeric,
        })
    }
}

/// Whether `read_dir` failed because the directory is absent or unreadable (os.ErrNotExist,
/// os.ErrPermission).
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::EACCES | libc::EPERM)
    )
}

/// Whether an attribute read error means "not available" to procfs' `parseNetClassIface`:
/// missing, permission denied, EOPNOTSUPP, or EINVAL (carrier/speed of a down link). EISDIR
/// stands for procfs skipping entries that are not regular files.
fn is_unavailable(e: &io::Error) -> bool {
    is_absent(e)
        || matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP | libc::EINVAL | libc::EISDIR)
        )
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, then decimal, `0x` hex, `0o`/leading-zero
/// octal or `0b` binary, with `_` digit separators. `None` on syntax or range errors.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let mag = parse_go_uint(digits)?;
    const LIMIT: u64 = 1 << 63;
    match (neg, mag) {
        (false, m) if m < LIMIT => Some(m as i64),
        // -2^63 is representable: `as` maps it to i64::MIN.
        (true, m) if m <= LIMIT => Some((m as i64).wrapping_neg()),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn parse_go_uint(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let (base, digits) = if b[0] == b'0' {
        match b.get(1).map(|c| c | 0x20) {
            Some(b'b') if b.len() >= 3 => (2, &b[2..]),
            Some(b'o') if b.len() >= 3 => (8, &b[2..]),
            Some(b'x') if b.len() >= 3 => (16, &b[2..]),
            _ => (8, &b[1..]),
        }
    } else {
        (10, b)
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' | b'A'..=b'Z' => (c | 0x20) - b'a' + 10,
            _ => return None,
        };
        if u64::from(d) >= base {
            return None;
        }
        n = n.checked_mul(base)?.checked_add(u64::from(d))?;
    }
    if underscores && !underscore_ok(b) {
        return None;
    }
    Some(n)
}

/// Go's `strconv.underscoreOK`: underscores may only separate digits (or follow a base prefix).
fn underscore_ok(s: &[u8]) -> bool {
    // The class of the previous character: b'^' start, b'0' digit or prefix, b'_', b'!' other.
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1] | 0x20 == b'x';
    }
    for &c in &s[i..] {
        if c.is_ascii_digit() || (hex && (c | 0x20).is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

impl Collector for Netclass {
    fn name(&self) -> &'static str {
        "netclass"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        // Read everything first: like node_exporter, a hard read error reports nothing.
        let ifaces = self
            .devices()?
            .into_iter()
            .map(|name| self.iface(name))
            .collect::<Result<Vec<_>, _>>()?;

        for i in &ifaces {
            out.gauge(
                "node_network_up",
                "Value is 1 if operstate is 'up', 0 otherwise.",
                &[("device", &i.name)],
                if i.operstate == "up" { 1.0 } else { 0.0 },
            );
        }
        // node_exporter's output is sorted by label values, address first.
        let mut info: Vec<&Iface> = ifaces.iter().collect();
        info.sort_by(|a, b| (&a.text[..2], &a.name).cmp(&(&b.text[..2], &b.name)));
        for i in info {
            let [address, broadcast, duplex, ifalias] = &i.text;
            out.gauge(
                "node_network_info",
                "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
                &[
                    ("address", address),
                    ("broadcast", broadcast),
                    ("device", &i.name),
                    ("duplex", duplex),
                    ("ifalias", ifalias),
                    ("operstate", &i.operstate),
                ],
                1.0,
            );
        }
        for (k, (_, name, help, ty)) in NUMERIC.iter().enumerate() {
            for i in &ifaces {
                let Some(mut v) = i.numeric[k] else { continue };
                if k == SPEED {
                    // Mbit/s to bytes/s in int64 as node_exporter does, so the unknown speed
                    // -1 becomes -125000 (`--collector.netclass.ignore-invalid-speed` is off).
                    v = v.wrapping_mul(1_000_000) / 8;
                }
                out.sample(*ty, name, help, &[("device", &i.name)], v as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_int_parsing_matches_strconv_base_zero() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("1500", Some(1500)),
            ("-1", Some(-1)),
            ("+5", Some(5)),
            ("0x1003", Some(4099)),
            ("0X1f", Some(31)),
            ("-0x10", Some(-16)),
            ("010", Some(8)),
            ("08", None),
            ("0b101", Some(5)),
            ("0o17", Some(15)),
            ("0x", None),
            ("1_000", Some(1000)),
            ("0x_1f", Some(31)),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("", None),
            ("-", None),
            ("abc", None),
            (" 1", None),
            ("9223372036854775807", Some(i64::MAX)),
            ("9223372036854775808", None),
            ("-9223372036854775808", Some(i64::MIN)),
            ("-9223372036854775809", None),
            ("18446744073709551616", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_go_int(s), *want, "parsing {s:?}");
        }
    }

    #[test]
    fn unavailable_errors_are_the_ones_procfs_skips() {
        for errno in [
            libc::ENOENT,
            libc::EACCES,
            libc::EPERM,
            libc::EOPNOTSUPP,
            libc::EINVAL,
            libc::EISDIR,
        ] {
            assert!(
                is_unavailable(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        for errno in [libc::EIO, libc::ENODEV, libc::EBUSY] {
            assert!(
                !is_unavailable(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = dir.path().join("class/net");
        for (iface, attrs) in [
            (
                "a0",
                &[("operstate", "up\n"), ("mtu", "abc\n"), ("speed", "-1\n")][..],
            ),
            ("b0", &[("operstate", "down\n"), ("ifalias", "")][..]),
        ] {
            std::fs::create_dir_all(net.join(iface)).expect("mkdir");
            for (k, v) in attrs {
                std::fs::write(net.join(iface).join(k), v).expect("write");
            }
        }
        std::fs::write(net.join("bonding_masters"), "").expect("write");
        dir
    }

    fn collect(sysfs: &Path, exclude: Option<&str>) -> (Result<(), CollectError>, String) {
        let mut cfg = Config::default();
        cfg.paths.sysfs = sysfs.to_owned();
        cfg.collectors.netclass.device_exclude = exclude.map(str::to_owned);
        let mut w = MetricWriter::new();
        let res = Netclass::new(&cfg).collect(&mut w);
        (res, w.render_to_string())
    }

    #[test]
    fn unparsable_values_are_zero_and_missing_ones_omitted() {
        let dir = tree();
        let (res, text) = collect(dir.path(), None);
        res.expect("collect");
        assert!(
            text.contains("node_network_mtu_bytes{device=\"a0\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("node_network_speed_bytes{device=\"a0\"} -125000\n"),
            "{text}"
        );
        assert!(
            !text.contains("node_network_mtu_bytes{device=\"b0\"}"),
            "{text}"
        );
        assert!(
            text.contains("node_network_up{device=\"b0\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("bonding_masters"), "{text}");
    }

    #[test]
    fn excluded_devices_are_not_read() {
        let dir = tree();
        let (res, text) = collect(dir.path(), Some("^a"));
        res.expect("collect");
        assert!(!text.contains("\"a0\""), "{text}");
        assert!(text.contains("\"b0\""), "{text}");
    }

    #[test]
    fn hard_read_errors_name_the_attribute() {
        let dir = tree();
        // A directory where an attribute should be makes read(2) fail with EISDIR (skipped),
        // but a dangling symlink inside the attribute path gives ENOTDIR: not skipped.
        std::fs::write(dir.path().join("class/net/b0/notadir"), "").expect("write");
        std::os::unix::fs::symlink("notadir/x", dir.path().join("class/net/b0/address"))
            .expect("symlink");
        let (res, text) = collect(dir.path(), None);
        let err = res.expect_err("ENOTDIR is a hard error");
        assert!(text.is_empty(), "{text}");
        let msg = err.to_string();
        assert!(msg.starts_with("read "), "{msg}");
        assert!(
            msg.ends_with("class/net/b0/address: not a directory"),
            "{msg}"
        );
    }

    #[test]
    fn vanished_interface_is_no_data() {
        // node_exporter lists each interface directory; a dangling class/net link (interface
        // removed mid-scrape) makes that fail with ENOENT, which it reports as ErrNoData.
        let dir = tree();
        std::os::unix::fs::symlink("../../devices/gone", dir.path().join("class/net/c0"))
            .expect("symlink");
        let (res, text) = collect(dir.path(), None);
        let err = res.expect_err("dangling link");
        assert!(err.is_no_data(), "{err:?}");
        assert!(text.is_empty(), "{text}");
    }

    #[test]
    fn missing_class_net_is_no_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (res, _) = collect(dir.path(), None);
        assert!(res.expect_err("no class/net").is_no_data());
    }
}
