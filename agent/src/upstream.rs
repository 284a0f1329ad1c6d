//! What node_exporter 1.12.1 has on Linux that beacon-agent does not implement yet: its
//! collector names (with whether it enables each by default) and the option flags of the
//! collectors beacon-agent lacks. The command line accepts all of them, so manifests written
//! for node_exporter keep working while coverage grows; asking for a missing collector is one
//! warning at start, never an error. Implementing a collector moves its option flags from
//! `OPTION_FLAGS` into its `Spec` (a test checks the two never overlap and that every
//! implemented collector is in `COLLECTORS` with node_exporter's default).
//!
//! Source: prometheus/node_exporter v1.12.1, `collector/*.go` (the `registerCollector` and
//! `kingpin.Flag` calls of the files built on Linux).

/// A collector node_exporter registers on Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamCollector {
    pub name: &'static str,
    /// node_exporter's `defaultEnabled`.
    pub default_enabled: bool,
}

/// How a node_exporter option flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--x` / `--no-x` (or `--x=false`).
    Bool,
    /// `--x=VALUE`.
    Value,
    /// `--x=VALUE`, repeatable.
    Repeated,
}

/// Every collector node_exporter 1.12.1 registers on Linux, by name.
const COLLECTORS: &[(&str, bool)] = &[
    ("arp", true),
    ("bcache", true),
    ("bcachefs", true),
    ("bonding", true),
    ("btrfs", true),
    ("buddyinfo", false),
    ("cgroups", false),
    ("conntrack", true),
    ("cpu", true),
    ("cpu_vulnerabilities", false),
    ("cpufreq", true),
    ("diskstats", true),
    ("dmi", true),
    ("dmmultipath", true),
    ("drbd", false),
    ("drm", false),
    ("edac", true),
    ("entropy", true),
    ("ethtool", false),
    ("fibrechannel", true),
    ("filefd", true),
    ("filesystem", true),
    ("hwmon", true),
    ("infiniband", true),
    ("interrupts", false),
    ("ipvs", true),
    ("kernel_hung", true),
    ("ksmd", false),
    ("lnstat", false),
    ("loadavg", true),
    ("logind", false),
    ("mdadm", true),
    ("meminfo", true),
    ("meminfo_numa", false),
    ("mountstats", false),
    ("netclass", true),
    ("netdev", true),
    ("netstat", true),
    ("network_route", false),
    ("nfs", true),
    ("nfsd", true),
    ("ntp", false),
    ("nvme", true),
    ("nvmesubsystem", false),
    ("os", true),
    ("pcidevice", false),
    ("perf", false),
    ("powersupplyclass", true),
    ("pressure", true),
    ("processes", false),
    ("qdisc", false),
    ("rapl", true),
    ("runit", false),
    ("schedstat", true),
    ("selinux", true),
    ("slabinfo", false),
    ("sockstat", true),
    ("softirqs", false),
    ("softnet", true),
    ("stat", true),
    ("supervisord", false),
    ("swap", false),
    ("sysctl", false),
    ("systemd", false),
    ("tapestats", true),
    ("tcpstat", false),
    ("textfile", true),
    ("thermal_zone", true),
    ("time", true),
    ("timex", true),
    ("udp_queues", true),
    ("uname", true),
    ("vmstat", true),
    ("watchdog", true),
    ("wifi", false),
    ("xfrm", false),
    ("xfs", true),
    ("zfs", true),
    ("zoneinfo", false),
];

