//! beacon-router: Alertmanager and Sentry webhooks in, Slack and Google Chat out.
//!
//! Being built up in layers; what exists so far is listed here.

pub mod model;
