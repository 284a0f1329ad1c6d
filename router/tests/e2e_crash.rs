//! Crash test: a burst of alerts for two channels while Slack fails intermittently, the router
//! killed with SIGKILL mid-delivery several times and restarted. Every webhook that was
//! acknowledged is delivered to its channel; a notification is repeated at most once per kill
//! per channel (the one in flight); no channel ever gets more than the configured rate.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beacon_e2e::http_client;
use beacon_e2e::standin::slack::{SlackConfig, SlackStandin};
use beacon_e2e::standin::Rate;
use support::{am_payload, Router, A, AM_TOKEN, SLACK_TOKEN};

const ALERTS: usize = 120;
const KILLS: usize = 4;
/// The router's configured pace per channel (the stand-in allows more, as Slack does).
const PER_SECOND: f64 = 10.0;
const BURST: u32 = 3;

fn name(i: usize) -> String {
    format!("Crash{i:03}x")
}

#[test]
fn kill_9_mid_delivery_loses_nothing_acknowledged() {
    let slack = SlackStandin::start(SlackConfig {
        token: SLACK_TOKEN.into(),
        channels: vec!["C1".into(), "C2".into()],
        rate: Rate {
            per_second: 50.0,
            burst: 20,
        },
        ..SlackConfig::default()
    })
    .expect("slack stand-in");
    slack.fail_randomly(0.2, 7);
    let mut r = Router::start("");
    r.write_config(&support::two_team_config(
        &r.dir,
        &slack.base_url(),
        &format!("{{per_second: {PER_SECOND}, burst: {BURST}}}"),
        "  initial_backoff: 100ms\n  max_backoff: 500ms\n  max_attempts: 100\n  digest_after: 1h\n",
    ));
    r.restart_after(|r| r.signal("KILL"));

    // Sender: posts every alert, retrying while the router is down; records what was acked.
    let acked: Arc<Mutex<BTreeMap<usize, &'static str>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let url = r.url("/webhooks/alertmanager");
    let sender = {
        let acked = acked.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let client = http_client();
            for i in 0..ALERTS {
                let team = if i % 2 == 0 { "a" } else { "b" };
                let body = am_payload(
                    &name(i),
                    &[A {
                        name: "n",
                        firing: true,
                    }],
                    &[("team", team)],
                )
                .to_string();
                loop {
                    let resp = client
                        .post(&url)
                        .header("Authorization", format!("Bearer {AM_TOKEN}"))
                        .body(body.clone())
                        .send();
                    match resp {
                        Ok(r) if r.status().is_success() => {
                            acked.lock().expect("lock").insert(i, team);
                            break;
                        }
                        // Router down or answering 5xx: Alertmanager would retry, so do we.
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
                std::thread::sleep(Duration::from_millis(15));
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    // Killer: SIGKILL mid-delivery, restart, a few times.
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(700));
        r.restart_after(|r| r.signal("KILL"));
    }
    sender.join().expect("sender");
    assert!(done.load(Ordering::SeqCst));
    let acked = acked.lock().expect("lock").clone();
    assert_eq!(
        acked.len(),
        ALERTS,
        "every alert was acknowledged eventually"
    );

    // Everything acknowledged arrives in its channel.
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let msgs = slack.messages();
        let missing: Vec<usize> = acked
            .iter()
            .filter(|(i, team)| {
                let channel = if **team == "a" { "C1" } else { "C2" };
                !msgs.iter().any(|m| {
                    m.channel == channel && m.text.as_deref().unwrap_or("").contains(&name(**i))
                })
            })
            .map(|(i, _)| *i)
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        missing.is_empty(),
        "never delivered: {missing:?}\nrouter log:\n{}",
        r.server.log()
    );

    // At most the in-flight message repeated per kill, per channel.
    for channel in ["C1", "C2"] {
        let msgs = slack.messages_in(channel);
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for m in &msgs {
            let text = m.text.clone().unwrap_or_default();
            if let Some(i) = (0..ALERTS).find(|i| text.contains(&name(*i))) {
                *seen.entry(name(i)).or_default() += 1;
            }
        }
        let repeats: usize = seen.values().map(|n| n - 1).sum();
        assert!(
            repeats <= KILLS + 1,
            "{channel}: {repeats} repeated messages for {} kills: {seen:?}",
            KILLS + 1
        );
        // The configured pace, plus one token a restart may bring.
        let window = Duration::from_secs(1);
        let bound = BURST as usize + PER_SECOND as usize + 1;
        let most = slack.max_in_window(channel, window);
        assert!(
            most <= bound,
            "{channel}: {most} messages within 1 s (bound {bound})"
        );
    }
    let rate_limited = slack
        .rejections()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(
        rate_limited, 0,
        "the stand-in never had to enforce its limit"
    );
    assert!(
        slack.rejections().len() >= 5,
        "the intermittent failures happened: {}",
        slack.rejections().len()
    );
}
