//! A three-primary Redis Cluster on loopback ports, made with `redis-cli --cluster create`
//! (Debian packages `redis-server` and `redis-tools`), each node with AOF fsynced on every write.

use std::process::Command;
use std::time::Duration;

use beacon_e2e::{require_bin, wait_for};

use super::redis::Redis;

pub struct Cluster {
    pub nodes: Vec<Redis>,
}

impl Cluster {
    pub fn start() -> Cluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                Redis::with_args(
                    None,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let mut cmd = Command::new(require_bin("redis-cli", "redis-tools"));
        cmd.args(["--cluster", "create"]);
        for n in &nodes {
            cmd.arg(format!("127.0.0.1:{}", n.port));
        }
        cmd.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = cmd.output().expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for n in &nodes {
            wait_for("the cluster to be up", Duration::from_secs(30), || {
                let info: String = n.cmd(&["CLUSTER", "INFO"]).ok()?;
                info.contains("cluster_state:ok").then_some(())
            })
            .expect("cluster up");
        }
        Cluster { nodes }
    }

    /// The node serving `key`'s slot.
    pub fn owner(&self, key: &str) -> &Redis {
        let slot: i64 = self.nodes[0]
            .cmd(&["CLUSTER", "KEYSLOT", key])
            .expect("CLUSTER KEYSLOT");
        self.nodes
            .iter()
            .find(|n| {
                // The node whose own line (`myself`) in CLUSTER NODES lists a range with it.
                let nodes: String = n.cmd(&["CLUSTER", "NODES"]).expect("CLUSTER NODES");
                nodes.lines().any(|l| {
                    l.contains("myself")
                        && l.split_whitespace().skip(8).any(|range| {
                            let (a, b) = range.split_once('-').unwrap_or((range, range));
                            a.parse::<i64>().is_ok_and(|a| a <= slot)
                                && b.parse::<i64>().is_ok_and(|b| slot <= b)
                        })
                })
            })
            .expect("a node serves the slot")
    }
}
