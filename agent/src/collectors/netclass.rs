//! `netclass`: network interface properties from `{sysfs}/class/net/<iface>/*`, as
//! node_exporter 1.12.1's `netclass_linux.go` reports them from procfs' `sysfs.NetClass`
//! (`node_network_info` carries `adminstate`, from IFF_UP of `flags`). On the live `/sys`, 16 of
//! the 22 attributes come from one rtnetlink dump (`rtnetlink.rs`) with the same values;
//! attribute files are kept open across scrapes (`read::KeptFile`). With
//! `--collector.netclass.netlink`, node_exporter's RTNL mode and its own family set instead
//! (see `Rtnl`).

use std::collections::HashMap;
use std::ffi::CStr;
use std::io;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::error::io_reason;
use crate::ethtool::Ethtool;
use crate::filter::DeviceFilter;
use crate::gonum;
use crate::metrics::{MetricType, MetricWriter};
use crate::read::{self, KeptFile};
use crate::rtnetlink::{Link, LinkDump};
use crate::sysfs::{SysfsDir, SYSFS_READ_MAX};

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

/// The attribute files of one interface, kept open across scrapes (`read::KeptFile`): 22
/// attributes × every interface are most of a scrape's file reads, and a pread(2) of a kept
/// sysfs attribute costs a tenth of opening, reading and closing it.
#[derive(Debug)]
struct IfaceFiles {
    /// Identity of the interface the files were set up for: the inode of its `class/net` entry
    /// (sysfs listing) or its ifindex (netlink). kernfs renames that entry in place when the
    /// interface is renamed, so a name whose identity changed is another interface (renamed,
    /// or removed and re-created): its files are set up afresh.
    id: u64,
    text: [KeptFile; 4],
    operstate: KeptFile,
    numeric: [KeptFile; 17],
}

impl IfaceFiles {
    fn new(dir: &Path, id: u64) -> Self {
        let file = |attr: &CStr| KeptFile::new(dir.join(attr.to_string_lossy().as_ref()));
        Self {
            id,
            text: TEXT.map(file),
            operstate: file(c"operstate"),
            numeric: NUMERIC.map(|(attr, ..)| file(attr)),
        }
    }
}

/// Reads `{sysfs}/class/net`.
const IGNORED_DEVICES: Opt = Opt::new(
    "ignored_devices",
    "collector.netclass.ignored-devices",
    Kind::Regex(Some("^$")),
    "Regexp of net devices to ignore for netclass collector.",
);

const IGNORE_INVALID_SPEED: Opt = Opt::new(
    "ignore_invalid_speed",
    "collector.netclass.ignore-invalid-speed",
    Kind::Bool(false),
    "Ignore devices where the speed is invalid. This will be the default behavior in 2.x.",
);

const NETLINK: Opt = Opt::new(
    "netlink",
    "collector.netclass.netlink",
    Kind::Bool(false),
    "Use netlink to gather stats instead of /proc/net/dev.",
);
const RTNL_WITH_STATS: Opt = Opt::new(
    "rtnl_with_stats",
    "collector.netclass_rtnl.with-stats",
    Kind::Bool(false),
    "Expose the statistics for each network device, replacing netdev collector.",
);

/// The `netclass` collector: `/sys/class/net`.
pub const SPEC: Spec = Spec {
    name: "netclass",
    default_enabled: true,
    help: "/sys/class/net",
    options: &[
        IGNORED_DEVICES,
        IGNORE_INVALID_SPEED,
        NETLINK,
        RTNL_WITH_STATS,
    ],
    filters: &[],
    build: |ctx| Box::new(Netclass::new(ctx)),
};

#[derive(Debug)]
pub struct Netclass {
    dir: PathBuf,
    /// `--collector.netclass.ignored-devices` (node_exporter's default `^$` ignores nothing).
    /// Its answers are cached per name (`filter::MatchCache`), so a scrape does not run the
    /// regex over every interface name again.
    exclude: DeviceFilter,
    /// `--collector.netclass.ignore-invalid-speed`: no speed sample for a negative speed.
    ignore_invalid_speed: bool,
    /// Kept attribute files by interface name; interfaces no longer listed are dropped at the
    /// next scrape, closing their files.
    files: Mutex<HashMap<String, IfaceFiles>>,
    /// Set when `{sysfs}` is this host's live `/sys`: interfaces and 16 of their attributes then
    /// come from one rtnetlink dump, and only `SYSFS_ONLY` from sysfs files.
    netlink: Option<LinkDump>,
    /// Set for good when sysfs and netlink disagree on an interface's ifindex (sysfs of another
    /// network namespace): the sysfs listing is used from then on.
    netlink_off: AtomicBool,
    /// Consecutive scrapes in which sysfs lacked an interface of the dump.
    netlink_misses: AtomicU32,
    /// `--collector.netclass.netlink`: node_exporter's RTNL mode (`rtnl` below).
    rtnl: Option<Rtnl>,
}

