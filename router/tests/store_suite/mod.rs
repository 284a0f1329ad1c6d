//! The `Store` conformance suite, written against `&dyn Store` only so every backend (embedded
//! redb, Redis) runs the same checks: `store_suite_tests!(factory)` expands to one `#[test]` per
//! check.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use beacon_e2e::pacing::{most_in_window, send_greedily};
use beacon_router::config::Rate;
use beacon_router::model::{Alert, Group, Source, Status};
use beacon_router::store::{Dedup, Delivery, NewDelivery, Store, StoreError};

/// Makes stores for the suite.
pub trait StoreFactory {
    /// A fresh, empty store that no other test uses.
    fn fresh(&self) -> Box<dyn Store>;
    /// Drops `store` and opens the same storage again, as a process restart would.
    fn reopen(&self, store: Box<dyn Store>) -> Box<dyn Store>;
}

/// Expands to one `#[test]` per suite check, each given `$factory` (an expression of a type
/// implementing `StoreFactory`). Needs `#[macro_use] mod store_suite;` at the test crate root.
macro_rules! store_suite_tests {
    ($factory:expr) => {
        store_suite_tests!(@each $factory;
            fifo_lease_order_per_destination,
            leases_are_exclusive_until_ack_or_retry,
            retry_delays_by_not_before_and_counts_attempts,
            dead_letter_list_and_replay,
            dead_letter_attempts_count_every_attempt_across_reopens,
            depth_and_oldest,
            destinations_with_queued_items,
            enqueue_of_nothing_is_a_no_op,
            unknown_ids_are_not_found,
            dedup_claim_and_expiry,
            enqueue_with_dedup_keys_drops_duplicates_atomically,
            threads_per_destination_and_group,
            reopen_returns_leases_and_keeps_everything,
            healthy_when_open,
            ack_many_removes_them_all,
            token_bucket_starts_with_one_token_and_refills_to_the_burst,
            token_bucket_never_exceeds_the_rate,
            pause_holds_the_bucket_and_spends_its_tokens,
            a_retrying_delivery_holds_back_its_group_only,
            a_leased_delivery_holds_back_its_group_also_across_a_takeover,
            a_group_stays_in_id_order_across_several_retries,
            many_waiting_deliveries_of_one_group_do_not_hold_back_others,
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::store_suite::$name(&$factory);
            }
        )*
    };
}

/// A fixed base instant, so the tests never depend on the clock.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A group with one firing alert, distinguishable by `key`.
pub fn group(key: &str) -> Group {
    let labels = [("alertname".to_string(), format!("Alert-{key}"))]
        .into_iter()
        .collect();
    Group {
        source: Source::Alertmanager,
        key: key.to_string(),
        status: Status::Firing,
        receiver: Some("payments".into()),
        group_labels: Default::default(),
        common_labels: Default::default(),
        common_annotations: Default::default(),
        external_url: Some("http://alertmanager:9093".into()),
        alerts: vec![Alert {
            status: Status::Firing,
            labels,
            annotations: Default::default(),
            starts_at: Some("2024-01-01T00:00:00Z".into()),
            ends_at: None,
            generator_url: None,
            fingerprint: format!("fp-{key}"),
        }],
        truncated_alerts: 0,
        extra: Default::default(),
        dedup_key: format!("dedup-{key}"),
    }
}

fn item(destination: &str, key: &str) -> NewDelivery {
    NewDelivery {
        destination: destination.to_string(),
        group: group(key),
        dedup: None,
    }
}

/// The ids of an enqueue in which nothing was a duplicate.
fn queued(r: Result<Vec<Option<u64>>, StoreError>) -> Vec<u64> {
    must(r, "enqueue")
        .into_iter()
        .map(|id| id.unwrap_or_else(|| panic!("an item without a dedup key was dropped")))
        .collect()
}

