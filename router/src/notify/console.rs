//! Console: one log line per notification (`render::console`), at the configured level, under
//! the `beacon_router::console` target. Never fails, never paced: the router's out-of-the-box
//! default receiver.

use super::{Attempt, Sent, ThreadUpdate};
use crate::config::{ConsoleConfig, ConsoleLevel};
use crate::render;

/// A console integration.
#[derive(Debug, Clone)]
pub struct ConsoleNotifier {
    level: ConsoleLevel,
}

impl ConsoleNotifier {
    /// The notifier for a configured console integration.
    pub fn new(config: &ConsoleConfig) -> Self {
        ConsoleNotifier {
            level: config.level,
        }
    }

    /// Writes the line.
    pub fn send(&self, attempt: Attempt<'_>) -> Sent {
        let line = render::console(attempt.group);
        match self.level {
            ConsoleLevel::Info => tracing::info!(target: "beacon_router::console", "{line}"),
            ConsoleLevel::Warn => tracing::warn!(target: "beacon_router::console", "{line}"),
            ConsoleLevel::Error => tracing::error!(target: "beacon_router::console", "{line}"),
        }
        Sent {
            thread: ThreadUpdate::Keep,
            template_error: None,
        }
    }
}
