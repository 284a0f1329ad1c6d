//! Google Chat messages: a `cardsV2` card with a short `text` line (what notifications show),
//! or a receiver's text template; threaded by a `thread.threadKey` derived from the group key,
//! and always within Chat's 32,000-byte message limit.
//!
//! The notifier posts the body to the space's webhook URL with the query parameter
//! [`MESSAGE_REPLY_OPTION_PARAM`]`=`[`MESSAGE_REPLY_OPTION`], so every message of a group lands
//! in one thread (a new one if the thread is gone). The thread key is a hash of the group key
//! only, so restarts and replicas agree on it.
//!
//! Card layout: header (title and `severity · status`), a section with status, severity,
//! summary, the group's labels and buttons (silence, runbook), and an "Alerts" section: one
//! paragraph per alert for small groups, a line per alert packed into paragraphs for big ones,
//! then "…and N more" (counting `truncated_alerts` too). Card text is the HTML subset Chat
//! supports, so alert text is HTML-escaped. Widgets stay under Chat's 100 per card.

use serde_json::{json, Value};

use super::template::{TemplateError, TemplateKind, Templates};
use super::text::{isolate_rtl, neutralise_group};
use super::{
    alert_description, alert_display_labels, alert_headline, alert_summary, alert_time_note,
    alerts_url, chat_text_sanitize, group_display_labels, group_runbook, group_severity,
    group_summary, html_escape, html_fit, ordered_alerts, plural, runbook_url, sha256_hex,
    silence_url, source_label, source_url, status_line, title, truncate_bytes, truncate_chars,
    Rendered, FIRING_ALERT_MARKER, RESOLVED_COLOUR, RESOLVED_MARKER,
};
use crate::model::{Alert, Group, Status};

/// Chat's limit for a whole message (text and cards), serialized.
pub const MAX_MESSAGE_BYTES: usize = 32_000;
/// What this renderer allows itself, leaving room under the limit.
pub const MESSAGE_BUDGET_BYTES: usize = 30_000;
/// Query parameter the notifier adds to the webhook URL …
pub const MESSAGE_REPLY_OPTION_PARAM: &str = "messageReplyOption";
/// … with this value: reply in the group's thread, or start it.
pub const MESSAGE_REPLY_OPTION: &str = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD";
/// Chat ignores widgets beyond this many per card.
pub const MAX_WIDGETS_PER_CARD: usize = 100;
/// Groups up to this size get a paragraph per alert; bigger ones a line per alert.
pub const DETAILED_MAX_ALERTS: usize = 8;

/// Alert widgets per card (head and footer widgets come on top; all well under 100).
const MAX_ALERT_WIDGETS: usize = 60;
/// Lines per paragraph in the compact list.
const LINES_PER_PARAGRAPH: usize = 25;
/// Links longer than this are left out rather than cut.
const MAX_LINK_URL: usize = 2_000;
/// Grey for labels and times.
const MUTED_COLOUR: &str = "#5f6368";

/// The thread key for a group: hex SHA-256 of the group key, with a fixed prefix so it never
/// collides with other hashes of the key. Deterministic across restarts and replicas.
pub fn thread_key(group_key: &str) -> String {
    sha256_hex(&format!("beacon-router/google-chat-thread/v1\n{group_key}"))
}

