//! The HTTP face of the router (axum): the two webhook endpoints, `/metrics`, `/healthz`,
//! `/readyz` and `POST /-/reload`.
//!
//! A webhook is answered 2xx only after its notifications are durably queued (`Intake::submit`
//! returned); 401 for bad credentials or signature, 413 above `inbound.max_body_bytes`, 400 for
//! a malformed payload (the body names the field), 503 when the store cannot take it (so the
//! sender retries). Error bodies are plain text; they never echo a credential.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::admin;
use crate::app::App;
use crate::auth;
use crate::model::Group;
use crate::sources::{alertmanager, sentry};

/// The router's HTTP application over `app`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/webhooks/alertmanager", post(alertmanager_hook))
        .route("/webhooks/sentry", post(sentry_hook))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/dead-letters/replay", post(replay_dead_letters))
        .with_state(app)
}

/// Serves `app` on `listener` and runs its delivery workers until `shutdown` resolves; then
/// stops accepting, lets in-flight requests and sends finish (sends within
/// `app.drain_timeout`), and returns. What was not sent stays queued.
pub async fn run(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let supervisor = tokio::spawn(crate::delivery::supervise(app.clone()));
    let a = app.clone();
    // Fixed at start: a reload does not rebind the listener.
    let limits = app.active().config.listener;
    let metrics = app.metrics.clone();
    crate::listen::serve(listener, router(app.clone()), limits, metrics, async move {
        shutdown.await;
        tracing::info!("shutting down: no new webhooks; finishing in-flight sends");
        a.shut_down();
    })
    .await;
    app.shut_down();
    let _ = supervisor.await;
    Ok(())
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Reads the whole body, refusing more than `limit` bytes.
async fn read_body(body: Body, limit: u64) -> Result<Bytes, Box<Response>> {
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit_usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Box::new(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body is larger than {limit} bytes (inbound.max_body_bytes)"),
        ))),
        Err(e) => Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {e}"),
        ))),
    }
}

fn unauthorized(e: auth::AuthError) -> Response {
    let mut r = text(StatusCode::UNAUTHORIZED, format!("unauthorized: {e}"));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer, Basic realm=\"beacon-router\""),
    );
    r
}

async fn alertmanager_hook(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let r = alertmanager_inner(&app, &headers, body).await;
    count(&app, "alertmanager", &r);
    r
}

