//! The collector framework's contract: the `Collector` trait and `Spec`, the one declaration
//! each collector makes of itself (name, whether node_exporter enables it by default, its
//! options, its constructor). The YAML `collectors:` section (`config/collectors.rs`),
//! node_exporter's `--collector.*` flags (`flags.rs`) and `check-config` are all derived from
//! the specs in `collectors::REGISTRY`, as node_exporter derives its flags from each
//! collector file's `kingpin.Flag` and `registerCollector` calls.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{
    collectors::{Collectors, Settings},
    Paths,
};
pub use crate::error::CollectError;
use crate::filter::DeviceFilter;
use crate::metrics::MetricWriter;

/// One source of host metrics. Reads files under the configured roots; does no network I/O.
pub trait Collector: Send + Sync {
    /// Stable snake_case name: the config key and the `collector` label.
    fn name(&self) -> &'static str;
    /// Appends this collector's samples; an error fails this collector for this scrape only.
    fn collect(&self, out: &mut MetricWriter) -> Result<(), CollectError>;
}

/// A collector's declaration of itself. Each collector file has one `pub const SPEC`, and
/// `collectors::REGISTRY` lists them.
#[derive(Debug)]
pub struct Spec {
    /// The config key, the `--collector.<name>` flag and the `collector` label.
    pub name: &'static str,
    /// Whether node_exporter enables it without `--collector.<name>` (`defaultEnabled`).
    pub default_enabled: bool,
    /// What it reads, for `--help`.
    pub help: &'static str,
    /// Its options, each a YAML key under `collectors.<name>` and a node_exporter flag.
    pub options: &'static [Opt],
    /// Include/exclude pairs, by YAML key: `(exclude, include)`. As in node_exporter, setting
    /// the include pattern alone drops the exclude pattern's default, and setting both is an
    /// error.
    pub filters: &'static [(&'static str, &'static str)],
    /// Builds the collector from validated settings.
    pub build: fn(&Context<'_>) -> Box<dyn Collector>,
}

/// One option of a collector.
#[derive(Debug)]
pub struct Opt {
    /// Key under `collectors.<collector>` in the YAML file (snake_case).
    pub key: &'static str,
    /// node_exporter's flag, without the leading `--`.
    pub flag: &'static str,
    /// Older spellings of the flag node_exporter still accepts (hidden, deprecated).
    pub deprecated: &'static [&'static str],
    /// Type and default.
    pub kind: Kind,
    /// node_exporter's help text.
    pub help: &'static str,
}

/// An option's type and default.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A Go RE2 regular expression; an empty pattern means "no filter".
    Regex(Option<&'static str>),
    /// A boolean; as a flag, `--x` sets it and `--no-x` clears it.
    Bool(bool),
    /// A duration written as `5s`, `250ms`.
    Duration(Duration),
    /// A whole number.
    Uint(u64),
    /// A list of strings; the flag may be repeated, the YAML value may be one string or a list.
    List(&'static [&'static str]),
    /// A list of absolute paths (glob patterns allowed), otherwise like `List`.
    Paths(&'static [&'static str]),
}

impl Opt {
    /// An option with no deprecated spellings.
    pub const fn new(key: &'static str, flag: &'static str, kind: Kind, help: &'static str) -> Opt {
        Opt {
            key,
            flag,
            deprecated: &[],
            kind,
            help,
        }
    }

    /// The same option, also reachable under older flag names.
    pub const fn deprecated(mut self, flags: &'static [&'static str]) -> Opt {
        self.deprecated = flags;
        self
    }
}

/// A validated option value.
#[derive(Debug, Clone)]
pub enum Value {
    /// A compiled pattern, or none (unset or empty).
    Regex(Option<Pattern>),
    Bool(bool),
    Duration(Duration),
    Uint(u64),
    List(Vec<String>),
}

/// A regular expression with the text it was compiled from.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    pub regex: regex_lite::Regex,
}

impl Pattern {
    /// Compiles `source`; the error is phrased for a config problem.
    pub fn new(source: &str) -> Result<Pattern, String> {
        regex_lite::Regex::new(source)
            .map(|regex| Pattern {
                source: source.to_owned(),
                regex,
            })
            .map_err(|e| format!("invalid regex: {}", beacon_common::one_line(&e.to_string())))
    }
}

/// What a collector's constructor sees: the roots and its own validated options.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub paths: &'a Paths,
    pub(crate) spec: &'static Spec,
    pub(crate) settings: &'a Settings,
    /// Every collector's settings, for options that depend on another collector.
    pub(crate) collectors: &'a Collectors,
}

impl<'a> Context<'a> {
    fn value(&self, opt: &Opt) -> Option<&'a Value> {
        let i = self.spec.options.iter().position(|o| o.key == opt.key);
        debug_assert!(
            i.is_some(),
            "{}: option {} is not in its spec",
            self.spec.name,
            opt.key
        );
        i.and_then(|i| self.settings.values.get(i))
    }

    /// Whether node_exporter would run the collector called `name` (implemented here or not)
    /// under this configuration.
    pub fn collector_enabled(&self, name: &str) -> bool {
        self.collectors.upstream_enabled(name)
    }

    /// `{procfs}/<rel>`.
    pub fn procfs(&self, rel: &str) -> PathBuf {
        self.paths.procfs.join(rel)
    }

    /// `{sysfs}/<rel>`.
    pub fn sysfs(&self, rel: &str) -> PathBuf {
        self.paths.sysfs.join(rel)
    }

    /// The root filesystem prefix (`--path.rootfs`).
    pub fn rootfs(&self) -> &'a Path {
        &self.paths.rootfs
    }

    /// A regex option: `None` when unset or empty.
    pub fn regex(&self, opt: &Opt) -> Option<regex_lite::Regex> {
        match self.value(opt) {
            Some(Value::Regex(p)) => p.as_ref().map(|p| p.regex.clone()),
            _ => None,
        }
    }

    /// The include/exclude filter of a pair declared in the spec's `filters`. As in
    /// node_exporter, an include pattern set without an explicit exclude pattern drops the
    /// exclude pattern's default (validation already refused both set).
    pub fn filter(&self, exclude: &Opt, include: &Opt) -> DeviceFilter {
        let include_re = self.regex(include);
        let exclude_re = if include_re.is_some() && !self.settings.is_set(self.spec, exclude.key) {
            None
        } else {
            self.regex(exclude)
        };
        DeviceFilter::new(exclude_re, include_re)
    }

    /// A boolean option.
    pub fn bool(&self, opt: &Opt) -> bool {
        match (self.value(opt), opt.kind) {
            (Some(Value::Bool(b)), _) => *b,
            (_, Kind::Bool(d)) => d,
            _ => false,
        }
    }

    /// A duration option.
    pub fn duration(&self, opt: &Opt) -> Duration {
        match (self.value(opt), opt.kind) {
            (Some(Value::Duration(d)), _) => *d,
            (_, Kind::Duration(d)) => d,
            _ => Duration::ZERO,
        }
    }

    /// A whole-number option.
    pub fn uint(&self, opt: &Opt) -> u64 {
        match (self.value(opt), opt.kind) {
            (Some(Value::Uint(n)), _) => *n,
            (_, Kind::Uint(d)) => d,
            _ => 0,
        }
    }

    /// A list option.
    pub fn list(&self, opt: &Opt) -> Vec<String> {
        match (self.value(opt), opt.kind) {
            (Some(Value::List(l)), _) => l.clone(),
            (_, Kind::List(d) | Kind::Paths(d)) => d.iter().map(|s| (*s).to_owned()).collect(),
            _ => Vec::new(),
        }
    }
}
