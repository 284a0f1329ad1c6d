//! Inbound parsers against the shared fixtures: every Alertmanager capture and Sentry payload
//! parses to the expected `Group` (pinned as pretty JSON under `tests/snapshots/sources/`; run
//! with `UPDATE_SNAPSHOTS=1` to rewrite them after an intended change, then review the diff),
//! dedup keys behave, and malformed bodies give clear errors instead of panics.

mod inbound_fixtures;

use std::path::PathBuf;

use beacon_router::model::{Group, Source, Status};
use beacon_router::sources::{alertmanager, sentry, InputError};
use inbound_fixtures as fx;
use sha2::{Digest, Sha256};

fn am(name: &str) -> Group {
    let c = fx::alertmanager(name);
    alertmanager::parse(&c.body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sentry_group(name: &str) -> Group {
    let c = fx::sentry(name);
    sentry::parse(c.resource(), &c.body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn label<'a>(g: &'a Group, i: usize, name: &str) -> Option<&'a str> {
    g.alerts[i].labels.get(name).map(String::as_str)
}

fn annotation<'a>(g: &'a Group, name: &str) -> Option<&'a str> {
    g.alerts[0].annotations.get(name).map(String::as_str)
}

// ---------------------------------------------------------------------------------------------
// Snapshots

fn snapshot_path(kind: &str, name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/sources"
    ))
    .join(format!("{kind}-{name}.json"))
}

/// Compares a group's pretty JSON with its snapshot file (or writes it under
/// `UPDATE_SNAPSHOTS=1`).
fn check_snapshot(kind: &str, name: &str, group: &Group) {
    let mut got = serde_json::to_string_pretty(group).expect("serialize group");
    got.push('\n');
    let path = snapshot_path(kind, name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)",
            path.display()
        )
    });
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (w, g))| w != g)
            .take(20)
            .map(|(i, (w, g))| format!("line {}:\n- {w}\n+ {g}", i + 1))
            .collect();
        panic!(
            "{kind}/{name} differs from {} (UPDATE_SNAPSHOTS=1 rewrites it; {} vs {} lines):\n{}",
            path.display(),
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn fixture_lists_name_every_fixture() {
    fx::assert_lists_complete();
}

#[test]
fn alertmanager_snapshots() {
    for name in fx::ALERTMANAGER {
        check_snapshot("alertmanager", name, &am(name));
    }
}

#[test]
fn sentry_snapshots() {
    for name in fx::SENTRY {
        check_snapshot("sentry", name, &sentry_group(name));
    }
}

#[test]
fn snapshot_directory_has_no_stale_files() {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/sources"
    ));
    let mut expected: Vec<String> = fx::ALERTMANAGER
        .iter()
        .map(|n| format!("alertmanager-{n}.json"))
        .chain(fx::SENTRY.iter().map(|n| format!("sentry-{n}.json")))
        .collect();
    expected.sort();
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    found.sort();
    assert_eq!(found, expected);
}

// ---------------------------------------------------------------------------------------------
// Alertmanager fixtures

