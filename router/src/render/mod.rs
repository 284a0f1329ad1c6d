//! Message rendering: turns a `model::Group` into the body each integration sends (Slack Block
//! Kit, Google Chat cardsV2, generic JSON, a console line), plus the helpers they share: which
//! labels to show, severity and status markers, links (runbook, source, Alertmanager silence),
//! escaping, and truncation on grapheme cluster boundaries (`text.rs` holds what alert text may
//! and may not bring into a message). Rendering does no I/O.
//!
//! # What a default message shows
//!
//! Written for an on-call engineer reading it at 3 a.m.: a title line
//! `<marker> [FIRING:3] KubePodCrashLooping` (the marker is the severity colour while firing,
//! ✅ once resolved), the status with counts, severity, the group's summary, the labels that
//! matter, then each alert (summary, description, its own labels, runbook and source links).
//! Firing groups get a silence link into Alertmanager's UI, pre-filled with the group's labels
//! (its `group_labels`, or its common labels when it was not grouped by any).
//!
//! # Which labels are shown
//!
//! * `alertname` and `severity` are never listed as labels: they are in the title and the
//!   severity line already.
//! * Scrape plumbing added by Prometheus / the Prometheus Operator is dropped: see
//!   [`NOISY_LABELS`]; so are labels starting with `__`.
//! * The group shows the labels every alert shares (`common_labels`); each alert shows only the
//!   labels that tell it apart from the rest of the group (its labels minus the common ones).

pub mod console;
pub mod google_chat;
pub mod slack;
pub mod template;
pub mod text;
pub mod webhook;

use std::borrow::Cow;

use crate::model::{Alert, Group, LabelSet, Status};

pub use template::{TemplateError, TemplateKind, TemplateSources, Templates};
pub use text::neutralise_group;

/// A rendered body and, when a custom template was configured but failed, its error: the body is
/// then the default message, so the alert still goes out. The caller counts and logs the error.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered<T> {
    /// What to send.
    pub body: T,
    /// Why the custom template was skipped, if it was.
    pub template_error: Option<String>,
}

impl<T> Rendered<T> {
    /// A body rendered without any template problem.
    pub fn ok(body: T) -> Self {
        Rendered {
            body,
            template_error: None,
        }
    }
}

/// Slack message for a group: the receiver's templates if any, else the default layout.
pub fn slack(group: &Group, templates: Option<&Templates>) -> Rendered<slack::SlackMessage> {
    slack::render_with(group, templates)
}

/// Google Chat message body for a group (cardsV2 with a `text` fallback, or the receiver's text
/// template), threaded by [`google_chat::thread_key`].
pub fn google_chat(group: &Group, templates: Option<&Templates>) -> Rendered<serde_json::Value> {
    google_chat::render_with(group, templates)
}

/// Generic JSON body for the `webhook` integration.
pub fn webhook(group: &Group) -> serde_json::Value {
    webhook::render(group)
}

/// One log line for the `console` integration.
pub fn console(group: &Group) -> String {
    console::render(group)
}

// ---------------------------------------------------------------------------------------------
// Labels

/// Labels that describe how a metric was scraped rather than what is wrong; dropped from
/// messages (they stay in the webhook body, templates and silence links).
pub const NOISY_LABELS: &[&str] = &[
    "endpoint",
    "id",
    "job",
    "metrics_path",
    "prometheus",
    "prometheus_replica",
    "receive",
    "replica",
    "scheme",
    "service",
    "uid",
];

/// Labels shown elsewhere in the message (title, severity line), so never listed again.
const SHOWN_ELSEWHERE: &[&str] = &["alertname", "severity"];

/// Whether a label is left out of message label lists (see the module docs for the rule).
pub fn is_hidden_label(name: &str) -> bool {
    name.starts_with("__") || NOISY_LABELS.contains(&name) || SHOWN_ELSEWHERE.contains(&name)
}

