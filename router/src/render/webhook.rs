//! The generic `webhook` integration's JSON body: the whole group, in Alertmanager-like
//! camelCase so consumers of Alertmanager webhooks feel at home, plus what Beacon adds.
//!
//! Shape (version `"1"`; fields are only ever added within a version):
//!
//! ```json
//! {
//!   "version": "1",
//!   "source": "alertmanager",            // or "sentry"
//!   "status": "firing",                  // or "resolved"
//!   "groupKey": "{}:{alertname=\"X\"}",  // opaque, stable across a group's notifications
//!   "dedupKey": "…",                     // identical for duplicate deliveries of one state
//!   "receiver": "team.payments",         // or null
//!   "title": "[FIRING:3] X",             // the default title, without the emoji marker
//!   "severity": "warning",               // label value, or null
//!   "counts": {"firing": 3, "resolved": 0, "truncated": 0},
//!   "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
//!   "externalURL": "http://am:9093",     // or null
//!   "silenceURL": "http://am:9093/#/silences/new?filter=…",  // or null
//!   "truncatedAlerts": 0,
//!   "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
//!               "fingerprint"}],        // times as received, null when unknown
//!   "extra": {}                          // e.g. notification_reason
//! }
//! ```
//!
//! The body is not truncated: it goes to a machine, and a receiver with a size limit is
//! better served by the complete group.

use serde_json::{json, Value};

use super::{counts, group_name, group_severity, silence_url, status_tag};
use crate::model::{Group, Source};

/// Version of the body's shape.
pub const VERSION: &str = "1";

/// The webhook body for a group.
pub fn render(group: &Group) -> Value {
    let c = counts(group);
    let alerts: Vec<Value> = group
        .alerts
        .iter()
        .map(|a| {
            json!({
                "status": a.status.as_str(),
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": a.starts_at,
                "endsAt": a.ends_at,
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    json!({
        "version": VERSION,
        "source": match group.source {
            Source::Alertmanager => "alertmanager",
            Source::Sentry => "sentry",
        },
        "status": group.status.as_str(),
        "groupKey": group.key,
        "dedupKey": group.dedup_key,
        "receiver": group.receiver,
        "title": format!("{} {}", status_tag(group), group_name(group)),
        "severity": group_severity(group).1,
        "counts": {
            "firing": c.firing,
            "resolved": c.resolved,
            "truncated": group.truncated_alerts,
        },
        "groupLabels": group.group_labels,
        "commonLabels": group.common_labels,
        "commonAnnotations": group.common_annotations,
        "externalURL": group.external_url,
        "silenceURL": silence_url(group),
        "truncatedAlerts": group.truncated_alerts,
        "alerts": alerts,
        "extra": group.extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Alert, LabelSet, Status};

    #[test]
    fn body_carries_the_whole_group() {
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), "X".into());
        let g = Group {
            source: Source::Sentry,
            key: "k".into(),
            status: Status::Resolved,
            receiver: None,
            group_labels: LabelSet::new(),
            common_labels: labels.clone(),
            common_annotations: LabelSet::new(),
            external_url: None,
            alerts: vec![Alert {
                status: Status::Resolved,
                labels,
                annotations: LabelSet::new(),
                starts_at: Some("2026-01-01T00:00:00Z".into()),
                ends_at: None,
                generator_url: None,
                fingerprint: "f".into(),
            }],
            truncated_alerts: 2,
            extra: LabelSet::new(),
            dedup_key: "d".into(),
        };
        let v = render(&g);
        assert_eq!(v["version"], "1");
        assert_eq!(v["source"], "sentry");
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["title"], "[RESOLVED:1] X");
        assert_eq!(
            v["counts"],
            json!({"firing": 0, "resolved": 1, "truncated": 2})
        );
        assert_eq!(v["silenceURL"], Value::Null);
        assert_eq!(v["alerts"][0]["startsAt"], "2026-01-01T00:00:00Z");
        assert_eq!(v["alerts"][0]["endsAt"], Value::Null);
    }
}
