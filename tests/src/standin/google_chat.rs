//! Google Chat stand-in: incoming webhooks (`POST /v1/spaces/{space}/messages?key=&token=`)
//! with Google's auth errors, message size limit, thread-key semantics and per-space rate limit.
//!
//! Facts emulated (Google Chat API reference and usage-limits page, observed error bodies):
//! - Errors are `{"error":{"code":N,"message":"...","status":"..."}}`. A wrong `key` is
//!   `400 INVALID_ARGUMENT` ("API key not valid"); a wrong `token` is `403 PERMISSION_DENIED`
//!   ("The API is called without a valid token"); an unknown space is `404 NOT_FOUND`.
//! - A message is at most 32,000 bytes; the stand-in applies this to the request body
//!   (`400 INVALID_ARGUMENT`). A message needs `text` or `cardsV2` (`400 INVALID_ARGUMENT`).
//! - `messageReplyOption`: unset/`MESSAGE_REPLY_OPTION_UNSPECIFIED` starts a new thread and
//!   ignores any thread key (the key is not attached to the new thread, so a later reply by key
//!   does not find it); `REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD` replies to the thread with that
//!   key (or `thread.name`) or starts a new thread with that key; `REPLY_MESSAGE_OR_FAIL` is the
//!   same for keys but answers `404 NOT_FOUND` for an unknown `thread.name`.
//! - A path the API does not serve gets Google's front-end HTML 404 page, which quotes the
//!   requested URL, query (`key`, `token`) included.
//! - Writes are limited per space (about one per second); over the limit is
//!   `429 RESOURCE_EXHAUSTED`, optionally with `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::{
    max_in_window, retry_after_secs, Buckets, Fault, Faults, Rate, Rejection, ServerHandle,
};

/// Google Chat's maximum message size, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 32_000;

/// One space with its incoming webhook's credentials.
#[derive(Debug, Clone)]
pub struct SpaceConfig {
    /// Space ID (the `{space}` of `spaces/{space}`), e.g. `AAAA1234`.
    pub space: String,
    /// The webhook URL's `key` parameter.
    pub key: String,
    /// The webhook URL's `token` parameter.
    pub token: String,
}

impl SpaceConfig {
    /// A space with key `key-{space}` and token `token-{space}`.
    pub fn new(space: &str) -> Self {
        Self {
            space: space.to_owned(),
            key: format!("key-{space}"),
            token: format!("token-{space}"),
        }
    }
}

/// How the stand-in is set up.
#[derive(Debug, Clone, Default)]
pub struct GoogleChatConfig {
    /// Spaces that exist, each with its webhook credentials.
    pub spaces: Vec<SpaceConfig>,
    /// Write limit, one bucket per space.
    pub rate: Rate,
    /// Whether a 429 carries a `Retry-After` header (Google does not promise one).
    pub retry_after: bool,
}

/// An accepted message.
#[derive(Debug, Clone)]
pub struct ChatMessage {
    /// Space ID.
    pub space: String,
    /// Resource name, `spaces/{space}/messages/{id}`.
    pub name: String,
    /// Thread resource name, `spaces/{space}/threads/{id}`.
    pub thread_name: String,
    /// The thread's key, if the thread has one.
    pub thread_key: Option<String>,
    /// Whether the message joined an existing thread (false: it started one).
    pub replied: bool,
    /// `messageReplyOption` as sent.
    pub reply_option: Option<String>,
    /// `text` as sent.
    pub text: Option<String>,
    /// `cardsV2` as sent.
    pub cards_v2: Option<Value>,
    /// When the stand-in accepted it.
    pub at: Instant,
}

#[derive(Debug)]
struct Inner {
    cfg: GoogleChatConfig,
    messages: Vec<ChatMessage>,
    rejections: Vec<Rejection>,
    faults: Faults,
    buckets: Buckets,
    /// (space, thread key) -> thread name
    keyed_threads: HashMap<(String, String), String>,
    /// Every thread name created.
    threads: Vec<String>,
    next_id: u64,
}

