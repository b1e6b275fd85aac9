//! The command worker: drains the durable topic [`TOPIC`] that the SMS router fills, one
//! command at a time (so two commands of one officer never race), on a blocking thread.
//!
//! Owns: the drain (a batch on the outbox's consumer loop, `crate::store::consumer`, sharing
//! one flush before its acks) and the start-up backfill of the officer → policy index.
//! Must never: ack a job before its command's transaction is durable (the done marker makes
//! a re-run harmless).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{pending, Officers, Processed};
use crate::domain::Id;
use crate::shutdown::Signal;
use crate::store::consumer::{
    Consumer, ConsumerLoop, Flushes, LoopOptions, Shape, Unavailable, Verdict,
};
use crate::store::{codec, OutboxItem, Store};

/// Outbox topic of officer commands waiting to run.
pub const TOPIC: &str = "officer.cmd";

/// Jobs claimed at once; they run one after another and share one flush, and only this
/// loop claims, so a lease running out mid-batch lets no one else run a job twice.
const BATCH: usize = 16;
/// Lease on a claimed job: how long a job claimed by a crashed process waits.
const LEASE: Duration = Duration::from_secs(5);

/// One queued command: the stored MO that carries it (queued by [`super::route`]).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Job {
    pub(super) mo: Id,
}

/// Starts the worker; it stops on shutdown.
pub fn spawn(officers: Officers, store: Store, signal: Signal) -> tokio::task::JoinHandle<()> {
    let officers = Arc::new(officers);
    let backfill_store = store.clone();
    tokio::task::spawn_blocking(move || match pending::backfill(&backfill_store) {
        Ok(n) => tracing::info!(indexed = n, "officer policy index backfilled"),
        Err(e) => tracing::warn!(error = %e, "officer policy index backfill failed"),
    });
    tokio::spawn(run(officers, store, signal))
}

async fn run(officers: Arc<Officers>, store: Store, signal: Signal) {
    let poll = Duration::from_millis(officers.settings.poll_ms.max(1));
    let opts = LoopOptions {
        shape: Shape::Batch(BATCH),
        // The batch runs on one blocking thread, then one flush covers every command's
        // write before any of them is acknowledged.
        flush: Flushes {
            before_settle: true,
            ..Flushes::default()
        },
        ..LoopOptions::new(TOPIC, LEASE, poll)
    };
    let worker = Arc::new(Commands {
        officers,
        store: store.clone(),
    });
    ConsumerLoop::new(store, worker, opts).run(signal).await;
}

/// The worker's part of the outbox loop: run a batch of commands unflushed, in order.
struct Commands {
    officers: Arc<Officers>,
    store: Store,
}

impl Consumer for Commands {
    async fn run(&self, items: &[OutboxItem]) -> Result<Vec<Verdict>, Unavailable> {
        let (o, s) = (self.officers.clone(), self.store.clone());
        let items = items.to_vec();
        let n = items.len();
        let ran = tokio::task::spawn_blocking(move || {
            items
                .iter()
                .map(|item| run_one(&o, &s, item))
                .collect::<Vec<_>>()
        })
        .await;
        Ok(ran.unwrap_or_else(|e| {
            // Nothing acknowledged: the leases run out and the batch runs again.
            tracing::error!(error = %e, "officer command batch panicked");
            vec![Verdict::Leave; n]
        }))
    }
}

/// Runs one job, unflushed (the loop's one flush covers the batch).
fn run_one(officers: &Officers, store: &Store, item: &OutboxItem) -> Verdict {
    let Ok(job) = codec::decode::<Job>(&item.payload) else {
        tracing::error!(seq = item.seq, "undecodable officer job; dead-lettered");
        return Verdict::Dead("undecodable job".into());
    };
    // A command that panics is retried alone; the rest of the batch still runs and is
    // acknowledged.
    let run = std::panic::AssertUnwindSafe(|| officers.process_unflushed(store, job.mo));
    match std::panic::catch_unwind(run).unwrap_or_else(|_| Err(super::OfficerError::Panicked)) {
        Ok(p) => {
            if let Processed::Ignored = p {
                tracing::info!(mo_id = job.mo, "officer job had nothing to answer");
            }
            Verdict::Done
        }
        Err(e) => {
            tracing::warn!(mo_id = job.mo, error = %e, "officer command failed; will retry");
            Verdict::Retry(e.to_string())
        }
    }
}

/// Runs every queued command now, on this thread (tests and benchmarks without a runtime).
pub fn drain_blocking(officers: &Officers, store: &Store) -> Result<usize, super::OfficerError> {
    let mut n = 0;
    loop {
        let items = store.claim(TOPIC, BATCH, LEASE, Utc::now())?;
        if items.is_empty() {
            return Ok(n);
        }
        for item in &items {
            if let Ok(job) = codec::decode::<Job>(&item.payload) {
                officers.process_unflushed(store, job.mo)?;
            }
        }
        store.flushed_blocking()?;
        for item in items {
            store.ack(TOPIC, item.seq)?;
            n += 1;
        }
    }
}
