//! Slack stand-in: Web API `chat.postMessage` / `chat.update` and incoming webhooks, with
//! Slack's auth, Block Kit limits, threading and per-channel rate limits enforced.
//!
//! Facts emulated (from Slack's API docs and changelog):
//! - Web API errors are HTTP 200 with `{"ok":false,"error":CODE}`; rate limiting is HTTP 429
//!   with `Retry-After` (seconds) and `{"ok":false,"error":"ratelimited"}`.
//! - chat.postMessage is limited per channel to about one message per second with short bursts;
//!   chat.update is Tier 3 (about 50 per minute).
//! - A `thread_ts` that names no top-level message is still answered `ok` by Slack, but the reply
//!   is orphaned (visible nowhere). The stand-in accepts it too and records
//!   [`Message::thread_parent_known`]` = false`, so a test can assert every reply found its parent.
//! - Incoming webhooks answer `200 ok` (text/plain), and errors as text bodies with HTTP status
//!   codes: 400 `invalid_payload` / `no_text` / `invalid_blocks`, 404 `no_service`, 429 with
//!   `Retry-After` when posting faster than about one per second.
//! - Lengths are counted in UTF-16 code units ([`super::slack_len`]). `text` over 40,000 is
//!   rejected with `msg_too_long` (Slack documents truncating there; rejecting is stricter, so a
//!   router that relies on truncation is caught).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::{
    max_in_window, retry_after_secs, slack_len, Buckets, Fault, Faults, Rate, Rejection,
    ServerHandle,
};

/// Block Kit limits enforced (Slack's reference for blocks and chat.postMessage).
const MAX_BLOCKS: usize = 50;
const MAX_HEADER_TEXT: usize = 150;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_SECTION_FIELDS: usize = 10;
const MAX_FIELD_TEXT: usize = 2000;
const MAX_CONTEXT_ELEMENTS: usize = 10;
const MAX_MARKDOWN_TEXT: usize = 12_000;
const MAX_BLOCK_ID: usize = 255;
const MAX_TEXT: usize = 40_000;

/// Block types Slack accepts in messages; anything else is `invalid_blocks`.
const KNOWN_BLOCKS: &[&str] = &[
    "actions",
    "context",
    "context_actions",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "table",
    "video",
];

/// How the stand-in is set up.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// The bot token the Web API accepts (`Authorization: Bearer <token>`).
    pub token: String,
    /// Channel IDs that exist; others get `channel_not_found`.
    pub channels: Vec<String>,
    /// Incoming webhooks: (URL path such as `/services/T0/B0/abc`, channel it posts to).
    pub webhooks: Vec<(String, String)>,
    /// chat.postMessage limit, one bucket per channel.
    pub rate: Rate,
    /// Incoming webhook limit, one bucket per webhook.
    pub webhook_rate: Rate,
    /// chat.update limit (Tier 3, one bucket for the method).
    pub update_rate: Rate,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            token: "xoxb-test".into(),
            channels: Vec::new(),
            webhooks: Vec::new(),
            rate: Rate::default(),
            webhook_rate: Rate::default(),
            update_rate: Rate {
                per_second: 50.0 / 60.0,
                burst: 10,
            },
        }
    }
}

/// Which door a message came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `POST /api/chat.postMessage`
    WebApi,
    /// `POST` to an incoming webhook path.
    Webhook,
}

/// An accepted message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Channel ID it was posted to (a webhook's configured channel).
    pub channel: String,
    /// Its Slack timestamp (unique and increasing across the stand-in).
    pub ts: String,
    /// The thread parent it replies to, as sent.
    pub thread_ts: Option<String>,
    /// Whether `thread_ts` names a top-level message of this channel (false: Slack would have
    /// orphaned the reply). True when there is no `thread_ts`.
    pub thread_parent_known: bool,
    /// `text` as sent.
    pub text: Option<String>,
    /// `blocks` as sent.
    pub blocks: Option<Value>,
    /// When the stand-in accepted it.
    pub at: Instant,
    /// Web API or webhook.
    pub via: Via,
}