/// The labels shown once for the whole group: common labels minus hidden ones.
pub fn group_display_labels(group: &Group) -> Vec<(&str, &str)> {
    group
        .common_labels
        .iter()
        .filter(|(k, _)| !is_hidden_label(k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The labels that tell one alert apart from the rest of its group: its labels minus the
/// group's common labels and hidden ones.
pub fn alert_display_labels<'a>(group: &Group, alert: &'a Alert) -> Vec<(&'a str, &'a str)> {
    alert
        .labels
        .iter()
        .filter(|(k, v)| !is_hidden_label(k) && group.common_labels.get(*k) != Some(*v))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Severity and status

/// Severity, normalised from the `severity` label (Alertmanager) or `level` (Sentry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// No severity label, or one we don't recognise.
    Unknown,
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    /// Maps common spellings (`critical`, `page`, `fatal`, `warn`, `P3`, ...) to a severity.
    pub fn parse(raw: &str) -> Severity {
        match raw.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "fatal" | "page" | "emergency" | "emerg" | "alert" | "p1"
            | "sev1" | "disaster" => Severity::Critical,
            "error" | "err" | "high" | "major" | "p2" | "sev2" => Severity::Error,
            "warning" | "warn" | "medium" | "minor" | "average" | "p3" | "sev3" => {
                Severity::Warning
            }
            "info" | "informational" | "information" | "notice" | "low" | "debug" | "none"
            | "ok" | "p4" | "p5" | "sev4" | "sev5" => Severity::Info,
            _ => Severity::Unknown,
        }
    }

    /// A coloured marker that reads at a glance, also in notifications and on phones.
    pub fn marker(self) -> &'static str {
        match self {
            Severity::Critical => "🔴",
            Severity::Error => "🟠",
            Severity::Warning => "🟡",
            Severity::Info => "🔵",
            Severity::Unknown => "⚪",
        }
    }

    /// A hex colour for card text (Google Chat `<font color>`).
    pub fn colour(self) -> &'static str {
        match self {
            Severity::Critical => "#d93025",
            Severity::Error => "#e8710a",
            Severity::Warning => "#f9ab00",
            Severity::Info => "#1a73e8",
            Severity::Unknown => "#5f6368",
        }
    }
}

/// Marker for resolved groups and alerts.
pub const RESOLVED_MARKER: &str = "✅";
/// Marker for a firing alert line.
pub const FIRING_ALERT_MARKER: &str = "🔥";
/// Colour for resolved text in cards.
pub const RESOLVED_COLOUR: &str = "#188038";

fn severity_label(labels: &LabelSet) -> Option<&str> {
    labels
        .get("severity")
        .or_else(|| labels.get("level"))
        .map(String::as_str)
}

/// The group's severity: its common `severity` (or Sentry `level`) label, else the highest
/// severity among its alerts. Also returns the label value as written, for display.
pub fn group_severity(group: &Group) -> (Severity, Option<&str>) {
    if let Some(raw) = severity_label(&group.common_labels) {
        return (Severity::parse(raw), Some(raw));
    }
    let mut best: (Severity, Option<&str>) = (Severity::Unknown, None);
    for alert in &group.alerts {
        if let Some(raw) = severity_label(&alert.labels) {
            let sev = Severity::parse(raw);
            if best.1.is_none() || sev > best.0 {
                best = (sev, Some(raw));
            }
        }
    }
    best
}

/// Alerts per status in the payload (`truncated_alerts` are not included: their status is
/// unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub firing: usize,
    pub resolved: usize,
}

/// Counts the group's alerts by status.
pub fn counts(group: &Group) -> Counts {
    let firing = group
        .alerts
        .iter()
        .filter(|a| a.status == Status::Firing)
        .count();
    Counts {
        firing,
        resolved: group.alerts.len() - firing,
    }
}

/// The marker at the start of a title: severity colour while firing, ✅ once resolved.
pub fn status_marker(group: &Group) -> &'static str {
    match group.status {
        Status::Firing => group_severity(group).0.marker(),
        Status::Resolved => RESOLVED_MARKER,
    }
}

/// `[FIRING:3]` / `[RESOLVED:3]`, counting alerts of the group's own status (so a firing group
/// with one alert resolved shows `[FIRING:2]`; the status line has the full breakdown).
pub fn status_tag(group: &Group) -> String {
    let c = counts(group);
    match group.status {
        Status::Firing => format!("[FIRING:{}]", c.firing),
        Status::Resolved => format!("[RESOLVED:{}]", c.resolved),
    }
}

/// Human status line: `3 firing`, `2 firing, 1 resolved`, `resolved (3 alerts)`, plus the
/// alerts Alertmanager left out.
pub fn status_line(group: &Group) -> String {
    let c = counts(group);
    let mut s = match group.status {
        Status::Firing if c.resolved > 0 => format!("{} firing, {} resolved", c.firing, c.resolved),
        Status::Firing => format!("{} firing", c.firing),
        Status::Resolved => format!("resolved ({} {})", c.resolved, plural(c.resolved, "alert")),
    };
    if group.truncated_alerts > 0 {
        s.push_str(&format!(
            ", {} more not sent by Alertmanager",
            group.truncated_alerts
        ));
    }
    s
}

