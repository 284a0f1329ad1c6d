//! The collector contract and the registry of collectors.
//!
//! A collector reads files under the configured roots (or makes one read-only system call) and
//! appends samples to a `MetricWriter`. It does no network I/O, never retries and never sleeps;
//! the scrape loop in `scrape.rs` times it and records `node_scrape_collector_*`.
//! Adding a collector touches its own file, one line in `REGISTRY` below and its switch in
//! `config::Collectors`.

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
pub mod match_cache;
pub mod meminfo;
pub mod netclass;
pub mod netdev;
pub mod pressure;
pub mod rtnetlink;
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

/// Builds a collector from a validated config.
type Constructor = fn(&Config) -> Box<dyn Collector>;

/// Every collector: its name (the config key and the `collector` label) and constructor, in run
/// order. Adding a collector adds one line here (and its switch in `config::Collectors`).
const REGISTRY: &[(&str, Constructor)] = &[
    ("conntrack", |c| Box::new(conntrack::Conntrack::new(c))),
    ("cpu", |c| Box::new(cpu::Cpu::new(c))),
    ("diskstats", |c| Box::new(diskstats::Diskstats::new(c))),
    ("filefd", |c| Box::new(filefd::Filefd::new(c))),
    ("filesystem", |c| Box::new(filesystem::Filesystem::new(c))),
    ("hwmon", |c| Box::new(hwmon::Hwmon::new(c))),
    ("loadavg", |c| Box::new(loadavg::Loadavg::new(c))),
    ("meminfo", |c| Box::new(meminfo::Meminfo::new(c))),
    ("netclass", |c| Box::new(netclass::Netclass::new(c))),
    ("netdev", |c| Box::new(netdev::Netdev::new(c))),
    ("pressure", |c| Box::new(pressure::Pressure::new(c))),
    ("stat", |c| Box::new(stat::Stat::new(c))),
    ("textfile", |c| Box::new(textfile::Textfile::new(c))),
    ("thermal_zone", |c| {
        Box::new(thermal_zone::ThermalZone::new(c))
    }),
    ("time", |c| Box::new(time::Time::new(c))),
    ("timex", |c| Box::new(timex::Timex::new(c))),
    ("uname", |c| Box::new(uname::Uname::new(c))),
    ("vmstat", |c| Box::new(vmstat::Vmstat::new(c))),
];

/// Builds the enabled collectors from a validated config, in registry order.
pub fn build(cfg: &Config) -> Vec<Box<dyn Collector>> {
    REGISTRY
        .iter()
        .filter(|(name, _)| cfg.collectors.enabled(name).unwrap_or(false))
        .map(|(_, make)| make(cfg))
        .collect()
}

/// Every collector name, in run order (used by docs and tests).
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(name, _)| *name)
}
