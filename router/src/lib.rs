//! beacon-router: Alertmanager and Sentry webhooks in, Slack and Google Chat out.
//!
//! Being built up in layers; what exists so far is listed here.

pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod delivery;
pub mod digest;
pub mod intake;
pub mod listen;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pace;
pub mod render;
pub mod route;
pub use beacon_common::secret;
pub mod server;
pub mod sources;
pub mod store;
