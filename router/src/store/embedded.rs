//! `EmbeddedStore`: the `Store` trait on a single redb file (ACID, copy-on-write B-trees, crash
//! safe), the default backend under `storage.path`.
//!
//! Every write is one redb transaction committed with `Durability::Immediate`, so it is on disk
//! when the call returns and a kill -9 leaves either all of it or none of it. Leases live only in
//! memory (id to lease time): reopening the file returns every lease, and a lease older than
//! `LEASE_TIMEOUT` (its outcome never recorded) is offered again. Pacing buckets live in memory
//! too, in a `Pacer` the store owns (one process is the only user of the file).
//!
//! Group order: `lease` walks a destination's queue in id order and offers only the first queued
//! delivery of each group (`group.key`); a group whose first delivery is leased or waiting for
//! its retry holds its later ones back, other groups pass. The walk needs each delivery's group
//! key and `not_before`; they are kept in memory (`Leases::seen`) once decoded, so deliveries
//! held behind their group cost a map lookup per lease, not a JSON decode.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::{from_millis, to_millis, DeadLetter, Delivery, NewDelivery, Store, StoreError};
use crate::config::Rate;
use crate::model;
use crate::pace::Pacer;

/// Queued deliveries by id: JSON `Record`.
const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");
/// Index of the queue by (destination, id), so a destination's deliveries are one range in id
/// order.
const BY_DESTINATION: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("queue_by_destination");
/// Dead letters by (original) id: JSON `DeadRecord`.
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");
/// Dedup claims: key to expiry (unix ms).
const DEDUP: TableDefinition<&str, u64> = TableDefinition::new("dedup");
/// Dedup claims by (expiry, key), so expired claims are found without scanning every claim.
const DEDUP_EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("dedup_by_expiry");
/// Thread state by (destination, group key).
const THREADS: TableDefinition<(&str, &str), &str> = TableDefinition::new("threads");
/// Store metadata; `next_id` is the id the next delivery gets.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_ID: &str = "next_id";

/// Expired dedup claims removed per `claim_dedup` call: bounds the work of one call while still
/// outpacing the rate at which claims are created (at most one per call).
const DEDUP_PRUNE_BATCH: usize = 16;

/// redb page cache.
const CACHE_BYTES: usize = 1 << 20;

/// How long a lease holds before `lease` offers the delivery again (longer than any send).
pub const LEASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The stored form of a queued delivery (its id is the key).
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    destination: String,
    group: model::Group,
    enqueued_at_ms: u64,
    attempts: u32,
    not_before_ms: u64,
    last_error: Option<String>,
}

impl Record {
    fn into_delivery(self, id: u64) -> Delivery {
        Delivery {
            id,
            destination: self.destination,
            group: self.group,
            enqueued_at: from_millis(self.enqueued_at_ms),
            attempts: self.attempts,
            not_before: from_millis(self.not_before_ms),
            last_error: self.last_error,
        }
    }
}

/// The stored form of a dead letter (keyed by the delivery's id).
#[derive(Debug, Serialize, Deserialize)]
struct DeadRecord {
    record: Record,
    reason: String,
    at_ms: u64,
}

/// In-memory lease state of an `EmbeddedStore`.
#[derive(Debug, Default)]
struct Leases {
    /// Ids handed out by `lease` and not yet acked, retried or dead-lettered, with when.
    held: HashMap<u64, SystemTime>,
    /// Group key and `not_before` (ms) of queued deliveries the lease walk has decoded: ids are
    /// never reused and a delivery's group never changes, so an entry stays valid until the
    /// delivery leaves the queue (or is retried, which changes `not_before`), when it is removed.
    seen: HashMap<u64, Head>,
}

/// What the lease walk needs of a queued delivery.
#[derive(Debug)]
struct Head {
    group_key: String,
    not_before_ms: u64,
}

impl Leases {
    /// Forgets `id`: it left the queue, or its record changed.
    fn forget(&mut self, id: u64) {
        self.held.remove(&id);
        self.seen.remove(&id);
    }
}

/// The redb-backed store. Open one per file; redb locks the file against a second opener.
#[derive(Debug)]
pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
    /// Leases and the lease walk's cache. The lock is also held across `lease` and the writes
    /// that end a lease or change a record, so a lease never sees a delivery that an ack is
    /// removing and the cache never outlives the record it describes.
    leases: Mutex<Leases>,
    /// Token buckets for `take_token`/`pause`.
    pacer: Pacer,
    /// The `Instant` standing for the Unix epoch: `Pacer` counts in `Instant`s, the trait in
    /// `SystemTime`s; mapping `t` to `pace_epoch + (t - UNIX_EPOCH)` keeps every difference.
    pace_epoch: Instant,
}

