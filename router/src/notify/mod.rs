//! Notifiers: the outbound half of an integration. Each one renders a `Group` with the
//! receiver's templates and makes the HTTP calls of one destination (Slack, Google Chat, a
//! generic webhook) or writes a log line (console). They do one attempt and classify its outcome;
//! the delivery framework (`delivery.rs`) owns pacing, retries, backoff, dead letters, thread
//! state storage and metrics.
//!
//! Errors never carry a URL or token: reqwest errors are stripped of their URL, and response
//! bodies are quoted only briefly.

pub mod console;
pub mod google_chat;
pub mod slack;
pub mod webhook;

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use crate::config::{Integration, Rate};
use crate::model::Group;
use crate::render::Templates;

/// Longest piece of a response body quoted in an error.
const QUOTE: usize = 200;

/// Why an attempt failed: the `reason` label of the failure metrics (a fixed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// 429, or Slack's `ratelimited`.
    RateLimited,
    /// 5xx, or a Slack error meaning "try again".
    ServerError,
    /// No answer within the timeout.
    Timeout,
    /// Could not connect or the connection broke.
    Connection,
    /// The destination refused the message for good (4xx, Slack `channel_not_found`, ...).
    Rejected,
    /// The destination answered something that is not its API's answer.
    InvalidResponse,
}

impl Reason {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RateLimited => "rate_limited",
            Reason::ServerError => "server_error",
            Reason::Timeout => "timeout",
            Reason::Connection => "connection",
            Reason::Rejected => "rejected",
            Reason::InvalidResponse => "invalid_response",
        }
    }
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct SendError {
    /// Class of failure.
    pub reason: Reason,
    /// Whether trying again may succeed.
    pub retryable: bool,
    /// The destination's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// What happened, for logs and the dead-letter list (never a URL or a secret).
    pub detail: String,
}

impl SendError {
    /// A failure worth retrying.
    pub fn retry(reason: Reason, detail: impl Into<String>) -> Self {
        SendError {
            reason,
            retryable: true,
            retry_after: None,
            detail: detail.into(),
        }
    }

    /// A failure that will not get better by retrying.
    pub fn permanent(reason: Reason, detail: impl Into<String>) -> Self {
        SendError {
            reason,
            retryable: false,
            retry_after: None,
            detail: detail.into(),
        }
    }

    /// The same error with the destination's `Retry-After`.
    pub fn after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}

/// What to do with the destination's thread state for the group after a successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadUpdate {
    /// Leave it as it was.
    Keep,
    /// Store this value.
    Set(String),
}

/// A successful send.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// New thread state.
    pub thread: ThreadUpdate,
    /// The receiver's custom template failed and the default message went out instead.
    pub template_error: Option<String>,
}

/// One attempt's input: the group, the receiver's templates and the stored thread state.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// What to send.
    pub group: &'a Group,
    /// The receiver's custom templates.
    pub templates: Option<&'a Templates>,
    /// The destination's stored thread state for the group (Slack: the thread's `ts`).
    pub thread: Option<&'a str>,
    /// A digest of several notifications: posted on its own, never threaded.
    pub digest: bool,
}

/// An integration ready to send.
#[derive(Debug, Clone)]
pub enum Notifier {
    /// Slack incoming webhook or Web API.
    Slack(slack::SlackNotifier),
    /// Google Chat incoming webhook.
    GoogleChat(google_chat::GoogleChatNotifier),
    /// Generic JSON webhook.
    Webhook(webhook::WebhookNotifier),
    /// Log lines.
    Console(console::ConsoleNotifier),
}

impl Notifier {
    /// The notifier for a configured integration, sharing `client`'s connection pool.
    pub fn new(integration: &Integration, client: &reqwest::Client) -> Self {
        match integration {
            Integration::Slack(s) => Notifier::Slack(slack::SlackNotifier::new(s, client)),
            Integration::GoogleChat(g) => {
                Notifier::GoogleChat(google_chat::GoogleChatNotifier::new(g, client))
            }
            Integration::Webhook(w) => Notifier::Webhook(webhook::WebhookNotifier::new(w, client)),
            Integration::Console(c) => Notifier::Console(console::ConsoleNotifier::new(c)),
        }
    }

