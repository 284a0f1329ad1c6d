//! Delivery: one worker per destination takes queued notifications in order, paces them with
//! the destination's token bucket, sends them through its notifier and records the outcome in
//! the store: ack on success, retry with exponential backoff and jitter (or the destination's
//! `Retry-After`, capped) on a transient failure, the dead-letter list on a permanent failure,
//! after `max_attempts`, or once older than `max_age`. A backlog longer than the rate can drain
//! within `digest_after` is coalesced into digests (`digest.rs`).
//!
//! A worker sends one message at a time: destinations are rate limited per channel anyway.
//! Order: the store hands out a group's deliveries one at a time, in id order, so a firing
//! notification waiting for its retry holds back the same group's resolved one (never the other
//! groups'), and a channel never shows a group resolved and then firing again out of order.
//! Every store write runs on the blocking pool: a durable commit waits for the disk.
//!
//! The supervisor starts a worker for every configured destination, and dead-letters what is
//! queued for a destination the config no longer has (so nothing waits forever unseen; once the
//! receiver is back, `beacon-router dead-letters replay` requeues it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use crate::app::{App, Destination};
use crate::digest;
use crate::notify::{Attempt, SendError, ThreadUpdate};
use crate::store::{Delivery, Store, StoreError};

/// How often an idle worker looks again without being woken (retries whose backoff ended).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Deliveries an unpaced destination (console, generic webhook) takes per step.
const UNPACED_BATCH: usize = 64;
/// Pause after a store error before trying again.
const STORE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Runs `f` against the store on the blocking pool.
async fn on_store<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let app = app.clone();
    match tokio::task::spawn_blocking(move || f(app.store.as_ref())).await {
        Ok(r) => r,
        Err(e) => Err(StoreError::Backend {
            location: "store".into(),
            op: "blocking task",
            detail: e.to_string(),
        }),
    }
}

