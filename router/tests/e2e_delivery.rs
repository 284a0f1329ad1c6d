//! End to end: the real `beacon-router` binary between webhooks and the Slack and Google Chat
//! stand-ins (local servers enforcing the services' limits): threading and resolve-in-place,
//! retries honouring `Retry-After`, dead letters and replay, deduplication, digests under a
//! storm, bad input, Sentry signatures, reload and SIGTERM.

mod support;

use std::time::{Duration, Instant};

use beacon_e2e::standin::google_chat::{GoogleChatConfig, GoogleChatStandin, SpaceConfig};
use beacon_e2e::standin::slack::{SlackConfig, SlackStandin};
use beacon_e2e::standin::{Fault, Rate};
use support::{am_payload, post, secret_file, Router, A, AM_TOKEN, SLACK_TOKEN};

const WAIT: Duration = Duration::from_secs(20);

fn slack(channels: &[&str]) -> SlackStandin {
    SlackStandin::start(SlackConfig {
        token: SLACK_TOKEN.into(),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        webhooks: vec![("/services/T0/B0/hook".into(), "CHOOK".into())],
        rate: Rate {
            per_second: 1.0,
            burst: 3,
        },
        ..SlackConfig::default()
    })
    .expect("slack stand-in")
}

fn chat() -> GoogleChatStandin {
    GoogleChatStandin::start(GoogleChatConfig {
        spaces: vec![SpaceConfig::new("S1")],
        rate: Rate {
            per_second: 1.0,
            burst: 3,
        },
        retry_after: false,
    })
    .expect("chat stand-in")
}

/// Inbound auth, fast retries, and one receiver `team` with the given integrations YAML.
fn config(dir_hint: &str, integrations: &str, delivery: &str) -> String {
    format!(
        "inbound:\n  alertmanager:\n    bearer_token_file: {d}/am-token\n  sentry:\n    client_secret_file: {d}/sentry-secret\n  max_body_bytes: 65536\n\
         delivery:\n  initial_backoff: 200ms\n  max_backoff: 1s\n  max_attempts: 6\n  max_retry_after: 5s\n{delivery}\
         receivers:\n  - name: team\n{integrations}\
         route:\n  receiver: team\n",
        d = dir_hint
    )
}

/// Starts a router whose config refers to files in its own directory: the directory is only
/// known once created, so the config is written in two steps.
fn router_with(integrations: impl Fn(&std::path::Path) -> String, delivery: &str) -> Router {
    let r = Router::start("");
    let body = config(
        &r.dir.display().to_string(),
        &integrations(&r.dir),
        delivery,
    );
    r.write_config(&body);
    let (code, out, err) = r.cli(&["check-config"]);
    assert_eq!(code, 0, "{out}{err}");
    let resp = post(&r.url("/-/reload"), Vec::new(), &[]);
    assert_eq!(resp.0, 200, "reload: {}", resp.1);
    r
}

fn slack_web_api(slack: &SlackStandin, channel: &str) -> String {
    format!(
        "    slack:\n      - token_file: {{dir}}/slack-token\n        channel: {channel}\n        api_url: {}/api\n        rate: {{per_second: 1, burst: 2}}\n",
        slack.base_url()
    )
}

/// Integrations YAML: Slack Web API to C1 and a Google Chat webhook (its URL in a secret file),
/// with `chat_extra` lines under the Chat integration.
fn slack_and_chat<'a>(
    slack: &'a SlackStandin,
    chat_url: &'a str,
    chat_extra: &'a str,
) -> impl Fn(&std::path::Path) -> String + 'a {
    move |dir| {
        let url_file = secret_file(dir, "chat-url", chat_url);
        format!(
            "{}    google_chat:\n      - webhook_url_file: {url_file}\n{chat_extra}",
            slack_web_api(slack, "C1").replace("{dir}", &dir.display().to_string())
        )
    }
}

