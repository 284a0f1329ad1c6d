//! Slack messages: Block Kit `blocks` plus a fallback `text`, always within Slack's limits, and
//! the request bodies for an incoming webhook, `chat.postMessage` and `chat.update`.
//!
//! Limits (Slack's Block Kit reference): at most 50 blocks; header text 150 characters;
//! section text 3,000; section fields 10 of 2,000 each; context 10 elements; about 12,000
//! characters of text across all blocks; top-level `text` 40,000. Lengths are counted in UTF-16
//! code units, which is never less than the character count, so the limits hold whichever way
//! Slack counts.
//!
//! Layout: a header (`🟡 [FIRING:3] KubePodCrashLooping`), a section with status, severity,
//! summary and the group's links (silence, runbook), a context line with the group's labels,
//! then the alerts. Up to [`DETAILED_MAX_ALERTS`] alerts get a section each (summary,
//! description, distinguishing labels, runbook and source links, since when); bigger groups are
//! listed one line per alert, packed into sections. Whatever does not fit in the budget is
//! summarised as "…and N more" (counting `truncated_alerts` too) with a link to the group in
//! Alertmanager.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::template::{TemplateError, TemplateKind, Templates};
use super::text::{
    isolate_rtl, neutralise_group, slack_markup_neutralise, slack_mentions_neutralise,
};
use super::{
    alert_description, alert_display_labels, alert_headline, alert_summary, alert_time_note,
    alerts_url, group_display_labels, group_runbook, group_severity, group_summary, more_detail,
    ordered_alerts, plural, runbook_url, silence_url, slack_fit, slack_link, slack_text_escape,
    source_label, source_url, status_line, title, truncate_utf16, utf16_len, Rendered,
    FIRING_ALERT_MARKER, RESOLVED_MARKER,
};
use crate::model::{Alert, Group, Status};

/// Most blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Header block text.
pub const MAX_HEADER_TEXT: usize = 150;
/// Section block text (and any text object).
pub const MAX_SECTION_TEXT: usize = 3000;
/// Section fields: count and text of each.
pub const MAX_FIELDS: usize = 10;
pub const MAX_FIELD_TEXT: usize = 2000;
/// Context block elements.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Slack's documented ceiling for text across all blocks of a message.
pub const MAX_BLOCK_TEXT_TOTAL: usize = 12_000;
/// What this renderer allows itself across all blocks: under the ceiling with room to spare.
pub const BLOCK_TEXT_BUDGET: usize = 11_000;
/// Top-level `text`.
pub const MAX_TEXT: usize = 40_000;
/// Groups up to this size get a section per alert; bigger ones a line per alert.
pub const DETAILED_MAX_ALERTS: usize = 8;

/// Default fallback text: one line for notifications and screen readers.
const FALLBACK_TEXT_MAX: usize = 1_000;
/// Text kept free for the "…and N more" footer.
const FOOTER_RESERVE: usize = 1_000;
/// Our own cap for default context text (well under the text object limit).
const CONTEXT_TEXT_MAX: usize = 2_000;
/// One alert line in the compact list.
const COMPACT_LINE_MAX: usize = 400;
/// Links longer than this are left out rather than cut (a cut URL is a broken link).
const MAX_LINK_URL: usize = 1_500;

/// A Slack message: fallback `text` and Block Kit `blocks` (empty for a text-only message).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Vec<Value>,
}

impl SlackMessage {
    /// Body for an incoming webhook (`POST` to the hook URL).
    pub fn incoming_webhook_body(&self) -> Value {
        let mut m = self.base();
        no_unfurl(&mut m);
        Value::Object(m)
    }

    /// Body for `chat.postMessage`: `channel`, and `thread_ts` to reply in a group's thread.
    pub fn post_message_body(&self, channel: &str, thread_ts: Option<&str>) -> Value {
        let mut m = Map::new();
        m.insert("channel".into(), json!(channel));
        if let Some(ts) = thread_ts {
            m.insert("thread_ts".into(), json!(ts));
        }
        m.extend(self.base());
        no_unfurl(&mut m);
        Value::Object(m)
    }

    /// Body for `chat.update`: rewrites the message `ts` in `channel` (the group's first
    /// message, shown resolved in place once the group resolves). `blocks` is always sent:
    /// `chat.update` keeps the old blocks when the field is missing, and an empty array clears
    /// them for a text-only message.
    pub fn update_body(&self, channel: &str, ts: &str) -> Value {
        json!({
            "channel": channel,
            "ts": ts,
            "text": self.text,
            "blocks": self.blocks,
        })
    }

