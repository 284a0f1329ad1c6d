//! beacon-agent's MQTT telemetry sink against a real Mosquitto: every point arrives; the
//! retained status is `online` while the agent runs, `offline` after a kill -9 (Last Will) and
//! after SIGTERM; a broker outage with an agent kill -9 in the middle loses nothing, and the
//! backlog arrives in order with its original timestamps. Also the JSON format's shape.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use beacon_e2e::{collectors_yaml, free_port, require_bin, tempdir, wait_for, workspace_bin, Proc};

const SERIES: &str = "beacon_test_seq";
const DEVICE: &str = "dev-mqtt";

/// The agent binary, built once per test process (a build takes long enough to skew timings).
fn agent_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| workspace_bin("beacon-agent", "beacon-agent"))
}

/// Agent config: loadavg and one textfile series, published every 300ms.
fn agent_config(dir: &Path, broker: u16, mqtt_extra: &str) -> PathBuf {
    let tf = dir.join("textfile");
    std::fs::create_dir_all(&tf).expect("textfile dir");
    std::fs::write(tf.join("seq.prom"), format!("{SERIES} 7\n")).expect("write textfile");
    // loadavg stays on beside the textfile series.
    let collectors = collectors_yaml(&["loadavg"], &tf);
    let yaml = format!(
        "listen: 127.0.0.1:{listen}\n{collectors}telemetry:\n  interval: 300ms\n  device_id: {DEVICE}\n  tags: {{site: lab}}\n  spool: {{dir: {spool}}}\n  replay_rate: 200\n  mqtt:\n    url: mqtt://127.0.0.1:{broker}\n    keep_alive: 2s\n{mqtt_extra}",
        listen = free_port(),
        spool = dir.join("spool").display(),
    );
    let path = dir.join("agent.yaml");
    std::fs::write(&path, yaml).expect("write agent config");
    path
}

fn start_agent(config: &Path, log: PathBuf) -> Proc {
    let mut cmd = Command::new(agent_bin());
    cmd.arg("--config").arg(config);
    Proc::start(cmd, log)
}

/// Mosquitto on `port` with persistence in `dir` (sessions and retained messages survive a
/// restart).
fn start_broker(port: u16, dir: &Path, log: PathBuf) -> Proc {
    // Mosquitto started as root drops to its own user: the persistence directory must be
    // writable for it.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .expect("chmod broker dir");
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\n",
            dir.display()
        ),
    )
    .expect("write mosquitto.conf");
    let mut cmd = Command::new(require_bin("mosquitto", "mosquitto"));
    cmd.arg("-c").arg(&conf);
    let p = Proc::start(cmd, log);
    wait_for("mosquitto listening", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .unwrap_or_else(|e| panic!("{e}: {}", p.log()));
    p
}

/// The retained message on `topic` (empty if none arrives within 1s).
fn retained(port: u16, topic: &str) -> String {
    let out = Command::new(require_bin("mosquitto_sub", "mosquitto-clients"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-C",
            "1",
            "-W",
            "1",
        ])
        .output()
        .expect("run mosquitto_sub");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A subscriber with a persistent session (QoS 1), so messages published while it reconnects
/// after a broker restart are queued for it; output `topic payload` per line.
fn subscriber(port: u16, topic: &str, out: PathBuf) -> Proc {
    let mut cmd = Command::new(require_bin("mosquitto_sub", "mosquitto-clients"));
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        topic,
        "-q",
        "1",
        "-c",
        "-i",
        "beacon-e2e-sub",
        "-v",
    ]);
    Proc::start(cmd, out)
}

/// Timestamps (ns) of `SERIES` lines in the subscriber's output, in arrival order.
fn received(sub: &Proc) -> Vec<i64> {
    sub.log()
        .lines()
        .filter_map(|l| {
            let (_topic, line) = l.split_once(' ')?;
            if !line.starts_with(&format!("{SERIES},")) {
                return None;
            }
            line.rsplit(' ').next()?.parse().ok()
        })
        .collect()
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i64
}

/// Fails if consecutive timestamps within [from, to] are further apart than `max_gap`.
fn assert_no_gaps(ts: &BTreeSet<i64>, from: i64, to: i64, max_gap: i64, what: &str) {
    let inside: Vec<i64> = ts.range(from..=to).copied().collect();
    assert!(!inside.is_empty(), "{what}: no points in [{from}, {to}]");
    assert!(
        inside[0] - from <= max_gap && to - inside[inside.len() - 1] <= max_gap,
        "{what}: points missing at an edge: {inside:?}"
    );
    for w in inside.windows(2) {
        assert!(
            w[1] - w[0] <= max_gap,
            "{what}: gap of {} ms: a point was lost ({inside:?})",
            (w[1] - w[0]) / 1_000_000
        );
    }
}