/// The rest of an "…and N more alerts" note: why they are missing. `hidden` were in the
/// payload but did not fit the message; `truncated` never reached us (Alertmanager's
/// `max_alerts`, written as `max_alerts_name` in the target markup).
pub fn more_detail(hidden: usize, truncated: u64, max_alerts_name: &str) -> String {
    match (hidden, truncated) {
        (_, 0) => " not shown".to_string(),
        (0, _) => format!(" not sent by Alertmanager ({max_alerts_name})"),
        (h, t) => format!(
            " not shown ({h} did not fit here, {t} not sent by Alertmanager's {max_alerts_name})"
        ),
    }
}

/// `alert` / `alerts` by count.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// What the group is about: its alert name(s). Several names are listed up to three; a group
/// without any `alertname` falls back to its title or summary annotation. Sentry groups are
/// named by their summary (the issue or alert title), prefixed with the alert rule's name when
/// there is one and the summary does not already say it (the parser's generic names,
/// `SentryIssue` and the like, are left out).
pub fn group_name(group: &Group) -> String {
    if group.source == crate::model::Source::Sentry {
        let rule = group
            .common_labels
            .get("alertname")
            .filter(|a| !a.starts_with("Sentry"));
        match (rule, group_summary(group)) {
            (Some(r), Some(s)) if !s.contains(r.as_str()) => return format!("{r}: {s}"),
            (_, Some(s)) => return s.to_string(),
            _ => {}
        }
    }
    let mut names: Vec<&str> = Vec::new();
    if let Some(n) = group.common_labels.get("alertname") {
        names.push(n);
    } else {
        for alert in &group.alerts {
            if let Some(n) = alert.labels.get("alertname") {
                if !names.contains(&n.as_str()) {
                    names.push(n);
                }
            }
        }
    }
    match names.as_slice() {
        [] => {}
        [_] | [_, _] | [_, _, _] => return names.join(", "),
        [a, b, rest @ ..] => return format!("{a}, {b} +{} more", rest.len()),
    }
    for key in ["title", "summary"] {
        if let Some(v) = group.common_annotations.get(key) {
            return v.clone();
        }
    }
    if let Some(alert) = group.alerts.first() {
        for key in ["title", "summary"] {
            if let Some(v) = alert.annotations.get(key) {
                return v.clone();
            }
        }
    }
    "alert".to_string()
}

/// The default title: `<marker> [FIRING:3] KubePodCrashLooping` (unescaped).
pub fn title(group: &Group) -> String {
    format!(
        "{} {} {}",
        status_marker(group),
        status_tag(group),
        group_name(group)
    )
}

fn summary_of(annotations: &LabelSet) -> Option<&str> {
    ["summary", "message", "title"]
        .iter()
        .find_map(|k| annotations.get(*k))
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// The group-level summary: the common `summary` annotation, or the only alert's summary.
pub fn group_summary(group: &Group) -> Option<&str> {
    summary_of(&group.common_annotations).or_else(|| match group.alerts.as_slice() {
        [only] => summary_of(&only.annotations),
        _ => None,
    })
}

/// An alert's own summary (`summary`, `message` or `title` annotation).
pub fn alert_summary(alert: &Alert) -> Option<&str> {
    summary_of(&alert.annotations)
}

/// An alert's description (`description`, or `message` when a summary exists too).
pub fn alert_description(alert: &Alert) -> Option<&str> {
    alert
        .annotations
        .get("description")
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// The line that names an alert in a list: its summary unless that just repeats the group's
/// summary, in which case its description (which usually carries the specifics), else its
/// alert name or fingerprint.
pub fn alert_headline<'a>(group: &Group, alert: &'a Alert) -> Cow<'a, str> {
    let group_sum = summary_of(&group.common_annotations);
    match alert_summary(alert) {
        Some(s) if Some(s) != group_sum => return Cow::Borrowed(s),
        _ => {}
    }
    if let Some(d) = alert_description(alert) {
        return Cow::Borrowed(d);
    }
    if let Some(s) = alert_summary(alert) {
        return Cow::Borrowed(s);
    }
    if let Some(n) = alert.labels.get("alertname") {
        return Cow::Borrowed(n);
    }
    Cow::Owned(format!("alert {}", alert.fingerprint))
}