/// Serialized size of a body, as Chat counts it against [`MAX_MESSAGE_BYTES`].
pub fn serialized_len(body: &Value) -> usize {
    serde_json::to_vec(body)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

/// The default card message for a group (its alert text neutralised first: `text.rs`).
pub fn render(group: &Group) -> Value {
    render_neutralised(&neutralise_group(group))
}

fn render_neutralised(group: &Group) -> Value {
    let body = card_message(group);
    if serialized_len(&body) <= MAX_MESSAGE_BYTES {
        body
    } else {
        // Unreachable by construction (every part is budgeted); kept so no input can produce
        // an over-limit body.
        minimal_message(group)
    }
}

/// The receiver's `google_chat_text` template when configured and working (a text message),
/// else the default card (with the error).
pub fn render_with(group: &Group, templates: Option<&Templates>) -> Rendered<Value> {
    let group = &*neutralise_group(group);
    let rendered = templates.and_then(|t| t.render(TemplateKind::GoogleChatText, group));
    match rendered {
        None => Rendered::ok(render_neutralised(group)),
        Some(Ok(text)) if text.trim().is_empty() => Rendered {
            body: render_neutralised(group),
            template_error: Some(
                TemplateError::Output {
                    kind: TemplateKind::GoogleChatText,
                    message: "rendered empty text".into(),
                }
                .to_string(),
            ),
        },
        Some(Ok(text)) => Rendered::ok(text_message(group, &text)),
        Some(Err(e)) => Rendered {
            body: render_neutralised(group),
            template_error: Some(e.to_string()),
        },
    }
}

/// A text-only message in the group's thread, the text cut so the body fits
/// [`MAX_MESSAGE_BYTES`] (JSON escaping included).
pub fn text_message(group: &Group, text: &str) -> Value {
    let build = |t: &str| json!({"text": t, "thread": {"threadKey": thread_key(&group.key)}});
    let overhead = serialized_len(&build(""));
    let room = MAX_MESSAGE_BYTES.saturating_sub(overhead);
    let fitted = super::fit_escaped(
        text,
        room,
        |s| std::borrow::Cow::Borrowed(s),
        json_escaped_len,
    );
    build(&fitted)
}

/// Bytes a string takes inside a JSON string literal, as serde_json writes it.
fn json_escaped_len(s: &str) -> usize {
    s.chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0C}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum()
}

fn thread(group: &Group) -> Value {
    json!({"threadKey": thread_key(&group.key)})
}

/// The `text` beside the card: the title line, sanitized (Chat text has no escaping).
fn text_line(group: &Group) -> String {
    chat_text_sanitize(&truncate_chars(&single_line(&title(group)), 300)).into_owned()
}

/// Whitespace runs (newlines included) become one space; control characters go. Only the
/// first 1,000 chars are kept: every caller cuts far shorter.
fn single_line(s: &str) -> String {
    super::clean_text(super::prefix_chars(s, 1_000).0)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text with newlines as `<br>`, escaped and cut to `max` chars.
fn html_text(raw: &str, max: usize) -> String {
    html_fit(raw.trim(), max).replace('\n', "<br>")
}

fn paragraph(html: String) -> Value {
    json!({"textParagraph": {"text": html}})
}

fn link(url: &str, label: &str) -> Option<String> {
    (url.len() <= MAX_LINK_URL).then(|| format!("<a href=\"{}\">{label}</a>", html_escape(url)))
}

fn button(label: &str, url: &str) -> Option<Value> {
    (url.len() <= MAX_LINK_URL)
        .then(|| json!({"text": label, "onClick": {"openLink": {"url": url}}}))
}

fn marker(alert: &Alert) -> &'static str {
    match alert.status {
        Status::Firing => FIRING_ALERT_MARKER,
        Status::Resolved => RESOLVED_MARKER,
    }
}

fn alert_colour(group: &Group, alert: &Alert) -> &'static str {
    match alert.status {
        Status::Firing => group_severity(group).0.colour(),
        Status::Resolved => RESOLVED_COLOUR,
    }
}

fn labels_html(labels: &[(&str, &str)], max: usize) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        // Right-to-left values are isolated so they cannot reorder the labels around them.
        let item = format!(
            "{}=<b>{}</b>",
            html_fit(&single_line(k), 100),
            isolate_rtl(&html_fit(&single_line(v), 200))
        );
        if out.chars().count() + item.chars().count() + 20 > max {
            out.push_str(&format!(" +{} more", labels.len() - i));
            break;
        }
        if !out.is_empty() {
            out.push_str(" · ");
        }
        out.push_str(&item);
    }
    out
}

