//! Router configuration: the YAML file's structure with its defaults and user documentation,
//! validation that reports every problem with its path, and the build phase that reads secrets
//! and compiles the routing tree.
//!
//! Phases: parse (serde, unknown keys are errors), then `validate` (pure: no files, no
//! environment; collects every problem), then `build` (reads `*_file` secrets, resolves
//! `${ENV}` references, compiles matchers and templates). `Config::load` runs all three.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::auth::{AlertmanagerAuth, BasicAuth};
use crate::render::{TemplateSources, Templates};
use crate::route::{Matcher, Route};
use crate::secret::{Secret, SecretError};

/// Default `listen`: every interface, Alertmanager's port plus one.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9094";
/// Default `storage.path`.
pub const DEFAULT_STORAGE_PATH: &str = "/var/lib/beacon-router";
/// Default `inbound.max_body_bytes`: 1 MiB, far above a 50-alert Alertmanager group.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;
/// Default Slack Web API base URL.
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";
/// Default Slack pacing per channel: Slack allows about one message per second per channel,
/// with short bursts tolerated.
pub const DEFAULT_SLACK_RATE: Rate = Rate {
    per_second: 1.0,
    burst: 3,
};
/// Default Google Chat pacing per space: one message per second, no burst.
pub const DEFAULT_GOOGLE_CHAT_RATE: Rate = Rate {
    per_second: 1.0,
    burst: 1,
};
/// Default `delivery.max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Default `delivery.initial_backoff`.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Default `delivery.max_backoff`.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// Default `delivery.max_retry_after`.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);
/// Default `delivery.max_age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// Default `delivery.dedup_window`.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Default `delivery.digest_after`.
pub const DEFAULT_DIGEST_AFTER: Duration = Duration::from_secs(60);
/// Name of the receiver used when none is configured.
pub const DEFAULT_RECEIVER: &str = "console";
/// Deepest routing tree accepted; real trees are a few levels deep, and the cap keeps the
/// recursive walks bounded.
pub const MAX_ROUTE_DEPTH: usize = 32;

/// The whole router configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the webhook and metrics server listens on (`host:port`).
    pub listen: String,
    /// Where durable state lives.
    pub storage: Storage,
    /// Authentication and limits of the inbound webhook endpoints.
    pub inbound: Inbound,
    /// Named destinations. When none is given, a single `console` receiver named `console` is
    /// used (with a root route to it), so the router runs out of the box.
    pub receivers: Vec<ReceiverConfig>,
    /// The routing tree. Required when receivers are configured.
    pub route: Option<RouteConfig>,
    /// Retries, deduplication and digests.
    pub delivery: Delivery,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            storage: Storage::default(),
            inbound: Inbound::default(),
            receivers: Vec::new(),
            route: None,
            delivery: Delivery::default(),
        }
    }
}

/// Durable state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// Directory of the embedded store (queue, dedup keys, Slack thread timestamps). Unused
    /// when `redis` is set.
    pub path: PathBuf,
    /// Share all state through Redis instead, so several replicas can run side by side.
    pub redis: Option<RedisConfig>,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            path: DEFAULT_STORAGE_PATH.into(),
            redis: None,
        }
    }
}

/// Default `storage.redis.key_prefix`.
pub const DEFAULT_REDIS_PREFIX: &str = "beacon:";
/// Default `storage.redis.claim_after`.
pub const DEFAULT_CLAIM_AFTER: Duration = Duration::from_secs(30);
/// Default `storage.redis.wait_timeout`.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(1);

/// The Redis store as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port[/db]` or `rediss://` (TLS); with Sentinel,
    /// `redis+sentinel://host:port[,host:port...]/master_name[/db]` (`rediss+sentinel://`:
    /// TLS to the Sentinels and the primary). No password in it: use `password_file`.
    pub url: String,
    /// ACL user the router logs in as (`AUTH username password`); without it, `default`.
    pub username: Option<String>,
    /// File holding the Redis password (`requirepass` / ACL user's password).
    pub password_file: Option<PathBuf>,
    /// With Sentinel: file holding the Sentinels' own password (their `requirepass`), if they
    /// have one.
    pub sentinel_password_file: Option<PathBuf>,
    /// Replicas that must confirm every write (`WAIT`) before a webhook is acknowledged, and
    /// before dedup claims, thread state and delivery acks count as stored. Unset: 1 while the
    /// primary reports a connected replica, 0 on a lone primary. 0: never wait. Too few in
    /// time: the webhook is answered 503 (Alertmanager retries).
    pub min_replicas: Option<u32>,
    /// How long replicas get to confirm a write. Default 1s.
    #[serde(default = "default_wait_timeout", deserialize_with = "duration")]
    pub wait_timeout: Duration,
    /// Redis Cluster: `url` names any node. Every key then carries one hash tag made from
    /// `key_prefix` (`beacon:` becomes `{beacon}:`), so the router's state lives in one slot
    /// (served by one primary) and its scripts run there; redirects are followed.
    #[serde(default)]
    pub cluster: bool,
    /// Prefix of every key, so several routers can share one Redis. Default `beacon:`.
    #[serde(default = "default_redis_prefix")]
    pub key_prefix: String,
    /// A delivery leased by a replica that has not finished it within this time is taken over
    /// by another (the replica is presumed dead). Longer than the slowest send. Default 30s.
    #[serde(default = "default_claim_after", deserialize_with = "duration")]
    pub claim_after: Duration,
}

fn default_redis_prefix() -> String {
    DEFAULT_REDIS_PREFIX.to_owned()
}

