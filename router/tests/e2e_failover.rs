//! Failover end to end: a Redis primary, one replica and three real Sentinels on loopback
//! ports; one `beacon-router` finds the primary through the Sentinels (`redis+sentinel://`).
//! Webhooks arrive from several senders without pause; the replica falls behind (its
//! replication link runs through a relay that holds the stream back, as a slow network
//! would), the primary is killed with -9 and Sentinel promotes the replica.
//!
//! With replicated acknowledgement (`WAIT`, on by default because the primary has a replica)
//! the webhooks that arrive while the replica lags are refused (503, Alertmanager retries),
//! every webhook answered 200 is delivered to the Slack stand-in exactly once (at most the
//! one in flight twice), and the router accepts again once the replica is promoted. With
//! `min_replicas: 0` the same run acknowledges what the promoted replica never got: the test
//! counts it (the acknowledged-and-lost figure of BENCHMARKS.md) and requires it to be more
//! than zero, so the first test's zero means something.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beacon_e2e::standin::slack::{SlackConfig, SlackStandin};
use beacon_e2e::standin::Rate;
use beacon_e2e::wait_for;
use support::redis::Redis;
use support::sentinel::{Relay, SentinelSet};
use support::{am_payload, Router, A, SLACK_TOKEN};

/// Webhooks acknowledged before the replica falls behind, and after the promotion.
const BEFORE: usize = 40;
const AFTER: usize = 40;
/// Senders posting at once, as several Alertmanagers would.
const SENDERS: usize = 4;

fn group(i: usize) -> String {
    format!("FoGroup{i:04}x")
}

/// What one run saw.
#[derive(Debug)]
struct Outcome {
    /// Webhooks answered 200.
    acknowledged: usize,
    /// Answered 200 and never delivered.
    lost: usize,
    /// Of those, answered before the replica fell behind or after the kill began.
    lost_outside_lag: usize,
    /// Extra copies delivered of acknowledged webhooks.
    repeated: usize,
    /// Sent and answered 200 while the replica was held back (so before the kill).
    acknowledged_while_lagging: usize,
    /// Answered otherwise while the replica was held back.
    refused_while_lagging: usize,
    /// Seconds from the kill to the first webhook accepted again.
    recovery_secs: f64,
    /// `beacon_router_store_unreplicated_writes_total` at the end.
    unreplicated: f64,
    /// Times the router logged a `READONLY` answer (a demoted primary) and reconnected.
    readonly_reconnects: usize,
}

/// Phases of the run, as the senders record them.
const NORMAL: usize = 0;
const LAGGING: usize = 1;
const FAILOVER: usize = 2;

/// What stands between the router and Redis, and how the primary changes.
enum Scenario {
    /// Sentinels; the replica lags, the primary is killed with -9.
    Sentinel { min_replicas: Option<u32> },
    /// One address (a relay standing in for a managed primary endpoint); `FAILOVER` turns
    /// the primary into a replica of the other server, then the address moves to that one.
    ManagedEndpoint,
}

/// The servers of a scenario.
enum Servers {
    Sentinel(SentinelSet),
    Managed { a: Redis, b: Redis, endpoint: Relay },
}