impl EmbeddedStore {
    /// Opens the store file at `path`, creating it (and its tables) if missing. The parent
    /// directory must exist. A file left by a killed process is recovered by redb on open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |detail: String| StoreError::Open {
            location: path.display().to_string(),
            detail,
        };
        // redb's default page cache is 1 GiB and fills with every record written: resident
        // memory then grows with the history of the queue. The working set (queue heads, the
        // dedup and thread tables) is small; measured, a 1 MiB cache did not slow intake.
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| open_err(e.to_string()))?;
        let store = EmbeddedStore {
            db,
            path: path.to_path_buf(),
            leases: Mutex::new(Leases::default()),
            pacer: Pacer::new(),
            pace_epoch: Instant::now(),
        };
        // Create every table up front so read transactions never meet a missing table.
        store
            .write("open", |txn| {
                txn.open_table(QUEUE)?;
                txn.open_table(BY_DESTINATION)?;
                txn.open_table(DEAD)?;
                txn.open_table(DEDUP)?;
                txn.open_table(DEDUP_EXPIRY)?;
                txn.open_table(THREADS)?;
                txn.open_table(META)?;
                Ok(())
            })
            .map_err(|e| open_err(e.to_string()))?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn backend(&self, op: &'static str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            location: self.location(),
            op,
            detail: e.to_string(),
        }
    }

    fn not_found(&self, op: &'static str, what: &'static str, id: u64) -> StoreError {
        StoreError::NotFound {
            location: self.location(),
            op,
            what,
            id,
        }
    }

    fn corrupt(&self, op: &'static str, key: String, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            location: self.location(),
            op,
            key,
            detail: e.to_string(),
        }
    }

    /// The pacer's `Instant` for `t` (see `pace_epoch`). Instants before the epoch map to the
    /// epoch; an instant too far out to represent saturates at the epoch mapping too, which only
    /// an absurd clock could produce.
    fn pace_instant(&self, t: SystemTime) -> Instant {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.pace_epoch
            .checked_add(since)
            .unwrap_or(self.pace_epoch)
    }

    fn leases(&self) -> MutexGuard<'_, Leases> {
        // A panic elsewhere while holding the lock leaves the maps themselves consistent (every
        // mutation is a single insert/remove), so a poisoned lock is safe to keep using.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one write transaction and commits it durably; on any error nothing is
    /// committed.
    fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&WriteTransaction) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.backend(op, e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.backend(op, e))?;
        let out = match f(&txn) {
            Ok(out) => out,
            Err(e) => {
                // Dropping the transaction also aborts it; abort explicitly to surface nothing
                // more than the original error.
                let _ = txn.abort();
                return Err(self.tx_error(op, e));
            }
        };
        txn.commit().map_err(|e| self.backend(op, e))?;
        Ok(out)
    }

    fn read(&self, op: &'static str) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(|e| self.backend(op, e))
    }

    fn tx_error(&self, op: &'static str, e: TxError) -> StoreError {
        match e {
            TxError::Db(e) => self.backend(op, e),
            TxError::NotFound(what, id) => self.not_found(op, what, id),
            TxError::Corrupt(key, detail) => self.corrupt(op, key, detail),
        }
    }

    /// Takes the next `n` ids from the counter.
    fn take_ids(txn: &WriteTransaction, n: u64) -> Result<u64, TxError> {
        let mut meta = txn.open_table(META)?;
        let first = meta.get(NEXT_ID)?.map(|v| v.value()).unwrap_or(1);
        let next = first
            .checked_add(n)
            .ok_or_else(|| TxError::Corrupt(NEXT_ID.into(), "id counter exhausted".into()))?;
        meta.insert(NEXT_ID, next)?;
        Ok(first)
    }

    /// Claims dedup `key` until `now_ms + ttl` unless a live claim exists (then false), and
    /// prunes a few expired claims.
    fn claim(
        txn: &WriteTransaction,
        key: &str,
        ttl: Duration,
        now_ms: u64,
    ) -> Result<bool, TxError> {
        let expiry = now_ms.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let mut claims = txn.open_table(DEDUP)?;
        let mut by_expiry = txn.open_table(DEDUP_EXPIRY)?;
        let existing = claims.get(key)?.map(|v| v.value());
        if let Some(old) = existing {
            if old > now_ms {
                return Ok(false);
            }
            by_expiry.remove((old, key))?;
        }
        claims.insert(key, expiry)?;
        by_expiry.insert((expiry, key), ())?;
        // Lazy pruning of a few other expired claims.
        let expired: Vec<(u64, String)> = by_expiry
            .range(..(now_ms.saturating_add(1), ""))?
            .take(DEDUP_PRUNE_BATCH)
            .map(|e| e.map(|(k, _)| (k.value().0, k.value().1.to_string())))
            .collect::<Result<_, _>>()?;
        for (at, k) in expired {
            by_expiry.remove((at, k.as_str()))?;
            claims.remove(k.as_str())?;
        }
        Ok(true)
    }

    /// Removes queued delivery `id` from the queue and its index, returning its record.
    fn remove_queued(txn: &WriteTransaction, id: u64) -> Result<Record, TxError> {
        let mut queue = txn.open_table(QUEUE)?;
        let record = match queue.remove(id)? {
            Some(bytes) => decode_record(id, bytes.value())?,
            None => return Err(TxError::NotFound("queued delivery", id)),
        };
        let mut index = txn.open_table(BY_DESTINATION)?;
        index.remove((record.destination.as_str(), id))?;
        Ok(record)
    }

    /// Inserts `record` as queued delivery `id`.
    fn insert_queued(txn: &WriteTransaction, id: u64, record: &Record) -> Result<(), TxError> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| TxError::Corrupt(format!("queue/{id}"), e.to_string()))?;
        txn.open_table(QUEUE)?.insert(id, bytes.as_slice())?;
        txn.open_table(BY_DESTINATION)?
            .insert((record.destination.as_str(), id), ())?;
        Ok(())
    }
}

