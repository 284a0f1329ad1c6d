//! Tests of the Slack and Google Chat stand-ins themselves: each limit they enforce rejects
//! the request just over it and accepts the one at it, faults are consumed in order, and
//! rejected requests are never recorded as messages.

use std::time::{Duration, Instant};

use beacon_e2e::http_client;
use beacon_e2e::standin::{
    max_in_window, Fault, GoogleChatConfig, GoogleChatStandin, Rate, SlackConfig, SlackStandin,
    SpaceConfig, Via,
};
use serde_json::{json, Value};

const TOKEN: &str = "xoxb-test";
const HOOK: &str = "/services/T0/B0/abc";

/// A rate that never limits (for tests about other rules).
const UNLIMITED: Rate = Rate {
    per_second: 1000.0,
    burst: 1000,
};

fn slack(rate: Rate) -> SlackStandin {
    SlackStandin::start(SlackConfig {
        token: TOKEN.into(),
        channels: vec!["C1".into(), "C2".into(), "C9".into()],
        webhooks: vec![(HOOK.into(), "C9".into())],
        rate,
        webhook_rate: rate,
        ..SlackConfig::default()
    })
    .expect("start Slack stand-in")
}

/// An HTTP answer: status, Retry-After header, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn send(req: reqwest::blocking::RequestBuilder) -> Answer {
    let r = req.send().expect("request to stand-in");
    Answer {
        status: r.status().as_u16(),
        retry_after: r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("ascii header").to_owned()),
        body: r.text().expect("body"),
    }
}

/// Calls a Slack Web API method with a bearer token.
fn api(s: &SlackStandin, method: &str, token: Option<&str>, body: Value) -> Answer {
    let mut req = http_client()
        .post(s.api_url(method))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    send(req)
}

fn post(s: &SlackStandin, body: Value) -> Answer {
    api(s, "chat.postMessage", Some(TOKEN), body)
}

