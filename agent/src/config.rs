//! Agent configuration: YAML parsing, defaults, and validation that reports every problem with
//! its path. `beacon-agent check-config` runs exactly `Config::load`.
//!
//! Phases: parse (serde, unknown keys are errors), then `validate` (pure, collects every
//! problem), then the collectors' constructors compile what was validated.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub mod telemetry;
pub mod web;

/// node_exporter's default `--collector.filesystem.mount-points-exclude` (upstream 1.5+).
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default `--collector.filesystem.fs-types-exclude` (upstream 1.5+).
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
/// node_exporter's default `--collector.diskstats.device-exclude`.
pub const DEFAULT_DISKSTATS_DEVICE_EXCLUDE: &str =
    r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
/// node_exporter's default `--collector.vmstat.fields`.
pub const DEFAULT_VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";
/// node_exporter's default `--collector.filesystem.mount-timeout`.
pub const DEFAULT_MOUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// The whole agent configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address, or list of addresses, to serve `/metrics` on, in every form node_exporter's
    /// `--web.listen-address` takes: `:9100` (every interface), `[::1]:9100`, `localhost:9100`.
    pub listen: crate::listen::Listen,
    /// How `/metrics` is served: TLS and auth, path, request limit (the `--web.*` flags).
    pub web: web::WebSettings,
    /// Where the host's filesystems are mounted (for a container: the host's, bind-mounted).
    pub paths: Paths,
    /// Which collectors run, and their options.
    pub collectors: Collectors,
    /// Push telemetry (MQTT, InfluxDB) through an on-disk spool; off when absent.
    pub telemetry: Option<telemetry::TelemetryConfig>,
}

/// Filesystem roots, with node_exporter's `--path.*` semantics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    /// procfs mount point (`--path.procfs`).
    pub procfs: PathBuf,
    /// sysfs mount point (`--path.sysfs`).
    pub sysfs: PathBuf,
    /// The host's root filesystem (`--path.rootfs`): prefixes statfs calls and is stripped from
    /// the `mountpoint` label.
    pub rootfs: PathBuf,
    /// udev's database, for `node_disk_info`'s model, serial and wwn (`--path.udev.data`).
    pub udev_data: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
            udev_data: "/run/udev/data".into(),
        }
    }
}

/// Turns a collector without options on or off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Toggle {
    /// Whether the collector runs. Every collector is on by default.
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// One entry per collector; each defaults to enabled with node_exporter's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Collectors {
    /// `/proc/pressure/*`: pressure stall information.
    pub pressure: Toggle,
    /// `/proc/stat` per-CPU times.
    pub cpu: Toggle,
    /// `/proc/meminfo`, every key.
    pub meminfo: Toggle,
    /// `/proc/loadavg`.
    pub loadavg: Toggle,
    /// `/proc/stat` boot time, context switches, forks, interrupts, process counts.
    pub stat: Toggle,
    /// The uname(2) system call.
    pub uname: Toggle,
    /// Wall clock, time zone and clock sources.
    pub time: Toggle,
    /// adjtimex(2): NTP synchronisation state.
    pub timex: Toggle,
    /// statfs(2) for each mount in `/proc/1/mountinfo`.
    pub filesystem: FilesystemConfig,
    /// `/proc/diskstats`.
    pub diskstats: DiskstatsConfig,
    /// `/proc/net/dev`.
    pub netdev: NetdevConfig,
    /// `/sys/class/net/*`.
    pub netclass: NetclassConfig,
    /// `/proc/vmstat`.
    pub vmstat: VmstatConfig,
    /// `/proc/sys/fs/file-nr`.
    pub filefd: Toggle,
    /// `/proc/sys/net/netfilter/nf_conntrack_*` and `/proc/net/stat/nf_conntrack`.
    pub conntrack: Toggle,
    /// `/sys/class/hwmon`.
    pub hwmon: Toggle,
    /// `/sys/class/thermal`.
    pub thermal_zone: Toggle,
    /// `*.prom` files from a directory.
    pub textfile: TextfileConfig,
}

/// `enabled` and `enabled_mut` by collector name, from one list of the fields.
macro_rules! collector_switches {
    ($($field:ident),* $(,)?) => {
        impl Collectors {
            /// Whether the collector called `name` is on; `None` for an unknown name.
            pub fn enabled(&self, name: &str) -> Option<bool> {
                match name {
                    $(stringify!($field) => Some(self.$field.enabled),)*
                    _ => None,
                }
            }

            /// The `enabled` switch of the collector called `name`.
            pub fn enabled_mut(&mut self, name: &str) -> Option<&mut bool> {
                match name {
                    $(stringify!($field) => Some(&mut self.$field.enabled),)*
                    _ => None,
                }
            }
        }
    };
}

