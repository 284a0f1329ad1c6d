//! The `console` integration's output: one compact logfmt line per group (the default
//! integration when nothing is configured, so the router is useful out of the box).
//!
//! ```text
//! [FIRING:3] KubePodCrashLooping status=firing firing=3 resolved=0 truncated=0 severity=warning source=alertmanager receiver=team.payments summary="…" labels="cluster=eks-prod" group_key="{}:{…}"
//! ```
//!
//! Always one line: values are quoted when needed, with `"`, `\` and control characters
//! escaped, and cut so a huge annotation cannot flood the log.

use super::text::{neutralise, neutralise_group};
use super::{
    counts, group_display_labels, group_name, group_severity, group_summary, status_tag,
    truncate_chars,
};
use crate::model::{Group, Source};

/// Longest value written (in chars, before quoting).
const MAX_VALUE_CHARS: usize = 300;

/// The console line for a group (its alert text neutralised first: `text.rs`; the group key
/// too, since it is printed).
pub fn render(group: &Group) -> String {
    let group = &*neutralise_group(group);
    let c = counts(group);
    let mut line = format!("{} {}", status_tag(group), escape_bare(&group_name(group)));
    let mut kv = |k: &str, v: &str| {
        line.push(' ');
        line.push_str(k);
        line.push('=');
        line.push_str(&quote(v));
    };
    kv("status", group.status.as_str());
    kv("firing", &c.firing.to_string());
    kv("resolved", &c.resolved.to_string());
    kv("truncated", &group.truncated_alerts.to_string());
    if let Some(sev) = group_severity(group).1 {
        kv("severity", sev);
    }
    kv(
        "source",
        match group.source {
            Source::Alertmanager => "alertmanager",
            Source::Sentry => "sentry",
        },
    );
    if let Some(r) = &group.receiver {
        kv("receiver", r);
    }
    if let Some(s) = group_summary(group) {
        kv("summary", s);
    }
    let labels: Vec<String> = group_display_labels(group)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !labels.is_empty() {
        kv("labels", &labels.join(","));
    }
    kv("group_key", &neutralise(&group.key));
    line
}

/// The name at the start of the line, made single-line.
fn escape_bare(s: &str) -> String {
    escape(&truncate_chars(s, MAX_VALUE_CHARS))
}

/// A logfmt value: bare when safe, else quoted and escaped.
fn quote(v: &str) -> String {
    let v = truncate_chars(v, MAX_VALUE_CHARS);
    let bare = !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '"' | '=' | '\\'));
    if bare {
        v.into_owned()
    } else {
        format!("\"{}\"", escape(&v))
    }
}

/// Escapes `"`, `\` and control characters (`\n`, `\t`, `\u{1}` …) so output stays one line.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Alert, LabelSet, Status};

    #[test]
    fn one_line_whatever_the_input() {
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), "Bad\nName".into());
        labels.insert("cluster".into(), "c 1".into());
        let mut ann = LabelSet::new();
        ann.insert(
            "summary".into(),
            format!("a \"quoted\"\nline\u{1}{}", "x".repeat(1000)),
        );
        let g = Group {
            source: Source::Alertmanager,
            key: "{}:{a=\"b\"}".into(),
            status: Status::Firing,
            receiver: Some("team".into()),
            group_labels: LabelSet::new(),
            common_labels: labels.clone(),
            common_annotations: ann,
            external_url: None,
            alerts: vec![Alert {
                status: Status::Firing,
                labels,
                annotations: LabelSet::new(),
                starts_at: None,
                ends_at: None,
                generator_url: None,
                fingerprint: "f".into(),
            }],
            truncated_alerts: 0,
            extra: LabelSet::new(),
            dedup_key: "d".into(),
        };
        let line = render(&g);
        assert!(!line.contains('\n') && !line.contains('\u{1}'), "{line}");
        assert!(
            line.starts_with("[FIRING:1] Bad\\nName status=firing firing=1"),
            "{line}"
        );
        assert!(
            line.contains(r#"summary="a \"quoted\"\nline\u{1}xxx"#),
            "{line}"
        );
        assert!(line.contains(r#"labels="cluster=c 1""#), "{line}");
        assert!(line.ends_with(r#"group_key="{}:{a=\"b\"}""#), "{line}");
        assert!(line.chars().count() < 1000);
    }
}
