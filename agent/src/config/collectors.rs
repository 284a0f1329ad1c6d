//! The `collectors:` section of the config, derived from the collectors' specs: one entry per
//! collector in `collectors::REGISTRY`, with `enabled` and the options its spec declares. The
//! same values are set from the YAML file (`collectors.<name>.<key>`) and from node_exporter's
//! flags (`flags.rs`, which calls `set_flag`), and validated by the same code, so a problem is
//! reported alike from either, with the key's path or the flag's name.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::collector::{Kind, Opt, Pattern, Spec, Value};
use crate::collectors::REGISTRY;
use crate::upstream;
use beacon_common::Problem;

/// Where a setting came from; a flag overrides the file, which overrides the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    /// The YAML file.
    File,
    /// A flag, by the spelling used (a deprecated spelling is remembered to report it).
    Flag(&'static str),
}

impl Origin {
    fn is_set(self) -> bool {
        self != Origin::Default
    }
}

/// One collector's validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether it runs.
    pub enabled: bool,
    /// Whether `enabled` was set explicitly (`--collector.disable-defaults` spares it).
    pub enabled_origin: Origin,
    /// One value per option of the spec, in the spec's order.
    pub(crate) values: Vec<Value>,
    pub(crate) origins: Vec<Origin>,
}

impl Settings {
    fn defaults(spec: &Spec) -> Settings {
        Settings {
            enabled: spec.default_enabled,
            enabled_origin: Origin::Default,
            values: spec.options.iter().map(|o| default_value(o.kind)).collect(),
            origins: vec![Origin::Default; spec.options.len()],
        }
    }

    /// Whether option `key` was set in the file or by a flag.
    pub fn is_set(&self, spec: &Spec, key: &str) -> bool {
        spec.options
            .iter()
            .position(|o| o.key == key)
            .is_some_and(|i| self.origins[i].is_set())
    }
}

/// Every collector's settings, in registry order, plus what node_exporter knows that this
/// agent does not implement yet.
#[derive(Debug, Clone)]
pub struct Collectors {
    entries: Vec<(&'static Spec, Settings)>,
    /// node_exporter collectors asked for (enabled in the file or by `--collector.<name>`) that
    /// beacon-agent does not have yet: a warning at start, never an error.
    unavailable: BTreeSet<&'static str>,
    /// node_exporter collectors this agent lacks that were switched off explicitly.
    switched_off: BTreeSet<&'static str>,
    /// `--collector.disable-defaults` was given.
    defaults_disabled: bool,
    /// Options of such collectors that were given: ignored, with the same warning.
    unavailable_options: BTreeSet<String>,
    /// Deprecated flag spellings used (each a warning at start, as in node_exporter).
    deprecated: Vec<(&'static str, &'static str)>,
    /// Problems found while reading the file or flags, reported by `validate`.
    problems: Vec<Problem>,
}

impl Default for Collectors {
    fn default() -> Self {
        Collectors {
            entries: REGISTRY
                .iter()
                .map(|s| (*s, Settings::defaults(s)))
                .collect(),
            unavailable: BTreeSet::new(),
            switched_off: BTreeSet::new(),
            defaults_disabled: false,
            unavailable_options: BTreeSet::new(),
            deprecated: Vec::new(),
            problems: Vec::new(),
        }
    }
}

fn default_value(kind: Kind) -> Value {
    match kind {
        Kind::Regex(d) => Value::Regex(
            d.filter(|s| !s.is_empty())
                .and_then(|s| Pattern::new(s).ok()),
        ),
        Kind::Bool(b) => Value::Bool(b),
        Kind::Duration(d) => Value::Duration(d),
        Kind::Uint(n) => Value::Uint(n),
        Kind::List(l) | Kind::Paths(l) => Value::List(l.iter().map(|s| (*s).to_owned()).collect()),
    }
}

impl Collectors {
    /// Every collector with its settings, in run order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Spec, &Settings)> {
        self.entries.iter().map(|(s, v)| (*s, v))
    }