/// Status, severity, summary, group labels and buttons.
fn head_widgets(group: &Group) -> Vec<Value> {
    let (sev, raw_sev) = group_severity(group);
    let status_colour = match group.status {
        Status::Firing => sev.colour(),
        Status::Resolved => RESOLVED_COLOUR,
    };
    let status_marker = match group.status {
        Status::Firing => FIRING_ALERT_MARKER,
        Status::Resolved => RESOLVED_MARKER,
    };
    let mut html = format!(
        "<b>Status:</b> <font color=\"{status_colour}\">{status_marker} {}</font>",
        html_text(&status_line(group), 300)
    );
    if let Some(raw) = raw_sev {
        html.push_str(&format!(
            "<br><b>Severity:</b> {} {}",
            sev.marker(),
            html_text(raw, 100)
        ));
    }
    // A single alert's summary heads its own paragraph below.
    if let Some(s) = group_summary(group).filter(|_| group.alerts.len() != 1) {
        html.push_str("<br><b>Summary:</b> ");
        html.push_str(&html_text(s, 1_500));
    }
    let labels = group_display_labels(group);
    if !labels.is_empty() {
        html.push_str("<br><b>Labels:</b> ");
        html.push_str(&labels_html(&labels, 2_000));
    }
    let mut widgets = vec![paragraph(html)];
    let mut buttons = Vec::new();
    if group.status == Status::Firing {
        if let Some(b) = silence_url(group).and_then(|u| button("🔕 Silence", &u)) {
            buttons.push(b);
        }
    }
    if let Some(b) = group_runbook(group).and_then(|u| button("📖 Runbook", u)) {
        buttons.push(b);
    }
    if !buttons.is_empty() {
        widgets.push(json!({"buttonList": {"buttons": buttons}}));
    }
    widgets
}

/// One alert as a paragraph.
fn alert_paragraph(group: &Group, alert: &Alert) -> Value {
    let name = alert_summary(alert)
        .map(str::to_string)
        .or_else(|| alert.labels.get("alertname").cloned())
        .unwrap_or_else(|| format!("alert {}", alert.fingerprint));
    let mut html = format!(
        "<font color=\"{}\"><b>{} {}</b></font>",
        alert_colour(group, alert),
        marker(alert),
        html_text(&single_line(&name), 300)
    );
    if let Some(d) = alert_description(alert) {
        html.push_str("<br>");
        html.push_str(&html_text(d, 1_500));
    }
    let labels = alert_display_labels(group, alert);
    if !labels.is_empty() {
        html.push_str(&format!(
            "<br><font color=\"{MUTED_COLOUR}\">{}</font>",
            labels_html(&labels, 800)
        ));
    }
    let mut tail: Vec<String> = Vec::new();
    if let Some(u) = runbook_url(&alert.annotations) {
        if group_runbook(group) != Some(u) {
            tail.extend(link(u, "Runbook"));
        }
    }
    if let Some(u) = source_url(alert) {
        tail.extend(link(u, source_label(group)));
    }
    if let Some(t) = alert_time_note(alert) {
        tail.push(format!(
            "<font color=\"{MUTED_COLOUR}\">{}</font>",
            html_escape(&t)
        ));
    }
    if !tail.is_empty() {
        html.push_str("<br>");
        html.push_str(&tail.join(" · "));
    }
    paragraph(html)
}

/// One alert as a list line (HTML).
fn alert_line(group: &Group, alert: &Alert) -> String {
    let mut line = format!(
        "<font color=\"{}\">{}</font> {}",
        alert_colour(group, alert),
        marker(alert),
        html_text(&single_line(&alert_headline(group, alert)), 200)
    );
    let labels = alert_display_labels(group, alert);
    if !labels.is_empty() {
        line.push_str(&format!(
            " <font color=\"{MUTED_COLOUR}\">— {}</font>",
            labels_html(&labels, 300)
        ));
    }
    line
}

