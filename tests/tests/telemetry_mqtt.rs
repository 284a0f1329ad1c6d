//! beacon-agent's MQTT telemetry sink against a real Mosquitto, over MQTT 3.1.1 and MQTT 5:
//! every point arrives; the retained status is `online` while the agent runs, `offline` after a
//! kill -9 (Last Will) and after SIGTERM; a broker outage with an agent kill -9 in the middle
//! loses nothing, and the backlog arrives in order with its original timestamps. Over TLS with a
//! client certificate (`mqtts://`, both protocols) points arrive, and without the certificate
//! the agent does not get through. MQTT 5 specifics: content type and payload format indicator
//! on every message, the CONNACK's receive maximum and maximum packet size respected, and a
//! PUBACK refusal (an ACL denying the topic) keeps the points spooled until the broker takes
//! them. Also the JSON format's shape.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use beacon_e2e::{
    agent_metric, assert_no_gaps, collectors_yaml, free_port, require_bin, tempdir, wait_for,
    workspace_bin, Proc, TestCa,
};

const SERIES: &str = "beacon_test_seq";
const DEVICE: &str = "dev-mqtt";

/// The agent binary, built once per test process (a build takes long enough to skew timings).
fn agent_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| workspace_bin("beacon-agent", "beacon-agent"))
}

/// How the agent and the test's clients reach the broker.
#[derive(Debug, Clone)]
struct Broker {
    port: u16,
    /// The agent and the test's clients speak MQTT 5 (else 3.1.1).
    v5: bool,
    /// A TLS listener with certificates from this CA, requiring a client certificate.
    tls: Option<TestCa>,
}

impl Broker {
    fn plain(v5: bool) -> Broker {
        Broker {
            port: free_port(),
            v5,
            tls: None,
        }
    }

    /// mosquitto_sub's connection arguments (with the client certificate under TLS).
    fn client_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["-h".into(), "127.0.0.1".into()];
        a.extend(["-p".into(), self.port.to_string()]);
        if let Some(ca) = &self.tls {
            for (flag, p) in [
                ("--cafile", &ca.ca),
                ("--cert", &ca.client_cert),
                ("--key", &ca.client_key),
            ] {
                a.extend([flag.into(), p.display().to_string()]);
            }
        }
        if self.v5 {
            a.extend(["-V".into(), "mqttv5".into()]);
        }
        a
    }

    /// The agent's `mqtt:` connection lines; `client_cert` adds the client certificate.
    fn agent_mqtt(&self, client_cert: bool) -> String {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        // rumqttc's MQTT 5 client takes no keep-alive below 5s.
        let (keep_alive, protocol) = if self.v5 {
            ("5s", "5")
        } else {
            ("2s", "3.1.1")
        };
        let mut y = format!(
            "    url: {scheme}://127.0.0.1:{}\n    keep_alive: {keep_alive}\n    protocol: \"{protocol}\"\n",
            self.port
        );
        if let Some(ca) = &self.tls {
            y.push_str(&format!("    tls:\n      ca_file: {}\n", ca.ca.display()));
            if client_cert {
                y.push_str(&format!(
                    "      cert_file: {}\n      key_file: {}\n",
                    ca.client_cert.display(),
                    ca.client_key.display()
                ));
            }
        }
        y
    }
}

/// An agent config (loadavg and one textfile series, published every 300ms) and its listen port.
struct AgentConfig {
    path: PathBuf,
    listen: u16,
}

/// Writes `dir/agent.yaml` with `mqtt` as the lines under `telemetry.mqtt:`.
fn agent_config(dir: &Path, mqtt: &str) -> AgentConfig {
    let tf = dir.join("textfile");
    std::fs::create_dir_all(&tf).expect("textfile dir");
    std::fs::write(tf.join("seq.prom"), format!("{SERIES} 7\n")).expect("write textfile");
    // loadavg stays on beside the textfile series.
    let collectors = collectors_yaml(&["loadavg"], &tf);
    let listen = free_port();
    let yaml = format!(
        "listen: 127.0.0.1:{listen}\n{collectors}telemetry:\n  interval: 300ms\n  device_id: {DEVICE}\n  tags: {{site: lab}}\n  spool: {{dir: {spool}}}\n  replay_rate: 200\n  mqtt:\n{mqtt}",
        spool = dir.join("spool").display(),
    );
    let path = dir.join("agent.yaml");
    std::fs::write(&path, yaml).expect("write agent config");
    AgentConfig { path, listen }
}

