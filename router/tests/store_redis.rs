//! Store tests against a real `redis-server` (Debian package `redis-server`): the
//! backend-independent suite (`store_suite`) on `RedisStore`, and what only a shared store has:
//! two replicas (consumers) on one Redis, takeover of a dead replica's leases, shared dedup
//! claims, threads and token buckets, Redis going away and coming back, and passwords.
//! Every test starts its own server on a free loopback port, with AOF fsynced on every write.

#[macro_use]
mod store_suite;
mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use beacon_e2e::pacing::{most_in_window, send_greedily};
use beacon_e2e::{free_port, wait_for};
use beacon_router::config::Rate;
use beacon_router::secret::Secret;
use beacon_router::store::{Dedup, NewDelivery, RedisConfig, RedisStore, Store, StoreError};
use store_suite::{group, t0, StoreFactory};
use support::redis::Redis;

/// A store on `redis` under `prefix`, taking over other consumers' leases after `idle`.
fn store_on(redis: &Redis, prefix: &str, idle: Duration) -> RedisStore {
    let mut cfg = RedisConfig::new(redis.url());
    cfg.prefix = prefix.to_string();
    cfg.idle_timeout = idle;
    cfg.timeout = Duration::from_millis(500);
    cfg.password = redis.password.as_deref().map(Secret::new);
    RedisStore::open(cfg).expect("open redis store")
}

/// A unique key prefix per factory, as if each test were another router on a shared Redis.
fn prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("test{}:", N.fetch_add(1, Ordering::Relaxed))
}

/// Idle timeout of the suite's stores: `reopen` waits it out, so the new consumer takes over
/// the old one's leases as a replica replacing a dead one would.
const SUITE_IDLE: Duration = Duration::from_millis(30);

/// The suite's factory: one redis-server per test, one prefix per factory.
struct RedisFactory {
    redis: Redis,
    prefix: String,
}

impl RedisFactory {
    fn new() -> Self {
        RedisFactory {
            redis: Redis::new(),
            prefix: prefix(),
        }
    }
}

impl StoreFactory for RedisFactory {
    fn fresh(&self) -> Box<dyn Store> {
        Box::new(store_on(&self.redis, &self.prefix, SUITE_IDLE))
    }

    fn reopen(&self, store: Box<dyn Store>) -> Box<dyn Store> {
        // Dropping the store is a replica dying: its pending entries stay with its consumer
        // name until they have been idle long enough for another consumer to claim them.
        drop(store);
        std::thread::sleep(SUITE_IDLE + Duration::from_millis(20));
        Box::new(store_on(&self.redis, &self.prefix, SUITE_IDLE))
    }
}

store_suite_tests!(RedisFactory::new());

fn item(destination: &str, key: &str) -> NewDelivery {
    NewDelivery {
        destination: destination.to_string(),
        group: group(key),
        dedup: None,
    }
}

fn keys(ds: &[beacon_router::store::Delivery]) -> Vec<String> {
    ds.iter().map(|d| d.group.key.clone()).collect()
}

fn ids(r: Vec<Option<u64>>) -> Vec<u64> {
    r.into_iter().map(|id| id.expect("no dedup key")).collect()
}

/// Consumer names in the group of `destination`'s stream, asked of Redis directly.
fn consumers(redis: &Redis, prefix: &str, destination: &str) -> Vec<String> {
    let client = redis::Client::open(redis.url()).expect("redis client");
    let mut con = client.get_connection().expect("connect to redis");
    let infos: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(format!("{prefix}q:{destination}"))
        .arg("router")
        .query(&mut con)
        .expect("XINFO CONSUMERS");
    infos
        .iter()
        .map(|i| redis::from_redis_value_ref(&i["name"]).expect("consumer name"))
        .collect()
}