fn default_claim_after() -> Duration {
    DEFAULT_CLAIM_AFTER
}

fn default_wait_timeout() -> Duration {
    DEFAULT_WAIT_TIMEOUT
}

/// The Redis store, ready to connect.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// The URL (without a password).
    pub url: String,
    /// The ACL user, if any.
    pub username: Option<String>,
    /// The password, if any.
    pub password: Option<Secret>,
    /// The Sentinels' password, if any.
    pub sentinel_password: Option<Secret>,
    /// Replicas every write waits for; `None`: automatic.
    pub min_replicas: Option<u32>,
    /// How long they get.
    pub wait_timeout: Duration,
    /// Redis Cluster mode.
    pub cluster: bool,
    /// Key prefix.
    pub key_prefix: String,
    /// Idle time after which another replica's lease is taken over.
    pub claim_after: Duration,
}

/// Inbound endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inbound {
    /// `POST /webhooks/alertmanager` authentication. With nothing configured the endpoint is
    /// open.
    pub alertmanager: AlertmanagerInbound,
    /// `POST /webhooks/sentry` authentication.
    pub sentry: SentryInbound,
    /// Largest accepted request body (`1MiB` or a byte count); larger bodies get 413.
    #[serde(deserialize_with = "size")]
    pub max_body_bytes: u64,
    /// A connection must send a request's whole header within this time, or it is closed (a
    /// client that trickles its header, or sends nothing, holds no socket for long). Default 10s.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed. Default 60s.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue until one closes.
    /// Keep it under the process's file-descriptor limit. Default 512.
    pub max_connections: usize,
}

/// Default `inbound.header_read_timeout`: a webhook's header arrives in one packet; 10 s is
/// generous for a slow network and short for a client holding sockets.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `inbound.idle_timeout`: under the 90 s Go's HTTP client (Alertmanager) keeps an idle
/// connection, so most reuse still works.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `inbound.max_connections`: half the usual 1,024 file-descriptor limit, leaving the
/// rest for the store and outgoing connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

impl Default for Inbound {
    fn default() -> Self {
        Self {
            alertmanager: AlertmanagerInbound::default(),
            sentry: SentryInbound::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// How the webhook listener treats connections (fixed for the process: a reload keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// `inbound.header_read_timeout`.
    pub header_read_timeout: Duration,
    /// `inbound.idle_timeout`.
    pub idle_timeout: Duration,
    /// `inbound.max_connections`.
    pub max_connections: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// What Alertmanager must send (its `http_config`). Either credential is accepted when both
/// are configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerInbound {
    /// File holding the bearer token (`http_config.authorization.credentials`).
    pub bearer_token_file: Option<PathBuf>,
    /// Basic-auth credentials (`http_config.basic_auth`).
    pub basic_auth: Option<BasicAuthConfig>,
}

/// Basic-auth credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// User name (not a secret).
    pub username: String,
    /// File holding the password.
    pub password_file: PathBuf,
}

/// Sentry authentication.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentryInbound {
    /// File holding the integration's client secret: `Sentry-Hook-Signature` is checked with it.
    /// Without it, signed Sentry webhooks are refused.
    pub client_secret_file: Option<PathBuf>,
    /// File holding the token the legacy WebHooks plugin puts in the URL (`?token=...`).
    /// Without it, legacy plugin payloads are refused.
    pub legacy_token_file: Option<PathBuf>,
}

/// A named destination: one or more integrations side by side, each delivered and retried
/// independently.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Name routes refer to. Unique.
    pub name: String,
    /// Slack destinations.
    #[serde(default)]
    pub slack: Vec<SlackConfig>,
    /// Google Chat spaces.
    #[serde(default)]
    pub google_chat: Vec<GoogleChatConfig>,
    /// Generic JSON webhooks.
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
    /// Log lines on the router's output.
    #[serde(default)]
    pub console: Vec<ConsoleConfig>,
    /// Custom minijinja templates for this receiver's messages (`slack_text`, `slack_blocks`,
    /// `google_chat_text`). A template failing at runtime falls back to the default message.
    #[serde(default)]
    pub templates: Option<TemplateSources>,
}

/// A Slack destination: an incoming webhook (`webhook_url` or `webhook_url_file`), or the Web
/// API with a bot token and a channel, which enables threading and resolving in place.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Incoming webhook URL, or `${ENV_VAR}`. A secret: never logged.
    #[serde(default, deserialize_with = "inline_secret")]
    pub webhook_url: Option<Secret>,
    /// File holding the incoming webhook URL.
    pub webhook_url_file: Option<PathBuf>,
    /// File holding a bot token (`xoxb-...`) with `chat:write`: selects the Web API.
    pub token_file: Option<PathBuf>,
    /// Channel ID (or name) to post to with the Web API. Required with `token_file`.
    pub channel: Option<String>,
    /// Web API base URL; change it only to point at a test server.
    #[serde(default = "default_slack_api_url")]
    pub api_url: String,
    /// Pacing for this channel. Default 1 message/s, burst 3.
    #[serde(default)]
    pub rate: RateConfig,
}

/// A Google Chat space's incoming webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleChatConfig {
    /// Incoming webhook URL (with its `key` and `token`), or `${ENV_VAR}`. A secret.
    #[serde(default, deserialize_with = "inline_secret")]
    pub webhook_url: Option<Secret>,
    /// File holding the incoming webhook URL.
    pub webhook_url_file: Option<PathBuf>,
    /// Pacing for this space. Default 1 message/s, burst 1.
    #[serde(default)]
    pub rate: RateConfig,
}

