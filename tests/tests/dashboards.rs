//! Every PromQL expression of every panel of the shipped Grafana dashboards
//! (`dashboards/*.json`), with its template variables substituted, returns data from a real
//! Prometheus (Debian's `prometheus`) scraping a real beacon-agent and a real beacon-router, both
//! in-process. The router is driven through every path its dashboard shows: webhooks accepted
//! and duplicated, deliveries sent, rate limited (a Google Chat stand-in answering 429), failed
//! and dead-lettered (a webhook receiver on a closed port), a digest, a failing custom template,
//! a reload, and a notification still in flight (a receiver that never answers) so the queue
//! gauges exist.
//!
//! The device-fleet dashboard (`dashboards/device-fleet.json`) queries what field devices push,
//! so its expressions run against a real VictoriaMetrics (Debian's `victoria-metrics`) fed
//! through the InfluxDB write API by two real beacon-agent processes, one of which goes away.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use beacon_e2e::standin::google_chat::{GoogleChatConfig, GoogleChatStandin, SpaceConfig};
use beacon_e2e::standin::{Fault, Rate};
use beacon_e2e::{
    free_port, get_text, http_client, repo_root, require_bin, tempdir, wait_for, workspace_bin,
    Agent, Proc, Server,
};
use beacon_router::app::App;
use beacon_router::store::{EmbeddedStore, Store};
use serde_json::{json, Value};

/// beacon-router running in-process, started as its daemon does; stopped on drop.
#[derive(Debug)]
struct InProcessRouter {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcessRouter {
    /// Builds `yaml` (its `listen` is ignored: the router serves on a fresh loopback port).
    fn start(yaml: &str) -> Self {
        let config = beacon_router::config::Config::from_yaml(yaml)
            .and_then(|c| c.build())
            .unwrap_or_else(|e| panic!("router config: {e}"));
        std::fs::create_dir_all(&config.storage_path).expect("create router storage dir");
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(&config.storage_path.join("router.redb"))
                .expect("open the embedded store"),
        );
        let std_listener = TcpListener::bind("127.0.0.1:0").expect("bind router port");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("router address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("router runtime");
            rt.block_on(async move {
                let app = App::new(store, config, None).expect("router app");
                let listener =
                    tokio::net::TcpListener::from_std(std_listener).expect("router listener");
                let shutdown = async move {
                    let _ = stopped.await;
                };
                beacon_router::server::run(app, listener, shutdown)
                    .await
                    .expect("router server");
            });
        });
        let router = Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        };
        wait_for("router /readyz", Duration::from_secs(10), || {
            get_text(&router.url("/readyz")).ok()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        router
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs an Alertmanager webhook; returns the status code.
    fn alertmanager(&self, body: &Value) -> u16 {
        http_client()
            .post(self.url("/webhooks/alertmanager"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .expect("post webhook")
            .status()
            .as_u16()
    }

    /// Waits until the router's own /metrics has a sample of `name` whose line contains
    /// `part` with a value above zero.
    fn wait_metric(&self, name: &str, part: &str) {
        let found = wait_for(
            &format!("router metric {name} {part}"),
            Duration::from_secs(20),
            || {
                let text = get_text(&self.url("/metrics")).ok()?;
                text.lines()
                    .filter(|l| l.starts_with(name) && l.contains(part))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .any(|v| v > 0.0)
                    .then_some(())
            },
        );
        if let Err(e) = found {
            let text = get_text(&self.url("/metrics")).unwrap_or_default();
            panic!("{e}\nrouter metrics:\n{text}");
        }
    }
}

impl Drop for InProcessRouter {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An Alertmanager 0.25 webhook (version 4) for one firing group with one alert.
fn am_payload(group: &str, team: &str) -> Value {
    let labels =
        json!({"alertname": group, "severity": "warning", "team": team, "instance": "host-1"});
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{group}\"}}"),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "beacon",
        "groupLabels": {"alertname": group},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": format!("{group} on host-1")},
            "startsAt": "2026-11-24T01:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
            "fingerprint": format!("{:016x}", group.len() * 7919),
        }],
    })
}

