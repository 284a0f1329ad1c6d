//! Sentry webhooks parsed into a `Group` of one `Alert`: the integration-platform resources
//! (`issue`, `event_alert`, `metric_alert`, `error`, `comment`, `installation`, named by the
//! `Sentry-Hook-Resource` header) and the legacy "WebHooks" plugin payload.
//!
//! What every Sentry group looks like:
//!
//! - Labels (also the group's `common_labels`, since the group has one alert):
//!   `source="sentry"`, `resource` (`legacy` for the plugin), `action` (`triggered` for the
//!   plugin), `alertname`, `severity`, and where the payload has them `project` (slug),
//!   `level` and `environment`.
//! - `alertname`: the alert rule's name for `event_alert`, `metric_alert` and the plugin (so
//!   routes can match a rule); otherwise `SentryIssue`, `SentryError`, `SentryComment`,
//!   `SentryInstallation`, and `SentryWebhook` for resources this parser does not know.
//! - `severity`, in Alertmanager's usual vocabulary so one set of routes and templates serves
//!   both sources: Sentry levels `fatal` and `error` → `critical` (Sentry makes issues of
//!   errors; an error reaching a router was asked for), `warning` → `warning`, `info`, `debug`,
//!   `sample` → `info`, any other level → `warning`. Metric alerts: `critical`/`warning` from the
//!   action, and on `resolved` the highest trigger label of the rule (so the resolution carries
//!   the labels of what it resolves and routes the same way). `comment` and `installation` →
//!   `info`. The raw `level` label stays for finer routing.
//! - Annotations: `summary` (title), `description` (culprit, or message/comment text), `url`
//!   (the web URL), plus ids (`issue_id`, `short_id`, `event_id`, `comment_id`), `rule`,
//!   `assigned_to`, and `actor` when a person acted. `generator_url` is the Sentry web URL.
//! - Status: `resolved` for `issue`/`resolved` and `metric_alert`/`resolved`, firing otherwise
//!   (an ignored or archived issue is a change worth a message, not a resolution).
//! - Group key, deterministic so firing and resolved land in the same thread: the object whose
//!   lifecycle the webhook reports. `issue`, `event_alert`, `error` and the plugin all concern
//!   an issue: `sentry:issue:<issue id>` (an alert rule firing on issue 42 and issue 42 being
//!   resolved are one thread). `metric_alert`: `sentry:metric_alert:<incident id>`. `comment`:
//!   `sentry:comment:<issue id>` (its own thread, so a comment never reopens a resolved issue's
//!   thread). `installation`: `sentry:installation:<uuid>`. Unknown resources:
//!   `sentry:<resource>:<body hash>`, one group per webhook.
//! - `dedup_key`: hex SHA-256 of the raw body, so the same body retried is sent once.
//! - The alert's `fingerprint`: the first 16 hex digits of the SHA-256 of the group key.
//!
//! Unknown resources and actions are accepted (Sentry adds them over time; failing them would
//! make Sentry count errors against the integration) and left to routing.

use super::{parse_object, sha256_hex, InputError, Obj};
use crate::model::{Alert, Group, LabelSet, Source, Status};

/// Parses a Sentry webhook. `resource` is the `Sentry-Hook-Resource` header; the legacy
/// plugin sends none, so `None` means a legacy plugin payload (see `parse_legacy`).
pub fn parse(resource: Option<&str>, body: &[u8]) -> Result<Group, InputError> {
    let Some(resource) = resource else {
        return parse_legacy(body);
    };
    let resource = resource.trim();
    let payload = payload_name(resource);
    if resource.is_empty() {
        return Err(InputError::BadHeader {
            payload,
            header: "Sentry-Hook-Resource",
            problem: "is empty",
        });
    }
    let map = parse_object(payload, body)?;
    let root = Obj::root(payload, &map);
    let action = root.req_str("action")?;
    let data = root.req_obj("data")?;
    // Who acted, when it was a person ("resolved by ..."); Sentry itself acting is no news.
    let actor = match root.opt_obj("actor")? {
        Some(a) if a.opt_str("type")? == Some("user") => a.opt_text("name")?,
        _ => None,
    };
    let mut d = match resource {
        "issue" => issue(&data, action)?,
        "event_alert" => event_alert(&data)?,
        "metric_alert" => metric_alert(&data, action)?,
        "error" => error(&data)?,
        "comment" => comment(&data, action)?,
        "installation" => installation(&data, &root, action)?,
        other => Derived {
            key: format!("sentry:{other}:{}", &sha256_hex(body)[..16]),
            alertname: "SentryWebhook".into(),
            severity: "info".into(),
            summary: Some(format!("Sentry {other} webhook: {action}")),
            ..Derived::default()
        },
    };
    if let Some(actor) = actor {
        d.annotations.insert("actor".into(), actor.to_owned());
    }
    Ok(d.into_group(resource, action, body))
}