impl Inner {
    fn reject(&mut self, path: &str, status: StatusCode, reason: impl Into<String>) {
        self.rejections.push(Rejection {
            path: path.to_owned(),
            status: status.as_u16(),
            reason: reason.into(),
            at: Instant::now(),
        });
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock leaves consistent data (every update is one push).
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running Google Chat stand-in; the server stops when this is dropped.
#[derive(Debug)]
pub struct GoogleChatStandin {
    inner: Shared,
    server: ServerHandle,
}

impl GoogleChatStandin {
    /// Starts the stand-in on a free loopback port.
    pub fn start(cfg: GoogleChatConfig) -> anyhow::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            buckets: Buckets::new(cfg.rate),
            cfg,
            messages: Vec::new(),
            rejections: Vec::new(),
            faults: Faults::default(),
            keyed_threads: HashMap::new(),
            threads: Vec::new(),
            next_id: 0,
        }));
        let app = Router::new()
            .route("/v1/spaces/{space}/messages", post(create_message))
            .fallback(not_found_page)
            .with_state(inner.clone());
        let server = ServerHandle::start("google-chat", app)?;
        Ok(Self { inner, server })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The webhook URL of a configured space, with its key and token (as Google hands it out).
    /// For an unknown space the key and token are empty, which the stand-in rejects.
    pub fn webhook_url(&self, space: &str) -> String {
        let g = lock(&self.inner);
        let (key, token) = g
            .cfg
            .spaces
            .iter()
            .find(|s| s.space == space)
            .map(|s| (s.key.clone(), s.token.clone()))
            .unwrap_or_default();
        format!(
            "{}/v1/spaces/{space}/messages?key={key}&token={token}",
            self.base_url()
        )
    }

    /// Every accepted message, in arrival order.
    pub fn messages(&self) -> Vec<ChatMessage> {
        lock(&self.inner).messages.clone()
    }

    /// Accepted messages of one space, in arrival order.
    pub fn messages_in(&self, space: &str) -> Vec<ChatMessage> {
        let g = lock(&self.inner);
        g.messages
            .iter()
            .filter(|m| m.space == space)
            .cloned()
            .collect()
    }

    /// Accepted messages of the thread `thread_name`, in arrival order.
    pub fn thread(&self, thread_name: &str) -> Vec<ChatMessage> {
        let g = lock(&self.inner);
        g.messages
            .iter()
            .filter(|m| m.thread_name == thread_name)
            .cloned()
            .collect()
    }

    /// Every rejected (or deliberately failed) request, in order.
    pub fn rejections(&self) -> Vec<Rejection> {
        lock(&self.inner).rejections.clone()
    }

    /// Makes the next `n` requests answer with `fault`, after already queued ones.
    pub fn inject(&self, fault: Fault, n: usize) {
        lock(&self.inner).faults.inject(fault, n);
    }

    /// Once the queue is empty, answers HTTP 500 to each request with `probability`,
    /// deterministically from `seed`.
    pub fn fail_randomly(&self, probability: f64, seed: u64) {
        lock(&self.inner).faults.fail_randomly(probability, seed);
    }

    /// Waits until at least `n` messages were accepted; returns all of them.
    pub fn wait_for_messages(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<ChatMessage>> {
        crate::wait_for(&format!("{n} Google Chat messages"), timeout, || {
            let m = self.messages();
            (m.len() >= n).then_some(m)
        })
        .map_err(|e| anyhow::anyhow!("{e}; got {:?}", self.messages()))
    }

    /// The most messages accepted in `space` within any `window`-long span.
    pub fn max_in_window(&self, space: &str, window: Duration) -> usize {
        let times: Vec<Instant> = self.messages_in(space).iter().map(|m| m.at).collect();
        max_in_window(&times, window)
    }
}