/// node_exporter's `netClassRTNLUpdate`: interfaces and most attributes from an rtnetlink
/// dump, speed and duplex from ethtool's netlink link modes, and `addr_assign_type`, `dev_id`
/// and `name_assign_type` from sysfs. Its families differ from the sysfs mode's, quirks
/// included: `node_network_info` has no `adminstate` and another HELP text, `dormant` is the
/// link mode, `carrier` is reported for down interfaces, duplex is ethtool's capitalised
/// name (`Full`), an unknown speed (0xffffffff) is reported as 536870911875000 bytes/s, and
/// `node_network_altnames_info` lists alternative names. node_exporter reads the three sysfs
/// attributes under a hard-coded `/sys`; Beacon reads them under `{sysfs}` (so with a sysfs
/// of another network namespace they are simply missing).
#[derive(Debug)]
struct Rtnl {
    links: LinkDump,
    ethtool: Ethtool,
    /// `--collector.netclass_rtnl.with-stats`.
    with_stats: bool,
}

/// The IFLA_STATS64 counters of `--collector.netclass_rtnl.with-stats`, gauges named
/// `node_network_<name>` (node_exporter's names, in `rtnl_link_stats64` order).
const RTNL_STATS: [&str; crate::rtnetlink::STATS] = [
    "receive_packets_total",
    "transmit_packets_total",
    "receive_bytes_total",
    "transmit_bytes_total",
    "receive_errors_total",
    "transmit_errors_total",
    "receive_dropped_total",
    "transmit_dropped_total",
    "multicast_total",
    "collisions_total",
    "receive_length_errors_total",
    "receive_over_errors_total",
    "receive_crc_errors_total",
    "receive_frame_errors_total",
    "receive_fifo_errors_total",
    "receive_missed_errors_total",
    "transmit_aborted_errors_total",
    "transmit_carrier_errors_total",
    "transmit_fifo_errors_total",
    "transmit_heartbeat_errors_total",
    "transmit_window_errors_total",
    "receive_compressed_total",
    "transmit_compressed_total",
    "receive_nohandler_total",
];

/// How sysfs failed to show an interface of the rtnetlink dump.
#[derive(Debug, PartialEq)]
enum Mismatch {
    /// `ifindex` differs: sysfs of another network namespace.
    Foreign,
    /// No such directory: removed since the dump, or another namespace.
    Absent,
}

/// The attributes rtnetlink does not carry, read from sysfs in netlink mode: `TEXT` index of
/// `duplex`, and `NUMERIC` indexes of addr_assign_type, dev_id, flags (sysfs shows
/// `dev->flags`; netlink's `ifi_flags` adds IFF_RUNNING/LOWER_UP/DORMANT and the promiscuity
/// counters' flags differ), name_assign_type and speed.
const DUPLEX: usize = 2;
/// Index of `flags` in `NUMERIC`.
const FLAGS: usize = 7;
const SYSFS_ONLY: [usize; 5] = [0, 5, 7, 12, SPEED];

/// sysfs' `operstate` strings by IF_OPER_* value (linux/net/core/net-sysfs.c).
const OPERSTATES: [&str; 7] = [
    "unknown",
    "notpresent",
    "down",
    "lowerlayerdown",
    "testing",
    "dormant",
    "up",
];

