//! Agent configuration: YAML parsing, defaults, and validation that reports every problem with
//! its path. `beacon-agent check-config` runs exactly `Config::load`.
//!
//! Phases: parse (serde, unknown keys are errors), then `validate` (pure, collects every
//! problem), then the collectors' constructors compile what was validated.

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod collectors;
pub mod telemetry;
pub mod web;

pub use collectors::Collectors;

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
        if let Some(t) = &self.telemetry {
            t.validate(&mut bad);
        }
        self.web.validate(&mut problems);
        self.collectors.validate(&mut problems);
        problems
    }

    /// What the collector called `name` is built from (tests build single collectors).
    pub fn context(&self, name: &str) -> Option<crate::collector::Context<'_>> {
        self.collectors
            .iter()
            .find(|(spec, _)| spec.name == name)
            .map(|(spec, settings)| crate::collector::Context {
                paths: &self.paths,
                spec,
                settings,
                collectors: &self.collectors,
            })
    }
}

/// A regex that matches every string, as Go's empty pattern does.
pub fn matches_all() -> regex_lite::Regex {
    regex_lite::Regex::new("").unwrap_or_else(|_| unreachable!("constant regex"))
}

pub use beacon_common::units::{duration, size};

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn empty_config_is_default() {
        let c = Config::from_yaml("").expect("empty config");
        assert_eq!(c.listen.0, ["0.0.0.0:9100"]);
        assert_eq!(c.collectors.enabled("cpu"), Some(true));
        let fs = c.context("filesystem").expect("filesystem is registered");
        assert_eq!(
            fs.duration(&crate::collectors::filesystem::MOUNT_TIMEOUT),
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
                "collectors.filesystem.mount_timeout",
                "collectors.netdev",
            ]
        );
    }

    #[test]
    fn every_collector_has_a_switch() {
        let mut c = Collectors::default();
        for name in crate::collectors::names() {
            assert_eq!(c.enabled(name), Some(true), "{name} is on by default");
            c.set_enabled(name, false, collectors::Origin::File)
                .expect("registered collector");
            assert_eq!(c.enabled(name), Some(false), "{name}");
        }
        assert!(c.enabled("nope").is_none());
        assert!(c
            .set_enabled("nope", true, collectors::Origin::File)
            .is_err());
    }

    #[test]
    fn bad_duration_names_the_value() {
        let e = Config::from_yaml("collectors:\n  filesystem:\n    mount_timeout: soon\n")
            .expect_err("bad duration");
        assert!(e.to_string().contains("invalid duration \"soon\""), "{e}");
    }
}
