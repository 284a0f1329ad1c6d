//! Test helper for the store crash test (`router/tests/store.rs`): enqueues deliveries into an
//! `EmbeddedStore` in a loop, printing each id only after `enqueue` returned, until killed.
//!
//! Usage: `store-crash-writer STORE_PATH RUN [MAX_BATCHES]`. Each batch is one enqueue of two
//! deliveries (destinations `crash/a` and `crash/b`, group key `RUN-BATCH`), printed as one line
//! `ID_A ID_B RUN-BATCH`: a printed line is an acknowledged webhook. The test kills this process
//! with SIGKILL mid-loop and checks every printed line survived.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use beacon_router::model::{Group, Source, Status};
use beacon_router::store::{EmbeddedStore, NewDelivery, Store};

fn group(key: &str) -> Group {
    Group {
        receiver: Some("crash".into()),
        ..Group::empty(
            Source::Alertmanager,
            key,
            Status::Firing,
            format!("dedup-{key}"),
        )
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args_os().skip(1);
    let path = PathBuf::from(
        args.next()
            .ok_or("usage: store-crash-writer STORE_PATH RUN [MAX_BATCHES]")?,
    );
    let run = args
        .next()
        .and_then(|a| a.into_string().ok())
        .ok_or("missing RUN")?;
    // Bounded so a test that fails to kill the writer does not leave it running forever.
    let max_batches: u64 = match args.next() {
        Some(a) => a
            .into_string()
            .ok()
            .and_then(|a| a.parse().ok())
            .ok_or("MAX_BATCHES must be a number")?,
        None => 100_000,
    };
    let store = EmbeddedStore::open(&path).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    for batch in 0..max_batches {
        let key = format!("{run}-{batch}");
        let items = vec![
            NewDelivery {
                destination: "crash/a".into(),
                group: group(&key),
                dedup: None,
            },
            NewDelivery {
                destination: "crash/b".into(),
                group: group(&key),
                dedup: None,
            },
        ];
        let ids = store
            .enqueue(items, SystemTime::now())
            .map_err(|e| e.to_string())?;
        let [Some(a), Some(b)] = ids.as_slice() else {
            return Err(format!("enqueue returned {} ids for 2 items", ids.len()));
        };
        // Acknowledged: only now may the id be reported, and it must leave the process at once.
        writeln!(out, "{a} {b} {key}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store-crash-writer: {e}");
            ExitCode::FAILURE
        }
    }
}
