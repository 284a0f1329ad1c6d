//! node_exporter's collector command line: every flag node_exporter 1.12.1 defines is accepted,
//! the implemented collectors' flags change their settings exactly as node_exporter's do, and
//! the registry agrees with node_exporter's collector list.

use std::collections::BTreeSet;
use std::path::Path;

use beacon_agent::collectors::REGISTRY;
use beacon_agent::config::Collectors;
use beacon_agent::flags::CollectorFlags;
use beacon_agent::upstream;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/node-exporter")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// node_exporter 1.12.1's collector option flags with their kingpin types.
fn upstream_flags() -> Vec<(String, String)> {
    fixture("collector-flags-1.12.1.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (flag, kind) = l.split_once(' ').expect("flag and type");
            (flag.to_owned(), kind.to_owned())
        })
        .collect()
}

fn apply(args: &[&str]) -> (Collectors, Vec<String>) {
    let flags = CollectorFlags::parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let mut c = Collectors::default();
    let problems = flags.apply(&mut c).iter().map(|p| p.to_string()).collect();
    (c, problems)
}

fn enabled(c: &Collectors) -> Vec<&'static str> {
    c.iter()
        .filter(|(_, s)| s.enabled)
        .map(|(spec, _)| spec.name)
        .collect()
}

#[test]
fn every_node_exporter_collector_flag_is_accepted() {
    for (flag, kind) in upstream_flags() {
        let sample = match kind.as_str() {
            "Bool" => None,
            "Int" => Some("4"),
            "Duration" => Some("3s"),
            _ if flag.ends_with("directory") || flag.ends_with("servicedir") => Some("/srv"),
            _ if flag.ends_with("url") => Some("http://localhost:9001/RPC2"),
            _ => Some("^x$"),
        };
        let args: Vec<String> = match sample {
            Some(v) => vec![format!("--{flag}={v}"), format!("--{flag}"), v.to_owned()],
            None => vec![
                format!("--{flag}"),
                format!("--no-{flag}"),
                format!("--{flag}=false"),
            ],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (_, problems) = apply(&args);
        // A deprecated spelling given twice is fine; only mixing spellings is refused.
        assert!(problems.is_empty(), "{flag}: {problems:?}");
    }
    for c in upstream::collectors() {
        let on = format!("--collector.{}", c.name);
        let off = format!("--no-collector.{}", c.name);
        let (_, problems) = apply(&[&on, &off, &format!("{on}=true")]);
        assert!(problems.is_empty(), "{}: {problems:?}", c.name);
    }
}

#[test]
fn declared_and_pending_flags_are_exactly_node_exporters() {
    let theirs: BTreeSet<String> = upstream_flags().into_iter().map(|(f, _)| f).collect();
    let mut ours = BTreeSet::new();
    for spec in REGISTRY {
        for opt in spec.options {
            assert!(
                ours.insert(opt.flag.to_owned()),
                "{} declared twice",
                opt.flag
            );
            for old in opt.deprecated {
                assert!(ours.insert((*old).to_owned()), "{old} declared twice");
            }
        }
    }
    for (flag, owner, _) in upstream::OPTION_FLAGS {
        assert!(
            ours.insert((*flag).to_owned()),
            "{flag} is both implemented and listed as pending"
        );
        assert!(
            upstream::collector(owner).is_some(),
            "{flag}: unknown owner {owner}"
        );
    }
    assert_eq!(ours, theirs);
}

#[test]
fn registry_matches_node_exporters_collectors_and_defaults() {
    for spec in REGISTRY {
        let up = upstream::collector(spec.name)
            .unwrap_or_else(|| panic!("{} is not a node_exporter collector", spec.name));
        assert_eq!(spec.default_enabled, up.default_enabled, "{}", spec.name);
    }
    assert_eq!(upstream::collectors().count(), 79);
    assert_eq!(
        upstream::collectors().filter(|c| c.default_enabled).count(),
        49
    );
}

#[test]
fn disable_defaults_keeps_only_collectors_named_by_flags_wherever_they_stand() {
    let (c, p) = apply(&[
        "--collector.cpu",
        "--collector.disable-defaults",
        "--collector.meminfo",
    ]);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(enabled(&c), ["cpu", "meminfo"]);
    // A collector named only to be turned off stays off.
    let (c, _) = apply(&[
        "--collector.disable-defaults",
        "--no-collector.cpu",
        "--collector.stat",
    ]);
    assert_eq!(enabled(&c), ["stat"]);
}

#[test]
fn the_state_of_collectors_the_agent_lacks_follows_node_exporter() {
    // cpu's node_cpu_frequency_hertz depends on whether node_exporter's cpufreq collector
    // (enabled by default, not implemented here) would run.
    let (c, _) = apply(&[]);
    assert!(c.upstream_enabled("cpufreq"));
    assert!(!c.upstream_enabled("wifi"), "wifi is off by default");
    let (c, _) = apply(&["--no-collector.cpufreq"]);
    assert!(!c.upstream_enabled("cpufreq"));
    let (c, _) = apply(&["--collector.disable-defaults", "--collector.cpu"]);
    assert!(!c.upstream_enabled("cpufreq"));
    assert!(c.upstream_enabled("cpu"));
    let (c, _) = apply(&["--collector.cpufreq", "--collector.disable-defaults"]);
    assert!(c.upstream_enabled("cpufreq"));
    let (c, _) = apply(&["--collector.wifi", "--no-collector.wifi"]);
    assert!(!c.upstream_enabled("wifi"));
}

#[test]
fn the_last_of_repeated_switches_wins() {
    let (c, _) = apply(&["--no-collector.cpu", "--collector.cpu"]);
    assert_eq!(c.enabled("cpu"), Some(true));
    let (c, _) = apply(&["--collector.cpu", "--collector.cpu=false"]);
    assert_eq!(c.enabled("cpu"), Some(false));
    let (c, _) = apply(&["--collector.cpu=0", "--collector.cpu=T"]);
    assert_eq!(c.enabled("cpu"), Some(true));
}

#[test]
fn missing_collectors_are_warnings_not_errors() {
    let (c, p) = apply(&[
        "--collector.wifi",
        "--collector.systemd",
        "--no-collector.wifi",
        "--collector.systemd.unit-include=ssh.service",
        "--no-collector.btrfs",
    ]);
    assert!(p.is_empty(), "{p:?}");
    let w = c.warnings().join("\n");
    assert!(w.contains("not available in beacon-agent"), "{w}");
    assert!(w.contains(": systemd (ignored)"), "{w}");
    assert!(!w.contains("wifi"), "turned off again: {w}");
    assert!(!w.contains("btrfs"), "only turned off: {w}");
    assert!(
        w.contains("--collector.systemd.unit-include (collector systemd)"),
        "{w}"
    );
    // Turning off what beacon-agent lacks says nothing at all.
    let (c, _) = apply(&[
        "--no-collector.wifi",
        "--no-collector.hwmon",
        "--no-collector.btrfs",
    ]);
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    assert_eq!(c.enabled("hwmon"), Some(false));
}

#[test]
fn deprecated_spellings_work_with_a_warning_and_clash_with_the_current_one() {
    let (c, p) = apply(&["--collector.netdev.device-blacklist=^veth"]);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(
        c.warnings(),
        ["--collector.netdev.device-blacklist is DEPRECATED and will be removed in 2.0.0, use --collector.netdev.device-exclude"]
    );
    let (_, p) = apply(&[
        "--collector.diskstats.ignored-devices=^sd",
        "--collector.diskstats.device-exclude=^vd",
    ]);
    assert_eq!(
        p,
        ["--collector.diskstats.device-exclude: --collector.diskstats.ignored-devices and --collector.diskstats.device-exclude are mutually exclusive"]
    );
}

#[test]
fn bad_values_are_named_by_their_flag() {
    let (_, p) = apply(&[
        "--collector.vmstat.fields=(",
        "--collector.filesystem.mount-timeout=soon",
        "--collector.textfile.directory=relative/dir",
        "--collector.cpu=maybe",
    ]);
    assert_eq!(p.len(), 4, "{p:?}");
    assert!(
        p[0].starts_with("--collector.vmstat.fields: invalid regex"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("--collector.filesystem.mount-timeout: invalid duration \"soon\""),
        "{p:?}"
    );
    assert_eq!(
        p[2],
        "--collector.textfile.directory: must be an absolute path, got \"relative/dir\""
    );
    assert_eq!(p[3], "--collector.cpu: invalid boolean \"maybe\"");
}

#[test]
fn flags_override_the_file_and_a_repeated_list_flag_grows() {
    let yaml =
        "collectors:\n  textfile:\n    directory: [/from/file]\n  cpu:\n    enabled: false\n";
    let mut cfg = beacon_agent::Config::from_yaml(yaml).expect("valid yaml");
    let flags = CollectorFlags::parse_from([
        "--collector.textfile.directory=/a",
        "--collector.textfile.directory",
        "/b",
        "--collector.cpu",
    ])
    .expect("parse");
    assert!(flags.apply(&mut cfg.collectors).is_empty());
    let ctx = cfg.context("textfile").expect("registered");
    let spec = REGISTRY
        .iter()
        .find(|s| s.name == "textfile")
        .expect("textfile");
    assert_eq!(ctx.list(&spec.options[0]), ["/a", "/b"]);
    assert_eq!(cfg.collectors.enabled("cpu"), Some(true));
}

#[test]
fn the_manifests_collector_flags_apply_cleanly() {
    for name in [
        "kube-prometheus.yaml",
        "helm-prometheus-node-exporter.yaml",
        "helm-prometheus-node-exporter-kube-rbac-proxy.yaml",
        "kube-prometheus-stack.yaml",
    ] {
        let text = fixture(name);
        let args: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- "))
            .filter(|a| a.starts_with("--collector.") || a.starts_with("--no-collector."))
            .collect();
        let (c, p) = apply(&args);
        assert!(p.is_empty(), "{name}: {p:?}");
        assert!(c.warnings().is_empty(), "{name}: {:?}", c.warnings());
        if name == "kube-prometheus.yaml" {
            assert_eq!(args.len(), 6);
            assert_eq!(c.enabled("hwmon"), Some(false));
            assert_eq!(c.enabled("netclass"), Some(true));
        }
    }
}

#[test]
fn the_example_config_shows_every_collector_option_with_its_default() {
    use beacon_agent::collector::Kind;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/agent.example.yaml");
    let text = std::fs::read_to_string(&path).expect("read example config");
    let example = beacon_agent::Config::load(&path).expect("valid example");
    let default = beacon_agent::Config::default();
    for spec in REGISTRY {
        assert!(
            text.contains(&format!("\n  {}:", spec.name)),
            "collectors.{} is not in the example",
            spec.name
        );
        let (ours, theirs) = (
            example.context(spec.name).expect("registered"),
            default.context(spec.name).expect("registered"),
        );
        for opt in spec.options {
            let line = text
                .lines()
                .find(|l| {
                    l.trim_start()
                        .trim_start_matches("# ")
                        .starts_with(&format!("{}:", opt.key))
                })
                .unwrap_or_else(|| {
                    panic!("collectors.{}.{} is not in the example", spec.name, opt.key)
                });
            if line.contains("# example") {
                continue;
            }
            let same = match opt.kind {
                Kind::Regex(_) => {
                    ours.regex(opt).map(|r| r.as_str().to_owned())
                        == theirs.regex(opt).map(|r| r.as_str().to_owned())
                }
                Kind::Bool(_) => ours.bool(opt) == theirs.bool(opt),
                Kind::Duration(_) => ours.duration(opt) == theirs.duration(opt),
                Kind::Uint(_) => ours.uint(opt) == theirs.uint(opt),
                Kind::List(_) | Kind::Paths(_) => ours.list(opt) == theirs.list(opt),
            };
            assert!(
                same,
                "collectors.{}.{}: the example shows another value than the default",
                spec.name, opt.key
            );
        }
    }
}