/// Parses a legacy "WebHooks" plugin payload: one issue, always firing (the plugin only posts
/// when an alert rule fires), authenticated by a URL token rather than a signature.
pub fn parse_legacy(body: &[u8]) -> Result<Group, InputError> {
    const PAYLOAD: &str = "sentry legacy plugin";
    let map = parse_object(PAYLOAD, body)?;
    let root = Obj::root(PAYLOAD, &map);
    let issue_id = root.field("id").req_id()?;
    let event = root.opt_obj("event")?;
    let ev = |key: &str| -> Result<Option<&str>, InputError> {
        match &event {
            Some(e) => e.opt_text(key),
            None => Ok(None),
        }
    };
    let rules: Vec<String> = root
        .field("triggering_rules")
        .opt_array()?
        .iter()
        .filter_map(|f| f.opt_str().transpose())
        .collect::<Result<Vec<&str>, _>>()?
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let level = root.opt_text("level")?.or(ev("level")?);
    let project = match root.opt_text("project_slug")? {
        Some(p) => Some(p),
        None => root.opt_text("project")?,
    };
    let url = root.opt_text("url")?;
    let mut d = Derived {
        key: format!("sentry:issue:{issue_id}"),
        alertname: rules
            .first()
            .cloned()
            .unwrap_or_else(|| "SentryIssue".into()),
        severity: severity_from_level(level),
        project: project.map(str::to_owned),
        level: level.map(str::to_owned),
        environment: ev("environment")?.map(str::to_owned),
        summary: ev("title")?
            .or(root.opt_text("message")?)
            .map(str::to_owned),
        description: root.opt_text("culprit")?.map(str::to_owned),
        url: url.map(str::to_owned),
        starts_at: ev("datetime")?.map(str::to_owned),
        ..Derived::default()
    };
    d.annotations.insert("issue_id".into(), issue_id);
    if let Some(id) = ev("event_id")? {
        d.annotations.insert("event_id".into(), id.to_owned());
    }
    if !rules.is_empty() {
        d.annotations.insert("rule".into(), rules.join(", "));
    }
    Ok(d.into_group("legacy", "triggered", body))
}

/// Payload kind named in error messages, per resource.
fn payload_name(resource: &str) -> &'static str {
    match resource {
        "issue" => "sentry issue",
        "event_alert" => "sentry event_alert",
        "metric_alert" => "sentry metric_alert",
        "error" => "sentry error",
        "comment" => "sentry comment",
        "installation" => "sentry installation",
        _ => "sentry",
    }
}

/// What a resource parser derives; `into_group` turns it into the common shape.
#[derive(Debug, Default)]
struct Derived {
    key: String,
    resolved: bool,
    alertname: String,
    severity: String,
    project: Option<String>,
    level: Option<String>,
    environment: Option<String>,
    summary: Option<String>,
    description: Option<String>,
    url: Option<String>,
    /// Annotations beyond summary/description/url.
    annotations: LabelSet,
    starts_at: Option<String>,
    ends_at: Option<String>,
}