collector_switches!(
    conntrack,
    cpu,
    diskstats,
    filefd,
    filesystem,
    hwmon,
    loadavg,
    meminfo,
    netclass,
    netdev,
    pressure,
    stat,
    textfile,
    thermal_zone,
    time,
    timex,
    uname,
    vmstat,
);

/// Options of the filesystem collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Mount points matching this regex are ignored.
    pub mount_points_exclude: String,
    /// When set, only mount points matching this regex are reported.
    pub mount_points_include: Option<String>,
    /// Filesystem types matching this regex are ignored.
    pub fs_types_exclude: String,
    /// When set, only filesystem types matching this regex are reported.
    pub fs_types_include: Option<String>,
    /// How long one statfs(2) may take before its mount is reported with
    /// `device_error="mountpoint timeout"` and skipped until the call returns.
    #[serde(deserialize_with = "duration")]
    pub mount_timeout: Duration,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mount_points_exclude: DEFAULT_MOUNT_POINTS_EXCLUDE.to_owned(),
            mount_points_include: None,
            fs_types_exclude: DEFAULT_FS_TYPES_EXCLUDE.to_owned(),
            fs_types_include: None,
            mount_timeout: DEFAULT_MOUNT_TIMEOUT,
        }
    }
}

/// Options of the diskstats collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskstatsConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Devices matching this regex are ignored (by default partitions, loop and ram devices).
    pub device_exclude: String,
    /// When set, only devices matching this regex are reported.
    pub device_include: Option<String>,
}

impl Default for DiskstatsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            device_exclude: DEFAULT_DISKSTATS_DEVICE_EXCLUDE.to_owned(),
            device_include: None,
        }
    }
}

/// Options of the netdev collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetdevConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Devices matching this regex are ignored.
    pub device_exclude: Option<String>,
    /// When set, only devices matching this regex are reported.
    pub device_include: Option<String>,
}

impl Default for NetdevConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            device_exclude: None,
            device_include: None,
        }
    }
}

/// Options of the netclass collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetclassConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Devices matching this regex are ignored (`--collector.netclass.ignored-devices`).
    pub device_exclude: Option<String>,
}

impl Default for NetclassConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            device_exclude: None,
        }
    }
}

/// Options of the vmstat collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VmstatConfig {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Only `/proc/vmstat` fields matching this regex are reported.
    pub fields: String,
}

impl Default for VmstatConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            fields: DEFAULT_VMSTAT_FIELDS.to_owned(),
        }
    }
}

/// Options of the textfile collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextfileConfig {
    /// Whether the collector runs (it reports nothing until `directory` is set).
    pub enabled: bool,
    /// Directory whose `*.prom` files are read at every scrape.
    pub directory: Option<PathBuf>,
}

impl Default for TextfileConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            directory: None,
        }
    }
}