async fn alertmanager_inner(app: &Arc<App>, headers: &HeaderMap, body: Body) -> Response {
    let active = app.active();
    let authz = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes());
    if let Err(e) = auth::check_alertmanager(&active.config.alertmanager_auth, authz) {
        return unauthorized(e);
    }
    let body = match read_body(body, active.config.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match alertmanager::parse(&body) {
        Ok(group) => ingest(app, "alertmanager", group).await,
        Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn sentry_hook(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let r = sentry_inner(&app, query, &headers, body).await;
    count(&app, "sentry", &r);
    r
}

async fn sentry_inner(
    app: &Arc<App>,
    query: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let active = app.active();
    let cfg = &active.config;
    let body = match read_body(body, cfg.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let resource = headers
        .get("sentry-hook-resource")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let signature = headers.get("sentry-hook-signature").map(|v| v.as_bytes());
    // A signed request is an integration-platform webhook; an unsigned one carrying a token is
    // the legacy plugin. Neither configured: refused, never accepted unauthenticated.
    let authenticated = if signature.is_some() || query.is_none() {
        match &cfg.sentry_client_secret {
            Some(secret) => auth::verify_sentry_signature(secret, signature, &body),
            None => {
                return text(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized: sentry webhooks are not enabled (set inbound.sentry.client_secret_file)",
                )
            }
        }
    } else {
        match &cfg.sentry_legacy_token {
            Some(token) => auth::check_token_query(token, query.as_deref()),
            None => {
                return text(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized: legacy sentry webhooks are not enabled (set inbound.sentry.legacy_token_file)",
                )
            }
        }
    };
    if let Err(e) = authenticated {
        return unauthorized(e);
    }
    let parsed = if signature.is_some() || query.is_none() {
        sentry::parse(Some(resource.as_deref().unwrap_or("")), &body)
    } else {
        sentry::parse_legacy(&body)
    };
    match parsed {
        Ok(group) => ingest(app, "sentry", group).await,
        Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// Routes a parsed group, queues its notifications durably, and answers.
async fn ingest(app: &Arc<App>, source: &'static str, group: Group) -> Response {
    let active = app.active();
    let items = active.plan(&group);
    let labels: Vec<(String, &'static str)> = items
        .iter()
        .map(|i| {
            let d = &active.destinations[&i.destination];
            (d.receiver.clone(), d.integration)
        })
        .collect();
    drop(active);
    if items.is_empty() {
        return accepted(0, 0);
    }
    match app.intake.submit(items).await {
        Ok(ids) => {
            let mut queued = 0;
            for (id, (receiver, integration)) in ids.iter().zip(&labels) {
                if id.is_some() {
                    queued += 1;
                    app.metrics
                        .received
                        .with_label_values(&[receiver.as_str(), integration])
                        .inc();
                }
            }
            let duplicates = ids.len() - queued;
            if duplicates > 0 {
                app.metrics
                    .duplicates
                    .with_label_values(&[source])
                    .inc_by(duplicates as u64);
            }
            accepted(queued, duplicates)
        }
        Err(e) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not stored, retry later: {e}"),
        ),
    }
}

fn accepted(queued: usize, duplicates: usize) -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({
            "status": "queued",
            "notifications": queued,
            "duplicates": duplicates,
        })),
    )
        .into_response()
}

fn count(app: &App, source: &str, r: &Response) {
    app.metrics
        .webhooks
        .with_label_values(&[source, r.status().as_str()])
        .inc();
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let a = app.clone();
    let body = tokio::task::spawn_blocking(move || a.metrics.render(a.store.as_ref()))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.shutting_down() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let a = app.clone();
    let healthy = tokio::task::spawn_blocking(move || a.store.healthy())
        .await
        .unwrap_or(false);
    if healthy {
        text(StatusCode::OK, "ready")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "store is not writable")
    }
}

async fn reload(State(app): State<Arc<App>>) -> Response {
    let a = app.clone();
    match tokio::task::spawn_blocking(move || a.reload()).await {
        Ok(Ok(())) => text(StatusCode::OK, "config reloaded"),
        Ok(Err(e)) => text(
            StatusCode::BAD_REQUEST,
            format!("config rejected, the running config stays:\n{e}"),
        ),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed: {e}"),
        ),
    }
}

/// The admin API answers only on loopback (for `beacon-router dead-letters` run beside the
/// daemon, e.g. through `kubectl exec`): dead letters hold alert contents.
fn refuse_remote(peer: SocketAddr) -> Option<Response> {
    (!peer.ip().is_loopback()).then(|| {
        text(
            StatusCode::FORBIDDEN,
            "the admin api answers only on loopback",
        )
    })
}

async fn dead_letters(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if let Some(r) = refuse_remote(peer) {
        return r;
    }
    let a = app.clone();
    match tokio::task::spawn_blocking(move || admin::list(a.store.as_ref())).await {
        Ok(Ok(list)) => axum::Json(list).into_response(),
        Ok(Err(e)) => text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn replay_dead_letters(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    if let Some(r) = refuse_remote(peer) {
        return r;
    }
    let req: admin::ReplayRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("replay request: expected {{\"ids\": [..]}} or {{\"all\": true}}: {e}"),
            )
        }
    };
    let a = app.clone();
    let r = tokio::task::spawn_blocking(move || admin::replay(a.store.as_ref(), &req)).await;
    app.signal_work();
    match r {
        Ok(Ok(done)) => axum::Json(done).into_response(),
        Ok(Err(e @ crate::store::StoreError::NotFound { .. })) => {
            text(StatusCode::NOT_FOUND, e.to_string())
        }
        Ok(Err(e)) => text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