    /// The settings of the collector called `name`.
    pub fn get(&self, name: &str) -> Option<&Settings> {
        self.entries
            .iter()
            .find(|(s, _)| s.name == name)
            .map(|(_, v)| v)
    }

    /// Whether the collector called `name` runs; `None` for a name this agent lacks.
    pub fn enabled(&self, name: &str) -> Option<bool> {
        self.get(name).map(|s| s.enabled)
    }

    /// Whether node_exporter would run the collector called `name` under this configuration,
    /// whether or not this agent implements it (node_exporter's `collectorState`: cpu's
    /// `node_cpu_frequency_hertz` depends on the cpufreq collector being on).
    pub fn upstream_enabled(&self, name: &str) -> bool {
        if let Some(on) = self.enabled(name) {
            return on;
        }
        if self.unavailable.contains(name) {
            return true;
        }
        if self.switched_off.contains(name) {
            return false;
        }
        !self.defaults_disabled && upstream::collector(name).is_some_and(|c| c.default_enabled)
    }

    /// Turns a collector on or off, as `--collector.<name>` / `--no-collector.<name>` or
    /// `collectors.<name>.enabled` do. A name node_exporter knows but this agent lacks is
    /// remembered for the start-up warning; any other name is an error.
    pub fn set_enabled(&mut self, name: &str, on: bool, origin: Origin) -> Result<(), String> {
        if let Some((_, s)) = self.entries.iter_mut().find(|(s, _)| s.name == name) {
            s.enabled = on;
            s.enabled_origin = origin;
            return Ok(());
        }
        match upstream::collector(name) {
            Some(c) => {
                if on {
                    self.unavailable.insert(c.name);
                    self.switched_off.remove(c.name);
                } else {
                    self.unavailable.remove(c.name);
                    self.switched_off.insert(c.name);
                }
                Ok(())
            }
            None => Err(format!("unknown collector {name:?}")),
        }
    }

    /// `--collector.disable-defaults`: every collector whose switch was not set explicitly
    /// is turned off.
    pub fn disable_defaults(&mut self) {
        self.defaults_disabled = true;
        for (_, s) in &mut self.entries {
            if !s.enabled_origin.is_set() {
                s.enabled = false;
            }
        }
    }