#[test]
fn a_lease_is_exclusive_between_replicas_and_a_dead_replicas_leases_are_taken_over() {
    let redis = Redis::new();
    let p = prefix();
    let idle = Duration::from_millis(800);
    let a = store_on(&redis, &p, idle);
    let b = store_on(&redis, &p, idle);
    assert_ne!(a.consumer(), b.consumer());
    let queued = ids(a
        .enqueue(vec![item("d", "1"), item("d", "2"), item("d", "3")], t0())
        .expect("enqueue"));
    let by_a = a.lease("d", t0(), 2).expect("lease a");
    assert_eq!(keys(&by_a), ["1", "2"]);
    // B gets only what A does not hold, however often it asks.
    assert_eq!(keys(&b.lease("d", t0(), 10).expect("lease b")), ["3"]);
    assert!(b.lease("d", t0(), 10).expect("lease b").is_empty());
    // A acks one, then dies holding "2" (dropped without ack).
    a.ack(queued[0]).expect("ack a");
    drop(a);
    assert!(
        b.lease("d", t0(), 10).expect("lease b").is_empty(),
        "not idle long enough yet"
    );
    std::thread::sleep(idle + Duration::from_millis(50));
    let taken = b.lease("d", t0(), 10).expect("lease b after idle");
    // "2" from the dead A, and B's own "3": held past the idle timeout, its outcome was never
    // recorded, so it is offered again rather than stuck (hence the idle timeout must exceed
    // the longest time a live replica holds a lease).
    assert_eq!(keys(&taken), ["2", "3"]);
    assert_eq!(taken[0].id, queued[1]);
    // The dead replica, holding nothing now, is forgotten by the consumer group.
    assert_eq!(consumers(&redis, &p, "d"), [b.consumer().to_string()]);
    // Within the idle timeout, B's leases stay B's: not to B again, not to a third replica.
    assert!(b.lease("d", t0(), 10).expect("lease b").is_empty());
    let c = store_on(&redis, &p, idle);
    assert!(c.lease("d", t0(), 10).expect("lease c").is_empty());
    std::thread::sleep(idle + Duration::from_millis(50));
    // Past it, a third replica takes them over.
    assert_eq!(keys(&c.lease("d", t0(), 10).expect("lease c")), ["2", "3"]);
    b.ack(queued[1]).expect("ack b");
    c.ack(queued[2]).expect("ack c");
    assert_eq!(c.depth("d").expect("depth"), (0, None));
    assert!(c.destinations().expect("destinations").is_empty());
}

/// Issue 6, group order across replicas: while A holds group K's first delivery, B gets other
/// groups but not K's second; once A's lease is taken over (A died), B gets K's first, and only
/// after acking it K's second. A retry pending on the dead replica is picked up when due.
#[test]
fn a_group_waits_for_its_first_delivery_held_by_another_replica() {
    let redis = Redis::new();
    let p = prefix();
    let idle = Duration::from_millis(800);
    let a = store_on(&redis, &p, idle);
    let b = store_on(&redis, &p, idle);
    let q = ids(a
        .enqueue(
            vec![
                item("d", "K"),
                item("d", "K"),
                item("d", "J"),
                item("d", "R"),
            ],
            t0(),
        )
        .expect("enqueue"));
    let by_a = a.lease("d", t0(), 1).expect("lease a");
    assert_eq!(by_a.iter().map(|d| d.id).collect::<Vec<_>>(), [q[0]]);
    // B passes over K's second (A holds K's first) and takes the other groups.
    let by_b = b.lease("d", t0(), 10).expect("lease b");
    assert_eq!(by_b.iter().map(|d| d.id).collect::<Vec<_>>(), [q[2], q[3]]);
    // R fails on B and waits for its retry; B then dies with it pending.
    b.retry(q[3], t0() + Duration::from_secs(30), "503")
        .expect("retry b");
    b.ack(q[2]).expect("ack b");
    drop(b);
    assert!(a.lease("d", t0(), 10).expect("lease a").is_empty());
    // A dies holding K's first; C takes it over after the idle timeout, and K's second only
    // after that.
    drop(a);
    let c = store_on(&redis, &p, idle);
    assert!(
        c.lease("d", t0(), 10).expect("lease c").is_empty(),
        "A's lease not idle long enough yet"
    );
    std::thread::sleep(idle + Duration::from_millis(50));
    let taken = c.lease("d", t0(), 10).expect("lease c after idle");
    assert_eq!(taken.iter().map(|d| d.id).collect::<Vec<_>>(), [q[0]]);
    assert!(c.lease("d", t0(), 10).expect("lease c").is_empty());
    c.ack(q[0]).expect("ack c");
    let second = c.lease("d", t0(), 10).expect("lease c");
    assert_eq!(second.iter().map(|d| d.id).collect::<Vec<_>>(), [q[1]]);
    // The dead B's retry, once due, goes to C.
    let due = c
        .lease("d", t0() + Duration::from_secs(30), 10)
        .expect("lease c");
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), [q[3]]);
    assert_eq!(due[0].attempts, 1);
    c.ack_many(&[q[1], q[3]]).expect("ack c");
    assert_eq!(c.depth("d").expect("depth"), (0, None));
}

