//! beacon-agent's InfluxDB telemetry sink against a real VictoriaMetrics (`/api/v2/write` with
//! gzip): names, tags and values land; a database outage with an agent kill -9 in the middle
//! loses nothing. A scripted HTTP server proves the 413 split, the 400 drop, the Retry-After
//! waits of 429 and 503, the backoff on 500 and 502, and the retry of a write that got no
//! answer within the agent's timeout: each retried batch lands, counted as failed, not dropped.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beacon_e2e::{
    agent_metric, assert_no_gaps, collectors_yaml, free_port, http_client, require_bin, tempdir,
    wait_for, workspace_bin, Proc,
};

const SERIES: &str = "beacon_test_seq";

/// Agent config: loadavg and one textfile series, pushed every 300ms to `influx_url`.
fn agent_config(dir: &Path, listen: u16, influx_url: &str, extra: &str) -> PathBuf {
    let tf = dir.join("textfile");
    std::fs::create_dir_all(&tf).expect("textfile dir");
    std::fs::write(
        tf.join("seq.prom"),
        format!("{SERIES}{{kind=\"a b,c=d\"}} 42.5\n"),
    )
    .expect("write textfile");
    // loadavg stays on beside the textfile series.
    let collectors = collectors_yaml(&["loadavg"], &tf);
    let yaml = format!(
        "listen: 127.0.0.1:{listen}\n{collectors}telemetry:\n  interval: 300ms\n  device_id: dev-e2e\n  tags: {{site: lab}}\n  spool: {{dir: {spool}}}\n  replay_rate: 100\n  influxdb:\n    url: \"{influx_url}\"\n    org: beacon\n    bucket: devices\n{extra}",
        spool = dir.join("spool").display(),
    );
    let path = dir.join("agent.yaml");
    std::fs::write(&path, yaml).expect("write agent config");
    path
}

/// The agent binary, built once per test process (a build takes long enough to skew timings).
fn agent_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| workspace_bin("beacon-agent", "beacon-agent"))
}

fn start_agent(config: &Path, log: PathBuf) -> Proc {
    let mut cmd = Command::new(agent_bin());
    cmd.arg("--config").arg(config);
    Proc::start(cmd, log)
}

fn start_vm(port: u16, data: &Path, log: PathBuf) -> Proc {
    let mut cmd = Command::new(require_bin("victoria-metrics", "victoria-metrics"));
    cmd.arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-storageDataPath={}", data.display()))
        .arg("-loggerLevel=ERROR");
    let p = Proc::start(cmd, log);
    wait_for("victoria-metrics ready", Duration::from_secs(20), || {
        http_client()
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
    })
    .unwrap_or_else(|e| panic!("{e}: {}", p.log()));
    p
}

