//! Loading the shared webhook fixtures (`../../shared/fixtures`) for the inbound tests
//! (`sources.rs`, `auth.rs`): Alertmanager captures and signed Sentry payloads.

#![allow(dead_code)] // Each test crate uses a different subset.

use std::path::PathBuf;

use serde_json::Value;

/// The shared fixture directory, beside the clone (CI lays it out the same way).
pub fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures"
    ))
}

/// Alertmanager capture names (files `alertmanager/NAME.json`).
pub const ALERTMANAGER: &[&str] = &[
    "firing-3-alerts",
    "firing-1-of-3-resolved",
    "resolved-3-alerts",
    "storage-firing-truncated",
    "storage-resolved-truncated",
];

/// Sentry case names (files `sentry/NAME.body.json` and `sentry/NAME.headers.json`).
pub const SENTRY: &[&str] = &[
    "comment-created",
    "error-created",
    "event-alert-triggered",
    "installation-created",
    "issue-created",
    "issue-resolved",
    "legacy-plugin",
    "metric-alert-critical",
    "metric-alert-resolved",
];

/// One Alertmanager capture: the headers it was sent with and its body as compact JSON bytes
/// (what Alertmanager's Go encoder sends; the capture stores the parsed body).
#[derive(Debug)]
pub struct AmCapture {
    pub headers: Value,
    pub body: Vec<u8>,
}

impl AmCapture {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }
}

pub fn alertmanager(name: &str) -> AmCapture {
    let path = dir().join(format!("alertmanager/{name}.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    let body = serde_json::to_vec(&v["body"]).expect("serialize body");
    AmCapture {
        headers: v["headers"].clone(),
        body,
    }
}

/// One Sentry case: raw body bytes exactly as signed, and its headers.
#[derive(Debug)]
pub struct SentryCase {
    pub headers: Value,
    pub body: Vec<u8>,
}

impl SentryCase {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }

    /// `Sentry-Hook-Resource`, absent for the legacy plugin.
    pub fn resource(&self) -> Option<&str> {
        self.header("Sentry-Hook-Resource")
    }
}

pub fn sentry(name: &str) -> SentryCase {
    let body_path = dir().join(format!("sentry/{name}.body.json"));
    let body =
        std::fs::read(&body_path).unwrap_or_else(|e| panic!("read {}: {e}", body_path.display()));
    let head_path = dir().join(format!("sentry/{name}.headers.json"));
    let text = std::fs::read_to_string(&head_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", head_path.display()));
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parse {}: {e}", head_path.display()));
    SentryCase {
        headers: v["headers"].clone(),
        body,
    }
}

/// The fixture lists above name every file in the fixture directories, so a new fixture
/// cannot go untested.
pub fn assert_lists_complete() {
    let names = |sub: &str, suffix: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir().join(sub))
            .unwrap_or_else(|e| panic!("list fixtures/{sub}: {e}"))
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(suffix).map(str::to_owned))
            .collect();
        v.sort();
        v
    };
    let mut am: Vec<String> = ALERTMANAGER.iter().map(|s| s.to_string()).collect();
    am.sort();
    assert_eq!(names("alertmanager", ".json"), am);
    let sentry: Vec<String> = SENTRY.iter().map(|s| s.to_string()).collect();
    assert_eq!(names("sentry", ".body.json"), sentry);
}