#[test]
fn dedup_claims_threads_and_ids_are_shared_between_replicas() {
    let redis = Redis::new();
    let p = prefix();
    let a = store_on(&redis, &p, Duration::from_secs(60));
    let b = store_on(&redis, &p, Duration::from_secs(60));
    let ttl = Duration::from_secs(60);
    assert!(a.claim_dedup("k", ttl, t0()).expect("claim a"));
    assert!(!b.claim_dedup("k", ttl, t0()).expect("claim b"));
    // An absurd ttl is a claim for (practically) ever, not a Redis error.
    assert!(a
        .claim_dedup("forever", Duration::MAX, t0())
        .expect("claim"));
    assert!(!b
        .claim_dedup("forever", ttl, t0() + Duration::from_secs(86_400 * 365))
        .expect("claim"));
    let with_key = |key: &str| NewDelivery {
        dedup: Some(Dedup {
            key: "d|same".into(),
            ttl,
        }),
        ..item("d", key)
    };
    let first = a.enqueue(vec![with_key("1")], t0()).expect("enqueue a");
    let second = b.enqueue(vec![with_key("2")], t0()).expect("enqueue b");
    assert!(first[0].is_some(), "{first:?}");
    assert_eq!(second, [None], "the HA twin's copy through B is dropped");
    // Ids grow across replicas.
    let mut last = first[0].expect("queued");
    for (i, s) in [&b, &a, &b].into_iter().enumerate() {
        let id = ids(s
            .enqueue(vec![item("e", &i.to_string())], t0())
            .expect("enqueue"))[0];
        assert!(id > last, "{id} after {last}");
        last = id;
    }
    a.set_thread("d", "g", "1700000000.000100")
        .expect("set_thread");
    assert_eq!(
        b.thread("d", "g").expect("thread").as_deref(),
        Some("1700000000.000100")
    );
    // Another prefix is another router: nothing shared.
    let other = store_on(&redis, &prefix(), Duration::from_secs(60));
    assert_eq!(other.thread("d", "g").expect("thread"), None);
    assert!(other.claim_dedup("k", ttl, t0()).expect("claim other"));
    assert!(other.destinations().expect("destinations").is_empty());
}

#[test]
fn replicas_share_one_token_bucket() {
    let redis = Redis::new();
    let p = prefix();
    let a = store_on(&redis, &p, Duration::from_secs(60));
    let b = store_on(&redis, &p, Duration::from_secs(60));
    let rate = Rate {
        per_second: 1.0,
        burst: 3,
    };
    assert_eq!(a.take_token("ch", rate, t0()).expect("a"), Duration::ZERO);
    assert_eq!(
        b.take_token("ch", rate, t0()).expect("b"),
        Duration::from_secs(1),
        "B sees the token A took"
    );
    // Both replicas send as fast as the shared bucket lets them, alternating.
    let stores = [&a, &b];
    let start = t0() + Duration::from_secs(1);
    let end = start + Duration::from_secs(30);
    let mut turn = 0;
    let (sent, now) = send_greedily(start, end, |now| {
        turn += 1;
        stores[(turn - 1) % 2]
            .take_token("ch", rate, now)
            .expect("take")
    });
    let most = most_in_window(&sent, Duration::from_secs(10));
    assert!(
        most <= 13,
        "{most} messages in a 10 s window across two replicas"
    );
    assert!(sent.len() >= 29, "rate used: {}", sent.len());
    // A pause through one replica holds the other.
    a.pause("ch", now + Duration::from_secs(20)).expect("pause");
    assert_eq!(
        b.take_token("ch", rate, now).expect("b"),
        Duration::from_secs(20)
    );
}

/// Every call fails with a Backend error naming the address and the operation, never panics.
fn assert_down(s: &RedisStore, location: &str, secret: Option<&str>) {
    let check = |op: &str, r: Result<(), StoreError>| {
        let e = r.expect_err(op);
        assert!(matches!(e, StoreError::Backend { .. }), "{op}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("store {location}: {op} failed: ")),
            "{msg}"
        );
        if let Some(pw) = secret {
            assert!(!msg.contains(pw), "password leaked: {msg}");
        }
    };
    let now = t0();
    check("enqueue", s.enqueue(vec![item("d", "x")], now).map(|_| ()));
    check("lease", s.lease("d", now, 10).map(|_| ()));
    check("ack", s.ack(1));
    check("retry", s.retry(1, now, "e"));
    check("dead_letter", s.dead_letter(1, "r", true, now));
    check("dead_letters", s.dead_letters().map(|_| ()));
    check("replay", s.replay(1, now).map(|_| ()));
    check("destinations", s.destinations().map(|_| ()));
    check("depth", s.depth("d").map(|_| ()));
    check(
        "claim_dedup",
        s.claim_dedup("k", Duration::from_secs(1), now).map(|_| ()),
    );
    check("thread", s.thread("d", "g").map(|_| ()));
    check("set_thread", s.set_thread("d", "g", "v"));
    let rate = Rate {
        per_second: 1.0,
        burst: 1,
    };
    check("take_token", s.take_token("c", rate, now).map(|_| ()));
    check("pause", s.pause("c", now));
    assert!(!s.healthy());
}

