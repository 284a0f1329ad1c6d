//! Rendering tests: snapshots of the bodies each integration sends for representative groups
//! and for every shared fixture (through the real parsers), property checks that every body is
//! within its service's limits whatever the group size and text, and custom templates falling
//! back and being truncated, and hostile text (invisible and direction-changing characters,
//! markup, mentions, clusters a cut could split): a snapshot of a hostile fixture and property
//! tests over arbitrary Unicode.
//!
//! Snapshots live in `tests/snapshots/render/<case>.json`. Run with `UPDATE_SNAPSHOTS=1` to
//! rewrite them after an intended change, then review the diff.

use std::path::{Path, PathBuf};

use beacon_router::model::{Alert, Group, LabelSet, Source, Status};
use beacon_router::render::{
    self, google_chat, slack, text, utf16_len, TemplateKind, TemplateSources, Templates,
};
use beacon_router::sources;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Snapshot plumbing

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/render")
}

fn fixtures() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures"
    ))
    .to_path_buf()
}

/// Compares `got` with `tests/snapshots/render/<name>.json` (or writes it under
/// `UPDATE_SNAPSHOTS=1`).
fn check_snapshot(name: &str, got: &Value) {
    let path = snapshot_dir().join(format!("{name}.json"));
    let mut text = serde_json::to_string_pretty(got).expect("serialize snapshot");
    text.push('\n');
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(snapshot_dir()).expect("create snapshot dir");
        std::fs::write(&path, &text).expect("write snapshot");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)",
            path.display()
        )
    });
    if text != want {
        let w: Vec<&str> = want.lines().collect();
        let g: Vec<&str> = text.lines().collect();
        let mut diff: Vec<String> = w
            .iter()
            .filter(|l| !g.contains(l))
            .map(|l| format!("- {l}"))
            .collect();
        diff.extend(
            g.iter()
                .filter(|l| !w.contains(l))
                .map(|l| format!("+ {l}")),
        );
        diff.truncate(60);
        panic!(
            "{name}: rendering differs from {} (UPDATE_SNAPSHOTS=1 rewrites it):\n{}",
            path.display(),
            diff.join("\n")
        );
    }
}

