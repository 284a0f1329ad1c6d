//! OpenMetrics: with `web.openmetrics: true` the agent answers Prometheus's default scrape
//! Accept header with OpenMetrics 1.0.0, and a real Prometheus (Debian's, whose strict
//! OpenMetrics parser fails the scrape on any error) scrapes it; by default, as node_exporter
//! (its promhttp handler leaves `EnableOpenMetrics` unset), the same request gets text 0.0.4,
//! which `promtool check metrics` accepts. Prometheus stores a histogram's `le` as the format
//! writes it (`1.0` in OpenMetrics, `1` in text), which shows which parser read each scrape.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use beacon_e2e::{free_port, http_client, require_bin, tempdir, wait_for, Agent, Server};

/// Prometheus 2.x's default scrape Accept header.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const TEXTFILE: &str = "# HELP app_latency_seconds Latency.\n# TYPE app_latency_seconds histogram\napp_latency_seconds_bucket{le=\"0.5\"} 1\napp_latency_seconds_bucket{le=\"1\"} 2\napp_latency_seconds_bucket{le=\"+Inf\"} 3\napp_latency_seconds_sum 2.5\napp_latency_seconds_count 3\n# HELP app_jobs_total Jobs \"run\".\n# TYPE app_jobs_total counter\napp_jobs_total{queue=\"a\"} 3\n";

fn agent(openmetrics: bool, textfile_dir: &std::path::Path) -> Agent {
    let mut cfg = beacon_agent::Config::default();
    cfg.collectors
        .set_flag("collector.textfile.directory", textfile_dir.to_str())
        .expect("valid directory");
    cfg.web.openmetrics = openmetrics;
    Agent::start(cfg).expect("start agent")
}

fn scrape(agent: &Agent) -> (String, String) {
    let r = http_client()
        .get(agent.url("/metrics"))
        .header("Accept", PROMETHEUS_ACCEPT)
        .send()
        .expect("scrape");
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"]
        .to_str()
        .expect("content type")
        .to_owned();
    (ct, r.text().expect("body"))
}

fn query(base: &str, q: &str) -> Vec<serde_json::Value> {
    let r: serde_json::Value = http_client()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .and_then(|r| r.json())
        .unwrap_or_default();
    r["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[test]
fn openmetrics_when_enabled_text_by_default_and_prometheus_scrapes_both() {
    let prometheus = require_bin("prometheus", "prometheus");
    let promtool = require_bin("promtool", "prometheus");
    let dir = tempdir();
    let textfile = dir.path().join("textfile");
    std::fs::create_dir_all(&textfile).expect("textfile dir");
    std::fs::write(textfile.join("app.prom"), TEXTFILE).expect("write textfile");
    let om_agent = agent(true, &textfile);
    let text_agent = agent(false, &textfile);

    let (ct, om) = scrape(&om_agent);
    assert_eq!(
        ct,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.ends_with("\n# EOF\n"), "no # EOF");
    assert!(
        om.contains("# HELP app_jobs Jobs \\\"run\\\".\n# TYPE app_jobs counter\napp_jobs_total{queue=\"a\"} 3.0\n"),
        "{om}"
    );
    assert!(om.contains("\napp_latency_seconds_bucket{le=\"1.0\"} 2\n"));

    let (ct, text) = scrape(&text_agent);
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF"));
    // The text form passes promtool (exit 3 is lint findings only: the camelCase meminfo names
    // node_exporter has too).
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{report}");
    assert!(
        report
            .lines()
            .all(|l| l.trim().is_empty() || l.starts_with("node_memory_")),
        "{report}"
    );

    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: openmetrics\n    static_configs: [{{targets: ['{}']}}]\n  - job_name: text\n    static_configs: [{{targets: ['{}']}}]\n",
            om_agent.addr, text_agent.addr
        ),
    )
    .expect("write prometheus.yml");
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut prom = Server::start("prometheus", cmd, dir.path()).expect("start prometheus");
    let base = format!("http://127.0.0.1:{port}");
    prom.wait_ready(&format!("{base}/-/ready"))
        .expect("prometheus ready");
    for (job, le) in [("openmetrics", "1.0"), ("text", "1")] {
        wait_for(
            &format!("{job}: up, with its bucket le=\"{le}\""),
            Duration::from_secs(30),
            || {
                let up = query(&base, &format!("up{{job=\"{job}\"}} == 1"));
                let bucket = query(
                    &base,
                    &format!("app_latency_seconds_bucket{{job=\"{job}\",le=\"{le}\"}}"),
                );
                let jobs = query(&base, &format!("app_jobs_total{{job=\"{job}\"}}"));
                let cpu = query(&base, &format!("node_cpu_seconds_total{{job=\"{job}\"}}"));
                (!up.is_empty() && !bucket.is_empty() && !jobs.is_empty() && !cpu.is_empty())
                    .then_some(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.log()));
    }
}