/// A generic JSON webhook: each notification is POSTed as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Destination URL, or `${ENV_VAR}`. A secret (URLs often carry credentials).
    #[serde(default, deserialize_with = "inline_secret")]
    pub url: Option<Secret>,
    /// File holding the destination URL.
    pub url_file: Option<PathBuf>,
    /// File holding a token sent as `Authorization: Bearer <token>`.
    pub bearer_token_file: Option<PathBuf>,
}

/// Log lines for each notification.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Log level of the lines. Default `info`.
    #[serde(default)]
    pub level: ConsoleLevel,
}

/// Log level of console notifications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleLevel {
    /// `info` (the default).
    #[default]
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

/// Token-bucket pacing as written; unset fields take the integration's default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Messages per second sustained (fractions allowed: `0.5` is one every two seconds).
    pub per_second: Option<f64>,
    /// Messages that may go out back to back before pacing applies.
    pub burst: Option<u32>,
}

impl RateConfig {
    /// The rate with unset fields taken from `default`.
    pub fn or(&self, default: Rate) -> Rate {
        Rate {
            per_second: self.per_second.unwrap_or(default.per_second),
            burst: self.burst.unwrap_or(default.burst),
        }
    }
}

/// Token-bucket pacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

/// Retries, deduplication and digests, for every destination.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Attempts per notification before it goes to the dead-letter list.
    pub max_attempts: u32,
    /// First retry delay; doubled each attempt, with jitter.
    #[serde(deserialize_with = "duration")]
    pub initial_backoff: Duration,
    /// Longest retry delay.
    #[serde(deserialize_with = "duration")]
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; a longer one is cut to this.
    #[serde(deserialize_with = "duration")]
    pub max_retry_after: Duration,
    /// A notification still undelivered this long after it arrived goes to the dead-letter
    /// list.
    #[serde(deserialize_with = "duration")]
    pub max_age: Duration,
    /// A group state (or Sentry body) seen again within this window is not sent again.
    #[serde(deserialize_with = "duration")]
    pub dedup_window: Duration,
    /// Backlog for a destination older than this is coalesced into digest messages.
    #[serde(deserialize_with = "duration")]
    pub digest_after: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            max_age: DEFAULT_MAX_AGE,
            dedup_window: DEFAULT_DEDUP_WINDOW,
            digest_after: DEFAULT_DIGEST_AFTER,
        }
    }
}

/// A node of the routing tree as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Receiver for alerts this node matches; children without one inherit it. Required at
    /// the root (the default receiver).
    pub receiver: Option<String>,
    /// Label matchers in Alertmanager syntax (`severity="critical"`, `team=~"pay.*"`,
    /// `env!="dev"`, `service!~"test-.*"`); all must match. Not allowed at the root.
    #[serde(default)]
    pub matchers: Vec<String>,
    /// After this route matched, keep trying its later siblings.
    #[serde(default)]
    pub r#continue: bool,
    /// Child routes, tried in order.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

pub use beacon_common::{ConfigError, Problem};

/// A loaded, validated configuration with its secrets read: what the daemon runs on.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Listen address.
    pub listen: SocketAddr,
    /// Embedded store directory.
    pub storage_path: PathBuf,
    /// The Redis store, when configured (then `storage_path` is unused).
    pub redis: Option<RedisSettings>,
    /// Alertmanager endpoint credentials.
    pub alertmanager_auth: AlertmanagerAuth,
    /// Sentry integration client secret.
    pub sentry_client_secret: Option<Secret>,
    /// Legacy Sentry plugin URL token.
    pub sentry_legacy_token: Option<Secret>,
    /// Largest accepted body.
    pub max_body_bytes: u64,
    /// Connection limits of the webhook listener.
    pub listener: ListenerLimits,
    /// Receivers, in config order (the default console receiver when none is configured).
    pub receivers: Vec<Receiver>,
    /// The compiled routing tree.
    pub route: Route,
    /// Delivery settings.
    pub delivery: Delivery,
}

impl Loaded {
    /// The receiver with this name.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }
}

/// A receiver ready for delivery.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Its name.
    pub name: String,
    /// Its integrations in config order (slack, google_chat, webhook, console). Empty for a
    /// blackhole receiver: routed alerts are acknowledged and dropped.
    pub integrations: Vec<Integration>,
    /// Compiled custom templates.
    pub templates: Option<Templates>,
}

/// One delivery target of a receiver.
#[derive(Debug, Clone)]
pub enum Integration {
    /// Slack incoming webhook or Web API.
    Slack(Slack),
    /// Google Chat incoming webhook.
    GoogleChat(GoogleChat),
    /// Generic JSON webhook.
    Webhook(Webhook),
    /// Log lines.
    Console(ConsoleConfig),
}

/// How a Slack destination is reached.
#[derive(Debug, Clone)]
pub enum SlackTarget {
    /// Incoming webhook: one fixed channel, no threading.
    IncomingWebhook {
        /// The webhook URL (a secret).
        url: Secret,
    },
    /// Web API: `chat.postMessage` / `chat.update`, threaded.
    WebApi {
        /// Bot token.
        token: Secret,
        /// Channel to post to.
        channel: String,
        /// API base URL.
        api_url: String,
    },
}

/// A Slack destination ready for delivery.
#[derive(Debug, Clone)]
pub struct Slack {
    /// Where to send.
    pub target: SlackTarget,
    /// Pacing.
    pub rate: Rate,
}