fn hook(s: &SlackStandin, path: &str, body: &str) -> Answer {
    send(
        http_client()
            .post(s.webhook_url(path))
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
}

/// The Slack error code of a Web API answer (asserting HTTP 200 and ok:false).
fn slack_error(a: &Answer) -> String {
    assert_eq!(a.status, 200, "{a:?}");
    let v = a.json();
    assert_eq!(v["ok"], false, "{a:?}");
    v["error"].as_str().expect("error code").to_owned()
}

fn header_block(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": text}})
}

#[test]
fn slack_rate_limit_is_per_channel_with_retry_after_and_refills() {
    // 4/s: the bucket needs 250 ms for a token, far more than three local requests take.
    let s = slack(Rate {
        per_second: 4.0,
        burst: 2,
    });
    for i in 0..2 {
        let a = post(&s, json!({"channel": "C1", "text": format!("m{i}")}));
        assert_eq!(a.json()["ok"], true, "{a:?}");
    }
    let a = post(&s, json!({"channel": "C1", "text": "too fast"}));
    assert_eq!(a.status, 429, "{a:?}");
    assert_eq!(a.retry_after.as_deref(), Some("1"));
    assert_eq!(a.json()["error"], "ratelimited");
    // Another channel has its own bucket.
    assert_eq!(post(&s, json!({"channel": "C2", "text": "x"})).status, 200);

    let texts: Vec<_> = s
        .messages_in("C1")
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(
        texts,
        ["m0", "m1"],
        "the rate-limited message is not recorded"
    );
    assert_eq!(
        s.rejections().last().expect("rejection").reason,
        "rate_limited"
    );
    assert_eq!(s.max_in_window("C1", Duration::from_secs(1)), 2);

    // One token comes back after 1/4 s.
    std::thread::sleep(Duration::from_millis(300));
    let a = post(&s, json!({"channel": "C1", "text": "later"}));
    assert_eq!(a.json()["ok"], true, "{a:?}");
}

#[test]
fn slack_block_kit_limits() {
    let s = slack(UNLIMITED);
    let divider = json!({"type": "divider"});
    let ok = |blocks: Value| {
        let a = post(&s, json!({"channel": "C1", "blocks": blocks}));
        assert_eq!(a.json()["ok"], true, "{a:?}");
    };
    let bad = |blocks: Value, code: &str| {
        let a = post(&s, json!({"channel": "C1", "blocks": blocks}));
        assert_eq!(slack_error(&a), code, "{a:?}");
    };
    ok(json!(vec![divider.clone(); 50]));
    bad(json!(vec![divider.clone(); 51]), "invalid_blocks");

    ok(json!([header_block(&"h".repeat(150))]));
    bad(json!([header_block(&"h".repeat(151))]), "invalid_blocks");
    // Characters are UTF-16 code units: 75 emoji are 150 units, 76 are 152.
    ok(json!([header_block(&"😀".repeat(75))]));
    bad(json!([header_block(&"😀".repeat(76))]), "invalid_blocks");
    bad(
        json!([{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}]),
        "invalid_blocks",
    );

    let section = |t: String| json!({"type": "section", "text": {"type": "mrkdwn", "text": t}});
    ok(json!([section("s".repeat(3000))]));
    bad(json!([section("s".repeat(3001))]), "invalid_blocks");

    let field = |n: usize| json!({"type": "mrkdwn", "text": "f".repeat(n)});
    ok(json!([{"type": "section", "fields": vec![field(2000); 10]}]));
    bad(
        json!([{"type": "section", "fields": vec![field(1); 11]}]),
        "invalid_blocks",
    );
    bad(
        json!([{"type": "section", "fields": [field(2001)]}]),
        "invalid_blocks",
    );

    let element = json!({"type": "mrkdwn", "text": "c"});
    ok(json!([{"type": "context", "elements": vec![element.clone(); 10]}]));
    bad(
        json!([{"type": "context", "elements": vec![element; 11]}]),
        "invalid_blocks",
    );
    bad(json!([{"type": "no_such_block"}]), "invalid_blocks");
    bad(json!({"type": "divider"}), "invalid_blocks_format");

    let a = post(&s, json!({"channel": "C1", "text": "t".repeat(40_000)}));
    assert_eq!(a.json()["ok"], true);
    let a = post(&s, json!({"channel": "C1", "text": "t".repeat(40_001)}));
    assert_eq!(slack_error(&a), "msg_too_long");
    let a = post(&s, json!({"channel": "C1"}));
    assert_eq!(slack_error(&a), "no_text");
    let a = post(&s, json!({"channel": "C1", "text": "", "blocks": []}));
    assert_eq!(slack_error(&a), "no_text");

    // 7 accepted posts, every rejection explained.
    assert_eq!(s.messages().len(), 7);
    let reasons: Vec<_> = s.rejections().into_iter().map(|r| r.reason).collect();
    assert_eq!(reasons.len(), 13, "{reasons:?}");
    assert!(
        reasons[0].starts_with("invalid_blocks: no more than 50"),
        "{reasons:?}"
    );
}

#[test]
fn slack_auth_and_unknown_channel() {
    let s = slack(UNLIMITED);
    let body = json!({"channel": "C1", "text": "hi"});
    let a = api(&s, "chat.postMessage", None, body.clone());
    assert_eq!(slack_error(&a), "not_authed");
    let a = api(&s, "chat.postMessage", Some("xoxb-wrong"), body);
    assert_eq!(slack_error(&a), "invalid_auth");
    let a = post(&s, json!({"channel": "C404", "text": "hi"}));
    assert_eq!(slack_error(&a), "channel_not_found");
    assert!(s.messages().is_empty());
    assert_eq!(s.rejections().len(), 3);
}

#[test]
fn slack_threads_ts_and_updates() {
    let s = slack(UNLIMITED);
    let parent = post(&s, json!({"channel": "C1", "text": "parent"})).json();
    let ts = parent["ts"].as_str().expect("ts").to_owned();
    assert_eq!(parent["channel"], "C1");
    let reply = post(
        &s,
        json!({"channel": "C1", "text": "reply", "thread_ts": ts}),
    )
    .json();
    assert_eq!(reply["message"]["thread_ts"], ts.as_str());
    // Slack answers ok to an unknown parent but the reply is orphaned: recorded as such.
    let orphan = post(
        &s,
        json!({"channel": "C1", "text": "lost", "thread_ts": "1.000001"}),
    );
    assert_eq!(orphan.json()["ok"], true);
    // A parent in another channel does not count either.
    post(&s, json!({"channel": "C2", "text": "x", "thread_ts": ts}));

    let m = s.messages();
    assert_eq!(m.len(), 4);
    let known: Vec<_> = m.iter().map(|m| m.thread_parent_known).collect();
    assert_eq!(known, [true, true, false, false]);
    assert!(m.iter().all(|m| m.via == Via::WebApi));
    let mut tss: Vec<f64> = m
        .iter()
        .map(|m| m.ts.parse().expect("numeric ts"))
        .collect();
    let sorted = tss.clone();
    tss.dedup();
    assert_eq!(tss, sorted, "ts are unique");
    assert!(
        sorted.windows(2).all(|w| w[0] < w[1]),
        "ts increase: {sorted:?}"
    );
    let replies = s.replies("C1", &ts);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].text.as_deref(), Some("reply"));

    let a = api(
        &s,
        "chat.update",
        Some(TOKEN),
        json!({"channel": "C1", "ts": "1.000001", "text": "resolved"}),
    );
    assert_eq!(slack_error(&a), "message_not_found");
    let a = api(
        &s,
        "chat.update",
        Some(TOKEN),
        json!({"channel": "C2", "ts": ts, "text": "resolved"}),
    );
    assert_eq!(
        slack_error(&a),
        "message_not_found",
        "ts of another channel"
    );
    let a = api(
        &s,
        "chat.update",
        Some(TOKEN),
        json!({"channel": "C1", "ts": ts, "blocks": [header_block("resolved")]}),
    );
    assert_eq!(a.json()["ok"], true, "{a:?}");
    let u = s.updates();
    assert_eq!(u.len(), 1);
    assert_eq!(
        (u[0].channel.as_str(), u[0].ts.as_str()),
        ("C1", ts.as_str())
    );
    assert!(u[0].blocks.is_some());
}

