//! The shipped Prometheus rules (`dashboards/rules/*.yaml`): `promtool check rules` accepts
//! them, `promtool test rules` passes their unit tests (`dashboards/rules/tests/*.yaml`), every
//! alert has a firing and a not-firing test case, and every alert carries `summary`,
//! `description` and a `runbook_url` whose anchor is a section of `docs/runbooks.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use beacon_e2e::{repo_root, require_bin};
use serde::Deserialize;

const RUNBOOK_PREFIX: &str =
    "https://github.com/beacon-observability/beacon/blob/main/docs/runbooks.md#";

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct TestFile {
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
struct TestGroup {
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
}

#[derive(Deserialize)]
struct AlertTest {
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<serde_json::Value>,
}

/// Files with extension `.yaml` directly under `dir`, sorted.
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let dir = repo_root().join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .yaml files in {}", dir.display());
    files
}

fn promtool(args: &[&str], files: &[PathBuf]) {
    let promtool = require_bin("promtool", "prometheus");
    let out = Command::new(promtool)
        .args(args)
        .args(files)
        .current_dir(repo_root())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GitHub's anchor for a Markdown heading: lowercase, spaces to dashes, punctuation dropped.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn runbook_anchors() -> BTreeSet<String> {
    let path = repo_root().join("docs/runbooks.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| github_anchor(l.trim_start_matches('#')))
        .collect()
}

/// Every alert's name and annotations, over all rule files.
fn alerts() -> Vec<(String, BTreeMap<String, String>)> {
    yaml_files("dashboards/rules")
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).expect("read rules");
            let file: RuleFile =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            file.groups
                .into_iter()
                .flat_map(|g| g.rules)
                .filter_map(|r| Some((r.alert?, r.annotations)))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn promtool_checks_and_unit_tests_pass() {
    promtool(&["check", "rules"], &yaml_files("dashboards/rules"));
    promtool(&["test", "rules"], &yaml_files("dashboards/rules/tests"));
}

#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for p in yaml_files("dashboards/rules/tests") {
        let text = std::fs::read_to_string(&p).expect("read tests");
        let file: TestFile =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for t in file.tests.into_iter().flat_map(|g| g.alert_rule_test) {
            if t.exp_alerts.is_empty() {
                quiet.insert(t.alertname);
            } else {
                firing.insert(t.alertname);
            }
        }
    }
    let all = alerts();
    assert!(
        all.len() >= 15,
        "expected at least 15 alerts, got {}",
        all.len()
    );
    for (name, _) in &all {
        assert!(firing.contains(name), "{name} has no firing test case");
        assert!(quiet.contains(name), "{name} has no not-firing test case");
    }
}

#[test]
fn every_alert_has_annotations_and_a_runbook_section() {
    let anchors = runbook_anchors();
    let mut seen = BTreeSet::new();
    for (name, ann) in alerts() {
        assert!(seen.insert(name.clone()), "alert {name} defined twice");
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                ann.get(key).is_some_and(|v| !v.trim().is_empty()),
                "{name}: no {key} annotation"
            );
        }
        let url = &ann["runbook_url"];
        let anchor = url
            .strip_prefix(RUNBOOK_PREFIX)
            .unwrap_or_else(|| panic!("{name}: runbook_url {url} is not under {RUNBOOK_PREFIX}"));
        assert!(
            anchors.contains(anchor),
            "{name}: docs/runbooks.md has no section #{anchor}"
        );
        assert_eq!(
            anchor,
            name.to_lowercase(),
            "{name}: runbook section named after the alert"
        );
    }
}

#[test]
fn anchors_follow_github_rules() {
    assert_eq!(github_anchor(" BeaconAgentDown"), "beaconagentdown");
    assert_eq!(github_anchor("Job labels"), "job-labels");
    assert_eq!(github_anchor("What's `up`?"), "whats-up");
}
