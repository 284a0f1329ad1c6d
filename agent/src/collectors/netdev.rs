//! `netdev`: per-interface traffic counters from `/proc/net/dev`, as node_exporter 1.5 reports
//! them with `--no-collector.netdev.netlink` (its procfs path).
//!
//! node_exporter 1.5 maps the sixteen `/proc/net/dev` columns to
//! `node_network_{receive,transmit}_<column>_total{device}` counters, named after the kernel's
//! header (`errs`, `drop`, `colls`, ...). Two options that are off by default are not
//! implemented: `--collector.netdev.address-info` and `--collector.netdev.enable-detailed-metrics`
//! (which renames `errs`/`drop` to `errors`/`dropped`).

use std::path::Path;

use crate::collector::{CollectError, Collector, Context, Kind, Opt, Spec};
use crate::filter::DeviceFilter;
use crate::metrics::MetricWriter;
use crate::read;

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

/// The `netdev` collector: `/proc/net/dev`.
pub const SPEC: Spec = Spec {
    name: "netdev",
    default_enabled: true,
    help: "/proc/net/dev",
    options: &[DEVICE_INCLUDE, DEVICE_EXCLUDE],
    filters: &[("device_exclude", "device_include")],
    build: |ctx| Box::new(Netdev::new(ctx)),
};

/// Number of counter columns per `/proc/net/dev` line (8 receive, then 8 transmit).
const COLUMNS: usize = 16;

/// Family name and HELP text of each column, in `/proc/net/dev` order.
const FAMILIES: [(&str, &str); COLUMNS] = [
    (
        "node_network_receive_bytes_total",
        "Network device statistic receive_bytes.",
    ),
    (
        "node_network_receive_packets_total",
        "Network device statistic receive_packets.",
    ),
    (
        "node_network_receive_errs_total",
        "Network device statistic receive_errs.",
    ),
    (
        "node_network_receive_drop_total",
        "Network device statistic receive_drop.",
    ),
    (
        "node_network_receive_fifo_total",
        "Network device statistic receive_fifo.",
    ),
    (
        "node_network_receive_frame_total",
        "Network device statistic receive_frame.",
    ),
    (
        "node_network_receive_compressed_total",
        "Network device statistic receive_compressed.",
    ),
    (
        "node_network_receive_multicast_total",
        "Network device statistic receive_multicast.",
    ),
    (
        "node_network_transmit_bytes_total",
        "Network device statistic transmit_bytes.",
    ),
    (
        "node_network_transmit_packets_total",
        "Network device statistic transmit_packets.",
    ),
    (
        "node_network_transmit_errs_total",
        "Network device statistic transmit_errs.",
    ),
    (
        "node_network_transmit_drop_total",
        "Network device statistic transmit_drop.",
    ),
    (
        "node_network_transmit_fifo_total",
        "Network device statistic transmit_fifo.",
    ),
    (
        "node_network_transmit_colls_total",
        "Network device statistic transmit_colls.",
    ),
    (
        "node_network_transmit_carrier_total",
        "Network device statistic transmit_carrier.",
    ),
    (
        "node_network_transmit_compressed_total",
        "Network device statistic transmit_compressed.",
    ),
];

/// Reads `{procfs}/net/dev` and filters devices by name.
#[derive(Debug)]
pub struct Netdev {
    file: read::KeptFile,
    /// `--collector.netdev.device-exclude` / `device-include`.
    filter: DeviceFilter,
}

impl Netdev {
    pub fn new(ctx: &Context) -> Self {
        Self {
            file: read::KeptFile::new(ctx.paths.procfs.join("net/dev")),
            filter: ctx.filter(&DEVICE_EXCLUDE, &DEVICE_INCLUDE),
        }
    }

    /// node_exporter's `deviceFilter.ignored`: unanchored matches, as Go's `MatchString`.
    fn ignored(&self, device: &str) -> bool {
        self.filter.ignored(device)
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
        let text = self.file.read_string()?;
        let mut devices = parse(self.file.path(), &text)?;
        devices.retain(|(name, _)| !self.ignored(name));
        // The kernel lists devices by ifindex; node_exporter's output is sorted by label value.
        devices.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (col, (name, help)) in FAMILIES.iter().enumerate() {
            for (device, values) in &devices {
                out.counter(name, help, &[("device", device)], values[col] as f64);
            }
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
