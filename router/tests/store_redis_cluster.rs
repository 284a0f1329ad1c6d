//! The store conformance suite against a three-primary Redis Cluster (`redis-cli --cluster
//! create`), in cluster mode: every key of a store in one slot (the hash tag made from the key
//! prefix), scripts run there, and a store opened on a node that does not serve the slot
//! follows the `MOVED` redirect.

#[macro_use]
mod store_suite;
mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use beacon_router::store::{cluster_prefix, RedisConfig, RedisStore, Store};
use store_suite::{group, t0, StoreFactory};
use support::cluster::Cluster;

fn store_on(node_url: &str, prefix: &str) -> RedisStore {
    let mut cfg = RedisConfig::new(node_url);
    cfg.prefix = prefix.to_string();
    cfg.cluster = true;
    cfg.idle_timeout = Duration::from_millis(200);
    RedisStore::open(cfg).expect("open on the cluster")
}

/// One cluster per test; each factory's prefix hashes to a slot of its own, so stores opened
/// on the first node are redirected for most of them.
struct ClusterFactory {
    cluster: Cluster,
    prefix: String,
}

impl ClusterFactory {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        ClusterFactory {
            cluster: Cluster::start(),
            prefix: format!("suite{}:", N.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

impl StoreFactory for ClusterFactory {
    fn fresh(&self) -> Box<dyn Store> {
        Box::new(store_on(&self.cluster.nodes[0].url(), &self.prefix))
    }

    fn reopen(&self, store: Box<dyn Store>) -> Box<dyn Store> {
        drop(store);
        std::thread::sleep(Duration::from_millis(250));
        self.fresh()
    }
}

store_suite_tests!(ClusterFactory::new());

#[test]
fn hash_tags_come_from_the_prefix() {
    assert_eq!(cluster_prefix("beacon:"), "{beacon}:");
    assert_eq!(cluster_prefix("team-a"), "{team-a}:");
    assert_eq!(cluster_prefix("{prod}:beacon:"), "{prod}:beacon:");
}

#[test]
fn every_key_lives_in_one_slot_on_one_node_reached_by_redirect() {
    let cluster = Cluster::start();
    let owner = cluster.owner("{beacon}");
    let other = cluster
        .nodes
        .iter()
        .find(|n| n.port != owner.port)
        .expect("another node");
    // Opened on a node that does not serve the slot: MOVED, followed.
    let s = store_on(&other.url(), "beacon:");
    let item = |k: &str| beacon_router::store::NewDelivery {
        destination: "d".into(),
        group: group(k),
        dedup: Some(beacon_router::store::Dedup {
            key: k.into(),
            ttl: Duration::from_secs(60),
        }),
    };
    let ids = s
        .enqueue(vec![item("a"), item("b")], t0())
        .expect("enqueue");
    assert_eq!(ids.len(), 2);
    s.set_thread("d", "a", "1.000100").expect("thread");
    s.take_token(
        "slack:C1",
        beacon_router::config::Rate {
            per_second: 1.0,
            burst: 1,
        },
        t0(),
    )
    .expect("token");
    let leased = s.lease("d", t0(), 10).expect("lease");
    s.ack(leased[0].id).expect("ack");
    // Every key is on the slot's node, none elsewhere, all with the tag.
    let keys: Vec<String> = owner.cmd(&["KEYS", "*"]).expect("KEYS");
    assert!(keys.len() >= 6, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("{beacon}:")), "{keys:?}");
    for n in &cluster.nodes {
        if n.port != owner.port {
            let none: Vec<String> = n.cmd(&["KEYS", "*"]).expect("KEYS");
            assert!(none.is_empty(), "keys on another node: {none:?}");
        }
    }
}