/// A Google Chat destination ready for delivery.
#[derive(Debug, Clone)]
pub struct GoogleChat {
    /// The webhook URL (a secret).
    pub url: Secret,
    /// Pacing.
    pub rate: Rate,
}

/// A generic webhook ready for delivery.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Destination (a secret).
    pub url: Secret,
    /// Optional bearer token.
    pub bearer_token: Option<Secret>,
}

impl Config {
    /// Reads, parses, validates a config file and reads its secrets.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        Self::load_parsed(path)
            .and_then(|c| c.build())
            .map_err(|e| e.in_file(path))
    }

    /// Reads, parses and validates a config file without reading its secrets.
    pub fn load_parsed(path: &Path) -> Result<Config, ConfigError> {
        let text = ConfigError::read_file(path)?;
        Self::from_yaml(&text).map_err(|e| e.in_file(path))
    }

    /// Parses and validates YAML text. An empty document is the default configuration.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            // Without the source snippet: the lines around an error may hold an inline
            // webhook URL, which must not reach logs or `check-config` output.
            serde_saphyr::from_str(text).map_err(|e: serde_saphyr::Error| ConfigError {
                file: None,
                problems: vec![Problem {
                    path: "(yaml)".into(),
                    message: e.without_snippet().to_string(),
                }],
            })?
        };
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError {
                file: None,
                problems,
            })
        }
    }

    /// The configured receivers, or the default single `console` receiver when none is.
    pub fn effective_receivers(&self) -> Vec<ReceiverConfig> {
        if self.receivers.is_empty() {
            vec![ReceiverConfig {
                name: DEFAULT_RECEIVER.to_owned(),
                console: vec![ConsoleConfig::default()],
                ..ReceiverConfig::default()
            }]
        } else {
            self.receivers.clone()
        }
    }

    /// The configured route, or a root route to the default receiver when there is neither a
    /// route nor a receiver. `None` when receivers are configured without a route (invalid).
    pub fn effective_route(&self) -> Option<RouteConfig> {
        match &self.route {
            Some(r) => Some(r.clone()),
            None if self.receivers.is_empty() => Some(RouteConfig {
                receiver: Some(DEFAULT_RECEIVER.to_owned()),
                ..RouteConfig::default()
            }),
            None => None,
        }
    }

    /// Checks everything serde cannot. Pure (reads no file or environment); returns every
    /// problem.
    pub fn validate(&self) -> Vec<Problem> {
        let mut v = Problems::default();
        if let Err(e) = self.listen.parse::<SocketAddr>() {
            v.add(
                "listen",
                format!("invalid listen address {:?}: {e}", self.listen),
            );
        }
        match &self.storage.redis {
            None if self.storage.path.as_os_str().is_empty() => {
                v.add("storage.path", "must not be empty".into());
            }
            None => {}
            Some(r) => {
                let sentinel = r
                    .url
                    .split_once("://")
                    .is_some_and(|(scheme, _)| scheme.ends_with("+sentinel"));
                let problem = if sentinel {
                    sentinel_url_problem(&r.url)
                } else {
                    check_url(
                        &r.url,
                        &["redis", "rediss", "redis+sentinel", "rediss+sentinel"],
                    )
                    .err()
                };
                if let Some(problem) = problem {
                    v.add("storage.redis.url", problem);
                } else if r
                    .url
                    .split_once("://")
                    .is_some_and(|(_, rest)| rest.split('/').next().unwrap_or("").contains('@'))
                {
                    // Never quote the URL here: it holds a credential.
                    v.add(
                        "storage.redis.url",
                        "must not contain credentials: put the password in storage.redis.password_file".into(),
                    );
                }
                if r.key_prefix.is_empty() {
                    v.add("storage.redis.key_prefix", "must not be empty".into());
                }
                if r.claim_after.is_zero() {
                    v.add("storage.redis.claim_after", "must be greater than 0".into());
                }
                // `WAIT n 0` blocks for ever.
                if r.wait_timeout.is_zero() {
                    v.add(
                        "storage.redis.wait_timeout",
                        "must be greater than 0".into(),
                    );
                }
                if r.sentinel_password_file.is_some() && !sentinel {
                    v.add(
                        "storage.redis.sentinel_password_file",
                        "only with a redis+sentinel:// or rediss+sentinel:// url".into(),
                    );
                }
                if r.cluster && sentinel {
                    v.add(
                        "storage.redis.cluster",
                        "a cluster elects its own primaries: use a node's redis:// URL, not Sentinel".into(),
                    );
                }
                if r.username.as_deref() == Some("") {
                    v.add("storage.redis.username", "must not be empty".into());
                }
            }
        }
        if self.inbound.max_body_bytes == 0 {
            v.add("inbound.max_body_bytes", "must be greater than 0".into());
        }
        for (key, d) in [
            (
                "inbound.header_read_timeout",
                self.inbound.header_read_timeout,
            ),
            ("inbound.idle_timeout", self.inbound.idle_timeout),
        ] {
            if d.is_zero() {
                v.add(key, "must be greater than 0".into());
            }
        }
        if self.inbound.max_connections == 0 {
            v.add("inbound.max_connections", "must be at least 1".into());
        }
        if let Some(b) = &self.inbound.alertmanager.basic_auth {
            if b.username.is_empty() {
                v.add(
                    "inbound.alertmanager.basic_auth.username",
                    "must not be empty".into(),
                );
            }
        }
        self.validate_delivery(&mut v);

        let receivers = self.effective_receivers();
        let mut names: Vec<&str> = Vec::new();
        for (i, r) in receivers.iter().enumerate() {
            let path = format!("receivers[{i}]");
            if r.name.is_empty() {
                v.add(&format!("{path}.name"), "required".into());
            } else if let Some(first) = names.iter().position(|n| *n == r.name) {
                v.add(
                    &format!("{path}.name"),
                    format!(
                        "duplicate receiver name {:?} (first at receivers[{first}])",
                        r.name
                    ),
                );
            }
            names.push(&r.name);
            validate_receiver(&path, r, &mut v);
        }

        match self.effective_route() {
            None => v.add(
                "route",
                "required when receivers are configured (its receiver is the default)".into(),
            ),
            Some(root) => {
                if root.receiver.is_none() {
                    v.add(
                        "route.receiver",
                        "required on the root route (it is the default receiver)".into(),
                    );
                }
                if !root.matchers.is_empty() {
                    v.add(
                        "route.matchers",
                        "not allowed on the root route (it matches every alert)".into(),
                    );
                }
                if root.r#continue {
                    v.add("route.continue", "not allowed on the root route".into());
                }
                validate_route("route", &root, &names, 0, &mut v);
            }
        }
        v.0
    }

    fn validate_delivery(&self, v: &mut Problems) {
        let d = &self.delivery;
        if d.max_attempts == 0 {
            v.add("delivery.max_attempts", "must be at least 1".into());
        }
        for (name, value) in [
            ("initial_backoff", d.initial_backoff),
            ("max_backoff", d.max_backoff),
            ("max_age", d.max_age),
            ("dedup_window", d.dedup_window),
            ("digest_after", d.digest_after),
        ] {
            if value.is_zero() {
                v.add(&format!("delivery.{name}"), "must be greater than 0".into());
            }
        }
        if d.initial_backoff > d.max_backoff {
            v.add(
                "delivery.initial_backoff",
                format!(
                    "must not exceed max_backoff ({})",
                    humantime::format_duration(d.max_backoff)
                ),
            );
        }
    }

    /// Reads every secret, resolves `${ENV}` references and compiles the routing tree and
    /// templates. Reports every unreadable secret with its config path and file path, never
    /// its content. Call on a validated config (`from_yaml` validates).
    pub fn build(&self) -> Result<Loaded, ConfigError> {
        let mut v = Problems::default();
        let listen = self
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("invalid listen address {:?}: {e}", self.listen));
        let listen = v.ok("listen", listen);

        let am = &self.inbound.alertmanager;
        let bearer_token = v.file_opt(
            "inbound.alertmanager.bearer_token_file",
            &am.bearer_token_file,
        );
        let basic_auth = am.basic_auth.as_ref().and_then(|b| {
            v.file(
                "inbound.alertmanager.basic_auth.password_file",
                &b.password_file,
            )
            .map(|password| BasicAuth {
                username: b.username.clone(),
                password,
            })
        });
        let redis = self.storage.redis.as_ref().map(|r| RedisSettings {
            url: r.url.clone(),
            username: r.username.clone(),
            password: v.file_opt("storage.redis.password_file", &r.password_file),
            sentinel_password: v.file_opt(
                "storage.redis.sentinel_password_file",
                &r.sentinel_password_file,
            ),
            min_replicas: r.min_replicas,
            wait_timeout: r.wait_timeout,
            cluster: r.cluster,
            key_prefix: r.key_prefix.clone(),
            claim_after: r.claim_after,
        });
        let sentry = &self.inbound.sentry;
        let sentry_client_secret = v.file_opt(
            "inbound.sentry.client_secret_file",
            &sentry.client_secret_file,
        );
        let sentry_legacy_token = v.file_opt(
            "inbound.sentry.legacy_token_file",
            &sentry.legacy_token_file,
        );

        let receivers: Vec<Receiver> = self
            .effective_receivers()
            .iter()
            .enumerate()
            .map(|(i, r)| build_receiver(&format!("receivers[{i}]"), r, &mut v))
            .collect();

        let route = match self.effective_route() {
            Some(r) => build_route("route", &r, &mut v),
            None => {
                v.add("route", "required when receivers are configured".into());
                None
            }
        };

        match (listen, route) {
            (Some(listen), Some(route)) if v.0.is_empty() => Ok(Loaded {
                listen,
                storage_path: self.storage.path.clone(),
                redis,
                alertmanager_auth: AlertmanagerAuth {
                    bearer_token,
                    basic_auth,
                },
                sentry_client_secret,
                sentry_legacy_token,
                max_body_bytes: self.inbound.max_body_bytes,
                listener: ListenerLimits {
                    header_read_timeout: self.inbound.header_read_timeout,
                    idle_timeout: self.inbound.idle_timeout,
                    max_connections: self.inbound.max_connections,
                },
                receivers,
                route,
                delivery: self.delivery.clone(),
            }),
            _ => Err(ConfigError {
                file: None,
                problems: v.0,
            }),
        }
    }
}

