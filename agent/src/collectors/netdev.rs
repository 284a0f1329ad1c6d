//! `netdev`: per-interface traffic counters, as node_exporter 1.12.1 reports them: from an
//! rtnetlink link dump with statistics (IFLA_STATS64) by default, or from `/proc/net/dev` with
//! `--no-collector.netdev.netlink`.
//!
//! # Source
//! node_exporter's netlink path ignores `--path.procfs`: it always dumps the links of its own
//! network namespace. When `{procfs}` is a procfs mount (the host's `/proc`, or a container's
//! `/host/proc`), `{procfs}/net/dev` shows that same namespace (`net` resolves through
//! `self`), so Beacon dumps rtnetlink exactly as node_exporter does. When `{procfs}` is not
//! procfs at all (a fixture tree), there is no namespace behind it and Beacon reads its
//! `net/dev`, as with `--no-collector.netdev.netlink`; node_exporter would report the host's
//! links there instead.
//!
//! # Families
//! Without `--collector.netdev.enable-detailed-metrics`, both sources give
//! `node_network_{receive,transmit}_<field>_total{device}` with `/proc/net/dev`'s field names
//! (`errs`, `drop`, `colls`, ...); netlink's detailed error counters are summed into them the
//! way the kernel prints `/proc/net/dev` (node_exporter's `legacy`), and netlink adds
//! `receive_nohandler`. With the option, the names are netlink's own (`receive_errors`,
//! `receive_dropped`, `multicast`, `collisions`, `receive_crc_errors`, ...) or, from
//! `/proc/net/dev`, its columns with `errors`/`dropped`. `--collector.netdev.label-ifalias`
//! adds the `ifalias` label from `{sysfs}/class/net/<device>/ifalias`, and
//! `--collector.netdev.address-info` adds `node_network_address_info` from an RTM_GETADDR
//! dump (Go's `net.Interface.Addrs`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::filter::DeviceFilter;
use crate::metrics::MetricWriter;
use crate::read;
use crate::rtnetlink::{LinkDump, STATS};
use crate::sysfs::{read_sysfs, SYSFS_READ_MAX};

const DEVICE_INCLUDE: Opt = Opt::new(
    "device_include",
    "collector.netdev.device-include",
    Kind::Regex(None),
    "Regexp of net devices to include (mutually exclusive to device-exclude).",
)
.deprecated(&["collector.netdev.device-whitelist"]);
const DEVICE_EXCLUDE: Opt = Opt::new(
    "device_exclude",
    "collector.netdev.device-exclude",
    Kind::Regex(None),
    "Regexp of net devices to exclude (mutually exclusive to device-include).",
)
.deprecated(&["collector.netdev.device-blacklist"]);
const NETLINK: Opt = Opt::new(
    "netlink",
    "collector.netdev.netlink",
    Kind::Bool(true),
    "Use netlink to gather stats instead of /proc/net/dev.",
);
const LABEL_IFALIAS: Opt = Opt::new(
    "label_ifalias",
    "collector.netdev.label-ifalias",
    Kind::Bool(false),
    "Add ifAlias label",
);
const ADDRESS_INFO: Opt = Opt::new(
    "address_info",
    "collector.netdev.address-info",
    Kind::Bool(false),
    "Collect address-info for every device",
);
const DETAILED: Opt = Opt::new(
    "enable_detailed_metrics",
    "collector.netdev.enable-detailed-metrics",
    Kind::Bool(false),
    "Use (incompatible) metric names that provide more detailed stats on Linux",
);

/// The `netdev` collector: rtnetlink link statistics or `/proc/net/dev`.
pub const SPEC: Spec = Spec {
    name: "netdev",
    default_enabled: true,
    help: "rtnetlink link statistics, or /proc/net/dev",
    options: &[
        DEVICE_INCLUDE,
        DEVICE_EXCLUDE,
        NETLINK,
        LABEL_IFALIAS,
        ADDRESS_INFO,
        DETAILED,
    ],
    filters: &[("device_exclude", "device_include")],
    build: |ctx| Box::new(Netdev::new(ctx)),
};