/// Whether `a` and `b` are the same directory (same device and inode): `{sysfs}/class/net`
/// and this process' `/sys/class/net` are the same only when `{sysfs}` shows this network
/// namespace's interfaces, the ones rtnetlink reports.
fn same_dir(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// `sysfs_format_mac`: lower-case hex bytes joined by colons.
fn format_mac(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl Netclass {
    pub fn new(ctx: &Context) -> Self {
        Self {
            dir: ctx.paths.sysfs.join("class/net"),
            exclude: DeviceFilter::new(ctx.regex(&IGNORED_DEVICES), None),
            ignore_invalid_speed: ctx.bool(&IGNORE_INVALID_SPEED),
            files: Mutex::new(HashMap::new()),
            netlink: None,
            netlink_off: AtomicBool::new(false),
            netlink_misses: AtomicU32::new(0),
            rtnl: ctx.bool(&NETLINK).then(|| Rtnl {
                links: if ctx.bool(&RTNL_WITH_STATS) {
                    LinkDump::with_stats()
                } else {
                    LinkDump::new()
                },
                ethtool: Ethtool::new(),
                with_stats: ctx.bool(&RTNL_WITH_STATS),
            }),
        }
        .with_netlink(false)
    }

    /// Enables the rtnetlink source when `force` is set or `{sysfs}` is the live `/sys`.
    fn with_netlink(mut self, force: bool) -> Self {
        if force || same_dir(&self.dir, Path::new("/sys/class/net")) {
            self.netlink = Some(LinkDump::new());
        }
        self
    }

    /// Interfaces from an rtnetlink dump plus the `SYSFS_ONLY` attribute files; `None` when
    /// netlink is off or failed this scrape (the sysfs listing is used instead).
    fn netlink_ifaces(&self) -> Option<Result<Vec<Iface>, CollectError>> {
        let dump = self.netlink.as_ref()?;
        if self.netlink_off.load(Ordering::Relaxed) {
            return None;
        }
        let mut links = match dump.links() {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "rtnetlink link dump failed, reading sysfs");
                return None;
            }
        };
        links.retain(|l| !self.exclude.ignored(&l.name));
        links.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        prune(&mut files, &links, |l| {
            (l.name.as_str(), u64::from(l.index as u32))
        });
        let mut ifaces = Vec::with_capacity(links.len());
        for link in links {
            match self.link_iface(&mut files, link) {
                Ok(Ok(i)) => ifaces.push(i),
                Ok(Err(miss)) => {
                    // An interface missing from sysfs was removed since the dump (this scrape
                    // then uses the sysfs listing) or sysfs shows another namespace; a few
                    // scrapes in a row, or an ifindex mismatch, settle it for good.
                    let misses = self.netlink_misses.fetch_add(1, Ordering::Relaxed) + 1;
                    if miss == Mismatch::Foreign || misses >= 3 {
                        tracing::warn!(
                            sysfs = %self.dir.display(),
                            "sysfs does not show rtnetlink's interfaces; reading sysfs only"
                        );
                        self.netlink_off.store(true, Ordering::Relaxed);
                    }
                    return None;
                }
                Err(e) => return Some(Err(e)),
            }
        }
        self.netlink_misses.store(0, Ordering::Relaxed);
        Some(Ok(ifaces))
    }

    /// One interface from its rtnetlink attributes and `SYSFS_ONLY` files, with node_exporter
    /// 1.5's sysfs semantics; `Ok(Err(_))` when sysfs does not show this interface.
    fn link_iface(
        &self,
        files: &mut HashMap<String, IfaceFiles>,
        link: Link,
    ) -> Result<Result<Iface, Mismatch>, CollectError> {
        let id = u64::from(link.index as u32);
        let f = match files.get(&link.name) {
            Some(f) if f.id == id => f,
            _ => {
                // New interface: check once that sysfs shows this very interface.
                let path = self.dir.join(&link.name).join("ifindex");
                match read::read_string_io(&path) {
                    Ok(s) if s.trim().parse::<i64>().ok() == Some(i64::from(link.index)) => {}
                    Ok(_) => return Ok(Err(Mismatch::Foreign)),
                    Err(e) if is_absent(&e) => return Ok(Err(Mismatch::Absent)),
                    Err(e) => return Err(CollectError::io(&path, e)),
                }
                files.insert(
                    link.name.clone(),
                    IfaceFiles::new(&self.dir.join(&link.name), id),
                );
                &files[&link.name]
            }
        };
        let mut buf = [0u8; SYSFS_READ_MAX];
        let mut read = |file: &KeptFile| read_kept(file, &mut buf);
        let mut numeric = [None; 17];
        for k in SYSFS_ONLY {
            numeric[k] = read(&f.numeric[k])?.map(|s| gonum::parse_int(&s).unwrap_or(0));
        }
        let duplex = read(&f.text[DUPLEX])?.unwrap_or_default();
        // carrier and dormant: sysfs answers EINVAL (no sample) unless the interface is up
        // (netif_running); netlink's IFF_DORMANT is netif_running && netif_dormant.
        let up = link.flags & libc::IFF_UP as u32 != 0;
        numeric[1] = link.carrier.filter(|_| up).map(i64::from);
        numeric[2] = link.carrier_changes.map(i64::from);
        numeric[3] = link.carrier_up.map(i64::from);
        numeric[4] = link.carrier_down.map(i64::from);
        numeric[6] = up.then(|| i64::from(link.flags & libc::IFF_DORMANT as u32 != 0));
        numeric[8] = Some(i64::from(link.index));
        // IFLA_LINK is sent only when it differs from the ifindex; sysfs shows the ifindex then.
        numeric[9] = Some(i64::from(link.link.unwrap_or(link.index)));
        numeric[10] = link.linkmode.map(i64::from);
        numeric[11] = link.mtu.map(i64::from);
        numeric[13] = link.group.map(i64::from);
        numeric[15] = link.txqlen.map(i64::from);
        numeric[16] = Some(i64::from(link.kind));
        let operstate = link
            .operstate
            .and_then(|s| OPERSTATES.get(usize::from(s)))
            .map_or_else(String::new, |s| (*s).to_owned());
        Ok(Ok(Iface {
            text: [
                link.address.as_deref().map(format_mac).unwrap_or_default(),
                link.broadcast
                    .as_deref()
                    .map(format_mac)
                    .unwrap_or_default(),
                duplex,
                link.ifalias.unwrap_or_default(),
            ],
            name: link.name,
            operstate,
            numeric,
        }))
    }

    /// Interfaces from the `class/net` listing, every attribute from its sysfs file.
    fn sysfs_ifaces(&self) -> Result<Vec<Iface>, CollectError> {
        let devices = self.devices()?;
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        prune(&mut files, &devices, |(n, ino)| (n.as_str(), *ino));
        devices
            .into_iter()
            .map(|(name, ino)| self.iface(&mut files, name, ino))
            .collect()
    }

    /// Interface names and entry inodes: every entry of `class/net` but regular files
    /// (`bonding_masters`).
    fn devices(&self) -> Result<Vec<(String, u64)>, CollectError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            // node_exporter returns ErrNoData when the directory is missing or unreadable.
            Err(e) if is_absent(&e) => {
                return Err(CollectError::NoData(format!(
                    "read {}: {}",
                    self.dir.display(),
                    crate::error::io_reason(&e)
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
            if self.exclude.ignored(&name) {
                continue;
            }
            names.push((name, entry.ino()));
        }
        names.sort_unstable();
        Ok(names)
    }

    /// Reads one interface's attributes through its kept files (set up when the interface is
    /// new). Only the files node_exporter exports are read; a file the kernel refuses to
    /// produce is left out, any other read error fails the scrape as it does in procfs.
    fn iface(
        &self,
        files: &mut HashMap<String, IfaceFiles>,
        name: String,
        ino: u64,
    ) -> Result<Iface, CollectError> {
        let f = match files.get(&name) {
            Some(f) if f.id == ino => f,
            _ => {
                let path = self.dir.join(&name);
                // procfs lists the interface directory first; node_exporter turns its absence
                // (an interface removed during the scrape, a dangling link) into ErrNoData.
                // Checked when the interface is new: later, a vanished interface's kept files
                // fail and are reopened, which fails as absent, and the listing drops it.
                match SysfsDir::open(&path) {
                    Ok(_) => {}
                    Err(e) if is_absent(&e) => {
                        return Err(CollectError::NoData(format!(
                            "read {}: {}",
                            path.display(),
                            crate::error::io_reason(&e)
                        )))
                    }
                    Err(e) => return Err(CollectError::io(&path, e)),
                }
                files.insert(name.clone(), IfaceFiles::new(&path, ino));
                &files[&name]
            }
        };
        let mut buf = [0u8; SYSFS_READ_MAX];
        let mut read = |file: &KeptFile| read_kept(file, &mut buf);
        let mut text: [String; 4] = Default::default();
        for (value, file) in text.iter_mut().zip(&f.text) {
            *value = read(file)?.unwrap_or_default();
        }
        let operstate = read(&f.operstate)?.unwrap_or_default();
        let mut numeric = [None; 17];
        for (value, file) in numeric.iter_mut().zip(&f.numeric) {
            // procfs' ValueParser yields 0 for a value it cannot parse.
            *value = read(file)?.map(|s| gonum::parse_int(&s).unwrap_or(0));
        }
        Ok(Iface {
            name,
            text,
            operstate,
            numeric,
        })
    }
}

/// Drops the kept files of interfaces that `current` (sorted by name, names unique) no longer
/// lists with the same identity. One binary search per kept interface: O(n log n) per scrape.
/// A linear scan of `current` per kept interface was O(n²), about 23 ms of a scrape at 4,096
/// interfaces.
fn prune<T>(
    files: &mut HashMap<String, IfaceFiles>,
    current: &[T],
    key: impl Fn(&T) -> (&str, u64),
) {
    files.retain(|name, f| {
        current
            .binary_search_by(|t| key(t).0.cmp(name))
            .is_ok_and(|i| key(&current[i]).1 == f.id)
    });
}

/// node_exporter 1.12's `adminstate` label: IFF_UP of the sysfs `flags` attribute, `unknown`
/// when the attribute could not be read.
fn admin_state(i: &Iface) -> &'static str {
    match i.numeric[FLAGS] {
        None => "unknown",
        Some(f) if f & libc::IFF_UP as i64 != 0 => "up",
        Some(_) => "down",
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

/// One read of a kept attribute, trimmed; `None` when the interface does not support it.
fn read_kept(
    file: &KeptFile,
    buf: &mut [u8; SYSFS_READ_MAX],
) -> Result<Option<String>, CollectError> {
    match file.read_once(buf) {
        Ok(n) => Ok(Some(String::from_utf8_lossy(&buf[..n]).trim().to_owned())),
        Err(e) if is_unavailable(&e) => Ok(None),
        Err(e) => Err(CollectError::io(file.path(), e)),
    }
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

impl Netclass {
    /// node_exporter's RTNL mode (see `Rtnl`).
    fn collect_rtnl(&self, r: &Rtnl, out: &mut MetricWriter) -> Result<(), CollectError> {
        let ignored = |name: &str| self.exclude.ignored(name);
        let mut modes = match r.ethtool.link_modes() {
            Ok(Some(m)) => m,
            Ok(None) => {
                tracing::debug!(
                    "ETHTOOL netlink interface unavailable, duplex and linkspeed are not scraped."
                );
                Vec::new()
            }
            Err(e) => {
                return Err(CollectError::Other(format!(
                    "could not get link modes: {}",
                    io_reason(&e)
                )))
            }
        };
        modes.retain(|m| !ignored(&m.name));
        modes.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for m in &modes {
            // mdlayher/ethtool converts the u32 to a Go int, so SPEED_UNKNOWN stays positive.
            let bytes = u64::from(m.speed) * 1_000_000 / 8;
            out.gauge(
                "node_network_speed_bytes",
                "Network device property: speed_bytes",
                &[("device", &m.name)],
                bytes as f64,
            );
        }
        let mut links = r.links.links().map_err(|e| {
            CollectError::Other(format!("could not get net class info: {}", io_reason(&e)))
        })?;
        links.retain(|l| !ignored(&l.name));
        links.sort_unstable_by(|a, b| a.name.cmp(&b.name));

        // addr_assign_type, dev_id and name_assign_type: sysfs, through kept files.
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        prune(&mut files, &links, |l| {
            (l.name.as_str(), u64::from(l.index as u32))
        });
        let mut buf = [0u8; SYSFS_READ_MAX];
        let mut info: Vec<[String; 6]> = Vec::with_capacity(links.len());
        let mut altnames: Vec<(&str, &str)> = Vec::new();
        for l in &links {
            let id = u64::from(l.index as u32);
            let f = files
                .entry(l.name.clone())
                .or_insert_with(|| IfaceFiles::new(&self.dir.join(&l.name), id));
            let mut sysfs = [None; 3];
            for (v, k) in sysfs.iter_mut().zip([0, 5, 12]) {
                *v = read_kept(&f.numeric[k], &mut buf)
                    .map_err(|e| {
                        CollectError::Other(format!("could not get sysfs device info: {e}"))
                    })?
                    .map(|s| gonum::parse_int(&s).unwrap_or(0));
            }
            let device = [("device", l.name.as_str())];
            let operstate = l.operstate.unwrap_or(0);
            out.gauge(
                "node_network_up",
                "Value is 1 if operstate is 'up', 0 otherwise.",
                &device,
                if operstate == 6 { 1.0 } else { 0.0 },
            );
            info.push([
                l.address.as_deref().map(format_mac).unwrap_or_default(),
                l.broadcast.as_deref().map(format_mac).unwrap_or_default(),
                l.name.clone(),
                modes
                    .binary_search_by(|m| m.name.as_str().cmp(&l.name))
                    .map(|i| modes[i].duplex_string())
                    .unwrap_or_default(),
                l.ifalias.clone().unwrap_or_default(),
                OPERSTATES
                    .get(usize::from(operstate))
                    .map_or_else(String::new, |s| (*s).to_owned()),
            ]);
            altnames.extend(
                l.altnames
                    .iter()
                    .filter(|a| !a.is_empty())
                    .map(|a| (a.as_str(), l.name.as_str())),
            );
            let iface_link = match l.link {
                Some(t) if t as u32 > 0 => t as u32,
                _ => l.index as u32,
            };
            let gauges: [(&str, Option<f64>); 13] = [
                ("address_assign_type", sysfs[0].map(|v| v as f64)),
                ("carrier", l.carrier.map(f64::from)),
                ("device_id", sysfs[1].map(|v| v as f64)),
                ("flags", Some(f64::from(l.flags))),
                ("iface_id", Some(f64::from(l.index as u32))),
                ("iface_link_mode", l.linkmode.map(f64::from)),
                // node_exporter reports the link mode as `dormant` in this mode.
                ("dormant", l.linkmode.map(f64::from)),
                ("iface_link", Some(f64::from(iface_link))),
                ("mtu_bytes", Some(f64::from(l.mtu.unwrap_or(0)))),
                ("name_assign_type", sysfs[2].map(|v| v as f64)),
                ("net_dev_group", l.group.map(f64::from)),
                ("transmit_queue_length", l.txqlen.map(f64::from)),
                ("protocol_type", Some(f64::from(l.kind))),
            ];
            for (name, v) in gauges {
                if let Some(v) = v {
                    out.gauge(
                        &format!("node_network_{name}"),
                        &format!("Network device property: {name}"),
                        &device,
                        v,
                    );
                }
            }
            for (name, v) in [
                ("carrier_changes_total", l.carrier_changes),
                ("carrier_up_changes_total", l.carrier_up),
                ("carrier_down_changes_total", l.carrier_down),
            ] {
                if let Some(v) = v {
                    out.counter(
                        &format!("node_network_{name}"),
                        &format!("Network device property: {name}"),
                        &device,
                        f64::from(v),
                    );
                }
            }
            if let (true, true, Some(stats)) = (r.with_stats, l.stats64, &l.stats) {
                for (name, v) in RTNL_STATS.iter().zip(stats) {
                    out.gauge(
                        &format!("node_network_{name}"),
                        &format!("Network device property: {name}"),
                        &device,
                        *v as f64,
                    );
                }
            }
        }
        drop(files);
        info.sort();
        for [address, broadcast, device, duplex, ifalias, operstate] in &info {
            out.gauge(
                "node_network_info",
                "Non-numeric data of <iface>, value is always 1.",
                &[
                    ("address", address),
                    ("broadcast", broadcast),
                    ("device", device),
                    ("duplex", duplex),
                    ("ifalias", ifalias),
                    ("operstate", operstate),
                ],
                1.0,
            );
        }
        altnames.sort_unstable();
        for (altname, device) in altnames {
            out.gauge(
                "node_network_altnames_info",
                "Non-numeric data of <iface> altname, value is always 1.",
                &[("altname", altname), ("device", device)],
                1.0,
            );
        }
        Ok(())
    }
}

impl Collector for Netclass {
    fn name(&self) -> &'static str {
        "netclass"
    }

    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError> {
        if let Some(r) = &self.rtnl {
            return self.collect_rtnl(r, out);
        }
        // Read everything first: like node_exporter, a hard read error reports nothing.
        let ifaces = match self.netlink_ifaces() {
            Some(res) => res?,
            None => self.sysfs_ifaces()?,
        };

        for i in &ifaces {
            out.gauge(
                "node_network_up",
                "Value is 1 if operstate is 'up', 0 otherwise.",
                &[("device", &i.name)],
                if i.operstate == "up" { 1.0 } else { 0.0 },
            );
        }
        // node_exporter's output is sorted by label values in label-name order: address,
        // adminstate, broadcast, device.
        let mut info: Vec<(&Iface, &str)> = ifaces.iter().map(|i| (i, admin_state(i))).collect();
        info.sort_by(|(a, sa), (b, sb)| {
            (&a.text[0], sa, &a.text[1], &a.name).cmp(&(&b.text[0], sb, &b.text[1], &b.name))
        });
        for (i, adminstate) in info {
            let [address, broadcast, duplex, ifalias] = &i.text;
            out.gauge(
                "node_network_info",
                "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
                &[
                    ("address", address),
                    ("adminstate", adminstate),
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
                    // Some devices report -1 for an unknown speed: node_exporter leaves it out
                    // only with `--collector.netclass.ignore-invalid-speed`.
                    if v < 0 && self.ignore_invalid_speed {
                        continue;
                    }
                    // Mbit/s to bytes/s in int64 as node_exporter does, so the unknown speed
                    // -1 becomes -125000.
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
    use crate::Config;

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
        if let Some(re) = exclude {
            cfg.collectors
                .set_flag("collector.netclass.ignored-devices", Some(re))
                .expect("valid flag");
        }
        let mut w = MetricWriter::new();
        let res = Netclass::new(&cfg.context("netclass").expect("registered")).collect(&mut w);
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
    fn adminstate_follows_iff_up_and_invalid_speed_can_be_ignored() {
        let dir = tree();
        let net = dir.path().join("class/net");
        std::fs::write(net.join("a0/flags"), "0x1003\n").expect("write");
        std::fs::write(net.join("b0/flags"), "0x1002\n").expect("write");
        std::fs::create_dir_all(net.join("c0")).expect("mkdir");
        let (res, text) = collect(dir.path(), None);
        res.expect("collect");
        for (dev, state) in [("a0", "up"), ("b0", "down"), ("c0", "unknown")] {
            let want = format!("adminstate=\"{state}\",broadcast=\"\",device=\"{dev}\"");
            assert!(text.contains(&want), "{want} in {text}");
        }
        let mut cfg = Config::default();
        cfg.paths.sysfs = dir.path().to_owned();
        cfg.collectors
            .set_flag("collector.netclass.ignore-invalid-speed", None)
            .expect("valid flag");
        let mut w = MetricWriter::new();
        Netclass::new(&cfg.context("netclass").expect("registered"))
            .collect(&mut w)
            .expect("collect");
        let text = w.render_to_string();
        assert!(!text.contains("node_network_speed_bytes"), "{text}");
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

    /// Renders one collection of `c`.
    fn render(c: &Netclass) -> String {
        let mut w = MetricWriter::new();
        c.collect(&mut w).expect("collect");
        w.render_to_string()
    }

    #[test]
    fn netlink_and_sysfs_sources_agree_on_this_host() {
        let mut cfg = Config::default();
        cfg.paths.sysfs = "/sys".into();
        let netlink = Netclass::new(&cfg.context("netclass").expect("registered"));
        assert!(netlink.netlink.is_some(), "the live /sys enables netlink");
        let mut sysfs = Netclass::new(&cfg.context("netclass").expect("registered"));
        sysfs.netlink = None;
        // Counters such as carrier_changes could move between the two reads: retry a little.
        let mut last = (String::new(), String::new());
        for _ in 0..3 {
            last = (render(&netlink), render(&sysfs));
            if last.0 == last.1 {
                break;
            }
        }
        assert_eq!(last.0, last.1, "netlink (left) vs sysfs (right)");
        assert!(
            last.0.contains("node_network_iface_id{device=\"lo\"} 1\n"),
            "{}",
            last.0
        );
        assert!(!netlink.netlink_off.load(Ordering::Relaxed));
        // The second netlink scrape reads through the kept files.
        assert_eq!(render(&netlink), render(&sysfs));
        let files = netlink.files.lock().expect("lock");
        assert!(files["lo"].numeric[7].is_kept(), "flags kept open");
        assert!(!files["lo"].numeric[11].is_kept(), "mtu comes from netlink");
    }

    #[test]
    fn fixture_trees_use_sysfs_and_a_foreign_sysfs_turns_netlink_off() {
        let dir = tree();
        let mut cfg = Config::default();
        cfg.paths.sysfs = dir.path().to_owned();
        assert!(Netclass::new(&cfg.context("netclass").expect("registered"))
            .netlink
            .is_none());
        // Forced on, netlink reports this host's `lo`, which the fixture does not show with
        // ifindex 1: the collector falls back to the fixture's listing for good.
        let lo = dir.path().join("class/net/lo");
        std::fs::create_dir_all(&lo).expect("mkdir");
        std::fs::write(lo.join("ifindex"), "99\n").expect("write");
        // Only `lo` of this host's interfaces is looked at.
        cfg.collectors
            .set_flag("collector.netclass.ignored-devices", Some("^[^l]|^l[^o]"))
            .expect("valid flag");
        let want = render(&Netclass::new(
            &cfg.context("netclass").expect("registered"),
        ));
        let forced =
            Netclass::new(&cfg.context("netclass").expect("registered")).with_netlink(true);
        let got = render(&forced);
        assert!(forced.netlink_off.load(Ordering::Relaxed));
        assert!(
            got.contains("node_network_iface_id{device=\"lo\"} 99\n"),
            "{got}"
        );
        assert_eq!(got, want);
        // Without `lo` in the fixture, the dump's interfaces are absent from sysfs: each scrape
        // uses the listing, and after three such scrapes netlink is off for good.
        std::fs::remove_dir_all(&lo).expect("rmdir");
        let want = render(&Netclass::new(
            &cfg.context("netclass").expect("registered"),
        ));
        let forced =
            Netclass::new(&cfg.context("netclass").expect("registered")).with_netlink(true);
        for _ in 0..3 {
            assert!(!forced.netlink_off.load(Ordering::Relaxed));
            assert_eq!(render(&forced), want);
        }
        assert!(forced.netlink_off.load(Ordering::Relaxed));
    }

    #[test]
    fn pruning_kept_files_is_n_log_n_in_the_number_of_interfaces() {
        use std::cell::Cell;
        // 4,096 kept interfaces; the current listing drops every 4th and re-creates every 5th
        // with another identity. Work is counted as calls of the key function, each of which
        // is one name comparison: quadratic pruning would make about n²/2 = 8.4 million.
        let n: u64 = 4096;
        let names: Vec<String> = (0..n).map(|i| format!("veth{i:05}")).collect();
        let mut files: HashMap<String, IfaceFiles> = names
            .iter()
            .zip(0..)
            .map(|(name, id)| (name.clone(), IfaceFiles::new(Path::new("/nonexistent"), id)))
            .collect();
        let current: Vec<(String, u64)> = names
            .iter()
            .zip(0..)
            .filter(|(_, id)| id % 4 != 3)
            .map(|(name, id)| (name.clone(), if id % 5 == 4 { id + n } else { id }))
            .collect();
        let calls = Cell::new(0u64);
        prune(&mut files, &current, |(name, id)| {
            calls.set(calls.get() + 1);
            (name.as_str(), *id)
        });
        let mut kept: Vec<u64> = files.values().map(|f| f.id).collect();
        kept.sort_unstable();
        let want: Vec<u64> = (0..n).filter(|id| id % 4 != 3 && id % 5 != 4).collect();
        assert_eq!(kept, want);
        // log2(4096) = 12: at most 13 comparisons per binary search plus one identity check.
        let bound = n * 14;
        assert!(
            calls.get() <= bound,
            "{} key calls, bound {bound}",
            calls.get()
        );
    }

    #[test]
    fn rtnl_mode_reports_node_exporters_netlink_families() {
        let mut cfg = Config::default();
        for f in [
            "collector.netclass.netlink",
            "collector.netclass_rtnl.with-stats",
        ] {
            cfg.collectors.set_flag(f, None).expect("valid flag");
        }
        let c = Netclass::new(&cfg.context("netclass").expect("registered"));
        assert!(c.rtnl.is_some());
        let text = render(&c);
        assert!(
            text.contains(
                "# HELP node_network_info Non-numeric data of <iface>, value is always 1.\n"
            ),
            "{text}"
        );
        assert!(!text.contains("adminstate"), "{text}");
        assert!(
            text.contains("node_network_iface_id{device=\"lo\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("node_network_iface_link{device=\"lo\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("node_network_protocol_type{device=\"lo\"} 772\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE node_network_receive_packets_total gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE node_network_carrier_changes_total counter\n"),
            "{text}"
        );
        // Every sample of a family is sorted by device.
        let devices: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("node_network_mtu_bytes{device=\""))
            .map(|l| &l[..l.find('"').expect("quote")])
            .collect();
        let mut sorted = devices.clone();
        sorted.sort_unstable();
        assert_eq!(devices, sorted);
    }

    #[test]
    fn mac_addresses_are_formatted_like_sysfs() {
        assert_eq!(
            format_mac(&[0x02, 0xfc, 0, 0, 0, 0x0a]),
            "02:fc:00:00:00:0a"
        );
        assert_eq!(format_mac(&[]), "");
    }

    #[test]
    fn missing_class_net_is_no_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (res, _) = collect(dir.path(), None);
        assert!(res.expect_err("no class/net").is_no_data());
    }
}
