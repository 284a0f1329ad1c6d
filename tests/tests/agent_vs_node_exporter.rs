//! Side by side with a real node_exporter (Debian's prometheus-node-exporter) on this host: the
//! same metric families, the same label sets, and the same values (exactly for sizes and static
//! facts, within the scrape gap for counters).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use beacon_e2e::{expo, free_port, get_text, require_bin, tempdir, Agent, Server};

/// Families compared exactly: sizes, limits and static facts that cannot change between scrapes.
const EXACT: &[&str] = &[
    "node_memory_MemTotal_bytes",
    "node_memory_SwapTotal_bytes",
    "node_memory_Hugepagesize_bytes",
    "node_filesystem_size_bytes",
    "node_filesystem_files",
    "node_filesystem_readonly",
    "node_filesystem_device_error",
    "node_boot_time_seconds",
    "node_network_mtu_bytes",
    "node_network_speed_bytes",
    "node_network_info",
    "node_network_up",
    "node_network_iface_id",
    "node_network_flags",
    "node_disk_info",
    "node_uname_info",
    "node_filefd_maximum",
    "node_nf_conntrack_entries_limit",
    "node_scrape_collector_success",
    "node_textfile_scrape_error",
    "node_textfile_mtime_seconds",
    "node_time_zone_offset_seconds",
    "node_time_clocksource_available_info",
    "node_time_clocksource_current_info",
    "node_timex_tick_seconds",
    "node_timex_status",
    "node_timex_sync_status",
    "node_cooling_device_max_state",
    "app_jobs_total",
];

/// Families Debian's node_exporter 1.5 reports that 1.12 no longer does: since 1.6
/// (node_exporter#3049, "meminfo: Convert linux implementation to use procfs lib") only the
/// /proc/meminfo keys procfs' `Meminfo` maps are reported, so newer kernels' keys are not.
const DROPPED_SINCE_1_5: &[&str] = &[
    "node_memory_Balloon_bytes",
    "node_memory_FileHugePages_bytes",
    "node_memory_FilePmdMapped_bytes",
    "node_memory_Hugetlb_bytes",
    "node_memory_KReclaimable_bytes",
    "node_memory_SecPageTables_bytes",
    "node_memory_ShadowCallStack_bytes",
    "node_memory_Unaccepted_bytes",
];

/// Families node_exporter 1.12 reports where the host has them and Debian's 1.5 never does:
/// `node_pressure_irq_stalled_seconds_total` (1.7, node_exporter#3048, Linux 6.1+ with IRQ time
/// accounting) and `node_cpu_online` (1.7, node_exporter#3032, where cpu0 can go offline).
const ADDED_SINCE_1_5: &[&str] = &["node_pressure_irq_stalled_seconds_total", "node_cpu_online"];

fn is_own(name: &str) -> bool {
    name.starts_with("go_")
        || name.starts_with("promhttp_")
        || name.starts_with("process_")
        || name == "node_exporter_build_info"
        || name.starts_with("beacon_agent_")
}

fn label_sets(e: &expo::Exposition) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &e.samples {
        if !is_own(&s.name) {
            m.entry(s.name.clone()).or_default().insert(s.label_key());
        }
    }
    m
}

/// Takes out of the agent's output what node_exporter 1.6–1.12 added over Debian's 1.5, after
/// checking it is well formed, so the rest compares with 1.5 as is.
fn as_of_1_5(ours: &mut expo::Exposition) {
    ours.samples.retain_mut(|s| {
        let name = s.name.as_str();
        // 1.6 (#2515): node_network_info's `adminstate` (IFF_UP of the interface's flags).
        if name == "node_network_info" {
            let state = s.labels.remove("adminstate");
            assert!(
                matches!(state.as_deref(), Some("up" | "down" | "unknown")),
                "{name}: adminstate {state:?}"
            );
        }
        // 1.9 (#3022): node_disk_info's `rotational` ("0" or "1").
        if name == "node_disk_info" {
            let r = s.labels.remove("rotational");
            assert!(
                matches!(r.as_deref(), Some("0" | "1")),
                "{name}: rotational {r:?}"
            );
        }
        if name.starts_with("node_filesystem_") {
            // 1.9 (#2970): node_filesystem_mount_info{device,major,minor,mountpoint}.
            if name == "node_filesystem_mount_info" {
                return false;
            }
            // 1.8 (#2923): every family carries `device_error`, empty when healthy, and a
            // failed mount keeps its readonly sample.
            let error = s.labels.get("device_error").cloned();
            assert!(error.is_some(), "{name}: no device_error label");
            if error.as_deref() == Some("") {
                s.labels.remove("device_error");
            } else if name == "node_filesystem_readonly" {
                return false;
            }
        }
        true
    });
}