impl Derived {
    fn into_group(self, resource: &str, action: &str, body: &[u8]) -> Group {
        let status = if self.resolved {
            Status::Resolved
        } else {
            Status::Firing
        };
        let mut labels = LabelSet::new();
        labels.insert("source".into(), "sentry".into());
        labels.insert("resource".into(), resource.into());
        labels.insert("action".into(), action.into());
        labels.insert("alertname".into(), self.alertname.clone());
        labels.insert("severity".into(), self.severity);
        let optional = [
            ("project", self.project),
            ("level", self.level),
            ("environment", self.environment),
        ];
        for (name, value) in optional {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                labels.insert(name.into(), v);
            }
        }

        let mut annotations = self.annotations;
        let texts = [
            ("summary", self.summary),
            ("description", self.description),
            ("url", self.url.clone()),
        ];
        for (name, value) in texts {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                annotations.insert(name.into(), v);
            }
        }

        let alert = Alert {
            status,
            labels: labels.clone(),
            annotations: annotations.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            generator_url: self.url.filter(|u| !u.is_empty()),
            fingerprint: sha256_hex(self.key.as_bytes())[..16].to_owned(),
        };
        Group {
            source: Source::Sentry,
            key: self.key,
            status,
            receiver: None,
            group_labels: LabelSet::from([("alertname".to_owned(), self.alertname)]),
            common_labels: labels,
            common_annotations: annotations,
            external_url: None,
            alerts: vec![alert],
            truncated_alerts: 0,
            extra: LabelSet::new(),
            dedup_key: sha256_hex(body),
        }
    }
}

/// `severity` from a Sentry level (see the module docs for the mapping and why).
fn severity_from_level(level: Option<&str>) -> String {
    match level.map(str::to_ascii_lowercase).as_deref() {
        Some("fatal" | "error") => "critical",
        Some("info" | "debug" | "sample") => "info",
        _ => "warning",
    }
    .to_owned()
}

/// `issue`: created, resolved, assigned, ignored, archived, unresolved.
fn issue(data: &Obj<'_>, action: &str) -> Result<Derived, InputError> {
    let issue = data.req_obj("issue")?;
    let id = issue.field("id").req_id()?;
    let project = match issue.opt_obj("project")? {
        Some(p) => p.opt_text("slug")?,
        None => None,
    };
    let level = issue.opt_text("level")?;
    let url = match issue.opt_text("web_url")? {
        Some(u) => Some(u),
        None => issue.opt_text("permalink")?,
    };
    let short_id = issue.opt_text("shortId")?;
    let mut d = Derived {
        key: format!("sentry:issue:{id}"),
        resolved: action == "resolved",
        alertname: "SentryIssue".into(),
        severity: severity_from_level(level),
        project: project.map(str::to_owned),
        level: level.map(str::to_owned),
        summary: issue.opt_text("title")?.or(short_id).map(str::to_owned),
        description: issue.opt_text("culprit")?.map(str::to_owned),
        url: url.map(str::to_owned),
        starts_at: issue.opt_text("firstSeen")?.map(str::to_owned),
        ..Derived::default()
    };
    d.annotations.insert("issue_id".into(), id);
    if let Some(s) = short_id {
        d.annotations.insert("short_id".into(), s.to_owned());
    }
    if let Some(s) = issue.opt_text("substatus")? {
        d.annotations.insert("substatus".into(), s.to_owned());
    }
    if let Some(assignee) = issue.opt_obj("assignedTo")? {
        let who = match assignee.opt_text("name")? {
            Some(n) => Some(n),
            None => assignee.opt_text("email")?,
        };
        if let Some(who) = who {
            d.annotations.insert("assigned_to".into(), who.to_owned());
        }
    }
    Ok(d)
}