/// Every (panel title, expr) of a dashboard, rows' nested panels included.
/// `(title, selector)` of every `label_values(selector, label)` template variable.
fn variable_queries(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let def = v["definition"].as_str()?;
            let inner = def.strip_prefix("label_values(")?.strip_suffix(')')?;
            let (selector, _label) = inner.rsplit_once(',')?;
            Some((
                format!("variable {}", v["name"]),
                selector.trim().to_owned(),
            ))
        })
        .collect()
}

fn exprs(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or("").to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_owned()));
                }
            }
            if let Some(nested) = p["panels"].as_array() {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        dashboard["panels"].as_array().map_or(&[][..], |v| v),
        &mut out,
    );
    out
}

/// `expr` with Grafana's variables replaced: `$name`, `${name}`, `${name:fmt}` and `[[name]]`.
fn substitute(expr: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = expr.to_owned();
    // Longest names first, so `$__rate_interval` is not eaten by a shorter `$__rate`.
    let mut names: Vec<&&str> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        let value = &vars[*name];
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("[[{name}]]"), value);
        out = out.replace(&format!("${name}"), value);
    }
    out
}

fn query(base: &str, q: &str) -> Result<Vec<Value>, String> {
    let r: Value = http_client()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .and_then(|r| r.json())
        .map_err(|e| format!("request failed: {e}"))?;
    if r["status"] != "success" {
        return Err(format!("{}: {}", r["errorType"], r["error"]));
    }
    Ok(r["data"]["result"].as_array().cloned().unwrap_or_default())
}