/// Alerts in display order: firing first, then resolved, each in payload order.
pub fn ordered_alerts(group: &Group) -> Vec<&Alert> {
    let mut v: Vec<&Alert> = group.alerts.iter().collect();
    // Stable: keeps Alertmanager's order within each status.
    v.sort_by_key(|a| match a.status {
        Status::Firing => 0,
        Status::Resolved => 1,
    });
    v
}

/// `2026-11-24T03:24:54.787204094Z` → `2026-11-24 03:24:54 UTC`; anything else as given (cut
/// to a sane length).
pub fn display_time(ts: &str) -> String {
    let b = ts.as_bytes();
    let shaped = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        && b[13] == b':'
        && b[16] == b':'
        && b[..19]
            .iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16) || c.is_ascii_digit());
    if shaped && (ts.ends_with('Z') || ts.ends_with('z')) {
        // Indices 0..19 are ASCII (checked above), so slicing is on char boundaries.
        return format!("{} {} UTC", &ts[..10], &ts[11..19]);
    }
    truncate_chars(ts, 40).into_owned()
}

/// `since …` for a firing alert, `resolved …` for a resolved one (when the times are known).
pub fn alert_time_note(alert: &Alert) -> Option<String> {
    match alert.status {
        Status::Firing => alert
            .starts_at
            .as_deref()
            .map(|t| format!("since {}", display_time(t))),
        Status::Resolved => alert
            .ends_at
            .as_deref()
            .map(|t| format!("resolved {}", display_time(t))),
    }
}

// ---------------------------------------------------------------------------------------------
// Links

/// Keeps only absolute http(s) URLs without whitespace or control characters: anything else
/// (an empty `generatorURL`, `javascript:`, a relative path) would render as a broken link.
pub fn usable_url(url: &str) -> Option<&str> {
    let u = url.trim();
    let lower = u.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    let scheme_ok = lower.starts_with("http://") || lower.starts_with("https://");
    let host_ok = u.split("//").nth(1).is_some_and(|rest| !rest.is_empty());
    if scheme_ok && host_ok && !u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(u)
    } else {
        None
    }
}

/// Runbook link from annotations (`runbook_url`, or `runbook` when it is a URL).
pub fn runbook_url(annotations: &LabelSet) -> Option<&str> {
    ["runbook_url", "runbook"]
        .iter()
        .find_map(|k| annotations.get(*k).and_then(|u| usable_url(u)))
}

/// The group's runbook: the common one, or the one every alert shares.
pub fn group_runbook(group: &Group) -> Option<&str> {
    if let Some(u) = runbook_url(&group.common_annotations) {
        return Some(u);
    }
    let mut urls = group.alerts.iter().map(|a| runbook_url(&a.annotations));
    let first = urls.next()??;
    urls.all(|u| u == Some(first)).then_some(first)
}

/// The alert's source: Prometheus graph (`generatorURL`) or the Sentry issue page.
pub fn source_url(alert: &Alert) -> Option<&str> {
    alert.generator_url.as_deref().and_then(usable_url)
}

/// Link label for an alert's source.
pub fn source_label(group: &Group) -> &'static str {
    match group.source {
        crate::model::Source::Alertmanager => "Source",
        crate::model::Source::Sentry => "Sentry",
    }
}

/// Characters the Alertmanager UI's matcher parser reserves in label names
/// (`ui/app/src/Utils/Filter.elm`): a name containing one cannot be expressed in a filter.
fn is_reserved_in_matcher_name(c: char) -> bool {
    matches!(
        c,
        '{' | '}'
            | '!'
            | '='
            | '~'
            | ','
            | '\\'
            | '"'
            | '\''
            | '`'
            | ' '
            | '\t'
            | '\n'
            | '\u{0B}'
            | '\u{0C}'
            | '\r'
            | '\u{85}'
            | '\u{A0}'
    )
}

/// The Alertmanager UI filter for a label set: `{a="b", c="d"}`, values JSON-quoted exactly as
/// the UI's own `stringifyFilter` does. Labels whose names the UI cannot parse are skipped;
/// `None` if nothing is left (a silence without matchers is invalid).
pub fn matcher_filter(labels: &LabelSet) -> Option<String> {
    let parts: Vec<String> = labels
        .iter()
        .filter(|(k, _)| !k.is_empty() && !k.chars().any(is_reserved_in_matcher_name))
        .map(|(k, v)| {
            let quoted = serde_json::to_string(v).unwrap_or_else(|_| "\"\"".to_string());
            format!("{k}={quoted}")
        })
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(format!("{{{}}}", parts.join(", ")))
    }
}

