//! Custom message templates per receiver (minijinja): compiled once when the config loads,
//! rendered per message, never fatal to delivery.
//!
//! A receiver may give up to three templates ([`TemplateSources`]):
//!
//! * `slack_text`: the Slack message text (mrkdwn). Without `slack_blocks` the message is this
//!   text alone; with it, this is the notification fallback text.
//! * `slack_blocks`: a JSON array of Block Kit blocks (or `{"blocks": [...]}`). Use the `tojson`
//!   filter for values (`"text": {{ summary | slack_escape | tojson }}`).
//! * `google_chat_text`: the Google Chat message text (sent without a card).
//!
//! # Context
//!
//! The group, as in `model::Group`: `status`, `source`, `receiver`, `group_key`,
//! `group_labels`, `common_labels`, `common_annotations`, `external_url`, `alerts` (each with
//! `status`, `labels`, `annotations`, `starts_at`, `ends_at`, `generator_url`, `fingerprint`,
//! plus helpers `marker`, `summary`, `description`, `headline`, `display_labels`,
//! `runbook_url`, `source_url`, `time_note`), `truncated_alerts`, `extra`; and helper values:
//! `firing` / `resolved` (the alerts by status), `firing_count`, `resolved_count`, `title`
//! (the default title line), `alertname`, `severity` (label value), `severity_level`
//! (`critical`, `error`, `warning`, `info`, `unknown`), `status_marker`, `status_line`,
//! `summary`, `runbook_url`, `silence_url`, `alerts_url`, `display_labels` (common labels minus
//! noise).
//!
//! Filters besides minijinja's built-ins: `slack_escape`, `tojson`, `truncate(n)` (chars, never
//! splitting one), `display_time`.
//!
//! # Escaping
//!
//! In `slack_text` every `{{ value }}` is Slack-escaped (`&`, `<`, `>`) so alert text cannot
//! mention `@channel` or forge links; write links in the template itself
//! (`<{{ silence_url }}|Silence>` works: Slack decodes `&amp;` in URLs). In `google_chat_text`
//! values have `<` `>` replaced by `‹` `›` (Chat text has no escape syntax and
//! `<users/all>` would mention everyone). `| safe` opts out. `slack_blocks` does no automatic
//! escaping: it is JSON, so use `tojson`.
//!
//! # Failure
//!
//! A template that does not compile, fails while rendering (undefined filter, runs out of
//! fuel: a bound on the work one render may do) or renders unusable output makes the
//! integration send its default message and report the error (see `render::Rendered`).
//! Output beyond [`MAX_OUTPUT_BYTES`] is cut there; each integration then truncates to its own
//! limits.

use std::fmt;
use std::io;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use crate::model::{Alert, Group, LabelSet, Source, Status};

/// Rendered output is cut at this many bytes (then at each integration's own limit).
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Instructions one render may execute: generous for any real template over hundreds of
/// alerts, but a runaway loop stops in well under a second instead of stalling delivery.
pub const FUEL: u64 = 2_000_000;

const SLACK_ESCAPE: &str = "slack";
const CHAT_ESCAPE: &str = "google_chat";

/// Which message part a template produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateKind {
    SlackText,
    SlackBlocks,
    GoogleChatText,
}

impl TemplateKind {
    /// Every kind, in config order.
    pub const ALL: [TemplateKind; 3] = [
        TemplateKind::SlackText,
        TemplateKind::SlackBlocks,
        TemplateKind::GoogleChatText,
    ];

    /// The template's name (as in config and error messages).
    pub fn name(self) -> &'static str {
        match self {
            TemplateKind::SlackText => "slack_text",
            TemplateKind::SlackBlocks => "slack_blocks",
            TemplateKind::GoogleChatText => "google_chat_text",
        }
    }

    fn index(self) -> usize {
        match self {
            TemplateKind::SlackText => 0,
            TemplateKind::SlackBlocks => 1,
            TemplateKind::GoogleChatText => 2,
        }
    }
}

impl fmt::Display for TemplateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A receiver's template sources, as written in the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSources {
    pub slack_text: Option<String>,
    pub slack_blocks: Option<String>,
    pub google_chat_text: Option<String>,
}

