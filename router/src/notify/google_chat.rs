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
            // Google's errors are JSON: {"error": {"code", "message", "status"}}.
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| {
                    let e = v.get("error")?;
                    Some(format!(
                        "{} {}",
                        e.get("status").and_then(Value::as_str).unwrap_or(""),
                        e.get("message").and_then(Value::as_str).unwrap_or("")
                    ))
                })
                .unwrap_or(text);
            return Err(status_error(status, &headers, &message));
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
