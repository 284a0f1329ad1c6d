//! The `beacon-router` binary: `check-config` accepts a valid config and reports every problem of
//! a bad one with its path.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_beacon-router"))
}

#[test]
fn check_config_reports_problems_with_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "listen: 127.0.0.1:9094\n").expect("write");
    let out = bin()
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "config ok\n");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "receivers:\n  - name: team\n    slack:\n      - webhook_url_file: /nonexistent/slack-url\n\
route:\n  receiver: team\n  routes:\n    - receiver: pager\n",
    )
    .expect("write");
    let out = bin()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
    assert!(stderr.contains("route.routes[0].receiver"), "{stderr}");
}

#[test]
fn example_config_is_checked_by_the_binary_up_to_its_secret_files() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/router.example.yaml");
    let out = bin()
        .args(["check-config", "--config", example])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The example points at /etc/beacon-router/*: on a machine without them, check-config
    // names each missing secret file by path and never prints a secret.
    if std::path::Path::new("/etc/beacon-router").exists() {
        assert!(out.status.success(), "{stderr}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("/etc/beacon-router/"), "{stderr}");
        assert!(!stderr.contains("hooks.slack.com/services/"), "{stderr}");
    }
}
