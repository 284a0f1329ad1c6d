//! A real Prometheus (Debian's `prometheus`) scrapes the agent under `job="node-exporter"` and
//! evaluates node alert and recording rules that use every metric kube-prometheus's node rules
//! and the node-mixin dashboards use: `promtool check rules` accepts them, every metric name
//! resolves to series, every recording rule produces a result, and no rule fails to evaluate.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use beacon_e2e::{repo_root, require_bin, tempdir, wait_for, Agent, Prometheus};
use serde::Deserialize;

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    record: Option<String>,
    expr: String,
}

/// Metric names (not recording-rule names, which contain ':') used in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            if word.starts_with("node_") && !word.contains(':') {
                out.insert(word.to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn prometheus_scrapes_the_agent_and_node_rules_resolve() {
    let promtool = require_bin("promtool", "prometheus");
    let rules_path = repo_root().join("tests/fixtures/node-compat-rules.yaml");

    let check = Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .arg(&rules_path)
        .output()
        .expect("promtool");
    assert!(
        check.status.success(),
        "promtool check rules: {}",
        String::from_utf8_lossy(&check.stdout)
    );

    let text = std::fs::read_to_string(&rules_path).expect("read rules");
    let rules: RuleFile = serde_saphyr::from_str(&text).expect("parse rules");

    let agent = Agent::start(beacon_agent::Config::default()).expect("start agent");
    let dir = tempdir();
    let prom = Prometheus::start(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: node-exporter\n    static_configs:\n      - targets: ['{}']\n",
            rules_path.display(),
            agent.addr
        ),
    )
    .expect("start prometheus");

    wait_for("the agent target to be up", Duration::from_secs(30), || {
        let r = prom.query("up{job=\"node-exporter\"} == 1").ok()?;
        (!r.is_empty()).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.log()));

    // Every metric name used outside the host-dependent group has series.
    let names: BTreeSet<String> = rules
        .groups
        .iter()
        .filter(|g| g.name != "host-dependent")
        .flat_map(|g| g.rules.iter().flat_map(|r| metric_names(&r.expr)))
        .collect();
    assert!(
        names.len() > 40,
        "expected the rules to use many metrics, got {names:?}"
    );
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| {
            prom.query(&format!(
                "count({{__name__=\"{n}\",job=\"node-exporter\"}})"
            ))
            .map(|r| r.is_empty())
            .unwrap_or(true)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "metric names without series: {missing:?}"
    );

    // Every recording rule produces a result once a few scrapes have landed (rate needs two).
    let records: Vec<&str> = rules
        .groups
        .iter()
        .flat_map(|g| g.rules.iter().filter_map(|r| r.record.as_deref()))
        .collect();
    for record in &records {
        wait_for(
            &format!("recording rule {record}"),
            Duration::from_secs(30),
            || {
                let r = prom.query(record).ok()?;
                (!r.is_empty()).then_some(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    // No rule failed to evaluate (type errors, many-to-many matches, ...).
    let mut evaluated = 0;
    for g in prom.rules() {
        for r in g["rules"].as_array().cloned().unwrap_or_default() {
            evaluated += 1;
            assert_eq!(
                r["health"], "ok",
                "rule {} in {}: {}",
                r["name"], g["name"], r["lastError"]
            );
        }
    }
    assert_eq!(evaluated, 41, "every rule of the file is loaded");
}

#[test]
fn metric_names_are_extracted_from_expressions() {
    let names = metric_names("rate(node_cpu_seconds_total{mode!~\"idle\"}[5m]) / instance:node_num_cpu:sum and node_load1");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["node_cpu_seconds_total", "node_load1"]
    );
}
