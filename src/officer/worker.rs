//! The command worker: drains the durable topic [`TOPIC`] that the SMS router fills, one
//! command at a time (so two commands of one officer never race), on a blocking thread.
//!
//! Owns: the drain loop and the start-up backfill of the officer → policy index.
//! Must never: ack a job before its command's transaction is durable (the done marker makes
//! a re-run harmless).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{pending, Officers, Processed};
use crate::domain::Id;
use crate::shutdown::Signal;
use crate::store::{codec, Store};

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

async fn run(officers: Arc<Officers>, store: Store, mut signal: Signal) {
    let poll = Duration::from_millis(officers.settings.poll_ms.max(1));
    let bell = store.outbox_bell(TOPIC);
    loop {
        if signal.is_triggered() {
            break;
        }
        let items = match store.claim(TOPIC, BATCH, LEASE, Utc::now()) {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(error = %e, "claiming officer commands failed");
                Vec::new()
            }
        };
        if items.is_empty() {
            tokio::select! {
                _ = bell.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = signal.recv() => break,
            }
            continue;
        }
        // The batch runs on one blocking thread, then one flush covers every command's
        // write before any of them is acknowledged.
        let (o, s) = (officers.clone(), store.clone());
        let ran = tokio::task::spawn_blocking(move || {
            items
                .into_iter()
                .map(|item| {
                    let job = codec::decode::<Job>(&item.payload).ok();
                    let outcome = job.map(|j| {
                        // A command that panics is retried alone; the rest of the batch
                        // still runs and is acknowledged.
                        let run = std::panic::AssertUnwindSafe(|| o.process_unflushed(&s, j.mo));
                        let r = std::panic::catch_unwind(run)
                            .unwrap_or_else(|_| Err(super::OfficerError::Panicked));
                        (j.mo, r)
                    });
                    (item.seq, outcome)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let ran = match ran {
            Ok(ran) => ran,
            Err(e) => {
                // Nothing acknowledged: the leases run out and the batch runs again.
                tracing::error!(error = %e, "officer command batch panicked");
                continue;
            }
        };
        if let Err(e) = store.flushed().await {
            tracing::warn!(error = %e, "flushing officer commands failed; they run again");
            continue;
        }
        for (seq, outcome) in ran {
            match outcome {
                None => {
                    tracing::error!(seq, "undecodable officer job; dead-lettered");
                    let _ = store.dead_letter(TOPIC, seq, "undecodable job", Utc::now());
                }
                Some((mo, Ok(p))) => {
                    if let Processed::Ignored = p {
                        tracing::info!(mo_id = mo, "officer job had nothing to answer");
                    }
                    if let Err(e) = store.ack(TOPIC, seq) {
                        tracing::warn!(error = %e, "acking an officer job failed");
                    }
                }
                Some((mo, Err(e))) => {
                    tracing::warn!(mo_id = mo, error = %e, "officer command failed; will retry");
                    let _ = store.retry(TOPIC, seq, &e.to_string(), Utc::now());
                }
            }
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