/// Google's canonical status name for an HTTP code (for injected failures).
fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// Google's front-end 404 page for a path no API serves: HTML, quoting the request's path and
/// query (so a client that logs error bodies as they are would log the webhook's key and token).
async fn not_found_page(State(s): State<Shared>, uri: axum::http::Uri) -> Response {
    let path = uri.path().to_owned();
    lock(&s).reject(&path, StatusCode::NOT_FOUND, "no such path");
    let requested = uri
        .path_and_query()
        .map(|pq| pq.as_str().replace('&', "&amp;"))
        .unwrap_or_default();
    let page = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  \
         <style>*{{margin:0;padding:0}}</style>\n  <p><b>404.</b> <ins>That’s an error.</ins>\n  \
         <p>The requested URL <code>{requested}</code> was not found on this server.  <ins>That’s all we know.</ins>\n"
    );
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        page,
    )
        .into_response()
}

/// A Google API error answer.
fn error(status: StatusCode, message: &str, extra: Option<Value>) -> Response {
    let mut err = json!({
        "code": status.as_u16(),
        "message": message,
        "status": status_name(status.as_u16()),
    });
    if let Some(details) = extra {
        err["details"] = details;
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        json!({ "error": err }).to_string(),
    )
        .into_response()
}

fn too_many(retry_after: Option<u64>) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "Resource has been exhausted (e.g. check quota).",
        None,
    );
    if let Some(secs) = retry_after {
        if let Ok(v) = secs.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// How a message picks its thread.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ReplyOption {
    NewThread,
    FallbackToNew,
    OrFail,
}

/// Where a new message goes: an existing thread, or a new one (with an optional key).
enum Target {
    Existing(String),
    New(Option<String>),
}