    fn base(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("text".into(), json!(self.text));
        if !self.blocks.is_empty() {
            m.insert("blocks".into(), Value::Array(self.blocks.clone()));
        }
        m
    }
}

/// Prometheus graph links would otherwise unfurl into big previews under every alert.
fn no_unfurl(m: &mut Map<String, Value>) {
    m.insert("unfurl_links".into(), json!(false));
    m.insert("unfurl_media".into(), json!(false));
}

/// The default message for a group (its alert text neutralised first: `text.rs`).
pub fn render(group: &Group) -> SlackMessage {
    render_neutralised(&neutralise_group(group))
}

fn render_neutralised(group: &Group) -> SlackMessage {
    SlackMessage {
        text: fallback_text(group),
        blocks: default_blocks(group),
    }
}

/// The receiver's templates when configured and working, else the default message (with the
/// error). Any failing Slack template makes the whole message the default, never a mix.
pub fn render_with(group: &Group, templates: Option<&Templates>) -> Rendered<SlackMessage> {
    let group = &*neutralise_group(group);
    let Some(t) = templates else {
        return Rendered::ok(render_neutralised(group));
    };
    let mut errors: Vec<TemplateError> = Vec::new();
    let text = match t.render(TemplateKind::SlackText, group) {
        None => None,
        Some(Ok(s)) if s.trim().is_empty() => {
            errors.push(TemplateError::Output {
                kind: TemplateKind::SlackText,
                message: "rendered empty text".into(),
            });
            None
        }
        Some(Ok(s)) => Some(truncate_utf16(&s, MAX_TEXT).into_owned()),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
    };
    let blocks = match t.render(TemplateKind::SlackBlocks, group) {
        None => None,
        Some(Ok(s)) => match parse_blocks(&s) {
            Ok(b) => Some(enforce_limits(b)),
            Err(message) => {
                errors.push(TemplateError::Output {
                    kind: TemplateKind::SlackBlocks,
                    message,
                });
                None
            }
        },
        Some(Err(e)) => {
            errors.push(e);
            None
        }
    };
    if !errors.is_empty() {
        let msg: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Rendered {
            body: render_neutralised(group),
            template_error: Some(msg.join("; ")),
        };
    }
    let body = match (text, blocks) {
        (None, None) => render_neutralised(group),
        (Some(text), None) => SlackMessage {
            text,
            blocks: Vec::new(),
        },
        (text, Some(blocks)) => SlackMessage {
            text: text.unwrap_or_else(|| fallback_text(group)),
            blocks,
        },
    };
    Rendered::ok(body)
}

/// Parses a blocks template's output: a JSON array of block objects, or `{"blocks": [...]}`.
fn parse_blocks(s: &str) -> Result<Vec<Value>, String> {
    let v: Value =
        serde_json::from_str(s.trim()).map_err(|e| format!("output is not valid JSON: {e}"))?;
    let arr = match v {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("blocks") {
            Some(Value::Array(a)) => a,
            _ => return Err("output must be a JSON array of blocks or {\"blocks\": [...]}".into()),
        },
        _ => return Err("output must be a JSON array of blocks or {\"blocks\": [...]}".into()),
    };
    for (i, b) in arr.iter().enumerate() {
        if !b.get("type").is_some_and(Value::is_string) {
            return Err(format!("block {i} is not an object with a \"type\""));
        }
    }
    Ok(arr)
}

/// Brings any blocks within Slack's limits: cuts over-long texts, fields and context elements,
/// then drops trailing blocks beyond 50 or beyond the text budget, noting how many were left
/// out. Used on template output; the default layout is built within the limits already.
pub fn enforce_limits(blocks: Vec<Value>) -> Vec<Value> {
    let mut blocks: Vec<Value> = blocks
        .into_iter()
        .filter(Value::is_object)
        .map(|mut b| {
            clamp_block(&mut b);
            b
        })
        .collect();
    if blocks.len() <= MAX_BLOCKS && block_text_len(&blocks) <= BLOCK_TEXT_BUDGET {
        return blocks;
    }
    let total = blocks.len();
    let mut kept = Vec::new();
    let mut used = 0;
    for b in blocks.drain(..) {
        let len = text_len(&b);
        if kept.len() + 1 >= MAX_BLOCKS || used + len > BLOCK_TEXT_BUDGET - FOOTER_RESERVE {
            break;
        }
        used += len;
        kept.push(b);
    }
    let dropped = total - kept.len();
    kept.push(context(&format!(
        "…{dropped} more {} not shown (Slack message size limits)",
        plural(dropped, "block")
    )));
    kept
}