#[test]
fn alertmanager_firing_3_alerts() {
    let g = am("firing-3-alerts");
    assert_eq!(g.source, Source::Alertmanager);
    assert_eq!(g.receiver.as_deref(), Some("team.payments"));
    assert_eq!(g.status, Status::Firing);
    assert_eq!(
        g.key,
        "{}:{alertname=\"KubePodCrashLooping\", cluster=\"eks-prod-ap-south-1\"}"
    );
    assert_eq!(g.alerts.len(), 3);
    assert_eq!(g.truncated_alerts, 0);
    assert_eq!(
        g.external_url.as_deref(),
        Some("http://alertmanager.monitoring.svc:9093")
    );
    assert_eq!(g.group_labels.len(), 2);
    assert_eq!(
        g.common_labels.get("severity").map(String::as_str),
        Some("warning")
    );
    assert!(g.common_annotations.is_empty());
    assert!(g.extra.is_empty());
    for a in &g.alerts {
        assert_eq!(a.status, Status::Firing);
        assert_eq!(a.ends_at, None, "firing alert {} has no end", a.fingerprint);
        assert_eq!(
            a.starts_at.as_deref(),
            Some("2026-11-24T03:24:54.787204094Z")
        );
        assert_eq!(
            a.labels.get("alertname").map(String::as_str),
            Some("KubePodCrashLooping")
        );
    }
    let fps: Vec<&str> = g.alerts.iter().map(|a| a.fingerprint.as_str()).collect();
    assert_eq!(
        fps,
        ["bd7d4beb06c16311", "242606875e66af42", "a186e3ed3d7d24b2"]
    );
    assert_eq!(label(&g, 1, "namespace"), Some("payments"));
    // Unicode, emoji, HTML-ish text and quotes arrive untouched.
    let third = &g.alerts[2];
    assert_eq!(
        third.annotations.get("description").map(String::as_str),
        Some("Unicode check: ✓ 日本語 emoji 🚨 and <html> & \"quotes\"")
    );
    assert!(third.annotations["summary"].ends_with("✗ दस्तावेज़ प्रोसेसिंग विफल"));
    // An empty generatorURL is no link.
    assert_eq!(third.generator_url, None);
    assert!(g.alerts[0]
        .generator_url
        .as_deref()
        .is_some_and(|u| u.starts_with("http://prometheus-k8s-0:9090/graph?")));
}

#[test]
fn alertmanager_firing_1_of_3_resolved() {
    let g = am("firing-1-of-3-resolved");
    assert_eq!(g.receiver.as_deref(), Some("team.payments"));
    // The group fires while any alert does.
    assert_eq!(g.status, Status::Firing);
    let statuses: Vec<Status> = g.alerts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Status::Resolved, Status::Firing, Status::Firing]);
    assert_eq!(
        g.alerts[0].ends_at.as_deref(),
        Some("2026-11-24T03:24:59.017009Z")
    );
    assert_eq!(g.alerts[1].ends_at, None);
    assert_eq!(g.alerts[2].ends_at, None);
}

#[test]
fn alertmanager_resolved_3_alerts() {
    let g = am("resolved-3-alerts");
    assert_eq!(g.status, Status::Resolved);
    for a in &g.alerts {
        assert_eq!(a.status, Status::Resolved);
        assert!(
            a.ends_at.is_some(),
            "resolved alert {} has an end",
            a.fingerprint
        );
    }
}

