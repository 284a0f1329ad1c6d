//! The per-request part of `--web.config.file`, in exporter-toolkit's order (`web/handler.go`):
//! re-read config (500 if it is broken), `rate_limit` (429), `http_server_config.headers`
//! (on every answer from here on), then `basic_auth_users` (401 with `WWW-Authenticate:
//! Basic`). Installed only when a web config is given: without one, requests never pass here.
//!
//! Basic auth checks bcrypt hashes, which takes tens of milliseconds of CPU by design. It runs
//! on the blocking pool, one at a time (the toolkit serialises it too), so it never stalls the
//! runtime thread that serves scrapes; the verdict is cached by a SHA-256 of user, hash and
//! password (the toolkit caches the same triple), so a scraper pays it once, not per scrape.
//! A user that does not exist is checked against a fixed hash of the same cost, so the answer
//! takes as long as for a wrong password and does not reveal which users exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::web_config::Reloader;

/// The toolkit's stand-in hash (of "fakepassword", cost 10) for users that do not exist.
const FAKE_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// How many verdicts the cache keeps (the toolkit's `cacheSize`).
const CACHE_SIZE: usize = 100;

/// State of the web config layer.
#[derive(Debug)]
pub struct WebLayer {
    reloader: Arc<Reloader>,
    /// Made once from the config at start, as the toolkit does.
    limiter: Option<Mutex<Bucket>>,
    verdicts: Mutex<HashMap<[u8; 32], bool>>,
    bcrypt_turn: tokio::sync::Mutex<()>,
}

impl WebLayer {
    /// The layer for a loaded web config.
    pub fn new(reloader: Arc<Reloader>) -> anyhow::Result<Arc<WebLayer>> {
        let current = reloader.current().map_err(anyhow::Error::msg)?;
        let limiter = current
            .config
            .rate_limit
            .map(|(interval, burst)| Mutex::new(Bucket::new(interval, burst)));
        Ok(Arc::new(WebLayer {
            reloader,
            limiter,
            verdicts: Mutex::new(HashMap::new()),
            bcrypt_turn: tokio::sync::Mutex::new(()),
        }))
    }

    /// Whether `user`:`pass` is allowed by `hash` (`None`: no such user), cached.
    async fn check(&self, user: &[u8], pass: &[u8], hash: Option<&str>) -> bool {
        let valid_user = hash.is_some();
        let hash = hash.unwrap_or(FAKE_HASH).to_owned();
        let mut h = Sha256::new();
        for part in [user, hash.as_bytes(), pass] {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") never share a key.
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let key: [u8; 32] = h.finalize().into();
        if let Some(ok) = self.lock_verdicts().get(&key) {
            return *ok && valid_user;
        }
        let _turn = self.bcrypt_turn.lock().await;
        let pass = pass.to_vec();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pass, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        let mut verdicts = self.lock_verdicts();
        if verdicts.len() >= CACHE_SIZE {
            // The map's hasher is randomly keyed, so its first key is an arbitrary one, like
            // the toolkit's random eviction.
            if let Some(k) = verdicts.keys().next().copied() {
                verdicts.remove(&k);
            }
        }
        verdicts.insert(key, ok);
        ok && valid_user
    }

    fn lock_verdicts(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], bool>> {
        self.verdicts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The middleware (axum `from_fn_with_state`).
pub async fn layer(State(web): State<Arc<WebLayer>>, req: Request, next: Next) -> Response {
    let current = match web.reloader.current() {
        Ok(c) => c,
        Err(_) => {
            // Logged by the reloader when it failed; the toolkit answers 500 meanwhile.
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
        }
    };
    if let Some(bucket) = &web.limiter {
        if !bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(Instant::now())
        {
            return plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n");
        }
    }
    let cfg = &current.config;
    let mut resp = if cfg.users.is_empty() {
        next.run(req).await
    } else {
        let allowed = match basic_auth(&req) {
            Some((user, pass)) => {
                let hash = std::str::from_utf8(&user)
                    .ok()
                    .and_then(|u| cfg.users.get(u))
                    .map(|h| h.expose());
                web.check(&user, &pass, hash).await
            }
            None => false,
        };
        if allowed {
            next.run(req).await
        } else {
            let mut r = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            r
        }
    };
    for (name, value) in &cfg.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// An answer as Go's `http.Error` writes it.
fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, Body::from(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// User and password of an `Authorization: Basic` header, as Go's `Request.BasicAuth` reads it
/// (scheme case-insensitive, split at the first colon).
fn basic_auth(req: &Request) -> Option<(Vec<u8>, Vec<u8>)> {
    let v = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let scheme = v.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&v[6..])
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// golang.org/x/time/rate's limiter as the toolkit uses it: `burst` tokens, one more every
/// `interval`, starting full.
#[derive(Debug)]
struct Bucket {
    interval: Duration,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(interval: Duration, burst: u32) -> Bucket {
        Bucket {
            interval,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        let earned =
            now.saturating_duration_since(self.last).as_secs_f64() / self.interval.as_secs_f64();
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_starts_full_and_refills() {
        let t0 = Instant::now();
        let mut b = Bucket::new(Duration::from_secs(1), 2);
        b.last = t0;
        assert!(b.allow(t0));
        assert!(b.allow(t0));
        assert!(!b.allow(t0));
        assert!(b.allow(t0 + Duration::from_secs(1)));
        assert!(!b.allow(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn basic_auth_is_read_as_go_reads_it() {
        let req = |v: &str| {
            Request::builder()
                .header(header::AUTHORIZATION, v)
                .body(Body::empty())
                .expect("request")
        };
        // "alice:pa:ss"
        assert_eq!(
            basic_auth(&req("bAsIc YWxpY2U6cGE6c3M=")),
            Some((b"alice".to_vec(), b"pa:ss".to_vec()))
        );
        assert_eq!(basic_auth(&req("Bearer YWxpY2U6cGE6c3M=")), None);
        assert_eq!(basic_auth(&req("Basic !!!")), None);
        // "alice" without a colon
        assert_eq!(basic_auth(&req("Basic YWxpY2U=")), None);
    }
}