/// node_exporter option flags that beacon-agent does not implement yet (most belong to
/// collectors it lacks; a few are options of collectors it has): (flag without `--`,
/// collector, kind). Accepted and ignored, with a warning at start.
pub const OPTION_FLAGS: &[(&str, &str, FlagKind)] = &[
    ("collector.arp.device-include", "arp", FlagKind::Value),
    ("collector.arp.device-exclude", "arp", FlagKind::Value),
    ("collector.arp.netlink", "arp", FlagKind::Bool),
    ("collector.bcache.priorityStats", "bcache", FlagKind::Bool),
    (
        "collector.ethtool.device-include",
        "ethtool",
        FlagKind::Value,
    ),
    (
        "collector.ethtool.device-exclude",
        "ethtool",
        FlagKind::Value,
    ),
    (
        "collector.ethtool.metrics-include",
        "ethtool",
        FlagKind::Value,
    ),
    (
        "collector.infiniband.device-include",
        "infiniband",
        FlagKind::Value,
    ),
    (
        "collector.infiniband.device-exclude",
        "infiniband",
        FlagKind::Value,
    ),
    (
        "collector.interrupts.name-include",
        "interrupts",
        FlagKind::Value,
    ),
    (
        "collector.interrupts.name-exclude",
        "interrupts",
        FlagKind::Value,
    ),
    (
        "collector.interrupts.include-zeros",
        "interrupts",
        FlagKind::Bool,
    ),
    ("collector.ipvs.backend-labels", "ipvs", FlagKind::Value),
    ("collector.netstat.fields", "netstat", FlagKind::Value),
    ("collector.ntp.server", "ntp", FlagKind::Value),
    ("collector.ntp.server-port", "ntp", FlagKind::Value),
    ("collector.ntp.protocol-version", "ntp", FlagKind::Value),
    ("collector.ntp.server-is-local", "ntp", FlagKind::Bool),
    ("collector.ntp.ip-ttl", "ntp", FlagKind::Value),
    ("collector.ntp.max-distance", "ntp", FlagKind::Value),
    (
        "collector.ntp.local-offset-tolerance",
        "ntp",
        FlagKind::Value,
    ),
    ("collector.pcidevice.idsfile", "pcidevice", FlagKind::Value),
    ("collector.pcidevice.names", "pcidevice", FlagKind::Bool),
    ("collector.perf.cpus", "perf", FlagKind::Value),
    ("collector.perf.tracepoint", "perf", FlagKind::Repeated),
    (
        "collector.perf.disable-hardware-profilers",
        "perf",
        FlagKind::Bool,
    ),
    (
        "collector.perf.hardware-profilers",
        "perf",
        FlagKind::Repeated,
    ),
    (
        "collector.perf.disable-software-profilers",
        "perf",
        FlagKind::Bool,
    ),
    (
        "collector.perf.software-profilers",
        "perf",
        FlagKind::Repeated,
    ),
    (
        "collector.perf.disable-cache-profilers",
        "perf",
        FlagKind::Bool,
    ),
    ("collector.perf.cache-profilers", "perf", FlagKind::Repeated),
    (
        "collector.powersupply.ignored-supplies",
        "powersupplyclass",
        FlagKind::Value,
    ),
    ("collector.qdisc.fixtures", "qdisc", FlagKind::Value),
    ("collector.qdisc.device-include", "qdisc", FlagKind::Value),
    ("collector.qdisk.device-include", "qdisc", FlagKind::Value),
    ("collector.qdisc.device-exclude", "qdisc", FlagKind::Value),
    ("collector.qdisk.device-exclude", "qdisc", FlagKind::Value),
    ("collector.rapl.enable-zone-label", "rapl", FlagKind::Bool),
    ("collector.runit.servicedir", "runit", FlagKind::Value),
    (
        "collector.slabinfo.slabs-include",
        "slabinfo",
        FlagKind::Value,
    ),
    (
        "collector.slabinfo.slabs-exclude",
        "slabinfo",
        FlagKind::Value,
    ),
    ("collector.supervisord.url", "supervisord", FlagKind::Value),
    ("collector.sysctl.include", "sysctl", FlagKind::Repeated),
    (
        "collector.sysctl.include-info",
        "sysctl",
        FlagKind::Repeated,
    ),
    ("collector.systemd.unit-include", "systemd", FlagKind::Value),
    (
        "collector.systemd.unit-whitelist",
        "systemd",
        FlagKind::Value,
    ),
    ("collector.systemd.unit-exclude", "systemd", FlagKind::Value),
    (
        "collector.systemd.unit-blacklist",
        "systemd",
        FlagKind::Value,
    ),
    ("collector.systemd.private", "systemd", FlagKind::Bool),
    (
        "collector.systemd.enable-task-metrics",
        "systemd",
        FlagKind::Bool,
    ),
    (
        "collector.systemd.enable-restarts-metrics",
        "systemd",
        FlagKind::Bool,
    ),
    (
        "collector.systemd.enable-start-time-metrics",
        "systemd",
        FlagKind::Bool,
    ),
    (
        "collector.tapestats.ignored-devices",
        "tapestats",
        FlagKind::Value,
    ),
    ("collector.wifi.fixtures", "wifi", FlagKind::Value),
];

/// Every node_exporter collector name, in alphabetical order.
pub fn collectors() -> impl Iterator<Item = UpstreamCollector> {
    COLLECTORS
        .iter()
        .map(|&(name, default_enabled)| UpstreamCollector {
            name,
            default_enabled,
        })
}

/// The node_exporter collector called `name`.
pub fn collector(name: &str) -> Option<UpstreamCollector> {
    collectors().find(|c| c.name == name)
}

/// The collector that owns node_exporter option flag `flag` (without `--`), among those
/// beacon-agent does not implement.
pub fn option_owner(flag: &str) -> Option<&'static str> {
    OPTION_FLAGS
        .iter()
        .find(|(f, _, _)| *f == flag)
        .map(|(_, owner, _)| *owner)
}