/// The parts of a serialized Sentry event that `event_alert` and `error` share.
fn from_event(event: &Obj<'_>) -> Result<Derived, InputError> {
    let level = match event.opt_text("level")? {
        Some(l) => Some(l.to_owned()),
        None => tag(event, "level")?,
    };
    let environment = match event.opt_text("environment")? {
        Some(e) => Some(e.to_owned()),
        None => tag(event, "environment")?,
    };
    let description = match event.opt_text("culprit")? {
        Some(c) => Some(c),
        None => event.opt_text("message")?,
    };
    let mut d = Derived {
        severity: severity_from_level(level.as_deref()),
        project: project_from_event_url(event.opt_text("url")?),
        level,
        environment,
        summary: event.opt_text("title")?.map(str::to_owned),
        description: description.map(str::to_owned),
        url: event.opt_text("web_url")?.map(str::to_owned),
        starts_at: event.opt_text("datetime")?.map(str::to_owned),
        ..Derived::default()
    };
    let issue_id = event.field("issue_id").opt_id()?;
    let event_id = event.field("event_id").opt_id()?;
    d.key = match (&issue_id, &event_id) {
        (Some(issue), _) => format!("sentry:issue:{issue}"),
        (None, Some(ev)) => format!("sentry:error:{ev}"),
        // Neither: report the one every documented payload has.
        (None, None) => return Err(event.field("issue_id").missing()),
    };
    if let Some(i) = issue_id {
        d.annotations.insert("issue_id".into(), i);
    }
    if let Some(e) = event_id {
        d.annotations.insert("event_id".into(), e);
    }
    Ok(d)
}

/// A value from an event's `tags`, which Sentry serializes as `[["key", "value"], ...]` (and
/// in some payloads as `[{"key": ..., "value": ...}]`). Malformed entries are skipped: tags
/// are only a fallback here.
fn tag(event: &Obj<'_>, name: &str) -> Result<Option<String>, InputError> {
    for t in event.field("tags").opt_array()? {
        if let Ok(pair) = t.opt_array() {
            let k = pair.first().and_then(|f| f.opt_str().ok().flatten());
            let v = pair.get(1).and_then(|f| f.opt_str().ok().flatten());
            if let (Some(k), Some(v)) = (k, v) {
                if k == name && !v.is_empty() {
                    return Ok(Some(v.to_owned()));
                }
            }
        } else if let Ok(Some(obj)) = t.opt_obj() {
            if obj.opt_str("key").ok().flatten() == Some(name) {
                if let Ok(Some(v)) = obj.opt_text("value") {
                    return Ok(Some(v.to_owned()));
                }
            }
        }
    }
    Ok(None)
}

/// The project slug from an event's API URL (`.../api/0/projects/<org>/<project>/events/<id>/`):
/// serialized events carry only the numeric project id, and routes want the slug.
fn project_from_event_url(url: Option<&str>) -> Option<String> {
    let url = url?;
    let rest = &url[url.find("/projects/")? + "/projects/".len()..];
    let mut parts = rest.split('/');
    let _org = parts.next()?;
    let project = parts.next()?;
    (!project.is_empty() && parts.next() == Some("events")).then(|| project.to_owned())
}

/// `event_alert`: an issue alert rule fired (action `triggered`).
fn event_alert(data: &Obj<'_>) -> Result<Derived, InputError> {
    let event = data.req_obj("event")?;
    let mut d = from_event(&event)?;
    let rule = match data.opt_text("triggered_rule")? {
        Some(r) => Some(r),
        None => match data.opt_obj("issue_alert")? {
            Some(a) => a.opt_text("title")?,
            None => None,
        },
    };
    d.alertname = rule.unwrap_or("SentryEventAlert").to_owned();
    if let Some(r) = rule {
        d.annotations.insert("rule".into(), r.to_owned());
    }
    Ok(d)
}

/// `error`: an error event was created.
fn error(data: &Obj<'_>) -> Result<Derived, InputError> {
    let event = data.req_obj("error")?;
    let mut d = from_event(&event)?;
    d.alertname = "SentryError".into();
    Ok(d)
}