pub use beacon_common::{ConfigError, Problem};

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = ConfigError::read_file(path)?;
        Self::from_yaml(&text).map_err(|e| e.in_file(path))
    }

    /// Parses and validates YAML text. An empty document is the default configuration.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError {
                file: None,
                problems: vec![Problem {
                    path: "(yaml)".into(),
                    message: e.to_string(),
                }],
            })?
        };
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError {
                file: None,
                problems,
            })
        }
    }

    /// Checks everything serde cannot: addresses, regexes, paths. Pure; returns every problem.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut bad = |path: &str, message: String| {
            problems.push(Problem {
                path: path.to_owned(),
                message,
            })
        };
        for (path, e) in self.listen.problems() {
            bad(&path, e);
        }
        for (path, p) in [
            ("paths.procfs", &self.paths.procfs),
            ("paths.sysfs", &self.paths.sysfs),
            ("paths.rootfs", &self.paths.rootfs),
            ("paths.udev_data", &self.paths.udev_data),
        ] {
            if !p.is_absolute() {
                bad(
                    path,
                    format!(
                        "must be an absolute path, got {:?}",
                        p.display().to_string()
                    ),
                );
            }
        }
        let c = &self.collectors;
        let regexes: [(&str, Option<&String>); 9] = [
            (
                "collectors.filesystem.mount_points_exclude",
                Some(&c.filesystem.mount_points_exclude),
            ),
            (
                "collectors.filesystem.mount_points_include",
                c.filesystem.mount_points_include.as_ref(),
            ),
            (
                "collectors.filesystem.fs_types_exclude",
                Some(&c.filesystem.fs_types_exclude),
            ),
            (
                "collectors.filesystem.fs_types_include",
                c.filesystem.fs_types_include.as_ref(),
            ),
            (
                "collectors.diskstats.device_exclude",
                Some(&c.diskstats.device_exclude),
            ),
            (
                "collectors.diskstats.device_include",
                c.diskstats.device_include.as_ref(),
            ),
            (
                "collectors.netdev.device_exclude",
                c.netdev.device_exclude.as_ref(),
            ),
            (
                "collectors.netdev.device_include",
                c.netdev.device_include.as_ref(),
            ),
            ("collectors.vmstat.fields", Some(&c.vmstat.fields)),
        ];
        for (path, re) in regexes {
            if let Some(re) = re {
                if let Err(e) = regex_lite::Regex::new(re) {
                    bad(path, format!("invalid regex: {}", one_line(&e.to_string())));
                }
            }
        }
        if let Some(re) = &c.netclass.device_exclude {
            if let Err(e) = regex_lite::Regex::new(re) {
                bad(
                    "collectors.netclass.device_exclude",
                    format!("invalid regex: {}", one_line(&e.to_string())),
                );
            }
        }
        if c.netdev.device_exclude.is_some() && c.netdev.device_include.is_some() {
            bad(
                "collectors.netdev",
                "device_include and device_exclude are mutually exclusive".into(),
            );
        }
        if c.filesystem.mount_timeout.is_zero() {
            bad(
                "collectors.filesystem.mount_timeout",
                "must be greater than zero".into(),
            );
        }
        if let Some(dir) = &c.textfile.directory {
            if !dir.is_absolute() {
                bad(
                    "collectors.textfile.directory",
                    format!(
                        "must be an absolute path, got {:?}",
                        dir.display().to_string()
                    ),
                );
            }
        }
        if let Some(t) = &self.telemetry {
            t.validate(&mut bad);
        }
        self.web.validate(&mut problems);
        problems
    }
}

/// Compiles a regex that `validate` has already accepted.
pub fn compile(re: &str) -> regex_lite::Regex {
    // Validation ran first, so a failure here is a bug; fall back to a regex matching nothing
    // rather than panicking in a daemon.
    regex_lite::Regex::new(re).unwrap_or_else(|_| never_matches())
}

/// A regex that matches no string.
pub fn never_matches() -> regex_lite::Regex {
    regex_lite::Regex::new("[^\\s\\S]").unwrap_or_else(|_| unreachable!("constant regex"))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Deserializes a duration written as `5s`, `250ms`, `1m30s`.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!("invalid duration {s:?}: {e} (want e.g. \"5s\")"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_default() {
        let c = Config::from_yaml("").expect("empty config");
        assert_eq!(c.listen.0, ["0.0.0.0:9100"]);
        assert!(c.collectors.cpu.enabled);
        assert_eq!(
            c.collectors.filesystem.mount_timeout,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Config::from_yaml("collectors:\n  cpu:\n    enabled: true\n    bogus: 1\n")
            .expect_err("unknown key");
        let msg = e.to_string();
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let yaml = "listen: nonsense\npaths:\n  procfs: relative/proc\ncollectors:\n  vmstat:\n    fields: '('\n  netdev:\n    device_include: 'eth.*'\n    device_exclude: 'lo'\n  filesystem:\n    mount_timeout: 0s\n";
        let e = Config::from_yaml(yaml).expect_err("bad config");
        let paths: Vec<&str> = e.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "listen",
                "paths.procfs",
                "collectors.vmstat.fields",
                "collectors.netdev",
                "collectors.filesystem.mount_timeout"
            ]
        );
    }

    #[test]
    fn every_collector_has_a_switch() {
        let mut c = Collectors::default();
        for name in crate::collectors::names() {
            let on = c
                .enabled_mut(name)
                .unwrap_or_else(|| panic!("no switch for {name}"));
            assert!(*on, "{name} is on by default");
        }
        assert!(c.enabled_mut("nope").is_none());
    }

    #[test]
    fn bad_duration_names_the_value() {
        let e = Config::from_yaml("collectors:\n  filesystem:\n    mount_timeout: soon\n")
            .expect_err("bad duration");
        assert!(e.to_string().contains("invalid duration \"soon\""), "{e}");
    }
}
