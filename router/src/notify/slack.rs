//! Slack: incoming webhooks (one channel, no threads) and the Web API with a bot token
//! (`chat.postMessage` / `chat.update`), which threads a group's messages under its first one
//! and edits that first message in place when the group resolves.
//!
//! Thread state (stored by the framework per destination and group): the first message's `ts`
//! while the group is open, `resolved:<ts>` once it was shown resolved, so a group that fires
//! again starts a new thread instead of replying under a message that says "resolved" (while a
//! repeated resolved notification still replies in the old thread).
//!
//! Slack answers Web API calls with HTTP 200 and `{"ok": false, "error": ...}`; `ratelimited`
//! and Slack's transient errors are retried, everything else (`channel_not_found`,
//! `invalid_auth`, `invalid_blocks`, ...) is permanent.

use reqwest::header::AUTHORIZATION;
use serde_json::Value;

use super::ThreadUpdate;
use super::{post_json, quote, retry_after, Answer, Attempt, Reason, SendError, Sent};
use crate::config::{Rate, Slack, SlackTarget};
use crate::model::Status;
use crate::render::slack::SlackMessage;
use crate::render::{self, sha256_hex};
use crate::secret::Secret;

/// Prefix of the thread state of a group whose first message shows it resolved.
const RESOLVED: &str = "resolved:";

/// Slack errors that mean "try again later".
const TRANSIENT: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
];

/// `chat.update` errors after which the group's message is posted anew instead.
const GONE: &[&str] = &[
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
];

/// A Slack destination.
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    target: SlackTarget,
    rate: Rate,
    client: reqwest::Client,
}

/// A group's thread state as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Thread<'a> {
    None,
    Open(&'a str),
    Resolved(&'a str),
}

fn parse_thread(state: Option<&str>) -> Thread<'_> {
    match state {
        None | Some("") => Thread::None,
        Some(s) => match s.strip_prefix(RESOLVED) {
            Some(ts) => Thread::Resolved(ts),
            None => Thread::Open(s),
        },
    }
}

impl SlackNotifier {
    /// The notifier for a configured Slack integration.
    pub fn new(config: &Slack, client: &reqwest::Client) -> Self {
        SlackNotifier {
            target: config.target.clone(),
            rate: config.rate,
            client: client.clone(),
        }
    }

    /// One bucket per channel (Web API) or per hook (incoming webhook; keyed by a hash, the
    /// URL being a secret).
    pub fn pacing(&self) -> (String, Rate) {
        let key = match &self.target {
            SlackTarget::WebApi {
                channel, api_url, ..
            } => format!("slack:{api_url}#{channel}"),
            SlackTarget::IncomingWebhook { url } => {
                format!("slack-hook:{}", sha256_hex(url.expose()))
            }
        };
        (key, self.rate)
    }

    /// One attempt (see the module docs for the thread logic).
    pub async fn send(&self, attempt: Attempt<'_>) -> Result<Sent, SendError> {
        let rendered = render::slack(attempt.group, attempt.templates);
        let message = rendered.body;
        let template_error = rendered.template_error;
        let thread = match &self.target {
            SlackTarget::IncomingWebhook { url } => {
                self.post_webhook(url, &message).await?;
                ThreadUpdate::Keep
            }
            SlackTarget::WebApi {
                token,
                channel,
                api_url,
            } => {
                let api = Api {
                    client: &self.client,
                    token,
                    channel,
                    api_url,
                };
                if attempt.digest {
                    api.post(&message, None).await?;
                    ThreadUpdate::Keep
                } else {
                    let resolved = attempt.group.status == Status::Resolved;
                    api.threaded(&message, parse_thread(attempt.thread), resolved)
                        .await?
                }
            }
        };
        Ok(Sent {
            thread,
            template_error,
        })
    }

    async fn post_webhook(&self, url: &Secret, message: &SlackMessage) -> Result<(), SendError> {
        let body = message.incoming_webhook_body().to_string();
        post_json(self.client.post(url.expose()), "application/json", body)
            .await?
            .success()
            .map(|_| ())
    }
}