/// `metric_alert`: critical, warning, resolved.
fn metric_alert(data: &Obj<'_>, action: &str) -> Result<Derived, InputError> {
    let incident = data.req_obj("metric_alert")?;
    let id = incident.field("id").req_id()?;
    let rule = incident.opt_obj("alert_rule")?;
    let (rule_name, environment, projects, highest_trigger) = match &rule {
        Some(r) => {
            let projects = r
                .field("projects")
                .opt_array()?
                .iter()
                .map(|f| f.opt_str())
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>();
            let mut highest: Option<&str> = None;
            for t in r.field("triggers").opt_array()? {
                let label = match t.opt_obj()? {
                    Some(t) => t.opt_text("label")?,
                    None => None,
                };
                match label {
                    Some("critical") => highest = Some("critical"),
                    Some("warning") if highest.is_none() => highest = Some("warning"),
                    _ => {}
                }
            }
            (
                r.opt_text("name")?,
                r.opt_text("environment")?,
                projects,
                highest,
            )
        }
        None => (None, None, Vec::new(), None),
    };
    let title = incident.opt_text("title")?;
    let severity = match action {
        "critical" => "critical",
        "warning" => "warning",
        _ => highest_trigger.unwrap_or("warning"),
    };
    let resolved = action == "resolved";
    let mut d = Derived {
        key: format!("sentry:metric_alert:{id}"),
        resolved,
        alertname: rule_name
            .or(title)
            .unwrap_or("SentryMetricAlert")
            .to_owned(),
        severity: severity.into(),
        // A rule can watch several projects; they are joined so `=~` matchers still work.
        project: (!projects.is_empty()).then(|| projects.join(",")),
        environment: environment.map(str::to_owned),
        summary: data
            .opt_text("description_title")?
            .or(title)
            .map(str::to_owned),
        description: data.opt_text("description_text")?.map(str::to_owned),
        url: data.opt_text("web_url")?.map(str::to_owned),
        starts_at: match incident.opt_text("date_started")? {
            Some(s) => Some(s.to_owned()),
            None => incident.opt_text("date_detected")?.map(str::to_owned),
        },
        ends_at: if resolved {
            incident.opt_text("date_closed")?.map(str::to_owned)
        } else {
            None
        },
        ..Derived::default()
    };
    if let Some(r) = rule_name {
        d.annotations.insert("rule".into(), r.to_owned());
    }
    Ok(d)
}

/// `comment`: created, updated, deleted on an issue.
fn comment(data: &Obj<'_>, action: &str) -> Result<Derived, InputError> {
    let issue_id = data.field("issue_id").req_id()?;
    let mut d = Derived {
        key: format!("sentry:comment:{issue_id}"),
        alertname: "SentryComment".into(),
        severity: "info".into(),
        project: data.opt_text("project_slug")?.map(str::to_owned),
        summary: Some(format!("Comment {action} on issue {issue_id}")),
        description: data.opt_text("comment")?.map(str::to_owned),
        starts_at: data.opt_text("timestamp")?.map(str::to_owned),
        ..Derived::default()
    };
    d.annotations.insert("issue_id".into(), issue_id);
    if let Some(c) = data.field("comment_id").opt_id()? {
        d.annotations.insert("comment_id".into(), c);
    }
    Ok(d)
}

