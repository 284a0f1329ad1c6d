//! Generic webhook: the group as JSON (`render::webhook`), POSTed with an optional bearer
//! token. 2xx is delivered; 408, 429 and 5xx are retried; other 4xx are permanent.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use super::{status_error, transport_error, Attempt, SendError, Sent, ThreadUpdate};
use crate::config::Webhook;
use crate::render;
use crate::secret::Secret;

/// A generic JSON webhook.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    url: Secret,
    bearer_token: Option<Secret>,
    client: reqwest::Client,
}

impl WebhookNotifier {
    /// The notifier for a configured webhook integration.
    pub fn new(config: &Webhook, client: &reqwest::Client) -> Self {
        WebhookNotifier {
            url: config.url.clone(),
            bearer_token: config.bearer_token.clone(),
            client: client.clone(),
        }
    }

    /// One attempt.
    pub async fn send(&self, attempt: Attempt<'_>) -> Result<Sent, SendError> {
        let mut req = self
            .client
            .post(self.url.expose())
            .header(CONTENT_TYPE, "application/json")
            .body(render::webhook(attempt.group).to_string());
        if let Some(t) = &self.bearer_token {
            req = req.header(AUTHORIZATION, format!("Bearer {}", t.expose()));
        }
        let resp = req.send().await.map_err(transport_error)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(status_error(status, &headers, &text));
        }
        Ok(Sent {
            thread: ThreadUpdate::Keep,
            template_error: None,
        })
    }
}
