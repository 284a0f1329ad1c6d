//! High availability end to end: two `beacon-router` processes sharing a real `redis-server`
//! behind one "Service" (webhooks alternate between them), one Slack stand-in enforcing 1
//! message/s per channel. A burst of 300 alerts in 10 groups while one replica is killed with
//! -9: every acknowledged notification delivered, at most the killed replica's in-flight
//! message repeated, the shared rate never exceeded, resolved groups edited and told in their
//! own threads; the same on a three-primary Redis Cluster in cluster mode. And Redis restarted
//! mid-burst: webhooks refused with 5xx during the outage, nothing acknowledged lost, delivery
//! resumes by itself. And `rediss://`: TLS to a real redis-server with a test CA, refused while
//! the CA is unknown.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use beacon_e2e::standin::slack::{Message, SlackConfig, SlackStandin};
use beacon_e2e::standin::Rate;
use serde_json::Value;
use support::redis::Redis;
use support::{am_payload, Router, A, SLACK_TOKEN};

const GROUPS: usize = 10;
const ALERTS_PER_GROUP: usize = 30;

fn slack() -> SlackStandin {
    SlackStandin::start(SlackConfig {
        token: SLACK_TOKEN.into(),
        channels: vec!["C1".into(), "C2".into()],
        // Slack's 1 message/s per channel with a short burst.
        rate: Rate {
            per_second: 1.0,
            burst: 2,
        },
        ..SlackConfig::default()
    })
    .expect("slack stand-in")
}

/// A replica on `redis`, posting to C1 (team a) and C2 (team b) at 1/s with no burst, so that
/// together the replicas never exceed what the stand-in allows.
fn replica(redis: &Redis, slack: &SlackStandin) -> Router {
    replica_on(&redis.url(), false, slack)
}

/// A replica on the Redis at `url`, in cluster mode if `cluster`.
fn replica_on(url: &str, cluster: bool, slack: &SlackStandin) -> Router {
    let storage = format!(
        "  redis:\n    url: {url}\n    key_prefix: \"ha-test:\"\n    claim_after: 4s\n    cluster: {cluster}\n"
    );
    let r = Router::start_with_storage(&storage, "");
    r.write_config(&support::two_team_config(
        &r.dir,
        &slack.base_url(),
        "{per_second: 1, burst: 1}",
        "  initial_backoff: 200ms\n  max_backoff: 1s\n  max_attempts: 100\n  digest_after: 1h\n",
    ));
    let (code, body) = support::post(&r.url("/-/reload"), Vec::new(), &[]);
    assert_eq!(code, 200, "{body}");
    r
}

fn group_name(g: usize) -> String {
    format!("HaGroup{g:02}x")
}

fn channel_of(g: usize) -> &'static str {
    if g.is_multiple_of(2) {
        "C1"
    } else {
        "C2"
    }
}

/// The group's state after `n` alerts fired (all firing), or all resolved.
fn payload(g: usize, n: usize, resolved: bool) -> Value {
    let names: Vec<String> = (0..n).map(|i| format!("pod-{i:02}")).collect();
    let alerts: Vec<A<'_>> = names
        .iter()
        .map(|name| A {
            name,
            firing: !resolved,
        })
        .collect();
    let team = if g.is_multiple_of(2) { "a" } else { "b" };
    am_payload(&group_name(g), &alerts, &[("team", team)])
}

/// The message tag of a state: `[FIRING:10]` or `[RESOLVED:30]`, followed by the group name.
fn tag(g: usize, n: usize, resolved: bool) -> String {
    let status = if resolved { "RESOLVED" } else { "FIRING" };
    format!("[{status}:{n}] {}", group_name(g))
}

fn find<'a>(msgs: &'a [Message], channel: &str, tag: &str) -> Vec<&'a Message> {
    msgs.iter()
        .filter(|m| m.channel == channel && m.text.as_deref().unwrap_or("").contains(tag))
        .collect()
}

