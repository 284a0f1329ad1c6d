//! The scrape framework over changing and broken procfs trees: counters never go backwards
//! across scrapes, CPU hotplug resets a CPU, and a broken source fails only its collector.

use std::path::Path;

use beacon_agent::{collectors, Config, Scraper};

fn config_for(root: &Path) -> Config {
    let mut cfg = Config::default();
    cfg.paths.procfs = root.join("proc");
    cfg.paths.sysfs = root.join("sys");
    cfg.paths.rootfs = root.to_owned();
    cfg.paths.udev_data = root.join("udev");
    cfg
}

fn cpu_value(text: &str, cpu: &str, mode: &str) -> Option<f64> {
    let prefix = format!("node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().expect("number"))
}

#[test]
fn cpu_counters_survive_jumps_backwards_and_hotplug() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("proc")).expect("mkdir");
    let stat = dir.path().join("proc/stat");
    let cfg = config_for(dir.path());
    let cpu = collectors::build(&cfg)
        .into_iter()
        .find(|c| c.name() == "cpu")
        .expect("cpu collector");
    let scrape = |content: &str| {
        std::fs::write(&stat, content).expect("write stat");
        let mut w = beacon_agent::metrics::MetricWriter::new();
        cpu.collect(&mut w).expect("collect");
        w.render_to_string()
    };

    let first = scrape("cpu0 100 0 50 100000 20 0 0 0 0 0\ncpu1 200 0 60 100000 30 0 0 0 0 0\n");
    assert_eq!(cpu_value(&first, "0", "idle"), Some(1000.0));
    // idle goes back 1 s and iowait back 0.1 s on cpu0 (a known kernel quirk): keep the old values.
    let second = scrape("cpu0 110 0 55 99900 10 0 0 0 0 0\ncpu1 210 0 61 100100 31 0 0 0 0 0\n");
    assert_eq!(cpu_value(&second, "0", "idle"), Some(1000.0));
    assert_eq!(cpu_value(&second, "0", "iowait"), Some(0.2));
    assert_eq!(cpu_value(&second, "0", "user"), Some(1.1));
    assert_eq!(cpu_value(&second, "1", "idle"), Some(1001.0));
    // cpu1 goes offline: it disappears from the output.
    let third = scrape("cpu0 120 0 56 100500 21 0 0 0 0 0\n");
    assert_eq!(cpu_value(&third, "1", "idle"), None);
    // cpu1 comes back with fresh counters (hotplug): reported as the kernel says.
    let fourth = scrape("cpu0 121 0 57 100600 22 0 0 0 0 0\ncpu1 1 0 1 50 0 0 0 0 0 0\n");
    assert_eq!(cpu_value(&fourth, "1", "idle"), Some(0.5));
    // cpu0's idle dropped by more than 3 s: that is a replaced CPU, so its cache resets too.
    let fifth = scrape("cpu0 5 0 5 600 2 0 0 0 0 0\ncpu1 2 0 2 60 0 0 0 0 0 0\n");
    assert_eq!(cpu_value(&fifth, "0", "idle"), Some(6.0));
    assert_eq!(cpu_value(&fifth, "0", "user"), Some(0.05));
}

#[test]
fn a_broken_source_fails_only_its_collector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let proc = dir.path().join("proc");
    std::fs::create_dir_all(&proc).expect("mkdir");
    std::fs::write(proc.join("stat"), "cpu0 1 2 3 4 5 6 7 8 9 10\nintr 5 1 2\nctxt 7\nbtime 100\nprocesses 9\nprocs_running 1\nprocs_blocked 0\n")
        .expect("write stat");
    std::fs::write(proc.join("loadavg"), "garbage\n").expect("write loadavg");
    // meminfo is missing entirely.
    let mut cfg = config_for(dir.path());
    for c in collectors::names() {
        let keep = matches!(c, "cpu" | "stat" | "loadavg" | "meminfo");
        set_enabled(&mut cfg, c, keep);
    }
    let text = Scraper::new(&cfg).scrape();
    for (collector, ok) in [("cpu", 1), ("stat", 1), ("loadavg", 0), ("meminfo", 0)] {
        let line = format!("node_scrape_collector_success{{collector=\"{collector}\"}} {ok}\n");
        assert!(text.contains(&line), "expected {line:?} in:\n{text}");
    }
    assert!(text.contains("node_context_switches_total 7\n"));
    assert!(!text.contains("node_load1 "));
}

fn set_enabled(cfg: &mut Config, name: &str, on: bool) {
    cfg.collectors
        .set_enabled(name, on, beacon_agent::config::collectors::Origin::File)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}