/// Cuts the texts of one block to the limits of its type.
fn clamp_block(block: &mut Value) {
    let kind = block
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match kind.as_str() {
        "header" => clamp_text_at(block.pointer_mut("/text/text"), MAX_HEADER_TEXT),
        "section" => {
            if let Some(Value::Array(fields)) = block.get_mut("fields") {
                fields.truncate(MAX_FIELDS);
                for f in fields.iter_mut() {
                    clamp_text_at(f.get_mut("text"), MAX_FIELD_TEXT);
                }
            }
        }
        "context" => {
            if let Some(Value::Array(elements)) = block.get_mut("elements") {
                elements.truncate(MAX_CONTEXT_ELEMENTS);
            }
        }
        _ => {}
    }
    clamp_all_texts(block, MAX_SECTION_TEXT);
}

fn clamp_text_at(v: Option<&mut Value>, max: usize) {
    if let Some(Value::String(s)) = v {
        if utf16_len(s) > max {
            *s = truncate_utf16(s, max).into_owned();
        }
    }
}

/// Every string under a `text` key, anywhere in the value, cut to `max`.
fn clamp_all_texts(v: &mut Value, max: usize) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if k == "text" && child.is_string() {
                    clamp_text_at(Some(child), max);
                } else {
                    clamp_all_texts(child, max);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| clamp_all_texts(c, max)),
        _ => {}
    }
}

/// Text length of one block: UTF-16 units of every string under a `text` key.
pub fn text_len(v: &Value) -> usize {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, child)| match child {
                Value::String(s) if k == "text" => utf16_len(s),
                other => text_len(other),
            })
            .sum(),
        Value::Array(a) => a.iter().map(text_len).sum(),
        _ => 0,
    }
}

/// Text across all blocks, as counted against [`MAX_BLOCK_TEXT_TOTAL`].
pub fn block_text_len(blocks: &[Value]) -> usize {
    blocks.iter().map(text_len).sum()
}

// ---------------------------------------------------------------------------------------------
// Default layout

/// The fallback `text`: title and summary on one line (notifications, screen readers).
pub fn fallback_text(group: &Group) -> String {
    let mut raw = title(group);
    if let Some(s) = group_summary(group).filter(|s| !raw.contains(s)) {
        raw.push_str(" — ");
        raw.push_str(s);
    }
    slack_fit(&single_line(&raw), FALLBACK_TEXT_MAX)
}

/// A header block. `plain_text` shows `<!channel>` and `*` literally (Slack parses no markup
/// there), so only plain-text mentions need neutralising.
fn header(text: &str) -> Value {
    json!({
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": truncate_utf16(&slack_mentions_neutralise(&single_line(text)), MAX_HEADER_TEXT),
            "emoji": true,
        },
    })
}

fn section(mrkdwn: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}})
}

fn context(mrkdwn: &str) -> Value {
    json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate_utf16(mrkdwn, CONTEXT_TEXT_MAX)}],
    })
}

/// Whitespace runs (newlines included) become one space; control characters go. Only the
/// first 1,000 chars are kept: every caller cuts far shorter.
fn single_line(s: &str) -> String {
    super::clean_text(super::prefix_chars(s, 1_000).0)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `` `k=v` `k=v` `` within `max` units, with "+N more" when labels had to be left out.
/// Backticks in names and values would end the code span early, so they become a look-alike;
/// right-to-left values are isolated so they cannot reorder the labels around them.
fn label_list(labels: &[(&str, &str)], max: usize) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        let key = slack_fit(&single_line(k).replace('`', "ˋ"), 100);
        let room = 200usize.saturating_sub(utf16_len(&key) + 1).max(20);
        let value = slack_fit(&single_line(v).replace('`', "ˋ"), room);
        let item = format!("`{key}={}`", isolate_rtl(&value));
        let more = labels.len() - i;
        let reserve = if more > 1 { 12 } else { 0 };
        if utf16_len(&out) + 1 + utf16_len(&item) + reserve > max {
            out.push_str(&format!(" +{more} more"));
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&item);
    }
    out
}