/// Errors inside a transaction closure, turned into `StoreError` (with the location) outside.
#[derive(Debug)]
enum TxError {
    Db(redb::Error),
    NotFound(&'static str, u64),
    Corrupt(String, String),
}

impl<E: Into<redb::Error>> From<E> for TxError {
    fn from(e: E) -> Self {
        TxError::Db(e.into())
    }
}

/// The lease walk: `destination`'s queue in id order, offering (up to `max`) each group's first
/// queued delivery if it is not leased and ready at `now`. A group whose first delivery is
/// leased (a lease older than `LEASE_TIMEOUT` no longer counts: its outcome was never recorded,
/// and stuck is worse than a repeat) or not ready, or was just offered, is blocked: its later
/// deliveries are passed over, so a group's notifications go out one at a time in id order.
fn lease_walk(
    txn: &ReadTransaction,
    destination: &str,
    now: SystemTime,
    max: usize,
    leases: &mut Leases,
) -> Result<Vec<Delivery>, TxError> {
    let now_ms = to_millis(now);
    let index = txn.open_table(BY_DESTINATION)?;
    let queue = txn.open_table(QUEUE)?;
    let read = |id: u64| -> Result<Record, TxError> {
        match queue.get(id)? {
            Some(bytes) => decode_record(id, bytes.value()),
            None => Err(TxError::Corrupt(
                format!("queue_by_destination/{destination}/{id}"),
                "index entry without a queued delivery".into(),
            )),
        }
    };
    let mut out = Vec::new();
    let mut blocked: HashSet<String> = HashSet::new();
    for entry in index.range((destination, 0)..=(destination, u64::MAX))? {
        if out.len() >= max {
            break;
        }
        let (key, _) = entry?;
        let (_, id) = key.value();
        let mut decoded = None;
        let head = match leases.seen.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let record = read(id)?;
                let head = e.insert(Head {
                    group_key: record.group.key.clone(),
                    not_before_ms: record.not_before_ms,
                });
                decoded = Some(record);
                head
            }
        };
        if blocked.contains(&head.group_key) {
            continue;
        }
        blocked.insert(head.group_key.clone());
        let leased = leases.held.get(&id).is_some_and(|at| {
            now.duration_since(*at)
                .map_or(true, |held| held < LEASE_TIMEOUT)
        });
        if leased || head.not_before_ms > now_ms {
            continue;
        }
        let record = match decoded {
            Some(record) => record,
            None => read(id)?,
        };
        out.push(record.into_delivery(id));
    }
    Ok(out)
}

fn decode_record(id: u64, bytes: &[u8]) -> Result<Record, TxError> {
    serde_json::from_slice(bytes)
        .map_err(|e| TxError::Corrupt(format!("queue/{id}"), e.to_string()))
}