/// Starts workers for the configured destinations and keeps them running until shutdown; then
/// waits up to `app.drain_timeout` for in-flight sends.
pub async fn supervise(app: Arc<App>) {
    let mut workers: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut work = app.work_signal();
    let mut shutdown = app.shutdown_signal();
    loop {
        let active = app.active();
        workers.retain(|_, h| !h.is_finished());
        for name in active.destinations.keys() {
            if !workers.contains_key(name) {
                let handle = tokio::spawn(worker(app.clone(), name.clone()));
                workers.insert(name.clone(), handle);
            }
        }
        drop(active);
        dead_letter_orphans(&app).await;
        tokio::select! {
            _ = work.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    let deadline = tokio::time::Instant::now() + app.drain_timeout;
    for (name, handle) in workers {
        if tokio::time::timeout_at(deadline, handle).await.is_err() {
            tracing::warn!(destination = %name, "send still in flight at the shutdown deadline; it stays queued");
        }
    }
}

/// Moves deliveries queued for destinations the active config does not have to the dead
/// letters.
async fn dead_letter_orphans(app: &Arc<App>) {
    let active = app.active();
    let Ok(queued) = on_store(app, |s| s.destinations()).await else {
        return;
    };
    for name in queued {
        if active.destinations.contains_key(&name) {
            continue;
        }
        let reason = format!("destination {name} is not in the config");
        let n = name.clone();
        let far = SystemTime::now() + Duration::from_secs(100 * 365 * 86_400);
        let r = on_store(app, move |s| {
            // A lease gives one delivery per group: repeat until the queue is empty (bounded,
            // so a huge orphaned queue is finished over later rounds).
            let mut count = 0;
            for _ in 0..1000 {
                let items = s.lease(&n, far, usize::MAX)?;
                if items.is_empty() {
                    break;
                }
                for d in &items {
                    s.dead_letter(d.id, &reason, false, SystemTime::now())?;
                }
                count += items.len();
            }
            Ok(count)
        })
        .await;
        match r {
            Ok(0) => {}
            Ok(count) => {
                let (receiver, integration) = split_destination(&name);
                app.metrics
                    .dead_letters
                    .with_label_values(&[receiver, integration, "unconfigured"])
                    .inc_by(count as u64);
                tracing::warn!(destination = %name, count, "queued notifications for a destination no longer configured moved to the dead letters");
            }
            Err(e) => tracing::error!(error = %e, "dead-lettering orphaned notifications failed"),
        }
    }
}

/// `receiver/integration/n` → (receiver, integration), for metric labels.
fn split_destination(name: &str) -> (&str, &str) {
    let mut parts = name.rsplitn(3, '/');
    let _n = parts.next();
    let integration = parts.next().unwrap_or("");
    let receiver = parts.next().unwrap_or(name);
    (receiver, integration)
}

/// What one step of a worker did.
enum Step {
    /// Sent (or failed) something: look again at once.
    Worked,
    /// Nothing ready.
    Idle,
    /// Shutdown began while waiting.
    Stopped,
}

/// The worker of destination `name`: runs until shutdown or until the config drops it.
async fn worker(app: Arc<App>, name: String) {
    let mut work = app.work_signal();
    let mut shutdown = app.shutdown_signal();
    let mut warm = false;
    loop {
        if app.shutting_down() {
            return;
        }
        // Mark the signal seen before looking, so work queued after the look wakes us.
        work.borrow_and_update();
        let active = app.active();
        let Some(dest) = active.destinations.get(&name).cloned() else {
            return;
        };
        let digest_after = active.config.delivery.digest_after;
        drop(active);
        let step = match step(&app, &name, &dest, digest_after, &mut warm).await {
            Ok(s) => s,
            // Another replica took over a lease of ours and finished it first.
            Err(StoreError::NotFound { .. }) => Step::Worked,
            Err(e) => {
                tracing::error!(destination = %name, error = %e, "store error in delivery; pausing");
                tokio::time::sleep(STORE_ERROR_PAUSE).await;
                Step::Idle
            }
        };
        match step {
            Step::Worked => {}
            Step::Stopped => return,
            Step::Idle => {
                tokio::select! {
                    _ = work.changed() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        }
    }
}

/// Waits for a token of the destination's bucket (shared through the store, so replicas on
/// one Redis share it). False if shutdown began meanwhile.
async fn wait_for_token(
    app: &Arc<App>,
    pacing: &Option<(String, crate::config::Rate)>,
) -> Result<bool, StoreError> {
    let Some((key, rate)) = pacing else {
        return Ok(true);
    };
    let mut shutdown = app.shutdown_signal();
    loop {
        let (k, r) = (key.clone(), *rate);
        let wait = on_store(app, move |s| s.take_token(&k, r, SystemTime::now())).await?;
        if wait.is_zero() {
            return Ok(true);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return Ok(false),
        }
    }
}

/// One step of a worker. `warm` says the previous step sent something (see below).
async fn step(
    app: &Arc<App>,
    name: &str,
    dest: &Destination,
    digest_after: Duration,
    warm: &mut bool,
) -> Result<Step, StoreError> {
    let pacing = dest.notifier.pacing();
    // Backlog check: how many to take at once.
    let batch = match &pacing {
        Some((_, rate)) => {
            let n = name.to_string();
            let (depth, oldest) = on_store(app, move |s| s.depth(&n)).await?;
            if depth == 0 {
                *warm = false;
                return Ok(Step::Idle);
            }
            let age = oldest
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            digest::batch_size(depth, age.as_secs_f64(), *rate, digest_after.as_secs_f64())
        }
        // Unpaced destinations take several at once and acknowledge them together.
        None => UNPACED_BATCH,
    };
    // Busy (the last step sent something): take the token before leasing, so a lease is held
    // only for the send itself, never across a long wait (a pause after 429, other replicas
    // ahead in a shared bucket) that could outlast `claim_after` and let another replica send
    // it too. Idle: lease first, so no token is spent on an empty queue.
    if *warm && !wait_for_token(app, &pacing).await? {
        return Ok(Step::Stopped);
    }
    let n = name.to_string();
    let mut leased = on_store(app, move |s| s.lease(&n, SystemTime::now(), batch)).await?;
    if leased.is_empty() {
        *warm = false;
        return Ok(Step::Idle);
    }
    // The config may have been reloaded while waiting: send with the destination as it is now.
    let active = app.active();
    let delivery = active.config.delivery.clone();
    let Some(current) = active.destinations.get(name).cloned() else {
        // Gone from the config: the leases lapse and the supervisor dead-letters the queue.
        return Ok(Step::Stopped);
    };
    drop(active);
    let dest = &current;
    let pacing = dest.notifier.pacing();
    // Too old: dead-letter instead of sending.
    let now = SystemTime::now();
    let (stale, fresh): (Vec<Delivery>, Vec<Delivery>) = leased.drain(..).partition(|d| {
        now.duration_since(d.enqueued_at)
            .is_ok_and(|age| age > delivery.max_age)
    });
    for d in stale {
        let reason = format!(
            "undelivered after {} ({} attempts){}",
            humantime::format_duration(delivery.max_age),
            d.attempts,
            d.last_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        dead_letter(app, dest, d.id, "max_age", false, reason).await?;
    }
    if fresh.is_empty() {
        return Ok(Step::Worked);
    }
    if !*warm && !wait_for_token(app, &pacing).await? {
        return Ok(Step::Stopped);
    }
    *warm = true;
    if pacing.is_some() {
        // Paced: one message, a digest when the backlog called for several.
        let is_digest = fresh.len() > 1;
        let done = send(app, name, dest, &pacing, &delivery, fresh, is_digest).await?;
        ack_all(app, done).await?;
    } else {
        // Unpaced (console, generic webhook): each its own message, acknowledged together in
        // one store write instead of one durable write each.
        let mut done = Vec::with_capacity(fresh.len());
        for d in fresh {
            done.extend(send(app, name, dest, &pacing, &delivery, vec![d], false).await?);
        }
        ack_all(app, done).await?;
    }
    Ok(Step::Worked)
}

/// Acknowledges delivered ids. One already gone was taken over by another replica (this one
/// looked dead) and delivered there too: nothing left to do.
async fn ack_all(app: &Arc<App>, ids: Vec<u64>) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    on_store(app, move |s| match s.ack_many(&ids) {
        Err(StoreError::NotFound { .. }) => ids.iter().try_for_each(|id| match s.ack(*id) {
            Err(StoreError::NotFound { .. }) => Ok(()),
            r => r,
        }),
        r => r,
    })
    .await
}

/// Sends one message carrying `items` (several only for a digest) and records the outcome:
/// on success returns the ids to acknowledge (metrics and thread state done); on failure
/// retries or dead-letters them and returns none.
async fn send(
    app: &Arc<App>,
    name: &str,
    dest: &Destination,
    pacing: &Option<(String, crate::config::Rate)>,
    policy: &crate::config::Delivery,
    items: Vec<Delivery>,
    is_digest: bool,
) -> Result<Vec<u64>, StoreError> {
    let group = if is_digest {
        let groups: Vec<_> = items.iter().map(|d| &d.group).collect();
        digest::coalesce(&groups, items[0].id)
    } else {
        items[0].group.clone()
    };
    let thread = if is_digest {
        None
    } else {
        let (n, k) = (name.to_string(), group.key.clone());
        on_store(app, move |s| s.thread(&n, &k)).await?
    };
    let attempt = Attempt {
        group: &group,
        templates: dest.templates.as_ref(),
        thread: thread.as_deref(),
        digest: is_digest,
    };
    let labels = [dest.receiver.as_str(), dest.integration];
    let sent = match dest.notifier.send(attempt).await {
        Ok(sent) => sent,
        Err(e) => {
            failed(app, name, dest, pacing, policy, items, e).await?;
            return Ok(Vec::new());
        }
    };
    if let Some(e) = &sent.template_error {
        app.metrics.template_errors.with_label_values(&labels).inc();
        tracing::warn!(destination = %name, error = %e, "custom template failed; sent the default message");
    }
    if let ThreadUpdate::Set(value) = sent.thread {
        let (n, k) = (name.to_string(), group.key.clone());
        on_store(app, move |s| s.set_thread(&n, &k, &value)).await?;
    }
    let now = SystemTime::now();
    for d in &items {
        let latency = now.duration_since(d.enqueued_at).unwrap_or_default();
        app.metrics
            .latency
            .with_label_values(&labels)
            .observe(latency.as_secs_f64());
    }
    // Digest counters first: a reader that sees `sent` complete sees them too.
    if is_digest {
        app.metrics.digests.with_label_values(&labels).inc();
        app.metrics
            .coalesced
            .with_label_values(&labels)
            .inc_by(items.len() as u64);
    }
    app.metrics
        .sent
        .with_label_values(&labels)
        .inc_by(items.len() as u64);
    tracing::debug!(destination = %name, notifications = items.len(), "delivered");
    Ok(items.iter().map(|d| d.id).collect())
}

/// Records a failed attempt for every delivery it carried.
async fn failed(
    app: &Arc<App>,
    name: &str,
    dest: &Destination,
    pacing: &Option<(String, crate::config::Rate)>,
    policy: &crate::config::Delivery,
    deliveries: Vec<Delivery>,
    e: SendError,
) -> Result<(), StoreError> {
    let reason = e.reason.as_str();
    app.metrics
        .failed
        .with_label_values(&[dest.receiver.as_str(), dest.integration, reason])
        .inc();
    let retry_after = e.retry_after.map(|r| r.min(policy.max_retry_after));
    if let (Some((key, _)), Some(after)) = (pacing, retry_after) {
        // The destination asked for quiet: hold the whole bucket, not just this message.
        let k = key.clone();
        on_store(app, move |s| s.pause(&k, SystemTime::now() + after)).await?;
    }
    for d in deliveries {
        let attempts = d.attempts.saturating_add(1);
        if !e.retryable {
            tracing::error!(destination = %name, id = d.id, error = %e, "delivery failed permanently; moved to the dead letters");
            dead_letter(app, dest, d.id, reason, true, e.to_string()).await?;
        } else if attempts >= policy.max_attempts {
            tracing::error!(destination = %name, id = d.id, attempts, error = %e, "delivery gave up; moved to the dead letters");
            let why = format!("gave up after {attempts} attempts: {e}");
            dead_letter(app, dest, d.id, reason, true, why).await?;
        } else {
            let wait = retry_after
                .unwrap_or_else(|| backoff(policy.initial_backoff, policy.max_backoff, d.attempts));
            tracing::warn!(destination = %name, id = d.id, attempts, error = %e, retry_in = ?wait, "delivery failed; will retry");
            let msg = e.to_string();
            let id = d.id;
            on_store(app, move |s| s.retry(id, SystemTime::now() + wait, &msg)).await?;
        }
    }
    Ok(())
}

/// Moves `id` to the dead letters; `attempted` when an attempt just failed, so the dead
/// letter's `attempts` agrees with "gave up after N attempts".
async fn dead_letter(
    app: &Arc<App>,
    dest: &Destination,
    id: u64,
    reason_label: &str,
    attempted: bool,
    reason: String,
) -> Result<(), StoreError> {
    on_store(app, move |s| {
        s.dead_letter(id, &reason, attempted, SystemTime::now())
    })
    .await?;
    app.metrics
        .dead_letters
        .with_label_values(&[dest.receiver.as_str(), dest.integration, reason_label])
        .inc();
    Ok(())
}

/// Exponential backoff with jitter: `initial * 2^attempts`, capped at `max`, then a random
/// point in its upper half, so retries of a burst spread out instead of arriving together.
pub fn backoff(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempts.min(20)).min(max);
    let jitter = random_unit();
    exp.mul_f64(0.5 + 0.5 * jitter)
}

/// A number in [0, 1) from the standard library's randomly keyed hasher: enough for jitter,
/// without a random-number crate.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let i = Duration::from_secs(1);
        let max = Duration::from_secs(300);
        for attempts in 0..12 {
            let b = backoff(i, max, attempts);
            let exp = (i * 2u32.pow(attempts)).min(max);
            assert!(
                b >= exp / 2 && b <= exp,
                "attempt {attempts}: {b:?} vs {exp:?}"
            );
        }
        assert!(backoff(i, max, 1000) <= max);
    }

    #[test]
    fn destinations_split_into_metric_labels() {
        assert_eq!(split_destination("payments/slack/0"), ("payments", "slack"));
        assert_eq!(
            split_destination("a/b/google_chat/1"),
            ("a/b", "google_chat")
        );
    }
}
