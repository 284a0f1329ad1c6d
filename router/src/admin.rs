//! Dead-letter administration, shared by the CLI (`beacon-router dead-letters list|replay`) and
//! the running daemon's loopback-only admin API (`GET /api/v1/dead-letters`,
//! `POST /api/v1/dead-letters/replay`): the CLI opens the store itself when no router holds it,
//! and asks the running router otherwise (the embedded store admits one process at a time).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::render;
use crate::store::{Store, StoreError};

/// A dead letter as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterView {
    /// Id to replay it by.
    pub id: u64,
    /// Where it was going.
    pub destination: String,
    /// Why it was given up on.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
    /// When it was first queued (RFC 3339).
    pub enqueued_at: String,
    /// Failed attempts.
    pub attempts: u32,
    /// The group's title, as the default message shows it.
    pub title: String,
    /// The group key.
    pub group_key: String,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Every dead letter, oldest first.
pub fn list(store: &dyn Store) -> Result<Vec<DeadLetterView>, StoreError> {
    Ok(store
        .dead_letters()?
        .into_iter()
        .map(|d| DeadLetterView {
            id: d.delivery.id,
            title: render::title(&render::neutralise_group(&d.delivery.group)),
            group_key: d.delivery.group.key.clone(),
            destination: d.delivery.destination,
            reason: d.reason,
            at: rfc3339(d.at),
            enqueued_at: rfc3339(d.delivery.enqueued_at),
            attempts: d.delivery.attempts,
        })
        .collect())
}

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRequest {
    /// These ids; empty with `all` for every dead letter.
    #[serde(default)]
    pub ids: Vec<u64>,
    /// Every dead letter.
    #[serde(default)]
    pub all: bool,
}

/// One replayed dead letter: its old id and its new queue id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    /// The dead letter's id.
    pub id: u64,
    /// The id it was queued again under.
    pub queued_as: u64,
}

/// Moves the requested dead letters back to their queues. Stops at the first failure (an
/// unknown id names itself); those replayed before it stay replayed.
pub fn replay(store: &dyn Store, req: &ReplayRequest) -> Result<Vec<Replayed>, StoreError> {
    let ids = if req.all {
        store
            .dead_letters()?
            .iter()
            .map(|d| d.delivery.id)
            .collect()
    } else {
        req.ids.clone()
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let queued_as = store.replay(id, SystemTime::now())?;
        out.push(Replayed { id, queued_as });
    }
    Ok(out)
}

/// The human-readable listing the CLI prints.
pub fn format_list(items: &[DeadLetterView]) -> String {
    if items.is_empty() {
        return "no dead letters\n".into();
    }
    let mut out = String::new();
    for d in items {
        out.push_str(&format!(
            "{id}\t{at}\t{dest}\t{title}\n\tattempts: {attempts}, queued {queued}\n\treason: {reason}\n",
            id = d.id,
            at = d.at,
            dest = d.destination,
            title = d.title,
            attempts = d.attempts,
            queued = d.enqueued_at,
            reason = d.reason,
        ));
    }
    out
}