    /// Sets an option from a node_exporter flag (`flag` without the leading `--`), as
    /// kingpin would: `value` is `None` for a bare boolean flag, and a `--no-` prefix clears a
    /// boolean. A repeated list flag appends. Errors name no path; the caller adds the flag.
    pub fn set_flag(&mut self, flag: &str, value: Option<&str>) -> Result<(), String> {
        let (negated, name) = match flag.strip_prefix("no-") {
            Some(rest) => (true, rest),
            None => (false, flag),
        };
        let found = self
            .entries
            .iter_mut()
            .enumerate()
            .find_map(|(ci, (spec, _))| {
                spec.options.iter().enumerate().find_map(|(oi, o)| {
                    (o.flag == name || o.deprecated.contains(&name)).then_some((ci, oi))
                })
            });
        let Some((ci, oi)) = found else {
            if let Some(owner) = upstream::option_owner(name) {
                self.unavailable_options
                    .insert(format!("--{flag} (collector {owner})"));
                return Ok(());
            }
            return Err("unknown flag".into());
        };
        let spec: &'static Spec = self.entries[ci].0;
        let opt: &'static Opt = &spec.options[oi];
        let settings = &mut self.entries[ci].1;
        let spelling: &'static str = if opt.flag == name {
            opt.flag
        } else {
            opt.deprecated
                .iter()
                .copied()
                .find(|d| *d == name)
                .unwrap_or(opt.flag)
        };
        // node_exporter: a deprecated spelling and the current one together are an error.
        if let Origin::Flag(prev) = settings.origins[oi] {
            if prev != spelling {
                let (old, new) = if opt.flag == prev {
                    (spelling, prev)
                } else {
                    (prev, spelling)
                };
                return Err(format!("--{old} and --{new} are mutually exclusive"));
            }
        }
        if spelling != opt.flag && !self.deprecated.iter().any(|(d, _)| *d == spelling) {
            self.deprecated.push((spelling, opt.flag));
        }
        let appending = settings.origins[oi] == Origin::Flag(spelling);
        let new = match (opt.kind, value, negated) {
            (Kind::Bool(_), None, neg) => Value::Bool(!neg),
            (Kind::Bool(_), Some(v), false) => Value::Bool(parse_bool(v)?),
            (_, _, true) => return Err("only a boolean flag takes the --no- prefix".into()),
            (_, None, false) => return Err("expected a value".into()),
            (Kind::List(_) | Kind::Paths(_), Some(v), false) => {
                let mut list = match (&settings.values[oi], appending) {
                    (Value::List(l), true) => l.clone(),
                    _ => Vec::new(),
                };
                if !v.is_empty() {
                    list.push(v.to_owned());
                }
                check_list(opt.kind, &list)?;
                Value::List(list)
            }
            (kind, Some(v), false) => parse_scalar(kind, v)?,
        };
        settings.values[oi] = new;
        settings.origins[oi] = Origin::Flag(spelling);
        Ok(())
    }

    /// The start-up warnings: deprecated flag spellings, and collectors or options asked for
    /// that this agent does not implement yet.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (old, new) in &self.deprecated {
            out.push(format!(
                "--{old} is DEPRECATED and will be removed in 2.0.0, use --{new}"
            ));
        }
        if !self.unavailable.is_empty() {
            let names: Vec<&str> = self.unavailable.iter().copied().collect();
            out.push(format!(
                "node_exporter collectors requested but not available in beacon-agent {}: {} (ignored)",
                env!("CARGO_PKG_VERSION"),
                names.join(", ")
            ));
        }
        if !self.unavailable_options.is_empty() {
            let names: Vec<&str> = self
                .unavailable_options
                .iter()
                .map(String::as_str)
                .collect();
            out.push(format!(
                "node_exporter options beacon-agent does not implement yet are ignored: {}",
                names.join(", ")
            ));
        }
        out
    }

    /// Every problem: what reading the file and flags found, and include/exclude pairs
    /// both set (node_exporter refuses to start on those).
    pub fn validate(&self, problems: &mut Vec<Problem>) {
        problems.extend(self.problems.iter().cloned());
        for (spec, s) in &self.entries {
            for (exclude, include) in spec.filters {
                let (Some(ei), Some(ii)) = (index(spec, exclude), index(spec, include)) else {
                    continue;
                };
                let both = matches!(&s.values[ii], Value::Regex(Some(_)))
                    && matches!(&s.values[ei], Value::Regex(Some(_)))
                    && s.origins[ei].is_set();
                if both {
                    let (path, message) = match (s.origins[ei], s.origins[ii]) {
                        (Origin::Flag(e), Origin::Flag(i)) => {
                            (format!("--{i}"), format!("mutually exclusive with --{e}"))
                        }
                        _ => (
                            format!("collectors.{}", spec.name),
                            format!("{include} and {exclude} are mutually exclusive"),
                        ),
                    };
                    problems.push(Problem::new(path, message));
                }
            }
        }
    }

    /// Reads the `collectors:` mapping of the YAML file.
    fn from_raw(map: Vec<(String, Raw)>) -> Collectors {
        let mut c = Collectors::default();
        for (name, raw) in map {
            let path = format!("collectors.{name}");
            let fields = match raw {
                Raw::Null => Vec::new(),
                Raw::Map(m) => m,
                other => {
                    c.problems.push(Problem::new(
                        path,
                        format!("want a mapping of options, got {}", other.describe()),
                    ));
                    continue;
                }
            };
            let Some(ci) = c.entries.iter().position(|(s, _)| s.name == name) else {
                c.unimplemented_from_file(&name, &path, fields);
                continue;
            };
            let spec = c.entries[ci].0;
            for (key, raw) in fields {
                let kpath = format!("{path}.{key}");
                if key == "enabled" {
                    match raw {
                        Raw::Bool(b) => {
                            c.entries[ci].1.enabled = b;
                            c.entries[ci].1.enabled_origin = Origin::File;
                        }
                        other => c.problems.push(Problem::new(
                            kpath,
                            format!("want true or false, got {}", other.describe()),
                        )),
                    }
                    continue;
                }
                let Some(oi) = index(spec, &key) else {
                    let mut known = vec!["enabled"];
                    known.extend(spec.options.iter().map(|o| o.key));
                    c.problems.push(Problem::new(
                        kpath,
                        format!("unknown option; {} has: {}", spec.name, known.join(", ")),
                    ));
                    continue;
                };
                match raw_value(spec.options[oi].kind, raw) {
                    Ok(v) => {
                        let s = &mut c.entries[ci].1;
                        s.values[oi] = v;
                        s.origins[oi] = Origin::File;
                    }
                    Err(e) => c.problems.push(Problem::new(kpath, e)),
                }
            }
        }
        c
    }

    /// A `collectors.<name>` entry for a collector this agent does not have: node_exporter's
    /// names take `enabled` only (with a start-up warning when on); other names are errors.
    fn unimplemented_from_file(&mut self, name: &str, path: &str, fields: Vec<(String, Raw)>) {
        let Some(up) = upstream::collector(name) else {
            let mut known: Vec<&str> = REGISTRY.iter().map(|s| s.name).collect();
            known.sort_unstable();
            self.problems.push(Problem::new(
                path,
                format!("unknown collector; beacon-agent has: {}", known.join(", ")),
            ));
            return;
        };
        for (key, raw) in fields {
            match (key.as_str(), raw) {
                ("enabled", Raw::Bool(true)) => {
                    self.unavailable.insert(up.name);
                }
                ("enabled", Raw::Bool(false)) => {}
                (_, _) => self.problems.push(Problem::new(
                    format!("{path}.{key}"),
                    format!(
                        "beacon-agent does not implement the {name} collector yet; only `enabled` is accepted"
                    ),
                )),
            }
        }
    }
}

