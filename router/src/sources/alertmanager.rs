//! Alertmanager webhook payloads (version 4) parsed into a `Group`, with the dedup key that
//! makes the same group state from an HA pair or a retry deliver once.
//!
//! Every documented field is read: `receiver` (regex-escaped by Alertmanager, unescaped here),
//! `status`, `alerts[]`, `groupLabels`, `commonLabels`, `commonAnnotations`, `externalURL`,
//! `version`, `groupKey`, `truncatedAlerts`. Fields Alertmanager adds over time
//! (`notification_reason`, ...) are accepted and kept in `Group.extra`.
//!
//! Required: `version` (must be "4"), `groupKey` (non-empty), `receiver`, `status`, `alerts`
//! (non-empty) and, per alert, `status`, `labels` and `fingerprint`. Alertmanager always sends
//! the others too, but nothing breaks without them, so they default (empty maps, no URL,
//! `truncatedAlerts` 0, which also matches Alertmanagers older than 0.22 that lack the field).

use sha2::{Digest, Sha256};

use super::{parse_object, quote, Field, InputError, Obj};
use crate::model::{Alert, Group, LabelSet, Source, Status};

/// Payload kind named in error messages.
const PAYLOAD: &str = "alertmanager";

/// The only payload version this parser understands.
const VERSION: &str = "4";

/// Go's zero `time.Time`, which Alertmanager sends as `endsAt` of a firing alert.
const ZERO_TIME_PREFIX: &str = "0001-01-01T00:00:00";

/// Top-level fields of version 4; anything else goes to `Group.extra`.
const KNOWN_FIELDS: &[&str] = &[
    "receiver",
    "status",
    "alerts",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "version",
    "groupKey",
    "truncatedAlerts",
];

/// Parses an Alertmanager webhook body into a `Group`.
pub fn parse(body: &[u8]) -> Result<Group, InputError> {
    let map = parse_object(PAYLOAD, body)?;
    let root = Obj::root(PAYLOAD, &map);

    // Version first: a payload of another version is reported as such, not as a missing field.
    let version_field = root.field("version");
    let version = version_field.req_str()?;
    if version != VERSION {
        return Err(InputError::UnsupportedVersion {
            payload: PAYLOAD,
            version: quote(version),
        });
    }

    let key_field = root.field("groupKey");
    let key = key_field.req_str()?;
    if key.is_empty() {
        return Err(key_field.invalid("must not be empty"));
    }
    let receiver = unescape_receiver(root.req_str("receiver")?);
    let status = parse_status(&root.field("status"))?;

    let alert_fields = root.field("alerts").req_array()?;
    if alert_fields.is_empty() {
        return Err(root.field("alerts").invalid("must not be empty"));
    }
    let alerts = alert_fields
        .iter()
        .map(parse_alert)
        .collect::<Result<Vec<_>, _>>()?;

    let truncated_alerts = root.field("truncatedAlerts").opt_u64()?.unwrap_or(0);
    let external_url = root
        .opt_str("externalURL")?
        .filter(|s| !s.is_empty())
        .map(str::to_owned);

    let dedup_key = dedup_key(key, &receiver, status, truncated_alerts, &alerts);
    Ok(Group {
        source: Source::Alertmanager,
        key: key.to_owned(),
        status,
        receiver: Some(receiver),
        group_labels: root.field("groupLabels").label_set()?,
        common_labels: root.field("commonLabels").label_set()?,
        common_annotations: root.field("commonAnnotations").label_set()?,
        external_url,
        alerts,
        truncated_alerts,
        extra: extra_fields(&root),
        dedup_key,
    })
}

/// One element of `alerts[]`.
fn parse_alert(field: &Field<'_>) -> Result<Alert, InputError> {
    let obj = field.req_obj()?;
    let generator_url = obj
        .opt_str("generatorURL")?
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(Alert {
        status: parse_status(&obj.field("status"))?,
        labels: obj.field("labels").label_set()?,
        annotations: obj.field("annotations").label_set()?,
        starts_at: timestamp(obj.opt_str("startsAt")?),
        ends_at: timestamp(obj.opt_str("endsAt")?),
        generator_url,
        fingerprint: obj.req_str("fingerprint")?.to_owned(),
    })
}

/// `"firing"` or `"resolved"`.
fn parse_status(field: &Field<'_>) -> Result<Status, InputError> {
    match field.req_str()? {
        "firing" => Ok(Status::Firing),
        "resolved" => Ok(Status::Resolved),
        other => Err(field.invalid(format!(
            "must be \"firing\" or \"resolved\", got {}",
            quote(other)
        ))),
    }
}

/// A timestamp as received, or `None` for Go's zero time (Alertmanager hides the end of a
/// still-firing alert that way) and for an empty string.
fn timestamp(raw: Option<&str>) -> Option<String> {
    raw.filter(|s| !s.is_empty() && !s.starts_with(ZERO_TIME_PREFIX))
        .map(str::to_owned)
}