#[test]
fn redis_going_away_fails_every_call_and_coming_back_loses_nothing() {
    let mut redis = Redis::new();
    let s = store_on(&redis, &prefix(), Duration::from_secs(60));
    let queued = ids(s
        .enqueue(vec![item("d", "1"), item("d", "2")], t0())
        .expect("enqueue"));
    s.set_thread("d", "g", "ts").expect("set_thread");
    assert!(s.healthy());

    redis.stop();
    // The first call meets the dead connection, later ones the refused reconnect (or the
    // backoff): all are clean errors.
    assert_down(&s, &redis.location(), None);
    assert_down(&s, &redis.location(), None);

    redis.start();
    wait_for("the store to reconnect", Duration::from_secs(10), || {
        s.healthy().then_some(())
    })
    .expect("reconnect after redis restart");
    // Everything acknowledged before the kill came back from the AOF.
    let back = s.lease("d", t0(), 10).expect("lease after restart");
    assert_eq!(back.iter().map(|d| d.id).collect::<Vec<_>>(), queued);
    assert_eq!(s.thread("d", "g").expect("thread").as_deref(), Some("ts"));
    let next = ids(s.enqueue(vec![item("d", "3")], t0()).expect("enqueue"));
    assert!(next[0] > queued[1], "ids are never reused");
}

#[test]
fn password_from_a_file_and_clear_errors_without_it() {
    let pw = "s3cret-pa55word";
    let mut redis = Redis::with_password(Some(pw));
    let file = redis.dir.path().join("redis-password");
    std::fs::write(&file, format!("{pw}\n")).expect("write password file");

    let open = |password: Option<Secret>| {
        let mut cfg = RedisConfig::new(redis.url());
        cfg.prefix = prefix();
        cfg.password = password;
        cfg.timeout = Duration::from_millis(500);
        RedisStore::open(cfg)
    };
    let s = open(Some(Secret::from_file(&file).expect("read password file")))
        .expect("open with the password from the file");
    assert!(s.healthy());
    assert!(s
        .claim_dedup("k", Duration::from_secs(5), t0())
        .expect("claim"));
    assert!(!format!("{s:?}").contains(pw), "Debug shows no password");

    let wrong = open(Some(Secret::new("not-it"))).expect_err("wrong password must fail");
    let msg = wrong.to_string();
    assert!(
        msg.starts_with(&format!("store {}: cannot open: ", redis.url())),
        "{msg}"
    );
    assert!(
        msg.to_lowercase().contains("pass") || msg.to_lowercase().contains("auth"),
        "says the password is wrong: {msg}"
    );
    assert!(!msg.contains("not-it"), "{msg}");
    let none = open(None).expect_err("no password must fail");
    assert!(
        none.to_string().to_lowercase().contains("auth"),
        "says authentication is required: {none}"
    );

    // A password in the URL is never shown either.
    let mut cfg = RedisConfig::new(format!("redis://:{pw}@127.0.0.1:{}/0", redis.port));
    cfg.prefix = prefix();
    let in_url = RedisStore::open(cfg).expect("open with the password in the URL");
    assert_eq!(in_url.location(), redis.url());
    redis.stop();
    assert_down(&in_url, &redis.url(), Some(pw));
    assert_down(&s, &redis.url(), Some(pw));
}