/// An accepted chat.update.
#[derive(Debug, Clone)]
pub struct Update {
    /// Channel of the updated message.
    pub channel: String,
    /// `ts` of the updated message.
    pub ts: String,
    /// New `text`.
    pub text: Option<String>,
    /// New `blocks`.
    pub blocks: Option<Value>,
    /// When the stand-in accepted it.
    pub at: Instant,
}

#[derive(Debug)]
struct Inner {
    cfg: SlackConfig,
    messages: Vec<Message>,
    updates: Vec<Update>,
    rejections: Vec<Rejection>,
    faults: Faults,
    post_buckets: Buckets,
    hook_buckets: Buckets,
    update_buckets: Buckets,
    /// Last ts handed out, in microseconds since the epoch.
    last_ts: u64,
}

impl Inner {
    /// A fresh ts: the current time, bumped so it is strictly greater than the previous one.
    fn next_ts(&mut self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        self.last_ts = now.max(self.last_ts + 1);
        format!(
            "{}.{:06}",
            self.last_ts / 1_000_000,
            self.last_ts % 1_000_000
        )
    }

    fn reject(&mut self, path: &str, status: StatusCode, reason: impl Into<String>) {
        self.rejections.push(Rejection {
            path: path.to_owned(),
            status: status.as_u16(),
            reason: reason.into(),
            at: Instant::now(),
        });
    }

    fn parent_known(&self, channel: &str, thread_ts: Option<&str>) -> bool {
        thread_ts.is_none_or(|t| {
            self.messages
                .iter()
                .any(|m| m.channel == channel && m.ts == t && m.thread_ts.is_none())
        })
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock leaves consistent data (every update is one push).
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running Slack stand-in; the server stops when this is dropped.
#[derive(Debug)]
pub struct SlackStandin {
    inner: Shared,
    server: ServerHandle,
}

impl SlackStandin {
    /// Starts the stand-in on a free loopback port.
    pub fn start(cfg: SlackConfig) -> anyhow::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            post_buckets: Buckets::new(cfg.rate),
            hook_buckets: Buckets::new(cfg.webhook_rate),
            update_buckets: Buckets::new(cfg.update_rate),
            cfg,
            messages: Vec::new(),
            updates: Vec::new(),
            rejections: Vec::new(),
            faults: Faults::default(),
            last_ts: 0,
        }));
        let app = Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.update", post(update))
            .fallback(webhook)
            .with_state(inner.clone());
        let server = ServerHandle::start("slack", app)?;
        Ok(Self { inner, server })
    }

    /// `http://127.0.0.1:PORT`: the Web API is under `{base}/api/`, webhooks at `{base}{path}`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// URL of a Web API method, e.g. `api_url("chat.postMessage")`.
    pub fn api_url(&self, method: &str) -> String {
        format!("{}/api/{method}", self.base_url())
    }

    /// URL of an incoming webhook path (as configured, e.g. `/services/T0/B0/abc`).
    pub fn webhook_url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Every accepted message (Web API and webhooks), in arrival order.
    pub fn messages(&self) -> Vec<Message> {
        lock(&self.inner).messages.clone()
    }

    /// Accepted messages of one channel, in arrival order.
    pub fn messages_in(&self, channel: &str) -> Vec<Message> {
        let g = lock(&self.inner);
        g.messages
            .iter()
            .filter(|m| m.channel == channel)
            .cloned()
            .collect()
    }

    /// Accepted replies to the message `ts` of `channel`, in arrival order.
    pub fn replies(&self, channel: &str, ts: &str) -> Vec<Message> {
        let g = lock(&self.inner);
        g.messages
            .iter()
            .filter(|m| m.channel == channel && m.thread_ts.as_deref() == Some(ts))
            .cloned()
            .collect()
    }

    /// Every accepted chat.update, in arrival order.
    pub fn updates(&self) -> Vec<Update> {
        lock(&self.inner).updates.clone()
    }

    /// Every rejected (or deliberately failed) request, in order.
    pub fn rejections(&self) -> Vec<Rejection> {
        lock(&self.inner).rejections.clone()
    }

    /// Makes the next `n` requests (any endpoint) answer with `fault`, after already queued ones.
    pub fn inject(&self, fault: Fault, n: usize) {
        lock(&self.inner).faults.inject(fault, n);
    }

    /// Once the queue is empty, answers HTTP 500 to each request with `probability`,
    /// deterministically from `seed`.
    pub fn fail_randomly(&self, probability: f64, seed: u64) {
        lock(&self.inner).faults.fail_randomly(probability, seed);
    }

    /// Waits until at least `n` messages were accepted; returns all of them.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Message>> {
        crate::wait_for(&format!("{n} Slack messages"), timeout, || {
            let m = self.messages();
            (m.len() >= n).then_some(m)
        })
        .map_err(|e| anyhow::anyhow!("{e}; got {:?}", self.messages()))
    }

    /// The most messages accepted for `channel` (both doors) within any `window`-long span.
    pub fn max_in_window(&self, channel: &str, window: Duration) -> usize {
        let times: Vec<Instant> = self.messages_in(channel).iter().map(|m| m.at).collect();
        max_in_window(&times, window)
    }
}