/// Collects problems.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: &str, message: String) {
        self.0.push(Problem {
            path: path.to_owned(),
            message,
        });
    }

    fn ok<T>(&mut self, path: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| self.add(path, e)).ok()
    }

    fn file(&mut self, path: &str, file: &Path) -> Option<Secret> {
        let r = Secret::from_file(file).map_err(|e| e.to_string());
        self.ok(path, r)
    }

    fn file_opt(&mut self, path: &str, file: &Option<PathBuf>) -> Option<Secret> {
        file.as_deref().and_then(|f| self.file(path, f))
    }

    fn inline(&mut self, path: &str, value: &Secret) -> Option<Secret> {
        let r = Secret::resolve(value.expose()).map_err(|e| e.to_string());
        self.ok(path, r)
    }

    /// A secret given inline or as a file; validation guarantees exactly one.
    fn either(
        &mut self,
        path: &str,
        inline: (&str, &Option<Secret>),
        file: (&str, &Option<PathBuf>),
    ) -> Option<Secret> {
        match (inline.1, file.1) {
            (Some(s), _) => self.inline(&format!("{path}.{}", inline.0), s),
            (None, Some(f)) => self.file(&format!("{path}.{}", file.0), f),
            (None, None) => {
                self.add(path, format!("{} or {} is required", inline.0, file.0));
                None
            }
        }
    }

    /// [`Problems::either`] for a URL: the secret, checked with [`check_url`] once resolved
    /// (from the environment or its file), the problem reported at the field that gave it.
    fn either_url(
        &mut self,
        path: &str,
        inline: (&str, &Option<Secret>),
        file: (&str, &Option<PathBuf>),
    ) -> Option<Secret> {
        let field = if inline.1.is_some() { inline.0 } else { file.0 };
        let url = self.either(path, inline, file)?;
        let checked = check_url(url.expose(), HTTP_SCHEMES);
        self.ok(&format!("{path}.{field}"), checked)?;
        Some(url)
    }

    /// Checks an inline URL now when it is written out (an `${ENV}` reference is checked once
    /// resolved, when the config is built).
    fn check_inline_url(&mut self, path: &str, value: &Option<Secret>) {
        if let Some(s) = value.as_ref().filter(|s| !s.expose().contains("${")) {
            if let Err(e) = check_url(s.expose(), HTTP_SCHEMES) {
                self.add(path, e);
            }
        }
    }

    /// Checks an inline secret's `${NAME}` syntax without reading the environment.
    fn check_inline(&mut self, path: &str, value: &Option<Secret>) {
        if let Some(s) = value {
            let r = Secret::resolve_with(s.expose(), |_| Some("set".into()));
            if let Err(e @ (SecretError::BadReference | SecretError::Empty)) = r {
                self.add(path, e.to_string());
            }
        }
    }

    /// Exactly one of an inline secret and its `_file` variant.
    fn one_of(
        &mut self,
        path: &str,
        inline: (&str, &Option<Secret>),
        file: (&str, &Option<PathBuf>),
    ) {
        match (inline.1.is_some(), file.1.is_some()) {
            (true, true) => self.add(
                &format!("{path}.{}", file.0),
                format!("set either {} or {}, not both", inline.0, file.0),
            ),
            (false, false) => self.add(path, format!("{} or {} is required", inline.0, file.0)),
            _ => self.check_inline(&format!("{path}.{}", inline.0), inline.1),
        }
    }

    fn rate(&mut self, path: &str, rate: &RateConfig) {
        if let Some(p) = rate.per_second {
            if !(p.is_finite() && p > 0.0) {
                self.add(
                    &format!("{path}.rate.per_second"),
                    "must be greater than 0".into(),
                );
            }
        }
        if rate.burst == Some(0) {
            self.add(&format!("{path}.rate.burst"), "must be at least 1".into());
        }
    }
}

