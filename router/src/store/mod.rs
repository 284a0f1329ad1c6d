//! The router's durable store: the `Store` trait (queue, dead letters, dedup claims, thread state)
//! and the types it speaks, independent of any backend.
//!
//! The router acknowledges a webhook only after `Store::enqueue` returned, so every backend must
//! make an enqueue durable before returning. Leases (deliveries handed to a sender) are process
//! state, not durable state: reopening a store returns every lease, which is the one case where a
//! message may be sent twice (it was in flight when the process died).
//!
//! Pacing state (token buckets, `take_token`/`pause`) lives behind the same trait, so replicas
//! sharing a Redis share one bucket per destination.
//!
//! Backends: [`embedded::EmbeddedStore`] (redb, a file under `storage.path`) and
//! [`redis::RedisStore`] (Redis Streams and Lua scripts, shared by several replicas), both run
//! through the same conformance suite (`router/tests/store_suite`).

pub mod embedded;
pub mod redis;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model;

pub use embedded::EmbeddedStore;
pub use redis::{cluster_prefix, RedisConfig, RedisStore, Replicas};

/// One queued delivery: a routed group for one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Monotonic per store: a later enqueue (or replay) always gets a larger id.
    pub id: u64,
    /// Receiver name and integration index, e.g. `payments/slack/0`; one queue each.
    pub destination: String,
    pub group: model::Group,
    /// When the delivery was enqueued (or replayed from the dead letters).
    pub enqueued_at: SystemTime,
    /// Failed attempts so far (`retry` increments it).
    pub attempts: u32,
    /// Not leased before this instant (retry backoff).
    pub not_before: SystemTime,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
}

/// A delivery to enqueue: what the router produces for one destination of one webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub destination: String,
    pub group: model::Group,
    /// Deduplication: when set and a live claim on the key exists, the item is not queued;
    /// otherwise it is queued and the key claimed, in the same atomic write.
    pub dedup: Option<Dedup>,
}

/// A deduplication claim taken with an enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct Dedup {
    /// The claim's key (destination and the group's dedup key).
    pub key: String,
    /// How long the claim lives.
    pub ttl: Duration,
}

/// A delivery that was given up on, with why and when.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub delivery: Delivery,
    pub reason: String,
    pub at: SystemTime,
}

/// Why a store operation failed. Messages name the store (its path or address) and the operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened or created.
    #[error("store {location}: cannot open: {detail}")]
    Open { location: String, detail: String },
    /// The backend failed (I/O error, disk full, lost connection): the operation did not happen.
    #[error("store {location}: {op} failed: {detail}")]
    Backend {
        location: String,
        op: &'static str,
        detail: String,
    },
    /// No queued delivery (for `ack`, `retry`, `dead_letter`) or dead letter (for `replay`) has
    /// this id: already handled, or never existed.
    #[error("store {location}: {op}: no {what} with id {id}")]
    NotFound {
        location: String,
        op: &'static str,
        what: &'static str,
        id: u64,
    },
    /// The write happened on the Redis primary but fewer than `wanted` replicas confirmed it
    /// within the wait: it is not acknowledged (a failover now could lose it), and the caller
    /// fails as for a backend error. Repeating the operation must be harmless.
    #[error("store {location}: {op}: written but confirmed by {acked} of {wanted} replicas within {waited_ms} ms")]
    NotReplicated {
        location: String,
        op: &'static str,
        acked: u32,
        wanted: u32,
        waited_ms: u64,
    },
    /// A stored record could not be decoded.
    #[error("store {location}: {op}: corrupt record {key}: {detail}")]
    Corrupt {
        location: String,
        op: &'static str,
        key: String,
        detail: String,
    },
}

/// Durable state of the router. Implementations are shared between the HTTP handlers and the
/// delivery workers, so every method takes `&self` and is safe to call concurrently.
pub trait Store: Send + Sync {
    /// Durably appends all items (one or more inbound webhooks' deliveries) atomically, all or
    /// nothing, and returns their ids in order: `None` for an item dropped as a duplicate (its
    /// `dedup` key had a live claim, possibly taken by an earlier item of the same call). Returns
    /// only once the data is on disk: the caller may acknowledge the webhooks afterwards.
    fn enqueue(
        &self,
        items: Vec<NewDelivery>,
        now: SystemTime,
    ) -> Result<Vec<Option<u64>>, StoreError>;

