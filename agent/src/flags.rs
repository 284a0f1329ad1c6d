//! node_exporter's collector flags, derived from the collectors' specs and `upstream.rs`:
//! `--collector.<name>` / `--no-collector.<name>` for every collector node_exporter 1.12 knows,
//! `--collector.disable-defaults`, and every option flag of node_exporter's collectors in its
//! current and deprecated spellings. Options of implemented collectors set that collector's
//! settings exactly as the YAML keys do (`config::Collectors::set_flag`); the rest are accepted
//! and named in a warning at start.
//!
//! Parsing follows kingpin: `--flag=value` and `--flag value`, a boolean as `--flag`,
//! `--flag=false` or `--no-flag`, repeated flags applied in order (the last wins, a list
//! grows), and `--collector.disable-defaults` turning off every collector not named by a flag
//! wherever it appears.

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

use crate::collectors::REGISTRY;
use crate::config::collectors::{parse_bool, Collectors, Origin};
use crate::upstream::{self, FlagKind};
use beacon_common::Problem;

/// `--collector.disable-defaults`.
const DISABLE_DEFAULTS: &str = "collector.disable-defaults";

/// How an argument takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Bare, or `=true`/`=false`.
    Switch,
    /// One value per occurrence.
    Value,
}

/// Every flag this module defines: (flag without `--`, shape, hidden, help).
fn definitions() -> Vec<(String, Shape, bool, String)> {
    let mut defs = Vec::new();
    defs.push((
        DISABLE_DEFAULTS.to_owned(),
        Shape::Switch,
        false,
        "Set all collectors to disabled by default.".to_owned(),
    ));
    for c in upstream::collectors() {
        let implemented = REGISTRY.iter().any(|s| s.name == c.name);
        let default = if c.default_enabled {
            "enabled"
        } else {
            "disabled"
        };
        let help = if implemented {
            format!("Enable the {} collector (default: {default}).", c.name)
        } else {
            format!(
                "Enable the {} collector (default: {default}; not available in beacon-agent yet: accepted and ignored with a warning).",
                c.name
            )
        };
        defs.push((
            format!("collector.{}", c.name),
            Shape::Switch,
            !implemented,
            help,
        ));
        defs.push((
            format!("no-collector.{}", c.name),
            Shape::Switch,
            true,
            format!("Disable the {} collector.", c.name),
        ));
    }
    for spec in REGISTRY {
        for opt in spec.options {
            let shape = match opt.kind {
                crate::collector::Kind::Bool(_) => Shape::Switch,
                _ => Shape::Value,
            };
            defs.push((opt.flag.to_owned(), shape, false, opt.help.to_owned()));
            if shape == Shape::Switch {
                defs.push((format!("no-{}", opt.flag), shape, true, opt.help.to_owned()));
            }
            for old in opt.deprecated {
                defs.push((
                    (*old).to_owned(),
                    shape,
                    true,
                    format!("DEPRECATED: Use --{}", opt.flag),
                ));
            }
        }
    }
    for (flag, owner, kind) in upstream::OPTION_FLAGS {
        let help = format!("node_exporter option of the {owner} collector (accepted and ignored)");
        let shape = if *kind == FlagKind::Bool {
            Shape::Switch
        } else {
            Shape::Value
        };
        defs.push(((*flag).to_owned(), shape, true, help.clone()));
        if shape == Shape::Switch {
            defs.push((format!("no-{flag}"), shape, true, help));
        }
    }
    defs
}

/// The collector flags given on the command line, in order.
#[derive(Debug, Clone, Default)]
pub struct CollectorFlags {
    /// (position on the command line, flag without `--`, value).
    uses: Vec<(usize, String, String)>,
}

impl Args for CollectorFlags {
    fn augment_args(mut cmd: Command) -> Command {
        for (flag, shape, hidden, help) in definitions() {
            let arg = Arg::new(flag.clone())
                .long(flag)
                .global(true)
                .hide(hidden)
                .help(help)
                .action(ArgAction::Append)
                .value_parser(clap::builder::StringValueParser::new())
                .help_heading("Collectors (node_exporter flags)");
            let arg = match shape {
                Shape::Switch => arg
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_name("BOOL"),
                // kingpin takes the next word as the value whatever it looks like, so
                // `--collector.netdev.device-exclude -foo` works there too.
                Shape::Value => arg
                    .num_args(1)
                    .allow_hyphen_values(true)
                    .value_name("VALUE"),
            };
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for CollectorFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = CollectorFlags::default();
        flags.update_from_arg_matches(m)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for (flag, _, _, _) in definitions() {
            let (Some(indices), Some(values)) = (m.indices_of(&flag), m.get_many::<String>(&flag))
            else {
                continue;
            };
            for (i, v) in indices.zip(values) {
                self.uses.push((i, flag.clone(), v.clone()));
            }
        }
        self.uses.sort_by_key(|(i, _, _)| *i);
        Ok(())
    }
}

impl CollectorFlags {
    /// Collector flags from an argument list (tests; the binary flattens them into its CLI).
    pub fn parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cmd = Self::augment_args(Command::new("beacon-agent").no_binary_name(true));
        Self::from_arg_matches(&cmd.try_get_matches_from(args)?)
    }

    /// Whether no collector flag was given.
    pub fn is_empty(&self) -> bool {
        self.uses.is_empty()
    }

    /// Applies the flags over `collectors` (flags override the file). Returns every problem,
    /// each named by its flag.
    pub fn apply(&self, collectors: &mut Collectors) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut disable_defaults = false;
        for (_, flag, value) in &self.uses {
            let res = if flag == DISABLE_DEFAULTS {
                parse_bool(value).map(|on| disable_defaults = on)
            } else if let Some(name) = flag
                .strip_prefix("no-collector.")
                .filter(|n| !n.contains('.'))
            {
                collectors.set_enabled(name, false, Origin::Flag(""))
            } else if let Some(name) = flag
                .strip_prefix("collector.")
                .filter(|n| upstream::collector(n).is_some())
            {
                parse_bool(value).and_then(|on| collectors.set_enabled(name, on, Origin::Flag("")))
            } else {
                let negated = flag.starts_with("no-");
                collectors.set_flag(flag, (!negated).then_some(value.as_str()))
            };
            if let Err(message) = res {
                problems.push(Problem::new(format!("--{flag}"), message));
            }
        }
        if disable_defaults {
            collectors.disable_defaults();
        }
        problems
    }
}
