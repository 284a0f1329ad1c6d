//! Checks shared by the fuzz targets: render a parsed group for every integration and assert
//! the documented limits of Slack (Block Kit) and Google Chat hold, and that the console line is
//! one line. A failed assertion is a crash for libFuzzer.

use beacon_router::model::Group;
use beacon_router::render::{self, google_chat, slack, utf16_len, Templates};
use serde_json::Value;

/// Stack of a tokio worker thread (its default), where the router parses and renders in
/// production; the fuzzer's main thread has 8 MiB and would hide a stack overflow in between.
const PRODUCTION_STACK: usize = 2 * 1024 * 1024;

/// Runs `f` on a thread with the production stack size, re-raising its panic.
pub fn on_production_stack(f: impl FnOnce() + Send) {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .stack_size(PRODUCTION_STACK)
            .spawn_scoped(s, f)
            .expect("fuzz harness: spawning the render thread");
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Renders `group` for every integration (default layout, or `templates` when given) and
/// checks each body.
pub fn render_all(group: &Group, templates: Option<&Templates>) {
    let s = render::slack(group, templates);
    check_slack(&s.body, templates.is_none() || s.template_error.is_some());
    // The request bodies the notifier sends must serialize too.
    for body in [
        s.body.incoming_webhook_body(),
        s.body.post_message_body("C123", Some("1700000000.000100")),
        s.body.update_body("C123", "1700000000.000100"),
    ] {
        serde_json::to_vec(&body).expect("slack request body serializes");
    }

    let c = render::google_chat(group, templates);
    check_google_chat(&c.body);

    let w = render::webhook(group);
    serde_json::to_vec(&w).expect("webhook body serializes");

    let line = render::console(group);
    assert!(
        !line.chars().any(char::is_control),
        "console output must be one line without control characters: {line:?}"
    );
}

/// Slack's Block Kit limits (see `render::slack`). `default_layout` adds what our own layout
/// promises beyond them: no empty text objects (Slack rejects those).
pub fn check_slack(msg: &slack::SlackMessage, default_layout: bool) {
    assert!(
        utf16_len(&msg.text) <= slack::MAX_TEXT,
        "slack text too long: {}",
        utf16_len(&msg.text)
    );
    assert!(
        msg.blocks.len() <= slack::MAX_BLOCKS,
        "too many slack blocks: {}",
        msg.blocks.len()
    );
    let total = slack::block_text_len(&msg.blocks);
    assert!(
        total <= slack::MAX_BLOCK_TEXT_TOTAL,
        "slack block text total {total} over {}",
        slack::MAX_BLOCK_TEXT_TOTAL
    );
    if default_layout {
        assert!(!msg.text.trim().is_empty(), "empty slack fallback text");
        assert!(
            total <= slack::BLOCK_TEXT_BUDGET,
            "default slack layout over its own budget: {total}"
        );
    }
    for block in &msg.blocks {
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "header" => {
                let t = block.pointer("/text/text").and_then(Value::as_str);
                let len = t.map_or(0, utf16_len);
                assert!(
                    len <= slack::MAX_HEADER_TEXT,
                    "slack header text too long: {len}"
                );
            }
            "section" => {
                if let Some(fields) = block.get("fields").and_then(Value::as_array) {
                    assert!(fields.len() <= slack::MAX_FIELDS, "too many section fields");
                    for f in fields {
                        let len = f.get("text").and_then(Value::as_str).map_or(0, utf16_len);
                        assert!(
                            len <= slack::MAX_FIELD_TEXT,
                            "slack field text too long: {len}"
                        );
                    }
                }
            }
            "context" => {
                let n = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                assert!(
                    n <= slack::MAX_CONTEXT_ELEMENTS,
                    "too many context elements: {n}"
                );
            }
            _ => {}
        }
        check_texts(block, default_layout);
    }
}

/// Every string under a `text` key is within the section text limit (and, for our own layout,
/// not empty).
fn check_texts(v: &Value, non_empty: bool) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                match child {
                    Value::String(s) if k == "text" => {
                        assert!(
                            utf16_len(s) <= slack::MAX_SECTION_TEXT,
                            "slack text object too long: {}",
                            utf16_len(s)
                        );
                        if non_empty {
                            assert!(!s.trim().is_empty(), "empty slack text object in {v}");
                        }
                    }
                    other => check_texts(other, non_empty),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| check_texts(c, non_empty)),
        _ => {}
    }
}

/// Google Chat: the serialized message within 32,000 bytes, widgets per card within 100, and a
/// non-empty `text` or a card.
pub fn check_google_chat(body: &Value) {
    let len = google_chat::serialized_len(body);
    assert!(
        len <= google_chat::MAX_MESSAGE_BYTES,
        "google chat body is {len} bytes"
    );
    let cards = body.get("cardsV2").and_then(Value::as_array);
    for card in cards.into_iter().flatten() {
        let widgets: usize = card
            .pointer("/card/sections")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| {
                s.get("widgets")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            })
            .sum();
        assert!(
            widgets <= google_chat::MAX_WIDGETS_PER_CARD,
            "{widgets} widgets in a card"
        );
    }
    let text = body.get("text").and_then(Value::as_str).unwrap_or_default();
    assert!(
        !text.trim().is_empty() || cards.is_some_and(|c| !c.is_empty()),
        "google chat message without text or card: {body}"
    );
}