fn must<T>(r: Result<T, StoreError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

fn keys(ds: &[beacon_router::store::Delivery]) -> Vec<String> {
    ds.iter().map(|d| d.group.key.clone()).collect()
}

pub fn fifo_lease_order_per_destination(f: &dyn StoreFactory) {
    let s = f.fresh();
    let a = queued(s.enqueue(vec![item("a/slack/0", "1"), item("b/slack/0", "x")], t0()));
    assert_eq!(a.len(), 2);
    assert!(a[0] < a[1], "ids grow within one enqueue: {a:?}");
    let b = queued(s.enqueue(vec![item("a/slack/0", "2")], t0()));
    let c = queued(s.enqueue(vec![item("a/slack/0", "3")], t0()));
    assert!(a[1] < b[0] && b[0] < c[0], "ids grow across enqueues");

    let first = must(s.lease("a/slack/0", t0(), 2), "lease");
    assert_eq!(keys(&first), ["1", "2"]);
    assert_eq!(first[0].id, a[0]);
    assert_eq!(first[0].destination, "a/slack/0");
    assert_eq!(first[0].group, group("1"), "group round-trips intact");
    assert_eq!(first[0].enqueued_at, t0());
    assert_eq!(first[0].not_before, t0());
    assert_eq!(first[0].attempts, 0);
    assert_eq!(first[0].last_error, None);
    let rest = must(s.lease("a/slack/0", t0(), 10), "lease");
    assert_eq!(keys(&rest), ["3"]);
    let other = must(s.lease("b/slack/0", t0(), 10), "lease");
    assert_eq!(keys(&other), ["x"]);
    assert!(must(s.lease("nowhere", t0(), 10), "lease").is_empty());
    // max 0 leases nothing.
    queued(s.enqueue(vec![item("c", "c")], t0()));
    assert!(must(s.lease("c", t0(), 0), "lease").is_empty());
}

pub fn leases_are_exclusive_until_ack_or_retry(f: &dyn StoreFactory) {
    let s = f.fresh();
    let ids = queued(s.enqueue(vec![item("d", "1"), item("d", "2"), item("d", "3")], t0()));
    let leased = must(s.lease("d", t0(), 10), "lease");
    assert_eq!(leased.len(), 3);
    assert!(
        must(s.lease("d", t0(), 10), "lease").is_empty(),
        "all leased"
    );

    must(s.ack(ids[0]), "ack");
    assert!(
        must(s.lease("d", t0(), 10), "lease").is_empty(),
        "ack does not release others"
    );
    must(s.retry(ids[1], t0(), "boom"), "retry");
    let again = must(s.lease("d", t0(), 10), "lease");
    assert_eq!(keys(&again), ["2"], "retry releases the lease, ack removes");
    // An acked delivery is gone for good.
    assert_eq!(must(s.depth("d"), "depth").0, 2);
    assert!(matches!(s.ack(ids[0]), Err(StoreError::NotFound { .. })));
}

pub fn retry_delays_by_not_before_and_counts_attempts(f: &dyn StoreFactory) {
    let s = f.fresh();
    let ids = queued(s.enqueue(vec![item("d", "1"), item("d", "2")], t0()));
    must(s.lease("d", t0(), 1), "lease");
    must(
        s.retry(ids[0], t0() + secs(30), "503 service unavailable"),
        "retry",
    );

    // Not ready yet: the later delivery (another group) goes first.
    let now = t0() + secs(10);
    let leased = must(s.lease("d", now, 10), "lease");
    assert_eq!(keys(&leased), ["2"]);
    must(s.ack(ids[1]), "ack");
    assert!(must(s.lease("d", t0() + secs(29), 10), "lease").is_empty());

    let ready = must(s.lease("d", t0() + secs(30), 10), "lease");
    assert_eq!(keys(&ready), ["1"], "ready at exactly not_before");
    assert_eq!(ready[0].attempts, 1);
    assert_eq!(ready[0].not_before, t0() + secs(30));
    assert_eq!(
        ready[0].last_error.as_deref(),
        Some("503 service unavailable")
    );
    assert_eq!(ready[0].enqueued_at, t0(), "retry keeps the enqueue time");

    must(s.retry(ids[0], t0() + secs(60), "timeout"), "retry");
    let again = must(s.lease("d", t0() + secs(60), 10), "lease");
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("timeout"));
}