#[test]
fn an_unreachable_redis_fails_open_naming_the_address() {
    let port = free_port();
    let mut cfg = RedisConfig::new(format!("redis://127.0.0.1:{port}"));
    cfg.timeout = Duration::from_millis(300);
    let err = RedisStore::open(cfg).expect_err("nothing listens there");
    assert!(
        err.to_string()
            .starts_with(&format!("store redis://127.0.0.1:{port}/0: cannot open: ")),
        "{err}"
    );
    // TLS (rediss://) is built in: a plain-text server there fails the handshake cleanly.
    let redis = Redis::new();
    let mut cfg = RedisConfig::new(format!("rediss://127.0.0.1:{}", redis.port));
    cfg.timeout = Duration::from_millis(500);
    let tls = RedisStore::open(cfg).expect_err("no TLS on a plain-text server");
    assert!(
        tls.to_string().starts_with(&format!(
            "store rediss://127.0.0.1:{}/0: cannot open: ",
            redis.port
        )),
        "{tls}"
    );
    let bad = RedisStore::open(RedisConfig::new("http://user:hunter2@host/"))
        .expect_err("not a redis URL");
    assert!(!bad.to_string().contains("hunter2"), "{bad}");
}

/// A primary and a replica of it, both in sync.
fn primary_and_replica() -> (Redis, Redis) {
    let primary = Redis::with_args(None, &["--repl-diskless-sync-delay", "0"]);
    let port = primary.port.to_string();
    let replica = Redis::with_args(None, &["--replicaof", "127.0.0.1", &port]);
    wait_for("the replica to sync", Duration::from_secs(30), || {
        let info: String = replica.cmd(&["INFO", "replication"]).ok()?;
        info.contains("master_link_status:up").then_some(())
    })
    .expect("replica in sync");
    (primary, replica)
}

#[test]
fn replicated_writes_wait_for_the_replica_and_fail_without_it() {
    use beacon_router::store::Replicas;
    // Strict on a lone primary: the write happens there but is not acknowledged.
    let lone = Redis::new();
    let mut cfg = RedisConfig::new(lone.url());
    cfg.replicas = Replicas::AtLeast(1);
    cfg.wait_timeout = Duration::from_millis(100);
    let strict = RedisStore::open(cfg).expect("open");
    let err = strict
        .enqueue(vec![item("d", "1")], store_suite::t0())
        .expect_err("no replica to confirm");
    assert!(
        matches!(
            err,
            StoreError::NotReplicated {
                acked: 0,
                wanted: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "store {}: enqueue: written but confirmed by 0 of 1 replicas within 100 ms",
            lone.url()
        )
    );
    assert_eq!(strict.unreplicated_writes(), 1);
    // Automatic on a lone primary: nothing to wait for.
    let auto = RedisStore::open(RedisConfig::new(lone.url())).expect("open");
    auto.enqueue(vec![item("d", "2")], store_suite::t0())
        .expect("a lone primary acknowledges");
    assert_eq!(auto.unreplicated_writes(), 0);

    // Automatic with a replica: every acknowledged write is on the replica when it returns.
    let (primary, replica) = primary_and_replica();
    let s = RedisStore::open(RedisConfig::new(primary.url())).expect("open");
    for i in 0..20 {
        let ids = s
            .enqueue(vec![item("d", &i.to_string())], store_suite::t0())
            .expect("replicated");
        let id = ids[0].expect("queued");
        let on_replica: i64 = replica
            .cmd(&["EXISTS", &format!("beacon:d:{id}")])
            .expect("EXISTS on the replica");
        assert_eq!(
            on_replica, 1,
            "delivery {id} not on the replica when acknowledged"
        );
    }
    s.set_thread("d", "g", "1700000000.000100").expect("thread");
    let ts: Option<String> = replica
        .cmd(&["HGET", "beacon:thread:d", "g"])
        .expect("HGET on the replica");
    assert_eq!(ts.as_deref(), Some("1700000000.000100"));
    // The replica stops confirming (paused): writes are refused, not acknowledged.
    let pid = replica.pid().to_string();
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill");
    assert!(stop.success());
    let mut cfg = RedisConfig::new(primary.url());
    cfg.wait_timeout = Duration::from_millis(100);
    let waiting = RedisStore::open(cfg).expect("open");
    let refused = waiting.enqueue(vec![item("d", "x")], store_suite::t0());
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status();
    assert!(
        matches!(refused, Err(StoreError::NotReplicated { .. })),
        "{refused:?}"
    );
    assert_eq!(waiting.unreplicated_writes(), 1);
}

#[test]
fn a_replica_is_not_taken_for_the_primary() {
    let (_primary, replica) = primary_and_replica();
    let mut cfg = RedisConfig::new(replica.url());
    cfg.timeout = Duration::from_millis(500);
    let err = RedisStore::open(cfg).expect_err("a replica is not the primary");
    assert!(err.to_string().contains("not the primary"), "{err}");
}
