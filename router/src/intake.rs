//! Intake: group commit of inbound webhooks. Handlers hand their deliveries to one writer
//! thread, which takes everything waiting, writes it in a single durable store transaction (one
//! fsync for many webhooks) and answers each handler with its own ids. Under load batches grow
//! by themselves; alone, a webhook is written at once.
//!
//! A failed write fails every webhook of the batch (each handler answers 503 and Alertmanager
//! retries); nothing of it was stored, the transaction being all or nothing. The one exception
//! is Redis's `NotReplicated`: the batch is on the primary but too few replicas confirmed it,
//! so it is not acknowledged (a failover could lose it); the retry then queues it a second
//! time (or, with dedup keys, is dropped as a duplicate), so a repeat is possible, a loss is not.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use crate::store::{NewDelivery, Store};

/// Most webhooks written in one transaction: bounds the latency of a batch's last member.
const MAX_BATCH: usize = 512;
/// Webhooks waiting for the writer before handlers wait for room (back-pressure).
const QUEUE: usize = 8192;

type Reply = oneshot::Sender<Result<Vec<Option<u64>>, String>>;

#[derive(Debug)]
struct Job {
    items: Vec<NewDelivery>,
    reply: Reply,
}

/// Why a submission was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// The store write failed (its error, which names the store and operation).
    #[error("{0}")]
    Store(String),
    /// The writer is gone (the router is shutting down).
    #[error("intake is shut down")]
    Closed,
}

/// The handle handlers submit through; cloning shares the writer.
#[derive(Debug, Clone)]
pub struct Intake {
    tx: mpsc::Sender<Job>,
}

impl Intake {
    /// Starts the writer thread over `store`; `on_commit` is called after each transaction
    /// with the number of webhooks it held (for metrics and to wake the delivery workers).
    pub fn start(
        store: Arc<dyn Store>,
        on_commit: impl Fn(usize) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("intake".into())
            .spawn(move || writer(store, rx, on_commit))?;
        Ok(Intake { tx })
    }

    /// Stores `items` durably (dropping duplicates, see `Store::enqueue`) and returns their
    /// ids; returns only after the write is on disk.
    pub async fn submit(&self, items: Vec<NewDelivery>) -> Result<Vec<Option<u64>>, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { items, reply })
            .await
            .map_err(|_| IntakeError::Closed)?;
        match answer.await {
            Ok(Ok(ids)) => Ok(ids),
            Ok(Err(e)) => Err(IntakeError::Store(e)),
            Err(_) => Err(IntakeError::Closed),
        }
    }
}

fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>, on_commit: impl Fn(usize)) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut sizes = Vec::with_capacity(jobs.len());
        let mut items = Vec::new();
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            sizes.push(job.items.len());
            items.extend(job.items);
            replies.push(job.reply);
        }
        match store.enqueue(items, SystemTime::now()) {
            Ok(ids) => {
                on_commit(replies.len());
                let mut ids = ids.into_iter();
                for (reply, n) in replies.into_iter().zip(sizes) {
                    // A handler that gave up (client gone) simply does not read its answer;
                    // its webhook is stored all the same.
                    let _ = reply.send(Ok(ids.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(error = %msg, webhooks = replies.len(), "intake write failed; answering 503");
                for reply in replies {
                    let _ = reply.send(Err(msg.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Group, Source, Status};
    use crate::store::EmbeddedStore;

    fn item(dest: &str, key: &str) -> NewDelivery {
        NewDelivery {
            destination: dest.into(),
            group: Group::empty(Source::Alertmanager, key, Status::Firing, key),
            dedup: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_submissions_get_their_own_ids_and_are_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).expect("open"));
        let commits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = commits.clone();
        let intake = Intake::start(store.clone(), move |n| {
            c.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        })
        .expect("start");
        let mut tasks = Vec::new();
        for i in 0..200 {
            let intake = intake.clone();
            tasks.push(tokio::spawn(async move {
                let items = vec![item("a", &format!("{i}")), item("b", &format!("{i}"))];
                (i, intake.submit(items).await)
            }));
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in tasks {
            let (_, ids) = t.await.expect("task");
            let ids = ids.expect("stored");
            assert_eq!(ids.len(), 2);
            for id in ids {
                assert!(seen.insert(id.expect("no dedup")), "id handed out twice");
            }
        }
        assert_eq!(commits.load(std::sync::atomic::Ordering::SeqCst), 200);
        assert_eq!(store.depth("a").expect("depth").0, 200);
        assert_eq!(store.depth("b").expect("depth").0, 200);
        // Each submission's two ids are one item per destination, in order.
        let leased = store.lease("a", SystemTime::now(), 1000).expect("lease");
        assert_eq!(leased.len(), 200);
    }
}