async fn create_message(
    State(s): State<Shared>,
    Path(space): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let path = format!("/v1/spaces/{space}/messages");
    let fault = lock(&s).faults.next();
    match fault {
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            lock(&s).reject(&path, status, format!("fault: {code}"));
            return error(status, "Injected failure.", None);
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            lock(&s).reject(&path, StatusCode::TOO_MANY_REQUESTS, "fault: ratelimited");
            return too_many(Some(retry_after_secs));
        }
        None => {}
    }
    let mut g = lock(&s);
    let Some(cfg) = g.cfg.spaces.iter().find(|c| c.space == space).cloned() else {
        g.reject(&path, StatusCode::NOT_FOUND, "unknown space");
        return error(
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            None,
        );
    };
    if query.get("key") != Some(&cfg.key) {
        g.reject(&path, StatusCode::BAD_REQUEST, "invalid key");
        return error(
            StatusCode::BAD_REQUEST,
            "API key not valid. Please pass a valid API key.",
            Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "chat.googleapis.com"},
            }])),
        );
    }
    if query.get("token") != Some(&cfg.token) {
        g.reject(&path, StatusCode::FORBIDDEN, "invalid token");
        return error(
            StatusCode::FORBIDDEN,
            "The API is called without a valid token. Instructions on how to use incoming \
             webhooks can be found at https://developers.google.com/chat/how-tos/webhooks",
            None,
        );
    }
    if body.len() > MAX_MESSAGE_BYTES {
        g.reject(
            &path,
            StatusCode::BAD_REQUEST,
            format!("message too large: {} bytes", body.len()),
        );
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "Message is too large: {} bytes, the limit is {MAX_MESSAGE_BYTES}.",
                body.len()
            ),
            None,
        );
    }
    let Ok(Value::Object(msg)) = serde_json::from_slice::<Value>(&body) else {
        g.reject(&path, StatusCode::BAD_REQUEST, "invalid JSON");
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid JSON payload received.",
            None,
        );
    };
    let text = msg.get("text").and_then(Value::as_str).map(str::to_owned);
    let cards_v2 = msg.get("cardsV2").filter(|v| !v.is_null()).cloned();
    let has_text = text.as_deref().is_some_and(|t| !t.is_empty());
    let has_cards = cards_v2
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !has_text && !has_cards {
        g.reject(&path, StatusCode::BAD_REQUEST, "empty message");
        return error(
            StatusCode::BAD_REQUEST,
            "Message cannot be empty. Discarded message must contain text or cards.",
            None,
        );
    }
    let reply_option_raw = query.get("messageReplyOption").cloned();
    let reply_option = match reply_option_raw.as_deref() {
        None | Some("MESSAGE_REPLY_OPTION_UNSPECIFIED") => ReplyOption::NewThread,
        Some("REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD") => ReplyOption::FallbackToNew,
        Some("REPLY_MESSAGE_OR_FAIL") => ReplyOption::OrFail,
        Some(other) => {
            g.reject(
                &path,
                StatusCode::BAD_REQUEST,
                format!("bad messageReplyOption {other:?}"),
            );
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid value at 'message_reply_option' ({other})"),
                None,
            );
        }
    };
    let thread = msg.get("thread");
    // The body's thread.threadKey wins; the threadKey query parameter is the deprecated form.
    let thread_key = thread
        .and_then(|t| t.get("threadKey"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| query.get("threadKey").cloned());
    let thread_name = thread
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let target = match reply_option {
        ReplyOption::NewThread => Target::New(None),
        ReplyOption::FallbackToNew | ReplyOption::OrFail => {
            if let Some(name) = thread_name.filter(|n| !n.is_empty()) {
                if g.threads.contains(&name) && name.starts_with(&format!("spaces/{space}/")) {
                    Target::Existing(name)
                } else if reply_option == ReplyOption::OrFail {
                    g.reject(&path, StatusCode::NOT_FOUND, format!("no thread {name:?}"));
                    return error(
                        StatusCode::NOT_FOUND,
                        "Requested entity was not found.",
                        None,
                    );
                } else {
                    Target::New(thread_key)
                }
            } else if let Some(key) = thread_key {
                match g.keyed_threads.get(&(space.clone(), key.clone())) {
                    Some(name) => Target::Existing(name.clone()),
                    None => Target::New(Some(key)),
                }
            } else {
                Target::New(None)
            }
        }
    };
    // Checked last so that refused requests do not use up the space's allowance.
    let now = Instant::now();
    if let Err(wait) = g.buckets.try_take(&space, now) {
        g.reject(&path, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let retry = g.cfg.retry_after.then(|| retry_after_secs(wait));
        return too_many(retry);
    }
    g.next_id += 1;
    let id = g.next_id;
    let (thread_name, thread_key, replied) = match target {
        Target::Existing(name) => {
            let key = g
                .keyed_threads
                .iter()
                .find(|(_, n)| **n == name)
                .map(|((_, k), _)| k.clone());
            (name, key, true)
        }
        Target::New(key) => {
            let name = format!("spaces/{space}/threads/T{id}");
            g.threads.push(name.clone());
            if let Some(k) = &key {
                g.keyed_threads
                    .insert((space.clone(), k.clone()), name.clone());
            }
            (name, key, false)
        }
    };
    let name = format!("spaces/{space}/messages/M{id}");
    let mut thread_json = json!({ "name": thread_name });
    if let Some(k) = &thread_key {
        thread_json["threadKey"] = json!(k);
    }
    let mut resource = json!({
        "name": name,
        "sender": {"name": "users/standin-webhook", "type": "BOT"},
        "createTime": humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
        "thread": thread_json,
        "space": {"name": format!("spaces/{space}")},
    });
    if let Some(t) = &text {
        resource["text"] = json!(t);
    }
    if let Some(c) = &cards_v2 {
        resource["cardsV2"] = c.clone();
    }
    if replied {
        resource["threadReply"] = json!(true);
    }
    g.messages.push(ChatMessage {
        space,
        name,
        thread_name,
        thread_key,
        replied,
        reply_option: reply_option_raw,
        text,
        cards_v2,
        at: now,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        resource.to_string(),
    )
        .into_response()
}