fn index(spec: &Spec, key: &str) -> Option<usize> {
    spec.options.iter().position(|o| o.key == key)
}

/// Looks up the option declared for `flag` (current or deprecated spelling) in any collector.
pub fn option_for_flag(flag: &str) -> Option<(&'static Spec, &'static Opt)> {
    REGISTRY.iter().find_map(|spec| {
        spec.options
            .iter()
            .find(|o| o.flag == flag || o.deprecated.contains(&flag))
            .map(|o| (*spec, o))
    })
}

/// Parses a boolean the way Go's `strconv.ParseBool` (kingpin's) does.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {v:?}")),
    }
}

/// A scalar option value from its text (a flag's value, or a YAML string).
fn parse_scalar(kind: Kind, v: &str) -> Result<Value, String> {
    match kind {
        Kind::Regex(_) if v.is_empty() => Ok(Value::Regex(None)),
        Kind::Regex(_) => Pattern::new(v).map(|p| Value::Regex(Some(p))),
        Kind::Bool(_) => parse_bool(v).map(Value::Bool),
        Kind::Duration(_) => {
            let d = humantime::parse_duration(v)
                .map_err(|e| format!("invalid duration {v:?}: {e} (want e.g. \"5s\")"))?;
            if d.is_zero() {
                return Err("must be greater than zero".into());
            }
            Ok(Value::Duration(d))
        }
        Kind::Uint(_) => v
            .parse::<u64>()
            .map(Value::Uint)
            .map_err(|_| format!("want a whole number, got {v:?}")),
        Kind::List(_) | Kind::Paths(_) => {
            let list = vec![v.to_owned()];
            check_list(kind, &list)?;
            Ok(Value::List(list))
        }
    }
}

