//! The webhook listener: serves at most `inbound.max_connections` connections at once, each
//! over HTTP/1 with a header-read timeout and an idle timeout, and drains them on shutdown.
//!
//! The listener can face the internet (Sentry's cloud posts to it). `axum::serve` has neither
//! timeouts nor a cap, so a client that opens thousands of connections and never finishes a
//! header held every one of them (and their memory) for as long as it liked. Here a connection
//! that has not sent a whole header within `header_read_timeout`, or has been silent for
//! `idle_timeout` between requests, is closed. At the cap, a new connection takes the place of
//! the oldest one that has not yet sent a complete request (a real webhook sends its header at
//! once, a slow or hostile client does not), so a flood costs bounded memory and sockets while
//! real webhooks are still served; only when every slot is busy with a request does accepting
//! wait for one to finish.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::ListenerLimits;
use crate::metrics::Metrics;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// open connection finish the request it is in (idle ones close at once), and returns when the
/// last one has closed.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ListenerLimits,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let waiting = Arc::new(Waiting::default());
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // At the cap: make room by closing the oldest connection still waiting for its
                // first request; if every one is serving a request, wait for one to finish.
                if waiting.evict_oldest() {
                    tracing::debug!(
                        "connection limit reached; closed the oldest connection without a request"
                    );
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let state = waiting.add();
        metrics.connections_open.inc();
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            limits,
            Slot {
                _permit: permit,
                waiting: waiting.clone(),
                state,
                metrics: metrics.clone(),
            },
            stopped.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    // Each connection holds its permit until it has closed.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// A connection's state as the accept loop sees it.
struct ConnState {
    /// Accept order: the oldest waiting connection is evicted first.
    id: u64,
    /// Set once the connection's first request header is complete.
    started: AtomicBool,
    /// Told to close (only while not started).
    evict: Notify,
}

/// Connections that have not completed a request yet, oldest first.
#[derive(Default)]
struct Waiting {
    inner: Mutex<(u64, BTreeMap<u64, Arc<ConnState>>)>,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, BTreeMap<u64, Arc<ConnState>>)> {
        // A panic while holding this lock leaves the map consistent (single inserts/removes).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self) -> Arc<ConnState> {
        let mut g = self.lock();
        g.0 += 1;
        let state = Arc::new(ConnState {
            id: g.0,
            started: AtomicBool::new(false),
            evict: Notify::new(),
        });
        g.1.insert(state.id, state.clone());
        state
    }

    fn started(&self, state: &ConnState) {
        state.started.store(true, Ordering::Release);
        self.lock().1.remove(&state.id);
    }

    fn remove(&self, state: &ConnState) {
        self.lock().1.remove(&state.id);
    }

    /// Tells the oldest connection without a request to close; false if there is none.
    fn evict_oldest(&self) -> bool {
        let oldest = self.lock().1.pop_first();
        match oldest {
            Some((_, state)) => {
                state.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A connection's place under the cap: the permit, and its entry among the waiting ones
/// (removed when the connection ends, however it ends).
struct Slot {
    _permit: OwnedSemaphorePermit,
    waiting: Arc<Waiting>,
    state: Arc<ConnState>,
    metrics: Metrics,
}

impl Slot {
    /// Counts a close the listener decided.
    fn closed(&self, reason: &str) {
        self.metrics
            .connections_closed
            .with_label_values(&[reason])
            .inc();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.waiting.remove(&self.state);
        self.metrics.connections_open.dec();
    }
}

/// An accept error: a connection that failed before it was accepted is nothing to wait for;
/// anything else (out of file descriptors) gets a pause, so the loop does not spin while the
/// condition lasts (what `axum::serve` and Go's `net/http` do).
async fn accept_error(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; pausing for 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One connection: HTTP/1 with the header-read timeout, closed gracefully once idle for
/// `idle_timeout` or when the listener stops.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    limits: ListenerLimits,
    slot: Slot,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let tower = TowerToHyperService::new(router.into_service::<Incoming>());
    // The admin API answers only on loopback: handlers read the peer from `ConnectInfo`.
    let (waiting, state) = (slot.waiting.clone(), slot.state.clone());
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        if !state.started.load(Ordering::Acquire) {
            waiting.started(&state);
        }
        req.extensions_mut().insert(ConnectInfo(peer));
        hyper::service::Service::call(&tower, req)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let idle_at = activity.last() + limits.idle_timeout;
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    if e.is_timeout() {
                        slot.closed("header_timeout");
                    }
                    tracing::debug!(%peer, error = %e, "connection closed");
                }
                return;
            }
            () = slot.state.evict.notified() => {
                // Evicted at the cap: it has sent no complete request, so nothing is lost.
                // (A request that completed meanwhile is served: eviction is then ignored.)
                if !slot.state.started.load(Ordering::Acquire) {
                    tracing::debug!(%peer, "closing a connection without a request to make room");
                    slot.closed("evicted");
                    return;
                }
            }
            _ = stopped.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(idle_at), if !closing => {
                // Bytes may have moved while sleeping: only a connection silent for the whole
                // timeout is closed. A request in progress still finishes.
                if activity.last() + limits.idle_timeout <= Instant::now() {
                    tracing::debug!(%peer, "closing an idle connection");
                    slot.closed("idle_timeout");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// When a connection last read or wrote a byte, as milliseconds since it was accepted.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A TCP stream that records when bytes last moved, for the idle timeout.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