/// The labels a silence or alerts-view link filters on: the group's labels (what Alertmanager
/// grouped by, so the silence covers this group and its future alerts, and nothing else), or
/// the labels all its alerts share when it has none (`group_by: []`).
fn link_labels(group: &Group) -> &LabelSet {
    if group.group_labels.is_empty() {
        &group.common_labels
    } else {
        &group.group_labels
    }
}

fn external_base(group: &Group) -> Option<&str> {
    let base = usable_url(group.external_url.as_deref()?)?;
    Some(base.trim_end_matches('/'))
}

/// Link to Alertmanager's "new silence" form, pre-filled with the group's labels:
/// `<externalURL>/#/silences/new?filter=%7Balertname%3D%22…%22%7D`. `None` without an
/// `external_url` (Sentry) or usable labels.
pub fn silence_url(group: &Group) -> Option<String> {
    let base = external_base(group)?;
    let filter = matcher_filter(link_labels(group))?;
    Some(format!(
        "{base}/#/silences/new?filter={}",
        percent_encode(&filter)
    ))
}

/// Link to Alertmanager's alert list filtered to this group (useful when a message could not
/// list every alert).
pub fn alerts_url(group: &Group) -> Option<String> {
    let base = external_base(group)?;
    let filter = matcher_filter(link_labels(group))?;
    Some(format!(
        "{base}/#/alerts?silenced=false&inhibited=false&active=true&filter={}",
        percent_encode(&filter)
    ))
}

/// Percent-encodes everything except RFC 3986 unreserved characters (stricter than
/// `encodeURIComponent`, which the Alertmanager UI uses, and decoded the same way).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Escaping

/// Slack mrkdwn escaping: `&`, `<`, `>` become entities, so alert text cannot form links or
/// mentions (`<!channel>`) and displays as written.
pub fn slack_escape(s: &str) -> Cow<'_, str> {
    escape_chars(s, &[('&', "&amp;"), ('<', "&lt;"), ('>', "&gt;")])
}

/// Slack mrkdwn from alert text: [`slack_escape`], with plain-text `@channel`, `@here` and
/// `@everyone` made inert ([`text::slack_mentions_neutralise`]). Never for URLs.
pub fn slack_text_escape(s: &str) -> Cow<'_, str> {
    match text::slack_mentions_neutralise(s) {
        Cow::Borrowed(b) => slack_escape(b),
        Cow::Owned(o) => Cow::Owned(slack_escape(&o).into_owned()),
    }
}

/// HTML escaping for Google Chat card text, which accepts a small HTML subset.
pub fn html_escape(s: &str) -> Cow<'_, str> {
    escape_chars(
        s,
        &[
            ('&', "&amp;"),
            ('<', "&lt;"),
            ('>', "&gt;"),
            ('"', "&quot;"),
            ('\'', "&#39;"),
        ],
    )
}