#[test]
fn mqtt_presence_and_nothing_lost_through_outage_and_kill() {
    let dir = tempdir();
    let port = free_port();
    let bdir = dir.path().join("broker");
    std::fs::create_dir_all(&bdir).expect("broker dir");
    let mut broker = start_broker(port, &bdir, dir.path().join("broker-1.log"));
    let status_topic = format!("beacon/{DEVICE}/status");
    let sub = subscriber(
        port,
        &format!("beacon/{DEVICE}/m/#"),
        dir.path().join("sub.log"),
    );
    let config = agent_config(
        dir.path(),
        port,
        "    topic: \"beacon/{device_id}/m/{measurement}\"\n",
    );
    agent_bin();
    // Let the subscriber's session exist before the first point.
    std::thread::sleep(Duration::from_millis(300));
    let started = now_ns();
    let agent = start_agent(&config, dir.path().join("agent-1.log"));
    wait_for("points arriving", Duration::from_secs(10), || {
        (received(&sub).len() >= 4).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}\nsub:\n{}", agent.log(), sub.log()));
    assert_eq!(retained(port, &status_topic), "online");
    let line = sub
        .log()
        .lines()
        .find(|l| l.contains(&format!(" {SERIES},")))
        .map(str::to_owned)
        .expect("a line");
    assert!(
        line.starts_with(&format!(
            "beacon/{DEVICE}/m/{SERIES} {SERIES},device_id={DEVICE},site=lab value=7 "
        )),
        "topic template and line protocol: {line}"
    );

    // Broker down for several intervals; the agent is killed -9 and restarted meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    broker.terminate(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1000));
    let killed = now_ns();
    drop(agent); // SIGKILL while disconnected
    std::thread::sleep(Duration::from_millis(300));
    let restarted = now_ns();
    let agent = start_agent(&config, dir.path().join("agent-2.log"));
    std::thread::sleep(Duration::from_millis(1000));
    let _broker = start_broker(port, &bdir, dir.path().join("broker-2.log"));
    let resumed = now_ns();
    let got = wait_for(
        "the backlog after the outage",
        Duration::from_secs(20),
        || {
            let r = received(&sub);
            r.iter().any(|&t| t > resumed + 600_000_000).then_some(r)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    let set: BTreeSet<i64> = got.iter().copied().collect();
    // One point every 300ms: a lost point leaves a gap of 600ms; 500 allows for scheduling delay.
    let gap = 500_000_000;
    assert_no_gaps(
        &set,
        started + gap,
        killed - gap,
        gap,
        "first agent (until kill -9)",
    );
    assert_no_gaps(
        &set,
        restarted + 1_000_000_000,
        resumed + 600_000_000,
        gap,
        "second agent (outage)",
    );
    // In order: first arrivals are ascending (a repeat of an unacknowledged batch may follow).
    let mut seen = BTreeSet::new();
    let firsts: Vec<i64> = got.iter().copied().filter(|t| seen.insert(*t)).collect();
    assert!(
        firsts.windows(2).all(|w| w[0] < w[1]),
        "backlog arrived out of order: {firsts:?}"
    );
    assert_eq!(retained(port, &status_topic), "online");

    // kill -9: the broker publishes the Last Will.
    drop(agent);
    wait_for("Last Will offline", Duration::from_secs(8), || {
        (retained(port, &status_topic) == "offline").then_some(())
    })
    .expect("retained offline after kill -9");

    // SIGTERM: online, then an explicit retained offline, and a prompt exit.
    let mut agent = start_agent(&config, dir.path().join("agent-3.log"));
    wait_for("online again", Duration::from_secs(8), || {
        (retained(port, &status_topic) == "online").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    agent.terminate(Duration::from_secs(3));
    assert_eq!(retained(port, &status_topic), "offline");
    assert!(
        agent.log().contains("MQTT disconnected cleanly"),
        "{}",
        agent.log()
    );
}

#[test]
fn mqtt_json_format_has_telegrafs_shape() {
    let dir = tempdir();
    let port = free_port();
    let _broker = start_broker(port, dir.path(), dir.path().join("broker.log"));
    let config = agent_config(dir.path(), port, "    format: json\n");
    agent_bin();
    let mut agent = start_agent(&config, dir.path().join("agent.log"));
    let out = Command::new(require_bin("mosquitto_sub", "mosquitto-clients"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            &format!("beacon/{DEVICE}/metrics"),
            "-C",
            "1",
            "-W",
            "5",
        ])
        .output()
        .expect("run mosquitto_sub");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text}; agent log:\n{}", agent.log()));
    let metrics = v["metrics"].as_array().expect("metrics array");
    let m = metrics
        .iter()
        .find(|m| m["name"] == SERIES)
        .unwrap_or_else(|| panic!("{SERIES} in {text}"));
    assert_eq!(m["tags"]["device_id"], DEVICE);
    assert_eq!(m["tags"]["site"], "lab");
    assert_eq!(m["fields"]["value"], 7.0);
    let ts = m["timestamp"].as_i64().expect("timestamp");
    assert!((now_ns() - ts).abs() < 10_000_000_000, "ns timestamp: {ts}");
    agent.terminate(Duration::from_secs(3));
}