fn validate_receiver(path: &str, r: &ReceiverConfig, v: &mut Problems) {
    for (j, s) in r.slack.iter().enumerate() {
        let p = format!("{path}.slack[{j}]");
        let has_webhook = s.webhook_url.is_some() || s.webhook_url_file.is_some();
        match (&s.token_file, has_webhook) {
            (Some(_), true) => v.add(
                &format!("{p}.token_file"),
                "set either token_file (web api) or webhook_url/webhook_url_file (incoming \
                 webhook), not both"
                    .into(),
            ),
            (Some(_), false) => {
                if s.channel.as_deref().is_none_or(str::is_empty) {
                    v.add(&format!("{p}.channel"), "required with token_file".into());
                }
            }
            (None, true) => {
                v.one_of(
                    &p,
                    ("webhook_url", &s.webhook_url),
                    ("webhook_url_file", &s.webhook_url_file),
                );
                if s.channel.is_some() {
                    v.add(
                        &format!("{p}.channel"),
                        "only used with token_file (an incoming webhook posts to its own channel)"
                            .into(),
                    );
                }
            }
            (None, false) => v.add(
                &p,
                "webhook_url, webhook_url_file or token_file (with channel) is required".into(),
            ),
        }
        v.check_inline_url(&format!("{p}.webhook_url"), &s.webhook_url);
        if let Err(e) = check_url(&s.api_url, HTTP_SCHEMES) {
            v.add(&format!("{p}.api_url"), e);
        }
        v.rate(&p, &s.rate);
    }
    for (j, g) in r.google_chat.iter().enumerate() {
        let p = format!("{path}.google_chat[{j}]");
        v.one_of(
            &p,
            ("webhook_url", &g.webhook_url),
            ("webhook_url_file", &g.webhook_url_file),
        );
        v.check_inline_url(&format!("{p}.webhook_url"), &g.webhook_url);
        v.rate(&p, &g.rate);
    }
    for (j, w) in r.webhook.iter().enumerate() {
        let p = format!("{path}.webhook[{j}]");
        v.one_of(&p, ("url", &w.url), ("url_file", &w.url_file));
        v.check_inline_url(&format!("{p}.url"), &w.url);
    }
    if let Some(t) = &r.templates {
        if let Err(errors) = Templates::check(t) {
            for e in errors {
                v.add(&format!("{path}.templates.{}", e.kind()), e.to_string());
            }
        }
    }
}

