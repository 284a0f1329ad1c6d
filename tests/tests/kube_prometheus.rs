//! kube-prometheus's "Node Exporter / USE Method / Node" dashboard and its node-exporter
//! recording rules (`tests/fixtures/kube-prometheus/`, copied unchanged) against a real
//! Prometheus scraping beacon-agent and the real node_exporter side by side, both under
//! `job="node-exporter"`: the dashboard's instance list (built from `node_exporter_build_info`)
//! offers both, and every panel that shows data for node_exporter shows data for beacon-agent.

use std::process::Command;
use std::time::Duration;

use beacon_e2e::{free_port, repo_root, require_bin, tempdir, wait_for, Agent, Prometheus, Server};
use serde_json::Value;

/// Every (panel title, expression) of the dashboard, rows included.
fn panel_exprs(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((p["title"].as_str().unwrap_or("").to_owned(), e.to_owned()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

#[test]
fn use_method_dashboard_lists_and_shows_the_agent_like_node_exporter() {
    let node_exporter = require_bin("prometheus-node-exporter", "prometheus-node-exporter");
    let fixtures = repo_root().join("tests/fixtures/kube-prometheus");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("node-rsrc-use.json")).expect("read dashboard"),
    )
    .expect("dashboard json");
    let rules = fixtures.join("node-exporter-rules.yaml");
    let dir = tempdir();

    let agent = Agent::start(beacon_agent::Config::default()).expect("start agent");
    let ne_port = free_port();
    let mut cmd = Command::new(node_exporter);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{ne_port}"));
    let mut ne = Server::start("node_exporter", cmd, dir.path()).expect("start node_exporter");
    ne.wait_ready(&format!("http://127.0.0.1:{ne_port}/metrics"))
        .expect("node_exporter ready");

    let prom = Prometheus::start(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: node-exporter\n    static_configs:\n      - targets: ['{}', '127.0.0.1:{ne_port}']\n",
            rules.display(),
            agent.addr
        ),
    )
    .expect("start prometheus");

    // The instance variable: `label_values(node_exporter_build_info{job="node-exporter",
    // cluster=~"$cluster"}, instance)`, with no cluster label (the cluster variable is empty).
    let ours = agent.addr.to_string();
    let theirs = format!("127.0.0.1:{ne_port}");
    wait_for("both instances in the dashboard's list", Duration::from_secs(30), || {
        let r = prom.query("count by (instance) (node_exporter_build_info{job=\"node-exporter\", cluster=~\".*\"})").ok()?;
        let names: Vec<&str> = r.iter().filter_map(|s| s["metric"]["instance"].as_str()).collect();
        (names.contains(&ours.as_str()) && names.contains(&theirs.as_str())).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.log()));

    // Rates over 5m need two samples of each series, and the rules run every second: once the
    // CPU rule has a result for both, every rule has had its chance.
    let exprs = panel_exprs(&dashboard);
    assert_eq!(exprs.len(), 11, "the dashboard's 9 panels and 11 queries");
    let on = |expr: &str, instance: &str| {
        expr.replace("$instance", instance)
            .replace("$cluster", ".*")
    };
    wait_for(
        "the recording rules over both exporters",
        Duration::from_secs(30),
        || {
            let r = prom
                .query("count(instance:node_cpu_utilisation:rate5m{job=\"node-exporter\"})")
                .ok()?;
            (r.first()?["value"][1].as_str()? == "2").then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.log()));
    let mut compared = Vec::new();
    for (title, expr) in &exprs {
        // Nothing for node_exporter either (no drops on this host, say: the panels filter out
        // zeros): the comparison says nothing for this query.
        if prom
            .query(&on(expr, &theirs))
            .map(|r| r.is_empty())
            .unwrap_or(true)
        {
            continue;
        }
        compared.push(title.as_str());
        wait_for(
            &format!("{title} for beacon-agent"),
            Duration::from_secs(10),
            || prom.query(&on(expr, &ours)).ok().filter(|r| !r.is_empty()),
        )
        .unwrap_or_else(|e| panic!("{e}: node_exporter shows data for {expr}"));
    }
    // Which rate panels have data depends on the host's activity (the panels drop zeros);
    // CPU, memory and disk space always show something on a running host.
    for always in [
        "CPU Utilisation",
        "Memory Utilisation",
        "Disk Space Utilisation",
    ] {
        assert!(
            compared.contains(&always),
            "{always}: node_exporter showed no data; compared {compared:?}"
        );
    }

    // No rule of kube-prometheus's file failed to evaluate over the two exporters' series.
    for g in prom.rules() {
        for r in g["rules"].as_array().into_iter().flatten() {
            assert_eq!(
                r["health"], "ok",
                "rule {} in {}: {}",
                r["name"], g["name"], r["lastError"]
            );
        }
    }
}