/// Appends ` · link` pieces that still fit in `max` total; long URLs are left out.
fn push_links(out: &mut String, links: &[(String, &str)], max: usize) {
    for (url, label) in links {
        if utf16_len(url) > MAX_LINK_URL {
            continue;
        }
        let link = slack_link(url, label);
        let sep = if out.is_empty() || out.ends_with('\n') {
            ""
        } else {
            " · "
        };
        if utf16_len(out) + utf16_len(sep) + utf16_len(&link) <= max {
            out.push_str(sep);
            out.push_str(&link);
        }
    }
}

/// Status, severity, summary and the group's links.
fn summary_section(group: &Group) -> Value {
    let (sev, raw_sev) = group_severity(group);
    let status_marker = match group.status {
        Status::Firing => FIRING_ALERT_MARKER,
        Status::Resolved => RESOLVED_MARKER,
    };
    let mut text = format!(
        "*Status:* {status_marker} {}",
        slack_fit(&status_line(group), 300)
    );
    if let Some(raw) = raw_sev {
        text.push_str(&format!(
            "    *Severity:* {} {}",
            sev.marker(),
            slack_fit(&single_line(raw), 100)
        ));
    }
    // A single alert's summary heads its own section below.
    if let Some(s) = group_summary(group).filter(|_| group.alerts.len() != 1) {
        text.push_str("\n*Summary:* ");
        text.push_str(&slack_fit(s, 1_200));
    }
    let mut links: Vec<(String, &str)> = Vec::new();
    if group.status == Status::Firing {
        if let Some(u) = silence_url(group) {
            links.push((u, "🔕 Silence"));
        }
    }
    if let Some(u) = group_runbook(group) {
        links.push((u.to_string(), "📖 Runbook"));
    }
    if !links.is_empty() {
        text.push('\n');
        push_links(&mut text, &links, MAX_SECTION_TEXT);
    }
    section(text)
}

/// One alert as a section of at most `max` units.
fn alert_section(group: &Group, alert: &Alert, max: usize) -> Value {
    let max = max.min(MAX_SECTION_TEXT);
    let marker = match alert.status {
        Status::Firing => FIRING_ALERT_MARKER,
        Status::Resolved => RESOLVED_MARKER,
    };
    let name = alert_summary(alert)
        .map(str::to_string)
        .or_else(|| alert.labels.get("alertname").cloned())
        .unwrap_or_else(|| format!("alert {}", alert.fingerprint));
    // Inside our bold: an attacker's `*`, `_`, `~` or backtick must not end or restyle it.
    let mut text = format!(
        "{marker} *{}*",
        slack_fit(
            &slack_markup_neutralise(&single_line(&name)),
            (max / 6).clamp(40, 300)
        )
    );
    if let Some(d) = alert_description(alert) {
        text.push('\n');
        text.push_str(&slack_fit(d, (max * 2 / 5).clamp(40, 1_500)));
    }
    let labels = alert_display_labels(group, alert);
    if !labels.is_empty() {
        text.push('\n');
        text.push_str(&label_list(&labels, (max / 5).clamp(40, 600)));
    }
    let mut links: Vec<(String, &str)> = Vec::new();
    if let Some(u) = runbook_url(&alert.annotations) {
        // Shown once in the summary section when every alert shares it.
        if group_runbook(group) != Some(u) {
            links.push((u.to_string(), "📖 Runbook"));
        }
    }
    if let Some(u) = source_url(alert) {
        links.push((u.to_string(), source_label(group)));
    }
    let mut tail = String::new();
    push_links(&mut tail, &links, max.saturating_sub(utf16_len(&text) + 60));
    if let Some(t) = alert_time_note(alert) {
        let t = slack_text_escape(&t).into_owned();
        if !tail.is_empty() {
            tail.push_str(" · ");
        }
        tail.push_str(&t);
    }
    if !tail.is_empty() {
        text.push('\n');
        text.push_str(&tail);
    }
    // The budgets above keep within `max`; this only guards the arithmetic.
    section(truncate_utf16(&text, max).into_owned())
}