fn card_message(group: &Group) -> Value {
    let alerts = ordered_alerts(group);
    let build = |alert_widgets: &[Value]| -> Value {
        let c = super::counts(group);
        let mut sections = vec![json!({"widgets": head_widgets(group)})];
        if !alert_widgets.is_empty() {
            let header = match (c.firing, c.resolved) {
                (f, 0) => format!("Alerts ({f} firing)"),
                (0, r) => format!("Alerts ({r} resolved)"),
                (f, r) => format!("Alerts ({f} firing, {r} resolved)"),
            };
            sections.push(json!({"header": header, "widgets": alert_widgets}));
        }
        let (sev, raw_sev) = group_severity(group);
        let subtitle = match raw_sev {
            Some(raw) => format!(
                "{} {} · {}",
                sev.marker(),
                single_line(raw),
                status_line(group)
            ),
            None => status_line(group),
        };
        json!({
            "text": text_line(group),
            "cardsV2": [{
                "cardId": "beacon-alert-group",
                "card": {
                    "header": {
                        "title": truncate_chars(&single_line(&title(group)), 200),
                        "subtitle": truncate_chars(&subtitle, 200),
                    },
                    "sections": sections,
                },
            }],
            "thread": thread(group),
        })
    };

    // The footer is at most this big; measured with it in place so it always fits.
    let footer_reserve = 1_200;
    let mut used = serialized_len(&build(&[])) + footer_reserve;
    let mut widgets: Vec<Value> = Vec::new();
    let mut shown = 0;

    if alerts.len() <= DETAILED_MAX_ALERTS {
        for alert in &alerts {
            let w = alert_paragraph(group, alert);
            let size = serialized_len(&w) + 1;
            if used + size > MESSAGE_BUDGET_BYTES || widgets.len() >= MAX_ALERT_WIDGETS {
                break;
            }
            used += size;
            widgets.push(w);
            shown += 1;
        }
    } else {
        let mut lines: Vec<String> = Vec::new();
        // A paragraph's JSON wrapper and `<br>` separators.
        let wrapper = serialized_len(&paragraph(String::new())) + 1;
        for alert in &alerts {
            let line = alert_line(group, alert);
            let opening = if lines.is_empty() { wrapper } else { 0 };
            let size = json_escaped_len(&line) + 4 + opening;
            if used + size > MESSAGE_BUDGET_BYTES {
                break;
            }
            if lines.len() >= LINES_PER_PARAGRAPH {
                if widgets.len() + 1 >= MAX_ALERT_WIDGETS {
                    break;
                }
                widgets.push(paragraph(std::mem::take(&mut lines).join("<br>")));
                used += wrapper;
            }
            used += size;
            lines.push(line);
            shown += 1;
        }
        if !lines.is_empty() {
            widgets.push(paragraph(lines.join("<br>")));
        }
    }

    let hidden = alerts.len() - shown;
    let more = hidden as u64 + group.truncated_alerts;
    if more > 0 {
        let mut note = format!(
            "<i>…and <b>{more}</b> more {}",
            plural(more as usize, "alert")
        );
        note.push_str(&super::more_detail(
            hidden,
            group.truncated_alerts,
            "max_alerts",
        ));
        note.push_str("</i>");
        // Only a link that keeps the footer inside its reserve.
        if let Some(l) = alerts_url(group)
            .filter(|_| group.status == Status::Firing)
            .filter(|u| u.len() <= footer_reserve - 400)
            .and_then(|u| link(&u, "Open in Alertmanager"))
        {
            note.push_str(" · ");
            note.push_str(&l);
        }
        widgets.push(paragraph(note));
    }
    let mut body = build(&widgets);
    // Defensive: the budget above keeps every body small, but never send one over the limit.
    while serialized_len(&body) > MAX_MESSAGE_BYTES && !widgets.is_empty() {
        widgets.remove(widgets.len().saturating_sub(2).min(widgets.len() - 1));
        body = build(&widgets);
    }
    body
}