fn decode_dead(id: u64, bytes: &[u8]) -> Result<DeadRecord, TxError> {
    serde_json::from_slice(bytes)
        .map_err(|e| TxError::Corrupt(format!("dead_letters/{id}"), e.to_string()))
}

impl Store for EmbeddedStore {
    fn enqueue(
        &self,
        items: Vec<NewDelivery>,
        now: SystemTime,
    ) -> Result<Vec<Option<u64>>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let now_ms = to_millis(now);
        self.write("enqueue", |txn| {
            let mut ids = Vec::with_capacity(items.len());
            let mut kept = Vec::with_capacity(items.len());
            for item in items {
                let fresh = match &item.dedup {
                    Some(d) => Self::claim(txn, &d.key, d.ttl, now_ms)?,
                    None => true,
                };
                if fresh {
                    kept.push(item);
                }
                ids.push(fresh);
            }
            let n = u64::try_from(kept.len())
                .map_err(|e| TxError::Corrupt("enqueue".into(), e.to_string()))?;
            let first = Self::take_ids(txn, n)?;
            for (id, item) in (first..).zip(kept) {
                let record = Record {
                    destination: item.destination,
                    group: item.group,
                    enqueued_at_ms: now_ms,
                    attempts: 0,
                    not_before_ms: now_ms,
                    last_error: None,
                };
                Self::insert_queued(txn, id, &record)?;
            }
            let mut next = first;
            Ok(ids
                .into_iter()
                .map(|fresh| {
                    fresh.then(|| {
                        next += 1;
                        next - 1
                    })
                })
                .collect())
        })
    }

    fn lease(
        &self,
        destination: &str,
        now: SystemTime,
        max: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        const OP: &str = "lease";
        let mut leases = self.leases();
        let txn = self.read(OP)?;
        let out = lease_walk(&txn, destination, now, max, &mut leases)
            .map_err(|e| self.tx_error(OP, e))?;
        leases.held.extend(out.iter().map(|d| (d.id, now)));
        Ok(out)
    }

    fn ack(&self, id: u64) -> Result<(), StoreError> {
        let mut leases = self.leases();
        self.write("ack", |txn| Self::remove_queued(txn, id).map(|_| ()))?;
        leases.forget(id);
        Ok(())
    }

    fn ack_many(&self, ids: &[u64]) -> Result<(), StoreError> {
        let mut leases = self.leases();
        self.write("ack", |txn| {
            ids.iter()
                .try_for_each(|id| Self::remove_queued(txn, *id).map(|_| ()))
        })?;
        for id in ids {
            leases.forget(*id);
        }
        Ok(())
    }

    fn retry(&self, id: u64, not_before: SystemTime, error: &str) -> Result<(), StoreError> {
        let mut leases = self.leases();
        self.write("retry", |txn| {
            let queue = txn.open_table(QUEUE)?;
            let mut record = match queue.get(id)? {
                Some(bytes) => decode_record(id, bytes.value())?,
                None => return Err(TxError::NotFound("queued delivery", id)),
            };
            drop(queue);
            record.attempts = record.attempts.saturating_add(1);
            record.not_before_ms = to_millis(not_before);
            record.last_error = Some(error.to_string());
            Self::insert_queued(txn, id, &record)
        })?;
        leases.forget(id);
        Ok(())
    }

    fn dead_letter(
        &self,
        id: u64,
        reason: &str,
        attempted: bool,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let mut leases = self.leases();
        self.write("dead_letter", |txn| {
            let mut record = Self::remove_queued(txn, id)?;
            if attempted {
                record.attempts = record.attempts.saturating_add(1);
            }
            let dead = DeadRecord {
                record,
                reason: reason.to_string(),
                at_ms: to_millis(now),
            };
            let bytes = serde_json::to_vec(&dead)
                .map_err(|e| TxError::Corrupt(format!("dead_letters/{id}"), e.to_string()))?;
            txn.open_table(DEAD)?.insert(id, bytes.as_slice())?;
            Ok(())
        })?;
        leases.forget(id);
        Ok(())
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        const OP: &str = "dead_letters";
        let txn = self.read(OP)?;
        let run = || -> Result<Vec<DeadLetter>, TxError> {
            let dead = txn.open_table(DEAD)?;
            let mut out = Vec::new();
            for entry in dead.iter()? {
                let (id, bytes) = entry?;
                let id = id.value();
                let d = decode_dead(id, bytes.value())?;
                out.push(DeadLetter {
                    delivery: d.record.into_delivery(id),
                    reason: d.reason,
                    at: from_millis(d.at_ms),
                });
            }
            Ok(out)
        };
        run().map_err(|e| self.tx_error(OP, e))
    }

    fn replay(&self, id: u64, now: SystemTime) -> Result<u64, StoreError> {
        let now_ms = to_millis(now);
        self.write("replay", |txn| {
            let dead = match txn.open_table(DEAD)?.remove(id)? {
                Some(bytes) => decode_dead(id, bytes.value())?,
                None => return Err(TxError::NotFound("dead letter", id)),
            };
            let new_id = Self::take_ids(txn, 1)?;
            let record = Record {
                attempts: 0,
                last_error: None,
                enqueued_at_ms: now_ms,
                not_before_ms: now_ms,
                ..dead.record
            };
            Self::insert_queued(txn, new_id, &record)?;
            Ok(new_id)
        })
    }

    fn destinations(&self) -> Result<Vec<String>, StoreError> {
        const OP: &str = "destinations";
        let txn = self.read(OP)?;
        let run = || -> Result<Vec<String>, TxError> {
            let index = txn.open_table(BY_DESTINATION)?;
            let mut out: Vec<String> = Vec::new();
            // Skip from one destination to the next instead of walking every queued delivery:
            // no id is u64::MAX, so the first key at or after (d, MAX) belongs to the next one.
            let mut next = index.first()?.map(|(k, _)| k.value().0.to_string());
            while let Some(d) = next {
                next = match index.range((d.as_str(), u64::MAX)..)?.next() {
                    Some(entry) => Some(entry?.0.value().0.to_string()),
                    None => None,
                };
                out.push(d);
            }
            Ok(out)
        };
        run().map_err(|e| self.tx_error(OP, e))
    }

    fn depth(&self, destination: &str) -> Result<(usize, Option<SystemTime>), StoreError> {
        const OP: &str = "depth";
        let txn = self.read(OP)?;
        let run = || -> Result<(usize, Option<SystemTime>), TxError> {
            let index = txn.open_table(BY_DESTINATION)?;
            let queue = txn.open_table(QUEUE)?;
            let mut count = 0usize;
            let mut oldest = None;
            for entry in index.range((destination, 0)..=(destination, u64::MAX))? {
                let (key, _) = entry?;
                if count == 0 {
                    let (_, id) = key.value();
                    if let Some(bytes) = queue.get(id)? {
                        oldest = Some(from_millis(
                            decode_record(id, bytes.value())?.enqueued_at_ms,
                        ));
                    }
                }
                count += 1;
            }
            Ok((count, oldest))
        };
        run().map_err(|e| self.tx_error(OP, e))
    }

    fn claim_dedup(&self, key: &str, ttl: Duration, now: SystemTime) -> Result<bool, StoreError> {
        let now_ms = to_millis(now);
        self.write("claim_dedup", |txn| Self::claim(txn, key, ttl, now_ms))
    }

    fn thread(&self, destination: &str, group_key: &str) -> Result<Option<String>, StoreError> {
        const OP: &str = "thread";
        let txn = self.read(OP)?;
        let run = || -> Result<Option<String>, TxError> {
            let threads = txn.open_table(THREADS)?;
            Ok(threads
                .get((destination, group_key))?
                .map(|v| v.value().to_string()))
        };
        run().map_err(|e| self.tx_error(OP, e))
    }

    fn set_thread(
        &self,
        destination: &str,
        group_key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.write("set_thread", |txn| {
            txn.open_table(THREADS)?
                .insert((destination, group_key), value)?;
            Ok(())
        })
    }

    fn healthy(&self) -> bool {
        // redb refuses new write transactions after an I/O failure it could not recover from;
        // beginning (and aborting) one is the cheapest honest probe and writes nothing.
        match self.db.begin_write() {
            Ok(txn) => txn.abort().is_ok(),
            Err(_) => false,
        }
    }

    fn take_token(&self, key: &str, rate: Rate, now: SystemTime) -> Result<Duration, StoreError> {
        Ok(self.pacer.try_take(key, rate, self.pace_instant(now)))
    }

    fn pause(&self, key: &str, until: SystemTime) -> Result<(), StoreError> {
        self.pacer.pause(key, self.pace_instant(until));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Group, Source, Status};
    use redb::ReadableTableMetadata;

    fn group(key: &str) -> Group {
        Group::empty(
            Source::Alertmanager,
            key,
            Status::Firing,
            format!("dedup-{key}"),
        )
    }

    #[test]
    fn open_rejects_a_file_that_is_not_a_store_and_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("not-a-store.redb");
        std::fs::write(&path, b"this is not a redb file, just some text bytes").expect("write");
        let err = EmbeddedStore::open(&path).expect_err("garbage file must not open");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("store {}: cannot open: ", path.display())),
            "{msg}"
        );
    }

    #[test]
    fn open_fails_cleanly_in_a_missing_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("store.redb");
        let err = EmbeddedStore::open(&path).expect_err("missing parent must not open");
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
    }

    #[test]
    fn a_corrupt_record_is_an_error_naming_it_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).expect("open");
        let id = store
            .enqueue(
                vec![NewDelivery {
                    destination: "d".into(),
                    group: group("g"),
                    dedup: None,
                }],
                SystemTime::UNIX_EPOCH,
            )
            .expect("enqueue")[0]
            .expect("no dedup key");
        // Overwrite the record with bytes that are not a Record.
        store
            .write("test", |txn| {
                txn.open_table(QUEUE)?.insert(id, b"{not json".as_slice())?;
                Ok(())
            })
            .expect("overwrite");
        let err = store
            .lease("d", SystemTime::UNIX_EPOCH, 10)
            .expect_err("corrupt record must be an error");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("corrupt record queue/{id}")),
            "{err}"
        );
        // The failed lease leased nothing.
        assert!(store.leases().held.is_empty());
    }

    #[test]
    fn expired_dedup_claims_are_pruned_a_batch_per_claim() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).expect("open");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let ttl = Duration::from_secs(10);
        for i in 0..40 {
            assert!(store.claim_dedup(&format!("k{i}"), ttl, t0).expect("claim"));
        }
        let count = |store: &EmbeddedStore| {
            let txn = store.db.begin_read().expect("read");
            let claims = txn.open_table(DEDUP).expect("dedup").len().expect("len");
            let by_expiry = txn
                .open_table(DEDUP_EXPIRY)
                .expect("expiry")
                .len()
                .expect("len");
            assert_eq!(claims, by_expiry, "both dedup tables agree");
            claims
        };
        assert_eq!(count(&store), 40);
        // Not yet expired (expiry is t0 + ttl, exclusive): nothing pruned.
        assert!(store
            .claim_dedup("a", ttl, t0 + ttl - Duration::from_millis(1))
            .expect("claim"));
        assert_eq!(count(&store), 41);
        // Expired: each claim prunes up to DEDUP_PRUNE_BATCH others.
        assert!(store.claim_dedup("b", ttl, t0 + ttl).expect("claim"));
        assert_eq!(count(&store), 42 - DEDUP_PRUNE_BATCH as u64);
        for c in ["c", "d", "e"] {
            assert!(store.claim_dedup(c, ttl, t0 + ttl).expect("claim"));
        }
        // Only the live claims a..e remain.
        assert_eq!(count(&store), 5);
    }

    #[test]
    fn the_id_counter_survives_emptying_the_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let store = EmbeddedStore::open(&path).expect("open");
        let item = || NewDelivery {
            destination: "d".into(),
            group: group("g"),
            dedup: None,
        };
        let first = store
            .enqueue(vec![item()], SystemTime::UNIX_EPOCH)
            .expect("enqueue");
        store.ack(first[0].expect("queued")).expect("ack");
        drop(store);
        let store = EmbeddedStore::open(&path).expect("reopen");
        let second = store
            .enqueue(vec![item()], SystemTime::UNIX_EPOCH)
            .expect("enqueue");
        assert!(second[0] > first[0], "{second:?} after {first:?}");
    }

    #[test]
    fn a_lease_never_finished_is_offered_again_after_the_lease_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).expect("open");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        store
            .enqueue(
                vec![NewDelivery {
                    destination: "d".into(),
                    group: group("g"),
                    dedup: None,
                }],
                t0,
            )
            .expect("enqueue");
        assert_eq!(store.lease("d", t0, 1).expect("lease").len(), 1);
        let almost = t0 + LEASE_TIMEOUT - Duration::from_secs(1);
        assert!(store.lease("d", almost, 1).expect("lease").is_empty());
        let after = t0 + LEASE_TIMEOUT + Duration::from_secs(1);
        assert_eq!(store.lease("d", after, 1).expect("lease").len(), 1);
        // Taken again: held anew from `after`.
        assert!(store.lease("d", after, 1).expect("lease").is_empty());
    }
}