impl TemplateSources {
    /// The source for one kind, if given.
    pub fn get(&self, kind: TemplateKind) -> Option<&str> {
        match kind {
            TemplateKind::SlackText => self.slack_text.as_deref(),
            TemplateKind::SlackBlocks => self.slack_blocks.as_deref(),
            TemplateKind::GoogleChatText => self.google_chat_text.as_deref(),
        }
    }

    /// Whether no template is given at all.
    pub fn is_empty(&self) -> bool {
        TemplateKind::ALL.iter().all(|k| self.get(*k).is_none())
    }
}

/// Why a template was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Syntax error, found when the config loads.
    #[error("template {kind}: does not compile: {message}")]
    Compile { kind: TemplateKind, message: String },
    /// Failed while rendering a message.
    #[error("template {kind}: failed to render: {message}")]
    Render { kind: TemplateKind, message: String },
    /// Rendered, but the output cannot be sent (empty text, invalid blocks JSON).
    #[error("template {kind}: {message}")]
    Output { kind: TemplateKind, message: String },
}

impl TemplateError {
    /// Which template failed.
    pub fn kind(&self) -> TemplateKind {
        match self {
            TemplateError::Compile { kind, .. }
            | TemplateError::Render { kind, .. }
            | TemplateError::Output { kind, .. } => *kind,
        }
    }
}

/// A receiver's compiled templates. Cheap to share between delivery workers (`Send + Sync`).
#[derive(Clone)]
pub struct Templates {
    env: Environment<'static>,
    configured: [bool; 3],
    compile_errors: Vec<TemplateError>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let configured: Vec<&str> = TemplateKind::ALL
            .iter()
            .filter(|k| self.configured[k.index()])
            .map(|k| k.name())
            .collect();
        f.debug_struct("Templates")
            .field("configured", &configured)
            .field("compile_errors", &self.compile_errors)
            .finish()
    }
}

impl Templates {
    /// Compiles every given template. A template that does not compile is remembered with its
    /// error: each render of it then reports that error and the default message goes out.
    /// Config loading uses [`Templates::check`] to reject such a config up front.
    pub fn compile(sources: &TemplateSources) -> Templates {
        let mut env = new_environment();
        let mut configured = [false; 3];
        let mut compile_errors = Vec::new();
        for kind in TemplateKind::ALL {
            let Some(src) = sources.get(kind) else {
                continue;
            };
            configured[kind.index()] = true;
            if let Err(e) = env.add_template_owned(kind.name(), src.to_string()) {
                compile_errors.push(TemplateError::Compile {
                    kind,
                    message: error_message(&e),
                });
            }
        }
        Templates {
            env,
            configured,
            compile_errors,
        }
    }

    /// Compiles and fails with every compile error (for `check-config` and reloads).
    pub fn check(sources: &TemplateSources) -> Result<Templates, Vec<TemplateError>> {
        let t = Templates::compile(sources);
        if t.compile_errors.is_empty() {
            Ok(t)
        } else {
            Err(t.compile_errors)
        }
    }

    /// The compile errors found by [`Templates::compile`].
    pub fn compile_errors(&self) -> &[TemplateError] {
        &self.compile_errors
    }

    /// Whether the receiver gave a template of this kind (even a broken one).
    pub fn is_configured(&self, kind: TemplateKind) -> bool {
        self.configured[kind.index()]
    }

    /// Renders one template for a group: `None` if not configured, else its output (cut at
    /// [`MAX_OUTPUT_BYTES`]) or why it failed.
    pub fn render(
        &self,
        kind: TemplateKind,
        group: &Group,
    ) -> Option<Result<String, TemplateError>> {
        if !self.is_configured(kind) {
            return None;
        }
        if let Some(e) = self.compile_errors.iter().find(|e| e.kind() == kind) {
            return Some(Err(e.clone()));
        }
        Some(self.render_configured(kind, group))
    }

    fn render_configured(
        &self,
        kind: TemplateKind,
        group: &Group,
    ) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template(kind.name())
            .map_err(|e| TemplateError::Render {
                kind,
                message: error_message(&e),
            })?;
        let mut out = CappedWriter::new(MAX_OUTPUT_BYTES);
        let result = tmpl.render_captured_to(context(group), &mut out);
        match result {
            Ok(_) => {}
            // Our writer refused more output: keep what fits, like any other over-long text.
            Err(_) if out.overflowed => {}
            Err(e) => {
                return Err(TemplateError::Render {
                    kind,
                    message: error_message(&e),
                })
            }
        }
        Ok(out.into_string())
    }
}