/// A message that always fits: title and status only.
fn minimal_message(group: &Group) -> Value {
    let text = format!(
        "{} — {}",
        text_line(group),
        chat_text_sanitize(&status_line(group))
    );
    json!({
        "text": truncate_bytes(&text, 2_000),
        "thread": thread(group),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LabelSet, Source};

    fn group(n: usize, text_len: usize) -> Group {
        let mut common = LabelSet::new();
        common.insert("alertname".into(), "Disk\"Full".into());
        common.insert("severity".into(), "warning".into());
        let alerts = (0..n)
            .map(|i| {
                let mut labels = common.clone();
                labels.insert("instance".into(), format!("h-{i}<b>"));
                let mut annotations = LabelSet::new();
                annotations.insert("summary".into(), format!("disk {i} \"full\""));
                annotations.insert("description".into(), "\u{1}é🚨<".repeat(text_len / 4 + 1));
                Alert {
                    status: Status::Firing,
                    labels,
                    annotations,
                    starts_at: None,
                    ends_at: None,
                    generator_url: Some("http://p/g?x=1&y=2".into()),
                    fingerprint: format!("{i}"),
                }
            })
            .collect();
        Group {
            source: Source::Alertmanager,
            key: "{}:{alertname=\"DiskFull\"}".into(),
            status: Status::Firing,
            receiver: None,
            group_labels: LabelSet::new(),
            common_labels: common,
            common_annotations: LabelSet::new(),
            external_url: Some("http://am".into()),
            alerts,
            truncated_alerts: 3,
            extra: LabelSet::new(),
            dedup_key: "d".into(),
        }
    }

    #[test]
    fn thread_key_is_deterministic_hex() {
        let a = thread_key("{}:{alertname=\"X\"}");
        assert_eq!(a, thread_key("{}:{alertname=\"X\"}"));
        assert_ne!(a, thread_key("{}:{alertname=\"Y\"}"));
        assert_eq!(a.len(), 64);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn cards_stay_within_limits() {
        for n in [0, 1, 8, 9, 100, 600] {
            for len in [5, 10_000] {
                let body = render(&group(n, len));
                assert!(serialized_len(&body) <= MAX_MESSAGE_BYTES, "{n} {len}");
                let widgets: usize = body["cardsV2"][0]["card"]["sections"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .map(|s| s["widgets"].as_array().map_or(0, Vec::len))
                            .sum()
                    })
                    .unwrap_or(0);
                assert!(widgets <= MAX_WIDGETS_PER_CARD);
                assert_eq!(
                    body["thread"]["threadKey"],
                    json!(thread_key(&group(0, 0).key))
                );
                let s = body.to_string();
                assert!(
                    !s.contains("<b>\"") && !s.contains("h-0<b>"),
                    "unescaped: {n}"
                );
                // Three alerts are always missing (truncated_alerts), and 600 never fit.
                assert!(s.contains("…and <b>"), "{n} {len}");
                if n == 600 {
                    assert!(s.contains("did not fit here, 3 not sent"), "{n} {len}");
                }
            }
        }
    }

    #[test]
    fn text_message_fits_with_json_escaping() {
        let g = group(1, 1);
        for s in [
            "\u{1}".repeat(50_000),
            "\"".repeat(40_000),
            "🚨".repeat(20_000),
        ] {
            let body = text_message(&g, &s);
            assert!(serialized_len(&body) <= MAX_MESSAGE_BYTES);
            assert!(serialized_len(&body) > MAX_MESSAGE_BYTES - 100);
        }
        let body = text_message(&g, "short");
        assert_eq!(body["text"], "short");
    }

    #[test]
    fn json_escaped_len_matches_serde() {
        let s = "a\"\\\n\u{1}\u{7f}é🚨\t";
        let serde = serde_json::to_string(s).map(|j| j.len() - 2).unwrap_or(0);
        assert_eq!(json_escaped_len(s), serde);
    }
}