#[test]
fn slack_incoming_webhook() {
    let s = slack(Rate {
        per_second: 0.5,
        burst: 1,
    });
    let a = hook(&s, HOOK, r#"{"text":"via hook"}"#);
    assert_eq!((a.status, a.body.as_str()), (200, "ok"));
    let a = hook(&s, HOOK, r#"{"text":"again"}"#);
    assert_eq!(a.status, 429, "{a:?}");
    assert_eq!(a.retry_after.as_deref(), Some("2"));

    let a = hook(&s, "/services/T0/B0/nope", r#"{"text":"x"}"#);
    assert_eq!((a.status, a.body.as_str()), (404, "no_service"));
    let a = hook(&s, HOOK, "not json");
    assert_eq!((a.status, a.body.as_str()), (400, "invalid_payload"));
    let a = hook(&s, HOOK, r#"{"username":"x"}"#);
    assert_eq!((a.status, a.body.as_str()), (400, "no_text"));
    let blocks = json!({"blocks": vec![json!({"type": "divider"}); 51]}).to_string();
    let a = hook(&s, HOOK, &blocks);
    assert_eq!((a.status, a.body.as_str()), (400, "invalid_blocks"));

    let m = s.messages();
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].channel.as_str(), m[0].via), ("C9", Via::Webhook));
    assert_eq!(m[0].text.as_deref(), Some("via hook"));
}

#[test]
fn slack_faults_are_consumed_in_order_and_not_recorded() {
    let s = slack(UNLIMITED);
    s.inject(Fault::Status(503), 1);
    s.inject(
        Fault::RateLimited {
            retry_after_secs: 7,
        },
        1,
    );
    s.inject(Fault::Delay(Duration::from_millis(300)), 1);
    let body = json!({"channel": "C1", "text": "x"});

    assert_eq!(post(&s, body.clone()).status, 503);
    let a = post(&s, body.clone());
    assert_eq!((a.status, a.retry_after.as_deref()), (429, Some("7")));
    assert_eq!(a.json()["error"], "ratelimited");
    let started = Instant::now();
    assert_eq!(post(&s, body.clone()).json()["ok"], true);
    assert!(started.elapsed() >= Duration::from_millis(300), "delayed");
    let started = Instant::now();
    assert_eq!(post(&s, body.clone()).json()["ok"], true);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "queue empty"
    );

    assert_eq!(s.messages().len(), 2);
    let reasons: Vec<_> = s.rejections().into_iter().map(|r| r.reason).collect();
    assert_eq!(reasons, ["fault: 503", "fault: ratelimited"]);

    // A webhook gets the webhook flavour of an injected 429.
    s.inject(
        Fault::RateLimited {
            retry_after_secs: 3,
        },
        1,
    );
    let a = hook(&s, HOOK, r#"{"text":"x"}"#);
    assert_eq!((a.status, a.retry_after.as_deref()), (429, Some("3")));
    assert_eq!(a.body, "rate_limited");
}

#[test]
fn random_failures_are_deterministic_per_seed() {
    let run = |seed: u64| -> Vec<u16> {
        let s = slack(UNLIMITED);
        s.fail_randomly(0.5, seed);
        (0..24)
            .map(|i| post(&s, json!({"channel": "C1", "text": format!("{i}")})).status)
            .collect()
    };
    let a = run(42);
    assert_eq!(a, run(42));
    assert!(a.contains(&500) && a.contains(&200), "{a:?}");
    assert_ne!(a, run(7), "another seed, another pattern");
}

#[test]
fn wait_for_messages_and_stop_on_drop() {
    let s = slack(UNLIMITED);
    let url = s.api_url("chat.postMessage");
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        send(
            http_client()
                .post(url)
                .bearer_auth(TOKEN)
                .body(json!({"channel": "C1", "text": "async"}).to_string()),
        )
    });
    let m = s
        .wait_for_messages(1, Duration::from_secs(5))
        .expect("message arrives");
    assert_eq!(m[0].text.as_deref(), Some("async"));
    t.join().expect("sender thread");
    assert!(s.wait_for_messages(2, Duration::from_millis(50)).is_err());

    let base = s.base_url();
    drop(s);
    assert!(
        http_client().get(&base).send().is_err(),
        "server stopped on drop"
    );
}