/// Every default rendering of a group, checked against the limits, as one snapshot value.
fn renderings(group: &Group, with_webhook: bool) -> Value {
    let slack = render::slack(group, None);
    assert_eq!(slack.template_error, None);
    check_slack_limits(&slack.body);
    let chat = render::google_chat(group, None);
    assert_eq!(chat.template_error, None);
    check_chat_limits(&chat.body);
    let mut v = json!({
        "console": render::console(group),
        "slack_incoming_webhook": slack.body.incoming_webhook_body(),
        "google_chat": chat.body,
    });
    if with_webhook {
        v["webhook"] = render::webhook(group);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Limit checks

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn check_slack_limits(m: &slack::SlackMessage) {
    assert!(
        m.blocks.len() <= slack::MAX_BLOCKS,
        "{} blocks",
        m.blocks.len()
    );
    let total = slack::block_text_len(&m.blocks);
    assert!(
        total <= slack::MAX_BLOCK_TEXT_TOTAL,
        "{total} chars of block text"
    );
    assert!(utf16_len(&m.text) <= slack::MAX_TEXT);
    assert!(!m.text.trim().is_empty(), "empty fallback text");
    for b in &m.blocks {
        match b["type"].as_str() {
            Some("header") => {
                let t = str_at(b, "/text/text");
                assert!(
                    !t.is_empty() && utf16_len(t) <= slack::MAX_HEADER_TEXT,
                    "{t}"
                );
            }
            Some("section") => {
                let t = str_at(b, "/text/text");
                assert!(!t.is_empty(), "empty section");
                assert!(
                    utf16_len(t) <= slack::MAX_SECTION_TEXT,
                    "{} units",
                    utf16_len(t)
                );
                if let Some(fields) = b["fields"].as_array() {
                    assert!(fields.len() <= slack::MAX_FIELDS);
                    for f in fields {
                        assert!(utf16_len(str_at(f, "/text")) <= slack::MAX_FIELD_TEXT);
                    }
                }
            }
            Some("context") => {
                let elements = b["elements"].as_array().map_or(0, Vec::len);
                assert!((1..=slack::MAX_CONTEXT_ELEMENTS).contains(&elements));
                for e in b["elements"].as_array().into_iter().flatten() {
                    assert!(utf16_len(str_at(e, "/text")) <= slack::MAX_SECTION_TEXT);
                }
            }
            Some("divider") => {}
            other => panic!("unexpected block type {other:?}"),
        }
    }
}

fn chat_widgets(body: &Value) -> Vec<&Value> {
    body.pointer("/cardsV2/0/card/sections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|s| s["widgets"].as_array().into_iter().flatten())
        .collect()
}

fn check_chat_limits(body: &Value) {
    let size = google_chat::serialized_len(body);
    assert!(size <= google_chat::MAX_MESSAGE_BYTES, "{size} bytes");
    assert!(chat_widgets(body).len() <= google_chat::MAX_WIDGETS_PER_CARD);
    assert!(!str_at(body, "/text").is_empty());
    let key = str_at(body, "/thread/threadKey");
    assert_eq!(key.len(), 64, "thread key {key:?}");
}

// ---------------------------------------------------------------------------------------------
// Groups built programmatically

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const EXTERNAL_URL: &str = "http://alertmanager.monitoring.svc:9093";
const STARTS: &str = "2026-11-24T03:24:54.787204094Z";
const ENDS: &str = "2026-11-24T03:41:09.787204094Z";

fn crash_alert(ns: &str, pod: &str, container: &str, status: Status) -> Alert {
    Alert {
        status,
        labels: labels(&[
            ("alertname", "KubePodCrashLooping"),
            ("cluster", "eks-prod-ap-south-1"),
            ("container", container),
            ("endpoint", "http"),
            ("job", "kube-state-metrics"),
            ("namespace", ns),
            ("pod", pod),
            ("prometheus", "monitoring/k8s"),
            ("service", "kube-state-metrics"),
            ("severity", "warning"),
        ]),
        annotations: labels(&[
            (
                "description",
                &format!("Pod {ns}/{pod} ({container}) is in waiting state (reason: \"CrashLoopBackOff\")."),
            ),
            (
                "runbook_url",
                "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
            ),
            ("summary", &format!("Pod {ns}/{pod} is crash looping")),
        ]),
        starts_at: Some(STARTS.into()),
        ends_at: (status == Status::Resolved).then(|| ENDS.into()),
        generator_url: Some(format!(
            "http://prometheus-k8s-0:9090/graph?g0.expr=kube_pod_container_status_waiting_reason%7Bpod%3D%22{pod}%22%7D&g0.tab=1"
        )),
        fingerprint: format!("{:016x}", pod.len() * 7919),
    }
}

/// A firing group of three crash-looping pods; the third alert has unicode, emoji, HTML-ish
/// text and quotes and no generator URL.
fn firing_3() -> Group {
    let mut third = crash_alert(
        "kyc",
        "textract-worker-6c7d8e9f0-ab12c",
        "worker",
        Status::Firing,
    );
    third.annotations.insert(
        "description".into(),
        "Unicode check: ✓ 日本語 emoji 🚨 and <html> & \"quotes\" <!channel> `code`".into(),
    );
    third.generator_url = Some(String::new());
    Group {
        source: Source::Alertmanager,
        key: "{}:{alertname=\"KubePodCrashLooping\", cluster=\"eks-prod-ap-south-1\"}".into(),
        status: Status::Firing,
        receiver: Some("team.payments".into()),
        group_labels: labels(&[
            ("alertname", "KubePodCrashLooping"),
            ("cluster", "eks-prod-ap-south-1"),
        ]),
        common_labels: labels(&[
            ("alertname", "KubePodCrashLooping"),
            ("cluster", "eks-prod-ap-south-1"),
            ("endpoint", "http"),
            ("job", "kube-state-metrics"),
            ("prometheus", "monitoring/k8s"),
            ("service", "kube-state-metrics"),
            ("severity", "warning"),
        ]),
        common_annotations: labels(&[(
            "runbook_url",
            "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
        )]),
        external_url: Some(EXTERNAL_URL.into()),
        alerts: vec![
            crash_alert(
                "lending",
                "loan-api-7f9c6d5b8-x2kqp",
                "loan-api",
                Status::Firing,
            ),
            crash_alert(
                "payments",
                "upi-gateway-5d8f7c9b6-mn4lp",
                "upi-gateway",
                Status::Firing,
            ),
            third,
        ],
        truncated_alerts: 0,
        extra: LabelSet::new(),
        dedup_key: "firing-3".into(),
    }
}

fn resolved_3() -> Group {
    let mut g = firing_3();
    g.status = Status::Resolved;
    for a in &mut g.alerts {
        a.status = Status::Resolved;
        a.ends_at = Some(ENDS.into());
    }
    g.dedup_key = "resolved-3".into();
    g
}

fn one_of_3_resolved() -> Group {
    let mut g = firing_3();
    g.alerts[1].status = Status::Resolved;
    g.alerts[1].ends_at = Some(ENDS.into());
    g.dedup_key = "one-of-3-resolved".into();
    g
}

/// Shaped like the Sentry parser's output for an `issue.created` webhook.
fn sentry_issue() -> Group {
    let l = labels(&[
        ("action", "created"),
        ("alertname", "SentryIssue"),
        ("environment", "production"),
        ("level", "error"),
        ("project", "loan-api"),
        ("resource", "issue"),
        ("severity", "critical"),
        ("source", "sentry"),
    ]);
    let a = labels(&[
        ("description", "app.repositories.loans in fetch_emi_schedule"),
        ("issue_id", "4237895612"),
        ("short_id", "LOAN-API-3Q"),
        (
            "summary",
            "OperationalError: (pymysql.err.OperationalError) (2013, 'Lost connection to MySQL server during query')",
        ),
        ("url", "https://stashfin.sentry.io/issues/4237895612/"),
    ]);
    Group {
        source: Source::Sentry,
        key: "sentry:issue:4237895612".into(),
        status: Status::Firing,
        receiver: None,
        group_labels: labels(&[("alertname", "SentryIssue")]),
        common_labels: l.clone(),
        common_annotations: a.clone(),
        external_url: None,
        alerts: vec![Alert {
            status: Status::Firing,
            labels: l,
            annotations: a,
            starts_at: Some("2026-11-24T03:11:27.913000Z".into()),
            ends_at: None,
            generator_url: Some("https://stashfin.sentry.io/issues/4237895612/".into()),
            fingerprint: "5d1a4c0f9e2b7a31".into(),
        }],
        truncated_alerts: 0,
        extra: LabelSet::new(),
        dedup_key: "sentry-issue".into(),
    }
}

/// Disk alerts for `n` hosts sharing a summary, `truncated` more left out by Alertmanager.
fn disk_group(n: usize, truncated: u64, status: Status) -> Group {
    let common = labels(&[
        ("alertname", "NodeFilesystemAlmostOutOfSpace"),
        ("cluster", "eks-prod-ap-south-1"),
        ("device", "/dev/nvme0n1p1"),
        ("fstype", "xfs"),
        ("job", "node-exporter"),
        ("mountpoint", "/"),
        ("severity", "critical"),
    ]);
    let common_ann = labels(&[
        (
            "runbook_url",
            "https://runbooks.prometheus-operator.dev/runbooks/node/nodefilesystemalmostoutofspace",
        ),
        ("summary", "Filesystem has less than 3% space left."),
    ]);
    let alerts = (0..n)
        .map(|i| {
            let mut l = common.clone();
            l.insert(
                "instance".into(),
                format!("ip-10-20-{}-{}.ap-south-1.compute.internal", i / 256, i % 256),
            );
            let mut a = common_ann.clone();
            a.insert(
                "description".into(),
                format!(
                    "Filesystem on /dev/nvme0n1p1, mounted on /, at ip-10-20-{}-{} has only {}.{}% available space left.",
                    i / 256,
                    i % 256,
                    2 + i % 2,
                    i % 10
                ),
            );
            Alert {
                status,
                labels: l,
                annotations: a,
                starts_at: Some("2026-11-24T03:24:54.914131294Z".into()),
                ends_at: (status == Status::Resolved).then(|| ENDS.into()),
                generator_url: Some(String::new()),
                fingerprint: format!("{:016x}", 0xf15a_7bfc_b081_4329_u64.wrapping_add(i as u64)),
            }
        })
        .collect();
    Group {
        source: Source::Alertmanager,
        key: "{}/{severity=\"critical\"}:{alertname=\"NodeFilesystemAlmostOutOfSpace\"}".into(),
        status,
        receiver: Some("storage".into()),
        group_labels: labels(&[("alertname", "NodeFilesystemAlmostOutOfSpace")]),
        common_labels: common,
        common_annotations: common_ann,
        external_url: Some(EXTERNAL_URL.into()),
        alerts,
        truncated_alerts: truncated,
        extra: labels(&[("notification_reason", "alert_group_changed")]),
        dedup_key: format!("disk-{n}-{truncated}"),
    }
}

/// 500 alerts with long annotations: unicode, emoji, HTML-ish text, quotes, Slack and Chat
/// markup and mentions, control characters.
fn storm_500() -> Group {
    let nasty =
        "Latency ✗ दस्तावेज़ 🚨🔥 <b>bold</b> & <script>alert(\"x\")</script> 'single' \"double\" \
                 <!channel> <users/all> *stars* _under_ ~strike~ `tick` |pipe| \\back\\ \u{1}ctl\t";
    let alerts = (0..500)
        .map(|i| {
            let status = if i % 7 == 3 {
                Status::Resolved
            } else {
                Status::Firing
            };
            Alert {
                status,
                labels: labels(&[
                    ("alertname", "HighRequestLatency"),
                    ("instance", &format!("api-{i:03}.prod:8080")),
                    ("path", &format!("/v1/loans/{i}/\"emi\"<x>")),
                    ("severity", "critical"),
                ]),
                annotations: labels(&[
                    ("description", &nasty.repeat(15)),
                    (
                        "summary",
                        &format!("p99 latency {i} ms on api-{i:03} — {nasty}"),
                    ),
                    (
                        "runbook_url",
                        &format!("https://runbooks.example/latency?i={i}&x=\"y\""),
                    ),
                ]),
                starts_at: Some(STARTS.into()),
                ends_at: (status == Status::Resolved).then(|| ENDS.into()),
                generator_url: Some(format!(
                    "http://prom:9090/graph?g0.expr=latency%7Bi%3D%22{i}%22%7D"
                )),
                fingerprint: format!("{i:016x}"),
            }
        })
        .collect();
    Group {
        source: Source::Alertmanager,
        key: "{}:{alertname=\"HighRequestLatency\"}".into(),
        status: Status::Firing,
        receiver: Some("api".into()),
        group_labels: labels(&[("alertname", "HighRequestLatency")]),
        common_labels: labels(&[
            ("alertname", "HighRequestLatency"),
            ("severity", "critical"),
        ]),
        common_annotations: LabelSet::new(),
        external_url: Some(EXTERNAL_URL.into()),
        alerts,
        truncated_alerts: 37,
        extra: LabelSet::new(),
        dedup_key: "storm".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots of built groups

#[test]
fn snapshot_firing_3() {
    let g = firing_3();
    let mut v = renderings(&g, true);
    // The Web API shape: the first message of a group.
    v["slack_post_message"] = render::slack(&g, None)
        .body
        .post_message_body("C0123ALERTS", None);
    check_snapshot("firing-3", &v);
}

#[test]
fn snapshot_resolved_3() {
    let g = resolved_3();
    let mut v = renderings(&g, true);
    // Resolved in place: the group's first message edited to this.
    v["slack_update"] = render::slack(&g, None)
        .body
        .update_body("C0123ALERTS", "1795490000.000100");
    check_snapshot("resolved-3", &v);
}

#[test]
fn snapshot_one_of_3_resolved() {
    let g = one_of_3_resolved();
    let mut v = renderings(&g, true);
    // A later message of the group: a reply in its thread.
    v["slack_post_message_reply"] = render::slack(&g, None)
        .body
        .post_message_body("C0123ALERTS", Some("1795490000.000100"));
    check_snapshot("one-of-3-resolved", &v);
}

#[test]
fn snapshot_sentry_issue() {
    check_snapshot("sentry-issue", &renderings(&sentry_issue(), true));
}

#[test]
fn snapshot_truncated() {
    check_snapshot(
        "truncated-50-of-60",
        &renderings(&disk_group(50, 10, Status::Firing), false),
    );
}

#[test]
fn snapshot_storm_500() {
    let g = storm_500();
    // The webhook body is the whole group (about a megabyte here): checked, not snapshotted.
    let hook = render::webhook(&g);
    assert_eq!(hook["alerts"].as_array().map(Vec::len), Some(500));
    assert_eq!(hook["truncatedAlerts"], 37);
    assert_eq!(
        hook["counts"],
        json!({"firing": 429, "resolved": 71, "truncated": 37})
    );
    check_snapshot("storm-500", &renderings(&g, false));
}

// ---------------------------------------------------------------------------------------------
// Fixtures through the real parsers

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sorted_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

#[test]
fn snapshot_alertmanager_fixtures() {
    let files = sorted_files(&fixtures().join("alertmanager"), ".json");
    assert_eq!(files.len(), 5, "{files:?}");
    for path in files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let capture = read_json(&path);
        let body = serde_json::to_vec(&capture["body"]).expect("re-serialize body");
        let group = sources::alertmanager::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_snapshot(
            &format!("fixture-alertmanager-{name}"),
            &renderings(&group, false),
        );
    }
}

#[test]
fn snapshot_sentry_fixtures() {
    let dir = fixtures().join("sentry");
    let files = sorted_files(&dir, ".body.json");
    assert_eq!(files.len(), 9, "{files:?}");
    for path in files {
        let file = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let name = file.trim_end_matches(".body.json").to_string();
        let headers = read_json(&dir.join(format!("{name}.headers.json")));
        let resource = headers["headers"]["Sentry-Hook-Resource"].as_str();
        let body = std::fs::read(&path).expect("read body");
        let group =
            sources::sentry::parse(resource, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_snapshot(
            &format!("fixture-sentry-{name}"),
            &renderings(&group, false),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Property checks: limits hold for every size and any text

/// Pieces of text that need escaping or are wide: multi-byte letters, astral emoji (2 UTF-16
/// units, 4 bytes), a ZWJ sequence, markup and mentions, control characters.
const ALPHABET: &[&str] = &[
    "a",
    "Z",
    " ",
    "\n",
    "\t",
    "\u{1}",
    "\u{7f}",
    "<",
    ">",
    "&",
    "\"",
    "'",
    "\\",
    "|",
    "`",
    "*",
    "_",
    "~",
    "é",
    "日",
    "ज़",
    "🚨",
    "👩‍👩‍👧",
    "&amp;",
    "<!channel>",
    "<users/all>",
    "{{",
    "%",
];

/// xorshift64*: a fixed-seed generator, so failures reproduce. Texts are random slices of a
/// pool of random alphabet pieces, so long texts cost a copy, not a loop.
struct Rng {
    state: u64,
    pool: String,
    /// Byte offsets of piece boundaries in `pool`.
    bounds: Vec<usize>,
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut rng = Rng {
            state: seed,
            pool: String::new(),
            bounds: vec![0],
        };
        for _ in 0..50_000 {
            let piece = ALPHABET[rng.below(ALPHABET.len())];
            rng.pool.push_str(piece);
            rng.bounds.push(rng.pool.len());
        }
        rng
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Up to `max` random pieces (`max` below the pool's 50,000).
    fn text(&mut self, max: usize) -> String {
        let len = self.below(max + 1);
        let start = self.below(self.bounds.len() - len);
        self.pool[self.bounds[start]..self.bounds[start + len]].to_string()
    }
}

fn random_group(rng: &mut Rng, n: usize) -> Group {
    let alerts: Vec<Alert> = (0..n)
        .map(|i| {
            // Mostly short texts and URLs, some very long ones (rare, so the test stays quick).
            let max = if rng.below(30) == 0 { 20_000 } else { 200 };
            let url_max = if rng.below(10) == 0 { 4_000 } else { 100 };
            let status = if rng.below(4) == 0 {
                Status::Resolved
            } else {
                Status::Firing
            };
            let mut l = LabelSet::new();
            l.insert("alertname".into(), "Random".into());
            l.insert("instance".into(), format!("i-{i}"));
            if rng.below(2) == 0 {
                l.insert("detail".into(), rng.text(max / 10));
            }
            let mut a = LabelSet::new();
            a.insert("summary".into(), rng.text(max / 10));
            a.insert("description".into(), rng.text(max));
            if rng.below(2) == 0 {
                a.insert(
                    "runbook_url".into(),
                    format!("https://r/{}", "x".repeat(rng.below(url_max))),
                );
            }
            Alert {
                status,
                labels: l,
                annotations: a,
                starts_at: Some(STARTS.into()),
                ends_at: None,
                generator_url: Some(format!("http://p/{}", "g".repeat(rng.below(url_max)))),
                fingerprint: format!("{i}"),
            }
        })
        .collect();
    let status = if alerts.iter().any(|a| a.status == Status::Firing) || alerts.is_empty() {
        Status::Firing
    } else {
        Status::Resolved
    };
    let max = if rng.below(3) == 0 { 20_000 } else { 300 };
    let mut common = labels(&[("alertname", "Random"), ("severity", "critical")]);
    common.insert("team".into(), rng.text(max / 5));
    let mut common_ann = LabelSet::new();
    if rng.below(2) == 0 {
        common_ann.insert("summary".into(), rng.text(max));
    }
    Group {
        source: if rng.below(5) == 0 {
            Source::Sentry
        } else {
            Source::Alertmanager
        },
        key: rng.text(100),
        status,
        receiver: Some(rng.text(50)),
        group_labels: LabelSet::new(),
        common_labels: common,
        common_annotations: common_ann,
        external_url: Some(format!("http://am/{}", "e".repeat(rng.below(1_000)))),
        alerts,
        truncated_alerts: if rng.below(3) == 0 {
            rng.below(1_000) as u64
        } else {
            0
        },
        extra: LabelSet::new(),
        dedup_key: "d".into(),
    }
}

/// The number in "…and N more" (Slack `*N*`, Chat `<b>N</b>`), if the message has one.
fn and_more(text: &str, open: &str, close: &str) -> Option<u64> {
    let start = text.find(&format!("…and {open}"))? + "…and ".len() + open.len();
    let rest = &text[start..];
    rest[..rest.find(close)?].parse().ok()
}

/// Alerts listed in a Slack message: lines that start with an alert marker, outside the
/// summary section (which starts with `*Status:*`).
fn slack_alerts_shown(m: &slack::SlackMessage) -> u64 {
    m.blocks
        .iter()
        .filter(|b| b["type"] == "section")
        .map(|b| str_at(b, "/text/text"))
        .filter(|t| !t.starts_with("*Status:*"))
        .flat_map(str::lines)
        .filter(|l| l.starts_with("🔥 ") || l.starts_with("✅ "))
        .count() as u64
}

/// Alerts listed in a Chat card: markers in the alerts section (the second section).
fn chat_alerts_shown(body: &Value) -> u64 {
    let text = body
        .pointer("/cardsV2/0/card/sections/1")
        .map(Value::to_string)
        .unwrap_or_default();
    (text.matches("<b>🔥 ").count()
        + text.matches("<b>✅ ").count()
        + text.matches(">🔥</font>").count()
        + text.matches(">✅</font>").count()) as u64
}

#[test]
fn every_size_and_text_stays_within_limits() {
    let mut rng = Rng::new(0x5eed_1234_abcd_0001);
    for n in 0..=600 {
        let g = random_group(&mut rng, n);
        let total = n as u64 + g.truncated_alerts;

        let m = render::slack(&g, None).body;
        check_slack_limits(&m);
        let shown = slack_alerts_shown(&m);
        let last = m
            .blocks
            .last()
            .map(|b| str_at(b, "/elements/0/text"))
            .unwrap_or("");
        match and_more(last, "*", "*") {
            Some(more) => assert_eq!(shown + more, total, "slack n={n}: {last}"),
            None => assert_eq!(
                shown, total,
                "slack n={n}: nothing said about missing alerts"
            ),
        }
        if n > 0 {
            assert!(shown >= 1, "slack n={n}: no alert shown");
        }

        let body = render::google_chat(&g, None).body;
        check_chat_limits(&body);
        let shown = chat_alerts_shown(&body);
        let text = body.to_string();
        match and_more(&text, "<b>", "</b>") {
            Some(more) => assert_eq!(shown + more, total, "chat n={n}"),
            None => assert_eq!(
                shown, total,
                "chat n={n}: nothing said about missing alerts"
            ),
        }
        if n > 0 {
            assert!(shown >= 1, "chat n={n}: no alert shown");
        }

        let line = render::console(&g);
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "console n={n}"
        );
        assert!(line.chars().count() < 4_000, "console n={n}");
    }
}

#[test]
fn api_bodies_keep_the_limits() {
    let m = render::slack(&storm_500(), None).body;
    for body in [
        m.incoming_webhook_body(),
        m.post_message_body("C1", Some("1.2")),
        m.update_body("C1", "1.2"),
    ] {
        let blocks: Vec<Value> = body["blocks"].as_array().cloned().unwrap_or_default();
        assert!(blocks.len() <= slack::MAX_BLOCKS);
        assert!(slack::block_text_len(&blocks) <= slack::MAX_BLOCK_TEXT_TOTAL);
        assert!(utf16_len(str_at(&body, "/text")) <= slack::MAX_TEXT);
    }
}

// ---------------------------------------------------------------------------------------------
// Templates

fn templates(kind: TemplateKind, src: &str) -> Templates {
    let mut s = TemplateSources::default();
    match kind {
        TemplateKind::SlackText => s.slack_text = Some(src.into()),
        TemplateKind::SlackBlocks => s.slack_blocks = Some(src.into()),
        TemplateKind::GoogleChatText => s.google_chat_text = Some(src.into()),
    }
    Templates::compile(&s)
}

#[test]
fn broken_templates_fall_back_to_the_default_and_report() {
    let g = firing_3();
    let default_slack = render::slack(&g, None).body;
    let default_chat = render::google_chat(&g, None).body;
    let cases = [
        (TemplateKind::SlackText, "{% for %}", "does not compile"),
        (
            TemplateKind::SlackText,
            "{{ summary | nope }}",
            "unknown filter",
        ),
        (TemplateKind::SlackText, "{{ '' }}  ", "rendered empty text"),
        (TemplateKind::SlackBlocks, "{{ title }}", "not valid JSON"),
        (TemplateKind::SlackBlocks, "[{\"text\": 1}]", "\"type\""),
        (TemplateKind::SlackBlocks, "{% if x %}", "does not compile"),
        (
            TemplateKind::GoogleChatText,
            "{{ alerts[0].labels.pod | upper(1, 2) }}",
            "failed to render",
        ),
        (
            TemplateKind::GoogleChatText,
            "{% endfor %}",
            "does not compile",
        ),
        (
            TemplateKind::GoogleChatText,
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            "fuel",
        ),
    ];
    for (kind, src, expect) in cases {
        let t = templates(kind, src);
        match kind {
            TemplateKind::GoogleChatText => {
                let r = render::google_chat(&g, Some(&t));
                let err = r.template_error.unwrap_or_default();
                assert!(
                    err.contains(expect) && err.contains(kind.name()),
                    "{src}: {err}"
                );
                assert_eq!(r.body, default_chat, "{src}");
            }
            _ => {
                let r = render::slack(&g, Some(&t));
                let err = r.template_error.unwrap_or_default();
                assert!(
                    err.contains(expect) && err.contains(kind.name()),
                    "{src}: {err}"
                );
                assert_eq!(r.body, default_slack, "{src}");
            }
        }
    }
}

#[test]
fn huge_template_output_is_truncated() {
    let g = storm_500();
    let every_description = "{% for a in alerts %}{{ a.annotations.description }}\n{% endfor %}";

    let r = render::slack(
        &g,
        Some(&templates(TemplateKind::SlackText, every_description)),
    );
    assert_eq!(r.template_error, None);
    assert!(r.body.blocks.is_empty());
    assert!(utf16_len(&r.body.text) <= slack::MAX_TEXT);
    assert!(utf16_len(&r.body.text) > slack::MAX_TEXT - 100);
    assert!(r.body.text.ends_with('…'));
    // Values are Slack-escaped: no mention survives.
    assert!(!r.body.text.contains("<!channel>") && r.body.text.contains("&lt;!channel&gt;"));

    let r = render::google_chat(
        &g,
        Some(&templates(TemplateKind::GoogleChatText, every_description)),
    );
    assert_eq!(r.template_error, None);
    let size = google_chat::serialized_len(&r.body);
    assert!(size <= google_chat::MAX_MESSAGE_BYTES && size > google_chat::MAX_MESSAGE_BYTES - 100);
    assert!(!str_at(&r.body, "/text").contains("<users/all>"));
    assert_eq!(
        str_at(&r.body, "/thread/threadKey"),
        google_chat::thread_key(&g.key)
    );

    // Far past the output cap: cut there, then to Slack's limit.
    let r = render::slack(
        &g,
        Some(&templates(TemplateKind::SlackText, "{{ '🚨' * 10000000 }}")),
    );
    assert_eq!(r.template_error, None);
    assert!(utf16_len(&r.body.text) <= slack::MAX_TEXT);

    // A blocks template producing a long header and 120 long sections is brought within the
    // block limits.
    let many_blocks = r#"[{"type":"header","text":{"type":"plain_text","text":{{ ('x' * 400) | tojson }}}},
        {% for a in alerts[:120] %}{"type":"section","text":{"type":"mrkdwn","text":{{ (a.annotations.description * 2) | slack_escape | tojson }}}}{% if not loop.last %},{% endif %}{% endfor %}]"#;
    let r = render::slack(&g, Some(&templates(TemplateKind::SlackBlocks, many_blocks)));
    assert_eq!(r.template_error, None);
    check_slack_limits(&r.body);
    assert_eq!(r.body.text, slack::fallback_text(&g));
    assert_eq!(
        utf16_len(str_at(&r.body.blocks[0], "/text/text")),
        slack::MAX_HEADER_TEXT
    );
    let last = r
        .body
        .blocks
        .last()
        .map(Value::to_string)
        .unwrap_or_default();
    assert!(last.contains("more blocks not shown"), "{last}");
}

#[test]
fn snapshot_custom_templates() {
    let sources = TemplateSources {
        slack_text: Some(
            "{{ status_marker }} *{{ alertname }}* {{ status_line }}\n\
             {% for a in firing %}• {{ a.headline }} ({{ a.display_labels | items | map('join', '=') | join(', ') }})\n{% endfor %}\
             {% if silence_url %}<{{ silence_url }}|Silence>{% endif %}"
                .into(),
        ),
        slack_blocks: Some(
            r#"[
              {"type": "header", "text": {"type": "plain_text", "text": {{ title | tojson }}}},
              {% for a in alerts %}
              {"type": "section", "text": {"type": "mrkdwn",
                "text": {{ (a.marker ~ " " ~ (a.summary | slack_escape) ~ "\n" ~ (a.starts_at | display_time)) | tojson }}}},
              {% endfor %}
              {"type": "context", "elements": [{"type": "mrkdwn", "text": {{ ("receiver: " ~ receiver ~ ", group " ~ group_key) | slack_escape | tojson }}}]}
            ]"#
            .into(),
        ),
        google_chat_text: Some(
            "*{{ title }}*\n{% for a in alerts %}{{ a.marker }} {{ a.summary }}{% if a.source_url %} <{{ a.source_url | safe }}|source>{% endif %}\n{% endfor %}"
                .into(),
        ),
    };
    let t = Templates::check(&sources).unwrap_or_else(|e| panic!("{e:?}"));
    let g = firing_3();
    let slack = render::slack(&g, Some(&t));
    assert_eq!(slack.template_error, None);
    check_slack_limits(&slack.body);
    let chat = render::google_chat(&g, Some(&t));
    assert_eq!(chat.template_error, None);
    check_snapshot(
        "custom-templates",
        &json!({
            "slack_incoming_webhook": slack.body.incoming_webhook_body(),
            "google_chat": chat.body,
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile text: invisible and direction-changing characters, markup, mentions, grapheme cuts

/// Every string in a JSON value (keys too), depth first.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|c| strings(c, out)),
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            out.push(k.clone());
            strings(c, out)
        }),
        _ => {}
    }
}

/// Panics if `s` carries an invisible or direction-changing character other than those the
/// renderer itself may write: a ZERO WIDTH JOINER inside a grapheme cluster (an emoji ZWJ
/// sequence), and FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE pairs, unnested, each around
/// text with a right-to-left letter.
fn assert_no_hidden(s: &str, what: &str) {
    use unicode_segmentation::UnicodeSegmentation;
    let mut open: Option<usize> = None;
    for (start, cluster) in s.grapheme_indices(true) {
        let last = cluster.chars().count() - 1;
        for (n, (i, c)) in cluster.char_indices().enumerate() {
            let at = start + i;
            match c {
                text::FSI => {
                    assert!(open.is_none(), "{what}: nested isolate at {at} in {s:?}");
                    open = Some(at);
                }
                text::PDI => {
                    let o = open
                        .take()
                        .unwrap_or_else(|| panic!("{what}: PDI without FSI at {at} in {s:?}"));
                    assert!(
                        s[o..at].chars().any(text::is_rtl),
                        "{what}: isolate around left-to-right text in {s:?}"
                    );
                }
                '\u{200D}' => assert!(
                    n < last,
                    "{what}: a ZWJ that joins nothing at {at} in {s:?}"
                ),
                c if text::is_hidden_control(c) || matches!(c, '\u{2028}' | '\u{2029}') => {
                    panic!("{what}: U+{:04X} at {at} in {s:?}", c as u32)
                }
                _ => {}
            }
        }
    }
    assert!(open.is_none(), "{what}: isolate left open in {s:?}");
}

/// Every string of every body a group renders to (Slack incoming webhook and `chat.update`
/// bodies, Google Chat, console), each checked with [`assert_no_hidden`].
fn assert_bodies_clean(group: &Group) -> Vec<String> {
    let slack = render::slack(group, None).body;
    let chat = render::google_chat(group, None).body;
    let mut all = Vec::new();
    strings(&slack.incoming_webhook_body(), &mut all);
    strings(&slack.update_body("C1", "1.2"), &mut all);
    strings(&chat, &mut all);
    all.push(render::console(group));
    for s in &all {
        assert_no_hidden(s, "rendered text");
    }
    all
}

fn hostile_group() -> Group {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hostile/alertmanager-hostile.json");
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sources::alertmanager::parse(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn snapshot_hostile_alert() {
    let group = hostile_group();
    check_snapshot("hostile-alertmanager", &renderings(&group, false));
    assert_bodies_clean(&group);

    let slack = render::slack(&group, None).body;
    let header = str_at(&slack.blocks[0], "/text/text");
    // plain_text: Slack parses nothing there, so the markup shows literally, as written.
    assert_eq!(slack.blocks[0]["text"]["type"], "plain_text");
    assert!(
        header.contains("<!channel><script>alert(1)</script> *x* ＠here"),
        "{header}"
    );
    // Cut at 150 units on a cluster boundary: the family emoji before the ellipsis is whole.
    let kept = header.strip_suffix('…').unwrap_or_default().trim_end();
    assert!(
        kept.ends_with(" 👨\u{200D}👩\u{200D}👧\u{200D}👦"),
        "{header}"
    );
    let mrkdwn: Vec<&str> = slack
        .blocks
        .iter()
        .filter(|b| b["type"] == "section")
        .map(|b| str_at(b, "/text/text"))
        .collect();
    for t in &mrkdwn {
        assert!(
            !t.contains("<!channel>") && !t.contains("<https://evil"),
            "{t}"
        );
        assert!(!t.contains("@channel") && !t.contains("@here") && !t.contains("@everyone"));
    }
    assert!(!slack.text.contains("<!channel>") && !slack.text.contains("@here"));
    // Slack links plain-text @channel into a mention only with `link_names` or `parse: full`
    // (chat.postMessage reference); no body ever sets them.
    for body in [
        slack.incoming_webhook_body(),
        slack.post_message_body("C1", Some("1.2")),
        slack.update_body("C1", "1.2"),
    ] {
        assert!(body.get("link_names").is_none() && body.get("parse").is_none());
    }
    // The alert's name is bold: nothing inside can end or restyle it.
    let alert = mrkdwn
        .iter()
        .find(|t| t.starts_with("🔥 *"))
        .expect("an alert section");
    let bold = alert.lines().next().unwrap_or_default();
    assert_eq!(bold.matches('*').count(), 2, "{bold}");
    assert!(
        bold.contains("∗exceeded∗ on db01 ＿now＿ ∼really∼ ˋrm -rf /ˋ ＠channel"),
        "{bold}"
    );
    // Label code spans: a backtick in a name or value cannot end the span; the Hebrew value
    // is isolated.
    let labels = alert
        .lines()
        .find(|l| l.contains("`host="))
        .unwrap_or_default();
    assert_eq!(labels.matches('`').count() % 2, 0, "{labels}");
    assert!(labels.contains("`codeˋspan=aˋb*c_d~e`"), "{labels}");
    assert!(
        labels.contains("`region=\u{2068}שלום-עולם\u{2069}`"),
        "{labels}"
    );
    assert!(labels.contains("`host=db01`"), "{labels}");

    let chat = render::google_chat(&group, None).body;
    // The card title is plain text too, and shown as written.
    let title = str_at(&chat, "/cardsV2/0/card/header/title");
    assert!(
        title.contains("<!channel><script>alert(1)</script>"),
        "{title}"
    );
    let card = chat["cardsV2"].to_string();
    assert!(!card.contains("<users/all>") && !card.contains("<script>alert(1)</script> *x*<"));
    assert!(
        card.contains("region=<b>\u{2068}שלום-עולם\u{2069}</b>"),
        "{card}"
    );
    // Chat text beside the card has no escaping: `<` `>` become look-alikes.
    assert!(!str_at(&chat, "/text").contains('<'));
}

/// Clusters a code-point cut would split, each starting with a character that appears nowhere
/// else in the generated text, so a split shows as a proper prefix of one followed by `…`.
const CLUSTERS: &[&str] = &[
    "👨\u{200D}👩\u{200D}👧\u{200D}👦",
    "👍🏽",
    "🇯🇵",
    "#\u{FE0F}\u{20E3}",
    "ɐ\u{301}\u{327}",
];

fn starts_a_cluster(c: char) -> bool {
    matches!(
        c,
        '👨' | '👍' | '#' | 'ɐ' | '\u{FE0F}' | '\u{20E3}' | '\u{1F3FD}'
    ) || ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

/// Panics if `s` shows a cluster of [`CLUSTERS`] cut short before an ellipsis.
fn assert_no_split_cluster(s: &str) {
    for cluster in CLUSTERS {
        let ends: Vec<usize> = cluster.char_indices().map(|(i, _)| i).skip(1).collect();
        for end in ends {
            let cut = format!("{}…", &cluster[..end]);
            assert!(
                !s.contains(&cut),
                "cluster {cluster:?} split as {cut:?} in {s:?}"
            );
        }
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const HIDDEN: &[char] = &[
        '\u{061C}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{202A}',
        '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
        '\u{2069}', '\u{FEFF}', '\u{2028}', '\u{2029}', '\u{2060}',
    ];

    /// One piece of alert text: any character (surrogates cannot be chars; they are covered
    /// through JSON escapes below), a whole cluster, a hidden control, right-to-left letters,
    /// combining marks, or markup and mentions.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => any::<char>().prop_filter("not a cluster start", |c| !starts_a_cluster(*c)).prop_map(String::from),
            3 => proptest::sample::select(CLUSTERS).prop_map(str::to_string),
            3 => proptest::sample::select(HIDDEN).prop_map(String::from),
            2 => proptest::sample::select(&["שלום", "مرحبا", "ܫܠܡܐ", "1٢3"][..]).prop_map(str::to_string),
            1 => proptest::sample::select(&["\u{301}", "\u{327}\u{301}", "\u{93F}"][..]).prop_map(str::to_string),
            2 => proptest::sample::select(&["*", "_", "~", "`", "<!channel>", "@here", " @channel ", "<users/all>", "&", "\n", " "][..]).prop_map(str::to_string),
            4 => "[a-z ]{1,12}",
        ]
    }

    fn text(max_pieces: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(piece(), 0..max_pieces).prop_map(|v| v.concat())
    }

    prop_compose! {
        fn hostile_alert()(
            name in text(40),
            region in text(30),
            summary in text(120),
            description in text(600),
            resolved in any::<bool>(),
        ) -> Alert {
            Alert {
                status: if resolved { Status::Resolved } else { Status::Firing },
                labels: labels(&[("alertname", &name), ("region", &region), ("severity", "critical")]),
                annotations: labels(&[("summary", &summary), ("description", &description)]),
                starts_at: Some(STARTS.into()),
                ends_at: None,
                generator_url: Some("http://prometheus:9090/graph".into()),
                fingerprint: "f".into(),
            }
        }
    }

    prop_compose! {
        fn hostile_group()(
            alerts in proptest::collection::vec(hostile_alert(), 1..12),
            team in text(60),
            common_summary in text(400),
            receiver in text(20),
        ) -> Group {
            let status = if alerts.iter().any(|a| a.status == Status::Firing) {
                Status::Firing
            } else {
                Status::Resolved
            };
            Group {
                source: Source::Alertmanager,
                key: "k".into(),
                status,
                receiver: Some(receiver),
                group_labels: LabelSet::new(),
                common_labels: labels(&[("team", &team), ("severity", "critical")]),
                common_annotations: labels(&[("summary", &common_summary)]),
                external_url: Some(EXTERNAL_URL.into()),
                alerts,
                truncated_alerts: 0,
                extra: LabelSet::new(),
                dedup_key: "d".into(),
            }
        }
    }

    type Cut<'a> = std::borrow::Cow<'a, str>;
    type Measure = fn(&str) -> usize;

    /// `s` written as JSON with every non-ASCII character as `\u` escapes (astral ones as
    /// surrogate pairs), as some senders do.
    fn json_escaped(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                ' '..='~' if c != '"' && c != '\\' => out.push(c),
                c => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
        }
        out.push('"');
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text: every body within every limit, no invisible or direction-changing
        /// character from the input, no cluster cut short.
        #[test]
        fn hostile_text_renders_within_limits_and_clean(group in hostile_group()) {
            check_slack_limits(&render::slack(&group, None).body);
            check_chat_limits(&render::google_chat(&group, None).body);
            for s in assert_bodies_clean(&group) {
                assert_no_split_cluster(&s);
            }
        }

        /// Every cut is on an extended grapheme cluster boundary of the text it cut, within
        /// the limit as each platform counts it, and marked with an ellipsis when there is
        /// room for one.
        #[test]
        fn cuts_fall_on_grapheme_boundaries(s in text(200), max in 0usize..600) {
            use unicode_segmentation::UnicodeSegmentation;
            let boundaries: Vec<usize> = s.grapheme_indices(true).map(|(i, _)| i).chain([s.len()]).collect();
            let cuts: [(Cut<'_>, Measure); 3] = [
                (render::truncate_chars(&s, max), |t| t.chars().count()),
                (render::truncate_utf16(&s, max), utf16_len),
                (render::truncate_bytes(&s, max), str::len),
            ];
            for (cut, measure) in cuts {
                prop_assert!(measure(&cut) <= max.max(measure(&s).min(max)));
                if cut == s {
                    continue;
                }
                let kept = cut.strip_suffix('…').unwrap_or(&cut);
                prop_assert!(s.starts_with(kept));
                prop_assert!(boundaries.contains(&kept.len()), "cut at {} in {:?}", kept.len(), s);
                prop_assert!(cut.ends_with('…') || max < 3, "{:?}", cut);
            }
        }

        /// Text sent as JSON `\u` escapes, surrogate pairs included, arrives as the characters
        /// it encodes and renders clean.
        #[test]
        fn json_escaped_text_parses_and_renders_clean(s in text(300)) {
            let body = format!(
                r#"{{"version":"4","groupKey":"k","receiver":"r","status":"firing","alerts":[{{"status":"firing","labels":{{"alertname":"A","x":{x}}},"annotations":{{"summary":{x}}},"startsAt":"{STARTS}","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"f"}}],"groupLabels":{{}},"commonLabels":{{"alertname":"A"}},"commonAnnotations":{{}},"externalURL":"","truncatedAlerts":0}}"#,
                x = json_escaped(&s)
            );
            let group = sources::alertmanager::parse(body.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(group.alerts[0].labels.get("x"), Some(&s));
            check_slack_limits(&render::slack(&group, None).body);
            check_chat_limits(&render::google_chat(&group, None).body);
            assert_bodies_clean(&group);
        }
    }

    #[test]
    fn lone_surrogate_escapes_are_a_clear_error() {
        for bad in [r"\ud800", r"\udc00x", r"\ud83d\u0041"] {
            let body = format!(
                r#"{{"version":"4","groupKey":"k","receiver":"r","status":"firing","alerts":[{{"status":"firing","labels":{{"alertname":"{bad}"}},"annotations":{{}},"startsAt":"{STARTS}","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"f"}}],"groupLabels":{{}},"commonLabels":{{}},"commonAnnotations":{{}},"externalURL":"","truncatedAlerts":0}}"#
            );
            let err = sources::alertmanager::parse(body.as_bytes())
                .expect_err(bad)
                .to_string();
            assert!(
                err.contains("invalid json at line 1 column"),
                "{bad}: {err}"
            );
        }
    }
}