fn validate_route(path: &str, r: &RouteConfig, names: &[&str], depth: usize, v: &mut Problems) {
    if depth > MAX_ROUTE_DEPTH {
        v.add(
            path,
            format!("routes nested deeper than {MAX_ROUTE_DEPTH} levels"),
        );
        return;
    }
    if let Some(name) = &r.receiver {
        if !names.contains(&name.as_str()) {
            v.add(
                &format!("{path}.receiver"),
                format!("unknown receiver {name:?}"),
            );
        }
    }
    for (i, m) in r.matchers.iter().enumerate() {
        if let Err(e) = Matcher::parse(m) {
            v.add(&format!("{path}.matchers[{i}]"), e.to_string());
        }
    }
    for (i, child) in r.routes.iter().enumerate() {
        validate_route(&format!("{path}.routes[{i}]"), child, names, depth + 1, v);
    }
}

fn build_receiver(path: &str, r: &ReceiverConfig, v: &mut Problems) -> Receiver {
    let mut integrations = Vec::new();
    for (j, s) in r.slack.iter().enumerate() {
        let p = format!("{path}.slack[{j}]");
        let rate = s.rate.or(DEFAULT_SLACK_RATE);
        let target = match (&s.token_file, &s.channel) {
            (Some(token_file), Some(channel)) => v
                .file(&format!("{p}.token_file"), token_file)
                .map(|token| SlackTarget::WebApi {
                    token,
                    channel: channel.clone(),
                    api_url: s.api_url.trim_end_matches('/').to_owned(),
                }),
            _ => v
                .either_url(
                    &p,
                    ("webhook_url", &s.webhook_url),
                    ("webhook_url_file", &s.webhook_url_file),
                )
                .map(|url| SlackTarget::IncomingWebhook { url }),
        };
        if let Some(target) = target {
            integrations.push(Integration::Slack(Slack { target, rate }));
        }
    }
    for (j, g) in r.google_chat.iter().enumerate() {
        let p = format!("{path}.google_chat[{j}]");
        if let Some(url) = v.either_url(
            &p,
            ("webhook_url", &g.webhook_url),
            ("webhook_url_file", &g.webhook_url_file),
        ) {
            integrations.push(Integration::GoogleChat(GoogleChat {
                url,
                rate: g.rate.or(DEFAULT_GOOGLE_CHAT_RATE),
            }));
        }
    }
    for (j, w) in r.webhook.iter().enumerate() {
        let p = format!("{path}.webhook[{j}]");
        let url = v.either_url(&p, ("url", &w.url), ("url_file", &w.url_file));
        let bearer_token = v.file_opt(&format!("{p}.bearer_token_file"), &w.bearer_token_file);
        if let Some(url) = url {
            integrations.push(Integration::Webhook(Webhook { url, bearer_token }));
        }
    }
    for c in &r.console {
        integrations.push(Integration::Console(c.clone()));
    }
    let templates = r
        .templates
        .as_ref()
        .and_then(|t| match Templates::check(t) {
            Ok(t) => Some(t),
            Err(errors) => {
                for e in errors {
                    v.add(&format!("{path}.templates.{}", e.kind()), e.to_string());
                }
                None
            }
        });
    Receiver {
        name: r.name.clone(),
        integrations,
        templates,
    }
}

fn build_route(path: &str, r: &RouteConfig, v: &mut Problems) -> Option<Route> {
    let mut matchers = Vec::new();
    for (i, m) in r.matchers.iter().enumerate() {
        let parsed = Matcher::parse(m).map_err(|e| e.to_string());
        matchers.extend(v.ok(&format!("{path}.matchers[{i}]"), parsed));
    }
    let mut routes = Vec::new();
    for (i, child) in r.routes.iter().enumerate() {
        routes.extend(build_route(&format!("{path}.routes[{i}]"), child, v));
    }
    if matchers.len() != r.matchers.len() || routes.len() != r.routes.len() {
        return None;
    }
    Some(Route {
        receiver: r.receiver.clone(),
        matchers,
        r#continue: r.r#continue,
        routes,
    })
}

fn default_slack_api_url() -> String {
    DEFAULT_SLACK_API_URL.to_owned()
}

/// Schemes an HTTP destination may use.
const HTTP_SCHEMES: &[&str] = &["http", "https"];

/// Checks that `raw` is a usable absolute URL with one of `schemes`: no whitespace or control
/// character anywhere (a pasted webhook URL with a stray space or newline fails only when the
/// first alert is sent), a scheme, and a host. The message never quotes the URL: webhook URLs
/// carry their credential in the path or query, and Redis URLs may carry a password.
/// What is wrong with a Sentinel URL (`redis+sentinel://host:port[,host:port...]/master[/db]`),
/// without quoting it: each Sentinel address is checked as `check_url` checks a host.
fn sentinel_url_problem(raw: &str) -> Option<String> {
    let (_, rest) = raw.split_once("://")?;
    let Some((hosts, path)) = rest.split_once('/') else {
        return Some(SENTINEL_SHAPE.into());
    };
    if hosts.is_empty() || path.split('/').next().unwrap_or("").is_empty() {
        return Some(SENTINEL_SHAPE.into());
    }
    // Credentials (`user:password@`) come before the first address.
    let hosts = hosts.rsplit_once('@').map_or(hosts, |(_, h)| h);
    hosts
        .split(',')
        .find_map(|h| check_url(&format!("redis://{h}/"), &["redis"]).err())
        .or_else(|| {
            raw.chars()
                .any(|c| c.is_whitespace() || c.is_control())
                .then(|| "url must not contain whitespace or control characters".into())
        })
}