#[test]
fn max_in_window_counts_half_open_spans() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let times = [ms(0), ms(500), ms(1000), ms(1200)];
    assert_eq!(max_in_window(&times, Duration::from_secs(1)), 3);
    assert_eq!(max_in_window(&times, Duration::from_millis(200)), 1);
    assert_eq!(max_in_window(&times, Duration::from_millis(201)), 2);
    assert_eq!(max_in_window(&[], Duration::from_secs(1)), 0);
    let r = Rate {
        per_second: 1.0,
        burst: 3,
    };
    assert_eq!(r.max_in(Duration::from_secs(10)), 13);
}

// ---- Google Chat ----

fn chat(rate: Rate) -> GoogleChatStandin {
    GoogleChatStandin::start(GoogleChatConfig {
        spaces: vec![SpaceConfig::new("S1"), SpaceConfig::new("S2")],
        rate,
        retry_after: true,
    })
    .expect("start Google Chat stand-in")
}

fn chat_post(url: &str, body: &str) -> Answer {
    send(
        http_client()
            .post(url)
            .header("content-type", "application/json; charset=UTF-8")
            .body(body.to_owned()),
    )
}

fn google_status(a: &Answer) -> (u16, String) {
    let v = a.json();
    assert_eq!(v["error"]["code"], a.status, "{a:?}");
    (
        a.status,
        v["error"]["status"].as_str().expect("status").to_owned(),
    )
}

