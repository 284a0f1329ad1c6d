//! The running router's shared state: the store, intake, metrics and the active config
//! with its destinations (swapped whole on reload), plus the two signals that tie the parts
//! together: "new work was queued" and "shut down".
//!
//! A destination is one integration of one receiver, named `<receiver>/<integration>/<n>` (the
//! n-th integration of that kind in the receiver): one queue and one delivery worker each.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Config, ConfigError, Loaded};
use crate::intake::Intake;
use crate::metrics::Metrics;
use crate::model::Group;
use crate::notify::Notifier;
use crate::render::Templates;
use crate::store::{Dedup, NewDelivery, Store};

/// One delivery target, ready to send.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Receiver name (metric label).
    pub receiver: String,
    /// Integration kind (metric label).
    pub integration: &'static str,
    /// The integration's sender.
    pub notifier: Notifier,
    /// The receiver's custom templates.
    pub templates: Option<Templates>,
}

/// A loaded config and the destinations built from it.
#[derive(Debug)]
pub struct Active {
    /// The config.
    pub config: Loaded,
    /// Destinations by name.
    pub destinations: BTreeMap<String, Destination>,
}

impl Active {
    /// Builds the destinations of `config`, sharing `client`.
    pub fn new(config: Loaded, client: &reqwest::Client) -> Self {
        let mut destinations = BTreeMap::new();
        for receiver in &config.receivers {
            let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
            for integration in &receiver.integrations {
                let notifier = Notifier::new(integration, client);
                let kind = notifier.kind();
                let n = seen.entry(kind).or_insert(0);
                destinations.insert(
                    format!("{}/{kind}/{n}", receiver.name),
                    Destination {
                        receiver: receiver.name.clone(),
                        integration: kind,
                        notifier,
                        templates: receiver.templates.clone(),
                    },
                );
                *n += 1;
            }
        }
        Active {
            config,
            destinations,
        }
    }

    /// What one inbound group becomes: one delivery per destination of every receiver it
    /// routes to, each carrying a dedup claim on (destination, routed group state).
    pub fn plan(&self, group: &Group) -> Vec<NewDelivery> {
        let ttl = self.config.delivery.dedup_window;
        let mut out = Vec::new();
        for (receiver, part) in self.config.route.route_group(group) {
            for (name, _) in self
                .destinations
                .iter()
                .filter(|(_, d)| d.receiver == receiver)
            {
                out.push(NewDelivery {
                    destination: name.clone(),
                    dedup: (!ttl.is_zero()).then(|| Dedup {
                        key: format!("{name}|{}", part.dedup_key),
                        ttl,
                    }),
                    group: part.clone(),
                });
            }
        }
        out
    }
}

/// Everything the HTTP handlers and delivery workers share.
pub struct App {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Group-commit writer in front of the store.
    pub intake: Intake,
    /// Self-metrics.
    pub metrics: Metrics,
    /// The config file, for reloads (`None` when running on built-in defaults).
    pub config_path: Option<PathBuf>,
    /// How long in-flight sends may take to finish on shutdown.
    pub drain_timeout: Duration,
    active: RwLock<Arc<Active>>,
    client: reqwest::Client,
    work: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("config_path", &self.config_path)
            .field("active", &self.active())
            .finish_non_exhaustive()
    }
}

/// Per-request timeout of outbound calls.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

impl App {
    /// The shared state over `store`, running `config`.
    pub fn new(
        store: Arc<dyn Store>,
        config: Loaded,
        config_path: Option<PathBuf>,
    ) -> anyhow::Result<Arc<Self>> {
        let client = crate::notify::client(SEND_TIMEOUT).map_err(anyhow::Error::msg)?;
        let active = Arc::new(Active::new(config, &client));
        let metrics = Metrics::new();
        metrics.last_reload_ok.set(1);
        let (work, _) = watch::channel(0u64);
        let (shutdown, _) = watch::channel(false);
        // The intake's commit callback needs the work signal before the App exists.
        let work_signal = work.clone();
        let batches = metrics.intake_batches.clone();
        let intake = Intake::start(store.clone(), move |_| {
            batches.inc();
            work_signal.send_modify(|n| *n = n.wrapping_add(1));
        })?;
        Ok(Arc::new(App {
            store,
            intake,
            metrics,
            config_path,
            drain_timeout: Duration::from_secs(10),
            active: RwLock::new(active),
            client,
            work,
            shutdown,
        }))
    }

    /// The active config and destinations.
    pub fn active(&self) -> Arc<Active> {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the config file; on success the new config is active, on failure the old one
    /// stays and the error (with every problem and its path) is returned.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let Some(path) = &self.config_path else {
            // Built-in defaults: nothing to re-read.
            self.metrics.reloads.with_label_values(&["success"]).inc();
            return Ok(());
        };
        match Config::load(path) {
            Ok(config) => {
                let old = self.active();
                if config.listen != old.config.listen
                    || config.storage_path != old.config.storage_path
                {
                    tracing::warn!(
                        "listen and storage.path changes take effect at the next restart"
                    );
                }
                let new = Arc::new(Active::new(config, &self.client));
                *self.active.write().unwrap_or_else(|p| p.into_inner()) = new;
                self.metrics.reloads.with_label_values(&["success"]).inc();
                self.metrics.last_reload_ok.set(1);
                tracing::info!(path = %path.display(), "config reloaded");
                self.signal_work();
                Ok(())
            }
            Err(e) => {
                self.metrics.reloads.with_label_values(&["failure"]).inc();
                self.metrics.last_reload_ok.set(0);
                tracing::error!(error = %e, "config reload failed; keeping the running config");
                Err(e)
            }
        }
    }

    /// Wakes the delivery workers (new work queued, config changed).
    pub fn signal_work(&self) {
        self.work.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver of the work signal.
    pub fn work_signal(&self) -> watch::Receiver<u64> {
        self.work.subscribe()
    }

    /// Starts shutting down: workers stop taking new work.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver of the shutdown signal.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Whether shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