/// Replaces each character of `table` by its entity; borrows when there is nothing to replace.
fn escape_chars<'a>(s: &'a str, table: &[(char, &str)]) -> Cow<'a, str> {
    if !s.chars().any(|c| table.iter().any(|(t, _)| *t == c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match table.iter().find(|(t, _)| *t == c) {
            Some((_, entity)) => out.push_str(entity),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Google Chat plain text has no escape syntax, and `<users/all>` or `<url|text>` in alert text
/// would mention everyone or form links; angle brackets become look-alike `‹` `›`.
pub fn chat_text_sanitize(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>']) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace('<', "‹").replace('>', "›"))
}

/// A Slack mrkdwn link. The URL is escaped like text (Slack decodes `&amp;` in links) and `|`,
/// which would end the URL early, is percent-encoded.
pub fn slack_link(url: &str, text: &str) -> String {
    let url = url.replace('|', "%7C");
    format!(
        "<{}|{}>",
        slack_escape(&url),
        slack_escape(&text.replace('|', "¦"))
    )
}

// ---------------------------------------------------------------------------------------------
// Truncation

/// Appended to text that was cut.
pub const ELLIPSIS: &str = "…";

/// Length in UTF-16 code units: what JavaScript-based services count as "characters". Never
/// less than the char count, so limits checked with it hold for both readings.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Cuts `s` to at most `max` units (as `unit` counts a char), ending in `…` when cut. Cuts only
/// on extended grapheme cluster boundaries (UAX #29), so a family emoji, a flag, a keycap or a
/// letter with its accents is kept whole or left out whole, never split. A cut never leaves a
/// [`text::FSI`] open: it goes back to before the isolated value instead. Reads no further than
/// the cut, so cutting a huge string costs what the result does.
fn truncate_units(s: &str, max: usize, unit: fn(char) -> usize) -> Cow<'_, str> {
    let ell: usize = ELLIPSIS.chars().map(unit).sum();
    // Too small for the ellipsis: the longest prefix that fits, unmarked.
    let (budget, mark) = if max > ell {
        (max - ell, true)
    } else {
        (max, false)
    };
    let mut used = 0;
    // End of the longest prefix within `budget`, kept in case the whole string is too long.
    let mut cut = 0;
    for (i, c) in s.char_indices() {
        used += unit(c);
        if used > max {
            let mut cut = text::grapheme_floor(s, cut);
            if let Some(open) = unclosed_isolate(&s[..cut]) {
                cut = open;
            }
            let mut out = s[..cut].to_string();
            if mark {
                out.push_str(ELLIPSIS);
            }
            return Cow::Owned(out);
        }
        if used <= budget {
            cut = i + c.len_utf8();
        }
    }
    Cow::Borrowed(s)
}

/// Where the last isolate opened in `s` and not closed starts, if one is (the renderers open
/// isolates only around a whole label value and never nest them).
fn unclosed_isolate(s: &str) -> Option<usize> {
    let open = s.rfind(text::FSI)?;
    (!s[open..].contains(text::PDI)).then_some(open)
}

/// The first `n` chars of `s`, and whether anything was left out. Not grapheme-aware: callers
/// look at a prefix far longer than what they keep and cut that with [`truncate_chars`] & co.
pub fn prefix_chars(s: &str, n: usize) -> (&str, bool) {
    match s.char_indices().nth(n) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    }
}

/// Cuts to at most `max` chars (Unicode scalar values, what Slack counts), ending in `…` when
/// cut.
pub fn truncate_chars(s: &str, max: usize) -> Cow<'_, str> {
    truncate_units(s, max, |_| 1)
}

/// Cuts to at most `max` UTF-16 code units, ending in `…` when cut.
pub fn truncate_utf16(s: &str, max: usize) -> Cow<'_, str> {
    truncate_units(s, max, char::len_utf16)
}

/// Cuts to at most `max` bytes of UTF-8, ending in `…` when cut.
pub fn truncate_bytes(s: &str, max: usize) -> Cow<'_, str> {
    truncate_units(s, max, char::len_utf8)
}

/// Truncates raw text, then escapes it, so the escaped result is at most `max` as `measure`
/// counts it. Cutting before escaping never leaves half an entity (`&am…`) behind.
pub fn fit_escaped(
    raw: &str,
    max: usize,
    escape: fn(&str) -> Cow<'_, str>,
    measure: fn(&str) -> usize,
) -> String {
    let mut budget = max;
    loop {
        let cut = truncate_chars(raw, budget);
        let escaped = escape(&cut);
        let len = measure(&escaped);
        if len <= max {
            return escaped.into_owned();
        }
        // Escaping (or wide characters) made it too long: shrink the raw budget in proportion
        // and retry. Each round strictly shrinks it, so this ends (at worst with "").
        if budget == 0 {
            return String::new();
        }
        let scaled = (budget as u128 * max as u128 / len as u128) as usize;
        budget = scaled.min(budget - 1);
    }
}

/// Drops control characters other than newlines (tabs become spaces): they have no place in
/// a chat message and some clients render them as boxes.
pub fn clean_text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .filter_map(|c| match c {
                '\t' => Some(' '),
                '\n' => Some('\n'),
                c if c.is_control() => None,
                c => Some(c),
            })
            .collect(),
    )
}