/// `installation`: the integration was installed (created) or uninstalled (deleted).
fn installation(data: &Obj<'_>, root: &Obj<'_>, action: &str) -> Result<Derived, InputError> {
    let inst = data.req_obj("installation")?;
    // The uuid is in `data.installation` and, in every webhook, in the top-level
    // `installation`; either will do.
    let uuid = match inst.field("uuid").opt_id()? {
        Some(u) => u,
        None => match root.opt_obj("installation")? {
            Some(top) => top.field("uuid").req_id()?,
            None => inst.field("uuid").req_id()?,
        },
    };
    let app = match inst.opt_obj("app")? {
        Some(a) => a.opt_text("slug")?,
        None => None,
    };
    let org = match inst.opt_obj("organization")? {
        Some(o) => o.opt_text("slug")?,
        None => None,
    };
    let what = match action {
        "created" => "installed",
        "deleted" => "uninstalled",
        other => other,
    };
    let mut summary = format!("Sentry integration {} {what}", app.unwrap_or("app"));
    if let Some(org) = org {
        summary.push_str(&format!(" in {org}"));
    }
    let mut d = Derived {
        key: format!("sentry:installation:{uuid}"),
        alertname: "SentryInstallation".into(),
        severity: "info".into(),
        summary: Some(summary),
        ..Derived::default()
    };
    if let Some(status) = inst.opt_text("status")? {
        d.annotations
            .insert("installation_status".into(), status.to_owned());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label<'a>(g: &'a Group, name: &str) -> Option<&'a str> {
        g.alerts[0].labels.get(name).map(String::as_str)
    }

    #[test]
    fn issue_with_numeric_id_and_assignee() -> Result<(), InputError> {
        let body = br#"{"action":"assigned","data":{"issue":{"id":42,"title":"T","level":"fatal","project":{"slug":"p"},"assignedTo":{"type":"user","name":"Asha"}}},"actor":{"type":"user","name":"Ravi"}}"#;
        let g = parse(Some("issue"), body)?;
        assert_eq!(g.key, "sentry:issue:42");
        assert_eq!(g.status, Status::Firing);
        assert_eq!(label(&g, "severity"), Some("critical"));
        assert_eq!(label(&g, "action"), Some("assigned"));
        assert_eq!(label(&g, "project"), Some("p"));
        let ann = &g.alerts[0].annotations;
        assert_eq!(ann.get("assigned_to").map(String::as_str), Some("Asha"));
        assert_eq!(ann.get("actor").map(String::as_str), Some("Ravi"));
        Ok(())
    }

    #[test]
    fn severity_mapping() {
        assert_eq!(severity_from_level(Some("fatal")), "critical");
        assert_eq!(severity_from_level(Some("error")), "critical");
        assert_eq!(severity_from_level(Some("ERROR")), "critical");
        assert_eq!(severity_from_level(Some("warning")), "warning");
        assert_eq!(severity_from_level(Some("info")), "info");
        assert_eq!(severity_from_level(Some("debug")), "info");
        assert_eq!(severity_from_level(Some("odd")), "warning");
        assert_eq!(severity_from_level(None), "warning");
    }

    #[test]
    fn project_slug_from_event_url() {
        let u = "https://sentry.io/api/0/projects/org/loan-api/events/abc/";
        assert_eq!(project_from_event_url(Some(u)).as_deref(), Some("loan-api"));
        assert_eq!(
            project_from_event_url(Some("https://x/projects/org/")),
            None
        );
        assert_eq!(project_from_event_url(Some("https://x/other")), None);
        assert_eq!(project_from_event_url(None), None);
    }

    #[test]
    fn unknown_resource_is_accepted() -> Result<(), InputError> {
        let g = parse(Some("seer"), br#"{"action":"done","data":{}}"#)?;
        assert!(g.key.starts_with("sentry:seer:"));
        assert_eq!(label(&g, "alertname"), Some("SentryWebhook"));
        assert_eq!(label(&g, "resource"), Some("seer"));
        Ok(())
    }

    #[test]
    fn errors_name_resource_and_field() {
        let e = |r: Option<&str>, b: &[u8]| parse(r, b).err().map(|e| e.to_string());
        assert_eq!(
            e(
                Some("issue"),
                br#"{"action":"created","data":{"issue":{}}}"#
            )
            .as_deref(),
            Some("sentry issue payload: missing field \"data.issue.id\"")
        );
        assert_eq!(
            e(Some("issue"), br#"{"data":{}}"#).as_deref(),
            Some("sentry issue payload: missing field \"action\"")
        );
        assert_eq!(
            e(
                Some("metric_alert"),
                br#"{"action":"critical","data":{"metric_alert":{"id":1.5}}}"#
            )
            .as_deref(),
            Some(
                "sentry metric_alert payload: field \"data.metric_alert.id\" must be a string \
                 or an integer, got a number"
            )
        );
        assert_eq!(
            e(
                Some("event_alert"),
                br#"{"action":"triggered","data":{"event":{}}}"#
            )
            .as_deref(),
            Some("sentry event_alert payload: missing field \"data.event.issue_id\"")
        );
        assert_eq!(
            e(Some(" "), b"{}").as_deref(),
            Some("sentry payload: header \"Sentry-Hook-Resource\" is empty")
        );
        assert_eq!(
            e(None, br#"{"message":"x"}"#).as_deref(),
            Some("sentry legacy plugin payload: missing field \"id\"")
        );
    }
}
