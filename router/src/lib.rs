//! beacon-router: Alertmanager and Sentry webhooks in, Slack and Google Chat out.
//!
//! Being built up in layers; what exists so far is listed here.

pub mod auth;
pub mod config;
pub mod model;
pub mod render;
pub mod route;
pub mod secret;
pub mod sources;
pub mod store;