#[test]
fn agent_matches_node_exporter_on_this_host() {
    let node_exporter = require_bin("prometheus-node-exporter", "prometheus-node-exporter");
    let dir = tempdir();
    let textfiles = dir.path().join("textfile");
    std::fs::create_dir(&textfiles).expect("mkdir");
    std::fs::write(
        textfiles.join("app.prom"),
        "# HELP app_jobs_total Jobs run.\n# TYPE app_jobs_total counter\napp_jobs_total{queue=\"a\"} 3\n",
    )
    .expect("write textfile");

    let port = free_port();
    let mut cmd = Command::new(node_exporter);
    cmd.arg("--collector.disable-defaults")
        // The collectors Beacon implements are enabled on both sides.
        .args(beacon_agent::collectors::names().map(|c| format!("--collector.{c}")))
        // Both sides read link statistics over rtnetlink (node_exporter's default
        // `--collector.netdev.netlink`, whose families 1.5 and 1.12 share, nohandler included).
        // Debian patches these defaults; Beacon follows upstream node_exporter.
        .arg("--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")
        .arg("--collector.netdev.device-exclude=^$")
        // node_exporter 1.8 (#2898) added z?ram to diskstats' default device-exclude (Debian's 1.5
        // still reports zram devices).
        .arg("--collector.diskstats.device-exclude=^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$")
        .arg(format!("--collector.textfile.directory={}", textfiles.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut ne = Server::start("node_exporter", cmd, dir.path()).expect("start node_exporter");
    let ne_url = format!("http://127.0.0.1:{port}/metrics");
    ne.wait_ready(&ne_url).expect("node_exporter ready");

    let mut cfg = beacon_agent::Config::default();
    cfg.collectors
        .set_flag("collector.textfile.directory", textfiles.to_str())
        .expect("valid directory");
    let agent = Agent::start(cfg).expect("start agent");

    // Bracket the agent's scrape between two node_exporter scrapes: counters must fall between.
    let before = expo::parse(&get_text(&ne_url).expect("scrape node_exporter")).expect("parse ne");
    let mut ours =
        expo::parse(&get_text(&agent.url("/metrics")).expect("scrape agent")).expect("parse agent");
    as_of_1_5(&mut ours);
    let after = expo::parse(&get_text(&ne_url).expect("scrape node_exporter")).expect("parse ne");

    // 1. The same families.
    let theirs: BTreeSet<String> = before
        .family_names()
        .into_iter()
        .filter(|n| !is_own(n) && !DROPPED_SINCE_1_5.contains(&n.as_str()))
        .collect();
    let mine: BTreeSet<String> = ours
        .family_names()
        .into_iter()
        .filter(|n| !is_own(n) && !ADDED_SINCE_1_5.contains(&n.as_str()))
        .collect();
    let missing: Vec<_> = theirs.difference(&mine).collect();
    let extra: Vec<_> = mine.difference(&theirs).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "families differ:\n missing {missing:?}\n extra {extra:?}"
    );

    // 2. The same types and label sets in every family.
    let mut problems = Vec::new();
    for name in &theirs {
        if before.types.get(name) != ours.types.get(name) {
            problems.push(format!(
                "{name}: type {:?} vs ours {:?}",
                before.types.get(name),
                ours.types.get(name)
            ));
        }
    }
    let (ls_theirs, ls_mine) = (label_sets(&before), label_sets(&ours));
    for (name, sets) in &ls_theirs {
        if name == "node_scrape_collector_duration_seconds"
            || DROPPED_SINCE_1_5.contains(&name.as_str())
        {
            continue;
        }
        let mine = ls_mine.get(name).cloned().unwrap_or_default();
        if *sets != mine {
            let only_theirs: Vec<_> = sets.difference(&mine).collect();
            let only_mine: Vec<_> = mine.difference(sets).collect();
            problems.push(format!("{name}: label sets differ: node_exporter only {only_theirs:?}, agent only {only_mine:?}"));
        }
    }

    // 3. Values: exact for static facts, bracketed for counters.
    let mem_total = ours.value("node_memory_MemTotal_bytes", &[]).unwrap_or(0.0);
    for s in &ours.samples {
        if is_own(&s.name) || s.name == "node_scrape_collector_duration_seconds" {
            continue;
        }
        let labels: Vec<(&str, &str)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (Some(a), Some(b)) = (
            before.value(&s.name, &labels),
            after.value(&s.name, &labels),
        ) else {
            continue; // label-set differences are reported above
        };
        let family = ours.family_of(&s.name);
        let ty = ours
            .types
            .get(&family)
            .map(String::as_str)
            .unwrap_or("untyped");
        let v = s.value;
        let tol = |x: f64| x.abs() * 1e-9 + 1e-9;
        if EXACT.contains(&family.as_str()) {
            if (v - a).abs() > tol(a) && (v - b).abs() > tol(b) {
                problems.push(format!(
                    "{}{}: agent {v} vs node_exporter {a}/{b} (must be equal)",
                    s.name,
                    s.label_key()
                ));
            }
        } else if ty == "counter" || family.starts_with("node_vmstat_") {
            let (lo, hi) = (a.min(b), a.max(b));
            if v < lo - tol(lo) || v > hi + tol(hi) {
                problems.push(format!(
                    "{}{}: counter {v} outside node_exporter's [{lo}, {hi}]",
                    s.name,
                    s.label_key()
                ));
            }
        } else if family.starts_with("node_memory_") && family.ends_with("_bytes") {
            // Memory moves between scrapes; it must agree to 1% of total memory.
            if (v - a).abs() > mem_total * 0.01 && (v - b).abs() > mem_total * 0.01 {
                problems.push(format!("{}: agent {v} vs node_exporter {a}/{b}", s.name));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