#[test]
fn slack_threads_a_group_and_resolves_it_in_place_and_chat_threads_by_key() {
    let slack = slack(&["C1"]);
    let chat = chat();
    let chat_url = chat.webhook_url("S1");
    let r = router_with(
        slack_and_chat(
            &slack,
            &chat_url,
            "        rate: {per_second: 1, burst: 2}\n",
        ),
        "",
    );
    let firing1 = am_payload(
        "NodeDown",
        &[A {
            name: "node-a",
            firing: true,
        }],
        &[],
    );
    let firing2 = am_payload(
        "NodeDown",
        &[
            A {
                name: "node-a",
                firing: true,
            },
            A {
                name: "node-b",
                firing: true,
            },
        ],
        &[],
    );
    let resolved = am_payload(
        "NodeDown",
        &[
            A {
                name: "node-a",
                firing: false,
            },
            A {
                name: "node-b",
                firing: false,
            },
        ],
        &[],
    );
    for (i, p) in [&firing1, &firing2, &resolved].into_iter().enumerate() {
        let (code, body) = r.alertmanager(p);
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("\"notifications\":2"), "{body}");
        // One at a time, so the order of the thread is the order sent.
        slack
            .wait_for_messages(i + 1, WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{}", r.server.log()));
        chat.wait_for_messages(i + 1, WAIT).expect("chat messages");
    }
    let msgs = slack.messages_in("C1");
    assert_eq!(msgs.len(), 3, "first, reply, resolved reply: {msgs:#?}");
    let parent = &msgs[0];
    assert_eq!(
        parent.thread_ts, None,
        "the first message starts the thread"
    );
    for m in &msgs[1..] {
        assert_eq!(
            m.thread_ts.as_deref(),
            Some(parent.ts.as_str()),
            "replies in the thread"
        );
        assert!(m.thread_parent_known);
    }
    let updates = slack.updates();
    assert_eq!(updates.len(), 1, "{updates:#?}");
    assert_eq!(
        updates[0].ts, parent.ts,
        "the first message is edited in place"
    );
    let text = updates[0].text.clone().unwrap_or_default();
    assert!(text.contains("RESOLVED"), "{text}");

    let chat_msgs = chat.messages_in("S1");
    assert_eq!(chat_msgs.len(), 3);
    let key = chat_msgs[0].thread_key.clone().expect("thread key");
    assert!(chat_msgs
        .iter()
        .all(|m| m.thread_key.as_deref() == Some(key.as_str())));
    assert!(chat_msgs
        .iter()
        .all(|m| m.thread_name == chat_msgs[0].thread_name));
    assert!(!chat_msgs[0].replied && chat_msgs[1].replied && chat_msgs[2].replied);

    // Secrets stay out of the log and the metrics, with everything logged at trace (reqwest's
    // own lines included: `support::LOG_FILTER` raises it through RUST_LOG).
    let log = r.server.log();
    assert!(
        log.contains("starting new connection"),
        "reqwest logs:\n{log}"
    );
    let metrics = r.metrics();
    for secret in [SLACK_TOKEN, AM_TOKEN, "key-S1", "token-S1"] {
        assert!(!log.contains(secret), "{secret} in the log");
        assert!(!metrics.contains(secret), "{secret} in the metrics");
    }
    // Counted once acknowledged in the store, a moment after the stand-in saw the message.
    r.wait("six deliveries counted", WAIT, || {
        r.metric_sum(
            "beacon_router_notifications_sent_total",
            &["receiver=\"team\""],
        ) == 6.0
    });
}

#[test]
fn retries_honour_retry_after_and_survive_server_errors() {
    let slack = slack(&["C1"]);
    let chat = chat();
    let chat_url = chat.webhook_url("S1");
    let r = router_with(slack_and_chat(&slack, &chat_url, ""), "");
    slack.inject(
        Fault::RateLimited {
            retry_after_secs: 2,
        },
        1,
    );
    chat.inject(Fault::Status(503), 2);
    let start = Instant::now();
    let (code, body) = r.alertmanager(&am_payload(
        "DiskFull",
        &[A {
            name: "db-1",
            firing: true,
        }],
        &[],
    ));
    assert_eq!(code, 200, "{body}");
    let msgs = slack.wait_for_messages(1, WAIT).expect("slack delivery");
    let rejected = slack.rejections();
    assert_eq!(rejected.len(), 1, "{rejected:#?}");
    let waited = msgs[0].at.duration_since(rejected[0].at);
    assert!(
        waited >= Duration::from_millis(1900),
        "retried {waited:?} after a 429 asking for 2 s"
    );
    chat.wait_for_messages(1, WAIT)
        .expect("chat delivery after 503s");
    assert_eq!(chat.rejections().len(), 2);
    assert!(start.elapsed() < WAIT);
    r.wait("failure metrics", WAIT, || {
        r.metric_sum(
            "beacon_router_notifications_failed_total",
            &["reason=\"rate_limited\""],
        ) == 1.0
            && r.metric_sum(
                "beacon_router_notifications_failed_total",
                &["reason=\"server_error\""],
            ) == 2.0
    });
}