fn load(name: &str) -> Value {
    let path = repo_root().join("dashboards").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The router config: a console receiver (sent), a Google Chat space behind a stand-in (rate
/// limited once, a digest, a failing template), a webhook on a closed port (failed and
/// dead-lettered) and a webhook that never answers (in flight: queue gauges).
fn router_config(dir: &Path, chat_url: &str, closed: u16, silent: SocketAddr) -> String {
    let chat_file = dir.join("chat-url");
    std::fs::write(&chat_file, chat_url).expect("write chat url");
    format!(
        r#"listen: 127.0.0.1:0
storage:
  path: {data}
delivery:
  max_attempts: 3
  initial_backoff: 100ms
  max_backoff: 200ms
  digest_after: 2s
receivers:
  - name: console
    console: [{{}}]
  - name: chat
    google_chat:
      - webhook_url_file: {chat}
        rate: {{per_second: 0.5, burst: 1}}
    templates:
      google_chat_text: "{{{{ 1 // 0 }}}}"
  - name: broken
    webhook:
      - url: http://127.0.0.1:{closed}/hook
  - name: silent
    webhook:
      - url: http://{silent}/hook
route:
  receiver: console
  routes:
    - matchers: ['team="chat"']
      receiver: chat
    - matchers: ['team="broken"']
      receiver: broken
    - matchers: ['team="silent"']
      receiver: silent
"#,
        data = dir.join("router-data").display(),
        chat = chat_file.display(),
    )
}

#[test]
fn every_dashboard_expression_returns_data() {
    let prometheus = require_bin("prometheus", "prometheus");
    let node = load("node-overview.json");
    let alert_router = load("alert-router.json");
    let dir = tempdir();

    let agent = Agent::start(beacon_agent::Config::default()).expect("start agent");

    let chat = GoogleChatStandin::start(GoogleChatConfig {
        spaces: vec![SpaceConfig::new("DASH")],
        rate: Rate {
            per_second: 10.0,
            burst: 10,
        },
        retry_after: true,
    })
    .expect("start google chat stand-in");
    chat.inject(
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    );
    // A port nothing listens on (connection refused) and one that accepts but never answers
    // (the kernel completes the handshake from the backlog; the send times out after 10 s).
    let closed = free_port();
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind silent port");
    let silent_addr = silent.local_addr().expect("silent address");
    let router = InProcessRouter::start(&router_config(
        dir.path(),
        &chat.webhook_url("DASH"),
        closed,
        silent_addr,
    ));

    // Intake: accepted, then the same group state again (a duplicate).
    let page = am_payload("DiskFull", "ops");
    assert_eq!(router.alertmanager(&page), 200);
    assert_eq!(router.alertmanager(&page), 200);
    // A backlog for the paced chat space: rate limited once, then sent as a digest.
    for g in ["ChatA", "ChatB", "ChatC", "ChatD"] {
        assert_eq!(router.alertmanager(&am_payload(g, "chat")), 200);
    }
    assert_eq!(router.alertmanager(&am_payload("Broken", "broken")), 200);
    let reload = http_client()
        .post(router.url("/-/reload"))
        .send()
        .expect("reload");
    assert!(reload.status().is_success(), "reload: {}", reload.status());

    router.wait_metric("beacon_router_notifications_sent_total", "console");
    router.wait_metric("beacon_router_notifications_duplicate_total", "");
    router.wait_metric("beacon_router_notifications_failed_total", "rate_limited");
    router.wait_metric("beacon_router_dead_letters_total", "broken");
    router.wait_metric("beacon_router_digests_sent_total", "chat");
    // A single message after the digest renders the (failing) custom template.
    assert_eq!(router.alertmanager(&am_payload("ChatE", "chat")), 200);
    router.wait_metric("beacon_router_template_errors_total", "chat");
    // Last, so it is still in flight while the queries run (two attempts of 10 s each).
    assert_eq!(router.alertmanager(&am_payload("Silent", "silent")), 200);
    router.wait_metric("beacon_router_queue_depth", "silent");

    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: node-exporter\n    static_configs:\n      - targets: ['{}']\n  - job_name: beacon-router\n    static_configs:\n      - targets: ['{}']\n",
            agent.addr, router.addr
        ),
    )
    .expect("write prometheus.yml");
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("prom-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut prom = Server::start("prometheus", cmd, dir.path()).expect("start prometheus");
    let base = format!("http://127.0.0.1:{port}");
    prom.wait_ready(&format!("{base}/-/ready"))
        .expect("prometheus ready");
    // At least three scrapes of each target, so every rate() has two samples in its window.
    wait_for(
        "three scrapes of both targets",
        Duration::from_secs(30),
        || {
            let r = query(&base, "min(count_over_time(up[1m])) >= 3 and min(up) == 1").ok()?;
            (!r.is_empty()).then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.log()));

    let nodename = query(
        &base,
        &format!("node_uname_info{{instance=\"{}\"}}", agent.addr),
    )
    .ok()
    .and_then(|r| r.first()?["metric"]["nodename"].as_str().map(str::to_owned))
    .expect("node_uname_info has a nodename");
    let grafana = |job: &str, instance: String| {
        BTreeMap::from([
            ("datasource", "prometheus".to_owned()),
            ("job", job.to_owned()),
            ("node", nodename.clone()),
            ("instance", instance),
            ("__rate_interval", "10s".to_owned()),
            ("__interval", "1s".to_owned()),
            ("__range", "1m".to_owned()),
            ("__range_s", "60".to_owned()),
        ])
    };
    let cases = [
        (
            "node-overview.json",
            &node,
            grafana("node-exporter", agent.addr.to_string()),
        ),
        (
            "alert-router.json",
            &alert_router,
            grafana("beacon-router", router.addr.to_string()),
        ),
    ];

    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, dashboard, vars) in &cases {
        let list = exprs(dashboard);
        assert!(list.len() >= 20, "{file}: only {} expressions", list.len());
        // Every variable query resolves too (with its own variables substituted).
        let var_queries = variable_queries(dashboard);
        for (title, expr) in list.iter().chain(var_queries.iter()) {
            let q = substitute(expr, vars);
            assert!(
                !q.contains('$'),
                "{file} / {title}: unsubstituted variable in {q}"
            );
            checked += 1;
            // A few retries: a series that appeared just before the last scrape needs one more.
            let result = wait_for(&q, Duration::from_secs(3), || match query(&base, &q) {
                Ok(r) if !r.is_empty() => Some(Ok(())),
                Err(e) if e.contains("bad_data") => Some(Err(e)),
                _ => None,
            });
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{file} / {title}: {q}: error {e}")),
                Err(_) => failures.push(format!("{file} / {title}: {q}: empty result")),
            }
        }
    }
    drop(silent);
    assert!(
        failures.is_empty(),
        "{} of {checked} dashboard expressions returned no data:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 70, "only {checked} expressions checked");
}

