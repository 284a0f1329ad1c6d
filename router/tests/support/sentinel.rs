//! A Redis primary, one replica and three real `redis-sentinel`s on loopback ports, for the
//! failover tests; and `Relay`, a TCP relay on the replication link that can hold back what
//! the primary sends (a replica lagging behind a slow network) so a failover loses it, or
//! stands in for a managed primary endpoint that moves.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beacon_e2e::{free_port, require_bin, wait_for, Server};

use super::redis::Redis;

/// The master name the Sentinels monitor.
pub const MASTER: &str = "beacon";

/// A TCP relay from a free loopback port to `target`. While `hold` is on, what `target` sends
/// is kept in the relay instead of passed on; when `target` goes away the held bytes are
/// dropped, as a network that had not delivered them yet would. `retarget` sends new
/// connections elsewhere, as a managed primary endpoint's DNS name moves on failover
/// (connections already open stay where they are).
pub struct Relay {
    pub port: u16,
    target: Arc<AtomicU16>,
    hold: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay listen");
        let port = listener.local_addr().expect("relay addr").port();
        let hold = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let target = Arc::new(AtomicU16::new(target));
        let (h, s, t) = (hold.clone(), streams.clone(), target.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", t.load(Ordering::SeqCst))) else {
                    continue;
                };
                {
                    let mut all = s.lock().expect("relay streams");
                    all.extend(client.try_clone().ok());
                    all.extend(server.try_clone().ok());
                }
                let (c2, s2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || pipe(c2, s2, None));
                let h = h.clone();
                std::thread::spawn(move || pipe(server, client, Some(h)));
            }
        });
        Relay {
            port,
            target,
            hold,
            streams,
        }
    }

    /// New connections go to `port` from now on.
    pub fn retarget(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }

    /// Holds back (true) or passes on (false) what the target sends from now on.
    pub fn hold(&self, on: bool) {
        self.hold.store(on, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for s in self.streams.lock().expect("relay streams").iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` until either ends; while `hold` is set, keeps what it reads.
fn pipe(mut from: TcpStream, mut to: TcpStream, hold: Option<Arc<AtomicBool>>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut held = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if hold.as_ref().is_some_and(|h| h.load(Ordering::SeqCst)) {
            held.extend_from_slice(&buf[..n]);
            continue;
        }
        if !held.is_empty() && to.write_all(&std::mem::take(&mut held)).is_err() {
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    // The held bytes go down with the connection.
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Primary, replica (replicating through `relay`) and three Sentinels (quorum 2, primary
/// presumed down after 1 s). The failover timeout is long because Sentinel also "fixes" a
/// replica that replicates from another address than the primary's (the relay's) once that
/// timeout has passed, which would take the relay out of the test.
pub struct SentinelSet {
    pub primary: Redis,
    pub replica: Redis,
    pub relay: Relay,
    pub sentinels: Vec<(u16, Server, tempfile::TempDir)>,
    /// The Sentinels' own password (`requirepass`), if any.
    pub sentinel_password: Option<String>,
}

impl SentinelSet {
    pub fn start() -> SentinelSet {
        Self::start_with(None)
    }

    /// With `sentinel_password`, the Sentinels ask it of clients and of each other.
    pub fn start_with(sentinel_password: Option<&str>) -> SentinelSet {
        // Full syncs at once (Redis 7 waits 5 s for more replicas to share a diskless one).
        let primary = Redis::with_args(None, &["--repl-diskless-sync-delay", "0"]);
        let relay = Relay::start(primary.port);
        let relay_port = relay.port.to_string();
        let replica = Redis::with_args(None, &["--replicaof", "127.0.0.1", &relay_port]);
        let bin = require_bin("redis-sentinel", "redis-sentinel");
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("sentinel dir");
            let conf = dir.path().join("sentinel.conf");
            let auth = sentinel_password
                .map(|pw| format!("requirepass {pw}\nsentinel sentinel-pass {pw}\n"))
                .unwrap_or_default();
            std::fs::write(
                &conf,
                auth + &format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor {MASTER} 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 120000\n\
                     sentinel parallel-syncs {MASTER} 1\n",
                    dir.path().display(),
                    primary.port
                ),
            )
            .expect("write sentinel.conf");
            let mut cmd = Command::new(&bin);
            cmd.arg(&conf);
            let server = Server::start("redis-sentinel", cmd, dir.path()).expect("sentinel");
            sentinels.push((port, server, dir));
        }
        let set = SentinelSet {
            primary,
            replica,
            relay,
            sentinels,
            sentinel_password: sentinel_password.map(str::to_string),
        };
        // The replica holds everything written from now on only once its initial sync is done.
        wait_for("the replica to sync", Duration::from_secs(30), || {
            let info: String = set.replica.cmd(&["INFO", "replication"]).ok()?;
            info.contains("master_link_status:up").then_some(())
        })
        .expect("replica in sync");
        // Failover needs every Sentinel to know the replica and a majority of the others.
        for (port, _, _) in &set.sentinels {
            let port = *port;
            wait_for(
                "sentinels to see the replica and each other",
                Duration::from_secs(30),
                || {
                    let m = sentinel_master(port, sentinel_password)?;
                    (m.get("num-slaves").map(String::as_str) == Some("1")
                        && m.get("num-other-sentinels").map(String::as_str) == Some("2"))
                    .then_some(())
                },
            )
            .expect("sentinels ready");
        }
        set
    }

    /// `redis+sentinel://` URL of the three Sentinels.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .sentinels
            .iter()
            .map(|(p, _, _)| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+sentinel://{}/{MASTER}", nodes.join(","))
    }

    /// The port of the server the Sentinels name as primary now.
    pub fn current_primary(&self) -> Option<u16> {
        let m = sentinel_master(self.sentinels[0].0, self.sentinel_password.as_deref())?;
        m.get("port")?.parse().ok()
    }
}

/// `SENTINEL MASTER beacon` of the Sentinel on `port`, as a map.
fn sentinel_master(
    port: u16,
    password: Option<&str>,
) -> Option<std::collections::HashMap<String, String>> {
    let auth = password.map(|pw| format!(":{pw}@")).unwrap_or_default();
    let client = ::redis::Client::open(format!("redis://{auth}127.0.0.1:{port}")).ok()?;
    let mut c = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .ok()?;
    ::redis::cmd("SENTINEL")
        .arg("MASTER")
        .arg(MASTER)
        .query(&mut c)
        .ok()
}
