//! Harness for the router's end-to-end tests: the real `beacon-router` binary started on a free
//! loopback port with a config written for the test, Alertmanager payloads built to order, and
//! small HTTP helpers. Stand-ins for Slack and Google Chat come from `beacon_e2e::standin`.

#![allow(dead_code)]

pub mod cluster;
pub mod redis;
pub mod sentinel;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use beacon_e2e::{free_port, http_client, wait_for, Server};
use serde_json::{json, Value};

/// The bearer token every test router expects from Alertmanager.
pub const AM_TOKEN: &str = "am-test-token-5f2c";
/// The Slack bot token of the stand-in.
pub const SLACK_TOKEN: &str = "xoxb-test-router-token";

/// A running router.
pub struct Router {
    pub server: Server,
    pub port: u16,
    pub dir: PathBuf,
    pub config: PathBuf,
    /// Extra `storage:` keys (e.g. `redis:`), kept across config rewrites.
    storage_extra: String,
    _tmp: Option<tempfile::TempDir>,
}

impl Router {
    /// Writes `config_body` (YAML without `listen` and `storage`, which the harness adds) into
    /// a fresh directory holding the secrets files, and starts the router on it.
    pub fn start(config_body: &str) -> Router {
        Self::start_with_storage("", config_body)
    }

    /// Like `start`, with extra YAML under `storage:` (two-space indented, e.g. a `redis:` map).
    pub fn start_with_storage(storage_extra: &str, config_body: &str) -> Router {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        write_secrets(&dir);
        let port = free_port();
        let config = dir.join("router.yaml");
        std::fs::write(&config, full_config(port, &dir, storage_extra, config_body))
            .expect("write config");
        let mut r = Router {
            server: start_process(&config, &dir),
            port,
            dir,
            config,
            storage_extra: storage_extra.to_string(),
            _tmp: Some(tmp),
        };
        r.wait_ready();
        r
    }

    /// Starts the router again on the same directory and config (after a kill).
    pub fn restart(&mut self) {
        self.server = start_process(&self.config, &self.dir);
        self.wait_ready();
    }