/// Number of counter columns per `/proc/net/dev` line (8 receive, then 8 transmit).
const COLUMNS: usize = 16;

/// `/proc/net/dev`'s columns as node_exporter names them with detailed metrics.
const PROC_DETAILED: [&str; COLUMNS] = [
    "receive_bytes",
    "receive_packets",
    "receive_errors",
    "receive_dropped",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errors",
    "transmit_dropped",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// `/proc/net/dev`'s columns under node_exporter's default (legacy) names.
const PROC_LEGACY: [&str; COLUMNS] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// `rtnl_link_stats64`'s counters (up to `rx_nohandler`) under node_exporter's detailed names.
const NETLINK_DETAILED: [&str; STATS] = [
    "receive_packets",
    "transmit_packets",
    "receive_bytes",
    "transmit_bytes",
    "receive_errors",
    "transmit_errors",
    "receive_dropped",
    "transmit_dropped",
    "multicast",
    "collisions",
    "receive_length_errors",
    "receive_over_errors",
    "receive_crc_errors",
    "receive_frame_errors",
    "receive_fifo_errors",
    "receive_missed_errors",
    "transmit_aborted_errors",
    "transmit_carrier_errors",
    "transmit_fifo_errors",
    "transmit_heartbeat_errors",
    "transmit_window_errors",
    "receive_compressed",
    "transmit_compressed",
    "receive_nohandler",
];

/// The legacy names of netlink's counters, in the order `legacy_values` computes them.
const NETLINK_LEGACY: [&str; 17] = [
    "receive_packets",
    "transmit_packets",
    "receive_bytes",
    "transmit_bytes",
    "receive_errs",
    "transmit_errs",
    "receive_drop",
    "transmit_drop",
    "receive_multicast",
    "transmit_colls",
    "receive_frame",
    "receive_fifo",
    "transmit_carrier",
    "transmit_fifo",
    "receive_compressed",
    "transmit_compressed",
    "receive_nohandler",
];

/// node_exporter's `legacy`: netlink's counters folded into `/proc/net/dev`'s columns as the
/// kernel's `dev_seq_printf_stats` folds them (drops include missed; frame includes length,
/// over and CRC errors; carrier includes aborted, heartbeat and window errors), with Go's
/// wrapping uint64 sums.
fn legacy_values(s: &[u64; STATS]) -> [u64; 17] {
    let sum = |xs: &[usize]| xs.iter().fold(0u64, |a, &i| a.wrapping_add(s[i]));
    [
        s[0],
        s[1],
        s[2],
        s[3],
        s[4],
        s[5],
        sum(&[6, 15]),
        s[7],
        s[8],
        s[9],
        sum(&[13, 10, 11, 12]),
        s[14],
        sum(&[17, 16, 19, 20]),
        s[18],
        s[21],
        s[22],
        s[23],
    ]
}

/// One device's counters, in the order of the collector's `families`.
struct Device<'a> {
    name: Cow<'a, str>,
    values: [u64; STATS],
}

/// Reads link statistics (rtnetlink or `{procfs}/net/dev`) and filters devices by name.
#[derive(Debug)]
pub struct Netdev {
    file: read::KeptFile,
    /// `--collector.netdev.device-exclude` / `device-include`.
    filter: DeviceFilter,
    /// The rtnetlink source: `--collector.netdev.netlink` and `{procfs}` is procfs.
    netlink: Option<LinkDump>,
    detailed: bool,
    /// Family names and HELP texts, in the order a `Device`'s values come in.
    families: Vec<(String, String)>,
    /// `{sysfs}/class/net`, with `--collector.netdev.label-ifalias`.
    ifalias: Option<PathBuf>,
    /// The socket of the address dump, with `--collector.netdev.address-info`.
    addresses: Option<LinkDump>,
}