#[test]
fn permanent_failures_are_dead_lettered_listed_and_replayed() {
    let slack = slack(&["C1"]);
    let r = router_with(
        |dir| slack_web_api(&slack, "C1").replace("{dir}", &dir.display().to_string()),
        "",
    );
    // A 400 is permanent: straight to the dead letters, no retry.
    slack.inject(Fault::Status(400), 1);
    let (code, _) = r.alertmanager(&am_payload(
        "CertExpiry",
        &[A {
            name: "api",
            firing: true,
        }],
        &[],
    ));
    assert_eq!(code, 200);
    r.wait("a dead letter", WAIT, || {
        r.metric_sum("beacon_router_dead_letters", &[]) == 1.0
    });
    assert!(slack.messages().is_empty());
    // The CLI asks the running router (it holds the store).
    let (code, out, err) = r.cli(&["dead-letters", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("team/slack/0") && out.contains("CertExpiry"),
        "{out}"
    );
    assert!(out.contains("rejected: http 400"), "{out}");
    let id = out.split_whitespace().next().expect("id").to_string();
    let (code, out, err) = r.cli(&["dead-letters", "replay", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("dead letter {id} queued again")),
        "{out}"
    );
    slack.wait_for_messages(1, WAIT).expect("replayed delivery");
    let (_, out, _) = r.cli(&["dead-letters", "list"]);
    assert_eq!(out.trim(), "no dead letters");
    // An unknown id is named.
    let (code, _, err) = r.cli(&["dead-letters", "replay", "999999"]);
    assert_eq!(code, 1);
    assert!(err.contains("999999"), "{err}");
}

#[test]
fn the_same_group_state_twice_is_sent_once() {
    let slack = slack(&["C1"]);
    let r = router_with(
        |dir| slack_web_api(&slack, "C1").replace("{dir}", &dir.display().to_string()),
        "",
    );
    let p = am_payload(
        "Flapping",
        &[A {
            name: "x",
            firing: true,
        }],
        &[],
    );
    // An HA pair: both Alertmanagers send the same notification.
    let (c1, b1) = r.alertmanager(&p);
    let (c2, b2) = r.alertmanager(&p);
    assert_eq!((c1, c2), (200, 200));
    assert!(b1.contains("\"duplicates\":0"), "{b1}");
    assert!(b2.contains("\"duplicates\":1"), "{b2}");
    slack.wait_for_messages(1, WAIT).expect("one message");
    // A new state of the group is not a duplicate.
    let p2 = am_payload(
        "Flapping",
        &[A {
            name: "x",
            firing: false,
        }],
        &[],
    );
    assert_eq!(r.alertmanager(&p2).0, 200);
    slack.wait_for_messages(2, WAIT).expect("resolved message");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(slack.messages().len(), 2, "the duplicate was not sent");
    assert_eq!(
        r.metric_sum("beacon_router_notifications_duplicate_total", &[]),
        1.0
    );
}

#[test]
fn a_storm_becomes_digests_within_the_channel_rate() {
    let slack = slack(&["C1"]);
    let r = router_with(
        |dir| slack_web_api(&slack, "C1").replace("{dir}", &dir.display().to_string()),
        "  digest_after: 5s\n",
    );
    const GROUPS: usize = 60;
    for i in 0..GROUPS {
        let p = am_payload(
            &format!("Storm{i}"),
            &[A {
                name: "n",
                firing: true,
            }],
            &[],
        );
        assert_eq!(r.alertmanager(&p).0, 200);
    }
    r.wait(
        "every notification delivered",
        Duration::from_secs(30),
        || r.metric_sum("beacon_router_notifications_sent_total", &[]) == GROUPS as f64,
    );
    let msgs = slack.messages_in("C1");
    assert!(
        msgs.len() <= 12,
        "60 notifications at 1/s with a 5 s digest delay: {} messages",
        msgs.len()
    );
    let digests = r.metric_sum("beacon_router_digests_sent_total", &[]);
    let coalesced = r.metric_sum("beacon_router_notifications_coalesced_total", &[]);
    assert!(digests >= 1.0);
    assert_eq!(
        coalesced + (msgs.len() as f64 - digests),
        GROUPS as f64,
        "every notification is in exactly one message"
    );
    assert!(msgs
        .iter()
        .any(|m| m.text.as_deref().is_some_and(|t| t.contains("Storm"))));
    let window = Duration::from_secs(1);
    assert!(slack.max_in_window("C1", window) <= 3);
    assert!(
        slack.rejections().is_empty(),
        "the router stayed inside the channel's limit: {:#?}",
        slack.rejections()
    );
}

#[test]
fn bad_input_is_refused_with_the_reason_and_the_router_stays_up() {
    let r = router_with(|_| "    console:\n      - level: info\n".into(), "");
    let url = r.url("/webhooks/alertmanager");
    let bearer = format!("Bearer {AM_TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let good = am_payload(
        "X",
        &[A {
            name: "a",
            firing: true,
        }],
        &[],
    )
    .to_string();

    let (code, body) = post(&url, good.clone().into_bytes(), &[]);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("missing authorization header"), "{body}");
    let (code, body) = post(
        &url,
        good.into_bytes(),
        &[("Authorization", "Bearer wrong")],
    );
    assert_eq!(
        (code, body.trim()),
        (401, "unauthorized: bearer token does not match")
    );

    let (code, body) = post(&url, vec![b'{'; 70_000], &auth);
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("65536 bytes"), "{body}");

    let (code, body) = post(
        &url,
        b"{\"version\": \"4\", \"alerts\": [\xff]}".to_vec(),
        &auth,
    );
    assert_eq!(code, 400);
    assert!(body.contains("not valid utf-8"), "{body}");

    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (code, body) = post(&url, nested.into_bytes(), &auth);
    assert_eq!(code, 400);
    assert!(body.contains("nested too deeply"), "{body}");

    let mut missing = am_payload(
        "X",
        &[A {
            name: "a",
            firing: true,
        }],
        &[],
    );
    missing["alerts"][0]["labels"] = serde_json::json!(["not", "an", "object"]);
    let (code, body) = post(&url, missing.to_string().into_bytes(), &auth);
    assert_eq!(code, 400);
    assert!(body.contains("alerts[0].labels"), "{body}");

    let (code, _) = post(&r.url("/webhooks/sentry"), b"{}".to_vec(), &[]);
    assert_eq!(code, 401);
    assert_eq!(
        beacon_e2e::get_text(&r.url("/readyz"))
            .expect("still ready")
            .trim(),
        "ready"
    );
    assert_eq!(
        r.metric_sum("beacon_router_webhooks_received_total", &["code=\"400\""]),
        3.0
    );
}