    /// The integration's name in destinations and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Notifier::Slack(_) => "slack",
            Notifier::GoogleChat(_) => "google_chat",
            Notifier::Webhook(_) => "webhook",
            Notifier::Console(_) => "console",
        }
    }

    /// The pacing bucket and rate: one bucket per channel, space or hook, so queues posting to
    /// the same place share it. `None` for unpaced integrations.
    pub fn pacing(&self) -> Option<(String, Rate)> {
        match self {
            Notifier::Slack(s) => Some(s.pacing()),
            Notifier::GoogleChat(g) => Some(g.pacing()),
            Notifier::Webhook(_) | Notifier::Console(_) => None,
        }
    }

    /// One attempt.
    pub async fn send(&self, attempt: Attempt<'_>) -> Result<Sent, SendError> {
        match self {
            Notifier::Slack(s) => s.send(attempt).await,
            Notifier::GoogleChat(g) => g.send(attempt).await,
            Notifier::Webhook(w) => w.send(attempt).await,
            Notifier::Console(c) => Ok(c.send(attempt)),
        }
    }
}

/// The HTTP client every notifier shares: rustls, no redirects (a redirect could carry a
/// secret URL elsewhere), a per-request timeout.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("beacon-router/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("http client: {}", e.without_url()))
}

/// A transport error (no answer) as a retryable `SendError`, without the URL.
pub fn transport_error(e: reqwest::Error) -> SendError {
    let reason = if e.is_timeout() {
        Reason::Timeout
    } else {
        Reason::Connection
    };
    let e = e.without_url();
    // reqwest's Display is terse ("error sending request"); the source says why.
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    SendError::retry(reason, detail)
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers (for `Retry-After`).
    pub headers: HeaderMap,
    /// Its body.
    pub text: String,
}

impl Answer {
    /// The answer of a 2xx, else the classified error.
    pub fn success(self) -> Result<Answer, SendError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(status_error(self.status, &self.headers, &self.text))
        }
    }
}

/// Sends a JSON POST and reads the whole answer; no answer at all is a retryable error.
pub async fn post_json(
    req: reqwest::RequestBuilder,
    content_type: &'static str,
    body: String,
) -> Result<Answer, SendError> {
    let resp = req
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .map_err(transport_error)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.map_err(transport_error)?;
    Ok(Answer {
        status,
        headers,
        text,
    })
}

/// `Retry-After` in seconds (the form Slack and Google send); an HTTP date is ignored and the
/// caller's backoff applies.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// The classification of an HTTP status that is not a success: 429 and 408 and 5xx retry,
/// other 4xx are permanent.
pub fn status_error(status: StatusCode, headers: &HeaderMap, body: &str) -> SendError {
    let detail = format!("http {}: {}", status.as_u16(), quote(body));
    if status == StatusCode::TOO_MANY_REQUESTS {
        SendError::retry(Reason::RateLimited, detail).after(retry_after(headers))
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        SendError::retry(Reason::ServerError, detail).after(retry_after(headers))
    } else {
        SendError::permanent(Reason::Rejected, detail)
    }
}

/// A response body cut to a short, single-line quote.
pub fn quote(body: &str) -> String {
    let one_line: String = body
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::render::truncate_chars(&one_line, QUOTE).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds_and_garbage() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(30)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn statuses_are_classified() {
        let h = HeaderMap::new();
        let e = status_error(StatusCode::TOO_MANY_REQUESTS, &h, "slow down");
        assert!(e.retryable);
        assert_eq!(e.reason, Reason::RateLimited);
        assert!(status_error(StatusCode::BAD_GATEWAY, &h, "").retryable);
        assert!(status_error(StatusCode::REQUEST_TIMEOUT, &h, "").retryable);
        let e = status_error(StatusCode::NOT_FOUND, &h, "no_service\n");
        assert!(!e.retryable);
        assert_eq!(e.to_string(), "rejected: http 404: no_service");
    }

    #[test]
    fn quotes_are_short_and_single_line() {
        let q = quote(&format!("a\nb{}", "x".repeat(500)));
        assert!(q.starts_with("a b"));
        assert!(q.chars().count() <= QUOTE + 1, "{}", q.len());
    }
}