/// Undoes Go's `regexp.QuoteMeta`, which Alertmanager applies to the receiver name
/// (`team\.payments` → `team.payments`): a backslash escapes the character after it. A lone
/// trailing backslash cannot come from QuoteMeta and is kept as is.
pub fn unescape_receiver(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push(next),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Top-level fields this parser does not know, as strings for templates: strings as they
/// are, numbers and booleans in their JSON spelling, arrays and objects as compact JSON;
/// `null` is skipped.
fn extra_fields(root: &Obj<'_>) -> LabelSet {
    root.entries()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .filter_map(|(k, v)| {
            let text = match v {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((k.clone(), text))
        })
        .collect()
}

/// The dedup key of a group state: lowercase hex SHA-256 over a canonical encoding of
///
/// - the group key and the (unescaped) receiver: which group, for which receiver;
/// - the group status and `truncatedAlerts`: a new alert beyond `max_alerts` changes only
///   the count, and must not be swallowed;
/// - for each alert, sorted by fingerprint (Alertmanager's order is not guaranteed between
///   instances): fingerprint, status, startsAt, endsAt (absent for firing alerts), labels and
///   annotations.
///
/// Left out on purpose, because they differ between the two members of an HA pair or between
/// a retry and the original without the group's state changing: `externalURL` (each instance's
/// own address), `extra` fields such as `notification_reason`, and `version`. `groupLabels`,
/// `commonLabels`, `commonAnnotations` are derived from what is hashed; `generatorURL` comes
/// from Prometheus and says nothing about the state.
///
/// Encoding: a domain tag, then every string as its byte length (u64 big-endian) followed by
/// its bytes, optional strings behind a 0/1 tag, maps as their entry count then sorted
/// entries. Length prefixes make it unambiguous: no two different states encode alike (a
/// label `a="b,c"` cannot be confused with two labels). The tag separates this hash from
/// Sentry's body hash (a Sentry body is JSON and cannot start with it).
pub fn dedup_key(
    group_key: &str,
    receiver: &str,
    status: Status,
    truncated_alerts: u64,
    alerts: &[Alert],
) -> String {
    let mut encoded: Vec<(&str, Vec<u8>)> = alerts
        .iter()
        .map(|a| {
            let mut buf = Vec::new();
            put_str(&mut buf, &a.fingerprint);
            put_str(&mut buf, a.status.as_str());
            put_opt(&mut buf, a.starts_at.as_deref());
            put_opt(&mut buf, a.ends_at.as_deref());
            put_map(&mut buf, &a.labels);
            put_map(&mut buf, &a.annotations);
            (a.fingerprint.as_str(), buf)
        })
        .collect();
    // By fingerprint, then by the whole encoding so that even duplicate fingerprints (which
    // Alertmanager never sends) order deterministically.
    encoded.sort();

    let mut h = Sha256::new();
    h.update(b"beacon alertmanager group state v1\0");
    let mut head = Vec::new();
    put_str(&mut head, group_key);
    put_str(&mut head, receiver);
    put_str(&mut head, status.as_str());
    head.extend_from_slice(&truncated_alerts.to_be_bytes());
    head.extend_from_slice(&(encoded.len() as u64).to_be_bytes());
    h.update(&head);
    for (_, buf) in &encoded {
        h.update(buf);
    }
    hex::encode(h.finalize())
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_opt(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            put_str(buf, s);
        }
    }
}

fn put_map(buf: &mut Vec<u8>, m: &LabelSet) {
    buf.extend_from_slice(&(m.len() as u64).to_be_bytes());
    for (k, v) in m {
        put_str(buf, k);
        put_str(buf, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"version":"4","groupKey":"{}:{a=\"1\"}","receiver":"team\\.a","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A"},"fingerprint":"f1","startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}"#;

    fn with(field: &str, value: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(MINIMAL).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            match serde_json::from_str(value) {
                Ok(val) => {
                    obj.insert(field.to_owned(), val);
                }
                Err(_) => {
                    obj.remove(field);
                }
            }
        }
        v.to_string()
    }

    fn err(body: &str) -> String {
        match parse(body.as_bytes()) {
            Ok(_) => String::from("parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_a_minimal_payload() -> Result<(), InputError> {
        let g = parse(MINIMAL.as_bytes())?;
        assert_eq!(g.receiver.as_deref(), Some("team.a"));
        assert_eq!(g.key, "{}:{a=\"1\"}");
        assert_eq!(g.alerts.len(), 1);
        assert_eq!(g.alerts[0].ends_at, None);
        assert_eq!(
            g.alerts[0].starts_at.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        assert_eq!(g.truncated_alerts, 0);
        assert!(g.common_labels.is_empty());
        assert_eq!(g.external_url, None);
        assert_eq!(g.dedup_key.len(), 64);
        Ok(())
    }

    #[test]
    fn unescapes_quote_meta() {
        assert_eq!(unescape_receiver(r"team\.payments"), "team.payments");
        assert_eq!(unescape_receiver(r"a\\b\+c\(d\)"), r"a\b+c(d)");
        assert_eq!(unescape_receiver("plain"), "plain");
        assert_eq!(unescape_receiver("trailing\\"), "trailing\\");
    }

    #[test]
    fn version_must_be_4() {
        assert_eq!(
            err(&with("version", "\"3\"")),
            "alertmanager payload: unsupported version \"3\" (only version \"4\" is supported)"
        );
        assert_eq!(
            err(&with("version", "4")),
            "alertmanager payload: field \"version\" must be a string, got a number"
        );
        assert_eq!(
            err(&with("version", "-")),
            "alertmanager payload: missing field \"version\""
        );
    }

    #[test]
    fn required_fields_are_named() {
        assert_eq!(
            err(&with("groupKey", "-")),
            "alertmanager payload: missing field \"groupKey\""
        );
        assert_eq!(
            err(&with("groupKey", "\"\"")),
            "alertmanager payload: field \"groupKey\" must not be empty"
        );
        assert_eq!(
            err(&with("receiver", "-")),
            "alertmanager payload: missing field \"receiver\""
        );
        assert_eq!(
            err(&with("alerts", "[]")),
            "alertmanager payload: field \"alerts\" must not be empty"
        );
        assert_eq!(
            err(&with("alerts", "{}")),
            "alertmanager payload: field \"alerts\" must be an array, got an object"
        );
        assert_eq!(
            err(&with("status", "\"pending\"")),
            "alertmanager payload: field \"status\" must be \"firing\" or \"resolved\", got \
             \"pending\""
        );
        assert_eq!(
            err(&with("alerts", r#"[{"status":"firing","labels":{}}]"#)),
            "alertmanager payload: missing field \"alerts[0].fingerprint\""
        );
        assert_eq!(
            err(&with(
                "alerts",
                r#"[{"status":"firing","labels":[],"fingerprint":"x"}]"#
            )),
            "alertmanager payload: field \"alerts[0].labels\" must be an object, got an array"
        );
        assert_eq!(
            err(&with("truncatedAlerts", "1.5")),
            "alertmanager payload: field \"truncatedAlerts\" must be a non-negative integer, \
             got 1.5"
        );
    }

    #[test]
    fn unknown_fields_go_to_extra() -> Result<(), InputError> {
        let body = with("notification_reason", "\"repeat_interval\"");
        let body = {
            let mut v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("future".into(), serde_json::json!({"x": [1, true]}));
                o.insert("count".into(), serde_json::json!(3));
                o.insert("nothing".into(), serde_json::Value::Null);
            }
            v.to_string()
        };
        let g = parse(body.as_bytes())?;
        let extra: Vec<(&str, &str)> = g
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            extra,
            [
                ("count", "3"),
                ("future", "{\"x\":[1,true]}"),
                ("notification_reason", "repeat_interval"),
            ]
        );
        // Extra fields and externalURL do not change the dedup key.
        let plain = parse(with("externalURL", "\"http://am-2:9093\"").as_bytes())?;
        assert_eq!(g.dedup_key, plain.dedup_key);
        Ok(())
    }

    #[test]
    fn dedup_key_ignores_alert_order_but_not_state() {
        let a = |fp: &str, status: Status| Alert {
            status,
            labels: LabelSet::from([("alertname".to_owned(), fp.to_owned())]),
            annotations: LabelSet::new(),
            starts_at: Some("t0".into()),
            ends_at: None,
            generator_url: None,
            fingerprint: fp.to_owned(),
        };
        let k = |alerts: &[Alert], truncated: u64| {
            dedup_key("g", "r", Status::Firing, truncated, alerts)
        };
        let x = a("x", Status::Firing);
        let y = a("y", Status::Firing);
        assert_eq!(k(&[x.clone(), y.clone()], 0), k(&[y.clone(), x.clone()], 0));
        assert_ne!(k(&[x.clone(), y.clone()], 0), k(&[x.clone(), y.clone()], 1));
        assert_ne!(
            k(&[x.clone(), y.clone()], 0),
            k(std::slice::from_ref(&x), 0)
        );
        assert_ne!(
            k(&[x.clone(), y.clone()], 0),
            k(&[x.clone(), a("y", Status::Resolved)], 0)
        );
        let mut annotated = x.clone();
        annotated.annotations.insert("summary".into(), "s".into());
        assert_ne!(k(std::slice::from_ref(&x), 0), k(&[annotated], 0));
        // Length prefixes: moving a byte between adjacent strings changes the key.
        assert_ne!(
            dedup_key("ab", "c", Status::Firing, 0, std::slice::from_ref(&x)),
            dedup_key("a", "bc", Status::Firing, 0, &[x])
        );
    }
}