/// Every exported series matching `selector`: (labels, timestamps in ms, values).
fn export(port: u16, selector: &str) -> Vec<(serde_json::Value, Vec<i64>, Vec<f64>)> {
    let text = http_client()
        .post(format!("http://127.0.0.1:{port}/api/v1/export"))
        .form(&[("match[]", selector)])
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            let ts = v["timestamps"]
                .as_array()
                .map(|a| a.iter().filter_map(|t| t.as_i64()).collect())
                .unwrap_or_default();
            let vals = v["values"]
                .as_array()
                .map(|a| a.iter().filter_map(|t| t.as_f64()).collect())
                .unwrap_or_default();
            (v["metric"].clone(), ts, vals)
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[test]
fn victoria_metrics_gets_every_point_through_an_outage_and_a_kill() {
    let dir = tempdir();
    let vm_port = free_port();
    let vm_data = dir.path().join("vm");
    let mut vm = start_vm(vm_port, &vm_data, dir.path().join("vm.log"));
    let config = agent_config(
        dir.path(),
        free_port(),
        &format!("http://127.0.0.1:{vm_port}"),
        "    flush_interval: 100ms\n    gzip: true\n",
    );
    agent_bin();
    let started = now_ms();
    let agent = start_agent(&config, dir.path().join("agent-1.log"));

    // Names, tags and values as documented: <measurement>_<field>, labels + device_id + tags.
    let series = wait_for(
        "points in victoria-metrics",
        Duration::from_secs(15),
        || {
            let s = export(vm_port, &format!("{{__name__=\"{SERIES}_value\"}}"));
            (!s.is_empty() && s[0].1.len() >= 3).then_some(s)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    let labels = &series[0].0;
    assert_eq!(labels["device_id"], "dev-e2e", "{labels}");
    assert_eq!(labels["site"], "lab", "{labels}");
    assert_eq!(
        labels["kind"], "a b,c=d",
        "escaped tag value lands intact: {labels}"
    );
    assert!(series[0].2.iter().all(|v| *v == 42.5), "{:?}", series[0].2);
    assert!(
        !export(
            vm_port,
            "{__name__=\"node_load1_value\",device_id=\"dev-e2e\"}"
        )
        .is_empty(),
        "node_load1 lands as node_load1_value"
    );

    // Outage: stop the database, kill -9 the agent in the middle, restart both.
    std::thread::sleep(Duration::from_millis(400));
    vm.terminate(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1000));
    let killed = now_ms();
    drop(agent); // SIGKILL
    std::thread::sleep(Duration::from_millis(300));
    let restarted = now_ms();
    let mut agent = start_agent(&config, dir.path().join("agent-2.log"));
    std::thread::sleep(Duration::from_millis(800));
    let _vm = start_vm(vm_port, &vm_data, dir.path().join("vm-2.log"));
    let resumed = now_ms();

    // Everything produced before the kill and after the restart arrives with its timestamp.
    let ts = wait_for(
        "the backlog in victoria-metrics",
        Duration::from_secs(20),
        || {
            let s = export(vm_port, &format!("{{__name__=\"{SERIES}_value\"}}"));
            let ts: BTreeSet<i64> = s.iter().flat_map(|x| x.1.iter().copied()).collect();
            ts.range(resumed + 600..).next().is_some().then_some(ts)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    // One point every 300ms: a lost point leaves a gap of 600ms; 500 allows for scheduling delay.
    let gap = 500;
    assert_no_gaps(
        &ts,
        started + gap,
        killed - gap,
        gap,
        "first agent (before kill -9)",
    );
    assert_no_gaps(
        &ts,
        restarted + 1000,
        resumed + 600,
        gap,
        "second agent (during outage)",
    );
    agent.terminate(Duration::from_secs(5));
}

/// What the scripted server does with the next write.
const OK: u8 = 0;
const SPLIT: u8 = 1;
const REJECT_ONCE: u8 = 2;
const TOO_MANY_ONCE: u8 = 3;
const UNAVAILABLE_ONCE: u8 = 4;
const ERROR_ONCE: u8 = 5;
const BAD_GATEWAY_ONCE: u8 = 6;
/// Takes the request and answers only after the agent's write timeout.
const HANG_ONCE: u8 = 7;
/// How long a hung request waits before it answers; the agent's timeout is `TIMEOUT`.
const HANG: Duration = Duration::from_secs(4);
const TIMEOUT: Duration = Duration::from_millis(1500);
/// `Req::status` of a request that got no answer within the agent's timeout.
const NO_ANSWER: u16 = 0;

#[derive(Debug, Clone)]
struct Req {
    at: Instant,
    status: u16,
    lines: Vec<String>,
}

#[derive(Debug, Default)]
struct Script {
    mode: AtomicU8,
    log: Mutex<Vec<Req>>,
}

async fn write(
    axum::extract::State(s): axum::extract::State<Arc<Script>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let gz = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let text = if gz {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut s)
            .expect("gzip body");
        s
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    assert_eq!(
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Token sekret"),
        "token from token_file"
    );
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mode = s.mode.load(Ordering::SeqCst);
    let (status, retry_after) = match mode {
        SPLIT if lines.len() > 2 => (413, None),
        REJECT_ONCE => (400, None),
        TOO_MANY_ONCE => (429, Some("1")),
        UNAVAILABLE_ONCE => (503, Some("1")),
        ERROR_ONCE => (500, None),
        BAD_GATEWAY_ONCE => (502, None),
        HANG_ONCE => (NO_ANSWER, None),
        _ => (204, None),
    };
    if mode != OK && mode != SPLIT {
        s.mode.store(OK, Ordering::SeqCst);
    }
    s.log.lock().expect("log").push(Req {
        at: Instant::now(),
        status,
        lines,
    });
    if status == NO_ANSWER {
        // The agent gives up before this; a 204 it never sees must not count as landed.
        tokio::time::sleep(HANG).await;
        return axum::http::StatusCode::NO_CONTENT.into_response();
    }
    let code = axum::http::StatusCode::from_u16(status).expect("status");
    let mut resp = if status == 400 {
        (
            code,
            "{\"code\":\"invalid\",\"message\":\"unable to parse 'bogus line'\"}",
        )
            .into_response()
    } else {
        code.into_response()
    };
    if let Some(r) = retry_after {
        resp.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static(r));
    }
    resp
}

#[test]
fn http_status_branches_split_drop_retry_after_5xx_and_timeout() {
    let script = Arc::new(Script::default());
    let port = free_port();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let app = axum::Router::new()
        .route("/api/v2/write", axum::routing::post(write))
        .with_state(script.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .expect("bind");
    rt.spawn(async move { axum::serve(listener, app).await });

    let dir = tempdir();
    let token = dir.path().join("token");
    std::fs::write(&token, "sekret\n").expect("token file");
    let agent_port = free_port();
    agent_bin();
    let config = agent_config(
        dir.path(),
        agent_port,
        &format!("http://127.0.0.1:{port}"),
        &format!(
            "    token_file: {}\n    flush_interval: 500ms\n    timeout: {}ms\n",
            token.display(),
            TIMEOUT.as_millis()
        ),
    );
    script.mode.store(SPLIT, Ordering::SeqCst);
    let mut agent = start_agent(&config, dir.path().join("agent.log"));
    let log = |s: &Script| s.log.lock().expect("log").clone();

    // 413: the batch is split in two, recursively, until the halves land.
    let reqs = wait_for(
        "a 413 and its halves landing",
        Duration::from_secs(15),
        || {
            let reqs = log(&script);
            let first = reqs.iter().position(|r| r.status == 413)?;
            let accepted: BTreeSet<&String> = reqs[first..]
                .iter()
                .filter(|r| r.status == 204)
                .flat_map(|r| r.lines.iter())
                .collect();
            reqs[first]
                .lines
                .iter()
                .all(|l| accepted.contains(l))
                .then_some(reqs)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    assert!(
        reqs.iter()
            .filter(|r| r.status == 204)
            .all(|r| r.lines.len() <= 2),
        "only batches of at most 2 lines are accepted"
    );

    // 400: the batch is dropped (never retried) and counted.
    script.mode.store(REJECT_ONCE, Ordering::SeqCst);
    let rejected = wait_for("a 400", Duration::from_secs(10), || {
        log(&script).into_iter().find(|r| r.status == 400)
    })
    .expect("400 sent");
    let needle = "beacon_agent_telemetry_dropped_total{reason=\"rejected\",sink=\"influxdb\"} ";
    wait_for("the rejected counter", Duration::from_secs(5), || {
        (agent_metric(agent_port, needle) == rejected.lines.len() as f64).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {}", agent_metric(agent_port, needle)));
    assert!(
        agent.log().contains("unable to parse 'bogus line'"),
        "the log names the bad line: {}",
        agent.log()
    );

    // 429 and 503 wait Retry-After (1s); 500 and 502 back off (at least half the 200ms base);
    // a request without an answer is given up after the agent's timeout. Each time the same
    // batch lands on the next attempt: its points counted as failed once, never as dropped.
    let failed = "beacon_agent_telemetry_points_failed_total{sink=\"influxdb\"} ";
    for (mode, status, min_wait) in [
        (TOO_MANY_ONCE, 429, Duration::from_millis(950)),
        (UNAVAILABLE_ONCE, 503, Duration::from_millis(950)),
        (ERROR_ONCE, 500, Duration::from_millis(100)),
        (BAD_GATEWAY_ONCE, 502, Duration::from_millis(100)),
        (HANG_ONCE, NO_ANSWER, TIMEOUT),
    ] {
        let failed_before = agent_metric(agent_port, failed);
        let before = log(&script).len();
        script.mode.store(mode, Ordering::SeqCst);
        let (refused, next) = wait_for("a refusal and the retry", Duration::from_secs(10), || {
            let reqs = log(&script);
            let i = before + reqs[before..].iter().position(|r| r.status == status)?;
            Some((reqs[i].clone(), reqs.get(i + 1)?.clone()))
        })
        .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
        let waited = next.at - refused.at;
        assert!(
            waited >= min_wait,
            "HTTP {status} retried after {waited:?}, before {min_wait:?}"
        );
        assert_eq!(next.status, 204);
        assert_eq!(next.lines, refused.lines, "the same batch is retried");
        let want = failed_before + refused.lines.len() as f64;
        wait_for("the failed counter", Duration::from_secs(5), || {
            (agent_metric(agent_port, failed) == want).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}: {} != {want}", agent_metric(agent_port, failed)));
    }
    assert!(
        agent
            .log()
            .contains("no answer within 1.5s (telemetry.influxdb.timeout)"),
        "the log says the write timed out: {}",
        agent.log()
    );
    let dropped = |reason: &str| {
        agent_metric(
            agent_port,
            &format!(
                "beacon_agent_telemetry_dropped_total{{reason=\"{reason}\",sink=\"influxdb\"}} "
            ),
        )
    };
    assert_eq!(
        dropped("rejected"),
        rejected.lines.len() as f64,
        "only the 400"
    );
    assert_eq!(dropped("too_large"), 0.0);
    agent.terminate(Duration::from_secs(5));
}
