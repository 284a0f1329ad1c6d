//! Store tests: the backend-independent suite (`store_suite`) run against `EmbeddedStore` in a
//! tempdir, and a kill -9 crash test with the `store-crash-writer` helper binary.

#[macro_use]
mod store_suite;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use beacon_router::store::{EmbeddedStore, Store};
use store_suite::StoreFactory;

/// One store file in its own tempdir per test.
struct Embedded {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Embedded {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("router.redb");
        Embedded { _dir: dir, path }
    }
}

impl StoreFactory for Embedded {
    fn fresh(&self) -> Box<dyn Store> {
        Box::new(EmbeddedStore::open(&self.path).expect("open store"))
    }

    fn reopen(&self, store: Box<dyn Store>) -> Box<dyn Store> {
        // The file lock is released when the store is dropped.
        drop(store);
        Box::new(EmbeddedStore::open(&self.path).expect("reopen store"))
    }
}

store_suite_tests!(Embedded::new());

/// A second process cannot open a store that is in use (redb locks the file), and the error
/// names the file instead of corrupting it.
#[test]
fn a_store_in_use_is_not_opened_twice() {
    let f = Embedded::new();
    let _first = EmbeddedStore::open(&f.path).expect("open");
    let err = EmbeddedStore::open(&f.path).expect_err("second open must fail");
    assert!(
        err.to_string()
            .starts_with(&format!("store {}: cannot open", f.path.display())),
        "{err}"
    );
}

/// One acknowledged batch as printed by the writer: ids in `crash/a` and `crash/b`, group key.
type Acked = (u64, u64, String);

fn parse_line(line: &str) -> Acked {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        [a, b, key] => (
            a.parse().expect("id a"),
            b.parse().expect("id b"),
            key.to_string(),
        ),
        _ => panic!("unexpected writer line {line:?}"),
    }
}

/// Runs the writer on `path` until it has acknowledged at least `lines` batches, kills it with
/// SIGKILL, and returns every batch it acknowledged (including lines still in the pipe).
fn run_and_kill(path: &Path, run: u32, lines: usize) -> Vec<Acked> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
        .arg(path)
        .arg(run.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn store-crash-writer");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acked = Vec::new();
    while acked.len() < lines {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => acked.push(parse_line(&line.expect("read writer stdout"))),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let mut stderr = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = s.read_to_string(&mut stderr);
                }
                panic!(
                    "writer acknowledged {} of {lines} batches before {e:?}; stderr: {stderr}",
                    acked.len()
                );
            }
        }
    }
    // Mid-loop: the writer is still enqueueing (it stops only after 100,000 batches).
    child.kill().expect("kill -9 the writer");
    let status = child.wait().expect("wait for the writer");
    assert_eq!(
        status.signal(),
        Some(9),
        "writer must die by SIGKILL: {status:?}"
    );
    // The pipe is closed now, so the reader ends; lines still buffered were acknowledged too.
    reader.join().expect("reader thread");
    for line in rx.try_iter() {
        acked.push(parse_line(&line.expect("read writer stdout")));
    }
    acked
}

/// Reopens the store after a kill and checks every acknowledged batch is there, whole, and that
/// the store is consistent: both destinations hold the same batches (enqueue is all or nothing),
/// queue index and records agree, and new ids are above every old one.
fn check_after_crash(path: &Path, acked: &[Acked]) {
    let store = EmbeddedStore::open(path).expect("reopen after kill -9");
    let mut by_dest: BTreeMap<&str, BTreeMap<u64, String>> = BTreeMap::new();
    for dest in ["crash/a", "crash/b"] {
        let now = SystemTime::now() + Duration::from_secs(3600);
        let leased = store
            .lease(dest, now, usize::MAX)
            .expect("lease after crash");
        let (depth, _) = store.depth(dest).expect("depth after crash");
        assert_eq!(depth, leased.len(), "{dest}: index and records agree");
        let ids: Vec<u64> = leased.iter().map(|d| d.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{dest}: id order");
        for d in leased {
            assert_eq!(d.destination, dest);
            assert_eq!(d.group.key, d.group.dedup_key.trim_start_matches("dedup-"));
            by_dest.entry(dest).or_default().insert(d.id, d.group.key);
        }
    }
    let empty = BTreeMap::new();
    let a = by_dest.get("crash/a").unwrap_or(&empty);
    let b = by_dest.get("crash/b").unwrap_or(&empty);
    for (ia, ib, key) in acked {
        assert_eq!(
            a.get(ia),
            Some(key),
            "acknowledged crash/a id {ia} ({key}) lost"
        );
        assert_eq!(
            b.get(ib),
            Some(key),
            "acknowledged crash/b id {ib} ({key}) lost"
        );
    }
    // Whole batches only: a batch committed just before the kill but never printed is allowed,
    // half a batch is not.
    let keys_a: BTreeSet<&String> = a.values().collect();
    let keys_b: BTreeSet<&String> = b.values().collect();
    assert_eq!(keys_a, keys_b, "every batch is in both destinations");
    for (id, key) in a {
        assert_eq!(
            b.get(&(id + 1)),
            Some(key),
            "batch {key} has consecutive ids"
        );
    }
    assert!(store.dead_letters().expect("dead letters").is_empty());
    let max_seen = a.keys().chain(b.keys()).max().copied().unwrap_or(0);
    let fresh = store
        .enqueue(Vec::new(), SystemTime::now())
        .expect("empty enqueue");
    assert!(fresh.is_empty());
    assert!(store.healthy());
    // A real enqueue after the crash gets an id above everything seen, then is acked away so
    // the next round's consistency checks stay simple.
    let item = beacon_router::store::NewDelivery {
        destination: "crash/probe".into(),
        group: store_suite::group("probe"),
        dedup: None,
    };
    let ids = store
        .enqueue(vec![item], SystemTime::now())
        .expect("enqueue after crash");
    let id = ids[0].expect("no dedup key, never dropped");
    assert!(id > max_seen, "id {id} reused (max seen {max_seen})");
    store.ack(id).expect("ack probe");
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    let f = Embedded::new();
    let mut acked = Vec::new();
    for run in 0..4 {
        let got = run_and_kill(&f.path, run, 20 + 15 * run as usize);
        assert!(got.len() >= 20);
        acked.extend(got);
        check_after_crash(&f.path, &acked);
    }
}