    /// Runs `f` (which should end the process, e.g. by a signal), waits for the exit, and
    /// starts the router again.
    pub fn restart_after(&mut self, f: impl FnOnce(&Router)) {
        f(self);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.server.check_running().is_ok() {
            assert!(std::time::Instant::now() < deadline, "router did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.restart();
    }

    fn wait_ready(&mut self) {
        let url = self.url("/readyz");
        if let Err(e) = self.server.wait_ready(&url) {
            panic!("router not ready: {e}");
        }
    }

    /// Rewrites the config (same listen and storage).
    pub fn write_config(&self, config_body: &str) {
        let text = full_config(self.port, &self.dir, &self.storage_extra, config_body);
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Rewrites the config body (what follows `listen` and `storage`) with `f`.
    pub fn edit_config(&self, f: impl FnOnce(&str) -> String) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let header = full_config(self.port, &self.dir, &self.storage_extra, "");
        let body = text
            .strip_prefix(&header)
            .expect("config written by the harness");
        self.write_config(&f(body));
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// POSTs an Alertmanager webhook with the test token; returns status and body.
    pub fn alertmanager(&self, body: &Value) -> (u16, String) {
        post(
            &self.url("/webhooks/alertmanager"),
            body.to_string().into_bytes(),
            &[("Authorization", &format!("Bearer {AM_TOKEN}"))],
        )
    }

    /// The router's metrics text.
    pub fn metrics(&self) -> String {
        beacon_e2e::get_text(&self.url("/metrics")).expect("metrics")
    }

    /// The sum of a metric's samples whose line contains every one of `parts`.
    pub fn metric_sum(&self, name: &str, parts: &[&str]) -> f64 {
        sum_metric(&self.metrics(), name, parts)
    }

    /// Sends a signal to the router process.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.server.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Runs the router binary with `args` (and `--config`) and returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_beacon-router"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("run beacon-router");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Waits until `f` holds, failing with the router's log.
    pub fn wait(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
        if let Err(e) = wait_for(what, timeout, || f().then_some(())) {
            panic!("{e}\nrouter log:\n{}", self.server.log());
        }
    }
}

/// The log filter every router under test runs with, through `RUST_LOG`: everything at trace,
/// the HTTP client and server crates included, so the tests that look for secrets in the log
/// see the most the router can ever write.
pub const LOG_FILTER: &str = "trace,hyper=trace,reqwest=trace,h2=trace,rustls=trace";

fn start_process(config: &Path, dir: &Path) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon-router"));
    cmd.arg("--config").arg(config).env("RUST_LOG", LOG_FILTER);
    Server::start("beacon-router", cmd, dir).expect("start router")
}

fn write_secrets(dir: &Path) {
    std::fs::write(dir.join("am-token"), format!("{AM_TOKEN}\n")).expect("secret");
    std::fs::write(dir.join("sentry-secret"), "beacon-test-client-secret\n").expect("secret");
    std::fs::write(dir.join("slack-token"), format!("{SLACK_TOKEN}\n")).expect("secret");
}

fn full_config(port: u16, dir: &Path, storage_extra: &str, body: &str) -> String {
    format!(
        "listen: 127.0.0.1:{port}\nstorage:\n  path: {data}\n{storage_extra}{body}",
        data = dir.join("data").display()
    )
}

/// A config body with Alertmanager's token, `delivery` settings (YAML lines indented by two),
/// and two Slack Web API receivers paced at `rate` (`{per_second: .., burst: ..}`): `a` posting
/// to C1 (the default) and `b` to C2 (alerts labelled `team="b"`).
pub fn two_team_config(dir: &Path, slack_base: &str, rate: &str, delivery: &str) -> String {
    let d = dir.display();
    let receiver = |name: &str, channel: &str| {
        format!(
            "  - name: {name}\n    slack:\n      - token_file: {d}/slack-token\n        channel: {channel}\n        api_url: {slack_base}/api\n        rate: {rate}\n"
        )
    };
    format!(
        "inbound:\n  alertmanager:\n    bearer_token_file: {d}/am-token\n\
         delivery:\n{delivery}\
         receivers:\n{}{}\
         route:\n  receiver: a\n  routes:\n    - matchers: ['team=\"b\"']\n      receiver: b\n",
        receiver("a", "C1"),
        receiver("b", "C2"),
    )
}

/// Writes a secret file under the router's directory and returns its path as YAML text.
pub fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, value).expect("write secret");
    p.display().to_string()
}

/// POSTs raw bytes with headers; returns status and body.
pub fn post(url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = http_client()
        .post(url)
        .header("Content-Type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().expect("post");
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}

/// The sum of samples of `name` whose line contains all `parts`.
pub fn sum_metric(text: &str, name: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{') | Some(b' '))
        })
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// An alert of a payload: (alertname-suffix/fingerprint, firing?).
pub struct A<'a> {
    pub name: &'a str,
    pub firing: bool,
}

/// An Alertmanager 0.25 webhook (version 4) for group `group` with `alerts`.
pub fn am_payload(group: &str, alerts: &[A<'_>], extra_labels: &[(&str, &str)]) -> Value {
    let firing = alerts.iter().any(|a| a.firing);
    let mut common = serde_json::Map::new();
    common.insert("alertname".into(), json!(group));
    common.insert("severity".into(), json!("critical"));
    for (k, v) in extra_labels {
        common.insert((*k).into(), json!(v));
    }
    let items: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let mut labels = common.clone();
            labels.insert("instance".into(), json!(a.name));
            json!({
                "status": if a.firing { "firing" } else { "resolved" },
                "labels": labels,
                "annotations": {"summary": format!("{group} on {}", a.name)},
                "startsAt": "2026-11-24T01:00:00Z",
                "endsAt": if a.firing { "0001-01-01T00:00:00Z" } else { "2026-11-24T01:10:00Z" },
                "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
                "fingerprint": format!("{:016x}", fnv(&format!("{group}/{}", a.name))),
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{group}\"}}"),
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": "beacon",
        "groupLabels": {"alertname": group},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": items,
    })
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}