const SENTINEL_SHAPE: &str = "a Sentinel URL names the Sentinels and the master: redis+sentinel://host:port[,host:port...]/master_name[/db]";

pub fn check_url(raw: &str, schemes: &[&str]) -> Result<(), String> {
    let want = || {
        let list: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        list.join(" or ")
    };
    if let Some((i, c)) = raw
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        let what = if c.is_control() {
            "a control character"
        } else {
            "whitespace"
        };
        return Err(format!(
            "url must not contain whitespace or control characters (found {what}, U+{:04X}, at character {})",
            c as u32,
            i + 1
        ));
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(format!("must be a url starting with {}", want()));
    };
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(format!("url must start with {}", want()));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials (`user:password@`) are not the host.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        // An IPv6 literal, `[::1]:8080`.
        Some(v6) => v6.split_once(']').map_or("", |(h, _)| h),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err("url has no host".into());
    }
    if let Some(port) = host_port.strip_prefix('[').map_or_else(
        || host_port.split_once(':').map(|(_, p)| p),
        |v6| v6.split_once("]:").map(|(_, p)| p),
    ) {
        if port.parse::<u16>().is_err() {
            return Err("url has an invalid port".into());
        }
    }
    Ok(())
}

/// Deserializes an inline secret straight into `Secret`, so the raw value never sits in a
/// `Debug`-printing `String`.
fn inline_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

pub use beacon_common::units::{duration, size};

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        match Config::from_yaml(yaml) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn empty_config_is_console_default() {
        let c = Config::from_yaml("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.inbound.max_body_bytes, 1 << 20);
        assert_eq!(c.delivery, Delivery::default());
        let loaded = c.build().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.receivers.len(), 1);
        assert_eq!(loaded.receivers[0].name, "console");
        assert!(matches!(
            loaded.receivers[0].integrations.as_slice(),
            [Integration::Console(_)]
        ));
        assert_eq!(loaded.route.receivers_for(&Default::default()), ["console"]);
    }

    #[test]
    fn durations_and_rates_parse_with_defaults() {
        let c = Config::from_yaml(
            "delivery: {initial_backoff: 250ms, max_age: 2h}\n\
             receivers: [{name: a, slack: [{webhook_url: 'https://hooks.example/x', rate: {burst: 5}}]}]\n\
             route: {receiver: a}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.delivery.initial_backoff, Duration::from_millis(250));
        assert_eq!(c.delivery.max_age, Duration::from_secs(7200));
        assert_eq!(c.delivery.max_backoff, DEFAULT_MAX_BACKOFF);
        let s = &c.receivers[0].slack[0];
        assert_eq!(
            s.rate.or(DEFAULT_SLACK_RATE),
            Rate {
                per_second: 1.0,
                burst: 5
            }
        );
        assert_eq!(s.api_url, DEFAULT_SLACK_API_URL);
    }

    #[test]
    fn inline_secrets_never_print_in_debug() {
        let c = Config::from_yaml(
            "receivers: [{name: a, google_chat: [{webhook_url: 'https://chat.example/v1?key=SECRETKEY'}]}]\n\
             route: {receiver: a}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{c:?}").contains("SECRETKEY"));
        let loaded = c.build().unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{loaded:?}").contains("SECRETKEY"));
    }

    #[test]
    fn every_problem_is_reported() {
        let got = problems(
            "listen: nope\n\
             receivers: [{name: a}, {name: a, slack: [{token_file: /t}]}]\n\
             route: {receiver: a, routes: [{receiver: pager, matchers: ['x=\"1\"', 'bad']}]}\n",
        );
        assert!(
            got.iter()
                .any(|p| p.starts_with("listen: invalid listen address")),
            "{got:?}"
        );
        assert!(
            got.contains(
                &"receivers[1].name: duplicate receiver name \"a\" (first at receivers[0])"
                    .to_owned()
            ),
            "{got:?}"
        );
        assert!(
            got.contains(&"receivers[1].slack[0].channel: required with token_file".to_owned()),
            "{got:?}"
        );
        assert!(
            got.contains(&"route.routes[0].receiver: unknown receiver \"pager\"".to_owned()),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|p| p.starts_with("route.routes[0].matchers[1]: invalid matcher \"bad\"")),
            "{got:?}"
        );
        assert_eq!(got.len(), 5, "{got:?}");
    }

    #[test]
    fn yaml_errors_do_not_quote_nearby_secrets() {
        let got = problems(
            "receivers:\n\
             - name: a\n\
             \x20 slack:\n\
             \x20 - webhook_url: https://hooks.slack.example/services/T0/B0/SECRETPART\n\
             \x20   chanel: C1\n\
             route: {receiver: a}\n",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("unknown field `chanel`"), "{got:?}");
        assert!(!got[0].contains("SECRETPART"), "{got:?}");
    }

    #[test]
    fn malformed_env_reference_is_a_validation_error() {
        let got = problems(
            "receivers: [{name: a, webhook: [{url: '${NOT CLOSED'}]}]\nroute: {receiver: a}\n",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with(
                "receivers[0].webhook[0].url: malformed environment variable reference"
            ),
            "{got:?}"
        );
    }
}