#[test]
fn signed_sentry_webhooks_are_verified_over_the_raw_body() {
    let r = router_with(|_| "    console:\n      - level: info\n".into(), "");
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/sentry");
    let body = std::fs::read(format!("{fixtures}/issue-created.body.json")).expect("fixture");
    let headers: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{fixtures}/issue-created.headers.json")).expect("fixture"),
    )
    .expect("headers json");
    let h = &headers["headers"];
    let sig = h["Sentry-Hook-Signature"].as_str().expect("signature");
    let resource = h["Sentry-Hook-Resource"].as_str().expect("resource");
    let url = r.url("/webhooks/sentry");
    let (code, out) = post(
        &url,
        body.clone(),
        &[
            ("Sentry-Hook-Signature", sig),
            ("Sentry-Hook-Resource", resource),
        ],
    );
    assert_eq!(code, 200, "{out}");
    // One byte changed: the signature no longer matches.
    let mut tampered = body.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    let (code, out) = post(
        &url,
        tampered,
        &[
            ("Sentry-Hook-Signature", sig),
            ("Sentry-Hook-Resource", resource),
        ],
    );
    assert_eq!(code, 401, "{out}");
    assert!(
        out.contains("sentry-hook-signature header does not match"),
        "{out}"
    );
    r.wait("the console line", WAIT, || {
        r.server.log().contains("source=sentry")
    });
}

