//! The `beacon-agent` binary's interface: `check-config` (every problem with its path, exit 1),
//! `collect` (one collection on stdout), the example config, and node_exporter's flag names.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_beacon-agent"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run beacon-agent");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn example_config_is_valid() {
    let path = root().join("config/agent.example.yaml");
    beacon_agent::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let (out, stdout, stderr) = run(bin().arg("check-config").arg("--config").arg(&path));
    assert!(out.status.success(), "check-config failed: {stderr}");
    assert_eq!(stdout, "config ok\n");
}

#[test]
fn every_bad_config_fixture_is_rejected_with_its_paths() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("read bad-config dir") {
        let path = entry.expect("dir entry").path();
        let text = std::fs::read_to_string(&path).expect("read fixture");
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no '# expect:' line",
            path.display()
        );
        let args = text.lines().filter_map(|l| l.strip_prefix("# arg: "));
        let (out, _, stderr) = run(bin()
            .arg("check-config")
            .arg("--config")
            .arg(&path)
            .args(args));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{} should fail check-config",
            path.display()
        );
        assert!(
            stderr.contains(&path.display().to_string()),
            "error names the file: {stderr}"
        );
        for e in expected {
            assert!(
                stderr.contains(e),
                "{}: expected {e:?} in:\n{stderr}",
                path.display()
            );
        }
        n += 1;
    }
    assert!(n >= 9, "expected the bad-config fixtures, found {n}");
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let (out, _, stderr) = run(bin().args(["check-config", "--config", "/nonexistent/agent.yaml"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("read /nonexistent/agent.yaml"), "{stderr}");
}

#[test]
fn collect_prints_one_collection() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host");
    let (out, stdout, stderr) = run(bin()
        .arg("collect")
        .arg("--path.procfs")
        .arg(fixtures.join("proc"))
        .arg("--path.sysfs")
        .arg(fixtures.join("sys")));
    assert!(out.status.success(), "collect failed: {stderr}");
    // The fixture tree's values, so the flags were honoured.
    assert!(
        stdout.contains("node_boot_time_seconds 1.418183276e+09\n"),
        "{stdout}"
    );
    assert!(stdout.contains("node_scrape_collector_success{collector=\"cpu\"} 1\n"));
    assert!(stdout.contains("# TYPE process_resident_memory_bytes gauge\n"));
}

#[test]
fn node_exporter_flag_names_are_accepted() {
    // --web.listen-address is validated like --listen: a bad one is reported with its path.
    let (out, _, stderr) = run(bin().args(["check-config", "--web.listen-address", "nope"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("listen: invalid listen address \"nope\""),
        "{stderr}"
    );
    let (out, _, stderr) = run(bin().args([
        "check-config",
        "--web.listen-address",
        ":9100",
        "--path.rootfs",
        "/",
    ]));
    assert!(out.status.success(), "{stderr}");
    let (out, _, stderr) = run(bin().args(["check-config", "--path.procfs", "relative"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("paths.procfs: must be an absolute path"),
        "{stderr}"
    );
}

/// The example config documents the telemetry section commented out (a slim build rejects
/// it); uncommented, it is a valid configuration.
#[cfg(feature = "telemetry")]
#[test]
fn example_telemetry_section_is_valid() {
    let text = std::fs::read_to_string(root().join("config/agent.example.yaml"))
        .expect("read example config");
    let block: String = text
        .lines()
        .skip_while(|l| *l != "# --- telemetry ---")
        .skip(1)
        .take_while(|l| *l != "# --- end telemetry ---")
        .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
        .collect();
    assert!(
        block.contains("influxdb:"),
        "telemetry block found: {block}"
    );
    let cfg = beacon_agent::Config::from_yaml(&block).unwrap_or_else(|e| panic!("{e}\n{block}"));
    let t = cfg.telemetry.expect("telemetry section");
    assert!(t.mqtt.is_some() && t.influxdb.is_some());
}

#[test]
fn log_lines_are_logfmt_by_default_and_json_on_request() {
    // Asking for a collector beacon-agent lacks logs one warning: a line to look at.
    let (out, _, stderr) = run(bin().args(["check-config", "--collector.wifi"]));
    assert!(out.status.success(), "{stderr}");
    let line = stderr.lines().next().unwrap_or_default();
    assert!(line.starts_with("time="), "{stderr}");
    assert!(
        line.contains(" level=WARN source=beacon_agent msg=\"node_exporter collectors requested but not available"),
        "{stderr}"
    );
    let (out, _, stderr) =
        run(bin().args(["check-config", "--collector.wifi", "--log.format=json"]));
    assert!(out.status.success(), "{stderr}");
    let line = stderr.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("{\"time\":\"") && line.ends_with('}'),
        "{stderr}"
    );
    assert!(
        line.contains(
            ",\"level\":\"WARN\",\"source\":\"beacon_agent\",\"msg\":\"node_exporter collectors"
        ),
        "{stderr}"
    );
    let (out, _, stderr) = run(bin().args(["check-config", "--log.format=xml"]));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // node_exporter's --runtime.gomaxprocs is accepted.
    let (out, _, stderr) = run(bin().args(["check-config", "--runtime.gomaxprocs=2"]));
    assert!(out.status.success(), "{stderr}");
}
