//! The collector contract and the registry of collectors.
//!
//! A collector reads files under the configured roots (or makes one read-only system call) and
//! appends samples to a `MetricWriter`. It does no network I/O, never retries and never sleeps;
//! the scrape loop in `scrape.rs` times it and records `node_scrape_collector_*`.
//! Adding a collector touches its own file and one line in `build` below.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::metrics::MetricWriter;

pub mod conntrack;
pub mod cpu;
pub mod diskstats;
pub mod filefd;
pub mod filesystem;
pub mod hwmon;
pub mod loadavg;
pub mod meminfo;
pub mod netclass;
pub mod netdev;
pub mod pressure;
pub mod stat;
pub mod textfile;
pub mod thermal_zone;
pub mod time;
pub mod timex;
pub mod uname;
pub mod vmstat;

/// One source of host metrics. Reads files under the configured roots; does no network I/O.
pub trait Collector: Send + Sync {
    /// Stable snake_case name: the config key and the `collector` label.
    fn name(&self) -> &'static str;
    /// Appends this collector's samples; an error fails this collector for this scrape only.
    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError>;
}

/// Why a collector failed this scrape.
#[derive(Debug)]
pub enum CollectError {
    /// A file could not be read.
    Io { path: PathBuf, source: io::Error },
    /// A file's content could not be parsed.
    Parse { path: PathBuf, msg: String },
    /// The source does not exist on this host (node_exporter's `ErrNoData`): the collector
    /// reports `node_scrape_collector_success 0` and logs at debug level only.
    NoData(String),
    /// Anything else, already phrased for the log.
    Other(String),
}

impl CollectError {
    pub fn io(path: &Path, source: io::Error) -> Self {
        CollectError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub fn parse(path: &Path, msg: impl Into<String>) -> Self {
        CollectError::Parse {
            path: path.to_owned(),
            msg: msg.into(),
        }
    }

    /// Whether this is the "source absent on this host" case.
    pub fn is_no_data(&self) -> bool {
        matches!(self, CollectError::NoData(_))
    }
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectError::Io { path, source } => {
                write!(f, "read {}: {}", path.display(), io_reason(source))
            }
            CollectError::Parse { path, msg } => write!(f, "parse {}: {msg}", path.display()),
            CollectError::NoData(msg) => write!(f, "no data: {msg}"),
            CollectError::Other(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for CollectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CollectError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub use beacon_common::io_reason;

/// Builds the enabled collectors from a validated config, in a stable order.
pub fn build(cfg: &Config) -> Vec<Box<dyn Collector>> {
    let c = &cfg.collectors;
    let mut v: Vec<Box<dyn Collector>> = Vec::new();
    let mut add = |on: bool, f: &dyn Fn() -> Box<dyn Collector>| {
        if on {
            v.push(f());
        }
    };
    add(c.conntrack.enabled, &|| {
        Box::new(conntrack::Conntrack::new(cfg))
    });
    add(c.cpu.enabled, &|| Box::new(cpu::Cpu::new(cfg)));
    add(c.diskstats.enabled, &|| {
        Box::new(diskstats::Diskstats::new(cfg))
    });
    add(c.filefd.enabled, &|| Box::new(filefd::Filefd::new(cfg)));
    add(c.filesystem.enabled, &|| {
        Box::new(filesystem::Filesystem::new(cfg))
    });
    add(c.hwmon.enabled, &|| Box::new(hwmon::Hwmon::new(cfg)));
    add(c.loadavg.enabled, &|| Box::new(loadavg::Loadavg::new(cfg)));
    add(c.meminfo.enabled, &|| Box::new(meminfo::Meminfo::new(cfg)));
    add(c.netclass.enabled, &|| {
        Box::new(netclass::Netclass::new(cfg))
    });
    add(c.netdev.enabled, &|| Box::new(netdev::Netdev::new(cfg)));
    add(c.pressure.enabled, &|| {
        Box::new(pressure::Pressure::new(cfg))
    });
    add(c.stat.enabled, &|| Box::new(stat::Stat::new(cfg)));
    add(c.textfile.enabled, &|| {
        Box::new(textfile::Textfile::new(cfg))
    });
    add(c.thermal_zone.enabled, &|| {
        Box::new(thermal_zone::ThermalZone::new(cfg))
    });
    add(c.time.enabled, &|| Box::new(time::Time::new(cfg)));
    add(c.timex.enabled, &|| Box::new(timex::Timex::new(cfg)));
    add(c.uname.enabled, &|| Box::new(uname::Uname::new(cfg)));
    add(c.vmstat.enabled, &|| Box::new(vmstat::Vmstat::new(cfg)));
    v
}

/// Every collector name, in `build` order (used by docs, tests and `check-config`).
pub const NAMES: &[&str] = &[
    "conntrack",
    "cpu",
    "diskstats",
    "filefd",
    "filesystem",
    "hwmon",
    "loadavg",
    "meminfo",
    "netclass",
    "netdev",
    "pressure",
    "stat",
    "textfile",
    "thermal_zone",
    "time",
    "timex",
    "uname",
    "vmstat",
];