/// A Web API JSON answer with HTTP 200 (Slack reports errors in the body).
fn api_json(body: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn api_error(code: &str) -> Response {
    api_json(json!({"ok": false, "error": code}))
}

/// An error with Slack's explanation, as it gives for invalid blocks.
fn api_error_detail(code: &str, detail: &str) -> Response {
    api_json(json!({
        "ok": false,
        "error": code,
        "response_metadata": {"messages": [format!("[ERROR] {detail}")]},
    }))
}

fn too_many(retry_after: u64, body: String, content_type: &'static str) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::RETRY_AFTER, retry_after.to_string()),
        ],
        body,
    )
        .into_response()
}

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

/// Applies the next injected fault: `Some(answer)` to send instead of handling the request.
async fn apply_fault(s: &Shared, path: &str, web_api: bool) -> Option<Response> {
    let fault = lock(s).faults.next()?;
    match fault {
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            lock(s).reject(path, status, format!("fault: {code}"));
            Some(text(status, "injected fault"))
        }
        Fault::RateLimited { retry_after_secs } => {
            lock(s).reject(path, StatusCode::TOO_MANY_REQUESTS, "fault: ratelimited");
            Some(if web_api {
                too_many(
                    retry_after_secs,
                    json!({"ok": false, "error": "ratelimited"}).to_string(),
                    "application/json; charset=utf-8",
                )
            } else {
                too_many(
                    retry_after_secs,
                    "rate_limited".into(),
                    "text/plain; charset=utf-8",
                )
            })
        }
    }
}

/// Checks the bearer token: `Err(error code)` as Slack names it.
fn check_auth(headers: &HeaderMap, token: &str) -> Result<(), &'static str> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Err("not_authed");
    };
    match v.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
        Some(t) if t == token => Ok(()),
        Some("") => Err("not_authed"),
        _ => Err("invalid_auth"),
    }
}