/// The minijinja environment shared by a receiver's templates.
fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    // `alert.annotations.missing.x` renders empty instead of failing, like Alertmanager's Go
    // templates print `<no value>` rather than dropping the notification.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|name| match name {
        "slack_text" => AutoEscape::Custom(SLACK_ESCAPE),
        "google_chat_text" => AutoEscape::Custom(CHAT_ESCAPE),
        _ => AutoEscape::None,
    });
    env.set_formatter(format_value);
    env.add_filter("slack_escape", |s: String| {
        super::slack_text_escape(&s).into_owned()
    });
    env.add_filter("tojson", tojson);
    env.add_filter("truncate", |s: String, n: usize| {
        super::truncate_chars(&s, n).into_owned()
    });
    env.add_filter("display_time", |s: String| super::display_time(&s));
    env
}

/// Writes `{{ value }}` with the template's escaping (see the module docs).
fn format_value(out: &mut Output, state: &State, value: &Value) -> Result<(), minijinja::Error> {
    let escape: Option<fn(&str) -> std::borrow::Cow<'_, str>> = match state.auto_escape() {
        AutoEscape::Custom(SLACK_ESCAPE) => Some(super::slack_text_escape),
        AutoEscape::Custom(CHAT_ESCAPE) => Some(super::chat_text_sanitize),
        _ => None,
    };
    match escape {
        Some(escape) if !value.is_safe() => {
            if value.is_undefined() {
                return Ok(());
            }
            let s = value.to_string();
            out.write_str(&escape(&s)).map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write failed")
            })
        }
        Some(_) => {
            let s = value.to_string();
            out.write_str(&s).map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write failed")
            })
        }
        None => minijinja::escape_formatter(out, state, value),
    }
}

/// `tojson`: the value as JSON, marked safe (minijinja's own needs its `json` feature).
fn tojson(value: Value) -> Result<Value, minijinja::Error> {
    serde_json::to_string(&value)
        .map(Value::from_safe_string)
        .map_err(|e| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("cannot convert to json: {e}"),
            )
        })
}

/// One line, as precise as minijinja gives it (`undefined filter "x" (in slack_text:1)`).
fn error_message(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    if let Some(detail) = e.detail() {
        if !msg.contains(detail) {
            msg.push_str(": ");
            msg.push_str(detail);
        }
    }
    msg.replace('\n', " ")
}

/// Collects output up to a cap, then refuses more so rendering stops early.
struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
    overflowed: bool,
}

impl CappedWriter {
    fn new(cap: usize) -> Self {
        CappedWriter {
            buf: Vec::new(),
            cap,
            overflowed: false,
        }
    }

    /// The output, cut before a partial UTF-8 character and marked with `…` when cut.
    fn into_string(self) -> String {
        let mut s = match String::from_utf8(self.buf) {
            Ok(s) => s,
            Err(e) => {
                // Only the cut can split a character: everything before it came from `&str`s.
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).unwrap_or_default()
            }
        };
        if self.overflowed {
            s.push_str(super::ELLIPSIS);
        }
        s
    }
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.cap.saturating_sub(self.buf.len());
        if data.len() > room {
            self.buf.extend_from_slice(&data[..room]);
            self.overflowed = true;
            return Err(io::Error::other("template output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Context

#[derive(Serialize)]
struct AlertContext<'a> {
    #[serde(flatten)]
    alert: &'a Alert,
    marker: &'static str,
    summary: Option<&'a str>,
    description: Option<&'a str>,
    headline: String,
    display_labels: LabelSet,
    runbook_url: Option<&'a str>,
    source_url: Option<&'a str>,
    time_note: Option<String>,
}

#[derive(Serialize)]
struct Context<'a> {
    status: &'static str,
    source: &'static str,
    receiver: Option<&'a str>,
    group_key: &'a str,
    group_labels: &'a LabelSet,
    common_labels: &'a LabelSet,
    common_annotations: &'a LabelSet,
    external_url: Option<&'a str>,
    alerts: Vec<AlertContext<'a>>,
    firing: Vec<AlertContext<'a>>,
    resolved: Vec<AlertContext<'a>>,
    truncated_alerts: u64,
    extra: &'a LabelSet,
    dedup_key: &'a str,
    firing_count: usize,
    resolved_count: usize,
    title: String,
    alertname: String,
    severity: Option<&'a str>,
    severity_level: &'static str,
    status_marker: &'static str,
    status_line: String,
    summary: Option<&'a str>,
    runbook_url: Option<&'a str>,
    silence_url: Option<String>,
    alerts_url: Option<String>,
    display_labels: LabelSet,
}

fn alert_context<'a>(group: &Group, alert: &'a Alert) -> AlertContext<'a> {
    AlertContext {
        alert,
        marker: match alert.status {
            Status::Firing => super::FIRING_ALERT_MARKER,
            Status::Resolved => super::RESOLVED_MARKER,
        },
        summary: super::alert_summary(alert),
        description: super::alert_description(alert),
        headline: super::alert_headline(group, alert).into_owned(),
        display_labels: super::alert_display_labels(group, alert)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        runbook_url: super::runbook_url(&alert.annotations),
        source_url: super::source_url(alert),
        time_note: super::alert_time_note(alert),
    }
}