/// Posts `body` to `router` as Alertmanager would, retrying on failure (as Alertmanager
/// does) through the other replica after the first is gone. Returns whether it was accepted.
fn deliver(routers: &[&Router], body: &Value) -> bool {
    for _ in 0..50 {
        for r in routers {
            let resp = beacon_e2e::http_client()
                .post(r.url("/webhooks/alertmanager"))
                .header("Authorization", format!("Bearer {}", support::AM_TOKEN))
                .body(body.to_string())
                .send();
            if resp.is_ok_and(|r| r.status().is_success()) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn two_replicas_one_killed_mid_burst_lose_nothing_and_keep_the_rate() {
    let redis = Redis::new();
    two_replicas_one_killed(&redis.url(), false);
}

/// The same on a three-primary Redis Cluster: the replicas' state in one slot, reached through
/// the first node (redirected when another serves the slot).
#[test]
fn on_a_redis_cluster_two_replicas_one_killed_mid_burst_lose_nothing() {
    let cluster = support::cluster::Cluster::start();
    two_replicas_one_killed(&cluster.nodes[0].url(), true);
}

fn two_replicas_one_killed(url: &str, cluster: bool) {
    let slack = slack();
    let a = replica_on(url, cluster, &slack);
    let mut b = replica_on(url, cluster, &slack);

    // The burst: each group's alerts arrive in three growing webhooks (10, 20, 30 alerts),
    // alternating between the replicas as a Service would; replica B dies half way.
    let steps = [10, 20, ALERTS_PER_GROUP];
    let mut sent: Vec<(usize, usize, bool)> = Vec::new();
    let mut k = 0usize;
    for n in steps {
        for g in 0..GROUPS {
            if k == 15 {
                b.signal("KILL");
            }
            let targets: Vec<&Router> = if k.is_multiple_of(2) || k >= 15 {
                vec![&a]
            } else {
                vec![&b]
            };
            assert!(
                deliver(&targets, &payload(g, n, false)),
                "webhook {k} accepted"
            );
            sent.push((g, n, false));
            k += 1;
        }
    }
    // Resolve every group once its firing states are out (firing before resolved).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let msgs = slack.messages();
        let all_firing = sent
            .iter()
            .all(|(g, n, _)| !find(&msgs, channel_of(*g), &tag(*g, *n, false)).is_empty());
        if all_firing {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "firing states not all delivered; log A:\n{}",
            a.server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // B comes back for the resolutions; both replicas take webhooks again.
    b.restart();
    for g in 0..GROUPS {
        let target = if g.is_multiple_of(2) { &a } else { &b };
        assert!(deliver(&[target], &payload(g, ALERTS_PER_GROUP, true)));
        sent.push((g, ALERTS_PER_GROUP, true));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let msgs = slack.messages();
        let missing: Vec<_> = sent
            .iter()
            .filter(|(g, n, r)| find(&msgs, channel_of(*g), &tag(*g, *n, *r)).is_empty())
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never delivered: {missing:?}\nA:\n{}\nB:\n{}",
            a.server.log(),
            b.server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let a late repeat (a lease taken over from the killed replica) show up before counting.
    std::thread::sleep(Duration::from_secs(5));
    let msgs = slack.messages();

    // At most the killed replica's in-flight message repeated (one per channel it served).
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for (g, n, r) in &sent {
        copies.insert(
            tag(*g, *n, *r),
            find(&msgs, channel_of(*g), &tag(*g, *n, *r)).len(),
        );
    }
    let repeats: usize = copies.values().map(|c| c - 1).sum();
    assert!(repeats <= 2, "{repeats} repeated messages: {copies:?}");

    // The shared rate held: the stand-in never had to refuse, and any 10 s saw at most the
    // configured 1/s (plus the one token a bucket starts with).
    let refused: Vec<_> = slack
        .rejections()
        .into_iter()
        .filter(|r| r.status == 429)
        .collect();
    assert!(refused.is_empty(), "rate exceeded: {refused:#?}");
    for ch in ["C1", "C2"] {
        let most = slack.max_in_window(ch, Duration::from_secs(10));
        assert!(most <= 11, "{ch}: {most} messages within 10 s");
    }

    // Each group: first message top-level, later ones (firing and resolved) in its thread,
    // the first edited to show it resolved, whichever replica sent each.
    let updates = slack.updates();
    for g in 0..GROUPS {
        let ch = channel_of(g);
        let first = find(&msgs, ch, &tag(g, 10, false));
        let parent = first[0];
        assert_eq!(parent.thread_ts, None, "group {g} starts a thread");
        for (n, r) in [
            (20, false),
            (ALERTS_PER_GROUP, false),
            (ALERTS_PER_GROUP, true),
        ] {
            for m in find(&msgs, ch, &tag(g, n, r)) {
                assert_eq!(
                    m.thread_ts.as_deref(),
                    Some(parent.ts.as_str()),
                    "group {g} state {n}/{r} in the group's thread"
                );
            }
        }
        assert!(
            updates
                .iter()
                .any(|u| u.ts == parent.ts && u.text.as_deref().unwrap_or("").contains("RESOLVED")),
            "group {g}'s first message edited to resolved"
        );
    }
}

#[test]
fn redis_restarted_mid_burst_refuses_then_resumes_and_loses_nothing() {
    let mut redis = Redis::new();
    let slack = slack();
    let r = replica(&redis, &slack);
    let mut accepted = Vec::new();
    for g in 0..4 {
        assert!(deliver(&[&r], &payload(g, 1, false)));
        accepted.push(g);
    }
    redis.stop();
    // During the outage: refused with 5xx (so Alertmanager retries), not ready.
    let body = payload(4, 1, false).to_string();
    let resp = beacon_e2e::http_client()
        .post(r.url("/webhooks/alertmanager"))
        .header("Authorization", format!("Bearer {}", support::AM_TOKEN))
        .body(body)
        .send()
        .expect("router answers");
    assert_eq!(resp.status().as_u16(), 503, "{:?}", resp.text());
    let ready = beacon_e2e::http_client()
        .get(r.url("/readyz"))
        .send()
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 503);
    std::thread::sleep(Duration::from_millis(1500));
    redis.start();
    // After: accepted again, and everything acknowledged is delivered, by itself.
    for g in 4..8 {
        assert!(deliver(&[&r], &payload(g, 1, false)));
        accepted.push(g);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let msgs = slack.messages();
        let missing: Vec<_> = accepted
            .iter()
            .filter(|g| find(&msgs, channel_of(**g), &tag(**g, 1, false)).is_empty())
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never delivered: {missing:?}\n{}",
            r.server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        r.server.log().contains("store error"),
        "the outage was seen and logged"
    );
}

#[test]
fn rediss_works_with_the_ca_trusted_and_refuses_an_unknown_issuer() {
    let dir = beacon_e2e::tempdir();
    let d = dir.path();
    let ca = beacon_e2e::TestCa::create(d);
    let port = beacon_e2e::free_port();
    let mut cmd =
        std::process::Command::new(beacon_e2e::require_bin("redis-server", "redis-server"));
    cmd.args([
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--tls-auth-clients",
        "no",
    ])
    .arg("--tls-port")
    .arg(port.to_string())
    .arg("--tls-cert-file")
    .arg(&ca.server_cert)
    .arg("--tls-key-file")
    .arg(&ca.server_key)
    .arg("--tls-ca-cert-file")
    .arg(&ca.ca);
    let _redis = beacon_e2e::Server::start("redis-tls", cmd, d).expect("start redis-server");
    beacon_e2e::wait_for("redis tls port", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("redis listening");
    let router_port = beacon_e2e::free_port();
    let config = d.join("router.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{router_port}\nstorage:\n  redis:\n    url: rediss://localhost:{port}/0\n"
        ),
    )
    .expect("config");
    // Unknown issuer: refused at start, with the reason and without the URL's secrets.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_beacon-router"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run router");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    // The CA trusted (SSL_CERT_FILE, as a mounted bundle would be): ready, and a webhook is
    // acknowledged through the TLS connection.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_beacon-router"));
    cmd.arg("--config")
        .arg(&config)
        .env("SSL_CERT_FILE", &ca.ca);
    let mut router = beacon_e2e::Server::start("router-tls", cmd, d).expect("start router");
    router
        .wait_ready(&format!("http://127.0.0.1:{router_port}/readyz"))
        .expect("ready over rediss://");
    let (code, body) = support::post(
        &format!("http://127.0.0.1:{router_port}/webhooks/alertmanager"),
        payload(0, 1, false).to_string().into_bytes(),
        &[],
    );
    assert_eq!(code, 200, "{body}");
}