/// A message content problem: (Slack error code, detail).
type ContentError = (&'static str, String);

/// Validates `text` and `blocks` of a message body; returns them on success.
fn validate_content(body: &Value) -> Result<(Option<String>, Option<Value>), ContentError> {
    let text = match body.get("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(("invalid_arguments", "text must be a string".into())),
    };
    let blocks = match body.get("blocks") {
        None | Some(Value::Null) => None,
        // Form-style callers send blocks as a JSON-encoded string; Slack accepts both.
        Some(Value::String(s)) => Some(
            serde_json::from_str::<Value>(s)
                .map_err(|e| ("invalid_blocks_format", format!("blocks: {e}")))?,
        ),
        Some(v) => Some(v.clone()),
    };
    if let Some(b) = &blocks {
        validate_blocks(b)?;
    }
    let has_blocks = blocks
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let has_text = text.as_deref().is_some_and(|t| !t.trim().is_empty());
    if !has_text && !has_blocks {
        return Err(("no_text", "message has neither text nor blocks".into()));
    }
    if let Some(t) = &text {
        let n = slack_len(t);
        if n > MAX_TEXT {
            return Err((
                "msg_too_long",
                format!("text is {n} characters, more than {MAX_TEXT}"),
            ));
        }
    }
    Ok((text, blocks))
}

fn invalid(detail: String) -> ContentError {
    ("invalid_blocks", detail)
}

/// A text composition object at `ptr`: its text, checked against `max` characters.
fn text_object<'a>(
    v: Option<&'a Value>,
    ptr: &str,
    max: usize,
    plain_only: bool,
) -> Result<&'a str, ContentError> {
    let Some(obj) = v.and_then(Value::as_object) else {
        return Err(invalid(format!(
            "missing required text object [json-pointer:{ptr}]"
        )));
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("plain_text") => {}
        Some("mrkdwn") if !plain_only => {}
        other => {
            return Err(invalid(format!(
                "text type {other:?} not allowed [json-pointer:{ptr}/type]"
            )))
        }
    }
    let Some(t) = obj.get("text").and_then(Value::as_str) else {
        return Err(invalid(format!(
            "missing required field: text [json-pointer:{ptr}/text]"
        )));
    };
    let n = slack_len(t);
    if n == 0 {
        return Err(invalid(format!(
            "must be more than 0 characters [json-pointer:{ptr}/text]"
        )));
    }
    if n > max {
        return Err(invalid(format!(
            "must be less than {} characters [json-pointer:{ptr}/text]",
            max + 1
        )));
    }
    Ok(t)
}