/// `Kind::Paths` entries must be absolute: the agent's working directory means nothing in a
/// container.
fn check_list(kind: Kind, list: &[String]) -> Result<(), String> {
    if let Kind::Paths(_) = kind {
        if let Some(p) = list.iter().find(|p| !p.starts_with('/')) {
            return Err(format!("must be an absolute path, got {p:?}"));
        }
    }
    Ok(())
}

/// An option value from the YAML file.
fn raw_value(kind: Kind, raw: Raw) -> Result<Value, String> {
    match (kind, raw) {
        (Kind::Regex(_), Raw::Null) => Ok(Value::Regex(None)),
        (Kind::Bool(_), Raw::Bool(b)) => Ok(Value::Bool(b)),
        (Kind::Bool(_), other) => Err(format!("want true or false, got {}", other.describe())),
        (Kind::Uint(_), Raw::Int(n)) => u64::try_from(n)
            .map(Value::Uint)
            .map_err(|_| format!("want a whole number, got {n}")),
        (Kind::List(_) | Kind::Paths(_), Raw::Null) => Ok(Value::List(Vec::new())),
        (Kind::List(_) | Kind::Paths(_), Raw::List(items)) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                match item.scalar_text() {
                    Some(s) => list.push(s),
                    None => return Err(format!("want a list of strings, got {}", item.describe())),
                }
            }
            check_list(kind, &list)?;
            Ok(Value::List(list))
        }
        (kind, raw) => match raw.scalar_text() {
            Some(s) => parse_scalar(kind, &s),
            None => Err(format!("want a single value, got {}", raw.describe())),
        },
    }
}

impl<'de> Deserialize<'de> for Collectors {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Null => Ok(Collectors::default()),
            Raw::Map(m) => Ok(Collectors::from_raw(m)),
            other => Err(de::Error::custom(format!(
                "collectors: want a mapping of collector names, got {}",
                other.describe()
            ))),
        }
    }
}

/// A YAML value before it is checked against a spec, so every problem can be reported with
/// its path instead of stopping at the first.
#[derive(Debug, Clone)]
enum Raw {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Raw>),
    Map(Vec<(String, Raw)>),
}

impl Raw {
    fn describe(&self) -> String {
        match self {
            Raw::Null => "nothing".into(),
            Raw::Bool(b) => format!("{b}"),
            Raw::Int(n) => format!("{n}"),
            Raw::Float(f) => format!("{f}"),
            Raw::Str(s) => format!("{s:?}"),
            Raw::List(_) => "a list".into(),
            Raw::Map(_) => "a mapping".into(),
        }
    }

    /// A scalar as the text a flag would carry.
    fn scalar_text(&self) -> Option<String> {
        match self {
            Raw::Bool(b) => Some(b.to_string()),
            Raw::Int(n) => Some(n.to_string()),
            Raw::Float(f) => Some(f.to_string()),
            Raw::Str(s) => Some(s.clone()),
            Raw::Null | Raw::List(_) | Raw::Map(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Raw, E> {
        Ok(Raw::Int(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Raw, E> {
        Ok(Raw::Int(n.into()))
    }
    fn visit_i128<E>(self, n: i128) -> Result<Raw, E> {
        Ok(Raw::Int(n))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Raw, E> {
        Ok(Raw::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Raw, E> {
        Ok(Raw::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Raw, E> {
        Ok(Raw::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Raw>()? {
            items.push(item);
        }
        Ok(Raw::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Raw>()? {
            entries.push((k, v));
        }
        Ok(Raw::Map(entries))
    }
}