fn start_agent(config: &AgentConfig, log: PathBuf) -> Proc {
    let mut cmd = Command::new(agent_bin());
    cmd.arg("--config").arg(&config.path);
    Proc::start(cmd, log)
}

/// Mosquitto for `broker` with persistence in `dir` (sessions and retained messages survive a
/// restart) and `extra` lines of configuration.
fn start_broker(broker: &Broker, dir: &Path, log: PathBuf, extra: &str) -> Proc {
    // Mosquitto started as root drops to its own user: the persistence directory must be
    // writable for it.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .expect("chmod broker dir");
    let mut conf = format!(
        "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\n{extra}",
        broker.port,
        dir.display()
    );
    if let Some(ca) = &broker.tls {
        conf.push_str(&format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            ca.ca.display(),
            ca.server_cert.display(),
            ca.server_key.display()
        ));
    }
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).expect("write mosquitto.conf");
    let mut cmd = Command::new(require_bin("mosquitto", "mosquitto"));
    cmd.arg("-c").arg(&path);
    let p = Proc::start(cmd, log);
    wait_for("mosquitto listening", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", broker.port)).ok()
    })
    .unwrap_or_else(|e| panic!("{e}: {}", p.log()));
    p
}

/// mosquitto_sub for `broker` with `args` after the connection arguments: its stdout.
fn sub_once(broker: &Broker, args: &[&str]) -> String {
    let out = Command::new(require_bin("mosquitto_sub", "mosquitto-clients"))
        .args(broker.client_args())
        .args(args)
        .output()
        .expect("run mosquitto_sub");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The retained message on `topic` (empty if none arrives within 1s).
fn retained(broker: &Broker, topic: &str) -> String {
    sub_once(broker, &["-t", topic, "-C", "1", "-W", "1"])
}

/// A subscriber with a persistent session (QoS 1), so messages published while it reconnects
/// after a broker restart are queued for it; output `topic payload` per line.
fn subscriber(broker: &Broker, topic: &str, out: PathBuf) -> Proc {
    let mut cmd = Command::new(require_bin("mosquitto_sub", "mosquitto-clients"));
    cmd.args(broker.client_args()).args([
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

/// A persistent subscriber to one topic per family, and an agent config in `dir` publishing
/// there.
fn per_family(broker: &Broker, dir: &Path) -> (Proc, AgentConfig) {
    let sub = subscriber(broker, &format!("beacon/{DEVICE}/m/#"), dir.join("sub.log"));
    let topic = "    topic: \"beacon/{device_id}/m/{measurement}\"\n";
    let config = agent_config(dir, &format!("{}{topic}", broker.agent_mqtt(true)));
    (sub, config)
}

/// The whole presence and outage story over one protocol.
fn presence_and_nothing_lost_through_outage_and_kill(v5: bool) {
    let dir = tempdir();
    let broker = Broker::plain(v5);
    let bdir = dir.path().join("broker");
    std::fs::create_dir_all(&bdir).expect("broker dir");
    let mut mosquitto = start_broker(&broker, &bdir, dir.path().join("broker-1.log"), "");
    let status_topic = format!("beacon/{DEVICE}/status");
    let (sub, config) = per_family(&broker, dir.path());
    agent_bin();
    // Let the subscriber's session exist before the first point.
    std::thread::sleep(Duration::from_millis(300));
    let started = now_ns();
    let agent = start_agent(&config, dir.path().join("agent-1.log"));
    wait_for("points arriving", Duration::from_secs(10), || {
        (received(&sub).len() >= 4).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}\nsub:\n{}", agent.log(), sub.log()));
    assert_eq!(retained(&broker, &status_topic), "online");
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
    mosquitto.terminate(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1000));
    let killed = now_ns();
    drop(agent); // SIGKILL while disconnected
    std::thread::sleep(Duration::from_millis(300));
    let restarted = now_ns();
    let agent = start_agent(&config, dir.path().join("agent-2.log"));
    std::thread::sleep(Duration::from_millis(1000));
    let _mosquitto = start_broker(&broker, &bdir, dir.path().join("broker-2.log"), "");
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
    assert_eq!(retained(&broker, &status_topic), "online");

    // kill -9: the broker publishes the Last Will.
    drop(agent);
    wait_for("Last Will offline", Duration::from_secs(8), || {
        (retained(&broker, &status_topic) == "offline").then_some(())
    })
    .expect("retained offline after kill -9");

    // SIGTERM: online, then an explicit retained offline, and a prompt exit.
    let mut agent = start_agent(&config, dir.path().join("agent-3.log"));
    wait_for("online again", Duration::from_secs(8), || {
        (retained(&broker, &status_topic) == "online").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    agent.terminate(Duration::from_secs(3));
    assert_eq!(retained(&broker, &status_topic), "offline");
    assert!(
        agent.log().contains("MQTT disconnected cleanly"),
        "{}",
        agent.log()
    );
}

#[test]
fn mqtt_presence_and_nothing_lost_through_outage_and_kill() {
    presence_and_nothing_lost_through_outage_and_kill(false);
}

#[test]
fn mqtt5_presence_and_nothing_lost_through_outage_and_kill() {
    presence_and_nothing_lost_through_outage_and_kill(true);
}

/// The next message on `topic`, printed as `content type|payload format indicator|payload`
/// (the MQTT 5 properties are empty over 3.1.1).
fn next_message(broker: &Broker, topic: &str) -> String {
    sub_once(
        broker,
        &["-t", topic, "-C", "1", "-W", "5", "-F", "%C|%F|%p"],
    )
}

#[test]
fn mqtts_with_a_client_certificate_and_not_without() {
    let dir = tempdir();
    let ca_dir = dir.path().join("ca");
    std::fs::create_dir_all(&ca_dir).expect("ca dir");
    let ca = TestCa::create(&ca_dir);
    let mut broker = Broker {
        port: free_port(),
        v5: false,
        tls: Some(ca),
    };
    let _mosquitto = start_broker(&broker, dir.path(), dir.path().join("broker.log"), "");
    agent_bin();
    let status_topic = format!("beacon/{DEVICE}/status");
    let data_topic = format!("beacon/{DEVICE}/metrics");
    for v5 in [false, true] {
        broker.v5 = v5;
        let adir = dir.path().join(format!("agent-v5-{v5}"));
        std::fs::create_dir_all(&adir).expect("agent dir");
        let config = agent_config(&adir, &broker.agent_mqtt(true));
        let mut agent = start_agent(&config, adir.join("agent.log"));
        let msg = next_message(&broker, &data_topic);
        let want = if v5 {
            "text/plain; charset=utf-8|1|"
        } else {
            "||"
        };
        assert!(
            msg.starts_with(want) && msg.contains(&format!("{SERIES},device_id={DEVICE},")),
            "MQTT 5: {v5}; message over TLS with its properties: {msg:?}; agent log:\n{}",
            agent.log()
        );
        assert_eq!(retained(&broker, &status_topic), "online");
        agent.terminate(Duration::from_secs(3));
    }

    // Without the client certificate the broker refuses the agent: no points, not connected.
    let adir = dir.path().join("agent-no-cert");
    std::fs::create_dir_all(&adir).expect("agent dir");
    let config = agent_config(&adir, &broker.agent_mqtt(false));
    let agent = start_agent(&config, adir.join("agent.log"));
    wait_for("refusals in the log", Duration::from_secs(10), || {
        (agent.log().matches("MQTT connection lost").count() >= 2).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    let msg = next_message(&broker, &data_topic);
    assert!(msg.is_empty(), "a message got through: {msg:?}");
    assert!(!agent.log().contains("MQTT connected"), "{}", agent.log());
    assert!(
        agent.log().contains("CertificateRequired"),
        "refused for the missing certificate: {}",
        agent.log()
    );
    assert_eq!(
        agent_metric(
            config.listen,
            "beacon_agent_telemetry_connected{sink=\"mqtt\"} "
        ),
        0.0
    );
    assert!(
        agent_metric(
            config.listen,
            "beacon_agent_telemetry_spooled_bytes{sink=\"mqtt\"} "
        ) > 0.0,
        "the points stay spooled"
    );
}

#[test]
fn mqtt_json_format_has_telegrafs_shape_with_both_protocols() {
    let dir = tempdir();
    let mut broker = Broker::plain(false);
    let _mosquitto = start_broker(&broker, dir.path(), dir.path().join("broker.log"), "");
    agent_bin();
    for v5 in [false, true] {
        broker.v5 = v5;
        let adir = dir.path().join(format!("agent-v5-{v5}"));
        std::fs::create_dir_all(&adir).expect("agent dir");
        let config = agent_config(
            &adir,
            &format!("{}    format: json\n", broker.agent_mqtt(true)),
        );
        let mut agent = start_agent(&config, adir.join("agent.log"));
        let msg = next_message(&broker, &format!("beacon/{DEVICE}/metrics"));
        let parts: Vec<&str> = msg.splitn(3, '|').collect();
        let [content_type, utf8, text] = parts[..] else {
            panic!("{msg:?}; agent log:\n{}", agent.log());
        };
        let want = if v5 {
            ["application/json", "1"]
        } else {
            ["", ""]
        };
        assert_eq!([content_type, utf8], want, "MQTT 5 properties: {v5}");
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
}

#[test]
fn mqtt5_respects_the_brokers_limits_and_a_refusal_is_no_ack() {
    let dir = tempdir();
    let broker = Broker::plain(true);
    // The ACL lets the agent publish its status but not its data, until it is reloaded.
    let acl = dir.path().join("acl");
    std::fs::write(
        &acl,
        "topic readwrite beacon/+/status\ntopic read beacon/#\n",
    )
    .expect("acl");
    let mosquitto = start_broker(
        &broker,
        dir.path(),
        dir.path().join("broker.log"),
        &format!(
            "max_inflight_messages 2\nmax_packet_size 4000\nacl_file {}\n",
            acl.display()
        ),
    );
    let (sub, config) = per_family(&broker, dir.path());
    // One family whose message is larger than the broker's maximum packet size.
    std::fs::write(
        dir.path().join("textfile/big.prom"),
        format!("beacon_test_big{{blob=\"{}\"}} 1\n", "x".repeat(5000)),
    )
    .expect("write big.prom");
    agent_bin();
    std::thread::sleep(Duration::from_millis(300));
    let started = now_ns();
    let agent = start_agent(&config, dir.path().join("agent.log"));
    wait_for("two refusals", Duration::from_secs(10), || {
        (agent
            .log()
            .matches("PUBACK reason code 0x87 NotAuthorized")
            .count()
            >= 2)
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    assert!(
        agent.log().contains("window=2 max_packet=4000"),
        "the CONNACK's receive maximum and maximum packet size: {}",
        agent.log()
    );
    assert!(received(&sub).is_empty(), "refused, yet delivered");

    // The ACL fixed and reloaded: everything refused so far arrives, nothing was dropped.
    std::fs::write(&acl, "topic readwrite beacon/#\n").expect("acl");
    let reloaded = now_ns();
    let hup = Command::new("kill")
        .args(["-HUP", &mosquitto.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let got = wait_for("the refused points", Duration::from_secs(20), || {
        let r = received(&sub);
        r.iter().any(|&t| t > reloaded + 600_000_000).then_some(r)
    })
    .unwrap_or_else(|e| panic!("{e}; agent log:\n{}", agent.log()));
    let gap = 500_000_000;
    assert_no_gaps(
        &got.into_iter().collect(),
        started + gap,
        reloaded + 600_000_000,
        gap,
        "refused, then accepted",
    );
    let m = |needle: &str| agent_metric(config.listen, needle);
    assert_eq!(
        m("beacon_agent_telemetry_dropped_total{reason=\"rejected\",sink=\"mqtt\"} "),
        0.0
    );
    assert!(m("beacon_agent_telemetry_points_failed_total{sink=\"mqtt\"} ") > 0.0);
    assert!(
        m("beacon_agent_telemetry_dropped_total{reason=\"too_large\",sink=\"mqtt\"} ") > 0.0,
        "the big family is dropped and counted"
    );
    assert!(
        !sub.log().contains("beacon_test_big"),
        "nothing over the maximum packet size goes out"
    );
}
