//! Google Chat incoming webhooks. Messages carry `thread.threadKey` (derived from the group key
//! by the renderer, so restarts and replicas agree) and are posted with
//! `messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD`: a group's later messages reply in
//! its thread. Chat webhooks cannot edit messages, so a resolved group is a reply in its thread.

use reqwest::Url;
use serde_json::Value;

use super::{post_json, status_error, Answer, Attempt, Reason, SendError, Sent, ThreadUpdate};
use crate::config::{GoogleChat, Rate};
use crate::render::{self, sha256_hex};
use crate::secret::Secret;

/// The query parameter that makes a threadKey reply, falling back to a new thread.
const REPLY_OPTION: (&str, &str) = ("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");

/// A Google Chat space's webhook.
#[derive(Debug, Clone)]
pub struct GoogleChatNotifier {
    url: Secret,
    rate: Rate,
    client: reqwest::Client,
}

impl GoogleChatNotifier {
    /// The notifier for a configured Google Chat integration.
    pub fn new(config: &GoogleChat, client: &reqwest::Client) -> Self {
        GoogleChatNotifier {
            url: config.url.clone(),
            rate: config.rate,
            client: client.clone(),
        }
    }

    /// One bucket per space (`/v1/spaces/{space}/messages`); a URL of another shape gets a
    /// bucket of its own, keyed by a hash (the URL is a secret).
    pub fn pacing(&self) -> (String, Rate) {
        let key = Url::parse(self.url.expose())
            .ok()
            .and_then(|u| {
                let mut parts = u.path_segments()?;
                while let Some(p) = parts.next() {
                    if p == "spaces" {
                        let space = parts.next()?;
                        return Some(format!("chat:{}/{space}", u.host_str().unwrap_or("")));
                    }
                }
                None
            })
            .unwrap_or_else(|| format!("chat-hook:{}", sha256_hex(self.url.expose())));
        (key, self.rate)
    }

    /// The webhook URL with the reply option set (kept if the configured URL already has it).
    fn post_url(&self) -> Result<Url, SendError> {
        let mut url = Url::parse(self.url.expose()).map_err(|e| {
            SendError::permanent(Reason::Rejected, format!("webhook url is not a url: {e}"))
        })?;
        if !url.query_pairs().any(|(k, _)| k == REPLY_OPTION.0) {
            url.query_pairs_mut()
                .append_pair(REPLY_OPTION.0, REPLY_OPTION.1);
        }
        Ok(url)
    }

    /// One attempt: posts the message (in the group's thread).
    pub async fn send(&self, attempt: Attempt<'_>) -> Result<Sent, SendError> {
        let rendered = render::google_chat(attempt.group, attempt.templates);
        let Answer {
            status,
            headers,
            text,
        } = post_json(
            self.client.post(self.post_url()?),
            "application/json; charset=UTF-8",
            rendered.body.to_string(),
        )
        .await?;
        if !status.is_success() {
            let detail = error_detail(&text, &url_secrets(self.url.expose()));
            return Err(status_error(status, &headers, &detail));
        }
        // The answer is the created message; record its thread so the state shows where the
        // group's messages went (threading itself needs no state: the key is deterministic).
        let thread = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.pointer("/thread/name")?.as_str().map(str::to_owned))
            .map_or(ThreadUpdate::Keep, ThreadUpdate::Set);
        Ok(Sent {
            thread,
            template_error: rendered.template_error,
        })
    }
}

