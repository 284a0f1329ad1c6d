//! The registry: every collector, one line each, in run order. A collector is its file here
//! (its `Collector` impl and its `pub const SPEC`, which declares its options) plus one line
//! in `REGISTRY`; the config keys, node_exporter flags and `check-config` follow from the spec.
//! This folder holds collectors only: the framework is `collector.rs`, the readers and
//! parsers they share live beside it (`read.rs`, `sysfs.rs`, `filter.rs`, ...).

use crate::collector::{Collector, Spec};
use crate::config::Config;

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

/// Every collector, in run order.
pub const REGISTRY: &[&Spec] = &[
    &conntrack::SPEC,
    &cpu::SPEC,
    &diskstats::SPEC,
    &filefd::SPEC,
    &filesystem::SPEC,
    &hwmon::SPEC,
    &loadavg::SPEC,
    &meminfo::SPEC,
    &netclass::SPEC,
    &netdev::SPEC,
    &pressure::SPEC,
    &stat::SPEC,
    &textfile::SPEC,
    &thermal_zone::SPEC,
    &time::SPEC,
    &timex::SPEC,
    &uname::SPEC,
    &vmstat::SPEC,
];

/// Builds the enabled collectors from a validated config, in registry order.
pub fn build(cfg: &Config) -> Vec<Box<dyn Collector>> {
    REGISTRY
        .iter()
        .filter(|spec| cfg.collectors.enabled(spec.name) == Some(true))
        .filter_map(|spec| build_one(cfg, spec.name))
        .collect()
}

/// Builds the collector called `name` from `cfg` whether or not it is enabled (tests and
/// benchmarks build single collectors this way).
pub fn build_one(cfg: &Config, name: &str) -> Option<Box<dyn Collector>> {
    let ctx = cfg.context(name)?;
    Some((ctx.spec.build)(&ctx))
}

/// Every collector name, in run order (used by docs and tests).
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|s| s.name)
}