/// Block Kit checks for the limits Slack documents (count, header, section, context).
fn validate_blocks(blocks: &Value) -> Result<(), ContentError> {
    let Some(list) = blocks.as_array() else {
        return Err(("invalid_blocks_format", "blocks must be an array".into()));
    };
    if list.len() > MAX_BLOCKS {
        return Err(invalid(format!(
            "no more than {MAX_BLOCKS} items allowed, got {} [json-pointer:/blocks]",
            list.len()
        )));
    }
    for (i, block) in list.iter().enumerate() {
        let ptr = format!("/blocks/{i}");
        let Some(kind) = block.get("type").and_then(Value::as_str) else {
            return Err(invalid(format!(
                "missing required field: type [json-pointer:{ptr}]"
            )));
        };
        if !KNOWN_BLOCKS.contains(&kind) {
            return Err(invalid(format!(
                "unknown block type {kind:?} [json-pointer:{ptr}/type]"
            )));
        }
        if let Some(id) = block.get("block_id").and_then(Value::as_str) {
            if slack_len(id) > MAX_BLOCK_ID {
                return Err(invalid(format!(
                    "must be less than {} characters [json-pointer:{ptr}/block_id]",
                    MAX_BLOCK_ID + 1
                )));
            }
        }
        match kind {
            "header" => {
                text_object(
                    block.get("text"),
                    &format!("{ptr}/text"),
                    MAX_HEADER_TEXT,
                    true,
                )?;
            }
            "section" => {
                let text = block.get("text");
                let fields = block.get("fields");
                if text.is_none() && fields.is_none() {
                    return Err(invalid(format!(
                        "must provide either text or fields [json-pointer:{ptr}]"
                    )));
                }
                if text.is_some() {
                    text_object(text, &format!("{ptr}/text"), MAX_SECTION_TEXT, false)?;
                }
                if let Some(f) = fields {
                    let Some(f) = f.as_array() else {
                        return Err(invalid(format!(
                            "fields must be an array [json-pointer:{ptr}/fields]"
                        )));
                    };
                    if f.len() > MAX_SECTION_FIELDS {
                        return Err(invalid(format!(
                            "no more than {MAX_SECTION_FIELDS} items allowed [json-pointer:{ptr}/fields]"
                        )));
                    }
                    for (j, field) in f.iter().enumerate() {
                        text_object(
                            Some(field),
                            &format!("{ptr}/fields/{j}"),
                            MAX_FIELD_TEXT,
                            false,
                        )?;
                    }
                }
            }
            "context" => {
                let Some(elements) = block.get("elements").and_then(Value::as_array) else {
                    return Err(invalid(format!(
                        "missing required field: elements [json-pointer:{ptr}/elements]"
                    )));
                };
                if elements.is_empty() || elements.len() > MAX_CONTEXT_ELEMENTS {
                    return Err(invalid(format!(
                        "must have 1 to {MAX_CONTEXT_ELEMENTS} items [json-pointer:{ptr}/elements]"
                    )));
                }
            }
            "markdown" => {
                let n = block
                    .get("text")
                    .and_then(Value::as_str)
                    .map(slack_len)
                    .unwrap_or(0);
                if n == 0 || n > MAX_MARKDOWN_TEXT {
                    return Err(invalid(format!(
                        "text must have 1 to {MAX_MARKDOWN_TEXT} characters [json-pointer:{ptr}/text]"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The JSON object body of a Web API call, or the error code Slack gives.
fn parse_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, &'static str> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err("invalid_json"),
    }
}

/// A Web API call that passed the checks every method makes: the locked state, the body and
/// the channel.
type WebApiCall<'a> = (
    MutexGuard<'a, Inner>,
    serde_json::Map<String, Value>,
    String,
);

/// What every Web API method does first, as Slack does: any scripted fault, then the token, a
/// JSON object body, and a known `channel`. Returns the call, or the answer to give (a
/// rejection is recorded).
async fn web_api_call<'a>(
    s: &'a Shared,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<WebApiCall<'a>, Box<Response>> {
    if let Some(r) = apply_fault(s, path, true).await {
        return Err(Box::new(r));
    }
    let mut g = lock(s);
    if let Err(code) = check_auth(headers, &g.cfg.token) {
        g.reject(path, StatusCode::OK, code);
        return Err(Box::new(api_error(code)));
    }
    let body = match parse_object(body) {
        Ok(b) => b,
        Err(code) => {
            g.reject(path, StatusCode::OK, code);
            return Err(Box::new(api_error(code)));
        }
    };
    let channel = str_field(&body, "channel").unwrap_or_default();
    if !g.cfg.channels.contains(&channel) {
        g.reject(
            path,
            StatusCode::OK,
            format!("channel_not_found: {channel:?}"),
        );
        return Err(Box::new(api_error("channel_not_found")));
    }
    Ok((g, body, channel))
}

fn str_field(body: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_owned)
}

async fn post_message(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    const PATH: &str = "/api/chat.postMessage";
    let (mut g, body, channel) = match web_api_call(&s, PATH, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (text, blocks) = match validate_content(&Value::Object(body.clone())) {
        Ok(c) => c,
        Err((code, detail)) => {
            g.reject(PATH, StatusCode::OK, format!("{code}: {detail}"));
            return api_error_detail(code, &detail);
        }
    };
    // Content is checked before the rate so an invalid message does not use up the channel's
    // allowance: only messages Slack would post count against it.
    let now = Instant::now();
    if let Err(wait) = g.post_buckets.try_take(&channel, now) {
        g.reject(PATH, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        return too_many(
            retry_after_secs(wait),
            json!({"ok": false, "error": "ratelimited"}).to_string(),
            "application/json; charset=utf-8",
        );
    }
    let thread_ts = str_field(&body, "thread_ts");
    let thread_parent_known = g.parent_known(&channel, thread_ts.as_deref());
    let ts = g.next_ts();
    let mut message = json!({"type": "message", "bot_id": "BSTANDIN", "ts": ts,
        "text": text.clone().unwrap_or_default()});
    if let Some(t) = &thread_ts {
        message["thread_ts"] = json!(t);
    }
    if let Some(b) = &blocks {
        message["blocks"] = b.clone();
    }
    g.messages.push(Message {
        channel: channel.clone(),
        ts: ts.clone(),
        thread_ts,
        thread_parent_known,
        text,
        blocks,
        at: now,
        via: Via::WebApi,
    });
    api_json(json!({"ok": true, "channel": channel, "ts": ts, "message": message}))
}

async fn update(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    const PATH: &str = "/api/chat.update";
    let (mut g, body, channel) = match web_api_call(&s, PATH, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let ts = str_field(&body, "ts").unwrap_or_default();
    if !g
        .messages
        .iter()
        .any(|m| m.channel == channel && m.ts == ts)
    {
        g.reject(PATH, StatusCode::OK, format!("message_not_found: {ts:?}"));
        return api_error("message_not_found");
    }
    let (text, blocks) = match validate_content(&Value::Object(body.clone())) {
        Ok(c) => c,
        Err((code, detail)) => {
            g.reject(PATH, StatusCode::OK, format!("{code}: {detail}"));
            return api_error_detail(code, &detail);
        }
    };
    let now = Instant::now();
    // Tier 3 limits apply per method (per workspace), not per channel.
    if let Err(wait) = g.update_buckets.try_take("chat.update", now) {
        g.reject(PATH, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        return too_many(
            retry_after_secs(wait),
            json!({"ok": false, "error": "ratelimited"}).to_string(),
            "application/json; charset=utf-8",
        );
    }
    g.updates.push(Update {
        channel: channel.clone(),
        ts: ts.clone(),
        text: text.clone(),
        blocks,
        at: now,
    });
    api_json(json!({"ok": true, "channel": channel, "ts": ts,
        "text": text.unwrap_or_default()}))
}

/// Everything outside `/api/`: incoming webhooks (unknown paths are `404 no_service`).
async fn webhook(State(s): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    if let Some(r) = apply_fault(&s, &path, false).await {
        return r;
    }
    let mut g = lock(&s);
    let channel = g
        .cfg
        .webhooks
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, c)| c.clone());
    let Some(channel) = channel.filter(|_| method == Method::POST) else {
        g.reject(&path, StatusCode::NOT_FOUND, "no_service");
        return text(StatusCode::NOT_FOUND, "no_service");
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        g.reject(&path, StatusCode::BAD_REQUEST, "invalid_payload");
        return text(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    if !body.is_object() {
        g.reject(&path, StatusCode::BAD_REQUEST, "invalid_payload");
        return text(StatusCode::BAD_REQUEST, "invalid_payload");
    }
    let (msg_text, blocks) = match validate_content(&body) {
        Ok(c) => c,
        Err((code, detail)) => {
            g.reject(&path, StatusCode::BAD_REQUEST, format!("{code}: {detail}"));
            return text(StatusCode::BAD_REQUEST, code);
        }
    };
    let now = Instant::now();
    if let Err(wait) = g.hook_buckets.try_take(&path, now) {
        g.reject(&path, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        return too_many(
            retry_after_secs(wait),
            "rate_limited".into(),
            "text/plain; charset=utf-8",
        );
    }
    let thread_ts = body
        .get("thread_ts")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let thread_parent_known = g.parent_known(&channel, thread_ts.as_deref());
    let ts = g.next_ts();
    g.messages.push(Message {
        channel,
        ts,
        thread_ts,
        thread_parent_known,
        text: msg_text,
        blocks,
        at: now,
        via: Via::Webhook,
    });
    text(StatusCode::OK, "ok")
}