/// The parts of a webhook URL that are a credential, in the forms an error body may quote them:
/// the whole URL, its path and query, and each query value (raw and decoded).
fn url_secrets(raw: &str) -> Vec<String> {
    let mut secrets = vec![raw.to_owned()];
    if let Ok(u) = Url::parse(raw) {
        secrets.push(u.path().to_owned());
        if let Some(q) = u.query() {
            secrets.push(q.to_owned());
            secrets.extend(
                q.split('&')
                    .filter_map(|kv| Some(kv.split_once('=')?.1.to_owned())),
            );
        }
        secrets.extend(u.query_pairs().map(|(_, v)| v.into_owned()));
    }
    // Short values ("1") would redact half the message without protecting anything.
    secrets.retain(|s| s.len() >= 4);
    // Longest first, so a value inside the query is not redacted before the query is.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// What a failed answer says, for the log and the dead letter: Google's JSON error as
/// `STATUS: message`, else the body as text (an HTML error page from Google's front end without
/// its markup), `(empty body)` when there is none; every credential of the webhook URL replaced
/// by `<redacted>` (Google's HTML 404 page quotes the requested URL, key and token included).
/// `status_error` then bounds it to a short single line.
fn error_detail(text: &str, secrets: &[String]) -> String {
    let json_error =
        serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| match v.get("error")? {
                Value::String(s) => Some(s.clone()),
                e => {
                    let part = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").trim();
                    let parts: Vec<&str> = [part("status"), part("message")]
                        .into_iter()
                        .filter(|p| !p.is_empty())
                        .collect();
                    (!parts.is_empty()).then(|| parts.join(": "))
                }
            });
    let mut detail = match json_error {
        Some(e) => e,
        None if text.trim_start().starts_with('<') => strip_markup(text),
        None => text.trim().to_owned(),
    };
    for secret in secrets {
        if detail.contains(secret.as_str()) {
            detail = detail.replace(secret.as_str(), "<redacted>");
        }
    }
    if detail.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        detail
    }
}

/// The text of an HTML page: tags and `<style>`/`<script>` contents dropped, whitespace runs
/// collapsed. Enough for an error page; looks at the first 16,384 characters only.
fn strip_markup(html: &str) -> String {
    let head = crate::render::prefix_chars(html, 16 * 1024).0;
    let mut out = String::with_capacity(head.len() / 2);
    let mut rest = head;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let tag = &rest[open..];
        let lower = tag.get(..8).unwrap_or(tag).to_ascii_lowercase();
        let skip_to = if lower.starts_with("<style") {
            tag.find("</style>").map(|i| i + "</style>".len())
        } else if lower.starts_with("<script") {
            tag.find("</script>").map(|i| i + "</script>".len())
        } else {
            tag.find('>').map(|i| i + 1)
        };
        match skip_to {
            Some(n) => rest = &tag[n..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Vec<String> {
        url_secrets("https://chat.googleapis.com/v1/spaces/AAA/messages?key=KEY123&token=TOK%3D456")
    }

    #[test]
    fn google_errors_say_status_and_message() {
        let s = secrets();
        let body =
            r#"{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}"#;
        assert_eq!(
            error_detail(body, &s),
            "INTERNAL: Internal error encountered."
        );
        assert_eq!(
            error_detail(r#"{"error":"backend down"}"#, &s),
            "backend down"
        );
        assert_eq!(
            error_detail(r#"{"error":{"code":503}}"#, &s),
            r#"{"error":{"code":503}}"#
        );
        assert_eq!(error_detail("", &s), "(empty body)");
        assert_eq!(error_detail("  upstream reset ", &s), "upstream reset");
    }

    #[test]
    fn html_pages_are_text_and_the_url_is_redacted() {
        let s = secrets();
        let page = "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error 404 (Not Found)!!1</title><style>*{margin:0}</style><p><b>404.</b> <ins>That’s an error.</ins><p>The requested URL <code>/v1/spaces/AAA/messages?key=KEY123&amp;token=TOK=456</code> was not found on this server. <ins>That’s all we know.</ins>";
        let d = error_detail(page, &s);
        assert!(
            d.starts_with("Error 404 (Not Found)!!1 404. That’s an error."),
            "{d}"
        );
        assert!(
            !d.contains("KEY123") && !d.contains("TOK") && !d.contains("AAA"),
            "{d}"
        );
        assert!(d.contains("<redacted>"), "{d}");
    }
}
