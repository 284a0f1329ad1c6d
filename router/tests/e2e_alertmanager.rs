//! End to end with real Alertmanagers (Debian `prometheus-alertmanager`, started by the test on
//! free loopback ports): alerts posted to Alertmanager's API reach the Slack stand-in through
//! beacon-router, authenticated with Alertmanager's own `http_config`, threaded, and resolved in
//! place; an HA pair of Alertmanagers sending the same group produces one message.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use beacon_e2e::standin::slack::{SlackConfig, SlackStandin};
use beacon_e2e::standin::Rate;
use beacon_e2e::{free_port, http_client, require_bin, Server};
use serde_json::json;
use support::{Router, SLACK_TOKEN};

const WAIT: Duration = Duration::from_secs(30);

fn alertmanager(name: &str, router_port: u16, dir: &Path) -> (Server, u16) {
    let bin = require_bin("prometheus-alertmanager", "prometheus-alertmanager");
    let port = free_port();
    let data = dir.join(name);
    std::fs::create_dir_all(&data).expect("am dir");
    let config = data.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            r#"route:
  receiver: beacon
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: beacon
    webhook_configs:
      - url: http://127.0.0.1:{router_port}/webhooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: {token}
"#,
            token = dir.join("am-token").display()
        ),
    )
    .expect("am config");
    let check = Command::new(require_bin("amtool", "prometheus-alertmanager"))
        .arg("check-config")
        .arg(&config)
        .output()
        .expect("amtool");
    assert!(
        check.status.success(),
        "amtool check-config: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=debug");
    let mut server = Server::start(name, cmd, &data).expect("start alertmanager");
    server
        .wait_ready(&format!("http://127.0.0.1:{port}/-/ready"))
        .expect("alertmanager ready");
    (server, port)
}

fn post_alerts(port: u16, alerts: serde_json::Value) {
    let r = http_client()
        .post(format!("http://127.0.0.1:{port}/api/v2/alerts"))
        .header("Content-Type", "application/json")
        .body(alerts.to_string())
        .send()
        .expect("post alerts");
    assert!(r.status().is_success(), "{}", r.status());
}

/// An RFC 3339 instant `secs` seconds ago, to the second.
fn ago(secs: u64) -> String {
    let t = std::time::SystemTime::now() - Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn alert(name: &str, instance: &str, ends_at: Option<&str>) -> serde_json::Value {
    let mut a = json!({
        "labels": {"alertname": name, "severity": "critical", "instance": instance, "namespace": "payments"},
        "annotations": {"summary": format!("{name} on {instance}"), "runbook_url": "https://runbooks.example/disk"},
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        // Prometheus sends startsAt, so both members of a pair hold the same one.
        "startsAt": ago(600),
    });
    if let Some(t) = ends_at {
        a["endsAt"] = json!(t);
    }
    a
}

#[test]
fn alertmanager_pair_to_slack_threaded_deduplicated_and_resolved_in_place() {
    let slack = SlackStandin::start(SlackConfig {
        token: SLACK_TOKEN.into(),
        channels: vec!["C1".into()],
        rate: Rate {
            per_second: 1.0,
            burst: 3,
        },
        ..SlackConfig::default()
    })
    .expect("slack stand-in");
    let r = Router::start("");
    r.write_config(&format!(
        "inbound:\n  alertmanager:\n    bearer_token_file: {d}/am-token\n\
         receivers:\n  - name: payments\n    slack:\n      - token_file: {d}/slack-token\n        channel: C1\n        api_url: {api}/api\n\
         route:\n  receiver: payments\n",
        d = r.dir.display(),
        api = slack.base_url()
    ));
    let (code, body) = support::post(&r.url("/-/reload"), Vec::new(), &[]);
    assert_eq!(code, 200, "{body}");

    // An HA pair: two Alertmanagers (not clustered here, so both send) with the same alerts.
    let (am1, p1) = alertmanager("am1", r.port, &r.dir);
    let (am2, p2) = alertmanager("am2", r.port, &r.dir);
    let firing = json!([
        alert("DiskFull", "db-1", None),
        alert("DiskFull", "db-2", None)
    ]);
    post_alerts(p1, firing.clone());
    post_alerts(p2, firing);
    let first = slack
        .wait_for_messages(1, WAIT)
        .unwrap_or_else(|e| panic!("{e}\nrouter:\n{}\nam1:\n{}", r.server.log(), am1.log()));
    r.wait("both Alertmanagers delivered", WAIT, || {
        r.metric_sum(
            "beacon_router_webhooks_received_total",
            &["source=\"alertmanager\"", "code=\"200\""],
        ) >= 2.0
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        slack.messages().len(),
        1,
        "the pair's identical group went out once"
    );
    assert_eq!(
        r.metric_sum("beacon_router_notifications_duplicate_total", &[]),
        1.0
    );
    let text = first[0].text.clone().unwrap_or_default();
    assert!(text.contains("DiskFull"), "{text}");
    let blocks = first[0].blocks.clone().expect("blocks").to_string();
    assert!(
        blocks.contains("runbooks.example"),
        "runbook link shown: {blocks}"
    );
    assert!(
        blocks.contains("#/silences/new"),
        "silence link shown: {blocks}"
    );

    // Resolve on both: the first message is edited to show it resolved, and the thread told.
    let past = ago(1);
    let resolved = json!([
        alert("DiskFull", "db-1", Some(&past)),
        alert("DiskFull", "db-2", Some(&past))
    ]);
    post_alerts(p1, resolved.clone());
    post_alerts(p2, resolved);
    let msgs = slack
        .wait_for_messages(2, WAIT)
        .unwrap_or_else(|e| panic!("{e}\nrouter:\n{}", r.server.log()));
    assert_eq!(msgs[1].thread_ts.as_deref(), Some(first[0].ts.as_str()));
    let updates = slack.updates();
    assert_eq!(updates.len(), 1, "{updates:#?}");
    assert_eq!(updates[0].ts, first[0].ts);
    assert!(updates[0]
        .text
        .as_deref()
        .unwrap_or("")
        .contains("RESOLVED"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        slack.messages().len(),
        2,
        "the resolved state went out once too"
    );
    assert!(slack.rejections().is_empty(), "{:#?}", slack.rejections());
    drop((am1, am2));
}