pub fn dead_letter_list_and_replay(f: &dyn StoreFactory) {
    let s = f.fresh();
    let ids = queued(s.enqueue(vec![item("d", "1"), item("d", "2"), item("e", "3")], t0()));
    must(s.lease("d", t0(), 10), "lease");
    must(s.retry(ids[0], t0(), "429"), "retry");
    must(
        s.dead_letter(ids[0], "channel_not_found", true, t0() + secs(5)),
        "dead_letter",
    );
    must(
        s.dead_letter(ids[2], "too old", false, t0() + secs(6)),
        "dead_letter",
    );

    let dead = must(s.dead_letters(), "dead_letters");
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].delivery.id, ids[0]);
    assert_eq!(dead[0].delivery.destination, "d");
    assert_eq!(dead[0].delivery.group, group("1"));
    // One retry, then the attempt that gave up: both count.
    assert_eq!(dead[0].delivery.attempts, 2);
    assert_eq!(dead[0].delivery.last_error.as_deref(), Some("429"));
    assert_eq!(dead[0].reason, "channel_not_found");
    assert_eq!(dead[0].at, t0() + secs(5));
    assert_eq!(dead[1].delivery.id, ids[2]);
    assert_eq!(dead[1].reason, "too old");
    // Given up without trying: nothing added.
    assert_eq!(dead[1].delivery.attempts, 0);

    // Dead letters leave the queue.
    assert_eq!(must(s.depth("d"), "depth").0, 1);
    assert_eq!(must(s.depth("e"), "depth").0, 0);
    assert!(matches!(s.ack(ids[0]), Err(StoreError::NotFound { .. })));

    let replay_at = t0() + secs(100);
    let new_id = must(s.replay(ids[0], replay_at), "replay");
    assert!(new_id > ids[2], "a replay queues as a new delivery");
    assert_eq!(must(s.dead_letters(), "dead_letters").len(), 1);
    must(s.ack(ids[1]), "ack");
    let back = must(s.lease("d", replay_at, 10), "lease");
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].id, new_id);
    assert_eq!(back[0].group, group("1"));
    assert_eq!(back[0].attempts, 0);
    assert_eq!(back[0].last_error, None);
    assert_eq!(back[0].enqueued_at, replay_at);
    assert!(matches!(
        s.replay(ids[0], replay_at),
        Err(StoreError::NotFound { .. })
    ));
}

