//! Stand-ins for Slack and Google Chat: shared parts (faults, rate limiter, rejection log, window
//! counting and the background-runtime HTTP server handle).
//!
//! A stand-in is a local HTTP server that answers like the real service AND enforces its limits,
//! so an end-to-end test of beacon-router can fail when the router breaks a rule (too fast, too
//! big, wrong thread). Each stand-in runs its own tokio runtime on a background thread, so the
//! synchronous tests of this crate can use it; dropping the stand-in stops the server.

pub mod google_chat;
pub mod slack;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;

pub use google_chat::{ChatMessage, GoogleChatConfig, GoogleChatStandin, SpaceConfig};
pub use slack::{Message, SlackConfig, SlackStandin, Update, Via};

/// A token-bucket rate: `per_second` tokens refill continuously, at most `burst` are stored.
///
/// With a full bucket, `burst` requests pass at once; after that one request passes every
/// `1 / per_second` seconds. So in any window of `w` seconds at most `burst + per_second * w`
/// requests are accepted (see [`Rate::max_in`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained rate (tokens added per second).
    pub per_second: f64,
    /// Bucket size: how many requests may pass back to back after a quiet period.
    pub burst: u32,
}

impl Rate {
    /// The most requests this rate accepts within any `window`-long span (the bound a test
    /// compares [`max_in_window`] against).
    pub fn max_in(&self, window: Duration) -> usize {
        self.burst as usize + (self.per_second * window.as_secs_f64()).floor() as usize
    }
}

impl Default for Rate {
    /// About one message per second with short bursts: Slack's documented per-channel pace
    /// for chat.postMessage and incoming webhooks, and Google Chat's per-space writes.
    fn default() -> Self {
        Self {
            per_second: 1.0,
            burst: 3,
        }
    }
}

/// One token bucket per key (channel, webhook, space, method).
#[derive(Debug)]
pub(crate) struct Buckets {
    rate: Rate,
    /// key -> (tokens, last refill)
    state: HashMap<String, (f64, Instant)>,
}

impl Buckets {
    pub(crate) fn new(rate: Rate) -> Self {
        Self {
            rate,
            state: HashMap::new(),
        }
    }

    /// Takes a token for `key` at `now`; on refusal returns how long until one is available.
    pub(crate) fn try_take(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.rate.burst.max(1));
        let per_second = self.rate.per_second;
        let (tokens, last) = self.state.entry(key.to_owned()).or_insert((burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * per_second).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        if per_second <= 0.0 {
            return Err(Duration::from_secs(3600));
        }
        Err(Duration::from_secs_f64((1.0 - *tokens) / per_second))
    }
}

/// Seconds for a `Retry-After` header: the wait rounded up, at least 1 (the header is integral).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// A failure to answer with instead of handling the request normally.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this HTTP status (500, 502, 503, ...) and a short error body.
    Status(u16),
    /// Answer 429 with `Retry-After: retry_after_secs`, in the service's own error format.
    RateLimited {
        /// Value of the `Retry-After` header.
        retry_after_secs: u64,
    },
    /// Wait this long, then handle the request normally (a slow service).
    Delay(Duration),
}

/// Injected faults: a queue consumed by the next requests, then optional random 500s.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    queue: VecDeque<Fault>,
    /// (probability, xorshift state) for deterministic intermittent failures.
    random: Option<(f64, u64)>,
}

impl Faults {
    pub(crate) fn inject(&mut self, fault: Fault, n: usize) {
        self.queue.extend(std::iter::repeat_n(fault, n));
    }

    pub(crate) fn fail_randomly(&mut self, probability: f64, seed: u64) {
        // xorshift must not start at 0 (it would stay 0 forever).
        self.random = Some((probability, seed | 1));
    }

    /// The fault for the next request, if any.
    pub(crate) fn next(&mut self) -> Option<Fault> {
        if let Some(f) = self.queue.pop_front() {
            return Some(f);
        }
        let (p, state) = self.random.as_mut()?;
        // xorshift64*: cheap, and the same seed gives the same failure sequence.
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let roll = (x >> 11) as f64 / (1u64 << 53) as f64;
        (roll < *p).then_some(Fault::Status(500))
    }
}

/// A request the stand-in refused (or failed on purpose).
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Request path (without the query string, which may hold secrets).
    pub path: String,
    /// HTTP status answered.
    pub status: u16,
    /// Why, e.g. `rate_limited`, `invalid_blocks: ...`, `fault: 503`.
    pub reason: String,
    /// When the stand-in answered.
    pub at: Instant,
}

/// The most of `times` that fall in any half-open span `[t, t + window)`.
///
/// Half-open so that requests exactly one `window` apart count as one per window.
pub fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end].duration_since(sorted[start]) >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// An axum app served on 127.0.0.1 by a tokio runtime on its own thread; stopped on drop.
#[derive(Debug)]
pub(crate) struct ServerHandle {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// Binds a free loopback port and serves `app` on it until dropped.
    pub(crate) fn start(name: &str, app: axum::Router) -> anyhow::Result<Self> {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .with_context(|| format!("{name} runtime"))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-standin"))
            .spawn(move || {
                rt.block_on(async move {
                    // Binding happened above, so a failure here is unexpected; the test then
                    // sees connection errors, which name the cause well enough.
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .with_context(|| format!("spawn {name} thread"))?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Characters as Slack counts them for its length limits: UTF-16 code units (what JavaScript's
/// `length` gives; an emoji outside the BMP counts 2). Stricter than counting code points, so a
/// message the stand-in accepts is not too long for Slack.
pub fn slack_len(s: &str) -> usize {
    s.encode_utf16().count()
}