fn context(group: &Group) -> Context<'_> {
    let (severity, severity_raw) = super::group_severity(group);
    let counts = super::counts(group);
    let by_status = |s: Status| {
        group
            .alerts
            .iter()
            .filter(|a| a.status == s)
            .map(|a| alert_context(group, a))
            .collect::<Vec<_>>()
    };
    Context {
        status: group.status.as_str(),
        source: match group.source {
            Source::Alertmanager => "alertmanager",
            Source::Sentry => "sentry",
        },
        receiver: group.receiver.as_deref(),
        group_key: &group.key,
        group_labels: &group.group_labels,
        common_labels: &group.common_labels,
        common_annotations: &group.common_annotations,
        external_url: group.external_url.as_deref(),
        alerts: group
            .alerts
            .iter()
            .map(|a| alert_context(group, a))
            .collect(),
        firing: by_status(Status::Firing),
        resolved: by_status(Status::Resolved),
        truncated_alerts: group.truncated_alerts,
        extra: &group.extra,
        dedup_key: &group.dedup_key,
        firing_count: counts.firing,
        resolved_count: counts.resolved,
        title: super::title(group),
        alertname: super::group_name(group),
        severity: severity_raw,
        severity_level: match severity {
            super::Severity::Critical => "critical",
            super::Severity::Error => "error",
            super::Severity::Warning => "warning",
            super::Severity::Info => "info",
            super::Severity::Unknown => "unknown",
        },
        status_marker: super::status_marker(group),
        status_line: super::status_line(group),
        summary: super::group_summary(group),
        runbook_url: super::group_runbook(group),
        silence_url: super::silence_url(group),
        alerts_url: super::alerts_url(group),
        display_labels: super::group_display_labels(group)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> Group {
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), "DiskFull".into());
        labels.insert("instance".into(), "db-1".into());
        let mut annotations = LabelSet::new();
        annotations.insert("summary".into(), "Disk <full> & \"hot\"".into());
        Group {
            source: Source::Alertmanager,
            key: "{}:{alertname=\"DiskFull\"}".into(),
            status: Status::Firing,
            receiver: Some("team".into()),
            group_labels: LabelSet::new(),
            common_labels: labels.clone(),
            common_annotations: annotations.clone(),
            external_url: Some("http://am:9093".into()),
            alerts: vec![Alert {
                status: Status::Firing,
                labels,
                annotations,
                starts_at: Some("2026-01-02T03:04:05Z".into()),
                ends_at: None,
                generator_url: Some("http://prom/graph?a=1&b=2".into()),
                fingerprint: "abc".into(),
            }],
            truncated_alerts: 0,
            extra: LabelSet::new(),
            dedup_key: "d".into(),
        }
    }

    fn sources(kind: TemplateKind, src: &str) -> TemplateSources {
        let mut s = TemplateSources::default();
        match kind {
            TemplateKind::SlackText => s.slack_text = Some(src.into()),
            TemplateKind::SlackBlocks => s.slack_blocks = Some(src.into()),
            TemplateKind::GoogleChatText => s.google_chat_text = Some(src.into()),
        }
        s
    }

    fn render(kind: TemplateKind, src: &str) -> Result<String, TemplateError> {
        let t = Templates::compile(&sources(kind, src));
        t.render(kind, &group()).unwrap_or_else(|| {
            Err(TemplateError::Output {
                kind,
                message: "not configured".into(),
            })
        })
    }

    #[test]
    fn context_exposes_group_and_helpers() {
        let out = render(
            TemplateKind::GoogleChatText,
            "{{ status }} {{ firing_count }} {{ alertname }} {{ common_labels.instance }} \
             {% for a in alerts %}{{ a.fingerprint }} {{ a.starts_at | display_time }}{% endfor %} \
             {{ external_url }} {{ receiver }} {{ severity_level }}",
        );
        assert_eq!(
            out.as_deref(),
            Ok("firing 1 DiskFull db-1 abc 2026-01-02 03:04:05 UTC http://am:9093 team unknown")
        );
    }

    #[test]
    fn slack_text_values_are_escaped_but_template_text_is_not() {
        let out = render(
            TemplateKind::SlackText,
            "<{{ alerts[0].generator_url }}|{{ summary }}> {{ '<!here>' | safe }}",
        );
        assert_eq!(
            out.as_deref(),
            Ok("<http://prom/graph?a=1&amp;b=2|Disk &lt;full&gt; &amp; \"hot\"> <!here>")
        );
    }

    #[test]
    fn chat_text_values_cannot_mention() {
        let out = render(TemplateKind::GoogleChatText, "{{ summary }} <users/all>");
        assert_eq!(out.as_deref(), Ok("Disk ‹full› & \"hot\" <users/all>"));
    }

    #[test]
    fn blocks_template_uses_tojson() {
        let out = render(
            TemplateKind::SlackBlocks,
            r#"[{"type":"section","text":{"type":"mrkdwn","text":{{ summary | slack_escape | tojson }}}}]"#,
        );
        let v: serde_json::Value =
            serde_json::from_str(&out.unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            v[0]["text"]["text"],
            serde_json::json!("Disk &lt;full&gt; &amp; \"hot\"")
        );
    }

    #[test]
    fn compile_errors_are_kept_and_reported() {
        let s = sources(TemplateKind::SlackText, "{% if %}");
        let t = Templates::compile(&s);
        assert_eq!(t.compile_errors().len(), 1);
        let err = t.render(TemplateKind::SlackText, &group());
        assert!(
            matches!(
                &err,
                Some(Err(TemplateError::Compile {
                    kind: TemplateKind::SlackText,
                    ..
                }))
            ),
            "{err:?}"
        );
        assert!(Templates::check(&s).is_err());
        assert!(t.render(TemplateKind::GoogleChatText, &group()).is_none());
        assert!(format!("{t:?}").contains("slack_text"));
    }

    #[test]
    fn render_errors_are_reported() {
        let err = render(TemplateKind::SlackText, "{{ summary | no_such_filter }}");
        match err {
            Err(TemplateError::Render { kind, message }) => {
                assert_eq!(kind, TemplateKind::SlackText);
                assert!(message.contains("no_such_filter"), "{message}");
            }
            other => panic!("expected a render error, got {other:?}"),
        }
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let err = render(
            TemplateKind::SlackText,
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        );
        match err {
            Err(TemplateError::Render { message, .. }) => {
                assert!(message.contains("fuel"), "{message}")
            }
            other => panic!("expected out of fuel, got {other:?}"),
        }
    }

    #[test]
    fn huge_output_is_cut_at_the_cap() {
        let out = render(TemplateKind::SlackText, "{{ '🚨' * 1000000 }}").unwrap_or_default();
        assert!(out.len() <= MAX_OUTPUT_BYTES + super::super::ELLIPSIS.len());
        assert!(out.len() > MAX_OUTPUT_BYTES / 2);
        assert!(out.ends_with(super::super::ELLIPSIS));
        assert!(out
            .trim_end_matches(super::super::ELLIPSIS)
            .chars()
            .all(|c| c == '🚨'));
    }
}