#[test]
fn reload_rejects_a_bad_config_keeps_the_old_and_applies_a_good_one() {
    let slack = slack(&["C1", "C2"]);
    let r = router_with(
        |dir| slack_web_api(&slack, "C1").replace("{dir}", &dir.display().to_string()),
        "",
    );
    let dir = r.dir.display().to_string();
    let good = std::fs::read_to_string(&r.config).expect("config");
    // Bad: an unknown receiver in the route. Rejected, with the path of the problem.
    std::fs::write(
        &r.config,
        good.replace("receiver: team\n", "receiver: nobody\n"),
    )
    .expect("write");
    let (code, body) = post(&r.url("/-/reload"), Vec::new(), &[]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("route.receiver"), "{body}");
    assert_eq!(
        r.metric_sum("beacon_router_config_last_reload_successful", &[]),
        0.0
    );
    assert_eq!(
        r.alertmanager(&am_payload(
            "Old",
            &[A {
                name: "a",
                firing: true
            }],
            &[]
        ))
        .0,
        200
    );
    slack
        .wait_for_messages(1, WAIT)
        .expect("old config still delivers");
    assert_eq!(slack.messages()[0].channel, "C1");
    // Good: now to C2, by SIGHUP.
    std::fs::write(&r.config, good.replace("channel: C1", "channel: C2")).expect("write");
    r.signal("HUP");
    r.wait("reload by SIGHUP", WAIT, || {
        r.metric_sum(
            "beacon_router_config_reloads_total",
            &["result=\"success\""],
        ) >= 2.0
    });
    assert_eq!(
        r.alertmanager(&am_payload(
            "New",
            &[A {
                name: "a",
                firing: true
            }],
            &[]
        ))
        .0,
        200
    );
    let msgs = slack
        .wait_for_messages(2, WAIT)
        .expect("new config delivers");
    assert_eq!(msgs[1].channel, "C2");
    let _ = dir;
}