#[test]
fn alertmanager_storage_truncated() {
    for (name, status) in [
        ("storage-firing-truncated", Status::Firing),
        ("storage-resolved-truncated", Status::Resolved),
    ] {
        let c = fx::alertmanager(name);
        let g = am(name);
        assert_eq!(g.receiver.as_deref(), Some("storage"), "{name}");
        assert_eq!(g.status, status, "{name}");
        assert_eq!(g.truncated_alerts, 10, "{name}");
        assert_eq!(g.alerts.len(), 50, "{name}");
        assert_eq!(
            g.common_labels.get("severity").map(String::as_str),
            Some("critical")
        );
        assert_eq!(
            g.common_annotations.get("summary").map(String::as_str),
            Some("Filesystem has less than 3% space left.")
        );
        for a in &g.alerts {
            assert_eq!(a.status, status, "{name} {}", a.fingerprint);
            assert_eq!(a.ends_at.is_some(), status == Status::Resolved, "{name}");
            assert_eq!(a.generator_url, None);
        }
        // The body carries exactly what the group holds.
        let body: serde_json::Value = serde_json::from_slice(&c.body).expect("json");
        assert_eq!(body["alerts"].as_array().map(Vec::len), Some(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Dedup keys

/// The body of a capture rewritten by `f` (to simulate the other member of an HA pair).
fn am_variant(name: &str, f: impl FnOnce(&mut serde_json::Value)) -> Group {
    let c = fx::alertmanager(name);
    let mut v: serde_json::Value = serde_json::from_slice(&c.body).expect("json");
    f(&mut v);
    alertmanager::parse(&serde_json::to_vec(&v).expect("json")).expect("parse variant")
}

#[test]
fn alertmanager_dedup_same_state_is_equal() {
    // A retry: the same body again.
    assert_eq!(
        am("firing-3-alerts").dedup_key,
        am("firing-3-alerts").dedup_key
    );
    // The other Alertmanager of an HA pair: its own externalURL, alerts in another order, a
    // different notification_reason, different key order. Same state, same key.
    let peer = am_variant("firing-3-alerts", |v| {
        v["externalURL"] = "http://alertmanager-1.monitoring.svc:9093".into();
        v["notification_reason"] = "repeat_interval".into();
        if let Some(alerts) = v["alerts"].as_array_mut() {
            alerts.reverse();
        }
    });
    assert_eq!(
        peer.extra.get("notification_reason").map(String::as_str),
        Some("repeat_interval")
    );
    assert_eq!(peer.dedup_key, am("firing-3-alerts").dedup_key);
    assert_eq!(
        am_variant("storage-firing-truncated", |v| {
            if let Some(alerts) = v["alerts"].as_array_mut() {
                alerts.rotate_left(17);
            }
        })
        .dedup_key,
        am("storage-firing-truncated").dedup_key
    );
}

#[test]
fn alertmanager_dedup_state_changes_are_different() {
    let keys: Vec<String> = fx::ALERTMANAGER.iter().map(|n| am(n).dedup_key).collect();
    for (i, a) in keys.iter().enumerate() {
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        for (j, b) in keys.iter().enumerate().skip(i + 1) {
            assert_ne!(a, b, "{} vs {}", fx::ALERTMANAGER[i], fx::ALERTMANAGER[j]);
        }
    }
    let base = am("firing-3-alerts").dedup_key;
    // One more alert hidden by max_alerts.
    let more = am_variant("firing-3-alerts", |v| v["truncatedAlerts"] = 1.into());
    assert_ne!(more.dedup_key, base);
    // An annotation changed.
    let edited = am_variant("firing-3-alerts", |v| {
        v["alerts"][0]["annotations"]["summary"] = "changed".into()
    });
    assert_ne!(edited.dedup_key, base);
    // Another receiver for the same group.
    let other = am_variant("firing-3-alerts", |v| {
        v["receiver"] = "team\\.lending".into()
    });
    assert_ne!(other.dedup_key, base);
}

#[test]
fn sentry_dedup_is_the_body_hash() {
    for name in fx::SENTRY {
        let c = fx::sentry(name);
        let g = sentry_group(name);
        assert_eq!(g.dedup_key, hex::encode(Sha256::digest(&c.body)), "{name}");
        assert_eq!(sentry_group(name).dedup_key, g.dedup_key, "{name}");
    }
    assert_ne!(
        sentry_group("issue-created").dedup_key,
        sentry_group("issue-resolved").dedup_key
    );
}

// ---------------------------------------------------------------------------------------------
// Sentry fixtures

#[test]
fn sentry_every_group_has_one_alert_and_the_derived_labels() {
    for name in fx::SENTRY {
        let g = sentry_group(name);
        assert_eq!(g.source, Source::Sentry, "{name}");
        assert_eq!(g.alerts.len(), 1, "{name}");
        assert_eq!(g.truncated_alerts, 0);
        assert_eq!(g.receiver, None);
        assert_eq!(g.common_labels, g.alerts[0].labels, "{name}");
        assert_eq!(g.common_annotations, g.alerts[0].annotations, "{name}");
        assert_eq!(g.status, g.alerts[0].status, "{name}");
        for l in ["source", "resource", "action", "alertname", "severity"] {
            assert!(
                label(&g, 0, l).is_some_and(|v| !v.is_empty()),
                "{name}: {l}"
            );
        }
        assert_eq!(label(&g, 0, "source"), Some("sentry"));
        let c = fx::sentry(name);
        assert_eq!(
            label(&g, 0, "resource"),
            Some(c.resource().unwrap_or("legacy"))
        );
        assert!(g.key.starts_with("sentry:"), "{name}: {}", g.key);
        assert_eq!(g.alerts[0].fingerprint.len(), 16);
    }
}

#[test]
fn sentry_issue_created_and_resolved_share_a_thread() {
    let created = sentry_group("issue-created");
    let resolved = sentry_group("issue-resolved");
    assert_eq!(created.key, "sentry:issue:4237895612");
    assert_eq!(resolved.key, created.key);
    assert_eq!(
        resolved.alerts[0].fingerprint,
        created.alerts[0].fingerprint
    );
    assert_eq!(created.status, Status::Firing);
    assert_eq!(resolved.status, Status::Resolved);
    for g in [&created, &resolved] {
        assert_eq!(label(g, 0, "alertname"), Some("SentryIssue"));
        assert_eq!(label(g, 0, "project"), Some("loan-api"));
        assert_eq!(label(g, 0, "level"), Some("error"));
        assert_eq!(label(g, 0, "severity"), Some("critical"));
        assert_eq!(label(g, 0, "environment"), None);
        assert_eq!(
            annotation(g, "summary"),
            Some("OperationalError: (pymysql.err.OperationalError) (2013, 'Lost connection to MySQL server during query')")
        );
        assert_eq!(
            annotation(g, "description"),
            Some("app.repositories.loans in fetch_emi_schedule")
        );
        assert_eq!(
            annotation(g, "url"),
            Some("https://stashfin.sentry.io/issues/4237895612/")
        );
        assert_eq!(annotation(g, "short_id"), Some("LOAN-API-3Q"));
        assert_eq!(
            g.alerts[0].generator_url.as_deref(),
            Some("https://stashfin.sentry.io/issues/4237895612/")
        );
    }
    assert_eq!(label(&created, 0, "action"), Some("created"));
    assert_eq!(label(&resolved, 0, "action"), Some("resolved"));
    assert_eq!(annotation(&resolved, "actor"), Some("Priya Sharma"));
}

#[test]
fn sentry_event_alert_lands_in_the_issue_thread() {
    let g = sentry_group("event-alert-triggered");
    assert_eq!(g.key, "sentry:issue:4237895612");
    assert_eq!(g.status, Status::Firing);
    assert_eq!(
        label(&g, 0, "alertname"),
        Some("Payments errors > 10 in 1m")
    );
    assert_eq!(label(&g, 0, "action"), Some("triggered"));
    assert_eq!(label(&g, 0, "project"), Some("loan-api"));
    assert_eq!(label(&g, 0, "environment"), Some("production"));
    assert_eq!(label(&g, 0, "level"), Some("error"));
    assert_eq!(label(&g, 0, "severity"), Some("critical"));
    assert_eq!(annotation(&g, "rule"), Some("Payments errors > 10 in 1m"));
    assert_eq!(
        g.alerts[0].generator_url.as_deref(),
        Some(
            "https://stashfin.sentry.io/issues/4237895612/events/9f3b8c2d1e0a4b5c8d7e6f5a4b3c2d1e/"
        )
    );
    assert_eq!(
        g.alerts[0].starts_at.as_deref(),
        Some("2026-11-24T03:11:27.913000Z")
    );
}

#[test]
fn sentry_metric_alert_critical_then_resolved() {
    let crit = sentry_group("metric-alert-critical");
    let res = sentry_group("metric-alert-resolved");
    assert_eq!(crit.key, "sentry:metric_alert:2316071");
    assert_eq!(res.key, crit.key);
    assert_eq!(crit.status, Status::Firing);
    assert_eq!(res.status, Status::Resolved);
    for g in [&crit, &res] {
        assert_eq!(
            label(g, 0, "alertname"),
            Some("p95 latency on /v1/upi/collect above 800ms")
        );
        assert_eq!(label(g, 0, "project"), Some("upi-gateway"));
        assert_eq!(label(g, 0, "environment"), Some("production"));
        // The resolution carries the severity of what it resolves, so it routes the same way.
        assert_eq!(label(g, 0, "severity"), Some("critical"));
        assert_eq!(
            annotation(g, "url"),
            Some("https://stashfin.sentry.io/alerts/rules/details/118455/?alert=2316071")
        );
    }
    assert_eq!(
        annotation(&crit, "summary"),
        Some("Critical: p95 latency on /v1/upi/collect above 800ms")
    );
    assert_eq!(
        annotation(&res, "description"),
        Some("512.0ms p95(transaction.duration) in the last 5 minutes")
    );
    assert_eq!(crit.alerts[0].ends_at, None);
    assert_eq!(
        res.alerts[0].ends_at.as_deref(),
        Some("2026-11-24T03:21:00Z")
    );
}

#[test]
fn sentry_error_comment_installation_and_legacy() {
    let err = sentry_group("error-created");
    assert_eq!(err.key, "sentry:issue:4237895612");
    assert_eq!(label(&err, 0, "alertname"), Some("SentryError"));
    assert_eq!(label(&err, 0, "project"), Some("loan-api"));
    assert_eq!(label(&err, 0, "environment"), Some("production"));
    assert_eq!(
        annotation(&err, "event_id"),
        Some("9f3b8c2d1e0a4b5c8d7e6f5a4b3c2d1e")
    );

    let comment = sentry_group("comment-created");
    assert_eq!(comment.key, "sentry:comment:4237895612");
    assert_eq!(comment.status, Status::Firing);
    assert_eq!(label(&comment, 0, "alertname"), Some("SentryComment"));
    assert_eq!(label(&comment, 0, "severity"), Some("info"));
    assert_eq!(label(&comment, 0, "project"), Some("loan-api"));
    assert_eq!(
        annotation(&comment, "description"),
        Some("Looking into this — RDS failover in progress.")
    );

    let inst = sentry_group("installation-created");
    assert_eq!(
        inst.key,
        "sentry:installation:7a485448-a9e2-4c85-8a3c-4f44175783c9"
    );
    assert_eq!(label(&inst, 0, "alertname"), Some("SentryInstallation"));
    assert_eq!(label(&inst, 0, "project"), None);
    assert_eq!(
        annotation(&inst, "summary"),
        Some("Sentry integration beacon-router installed in stashfin")
    );

    let legacy = sentry_group("legacy-plugin");
    let direct = sentry::parse_legacy(&fx::sentry("legacy-plugin").body).expect("legacy");
    assert_eq!(legacy, direct);
    assert_eq!(legacy.key, "sentry:issue:4237895612");
    assert_eq!(label(&legacy, 0, "resource"), Some("legacy"));
    assert_eq!(label(&legacy, 0, "action"), Some("triggered"));
    assert_eq!(
        label(&legacy, 0, "alertname"),
        Some("Payments errors > 10 in 1m")
    );
    assert_eq!(label(&legacy, 0, "project"), Some("loan-api"));
    assert_eq!(label(&legacy, 0, "environment"), Some("production"));
    assert_eq!(label(&legacy, 0, "severity"), Some("critical"));
    assert_eq!(
        legacy.alerts[0].generator_url.as_deref(),
        Some("https://stashfin.sentry.io/issues/4237895612/?referrer=webhooks_plugin")
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed input

fn am_err(body: &[u8]) -> String {
    match alertmanager::parse(body) {
        Ok(_) => String::from("parsed"),
        Err(e) => e.to_string(),
    }
}

fn sentry_err(resource: Option<&str>, body: &[u8]) -> String {
    match sentry::parse(resource, body) {
        Ok(_) => String::from("parsed"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_bodies_get_clear_errors() {
    let full = fx::alertmanager("firing-3-alerts").body;
    let truncated = &full[..full.len() / 2];
    let msg = am_err(truncated);
    assert!(
        msg.starts_with("alertmanager payload: invalid json at line 1 column ")
            && msg.ends_with("unexpected end of input while parsing a string"),
        "{msg}"
    );
    assert_eq!(am_err(b""), "alertmanager payload: body is empty");
    assert_eq!(
        am_err(b"{\"receiver\": \"caf\xe9\"}"),
        "alertmanager payload: body is not valid utf-8 (invalid byte at offset 17)"
    );
    assert_eq!(
        am_err(&vec![b'['; 1 << 20]),
        "alertmanager payload: json nested too deeply (more than 127 levels) at line 1 column 128"
    );
    assert_eq!(
        am_err(b"[1, 2]"),
        "alertmanager payload: expected a json object, got an array"
    );
    let wrong = String::from_utf8(full.clone())
        .expect("utf-8")
        .replace("\"truncatedAlerts\":0", "\"truncatedAlerts\":\"0\"");
    assert_eq!(
        am_err(wrong.as_bytes()),
        "alertmanager payload: field \"truncatedAlerts\" must be a non-negative integer, got a \
         string"
    );
    let wrong = String::from_utf8(full)
        .expect("utf-8")
        .replace("\"severity\":\"warning\"}", "\"severity\":3}");
    assert_eq!(
        am_err(wrong.as_bytes()),
        "alertmanager payload: field \"alerts[0].labels.severity\" must be a string, got a number"
    );

    let sbody = fx::sentry("issue-created").body;
    let msg = sentry_err(Some("issue"), &sbody[..sbody.len() - 1]);
    assert!(
        msg.starts_with("sentry issue payload: invalid json at line 1 column "),
        "{msg}"
    );
    assert_eq!(
        sentry_err(Some("issue"), b""),
        "sentry issue payload: body is empty"
    );
    assert_eq!(
        sentry_err(None, b""),
        "sentry legacy plugin payload: body is empty"
    );
    assert_eq!(
        sentry_err(Some("metric_alert"), b"\xff"),
        "sentry metric_alert payload: body is not valid utf-8 (invalid byte at offset 0)"
    );
    assert_eq!(
        sentry_err(Some("error"), &vec![b'['; 1 << 20]),
        "sentry error payload: json nested too deeply (more than 127 levels) at line 1 column 128"
    );
    assert_eq!(
        sentry_err(
            Some("issue"),
            br#"{"action":"created","data":{"issue":"x"}}"#
        ),
        "sentry issue payload: field \"data.issue\" must be an object, got a string"
    );
    assert_eq!(
        sentry_err(None, br#"{"id":"1","event":{"title":7}}"#),
        "sentry legacy plugin payload: field \"event.title\" must be a string, got a number"
    );
}

#[test]
fn every_prefix_of_a_body_is_an_error_not_a_panic() {
    let am_body = fx::alertmanager("firing-3-alerts").body;
    for n in 0..am_body.len() {
        assert!(alertmanager::parse(&am_body[..n]).is_err(), "prefix {n}");
    }
    for name in fx::SENTRY {
        let c = fx::sentry(name);
        for n in 0..c.body.len() {
            assert!(
                sentry::parse(c.resource(), &c.body[..n]).is_err(),
                "{name} prefix {n}"
            );
        }
    }
}

#[test]
fn corrupted_bodies_never_panic() {
    // Deterministic pseudo-random byte corruption of every fixture: whatever comes out, the
    // parsers answer Ok or Err.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut bodies: Vec<(Option<String>, Vec<u8>, bool)> = fx::ALERTMANAGER
        .iter()
        .map(|n| (None, fx::alertmanager(n).body, true))
        .collect();
    for n in fx::SENTRY {
        let c = fx::sentry(n);
        bodies.push((c.resource().map(str::to_owned), c.body, false));
    }
    let mut errors = 0;
    for (resource, body, is_am) in &bodies {
        for _ in 0..200 {
            let mut b = body.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() % b.len() as u64) as usize;
                b[i] = (next() & 0xff) as u8;
            }
            let r: Result<Group, InputError> = if *is_am {
                alertmanager::parse(&b)
            } else {
                sentry::parse(resource.as_deref(), &b)
            };
            if let Err(e) = r {
                errors += 1;
                let msg = e.to_string();
                assert!(msg.contains("payload: "), "{msg}");
            }
        }
    }
    // Random corruption mostly breaks the JSON; the test would be vacuous otherwise.
    assert!(errors > 1000, "only {errors} errors");
}