/// The Web API of one channel.
struct Api<'a> {
    client: &'a reqwest::Client,
    token: &'a Secret,
    channel: &'a str,
    api_url: &'a str,
}

impl Api<'_> {
    /// Posts, replies or edits according to the group's thread state; returns the new state.
    async fn threaded(
        &self,
        message: &SlackMessage,
        thread: Thread<'_>,
        resolved: bool,
    ) -> Result<ThreadUpdate, SendError> {
        match (thread, resolved) {
            (Thread::Open(ts), false) => {
                self.post(message, Some(ts)).await?;
                Ok(ThreadUpdate::Keep)
            }
            (Thread::Open(ts), true) => {
                // Edit the first message to show the group resolved, then say so in the thread
                // so the people following it are told. A retry after a failed reply repeats the
                // edit, which is idempotent.
                if self.update(message, ts).await? {
                    self.post(message, Some(ts)).await?;
                    Ok(ThreadUpdate::Set(format!("{RESOLVED}{ts}")))
                } else {
                    let new_ts = self.post(message, None).await?;
                    Ok(ThreadUpdate::Set(format!("{RESOLVED}{new_ts}")))
                }
            }
            (Thread::Resolved(ts), true) => {
                // Resolved again (a repeat, or an HA peer's copy after the dedup window): say
                // it in the thread, not as a new top-level message.
                self.post(message, Some(ts)).await?;
                Ok(ThreadUpdate::Keep)
            }
            (Thread::None | Thread::Resolved(_), resolved) => {
                let ts = self.post(message, None).await?;
                Ok(ThreadUpdate::Set(if resolved {
                    format!("{RESOLVED}{ts}")
                } else {
                    ts
                }))
            }
        }
    }

    /// `chat.postMessage`; returns the new message's `ts`.
    async fn post(
        &self,
        message: &SlackMessage,
        thread_ts: Option<&str>,
    ) -> Result<String, SendError> {
        let body = message.post_message_body(self.channel, thread_ts);
        let answer = self.call("chat.postMessage", &body).await?;
        match answer.get("ts").and_then(Value::as_str) {
            Some(ts) => Ok(ts.to_string()),
            None => Err(SendError::permanent(
                Reason::InvalidResponse,
                "chat.postMessage: ok without a ts",
            )),
        }
    }

    /// `chat.update` of the message `ts`: true when edited, false when Slack no longer has it
    /// (deleted, too old to edit) and the caller should post anew.
    async fn update(&self, message: &SlackMessage, ts: &str) -> Result<bool, SendError> {
        let body = message.update_body(self.channel, ts);
        match self.call("chat.update", &body).await {
            Ok(_) => Ok(true),
            Err(e) if !e.retryable && GONE.iter().any(|g| e.detail.ends_with(g)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One Web API call; `Ok` holds the answer of an `ok: true` response.
    async fn call(&self, method: &str, body: &Value) -> Result<Value, SendError> {
        let url = format!("{}/{method}", self.api_url.trim_end_matches('/'));
        let req = self
            .client
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()));
        let Answer { headers, text, .. } =
            post_json(req, "application/json; charset=utf-8", body.to_string())
                .await?
                .success()?;
        let answer: Value = serde_json::from_str(&text).map_err(|_| {
            SendError::permanent(
                Reason::InvalidResponse,
                format!("{method}: answer is not json: {}", quote(&text)),
            )
        })?;
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(answer);
        }
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error");
        let detail = format!("{method}: {error}");
        Err(if error == "ratelimited" || error == "rate_limited" {
            SendError::retry(Reason::RateLimited, detail).after(retry_after(&headers))
        } else if TRANSIENT.contains(&error) {
            SendError::retry(Reason::ServerError, detail).after(retry_after(&headers))
        } else {
            SendError::permanent(Reason::Rejected, detail)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_state_round_trip() {
        assert_eq!(parse_thread(None), Thread::None);
        assert_eq!(parse_thread(Some("")), Thread::None);
        assert_eq!(parse_thread(Some("1700.0001")), Thread::Open("1700.0001"));
        assert_eq!(
            parse_thread(Some("resolved:1700.0001")),
            Thread::Resolved("1700.0001")
        );
    }
}
