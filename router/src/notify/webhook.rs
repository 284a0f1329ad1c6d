//! Generic webhook: the group as JSON (`render::webhook`), POSTed with an optional bearer
//! token. 2xx is delivered; 408, 429 and 5xx are retried; other 4xx are permanent.

use reqwest::header::AUTHORIZATION;

use super::{post_json, Attempt, SendError, Sent, ThreadUpdate};
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
        let mut req = self.client.post(self.url.expose());
        if let Some(t) = &self.bearer_token {
            req = req.header(AUTHORIZATION, format!("Bearer {}", t.expose()));
        }
        let body = render::webhook(attempt.group).to_string();
        post_json(req, "application/json", body).await?.success()?;
        Ok(Sent {
            thread: ThreadUpdate::Keep,
            template_error: None,
        })
    }
}