/// Cleans, cuts and escapes display text to at most `max` (as `measure` counts). Only a prefix
/// of the raw text is looked at (a 100 kB annotation costs no more than a short one); when the
/// raw text went on beyond it, the result always ends in `…`.
fn fit_text(
    raw: &str,
    max: usize,
    escape: fn(&str) -> Cow<'_, str>,
    measure: fn(&str) -> usize,
) -> String {
    let (head, cut) = prefix_chars(raw, max.saturating_mul(4).saturating_add(16));
    let cleaned = clean_text(head);
    if !cut {
        return fit_escaped(&cleaned, max, escape, measure);
    }
    let ell = measure(ELLIPSIS);
    let mut out = fit_escaped(&cleaned, max.saturating_sub(ell), escape, measure);
    if max >= ell && !out.ends_with(ELLIPSIS) {
        out.push_str(ELLIPSIS);
    }
    out
}

/// Slack mrkdwn text from raw text, at most `max` UTF-16 units after cleaning and escaping
/// (mentions included: [`slack_text_escape`]).
pub fn slack_fit(raw: &str, max: usize) -> String {
    fit_text(raw, max, slack_text_escape, utf16_len)
}

/// Google Chat card HTML from raw text, at most `max` chars after cleaning and escaping.
pub fn html_fit(raw: &str, max: usize) -> String {
    fit_text(raw, max, html_escape, |s| s.chars().count())
}