fn run(scenario: Scenario) -> Outcome {
    let (mut servers, url, min_replicas) = match scenario {
        Scenario::Sentinel { min_replicas } => {
            let set = SentinelSet::start();
            let url = set.url();
            (Servers::Sentinel(set), url, min_replicas)
        }
        Scenario::ManagedEndpoint => {
            let a = Redis::with_args(None, &["--repl-diskless-sync-delay", "0"]);
            let a_port = a.port.to_string();
            let b = Redis::with_args(
                None,
                &[
                    "--replicaof",
                    "127.0.0.1",
                    &a_port,
                    "--repl-diskless-sync-delay",
                    "0",
                ],
            );
            wait_for("the replica to sync", Duration::from_secs(30), || {
                let info: String = b.cmd(&["INFO", "replication"]).ok()?;
                info.contains("master_link_status:up").then_some(())
            })
            .expect("replica in sync");
            let endpoint = Relay::start(a.port);
            let url = format!("redis://127.0.0.1:{}/0", endpoint.port);
            (Servers::Managed { a, b, endpoint }, url, None)
        }
    };
    let slack = SlackStandin::start(SlackConfig {
        token: SLACK_TOKEN.into(),
        channels: vec!["C1".into(), "C2".into()],
        rate: Rate {
            per_second: 200.0,
            burst: 50,
        },
        ..SlackConfig::default()
    })
    .expect("slack stand-in");
    let mut storage = format!(
        "  redis:\n    url: {url}\n    key_prefix: \"fo:\"\n    claim_after: 3s\n    wait_timeout: 300ms\n"
    );
    if let Some(n) = min_replicas {
        storage.push_str(&format!("    min_replicas: {n}\n"));
    }
    let router = Router::start_with_storage(&storage, "");
    router.write_config(&support::two_team_config(
        &router.dir,
        &slack.base_url(),
        "{per_second: 100, burst: 20}",
        "  initial_backoff: 100ms\n  max_backoff: 500ms\n  max_attempts: 1000\n  digest_after: 1h\n",
    ));
    let (code, body) = support::post(&router.url("/-/reload"), Vec::new(), &[]);
    assert_eq!(code, 200, "{body}");

    // Senders: each webhook a group of its own, posted once; (index, phase when answered,
    // accepted).
    let phase = Arc::new(AtomicUsize::new(NORMAL));
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let results = Arc::new(Mutex::new(Vec::<(usize, usize, usize, bool)>::new()));
    let url = router.url("/webhooks/alertmanager");
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (phase, next, stop, results, url) = (
                phase.clone(),
                next.clone(),
                stop.clone(),
                results.clone(),
                url.clone(),
            );
            std::thread::spawn(move || {
                let client = beacon_e2e::http_client();
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let started = phase.load(Ordering::SeqCst);
                    let body = am_payload(
                        &group(i),
                        &[A {
                            name: "pod",
                            firing: true,
                        }],
                        &[("team", "a")],
                    );
                    let ok = client
                        .post(&url)
                        .header("Authorization", format!("Bearer {}", support::AM_TOKEN))
                        .body(body.to_string())
                        .send()
                        .is_ok_and(|r| r.status().is_success());
                    // The phase when the answer came: one answered while lagging was
                    // answered before the kill (the kill follows the change of phase); one
                    // also sent while lagging was written after the replica fell behind.
                    let p = phase.load(Ordering::SeqCst);
                    results.lock().expect("results").push((i, started, p, ok));
                    if !ok {
                        // Refused: pace the retries a little, as Alertmanager's backoff does.
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    let accepted = |in_phase: usize| {
        results
            .lock()
            .expect("results")
            .iter()
            .filter(|(_, _, p, ok)| *ok && *p == in_phase)
            .count()
    };
    let attempts = |in_phase: usize| {
        results
            .lock()
            .expect("results")
            .iter()
            .filter(|(_, _, p, _)| *p == in_phase)
            .count()
    };
    let log = || router.server.log();

    router.wait("webhooks acknowledged", Duration::from_secs(30), || {
        accepted(NORMAL) >= BEFORE
    });
    let killed_at = match &mut servers {
        Servers::Sentinel(set) => {
            // The replica falls behind: what the primary sends it from now on stays in the
            // relay.
            set.relay.hold(true);
            phase.store(LAGGING, Ordering::SeqCst);
            router.wait(
                "webhooks while the replica lags",
                Duration::from_secs(30),
                || attempts(LAGGING) >= 24,
            );
            // Kill -9 the primary in the middle of the burst; the held stream dies with it.
            let old = set.primary.port;
            phase.store(FAILOVER, Ordering::SeqCst);
            let killed_at = Instant::now();
            set.primary.stop();
            router.wait(
                "Sentinel to promote the replica",
                Duration::from_secs(30),
                || set.current_primary().is_some_and(|p| p != old),
            );
            assert_eq!(set.current_primary(), Some(set.replica.port));
            killed_at
        }
        Servers::Managed { a, b, endpoint } => {
            // A managed failover: the primary pauses writes until the replica has caught
            // up, then each takes the other's role; the router's open connections still lead
            // to the old primary, which answers READONLY now.
            phase.store(FAILOVER, Ordering::SeqCst);
            let started = Instant::now();
            let ok: String = a.cmd(&["FAILOVER"]).expect("FAILOVER");
            assert_eq!(ok, "OK");
            let role = |r: &Redis| -> Option<String> {
                let info: String = r.cmd(&["INFO", "replication"]).ok()?;
                info.lines()
                    .find_map(|l| l.trim().strip_prefix("role:").map(str::to_string))
            };
            router.wait("the roles to switch", Duration::from_secs(30), || {
                role(a).as_deref() == Some("slave") && role(b).as_deref() == Some("master")
            });
            // Then the endpoint's name moves to the new primary.
            endpoint.retarget(b.port);
            started
        }
    };
    // The router keeps accepting: it finds the new primary through the Sentinels.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut recovery_secs = None;
    while accepted(FAILOVER) < AFTER {
        if recovery_secs.is_none() && accepted(FAILOVER) > 0 {
            recovery_secs = Some(killed_at.elapsed().as_secs_f64());
        }
        assert!(
            Instant::now() < deadline,
            "router did not accept {AFTER} webhooks after the failover ({} did); log:\n{}",
            accepted(FAILOVER),
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.join().expect("sender");
    }
    let results = results.lock().expect("results").clone();

    // Everything queued goes out (retries of sends whose ack died with the primary
    // included): the queue drains.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = router.metrics();
        if m.contains("beacon_router_store_up 1")
            && support::sum_metric(&m, "beacon_router_queue_depth", &[]) == 0.0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queue not drained:\n{}\nlog:\n{}",
            m.lines()
                .filter(|l| l.starts_with("beacon_router_queue")
                    || l.starts_with("beacon_router_store"))
                .collect::<Vec<_>>()
                .join("\n"),
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let unreplicated = router.metric_sum("beacon_router_store_unreplicated_writes_total", &[]);
    let msgs = slack.messages();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for m in &msgs {
        let text = m.text.as_deref().unwrap_or("");
        if let Some(start) = text.find("FoGroup") {
            *copies
                .entry(text[start..start + 12].to_string())
                .or_default() += 1;
        }
    }
    let acked: Vec<&(usize, usize, usize, bool)> = results.iter().filter(|r| r.3).collect();
    let lost: Vec<&(usize, usize, usize, bool)> = acked
        .iter()
        .filter(|r| !copies.contains_key(&group(r.0)))
        .copied()
        .collect();
    let repeated: usize = acked
        .iter()
        .map(|r| {
            copies
                .get(&group(r.0))
                .copied()
                .unwrap_or(1)
                .saturating_sub(1)
        })
        .sum();
    let outcome = Outcome {
        acknowledged: acked.len(),
        lost: lost.len(),
        lost_outside_lag: lost.iter().filter(|r| r.2 != LAGGING).count(),
        repeated,
        acknowledged_while_lagging: acked
            .iter()
            .filter(|r| r.1 == LAGGING && r.2 == LAGGING)
            .count(),
        refused_while_lagging: results.iter().filter(|r| r.2 == LAGGING && !r.3).count(),
        recovery_secs: recovery_secs.unwrap_or_else(|| killed_at.elapsed().as_secs_f64()),
        unreplicated,
        readonly_reconnects: log().matches("answered READONLY").count(),
    };
    // The figure for BENCHMARKS.md (shown with `--nocapture`).
    println!(
        "FAILOVER min_replicas={} {outcome:?} lost={:?}",
        min_replicas.map_or("auto".to_string(), |n| n.to_string()),
        lost.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(outcome.acknowledged >= BEFORE + AFTER, "{outcome:?}");
    drop(servers);
    // Sentinel needs 1 s to see the primary down and a moment to elect; the router follows.
    assert!(outcome.recovery_secs < 20.0, "{outcome:?}");
    outcome
}

#[test]
fn replicated_acknowledgement_loses_nothing_when_sentinel_promotes_a_lagging_replica() {
    let o = run(Scenario::Sentinel { min_replicas: None });
    assert_eq!(o.lost, 0, "acknowledged and lost: {o:?}");
    assert!(
        o.repeated <= 1,
        "more than the in-flight send repeated: {o:?}"
    );
    // The lagging replica did not confirm: those webhooks were refused, and counted.
    assert!(o.refused_while_lagging > 0, "{o:?}");
    assert_eq!(o.acknowledged_while_lagging, 0, "{o:?}");
    assert!(o.unreplicated > 0.0, "{o:?}");
}

#[test]
fn without_wait_the_same_failover_loses_acknowledged_webhooks() {
    let o = run(Scenario::Sentinel {
        min_replicas: Some(0),
    });
    // What replicated acknowledgement guards against: answered 200, never delivered.
    assert!(o.acknowledged_while_lagging > 0, "{o:?}");
    assert!(o.lost > 0, "{o:?}");
    // Only what the lagging replica never got: those sent while it lagged, and at most the
    // requests in flight (one per sender) when the hold began and when the primary died.
    assert!(
        o.lost <= o.acknowledged_while_lagging + 2 * SENDERS,
        "{o:?}"
    );
    assert!(o.lost_outside_lag <= 2 * SENDERS, "{o:?}");
    assert_eq!(o.unreplicated, 0.0, "{o:?}");
}

#[test]
fn a_demoted_primary_behind_a_managed_endpoint_means_reconnect_and_nothing_is_lost() {
    let o = run(Scenario::ManagedEndpoint);
    // The old primary's READONLY answers were taken for what they are.
    assert!(o.readonly_reconnects > 0, "{o:?}");
    assert_eq!(o.lost, 0, "acknowledged and lost: {o:?}");
    assert!(
        o.repeated <= 1,
        "more than the in-flight send repeated: {o:?}"
    );
}

#[test]
fn sentinels_with_their_own_password_lead_to_the_primary() {
    use beacon_router::secret::Secret;
    use beacon_router::store::{RedisConfig, RedisStore, Store};
    let set = SentinelSet::start_with(Some("sentinel-pw-9d2c"));
    let mut cfg = RedisConfig::new(set.url());
    cfg.sentinel_password = Some(Secret::new("sentinel-pw-9d2c"));
    let store = RedisStore::open(cfg).expect("open through password-protected Sentinels");
    let ids = store
        .enqueue(
            vec![beacon_router::store::NewDelivery {
                destination: "d".into(),
                group: beacon_router::model::Group::empty(
                    beacon_router::model::Source::Alertmanager,
                    "g",
                    beacon_router::model::Status::Firing,
                    "g",
                ),
                dedup: None,
            }],
            std::time::SystemTime::now(),
        )
        .expect("enqueue on the primary the Sentinels named");
    assert_eq!(ids.len(), 1);
    let mut wrong = RedisConfig::new(set.url());
    wrong.sentinel_password = Some(Secret::new("not-it-4411"));
    let err = RedisStore::open(wrong).expect_err("wrong Sentinel password");
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("not-it-4411") && !text.contains("sentinel-pw-9d2c"),
        "{text}"
    );
}