#[test]
fn sigterm_finishes_the_in_flight_send_and_keeps_the_rest_queued() {
    let slack = slack(&["C1"]);
    let mut r = router_with(
        |dir| slack_web_api(&slack, "C1").replace("{dir}", &dir.display().to_string()),
        "",
    );
    slack.inject(Fault::Delay(Duration::from_millis(1500)), 1);
    for name in ["Slow", "Queued1", "Queued2"] {
        assert_eq!(
            r.alertmanager(&am_payload(
                name,
                &[A {
                    name: "a",
                    firing: true
                }],
                &[]
            ))
            .0,
            200
        );
    }
    // Let the first send start, then ask the router to stop.
    std::thread::sleep(Duration::from_millis(500));
    r.signal("TERM");
    let deadline = Instant::now() + WAIT;
    while r.server.check_running().is_ok() {
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = r.server.log();
    assert!(log.contains("shutting down"), "{log}");
    let sent = slack.messages();
    assert_eq!(
        sent.len(),
        1,
        "the in-flight send finished, nothing new started: {sent:#?}"
    );
    // The rest was kept and goes out after a restart.
    r.restart();
    slack
        .wait_for_messages(3, WAIT)
        .expect("queued ones after restart");
    let texts: Vec<String> = slack
        .messages()
        .iter()
        .map(|m| m.text.clone().unwrap_or_default())
        .collect();
    assert!(texts[0].contains("Slow"), "{texts:?}");
    assert_eq!(slack.messages().len(), 3, "nothing sent twice");
}

#[test]
fn a_failing_template_falls_back_to_the_default_message_and_is_counted() {
    let slack = slack(&["C1"]);
    let r = router_with(
        |dir| {
            // Valid syntax, fails at render time: dividing by zero.
            format!(
                "{}    templates:\n      slack_text: \"{{{{ 1 // 0 }}}} {{{{ title }}}}\"\n",
                slack_web_api(&slack, "C1").replace("{dir}", &dir.display().to_string())
            )
        },
        "",
    );
    assert_eq!(
        r.alertmanager(&am_payload(
            "Templated",
            &[A {
                name: "a",
                firing: true
            }],
            &[]
        ))
        .0,
        200
    );
    let msgs = slack.wait_for_messages(1, WAIT).expect("delivered anyway");
    assert!(msgs[0].text.as_deref().unwrap_or("").contains("Templated"));
    r.wait("template error counted", WAIT, || {
        r.metric_sum(
            "beacon_router_template_errors_total",
            &["receiver=\"team\""],
        ) == 1.0
    });
    assert!(r.server.log().contains("custom template failed"));
}

#[test]
fn send_test_sends_a_sample_through_every_integration_of_a_receiver() {
    let slack = slack(&["C1"]);
    let chat = chat();
    let chat_url = chat.webhook_url("S1");
    let r = router_with(slack_and_chat(&slack, &chat_url, ""), "");
    let (code, out, err) = r.cli(&["send-test", "--receiver", "team"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("team/slack/0: sent") && out.contains("team/google_chat/0: sent"),
        "{out}"
    );
    assert!(slack.messages()[0]
        .text
        .as_deref()
        .unwrap_or("")
        .contains("BeaconRouterTest"));
    assert_eq!(chat.messages().len(), 1);
    // A failing destination is reported, with the reason, and the exit code says so.
    slack.inject(Fault::Status(500), 1);
    let (code, out, _) = r.cli(&["send-test", "--receiver", "team"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("team/slack/0: FAILED: server_error: http 500"),
        "{out}"
    );
    assert!(!out.contains(SLACK_TOKEN) && !out.contains("token-S1"));
    let (code, _, err) = r.cli(&["send-test", "--receiver", "nobody"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no receiver named \"nobody\" (receivers: team)"),
        "{err}"
    );
}

#[test]
fn legacy_sentry_plugin_by_url_token_to_a_slack_incoming_webhook() {
    let slack = slack(&["C1"]);
    let hook = slack.webhook_url("/services/T0/B0/hook");
    let r = router_with(
        |dir| {
            let f = secret_file(dir, "hook-url", &hook);
            format!("    slack:\n      - webhook_url_file: {f}\n")
        },
        "",
    );
    // Enable the legacy plugin's token beside the signed integration.
    let token = "legacy-token-9d1";
    secret_file(&r.dir, "legacy-token", token);
    let d = r.dir.display();
    r.edit_config(|body| {
        body.replace(
            "    client_secret_file:",
            &format!("    legacy_token_file: {d}/legacy-token\n    client_secret_file:"),
        )
    });
    assert_eq!(post(&r.url("/-/reload"), Vec::new(), &[]).0, 200);
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/sentry");
    let body = std::fs::read(format!("{fixtures}/legacy-plugin.body.json")).expect("fixture");
    let url = r.url("/webhooks/sentry");
    let (code, out) = post(&format!("{url}?token=wrong"), body.clone(), &[]);
    assert_eq!(
        (code, out.trim()),
        (401, "unauthorized: token does not match")
    );
    let (code, out) = post(&format!("{url}?token={token}"), body, &[]);
    assert_eq!(code, 200, "{out}");
    let msgs = slack.wait_for_messages(1, WAIT).expect("webhook delivery");
    assert_eq!(msgs[0].channel, "CHOOK");
    assert!(
        !r.server.log().contains(&hook),
        "the hook URL stays out of the log"
    );
    assert!(!r.server.log().contains(token));
}

#[test]
fn notifications_older_than_max_age_are_dead_lettered() {
    let slack = slack(&["C1"]);
    let r = router_with(
        |dir| slack_web_api(&slack, "C1").replace("{dir}", &dir.display().to_string()),
        "  max_age: 1s\n",
    );
    slack.inject(Fault::Status(503), 1000);
    assert_eq!(
        r.alertmanager(&am_payload(
            "Stale",
            &[A {
                name: "a",
                firing: true
            }],
            &[]
        ))
        .0,
        200
    );
    r.wait("dead-lettered by age", WAIT, || {
        r.metric_sum("beacon_router_dead_letters_total", &["reason=\"max_age\""]) == 1.0
    });
    let (_, out, _) = r.cli(&["dead-letters", "list"]);
    assert!(out.contains("reason: undelivered after 1s"), "{out}");
    assert!(
        out.contains("server_error: http 503"),
        "the last error is kept: {out}"
    );
}

#[test]
fn a_delivery_that_gives_up_counts_every_attempt_across_a_restart() {
    let slack = slack(&["C1"]);
    let mut r = router_with(
        |dir| slack_web_api(&slack, "C1").replace("{dir}", &dir.display().to_string()),
        "",
    );
    r.edit_config(|body| body.replace("max_attempts: 6", "max_attempts: 3"));
    assert_eq!(post(&r.url("/-/reload"), Vec::new(), &[]).0, 200);
    slack.inject(Fault::Status(500), 1000);
    let (code, body) = r.alertmanager(&am_payload(
        "GivesUp",
        &[A {
            name: "a",
            firing: true,
        }],
        &[],
    ));
    assert_eq!(code, 200, "{body}");
    // The first failure is on disk; SIGTERM lets an attempt in flight finish and record too.
    r.wait("a failed attempt", WAIT, || {
        r.metric_sum("beacon_router_notifications_failed_total", &[]) >= 1.0
    });
    r.restart_after(|r| r.signal("TERM"));
    r.wait("a dead letter", WAIT, || {
        r.metric_sum("beacon_router_dead_letters_total", &[]) == 1.0
    });
    assert_eq!(slack.rejections().len(), 3, "three attempts in all");
    let (code, out, err) = r.cli(&["dead-letters", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("attempts: 3,"), "{out}");
    assert!(out.contains("gave up after 3 attempts"), "{out}");
    // The admin API's JSON says the same.
    let resp = reqwest::blocking::get(r.url("/api/v1/dead-letters")).expect("admin api");
    let json: serde_json::Value = resp.json().expect("json");
    let first = &json.as_array().expect("array")[0];
    assert_eq!(first["attempts"], 3, "{json}");
}

#[test]
fn google_chat_failures_say_what_google_answered_without_the_url() {
    let chat = chat();
    // A URL of the wrong shape: Google's front end answers an HTML 404 page quoting it.
    let wrong = chat.webhook_url("S1").replace("/v1/spaces/", "/v1/space/");
    let (key, token) = ("key-S1", "token-S1");
    assert!(wrong.contains(key) && wrong.contains(token), "{wrong}");
    let r = router_with(
        |dir| {
            let url_file = secret_file(dir, "chat-url", &wrong);
            format!("    google_chat:\n      - webhook_url_file: {url_file}\n")
        },
        "",
    );
    let (code, body) = r.alertmanager(&am_payload(
        "ChatDown",
        &[A {
            name: "a",
            firing: true,
        }],
        &[],
    ));
    assert_eq!(code, 200, "{body}");
    r.wait("a dead letter", WAIT, || {
        r.metric_sum("beacon_router_dead_letters_total", &[]) == 1.0
    });
    let log = r.server.log();
    let line = log
        .lines()
        .find(|l| l.contains("delivery failed permanently"))
        .unwrap_or_else(|| panic!("no failure line in:\n{log}"));
    assert!(
        line.contains(
            "http 404: Error 404 (Not Found)!!1 404. That’s an error. The requested URL <redacted>"
        ),
        "{line}"
    );
    let (_, out, _) = r.cli(&["dead-letters", "list"]);
    assert!(out.contains("rejected: http 404: Error 404"), "{out}");
    for secret in [key, token, "/v1/space/"] {
        assert!(!log.contains(secret), "{secret} in the log");
        assert!(!out.contains(secret), "{secret} in the dead letters");
    }

    // A JSON error from the API says Google's status and message.
    chat.inject(Fault::Status(500), 1);
    r.edit_config(|body| body.replace("chat-url", "chat-url-good"));
    secret_file(&r.dir, "chat-url-good", &chat.webhook_url("S1"));
    assert_eq!(post(&r.url("/-/reload"), Vec::new(), &[]).0, 200);
    r.alertmanager(&am_payload(
        "ChatFlaky",
        &[A {
            name: "a",
            firing: true,
        }],
        &[],
    ));
    chat.wait_for_messages(1, WAIT)
        .expect("delivered after the 500");
    let log = r.server.log();
    assert!(
        log.contains("http 500: INTERNAL: Injected failure."),
        "{log}"
    );
}