/// Whether `path` is on a procfs mount (a fixture tree is not).
// `f_type` and the constant have different integer types on different architectures.
#[allow(clippy::unnecessary_cast)]
fn is_procfs(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c` is NUL-terminated and `buf` is a writable statfs buffer.
    let rc = unsafe { libc::statfs(c.as_ptr(), buf.as_mut_ptr()) };
    // SAFETY: statfs returned 0, so it filled the (already zeroed) buffer.
    rc == 0 && unsafe { buf.assume_init() }.f_type as i64 == libc::PROC_SUPER_MAGIC as i64
}

impl Netdev {
    pub fn new(ctx: &Context) -> Self {
        let netlink = ctx.bool(&NETLINK) && is_procfs(&ctx.paths.procfs);
        Self::with_source(ctx, netlink)
    }

    /// The collector with the rtnetlink source on or off regardless of `{procfs}`.
    fn with_source(ctx: &Context, netlink: bool) -> Self {
        let detailed = ctx.bool(&DETAILED);
        let keys: &[&str] = match (netlink, detailed) {
            (true, true) => &NETLINK_DETAILED,
            (true, false) => &NETLINK_LEGACY,
            (false, true) => &PROC_DETAILED,
            (false, false) => &PROC_LEGACY,
        };
        Self {
            file: read::KeptFile::new(ctx.paths.procfs.join("net/dev")),
            filter: ctx.filter(&DEVICE_EXCLUDE, &DEVICE_INCLUDE),
            netlink: netlink.then(LinkDump::with_stats),
            detailed,
            families: keys
                .iter()
                .map(|k| {
                    (
                        format!("node_network_{k}_total"),
                        format!("Network device statistic {k}."),
                    )
                })
                .collect(),
            ifalias: ctx
                .bool(&LABEL_IFALIAS)
                .then(|| ctx.paths.sysfs.join("class/net")),
            addresses: ctx.bool(&ADDRESS_INFO).then(LinkDump::new),
        }
    }

    /// node_exporter's `deviceFilter.ignored`: unanchored matches, as Go's `MatchString`.
    fn ignored(&self, device: &str) -> bool {
        self.filter.ignored(device)
    }

    /// The devices from the rtnetlink dump: node_exporter's `parseNetlinkStats`, which skips
    /// a device without statistics.
    fn netlink_devices(&self, dump: &LinkDump) -> Result<Vec<Device<'static>>, CollectError> {
        let links = dump.links().map_err(|e| {
            CollectError::Other(format!(
                "couldn't get netstats: {}",
                crate::error::io_reason(&e)
            ))
        })?;
        let mut devices = Vec::with_capacity(links.len());
        for link in links {
            if self.ignored(&link.name) {
                continue;
            }
            let Some(stats) = link.stats else {
                tracing::debug!(device = %link.name, "no netlink stats, skipping");
                continue;
            };
            let values = if self.detailed {
                stats
            } else {
                let mut v = [0u64; STATS];
                v[..17].copy_from_slice(&legacy_values(&stats));
                v
            };
            devices.push(Device {
                name: Cow::Owned(link.name),
                values,
            });
        }
        Ok(devices)
    }

    /// The `ifalias` label of each device: `{sysfs}/class/net/<device>/ifalias`, empty where
    /// the interface has none or sysfs does not show it.
    fn aliases(&self, dir: &Path, devices: &[Device]) -> Result<Vec<String>, CollectError> {
        // node_exporter lists class/net first (procfs' NetClass); a missing directory fails
        // the collector ("couldn't get netdev labels").
        std::fs::metadata(dir).map_err(|e| CollectError::io(dir, e))?;
        let mut buf = [0u8; SYSFS_READ_MAX];
        let mut path = dir.to_path_buf();
        devices
            .iter()
            .map(|d| {
                path.push(OsStr::from_bytes(d.name.as_bytes()));
                path.push("ifalias");
                let res = match read_sysfs(&path, &mut buf) {
                    Ok(v) => Ok(String::from_utf8_lossy(v).trim().to_owned()),
                    // procfs' canIgnoreError: the attribute is simply left empty.
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(
                                libc::ENOENT
                                    | libc::EACCES
                                    | libc::EPERM
                                    | libc::EOPNOTSUPP
                                    | libc::EINVAL
                            )
                        ) =>
                    {
                        Ok(String::new())
                    }
                    Err(e) => Err(CollectError::io(&path, e)),
                };
                path.pop();
                path.pop();
                res
            })
            .collect()
    }

    /// `node_network_address_info`: every address of every device the filter keeps.
    fn address_info(&self, dump: &LinkDump, out: &mut MetricWriter) -> Result<(), CollectError> {
        let err = |e: io::Error| {
            CollectError::Other(format!(
                "could not get network interfaces: {}",
                crate::error::io_reason(&e)
            ))
        };
        let links = dump.links().map_err(err)?;
        // Go ignores the error of `Addrs()`: no addresses then.
        let addrs = dump.addrs().unwrap_or_default();
        // Interface names by ifindex, so each address is matched in one lookup (not a scan
        // of every address per interface).
        let names: HashMap<u32, &str> = links
            .iter()
            .filter(|l| !self.ignored(&l.name))
            .map(|l| (l.index as u32, l.name.as_str()))
            .collect();
        let mut rows: Vec<[String; 4]> = Vec::with_capacity(addrs.len());
        for a in &addrs {
            let Some(device) = names.get(&a.index) else {
                continue;
            };
            let (ip, prefix) = go_ip(&a.ip, a.prefixlen);
            rows.push([
                ip_string(&ip),
                (*device).to_owned(),
                prefix.to_string(),
                scope(&ip).to_owned(),
            ]);
        }
        // The client library sorts by label values in label-name order.
        rows.sort();
        for [address, device, netmask, scope] in &rows {
            out.gauge(
                "node_network_address_info",
                "node network address by device",
                &[
                    ("address", address),
                    ("device", device),
                    ("netmask", netmask),
                    ("scope", scope),
                ],
                1.0,
            );
        }
        Ok(())
    }
}

/// An address as Go's `net.ParseCIDR(ipnet.String())` returns it: an IPv4-mapped IPv6
/// address becomes IPv4, its prefix counted over the last 32 bits of the mask.
fn go_ip(ip: &[u8], prefixlen: u8) -> (IpAddr, u8) {
    match ip.len() {
        4 => (
            IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
            prefixlen.min(32),
        ),
        _ => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&ip[..16]);
            let v6 = Ipv6Addr::from(b);
            match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefixlen.min(128).saturating_sub(96)),
                None => (IpAddr::V6(v6), prefixlen.min(128)),
            }
        }
    }
}

/// Go's `net.IP.String`: dotted IPv4, RFC 5952 IPv6 (which Rust's `Display` also prints; the
/// IPv4-mapped form never reaches it, see `go_ip`).
fn ip_string(ip: &IpAddr) -> String {
    ip.to_string()
}

/// node_exporter's `scope`, with Go's `net.IP` predicates.
fn scope(ip: &IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let loopback = o[0] == 127;
            let link_local_unicast = o[0] == 169 && o[1] == 254;
            let link_local_multicast = o[0] == 224 && o[1] == 0 && o[2] == 0;
            let multicast = o[0] & 0xf0 == 0xe0;
            if loopback || link_local_unicast || link_local_multicast {
                "link-local"
            } else if !v4.is_broadcast() && !v4.is_unspecified() && !multicast {
                "global"
            } else {
                ""
            }
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let loopback = v6.is_loopback();
            let link_local_unicast = o[0] == 0xfe && o[1] & 0xc0 == 0x80;
            let multicast = o[0] == 0xff;
            if loopback || link_local_unicast || (multicast && o[1] & 0x0f == 0x02) {
                "link-local"
            } else if multicast && o[1] & 0x0f == 0x01 {
                "interface-local"
            } else if !v6.is_unspecified() && !multicast {
                "global"
            } else {
                ""
            }
        }
    }
}

/// One `/proc/net/dev` line: the device name and its sixteen counters.
type DeviceLine<'a> = (&'a str, [u64; COLUMNS]);

/// Parses `/proc/net/dev` like procfs' `NetDev`: the two header lines are skipped, and the
/// device name is everything before the last colon (older kernels print no space after it).
fn parse<'a>(path: &Path, text: &'a str) -> Result<Vec<DeviceLine<'a>>, CollectError> {
    let mut devices = Vec::with_capacity(16);
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.rsplit_once(':') else {
            return Err(CollectError::parse(
                path,
                format!("invalid line {line:?}: missing colon"),
            ));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(CollectError::parse(
                path,
                format!("invalid line {line:?}: empty interface name"),
            ));
        }
        let mut values = [0u64; COLUMNS];
        let mut fields = counters.split_ascii_whitespace();
        for (i, v) in values.iter_mut().enumerate() {
            let Some(field) = fields.next() else {
                return Err(CollectError::parse(
                    path,
                    format!("invalid line {line:?}: want {COLUMNS} counters, got {i}"),
                ));
            };
            *v = read::parse_u64(path, field)?;
        }
        devices.push((name, values));
    }
    Ok(devices)
}

impl Collector for Netdev {
    fn name(&self) -> &'static str {
        "netdev"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        let text;
        let mut devices = match &self.netlink {
            Some(dump) => self.netlink_devices(dump)?,
            None => {
                text = self.file.read_string()?;
                parse(self.file.path(), &text)?
                    .into_iter()
                    .filter(|(name, _)| !self.ignored(name))
                    .map(|(name, cols)| {
                        let mut values = [0u64; STATS];
                        values[..COLUMNS].copy_from_slice(&cols);
                        Device {
                            name: Cow::Borrowed(name),
                            values,
                        }
                    })
                    .collect()
            }
        };
        // The kernel lists devices by ifindex; node_exporter's output is sorted by label value.
        devices.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let aliases = match &self.ifalias {
            Some(dir) => Some(self.aliases(dir, &devices)?),
            None => None,
        };
        for (col, (name, help)) in self.families.iter().enumerate() {
            for (i, d) in devices.iter().enumerate() {
                let v = d.values[col] as f64;
                match &aliases {
                    Some(a) => {
                        out.counter(name, help, &[("device", &d.name), ("ifalias", &a[i])], v)
                    }
                    None => out.counter(name, help, &[("device", &d.name)], v),
                }
            }
        }
        if let Some(dump) = &self.addresses {
            self.address_info(dump, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

    fn collector(include: Option<&str>, exclude: Option<&str>) -> Netdev {
        let mut cfg = Config::default();
        for (flag, value) in [
            ("collector.netdev.device-include", include),
            ("collector.netdev.device-exclude", exclude),
        ] {
            if let Some(v) = value {
                cfg.collectors.set_flag(flag, Some(v)).expect("valid flag");
            }
        }
        Netdev::new(&cfg.context("netdev").expect("registered"))
    }

    #[test]
    fn parses_names_with_dots_dashes_and_no_space_after_the_colon() {
        let text = format!(
            "{HEADER}  eth0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\neth0.100: 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nveth-a: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 7\n"
        );
        let got = parse(Path::new("/proc/net/dev"), &text).expect("parse");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, "eth0");
        assert_eq!(got[0].1[0], 1);
        assert_eq!(got[0].1[15], 16);
        assert_eq!(got[1].0, "eth0.100");
        assert_eq!(got[1].1[0], u64::MAX);
        assert_eq!(got[2].0, "veth-a");
        assert_eq!(got[2].1[15], 7);
    }

    #[test]
    fn malformed_lines_are_parse_errors_naming_the_file() {
        let p = Path::new("/proc/net/dev");
        let cases = [
            ("  eth0 1 2 3\n", "missing colon"),
            (
                "   : 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                "empty interface name",
            ),
            ("  eth0: 1 2 3\n", "want 16 counters, got 3"),
            (
                "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -16\n",
                "not an unsigned integer: \"-16\"",
            ),
        ];
        for (line, want) in cases {
            let err = parse(p, &format!("{HEADER}{line}")).expect_err(line);
            assert!(matches!(err, CollectError::Parse { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with("parse /proc/net/dev: "), "{msg}");
            assert!(msg.contains(want), "{msg} should contain {want}");
        }
    }

    #[test]
    fn header_only_file_has_no_devices() {
        let got = parse(Path::new("/proc/net/dev"), HEADER).expect("parse");
        assert!(got.is_empty());
    }

    #[test]
    fn filters_are_unanchored_and_empty_means_none() {
        let c = collector(None, Some("^lo$|veth"));
        assert!(c.ignored("lo"));
        assert!(c.ignored("veth-a"));
        assert!(!c.ignored("eth0"));
        let c = collector(Some("eth"), None);
        assert!(!c.ignored("eth0.100"));
        assert!(c.ignored("lo"));
        let c = collector(None, Some(""));
        assert!(!c.ignored("lo"));
    }

    #[test]
    fn legacy_names_fold_netlink_counters_like_proc_net_dev() {
        let s: [u64; STATS] = std::array::from_fn(|i| 1 << i);
        let v = legacy_values(&s);
        let got: Vec<(&str, u64)> = NETLINK_LEGACY.iter().copied().zip(v).collect();
        assert_eq!(
            got,
            [
                ("receive_packets", 1),
                ("transmit_packets", 2),
                ("receive_bytes", 4),
                ("transmit_bytes", 8),
                ("receive_errs", 16),
                ("transmit_errs", 32),
                ("receive_drop", (1 << 6) + (1 << 15)),
                ("transmit_drop", 1 << 7),
                ("receive_multicast", 1 << 8),
                ("transmit_colls", 1 << 9),
                (
                    "receive_frame",
                    (1 << 13) + (1 << 10) + (1 << 11) + (1 << 12)
                ),
                ("receive_fifo", 1 << 14),
                (
                    "transmit_carrier",
                    (1 << 17) + (1 << 16) + (1 << 19) + (1 << 20)
                ),
                ("transmit_fifo", 1 << 18),
                ("receive_compressed", 1 << 21),
                ("transmit_compressed", 1 << 22),
                ("receive_nohandler", 1 << 23),
            ]
        );
        // Go's uint64 sums wrap.
        let mut s = [0u64; STATS];
        s[6] = u64::MAX;
        s[15] = 2;
        assert_eq!(legacy_values(&s)[6], 1);
    }

    #[test]
    fn addresses_print_and_scope_like_go() {
        let v6 = |s: &str| s.parse::<Ipv6Addr>().expect("ipv6").octets().to_vec();
        let cases: [(Vec<u8>, u8, &str, u8, &str); 9] = [
            (vec![192, 168, 1, 10], 24, "192.168.1.10", 24, "global"),
            (vec![127, 0, 0, 1], 8, "127.0.0.1", 8, "link-local"),
            (vec![169, 254, 3, 4], 16, "169.254.3.4", 16, "link-local"),
            (vec![255, 255, 255, 255], 32, "255.255.255.255", 32, ""),
            (v6("::1"), 128, "::1", 128, "link-local"),
            (v6("fe80::1:2"), 64, "fe80::1:2", 64, "link-local"),
            (
                v6("2001:db8:0:0:1:0:0:1"),
                64,
                "2001:db8::1:0:0:1",
                64,
                "global",
            ),
            (v6("ff01::1"), 128, "ff01::1", 128, "interface-local"),
            // IPv4-mapped: Go prints it as IPv4 with the mask's last 32 bits.
            (v6("::ffff:10.1.2.3"), 120, "10.1.2.3", 24, "global"),
        ];
        for (raw, prefix, want_ip, want_prefix, want_scope) in cases {
            let (ip, p) = go_ip(&raw, prefix);
            assert_eq!(
                (ip_string(&ip).as_str(), p, scope(&ip)),
                (want_ip, want_prefix, want_scope),
                "{raw:?}"
            );
        }
    }

    /// A collector over a fixture `proc/net/dev` and `sys/class/net` with `flags` set.
    fn fixture(flags: &[&str]) -> (tempfile::TempDir, Netdev) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("proc/net")).expect("mkdir");
        std::fs::write(
            dir.path().join("proc/net/dev"),
            format!(
                "{HEADER}  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16
    lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
"
            ),
        )
        .expect("write");
        let eth0 = dir.path().join("sys/class/net/eth0");
        std::fs::create_dir_all(&eth0).expect("mkdir");
        std::fs::write(eth0.join("ifalias"), "uplink \"a\"\n").expect("write");
        let mut cfg = Config::default();
        cfg.paths.procfs = dir.path().join("proc");
        cfg.paths.sysfs = dir.path().join("sys");
        for f in flags {
            cfg.collectors.set_flag(f, None).expect("valid flag");
        }
        let c = Netdev::new(&cfg.context("netdev").expect("registered"));
        (dir, c)
    }

    fn render(c: &Netdev) -> String {
        let mut w = MetricWriter::new();
        c.collect(&mut w).expect("collect");
        w.render_to_string()
    }

    #[test]
    fn a_fixture_procfs_is_read_from_net_dev_with_detailed_names_when_asked() {
        let (_dir, c) = fixture(&[]);
        assert!(c.netlink.is_none(), "a fixture tree is not procfs");
        let text = render(&c);
        assert!(
            text.contains("node_network_receive_errs_total{device=\"eth0\"} 3\n"),
            "{text}"
        );
        assert!(!text.contains("nohandler"), "{text}");
        let (_dir, c) = fixture(&["collector.netdev.enable-detailed-metrics"]);
        let text = render(&c);
        assert!(text.contains("# HELP node_network_receive_errors_total Network device statistic receive_errors.\n"), "{text}");
        assert!(
            text.contains("node_network_transmit_dropped_total{device=\"eth0\"} 12\n"),
            "{text}"
        );
        assert!(
            text.contains("node_network_transmit_colls_total{device=\"eth0\"} 14\n"),
            "{text}"
        );
        assert!(!text.contains("receive_errs"), "{text}");
    }

    #[test]
    fn label_ifalias_reads_sysfs_and_leaves_missing_ones_empty() {
        let (dir, c) = fixture(&["collector.netdev.label-ifalias"]);
        let text = render(&c);
        assert!(
            text.contains("node_network_receive_bytes_total{device=\"eth0\",ifalias=\"uplink \\\"a\\\"\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("node_network_receive_bytes_total{device=\"lo\",ifalias=\"\"} 0\n"),
            "{text}"
        );
        // Without class/net, node_exporter fails ("couldn't get netdev labels").
        std::fs::remove_dir_all(dir.path().join("sys/class")).expect("rm");
        let err = c
            .collect(&mut MetricWriter::new())
            .expect_err("no class/net");
        assert!(err.to_string().contains("class/net"), "{err}");
    }

    #[test]
    fn the_live_procfs_uses_rtnetlink_statistics() {
        let cfg = Config::default();
        let c = Netdev::new(&cfg.context("netdev").expect("registered"));
        assert!(c.netlink.is_some(), "/proc is procfs");
        let text = render(&c);
        assert!(
            text.contains("node_network_receive_nohandler_total{device=\"lo\"} "),
            "{text}"
        );
        assert!(
            text.contains("node_network_receive_drop_total{device=\"lo\"} "),
            "{text}"
        );
        assert!(!text.contains("receive_dropped"), "{text}");
        // --no-collector.netdev.netlink reads /proc/net/dev: the same devices, no nohandler.
        let mut cfg = Config::default();
        cfg.collectors
            .set_flag("collector.netdev.netlink", Some("false"))
            .expect("valid flag");
        let c = Netdev::new(&cfg.context("netdev").expect("registered"));
        assert!(c.netlink.is_none());
        let text = render(&c);
        assert!(
            text.contains("node_network_receive_drop_total{device=\"lo\"} "),
            "{text}"
        );
        assert!(!text.contains("nohandler"), "{text}");
        // Address info: lo's 127.0.0.1/8 when lo is up.
        let mut cfg = Config::default();
        cfg.collectors
            .set_flag("collector.netdev.address-info", None)
            .expect("valid flag");
        let c = Netdev::new(&cfg.context("netdev").expect("registered"));
        let text = render(&c);
        assert!(
            text.contains("# TYPE node_network_address_info gauge\n"),
            "{text}"
        );
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let mut cfg = Config::default();
        cfg.paths.procfs = "/nonexistent-procfs".into();
        let mut w = MetricWriter::new();
        let err = Netdev::new(&cfg.context("netdev").expect("registered"))
            .collect(&mut w)
            .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "read /nonexistent-procfs/net/dev: no such file or directory"
        );
    }
}