#[test]
fn variables_are_substituted_longest_name_first() {
    let vars = BTreeMap::from([
        ("__rate", "X".to_owned()),
        ("__rate_interval", "10s".to_owned()),
        ("instance", "h:9100".to_owned()),
    ]);
    assert_eq!(
        substitute(
            "rate(a{instance=\"$instance\"}[$__rate_interval]) + b{i=\"${instance}\", j=\"[[instance]]\"}",
            &vars
        ),
        "rate(a{instance=\"h:9100\"}[10s]) + b{i=\"h:9100\", j=\"h:9100\"}"
    );
}

#[test]
fn dashboards_are_importable_grafana_models() {
    for file in [
        "node-overview.json",
        "alert-router.json",
        "device-fleet.json",
    ] {
        let d = load(file);
        assert_eq!(d["schemaVersion"], 39, "{file}: schemaVersion");
        assert!(
            d["uid"]
                .as_str()
                .is_some_and(|u| !u.is_empty() && u.len() <= 40),
            "{file}: uid"
        );
        assert!(d["id"].is_null(), "{file}: no instance-specific id");
        let vars = d["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            vars.iter().any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "{file}: a prometheus datasource variable"
        );
        for v in vars.iter().filter(|v| v["type"] == "query") {
            assert_eq!(
                v["datasource"]["uid"], "${datasource}",
                "{file}: variable {}",
                v["name"]
            );
        }
        let mut ids = std::collections::BTreeSet::new();
        for p in d["panels"].as_array().into_iter().flatten() {
            assert!(
                ids.insert(p["id"].as_u64().expect("panel id")),
                "{file}: duplicate panel id"
            );
            let g = &p["gridPos"];
            for k in ["h", "w", "x", "y"] {
                assert!(g[k].is_u64(), "{file}: panel {} gridPos.{k}", p["title"]);
            }
            assert!(g["x"].as_u64().unwrap_or(0) + g["w"].as_u64().unwrap_or(0) <= 24);
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{file}: {}",
                p["title"]
            );
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            assert!(
                !targets.is_empty(),
                "{file}: panel {} has no query",
                p["title"]
            );
            for t in targets {
                assert_eq!(
                    t["datasource"]["uid"], "${datasource}",
                    "{file}: {}",
                    p["title"]
                );
                assert!(t["refId"].is_string(), "{file}: {} refId", p["title"]);
            }
        }
    }
}

/// A beacon-agent config: default collectors, telemetry every 300ms to VictoriaMetrics's InfluxDB
/// write API as `device`.
fn device_config(dir: &Path, device: &str, vm_port: u16) -> std::path::PathBuf {
    let yaml = format!(
        "listen: 127.0.0.1:{listen}\ntelemetry:\n  interval: 300ms\n  device_id: {device}\n  tags: {{site: lab}}\n  spool: {{dir: {spool}}}\n  influxdb:\n    url: \"http://127.0.0.1:{vm_port}\"\n    org: beacon\n    bucket: devices\n    flush_interval: 100ms\n",
        listen = free_port(),
        spool = dir.join(format!("spool-{device}")).display(),
    );
    let path = dir.join(format!("{device}.yaml"));
    std::fs::write(&path, yaml).expect("write agent config");
    path
}

/// Makes what VictoriaMetrics ingested so far searchable now (by itself it takes seconds, and
/// longer for new series).
fn force_flush(base: &str) {
    let r = http_client()
        .get(format!("{base}/internal/force_flush"))
        .send()
        .expect("victoria-metrics force_flush");
    assert!(r.status().is_success(), "force_flush: {}", r.status());
}

/// The single value of an instant query's only series.
fn scalar_result(base: &str, q: &str) -> Option<f64> {
    let r = query(base, q).ok()?;
    let [series] = r.as_slice() else {
        return None;
    };
    series["value"][1].as_str()?.parse().ok()
}