/// One alert as a single list line.
fn alert_line(group: &Group, alert: &Alert) -> String {
    let marker = match alert.status {
        Status::Firing => FIRING_ALERT_MARKER,
        Status::Resolved => RESOLVED_MARKER,
    };
    let mut line = format!(
        "{marker} {}",
        slack_fit(&single_line(&alert_headline(group, alert)), 200)
    );
    let labels = alert_display_labels(group, alert);
    if !labels.is_empty() {
        line.push_str(" — ");
        line.push_str(&label_list(&labels, 150));
    }
    truncate_utf16(&line, COMPACT_LINE_MAX).into_owned()
}

/// The default blocks: head, alerts while the budget lasts, then "…and N more".
fn default_blocks(group: &Group) -> Vec<Value> {
    let mut blocks = vec![header(&title(group)), summary_section(group)];
    let labels = group_display_labels(group);
    if !labels.is_empty() {
        blocks.push(context(&label_list(&labels, CONTEXT_TEXT_MAX)));
    }
    let alerts = ordered_alerts(group);
    if !alerts.is_empty() {
        blocks.push(json!({"type": "divider"}));
    }
    let mut used = block_text_len(&blocks);
    let budget = BLOCK_TEXT_BUDGET.saturating_sub(FOOTER_RESERVE);
    // Blocks left for alerts, keeping one for the footer.
    let block_room = |blocks: &Vec<Value>| MAX_BLOCKS.saturating_sub(blocks.len() + 1);
    let mut shown = 0;

    if alerts.len() <= DETAILED_MAX_ALERTS {
        let per_alert = budget.saturating_sub(used) / alerts.len().max(1);
        for alert in &alerts {
            let b = alert_section(group, alert, per_alert);
            let len = text_len(&b);
            if used + len > budget || block_room(&blocks) == 0 {
                break;
            }
            used += len;
            blocks.push(b);
            shown += 1;
        }
    } else {
        // The section being filled, and its length (kept, not recounted per line).
        let mut current = String::new();
        let mut current_len = 0;
        for alert in &alerts {
            let line = alert_line(group, alert);
            let line_len = utf16_len(&line);
            // With the newline that separates it from the previous line.
            let add = line_len + 1;
            if used + add > budget {
                break;
            }
            if current_len + add > MAX_SECTION_TEXT {
                // Flushing needs a block for this section and still one for the next.
                if block_room(&blocks) < 2 {
                    break;
                }
                blocks.push(section(std::mem::take(&mut current)));
                current_len = 0;
            }
            if !current.is_empty() {
                current.push('\n');
                current_len += 1;
            }
            current.push_str(&line);
            current_len += line_len;
            used += add;
            shown += 1;
        }
        if !current.is_empty() {
            blocks.push(section(current));
        }
    }

    let hidden = alerts.len() - shown;
    let more = hidden as u64 + group.truncated_alerts;
    if more > 0 {
        let mut note = format!("…and *{more}* more {}", plural(more as usize, "alert"));
        note.push_str(&more_detail(hidden, group.truncated_alerts, "`max_alerts`"));
        if let Some(u) = alerts_url(group).filter(|_| group.status == Status::Firing) {
            let mut links = String::new();
            push_links(&mut links, &[(u, "🔎 Open in Alertmanager")], 1_600);
            if !links.is_empty() {
                note.push_str(" · ");
                note.push_str(&links);
            }
        }
        blocks.push(context(&note));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LabelSet, Source};

    fn alert(i: usize, status: Status, text_len: usize) -> Alert {
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), "HighLatency".into());
        labels.insert("instance".into(), format!("host-{i}"));
        let mut annotations = LabelSet::new();
        annotations.insert("summary".into(), format!("Latency high on host-{i}"));
        annotations.insert("description".into(), "x<&>🚨".repeat(text_len / 5 + 1));
        Alert {
            status,
            labels,
            annotations,
            starts_at: Some("2026-01-01T00:00:00Z".into()),
            ends_at: None,
            generator_url: Some(format!("http://prom:9090/graph?g0.expr=up&i={i}")),
            fingerprint: format!("{i:016x}"),
        }
    }

    fn group(n: usize, text_len: usize) -> Group {
        let mut common = LabelSet::new();
        common.insert("alertname".into(), "HighLatency".into());
        common.insert("severity".into(), "critical".into());
        Group {
            source: Source::Alertmanager,
            key: "k".into(),
            status: Status::Firing,
            receiver: None,
            group_labels: common.clone(),
            common_labels: common,
            common_annotations: LabelSet::new(),
            external_url: Some("http://am:9093".into()),
            alerts: (0..n).map(|i| alert(i, Status::Firing, text_len)).collect(),
            truncated_alerts: 0,
            extra: LabelSet::new(),
            dedup_key: "d".into(),
        }
    }

    fn check_limits(m: &SlackMessage) {
        assert!(m.blocks.len() <= MAX_BLOCKS, "{} blocks", m.blocks.len());
        assert!(block_text_len(&m.blocks) <= MAX_BLOCK_TEXT_TOTAL);
        assert!(utf16_len(&m.text) <= MAX_TEXT);
        for b in &m.blocks {
            match b["type"].as_str() {
                Some("header") => {
                    assert!(utf16_len(b["text"]["text"].as_str().unwrap_or("")) <= MAX_HEADER_TEXT)
                }
                Some("section") => {
                    let t = b["text"]["text"].as_str().unwrap_or("");
                    assert!(!t.is_empty());
                    assert!(utf16_len(t) <= MAX_SECTION_TEXT)
                }
                _ => {}
            }
        }
    }

    /// Alerts listed in a message: lines starting with a firing marker in sections.
    fn shown_alerts(m: &SlackMessage) -> usize {
        m.blocks
            .iter()
            .filter(|b| b["type"] == "section")
            .flat_map(|b| {
                b["text"]["text"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|l| l.starts_with("🔥 "))
            .count()
    }

    #[test]
    fn big_groups_are_summarised_within_limits() {
        for n in [0, 1, 3, 8, 9, 50, 500] {
            for len in [10, 5_000] {
                let m = render(&group(n, len));
                check_limits(&m);
                let shown = shown_alerts(&m);
                let last = m.blocks.last().map(|b| b.to_string()).unwrap_or_default();
                if shown < n {
                    let note = format!("…and *{}* more", n - shown);
                    assert!(last.contains(&note), "{n} {len}: {last}");
                }
                if n >= 500 {
                    assert!(shown < n && shown > 50, "{n} {len}: {shown}");
                }
            }
        }
    }

    #[test]
    fn footer_counts_hidden_and_truncated_alerts() {
        let mut g = group(500, 10);
        g.truncated_alerts = 7;
        let m = render(&g);
        let footer = m.blocks.last().map(|b| b.to_string()).unwrap_or_default();
        let more = 500 - shown_alerts(&m) + 7;
        assert!(
            footer.contains(&format!("…and *{more}* more alerts")),
            "{footer}"
        );
        assert!(footer.contains("7 not sent by Alertmanager"), "{footer}");
    }

    #[test]
    fn enforce_limits_cuts_templates_output() {
        let blocks: Vec<Value> = (0..80)
            .map(|_| section("y".repeat(5_000)))
            .chain([header(&"h".repeat(500))])
            .collect();
        let out = enforce_limits(blocks);
        assert!(out.len() <= MAX_BLOCKS);
        assert!(block_text_len(&out) <= BLOCK_TEXT_BUDGET);
        assert!(out
            .last()
            .map(|b| b.to_string())
            .unwrap_or_default()
            .contains("not shown"));
        // Small inputs are left alone.
        let small = vec![section("ok".into())];
        assert_eq!(enforce_limits(small.clone()), small);
    }

    #[test]
    fn parse_blocks_accepts_array_or_object() {
        assert!(parse_blocks(r#"[{"type":"divider"}]"#).is_ok());
        assert!(parse_blocks(r#"{"blocks":[{"type":"divider"}]}"#).is_ok());
        assert!(parse_blocks(r#"[1]"#).is_err());
        assert!(parse_blocks(r#""x""#).is_err());
        assert!(parse_blocks("[").is_err());
    }

    #[test]
    fn api_bodies() {
        let m = render(&group(1, 10));
        let hook = m.incoming_webhook_body();
        assert!(hook.get("channel").is_none());
        assert_eq!(hook["unfurl_links"], json!(false));
        let post = m.post_message_body("C123", Some("1700000000.000100"));
        assert_eq!(post["channel"], "C123");
        assert_eq!(post["thread_ts"], "1700000000.000100");
        assert_eq!(post["blocks"], json!(m.blocks));
        assert!(m.post_message_body("C123", None).get("thread_ts").is_none());
        let upd = SlackMessage {
            text: "t".into(),
            blocks: vec![],
        }
        .update_body("C123", "1.2");
        assert_eq!(
            upd,
            json!({"channel": "C123", "ts": "1.2", "text": "t", "blocks": []})
        );
    }
}