#[test]
fn google_chat_auth_and_size_limits() {
    let c = chat(UNLIMITED);
    let base = c.base_url();
    let msg = r#"{"text":"hi"}"#;
    let a = chat_post(
        &format!("{base}/v1/spaces/S1/messages?key=bad&token=token-S1"),
        msg,
    );
    assert_eq!(google_status(&a), (400, "INVALID_ARGUMENT".into()));
    let a = chat_post(
        &format!("{base}/v1/spaces/S1/messages?key=key-S1&token=bad"),
        msg,
    );
    assert_eq!(google_status(&a), (403, "PERMISSION_DENIED".into()));
    let a = chat_post(
        &format!("{base}/v1/spaces/S1/messages?key=key-S2&token=token-S2"),
        msg,
    );
    assert_eq!(a.status, 400, "another space's key: {a:?}");
    let a = chat_post(&c.webhook_url("S404"), msg);
    assert_eq!(google_status(&a), (404, "NOT_FOUND".into()));

    let url = c.webhook_url("S1");
    // `{"text":""}` is 11 bytes: 31,989 characters make a 32,000-byte body.
    let body = |n: usize| json!({"text": "x".repeat(n)}).to_string();
    assert_eq!(body(31_989).len(), 32_000);
    let a = chat_post(&url, &body(31_989));
    assert_eq!(a.status, 200, "{}", &a.body[..200.min(a.body.len())]);
    let a = chat_post(&url, &body(31_990));
    assert_eq!(google_status(&a), (400, "INVALID_ARGUMENT".into()));
    let a = chat_post(&url, r#"{"thread":{"threadKey":"k"}}"#);
    assert_eq!(google_status(&a), (400, "INVALID_ARGUMENT".into()));
    let a = chat_post(&url, "{");
    assert_eq!(google_status(&a), (400, "INVALID_ARGUMENT".into()));
    let a = chat_post(&url, r#"{"cardsV2":[{"cardId":"c","card":{}}]}"#);
    assert_eq!(a.status, 200, "cards only is fine: {a:?}");

    assert_eq!(c.messages().len(), 2);
    assert_eq!(c.rejections().len(), 7);
}

#[test]
fn google_chat_thread_keys() {
    let c = chat(UNLIMITED);
    let url = c.webhook_url("S1");
    let fallback = format!("{url}&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
    let or_fail = format!("{url}&messageReplyOption=REPLY_MESSAGE_OR_FAIL");
    let keyed =
        |key: &str, text: &str| json!({"text": text, "thread": {"threadKey": key}}).to_string();

    let first = chat_post(&fallback, &keyed("alert-1", "firing")).json();
    let thread = first["thread"]["name"]
        .as_str()
        .expect("thread name")
        .to_owned();
    assert!(thread.starts_with("spaces/S1/threads/"), "{thread}");
    assert_eq!(first["thread"]["threadKey"], "alert-1");
    assert!(first["name"]
        .as_str()
        .expect("name")
        .starts_with("spaces/S1/messages/"));
    assert!(first["createTime"]
        .as_str()
        .expect("createTime")
        .ends_with('Z'));

    let second = chat_post(&fallback, &keyed("alert-1", "resolved")).json();
    assert_eq!(
        second["thread"]["name"],
        thread.as_str(),
        "replied in the keyed thread"
    );
    // Without messageReplyOption the key is ignored: a new thread.
    let plain = chat_post(&url, &keyed("alert-1", "no option")).json();
    assert_ne!(plain["thread"]["name"], thread.as_str());
    // Another key starts its own thread.
    let other = chat_post(&fallback, &keyed("alert-2", "other")).json();
    assert_ne!(other["thread"]["name"], thread.as_str());
    // Replying by thread name works; an unknown name falls back, or fails with OR_FAIL.
    let by_name = json!({"text": "by name", "thread": {"name": thread}}).to_string();
    assert_eq!(
        chat_post(&fallback, &by_name).json()["thread"]["name"],
        thread.as_str()
    );
    let unknown = json!({"text": "x", "thread": {"name": "spaces/S1/threads/nope"}}).to_string();
    assert_eq!(chat_post(&fallback, &unknown).status, 200);
    assert_eq!(google_status(&chat_post(&or_fail, &unknown)).0, 404);
    // The same key in another space is another thread.
    let s2 = format!(
        "{}&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD",
        c.webhook_url("S2")
    );
    let a = chat_post(&s2, &keyed("alert-1", "s2")).json();
    assert!(a["thread"]["name"]
        .as_str()
        .expect("name")
        .starts_with("spaces/S2/"));

    let in_thread: Vec<_> = c
        .thread(&thread)
        .into_iter()
        .map(|m| (m.text, m.replied))
        .collect();
    assert_eq!(
        in_thread,
        [
            (Some("firing".into()), false),
            (Some("resolved".into()), true),
            (Some("by name".into()), true),
        ]
    );
    let plain_msg = &c.messages()[2];
    assert_eq!(
        (plain_msg.thread_key.as_deref(), plain_msg.replied),
        (None, false)
    );
    assert_eq!(c.messages_in("S1").len(), 6);
}

#[test]
fn google_chat_rate_limit_and_faults() {
    let c = chat(Rate {
        per_second: 4.0,
        burst: 2,
    });
    let url = c.webhook_url("S1");
    let msg = r#"{"text":"x"}"#;
    assert_eq!(chat_post(&url, msg).status, 200);
    assert_eq!(chat_post(&url, msg).status, 200);
    let a = chat_post(&url, msg);
    assert_eq!(google_status(&a), (429, "RESOURCE_EXHAUSTED".into()));
    assert_eq!(a.retry_after.as_deref(), Some("1"));
    assert_eq!(
        chat_post(&c.webhook_url("S2"), msg).status,
        200,
        "per space"
    );
    assert_eq!(c.messages_in("S1").len(), 2);
    assert_eq!(c.max_in_window("S1", Duration::from_secs(1)), 2);

    std::thread::sleep(Duration::from_millis(300));
    c.inject(Fault::Status(502), 1);
    c.inject(
        Fault::RateLimited {
            retry_after_secs: 5,
        },
        1,
    );
    assert_eq!(chat_post(&url, msg).status, 502);
    let a = chat_post(&url, msg);
    assert_eq!(google_status(&a), (429, "RESOURCE_EXHAUSTED".into()));
    assert_eq!(a.retry_after.as_deref(), Some("5"));
    assert_eq!(chat_post(&url, msg).status, 200, "faults used up");
    assert_eq!(c.messages_in("S1").len(), 3);
    let reasons: Vec<_> = c.rejections().into_iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        ["rate_limited", "fault: 502", "fault: ratelimited"]
    );
}
