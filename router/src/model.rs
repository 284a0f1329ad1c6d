//! The router's data model: what an inbound webhook becomes before routing and delivery.
//!
//! Both sources produce `Group`s: Alertmanager sends one group per webhook; a Sentry webhook
//! becomes a group of one alert. Routing, deduplication, threading and rendering work on this
//! model only, never on source payloads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Label or annotation set, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// Which inbound endpoint produced a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Alertmanager,
    Sentry,
}

/// One alert inside a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub status: Status,
    pub labels: LabelSet,
    pub annotations: LabelSet,
    /// RFC 3339 timestamp as received.
    pub starts_at: Option<String>,
    /// RFC 3339 timestamp as received; `None` for a firing Alertmanager alert
    /// (`0001-01-01T00:00:00Z`).
    pub ends_at: Option<String>,
    /// Link to the source of the alert (Prometheus graph, Sentry issue page).
    pub generator_url: Option<String>,
    /// Stable identity of the alert within its group.
    pub fingerprint: String,
}

/// One inbound webhook, parsed: alerts that share a group key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub source: Source,
    /// Identifies the group across webhooks (Alertmanager's `groupKey`; for Sentry derived from
    /// the resource and issue or alert id). Opaque: compared and hashed, never parsed. Threads
    /// are keyed by it.
    pub key: String,
    /// The group's status: firing while any alert fires.
    pub status: Status,
    /// Alertmanager's receiver name, with its regex escaping removed (`team\.payments` →
    /// `team.payments`).
    pub receiver: Option<String>,
    /// Labels the group was formed by (Alertmanager `groupLabels`).
    pub group_labels: LabelSet,
    /// Labels every alert shares (Alertmanager `commonLabels`; Sentry's derived labels).
    pub common_labels: LabelSet,
    pub common_annotations: LabelSet,
    /// Alertmanager's `externalURL` (silence links are built from it).
    pub external_url: Option<String>,
    pub alerts: Vec<Alert>,
    /// Alerts Alertmanager left out of the payload (`max_alerts`).
    pub truncated_alerts: u64,
    /// Alertmanager's optional `notification_reason` and similar extra fields, kept for templates.
    pub extra: LabelSet,
    /// Identical for two deliveries of the same group state (an HA Alertmanager pair, a retry,
    /// the same Sentry body sent again); deduplication is keyed by it.
    pub dedup_key: String,
}

impl Group {
    /// A group with only its identity: no labels, annotations or alerts. Callers fill in the rest
    /// with struct update syntax (`Group { alerts, ..Group::empty(..) }`).
    pub fn empty(
        source: Source,
        key: impl Into<String>,
        status: Status,
        dedup_key: impl Into<String>,
    ) -> Self {
        Group {
            source,
            key: key.into(),
            status,
            receiver: None,
            group_labels: LabelSet::new(),
            common_labels: LabelSet::new(),
            common_annotations: LabelSet::new(),
            external_url: None,
            alerts: Vec::new(),
            truncated_alerts: 0,
            extra: LabelSet::new(),
            dedup_key: dedup_key.into(),
        }
    }
}
