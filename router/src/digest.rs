//! Digests: a destination whose backlog would take longer than `delivery.digest_after` to
//! drain at its rate gets its pending notifications coalesced, several per message, so a storm
//! becomes a few messages now rather than a trickle for an hour.
//!
//! A digest is an ordinary `Group` holding every alert of the notifications it folds (the
//! renderers already summarise and truncate big groups within each destination's limits), with
//! a summary saying what it is. It is posted on its own, outside any group's thread.

use crate::config::Rate;
use crate::model::{Group, LabelSet, Status};

/// Most notifications folded into one digest.
pub const MAX_PER_DIGEST: usize = 500;

/// How many notifications the next message should carry so that a backlog of `depth`, whose
/// oldest entry has waited `oldest_age_secs`, is out within `within_secs` of that entry's
/// arrival at `rate`: 1 while the rate keeps up (no digest), else enough per message. As the
/// backlog ages the remaining messages get fewer and the digests larger, so a storm drains on
/// time instead of tapering off into a trickle.
pub fn batch_size(depth: usize, oldest_age_secs: f64, rate: Rate, within_secs: f64) -> usize {
    let remaining_secs = (within_secs - oldest_age_secs).max(0.0);
    // The burst is left out: after a pause or a restart the bucket may not have it.
    let messages = (rate.per_second * remaining_secs).floor().max(1.0);
    if (depth as f64) <= messages || depth < 2 {
        return 1;
    }
    ((depth as f64 / messages).ceil() as usize).clamp(2, MAX_PER_DIGEST)
}

/// One group holding every alert of `groups` (in order).
pub fn coalesce(groups: &[&Group], first_id: u64) -> Group {
    let alerts: Vec<_> = groups
        .iter()
        .flat_map(|g| g.alerts.iter().cloned())
        .collect();
    let status = if groups.iter().any(|g| g.status == Status::Firing) {
        Status::Firing
    } else {
        Status::Resolved
    };
    let truncated: u64 = groups.iter().map(|g| g.truncated_alerts).sum();
    let mut common_labels: LabelSet = groups
        .first()
        .map(|g| g.common_labels.clone())
        .unwrap_or_default();
    common_labels.retain(|k, v| groups.iter().all(|g| g.common_labels.get(k) == Some(v)));
    let mut common_annotations = LabelSet::new();
    common_annotations.insert(
        "summary".into(),
        format!(
            "Digest of {} notifications queued during a burst (more than this destination's rate allows)",
            groups.len()
        ),
    );
    let first = groups.first();
    let source = first.map_or(crate::model::Source::Alertmanager, |g| g.source);
    Group {
        receiver: first.and_then(|g| g.receiver.clone()),
        external_url: first.and_then(|g| g.external_url.clone()),
        common_labels,
        common_annotations,
        alerts,
        truncated_alerts: truncated,
        ..Group::empty(
            source,
            format!("beacon-digest/{first_id}"),
            status,
            format!("beacon-digest/{first_id}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Alert, Source};

    const SLACK: Rate = Rate {
        per_second: 1.0,
        burst: 3,
    };

    fn group(name: &str, status: Status) -> Group {
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), name.into());
        labels.insert("cluster".into(), "eks-prod".into());
        Group {
            common_labels: labels.clone(),
            alerts: vec![Alert {
                status,
                labels,
                annotations: LabelSet::new(),
                starts_at: None,
                ends_at: None,
                generator_url: None,
                fingerprint: name.into(),
            }],
            ..Group::empty(Source::Alertmanager, name, status, name)
        }
    }

    #[test]
    fn no_digest_while_the_rate_keeps_up() {
        assert_eq!(batch_size(0, 0.0, SLACK, 60.0), 1);
        assert_eq!(batch_size(1, 3600.0, SLACK, 60.0), 1);
        assert_eq!(batch_size(60, 0.0, SLACK, 60.0), 1);
        assert_eq!(batch_size(10, 50.0, SLACK, 60.0), 1);
    }

    #[test]
    fn a_backlog_is_spread_over_what_the_rate_allows() {
        // 600 pending at 1/s within 60 s: 60 messages' worth, so 10 per message.
        assert_eq!(batch_size(600, 0.0, SLACK, 60.0), 10);
        assert_eq!(batch_size(61, 0.0, SLACK, 60.0), 2);
        assert_eq!(batch_size(10_000_000, 0.0, SLACK, 60.0), MAX_PER_DIGEST);
        // A zero delay, or a backlog already past it: everything left in one message.
        assert_eq!(batch_size(9, 0.0, SLACK, 0.0), 9);
        assert_eq!(batch_size(40, 61.0, SLACK, 60.0), 40);
    }

    #[test]
    fn a_storm_drains_within_the_delay() {
        // 600 arrive at once; one message per second; count the messages until empty.
        let mut depth = 600usize;
        let mut t = 0.0;
        let mut messages = 0;
        while depth > 0 {
            depth -= batch_size(depth, t, SLACK, 60.0).min(depth);
            messages += 1;
            t += 1.0;
        }
        assert!(messages <= 60, "{messages} messages");
        assert!(t <= 60.0, "drained after {t} s");
    }

    #[test]
    fn coalesce_keeps_every_alert_and_the_shared_labels() {
        let a = group("DiskFull", Status::Resolved);
        let b = group("NodeDown", Status::Firing);
        let d = coalesce(&[&a, &b], 42);
        assert_eq!(d.alerts.len(), 2);
        assert_eq!(d.status, Status::Firing);
        assert_eq!(d.key, "beacon-digest/42");
        assert_eq!(
            d.common_labels.get("cluster").map(String::as_str),
            Some("eks-prod")
        );
        assert!(!d.common_labels.contains_key("alertname"));
        assert!(d.common_annotations["summary"].starts_with("Digest of 2 notifications"));
    }
}
