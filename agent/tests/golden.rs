//! Golden tests: each collector run over the fixture tree in `tests/fixtures/host` must render
//! exactly `tests/golden/<collector>.prom`. Run with `UPDATE_GOLDEN=1` to rewrite the files after
//! an intended change, then review the diff.
//!
//! Collectors whose output depends on the live host (filesystem's statfs, time, timex, uname)
//! are tested in their own modules instead.

use std::path::{Path, PathBuf};

use beacon_agent::metrics::MetricWriter;
use beacon_agent::{collectors, Config};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The config every golden test runs with: all roots inside the fixture tree.
fn fixture_config() -> Config {
    let host = fixtures().join("host");
    let mut cfg = Config::default();
    cfg.paths.procfs = host.join("proc");
    cfg.paths.sysfs = host.join("sys");
    cfg.paths.rootfs = host.join("root");
    cfg.paths.udev_data = host.join("run/udev/data");
    let dir = fixtures().join("textfile");
    cfg.collectors
        .set_flag("collector.textfile.directory", dir.to_str())
        .expect("valid directory");
    cfg
}

/// Runs one collector over the fixtures and compares with its golden file.
fn check(name: &str) {
    check_with(name, name, &[]);
}

/// Runs collector `name` over the fixtures with node_exporter flags `flags` set, and compares
/// with `tests/golden/<golden>.prom`.
fn check_with(name: &str, golden: &str, flags: &[(&str, &str)]) {
    if name == "textfile" {
        pin_textfile_mtimes();
    }
    let mut cfg = fixture_config();
    for (flag, value) in flags {
        cfg.collectors
            .set_flag(flag, Some(value))
            .unwrap_or_else(|e| panic!("--{flag}: {e}"));
    }
    let collector =
        collectors::build_one(&cfg, name).unwrap_or_else(|| panic!("no collector named {name}"));
    let mut w = MetricWriter::new();
    let result = collector.collect(&mut w);
    let mut got = w.render_to_string();
    if let Err(e) = result {
        // Comments are valid text format; the error text is part of the contract too.
        got.push_str(&format!("# collect error: {e}\n"));
    }
    // Paths in the output (error messages, the textfile collector's `file` label and default
    // HELP text) depend on where the repository is checked out.
    let got = got.replace(&fixtures().display().to_string(), "$FIXTURES");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{golden}.prom"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if got != want {
        let diff: Vec<String> = diff_lines(&want, &got);
        panic!(
            "{golden} output differs from {} (UPDATE_GOLDEN=1 rewrites it):\n{}",
            path.display(),
            diff.join("\n")
        );
    }
}

/// A checkout gives files the time of the checkout as mtime: pin the textfile fixtures' mtimes
/// so that `node_textfile_mtime_seconds` is deterministic.
fn pin_textfile_mtimes() {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let mut dirs = vec![fixtures().join("textfile"), fixtures().join("textfile.d")];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir);
        for entry in entries.unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            std::fs::File::open(&path)
                .and_then(|f| f.set_modified(t))
                .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
        }
    }
}

/// A small line diff: lines only in the golden file (-) and only in the output (+).
fn diff_lines(want: &str, got: &str) -> Vec<String> {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let mut out = Vec::new();
    for l in &w {
        if !g.contains(l) {
            out.push(format!("- {l}"));
        }
    }
    for l in &g {
        if !w.contains(l) {
            out.push(format!("+ {l}"));
        }
    }
    if out.is_empty() {
        out.push("(same lines, different order)".into());
    }
    out
}

macro_rules! golden {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
    };
}

golden!(
    conntrack,
    cpu,
    diskstats,
    filefd,
    hwmon,
    loadavg,
    meminfo,
    netclass,
    netdev,
    pressure,
    stat,
    textfile,
    thermal_zone,
    vmstat,
);

/// The opt-in `/proc/cpuinfo` families. The fixture is in the x86 layout, which is the one
/// the agent parses when built for x86.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[test]
fn cpu_info() {
    check_with(
        "cpu",
        "cpu_info",
        &[
            (
                "collector.cpu.info.flags-include",
                "^(aes|avx.?|sse4_[12])$",
            ),
            ("collector.cpu.info.bugs-include", "^(mds|spectre_.*)$"),
        ],
    );
}

/// node_exporter 1.12's textfile directories: repeatable glob patterns; a family whose HELP
/// differs from the first HELP of its name is left out.
#[test]
fn textfile_globs() {
    let pattern = fixtures().join("textfile.d/*");
    check_with(
        "textfile",
        "textfile_globs",
        &[(
            "collector.textfile.directory",
            pattern.to_str().expect("utf-8 path"),
        )],
    );
}

/// The opt-in softirq family.
#[test]
fn stat_softirq() {
    check_with(
        "stat",
        "stat_softirq",
        &[("collector.stat.softirq", "true")],
    );
}

#[test]
fn golden_list_covers_every_file_collector() {
    // A new collector must get a golden file or be listed here as host-dependent.
    let host_dependent = ["filesystem", "time", "timex", "uname"];
    for name in collectors::names() {
        let golden =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.prom"));
        assert!(
            host_dependent.contains(&name) || golden.exists(),
            "collector {name} has no golden file"
        );
    }
}