/// Lowercase hex SHA-256 of a string.
pub fn sha256_hex(data: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Source;

    fn alert(status: Status, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Alert {
        Alert {
            status,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts_at: Some("2026-11-24T03:24:54.787204094Z".into()),
            ends_at: None,
            generator_url: None,
            fingerprint: "f1".into(),
        }
    }

    fn group(alerts: Vec<Alert>, common: &[(&str, &str)]) -> Group {
        Group {
            source: Source::Alertmanager,
            key: "k".into(),
            status: if alerts.iter().any(|a| a.status == Status::Firing) {
                Status::Firing
            } else {
                Status::Resolved
            },
            receiver: None,
            group_labels: LabelSet::new(),
            common_labels: common
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            common_annotations: LabelSet::new(),
            external_url: Some("http://am:9093/".into()),
            alerts,
            truncated_alerts: 0,
            extra: LabelSet::new(),
            dedup_key: "d".into(),
        }
    }

    #[test]
    fn truncation_never_splits_characters() {
        let s = "a🚨b日本語";
        assert_eq!(truncate_chars(s, 100), s);
        assert_eq!(truncate_chars(s, 3), "a🚨…");
        assert_eq!(truncate_bytes(s, 6), "a…");
        assert_eq!(truncate_bytes(s, 8), "a🚨…");
        // 🚨 is two UTF-16 units.
        assert_eq!(truncate_utf16(s, 3), "a…");
        assert_eq!(truncate_utf16(s, 4), "a🚨…");
        // Budgets smaller than the ellipsis cut without one.
        assert_eq!(truncate_bytes(s, 2), "a");
        assert_eq!(truncate_chars(s, 0), "");
        for max in 0..30 {
            assert!(truncate_bytes(s, max).len() <= max);
            assert!(utf16_len(&truncate_utf16(s, max)) <= max);
        }
    }

    #[test]
    fn long_texts_are_cut_and_marked() {
        assert_eq!(prefix_chars("a🚨b", 2), ("a🚨", true));
        assert_eq!(prefix_chars("a🚨b", 3), ("a🚨b", false));
        // Control characters beyond the looked-at prefix still leave a marked cut.
        let raw = format!("{}tail", "\u{1}".repeat(1000));
        assert_eq!(slack_fit(&raw, 10), "…");
        let out = slack_fit(&"x&".repeat(100_000), 50);
        assert!(utf16_len(&out) <= 50 && out.ends_with('…'), "{out}");
    }

    #[test]
    fn fit_escaped_accounts_for_entity_growth() {
        let raw = "<<<<<<<<<<";
        let out = slack_fit(raw, 12);
        assert!(utf16_len(&out) <= 12, "{out}");
        assert!(!out.contains("&l…") && !out.ends_with('&'), "{out}");
        assert_eq!(slack_fit("a<b", 100), "a&lt;b");
        assert_eq!(
            html_fit("\"x\" & 'y'", 100),
            "&quot;x&quot; &amp; &#39;y&#39;"
        );
        assert_eq!(slack_fit("a\u{1}b\tc\nd\r", 100), "ab c\nd");
    }

    #[test]
    fn labels_drop_noise_and_common_ones() {
        let a = alert(
            Status::Firing,
            &[
                ("alertname", "X"),
                ("cluster", "c1"),
                ("pod", "p1"),
                ("job", "kube-state-metrics"),
                ("prometheus", "monitoring/k8s"),
                ("__meta", "m"),
            ],
            &[],
        );
        let g = group(
            vec![a.clone()],
            &[
                ("alertname", "X"),
                ("cluster", "c1"),
                ("severity", "warning"),
            ],
        );
        assert_eq!(group_display_labels(&g), vec![("cluster", "c1")]);
        assert_eq!(alert_display_labels(&g, &g.alerts[0]), vec![("pod", "p1")]);
    }

    #[test]
    fn severity_from_labels() {
        let g = group(vec![], &[("severity", "Critical")]);
        assert_eq!(group_severity(&g), (Severity::Critical, Some("Critical")));
        let g = group(
            vec![
                alert(Status::Firing, &[("severity", "info")], &[]),
                alert(Status::Firing, &[("severity", "warning")], &[]),
            ],
            &[],
        );
        assert_eq!(group_severity(&g).0, Severity::Warning);
        let g = group(vec![], &[("level", "error")]);
        assert_eq!(group_severity(&g).0, Severity::Error);
        assert_eq!(Severity::parse("bogus"), Severity::Unknown);
    }

    #[test]
    fn silence_url_matches_alertmanager_ui_format() {
        let g = group(
            vec![alert(Status::Firing, &[], &[])],
            &[("alertname", "Foo"), ("job", "a\"b")],
        );
        assert_eq!(
            silence_url(&g).as_deref(),
            Some(
                "http://am:9093/#/silences/new?filter=%7Balertname%3D%22Foo%22%2C%20job%3D%22a%5C%22b%22%7D"
            )
        );
        let mut grouped = g.clone();
        grouped
            .group_labels
            .insert("alertname".into(), "Foo".into());
        assert_eq!(
            silence_url(&grouped).as_deref(),
            Some("http://am:9093/#/silences/new?filter=%7Balertname%3D%22Foo%22%7D")
        );
        let mut no_url = g.clone();
        no_url.external_url = None;
        assert_eq!(silence_url(&no_url), None);
        let mut no_labels = g;
        no_labels.common_labels.clear();
        assert_eq!(silence_url(&no_labels), None);
    }

    #[test]
    fn urls_must_be_http() {
        assert_eq!(usable_url(""), None);
        assert_eq!(usable_url("javascript:alert(1)"), None);
        assert_eq!(usable_url("http://"), None);
        assert_eq!(usable_url("http://a b"), None);
        assert_eq!(usable_url(" https://x/y "), Some("https://x/y"));
        assert_eq!(usable_url("HTTPS://X"), Some("HTTPS://X"));
    }

    #[test]
    fn names_and_status() {
        let g = group(
            vec![
                alert(Status::Firing, &[("alertname", "A")], &[]),
                alert(Status::Resolved, &[("alertname", "B")], &[]),
            ],
            &[],
        );
        assert_eq!(group_name(&g), "A, B");
        assert_eq!(status_tag(&g), "[FIRING:1]");
        assert_eq!(status_line(&g), "1 firing, 1 resolved");
        let names: Vec<Alert> = (0..5)
            .map(|i| alert(Status::Firing, &[("alertname", &format!("N{i}"))], &[]))
            .collect();
        assert_eq!(group_name(&group(names, &[])), "N0, N1 +3 more");
        assert_eq!(group_name(&group(vec![], &[])), "alert");
    }

    #[test]
    fn times_are_shortened() {
        assert_eq!(
            display_time("2026-11-24T03:24:54.787204094Z"),
            "2026-11-24 03:24:54 UTC"
        );
        assert_eq!(
            display_time("2026-11-24T03:24:54Z"),
            "2026-11-24 03:24:54 UTC"
        );
        assert_eq!(
            display_time("2026-11-24T03:24:54+05:30"),
            "2026-11-24T03:24:54+05:30"
        );
        assert_eq!(
            display_time("日本語日本語日本語日本語日本語日本語日本語"),
            "日本語日本語日本語日本語日本語日本語日本語"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(slack_escape("<!channel> & co"), "&lt;!channel&gt; &amp; co");
        assert_eq!(chat_text_sanitize("<users/all>"), "‹users/all›");
        assert_eq!(
            slack_link("http://x/?a=1&b=|", "R|b"),
            "<http://x/?a=1&amp;b=%7C|R¦b>"
        );
    }
}