/// "gave up after 3 attempts" and the dead letter's `attempts` agree, whatever restarts came
/// between the attempts.
pub fn dead_letter_attempts_count_every_attempt_across_reopens(f: &dyn StoreFactory) {
    let mut s = f.fresh();
    let id = queued(s.enqueue(vec![item("d", "1")], t0()))[0];
    for n in 0..2u64 {
        let leased = must(s.lease("d", t0() + secs(n), 10), "lease");
        assert_eq!(leased[0].attempts as u64, n);
        must(s.retry(id, t0() + secs(n), "http 500"), "retry");
        s = f.reopen(s);
    }
    let leased = must(s.lease("d", t0() + secs(2), 10), "lease");
    assert_eq!(leased[0].attempts, 2);
    must(
        s.dead_letter(
            id,
            "gave up after 3 attempts: http 500",
            true,
            t0() + secs(2),
        ),
        "dead_letter",
    );
    let s = f.reopen(s);
    let dead = must(s.dead_letters(), "dead_letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].delivery.attempts, 3);
    assert_eq!(dead[0].reason, "gave up after 3 attempts: http 500");
}

pub fn depth_and_oldest(f: &dyn StoreFactory) {
    let s = f.fresh();
    assert_eq!(must(s.depth("d"), "depth"), (0, None));
    let a = queued(s.enqueue(vec![item("d", "1")], t0()));
    queued(s.enqueue(vec![item("d", "2"), item("x", "x")], t0() + secs(5)));
    assert_eq!(must(s.depth("d"), "depth"), (2, Some(t0())));
    // Leased deliveries still count: they are not delivered yet.
    must(s.lease("d", t0() + secs(5), 10), "lease");
    assert_eq!(must(s.depth("d"), "depth"), (2, Some(t0())));
    must(s.ack(a[0]), "ack");
    assert_eq!(must(s.depth("d"), "depth"), (1, Some(t0() + secs(5))));
    assert_eq!(must(s.depth("x"), "depth"), (1, Some(t0() + secs(5))));
}

pub fn destinations_with_queued_items(f: &dyn StoreFactory) {
    let s = f.fresh();
    assert!(must(s.destinations(), "destinations").is_empty());
    let ids = queued(s.enqueue(
        vec![
            item("ops/slack/0", "1"),
            item("payments/google_chat/1", "2"),
            item("ops/slack/0", "3"),
            item("ops/slack", "4"),
        ],
        t0(),
    ));
    assert_eq!(
        must(s.destinations(), "destinations"),
        ["ops/slack", "ops/slack/0", "payments/google_chat/1"]
    );
    must(s.ack(ids[1]), "ack");
    must(s.dead_letter(ids[3], "gone", false, t0()), "dead_letter");
    assert_eq!(must(s.destinations(), "destinations"), ["ops/slack/0"]);
}

pub fn enqueue_of_nothing_is_a_no_op(f: &dyn StoreFactory) {
    let s = f.fresh();
    assert!(queued(s.enqueue(Vec::new(), t0())).is_empty());
    assert!(must(s.destinations(), "destinations").is_empty());
}

pub fn unknown_ids_are_not_found(f: &dyn StoreFactory) {
    let s = f.fresh();
    for r in [
        s.ack(42),
        s.retry(42, t0(), "e"),
        s.dead_letter(42, "r", true, t0()),
        s.replay(42, t0()).map(|_| ()),
    ] {
        match r {
            Err(e @ StoreError::NotFound { .. }) => {
                assert!(e.to_string().contains("42"), "{e}");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}

pub fn dedup_claim_and_expiry(f: &dyn StoreFactory) {
    let s = f.fresh();
    let ttl = secs(60);
    assert!(
        must(s.claim_dedup("k1", ttl, t0()), "claim"),
        "first claim wins"
    );
    assert!(
        !must(s.claim_dedup("k1", ttl, t0()), "claim"),
        "live claim blocks"
    );
    assert!(!must(s.claim_dedup("k1", ttl, t0() + secs(59)), "claim"));
    assert!(
        must(s.claim_dedup("k2", ttl, t0() + secs(1)), "claim"),
        "keys are independent"
    );
    // Expires at now + ttl.
    assert!(
        must(s.claim_dedup("k1", ttl, t0() + secs(60)), "claim"),
        "expired reclaimable"
    );
    assert!(
        !must(s.claim_dedup("k1", ttl, t0() + secs(61)), "claim"),
        "re-claimed is live"
    );
    // k2 expired long ago while claims on other keys pruned it; it can be claimed again.
    for i in 0..40 {
        must(
            s.claim_dedup(&format!("other-{i}"), ttl, t0() + secs(500)),
            "claim",
        );
    }
    assert!(must(s.claim_dedup("k2", ttl, t0() + secs(500)), "claim"));
    assert!(!must(s.claim_dedup("k2", ttl, t0() + secs(501)), "claim"));
    assert!(!must(
        s.claim_dedup("other-0", ttl, t0() + secs(501)),
        "claim"
    ));
}

pub fn enqueue_with_dedup_keys_drops_duplicates_atomically(f: &dyn StoreFactory) {
    let s = f.fresh();
    let with_key = |dest: &str, key: &str, dedup: &str| NewDelivery {
        dedup: Some(Dedup {
            key: dedup.to_string(),
            ttl: secs(60),
        }),
        ..item(dest, key)
    };
    // Two identical items in one call (an HA pair's webhooks batched together): one kept.
    let ids = must(
        s.enqueue(
            vec![
                with_key("d", "1", "d|k1"),
                with_key("d", "1b", "d|k1"),
                with_key("e", "2", "e|k1"),
            ],
            t0(),
        ),
        "enqueue",
    );
    assert!(
        ids[0].is_some() && ids[1].is_none() && ids[2].is_some(),
        "{ids:?}"
    );
    assert!(ids[0] < ids[2], "kept items still get growing ids: {ids:?}");
    // Later, within the window: dropped; the queue holds only the first.
    let again = must(
        s.enqueue(vec![with_key("d", "1c", "d|k1")], t0() + secs(30)),
        "enqueue",
    );
    assert_eq!(again, [None]);
    assert_eq!(
        keys(&must(s.lease("d", t0() + secs(30), 10), "lease")),
        ["1"]
    );
    // A plain claim sees the enqueue's claim.
    assert!(!must(
        s.claim_dedup("e|k1", secs(1), t0() + secs(59)),
        "claim"
    ));
    // After the window: queued again.
    let later = must(
        s.enqueue(vec![with_key("d", "1d", "d|k1")], t0() + secs(61)),
        "enqueue",
    );
    assert!(later[0].is_some(), "{later:?}");
}

pub fn threads_per_destination_and_group(f: &dyn StoreFactory) {
    let s = f.fresh();
    assert_eq!(must(s.thread("d", "g"), "thread"), None);
    must(s.set_thread("d", "g", "1700000000.000100"), "set_thread");
    must(s.set_thread("e", "g", "other"), "set_thread");
    assert_eq!(
        must(s.thread("d", "g"), "thread").as_deref(),
        Some("1700000000.000100")
    );
    assert_eq!(must(s.thread("e", "g"), "thread").as_deref(), Some("other"));
    assert_eq!(must(s.thread("d", "h"), "thread"), None);
    must(s.set_thread("d", "g", "replaced"), "set_thread");
    assert_eq!(
        must(s.thread("d", "g"), "thread").as_deref(),
        Some("replaced")
    );
    // Group keys are opaque: odd characters are fine.
    let odd = "{}/{alertname=\"x\"}:{}\u{0}é";
    must(s.set_thread("d", odd, "v"), "set_thread");
    assert_eq!(must(s.thread("d", odd), "thread").as_deref(), Some("v"));
}

pub fn reopen_returns_leases_and_keeps_everything(f: &dyn StoreFactory) {
    let s = f.fresh();
    let ids = queued(s.enqueue(
        vec![
            item("d", "1"),
            item("d", "2"),
            item("d", "3"),
            item("e", "4"),
        ],
        t0(),
    ));
    let leased = must(s.lease("d", t0(), 2), "lease");
    assert_eq!(keys(&leased), ["1", "2"]);
    must(s.ack(ids[0]), "ack");
    must(s.lease("e", t0(), 10), "lease");
    must(s.dead_letter(ids[3], "bad", true, t0()), "dead_letter");
    must(s.claim_dedup("k", secs(60), t0()), "claim");
    must(s.set_thread("d", "g", "ts"), "set_thread");

    let s = f.reopen(s);
    // "2" was in flight (leased, not acked): it comes back, in order, before "3".
    let back = must(s.lease("d", t0(), 10), "lease");
    assert_eq!(keys(&back), ["2", "3"]);
    assert_eq!(back[0].id, ids[1]);
    assert_eq!(must(s.depth("d"), "depth"), (2, Some(t0())));
    assert_eq!(must(s.destinations(), "destinations"), ["d"]);
    let dead = must(s.dead_letters(), "dead_letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].delivery.id, ids[3]);
    assert!(!must(s.claim_dedup("k", secs(60), t0() + secs(1)), "claim"));
    assert_eq!(must(s.thread("d", "g"), "thread").as_deref(), Some("ts"));
    let next = queued(s.enqueue(vec![item("d", "5")], t0()));
    assert!(next[0] > ids[3], "ids are never reused");
}

pub fn healthy_when_open(f: &dyn StoreFactory) {
    let s = f.fresh();
    assert!(s.healthy());
    queued(s.enqueue(vec![item("d", "1")], t0()));
    assert!(s.healthy());
}

/// Slack's default pacing: 1 message/s, burst 3.
const SLACK: Rate = Rate {
    per_second: 1.0,
    burst: 3,
};

fn take(s: &dyn Store, key: &str, rate: Rate, now: SystemTime) -> Duration {
    must(s.take_token(key, rate, now), "take_token")
}

pub fn token_bucket_starts_with_one_token_and_refills_to_the_burst(f: &dyn StoreFactory) {
    let s = f.fresh();
    let s = s.as_ref();
    // One token at first, not a full burst.
    assert_eq!(take(s, "c", SLACK, t0()), Duration::ZERO);
    assert_eq!(take(s, "c", SLACK, t0()), secs(1));
    // Ten idle seconds refill only up to the burst of 3.
    let later = t0() + secs(10);
    for _ in 0..3 {
        assert_eq!(take(s, "c", SLACK, later), Duration::ZERO);
    }
    assert_eq!(take(s, "c", SLACK, later), secs(1));
    // Buckets are per key.
    assert_eq!(take(s, "other", SLACK, t0()), Duration::ZERO);
    // Fractional rates: one token every two seconds, and partial refills shorten the wait.
    let slow = Rate {
        per_second: 0.5,
        burst: 1,
    };
    assert_eq!(take(s, "slow", slow, t0()), Duration::ZERO);
    assert_eq!(take(s, "slow", slow, t0()), secs(2));
    assert_eq!(take(s, "slow", slow, t0() + secs(1)), secs(1));
    assert_eq!(take(s, "slow", slow, t0() + secs(2)), Duration::ZERO);
    // A clock going backwards refills nothing.
    assert_eq!(take(s, "slow", slow, t0()), secs(2));
}

pub fn token_bucket_never_exceeds_the_rate(f: &dyn StoreFactory) {
    let s = f.fresh();
    let (sent, _) = send_greedily(t0(), t0() + secs(60), |now| {
        take(s.as_ref(), "c", SLACK, now)
    });
    // In any 10 s window at most burst + 10 messages.
    let most = most_in_window(&sent, secs(10));
    assert!(most <= 13, "{most} messages in a 10 s window");
    assert!(
        sent.len() >= 59,
        "rate is used, not starved: {}",
        sent.len()
    );
}

pub fn pause_holds_the_bucket_and_spends_its_tokens(f: &dyn StoreFactory) {
    let s = f.fresh();
    let s = s.as_ref();
    let t = t0() + secs(100);
    // 100 idle seconds would refill the burst, but the pause spends every token (checked
    // after it ends).
    assert_eq!(take(s, "c", SLACK, t0()), Duration::ZERO);
    must(s.pause("c", t + secs(30)), "pause");
    assert_eq!(take(s, "c", SLACK, t), secs(30));
    assert_eq!(take(s, "c", SLACK, t + secs(10)), secs(20));
    // A shorter pause does not shorten a running one.
    must(s.pause("c", t + secs(15)), "pause");
    assert_eq!(take(s, "c", SLACK, t + secs(10)), secs(20));
    // After the pause one token is there again, not a burst.
    let after = t + secs(31);
    assert_eq!(take(s, "c", SLACK, after), Duration::ZERO);
    assert!(take(s, "c", SLACK, after) > Duration::ZERO);
    // Pausing a bucket never used: no token until one refills after the pause.
    must(s.pause("new", t + secs(5)), "pause");
    assert_eq!(take(s, "new", SLACK, t), secs(5));
    assert_eq!(take(s, "new", SLACK, t + secs(5)), secs(1));
    assert_eq!(take(s, "new", SLACK, t + secs(6)), Duration::ZERO);
}

pub fn ack_many_removes_them_all(f: &dyn StoreFactory) {
    let s = f.fresh();
    let ids = queued(s.enqueue(vec![item("d", "1"), item("d", "2"), item("d", "3")], t0()));
    must(s.lease("d", t0(), 10), "lease");
    must(s.ack_many(&ids[..2]), "ack_many");
    assert_eq!(must(s.depth("d"), "depth").0, 1);
    assert!(matches!(
        s.ack_many(&[ids[0]]),
        Err(StoreError::NotFound { .. })
    ));
    must(s.ack_many(&[]), "empty ack_many");
    assert_eq!(
        keys(&must(s.lease("d", t0(), 10), "lease")),
        Vec::<String>::new()
    );
    must(s.ack(ids[2]), "ack");
    assert_eq!(must(s.depth("d"), "depth"), (0, None));
}

fn ids_of(ds: &[Delivery]) -> Vec<u64> {
    ds.iter().map(|d| d.id).collect()
}

/// A notification of group `key` with `status` (same group key, so the same thread).
fn status_item(destination: &str, key: &str, status: Status) -> NewDelivery {
    let mut g = group(key);
    g.status = status;
    for a in &mut g.alerts {
        a.status = status;
    }
    NewDelivery {
        destination: destination.to_string(),
        group: g,
        dedup: None,
    }
}

/// Issue 6, "firing before resolved": a group's firing notification fails and waits for its
/// retry; the group's resolved notification, enqueued after, waits behind it, while other
/// groups go on.
pub fn a_retrying_delivery_holds_back_its_group_only(f: &dyn StoreFactory) {
    let s = f.fresh();
    let firing = queued(s.enqueue(vec![status_item("d", "K", Status::Firing)], t0()));
    let leased = must(s.lease("d", t0(), 10), "lease");
    assert_eq!(ids_of(&leased), firing);
    must(s.retry(firing[0], t0() + secs(30), "503"), "retry");
    let later = queued(s.enqueue(
        vec![
            status_item("d", "K", Status::Resolved),
            status_item("d", "J", Status::Firing),
        ],
        t0() + secs(1),
    ));
    let (resolved, other) = (later[0], later[1]);

    // Before the retry is due: neither of K's, but J is not held back.
    let early = must(s.lease("d", t0() + secs(10), 10), "lease");
    assert_eq!(ids_of(&early), [other], "only the other group: {early:?}");
    assert!(must(s.lease("d", t0() + secs(29), 10), "lease").is_empty());
    // Both of K's are still queued (and J's, leased).
    assert_eq!(must(s.depth("d"), "depth"), (3, Some(t0())));

    // Due: the firing one first, alone.
    let due = must(s.lease("d", t0() + secs(30), 10), "lease");
    assert_eq!(ids_of(&due), firing, "firing first, resolved still held");
    assert_eq!(due[0].group.status, Status::Firing);
    assert_eq!(due[0].attempts, 1);
    assert!(
        must(s.lease("d", t0() + secs(31), 10), "lease").is_empty(),
        "resolved held while firing is in flight"
    );
    must(s.ack(firing[0]), "ack");
    let next = must(s.lease("d", t0() + secs(31), 10), "lease");
    assert_eq!(ids_of(&next), [resolved]);
    assert_eq!(next[0].group.status, Status::Resolved);
    must(s.ack_many(&[resolved, other]), "ack_many");
    assert_eq!(must(s.depth("d"), "depth"), (0, None));
}

/// A leased (in flight) delivery holds back later ones of its group, within one lease call, in
/// later calls, and after the lease is taken over (a restart here; another replica on a shared
/// store): the taken-over one comes first.
pub fn a_leased_delivery_holds_back_its_group_also_across_a_takeover(f: &dyn StoreFactory) {
    let s = f.fresh();
    let ids = queued(s.enqueue(
        vec![
            item("d", "K"),
            item("d", "K"),
            item("d", "J"),
            item("d", "K"),
            item("d", "J"),
            item("e", "K"),
        ],
        t0(),
    ));
    // One per group per call, the group's first; other destinations are separate queues.
    let first = must(s.lease("d", t0(), 10), "lease");
    assert_eq!(ids_of(&first), [ids[0], ids[2]]);
    assert_eq!(ids_of(&must(s.lease("e", t0(), 10), "lease")), [ids[5]]);
    assert!(must(s.lease("d", t0(), 10), "lease").is_empty());
    must(s.ack(ids[2]), "ack");
    assert_eq!(ids_of(&must(s.lease("d", t0(), 10), "lease")), [ids[4]]);

    // The process holding K's first dies: it comes back first, the rest still wait.
    let s = f.reopen(s);
    let back = must(s.lease("d", t0(), 10), "lease");
    assert_eq!(ids_of(&back), [ids[0], ids[4]], "taken over, in id order");
    assert!(must(s.lease("d", t0(), 10), "lease").is_empty());
    must(s.ack(ids[0]), "ack");
    assert_eq!(ids_of(&must(s.lease("d", t0(), 10), "lease")), [ids[1]]);
    must(s.ack(ids[1]), "ack");
    assert_eq!(ids_of(&must(s.lease("d", t0(), 10), "lease")), [ids[3]]);
    assert_eq!(
        must(s.depth("d"), "depth").0,
        2,
        "ids[3] and ids[4] still queued"
    );
}

/// A group's deliveries go out in id order however often the first one is retried, and a
/// later one retried waits its own backoff before the one after it.
pub fn a_group_stays_in_id_order_across_several_retries(f: &dyn StoreFactory) {
    let s = f.fresh();
    let k = queued(s.enqueue(vec![item("d", "K"), item("d", "K"), item("d", "K")], t0()));
    let mut now = t0();
    let mut order = Vec::new();
    for (n, id) in k.iter().enumerate() {
        // Each of K's fails twice before it goes through.
        for attempt in 0..3u32 {
            let got = must(s.lease("d", now, 10), "lease");
            assert_eq!(ids_of(&got), [*id], "delivery {n}, attempt {attempt}");
            assert_eq!(got[0].attempts, attempt);
            if attempt < 2 {
                must(s.retry(*id, now + secs(5), "timeout"), "retry");
                // Later ones of K wait for the backoff too.
                let during = must(s.lease("d", now + secs(4), 10), "lease");
                assert!(during.is_empty(), "during the backoff: {during:?}");
                now += secs(5);
            } else {
                order.push(got[0].id);
                must(s.ack(*id), "ack");
            }
        }
    }
    assert_eq!(order, k);
    assert_eq!(must(s.depth("d"), "depth"), (0, None));
}

/// Hundreds of a group's deliveries waiting behind its first do not hold back another group's,
/// and are all still counted by `depth`.
pub fn many_waiting_deliveries_of_one_group_do_not_hold_back_others(f: &dyn StoreFactory) {
    let s = f.fresh();
    let k = queued(s.enqueue((0..250).map(|_| item("d", "K")).collect(), t0()));
    let j = queued(s.enqueue(vec![item("d", "J")], t0()));
    assert_eq!(ids_of(&must(s.lease("d", t0(), 1), "lease")), [k[0]]);
    assert_eq!(ids_of(&must(s.lease("d", t0(), 1), "lease")), j);
    assert!(must(s.lease("d", t0(), 1), "lease").is_empty());
    assert_eq!(must(s.depth("d"), "depth"), (251, Some(t0())));
    must(s.ack_many(&[k[0], j[0]]), "ack_many");
    for want in &k[1..4] {
        let got = must(s.lease("d", t0(), 10), "lease");
        assert_eq!(ids_of(&got), [*want]);
        must(s.ack(*want), "ack");
    }
    assert_eq!(must(s.depth("d"), "depth").0, 246);
}
