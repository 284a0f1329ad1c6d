//! `promtool check metrics` (from Debian's prometheus) passes on the agent's live output, and
//! `/metrics` serves text format 0.0.4, gzip-compressed when asked.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

use beacon_e2e::{expo, http_client, require_bin, tempdir, Agent};

fn agent_config(textfile_dir: &std::path::Path) -> beacon_agent::Config {
    let mut cfg = beacon_agent::Config::default();
    cfg.collectors
        .set_flag("collector.textfile.directory", textfile_dir.to_str())
        .expect("valid directory");
    cfg
}

#[test]
fn promtool_accepts_the_agent_output() {
    let promtool = require_bin("promtool", "prometheus");
    let dir = tempdir();
    std::fs::write(
        dir.path().join("app.prom"),
        "# HELP app_jobs_total Jobs run.\n# TYPE app_jobs_total counter\napp_jobs_total{queue=\"a\\\"b\"} 3\n",
    )
    .expect("write textfile");
    let agent = Agent::start(agent_config(dir.path())).expect("start agent");
    let body = beacon_e2e::get_text(&agent.url("/metrics")).expect("scrape");
    expo::parse(&body).expect("our own parser accepts the output");

    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 3 means lint findings only. The one finding node_exporter's own output also has is
    // the camelCase of the meminfo names (node_memory_MemTotal_bytes...), which compatibility
    // requires; anything else, or a parse error (exit 1), fails.
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(3)),
        "promtool failed ({code:?}):\n{report}"
    );
    let unexpected: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !(l.starts_with("node_memory_")
                && l.ends_with("metric names should be written in 'snake_case' not 'camelCase'"))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "promtool findings:\n{}",
        unexpected.join("\n")
    );
}

#[test]
fn metrics_are_served_as_text_format_with_optional_gzip() {
    let dir = tempdir();
    let agent = Agent::start(agent_config(dir.path())).expect("start agent");
    let client = http_client();

    let plain = client
        .get(agent.url("/metrics"))
        .send()
        .expect("plain scrape");
    assert_eq!(plain.status(), 200);
    assert_eq!(
        plain
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.text().expect("plain body");

    let gz = client
        .get(agent.url("/metrics"))
        .header("Accept-Encoding", "gzip")
        .send()
        .expect("gzip scrape");
    assert_eq!(
        gz.headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let bytes = gz.bytes().expect("gzip body");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    assert!(
        bytes.len() * 3 < text.len(),
        "gzip should compress: {} vs {}",
        bytes.len(),
        text.len()
    );

    // Both scrapes carry the same families.
    let a = expo::parse(&plain).expect("parse plain");
    let b = expo::parse(&text).expect("parse gzip");
    assert_eq!(a.family_names(), b.family_names());
    for family in [
        "node_cpu_seconds_total",
        "node_scrape_collector_success",
        "process_resident_memory_bytes",
        "beacon_agent_build_info",
    ] {
        assert!(a.family_names().contains(family), "{family} missing");
    }
}

#[test]
fn a_scrape_never_returns_data_collected_before_it_arrived() {
    let dir = tempdir();
    let file = dir.path().join("seq.prom");
    let agent = Agent::start(agent_config(dir.path())).expect("start agent");
    for i in 0..20 {
        std::fs::write(&file, format!("# TYPE seq_value gauge\nseq_value {i}\n"))
            .expect("write textfile");
        let e = expo::parse(&beacon_e2e::get_text(&agent.url("/metrics")).expect("scrape"))
            .expect("parse");
        assert_eq!(
            e.value("seq_value", &[]),
            Some(i as f64),
            "scrape {i} saw stale data"
        );
    }
}

#[test]
fn concurrent_scrapes_all_get_complete_output() {
    let dir = tempdir();
    let agent = Agent::start(agent_config(dir.path())).expect("start agent");
    let url = agent.url("/metrics");
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| {
                        let body = beacon_e2e::get_text(&url).expect("scrape");
                        expo::parse(&body)
                            .expect("parse")
                            .value("node_scrape_collector_success", &[("collector", "cpu")])
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for v in h.join().expect("scraper thread") {
            assert_eq!(v, Some(1.0));
        }
    }
}