#[test]
fn device_fleet_expressions_return_data_from_victoria_metrics() {
    let vm_bin = require_bin("victoria-metrics", "victoria-metrics");
    let fleet = load("device-fleet.json");
    let agent_bin = workspace_bin("beacon-agent", "beacon-agent");
    let dir = tempdir();
    let vm_port = free_port();
    let mut cmd = Command::new(vm_bin);
    cmd.arg(format!("-httpListenAddr=127.0.0.1:{vm_port}"))
        .arg(format!(
            "-storageDataPath={}",
            dir.path().join("vm").display()
        ))
        .arg("-loggerLevel=ERROR")
        // Queries at "now" see points seconds old (the default hides the last 30 s), and no
        // cached result hides what landed since the previous query.
        .arg("-search.latencyOffset=0s")
        .arg("-search.disableCache");
    let vm = Proc::start(cmd, dir.path().join("vm.log"));
    let base = format!("http://127.0.0.1:{vm_port}");
    wait_for("victoria-metrics ready", Duration::from_secs(20), || {
        http_client()
            .get(format!("{base}/health"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
    })
    .unwrap_or_else(|e| panic!("{e}: {}", vm.log()));

    let start = |device: &str| {
        let mut cmd = Command::new(&agent_bin);
        cmd.arg("--config")
            .arg(device_config(dir.path(), device, vm_port));
        Proc::start(cmd, dir.path().join(format!("{device}.log")))
    };
    let online = start("fleet-online");
    let mut gone = start("fleet-gone");
    // Both devices' host metrics and telemetry self-metrics (sent counts only after the first
    // acknowledged write) have landed, with enough points for a rate().
    wait_for("both devices in victoria-metrics", Duration::from_secs(20), || {
        force_flush(&base);
        let n = scalar_result(
            &base,
            "count(count_over_time(beacon_agent_telemetry_points_sent_total_value{sink=\"influxdb\"}[1m]) >= 3)",
        )?;
        (n == 2.0).then_some(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nonline agent:\n{}\ngone agent:\n{}",
            online.log(),
            gone.log()
        )
    });
    // One device stops pushing; past `offline_after` it counts as offline.
    gone.terminate(Duration::from_secs(5));
    let offline_after = 3;
    std::thread::sleep(Duration::from_secs(offline_after + 1));
    force_flush(&base);

    let vars = BTreeMap::from([
        ("datasource", "victoriametrics".to_owned()),
        // "All", as Grafana expands it with the variable's allValue.
        ("device_id", ".*".to_owned()),
        ("offline_after", offline_after.to_string()),
        ("__rate_interval", "5s".to_owned()),
        ("__interval", "1s".to_owned()),
        ("__range", "1m".to_owned()),
        ("__range_s", "60".to_owned()),
    ]);
    let stat = |title: &str| -> Option<f64> {
        let (_, expr) = exprs(&fleet).into_iter().find(|(t, _)| t == title)?;
        scalar_result(&base, &substitute(&expr, &vars))
    };
    assert_eq!(stat("Devices"), Some(2.0), "devices seen in range");
    assert_eq!(stat("Online"), Some(1.0), "fleet-online is online");
    assert_eq!(stat("Offline"), Some(1.0), "fleet-gone is offline");
    assert_eq!(stat("Points dropped"), Some(0.0), "nothing dropped");

    let list = exprs(&fleet);
    assert!(list.len() >= 20, "only {} expressions", list.len());
    let var_queries = variable_queries(&fleet);
    assert_eq!(var_queries.len(), 1, "the device_id variable");
    let mut failures = Vec::new();
    for (title, expr) in list.iter().chain(var_queries.iter()) {
        let q = substitute(expr, &vars);
        assert!(!q.contains('$'), "{title}: unsubstituted variable in {q}");
        match query(&base, &q) {
            Ok(r) if !r.is_empty() => {}
            Ok(_) => failures.push(format!("{title}: {q}: empty result")),
            Err(e) => failures.push(format!("{title}: {q}: error {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} device-fleet expressions returned no data:\n{}",
        failures.len(),
        list.len() + var_queries.len(),
        failures.join("\n")
    );
    // Per-device rows cover both devices.
    let seen = query(
        &base,
        "count by (device_id) (node_scrape_collector_success_value)",
    )
    .expect("devices query");
    assert_eq!(seen.len(), 2, "{seen:?}");
}