    /// Leases up to `max` ready deliveries of `destination` (not leased, `not_before <= now`) in
    /// id order. A leased delivery is not returned again until it is acked, retried or
    /// dead-lettered, or until the store is reopened (a restart returns every lease: the
    /// "in-flight message may be repeated" case).
    ///
    /// Group order (firing before resolved): within `destination`, a delivery is never leased
    /// while an earlier one (lower id) with the same `group.key` is still queued, whether leased
    /// (in flight) or waiting for its retry; so one call returns at most one delivery per group,
    /// and a group's deliveries come out one at a time in id order, also after retries and
    /// after a lease is taken over from a dead replica. Other groups are not held back: across
    /// groups the order is id order as far as readiness allows.
    fn lease(
        &self,
        destination: &str,
        now: SystemTime,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// The delivery was delivered: removes it (and its lease).
    fn ack(&self, id: u64) -> Result<(), StoreError>;

    /// Acknowledges several deliveries, in one durable write where the backend can. An unknown
    /// id fails the call with `NotFound`; which of the others were acknowledged then depends on
    /// the backend, so callers fall back to `ack` one by one (acknowledging is idempotent in
    /// effect: a second `ack` only reports `NotFound`).
    fn ack_many(&self, ids: &[u64]) -> Result<(), StoreError> {
        ids.iter().try_for_each(|id| self.ack(*id))
    }

    /// The attempt failed and may be retried: increments `attempts`, records `error`, makes the
    /// delivery ready again at `not_before`, and releases the lease.
    fn retry(&self, id: u64, not_before: SystemTime, error: &str) -> Result<(), StoreError>;

    /// Gives up on a queued delivery: moves it to the dead letters with `reason`. `attempted`
    /// says an attempt just failed (as `retry` would count it): it is added to `attempts`, so
    /// the dead letter's count is every attempt made, the one that gave up included; false
    /// when giving up without trying (too old, destination gone).
    fn dead_letter(
        &self,
        id: u64,
        reason: &str,
        attempted: bool,
        now: SystemTime,
    ) -> Result<(), StoreError>;

    /// Every dead letter, oldest id first.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;

    /// Moves dead letter `id` back to its queue, as a new delivery (attempts 0, no error,
    /// enqueued and ready at `now`), and returns its new id: it queues behind what is already
    /// waiting, like any new delivery.
    fn replay(&self, id: u64, now: SystemTime) -> Result<u64, StoreError>;

    /// Destinations that have queued (leased or not) deliveries, sorted.
    fn destinations(&self) -> Result<Vec<String>, StoreError>;

    /// Queued deliveries of `destination` (leased included) and the `enqueued_at` of the
    /// lowest id among them (the oldest, as enqueue times grow with ids), for the queue depth
    /// and oldest-age metrics.
    fn depth(&self, destination: &str) -> Result<(usize, Option<SystemTime>), StoreError>;

    /// Deduplication: claims `key` until `now + ttl`. True if newly claimed; false if a live
    /// claim exists (Redis `SET NX EX` semantics). Expired claims can be claimed again and are
    /// pruned lazily.
    fn claim_dedup(&self, key: &str, ttl: Duration, now: SystemTime) -> Result<bool, StoreError>;

    /// Thread state per (destination, group key): e.g. the Slack `ts` of a group's first
    /// message.
    fn thread(&self, destination: &str, group_key: &str) -> Result<Option<String>, StoreError>;

    /// Sets (or replaces) the thread state of (destination, group key).
    fn set_thread(&self, destination: &str, group_key: &str, value: &str)
        -> Result<(), StoreError>;

    /// Whether the store can currently accept writes (for `/readyz`).
    fn healthy(&self) -> bool;

    /// Writes that failed with `NotReplicated` since the store was opened (for the
    /// `beacon_router_store_unreplicated_writes_total` counter); stores without replicas: 0.
    fn unreplicated_writes(&self) -> u64 {
        0
    }

    /// Pacing: takes a token from the bucket `key` at `now` and returns zero, or returns how long
    /// to wait before asking again. Exactly the semantics of [`crate::pace::Pacer::try_take`]: a
    /// new bucket holds one token, refills at `rate.per_second` up to `rate.burst`, and a pause
    /// holds it. Every user of one store (every replica of one Redis) shares the bucket.
    fn take_token(
        &self,
        key: &str,
        rate: crate::config::Rate,
        now: SystemTime,
    ) -> Result<Duration, StoreError>;

    /// Pacing: holds bucket `key` until `until` (a destination's `Retry-After`) and spends its
    /// tokens, as [`crate::pace::Pacer::pause`] does.
    fn pause(&self, key: &str, until: SystemTime) -> Result<(), StoreError>;
}

/// Unix milliseconds of `t`, the stored form of every instant; instants before 1970 become 0 and
/// ones beyond `u64::MAX` ms saturate (neither occurs with a sane clock).
pub(crate) fn to_millis(t: SystemTime) -> u64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        Err(_) => 0,
    }
}

/// The instant `ms` Unix milliseconds after the epoch.
pub(crate) fn from_millis(ms: u64) -> SystemTime {
    // Saturate rather than overflow on absurd stored values: a far-future instant is harmless.
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(to_millis(t), 1_700_000_000_123);
        assert_eq!(from_millis(to_millis(t)), t);
    }

    #[test]
    fn millis_truncates_sub_millisecond_and_clamps_before_epoch() {
        let t = UNIX_EPOCH + Duration::from_micros(1_500);
        assert_eq!(to_millis(t), 1);
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(to_millis(before), 0);
    }

    #[test]
    fn errors_name_store_and_operation() {
        let e = StoreError::NotFound {
            location: "/var/lib/beacon/router.redb".into(),
            op: "ack",
            what: "queued delivery",
            id: 7,
        };
        assert_eq!(
            e.to_string(),
            "store /var/lib/beacon/router.redb: ack: no queued delivery with id 7"
        );
    }
}
