//! Group commit: one background thread turns many "is my write on disk yet?" waiters into
//! one `fsync`.
//!
//! A writer commits its transaction, then registers a waiter. The flusher takes every
//! waiter registered so far, calls `db.flush()` once (which persists everything committed
//! before the call, so every taken waiter's write), and wakes them all. Writers that
//! register while a flush runs form the next batch, so the more concurrent writers, the
//! fewer flushes per write.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::StoreError;

type FlushResult = Result<(), Arc<sled::Error>>;

enum Waiter {
    Async(oneshot::Sender<FlushResult>),
    Blocking(mpsc::SyncSender<FlushResult>),
}

impl Waiter {
    fn wake(self, r: FlushResult) {
        // A waiter that stopped waiting (dropped future) is fine to miss.
        let _ = match self {
            Waiter::Async(tx) => tx.send(r).map_err(drop),
            Waiter::Blocking(tx) => tx.send(r).map_err(drop),
        };
    }
}

#[derive(Default)]
struct State {
    waiters: Vec<Waiter>,
    stopping: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    flushes: AtomicU64,
    served: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: it is a list and a flag.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counters of the group-commit flusher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// `db.flush()` calls made for waiters.
    pub flushes: u64,
    /// Waiters woken by those flushes.
    pub waiters_served: u64,
}

pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    pub(crate) fn start(db: sled::Db) -> Result<GroupCommit, StoreError> {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("store-flusher".into())
            .spawn(move || run(&s, &db))
            .map_err(StoreError::Thread)?;
        Ok(GroupCommit {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn register(&self, w: Waiter) -> Result<(), StoreError> {
        let mut st = self.shared.lock();
        if st.stopping {
            return Err(StoreError::Closed);
        }
        st.waiters.push(w);
        drop(st);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Registers a waiter now; the future resolves once a flush that started after this
    /// call has completed.
    pub(crate) fn flushed(&self) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let registered = self.register(Waiter::Async(tx));
        async move {
            registered?;
            match rx.await {
                Ok(r) => r.map_err(StoreError::Flush),
                Err(_) => Err(StoreError::Closed),
            }
        }
    }

    /// Blocking form of [`GroupCommit::flushed`]. Do not call from an async task.
    pub(crate) fn flushed_blocking(&self) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.register(Waiter::Blocking(tx))?;
        match rx.recv() {
            Ok(r) => r.map_err(StoreError::Flush),
            Err(_) => Err(StoreError::Closed),
        }
    }

    pub(crate) fn stats(&self) -> CommitStats {
        CommitStats {
            flushes: self.shared.flushes.load(Ordering::Relaxed),
            waiters_served: self.shared.served.load(Ordering::Relaxed),
        }
    }
}

impl Drop for GroupCommit {
    /// Serves the remaining waiters, then stops and joins the flusher (which owns a handle
    /// to the database, so the database can close once this returns).
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        let handle = self
            .thread
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("store flusher thread panicked");
            }
        }
    }
}

fn run(shared: &Shared, db: &sled::Db) {
    loop {
        let batch = {
            let mut st = shared.lock();
            while st.waiters.is_empty() && !st.stopping {
                st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.waiters.is_empty() {
                return; // stopping, nobody left to serve
            }
            std::mem::take(&mut st.waiters)
        };
        let r = db.flush().map(drop).map_err(Arc::new);
        if let Err(e) = &r {
            tracing::error!(error = %e, "store flush failed");
        }
        shared.flushes.fetch_add(1, Ordering::Relaxed);
        shared
            .served
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for w in batch {
            w.wake(r.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::super::fixtures::*;
    use super::super::{Store, StoreOptions, TxResult, WriteError};

    fn options() -> StoreOptions {
        // No background flushing by sled: every flush counted here is a group commit.
        StoreOptions {
            flush_every_ms: None,
            ..StoreOptions::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_durable_writers_share_flushes_and_all_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), options()).unwrap();
        let writers = 64u64;
        let tasks: Vec<_> = (0..writers)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .write_durable(|tx| -> TxResult<()> {
                            tx.put_family(&family(1000 + i, 2000 + i))?;
                            tx.put_insuree(&insuree(
                                2000 + i,
                                1000 + i,
                                3_000_000 + i as u32,
                                None,
                            ))?;
                            tx.outbox_push("sms", &format!("welcome-{i}"), b"Karibu")?;
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let stats = store.commit_stats();
        assert_eq!(stats.waiters_served, writers);
        assert!(
            stats.flushes < writers,
            "group commit batched nothing: {stats:?}"
        );
        drop(store);
        let store = Store::open(dir.path(), options()).unwrap();
        for i in 0..writers {
            assert!(store.family(1000 + i).unwrap().is_some(), "family {i} lost");
            assert!(store.chfid_taken(chfid(3_000_000 + i as u32)).unwrap());
        }
        assert_eq!(store.pending_count("sms").unwrap(), writers as usize);
    }

    #[test]
    fn blocking_durable_writes_from_threads_are_batched_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), options()).unwrap();
        let handles: Vec<_> = (0..16u64)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || -> Result<(), WriteError<Infallible>> {
                    for j in 0..8 {
                        let id = 100 * (i + 1) + j;
                        store.write_durable_blocking(|tx| -> TxResult<()> {
                            tx.put_family(&family(id, 0))?;
                            Ok(())
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        let stats = store.commit_stats();
        assert_eq!(stats.waiters_served, 128);
        assert!(stats.flushes <= 128);
        assert_eq!(store.counts().unwrap().families, 128);
    }

    #[tokio::test]
    async fn a_flushed_future_may_be_awaited_after_the_store_handle_is_gone() {
        let store = Store::open_temporary().unwrap();
        let waiting = store.flushed();
        drop(store);
        // Dropping the last handle serves the remaining waiters before stopping.
        waiting.await.unwrap();
    }
}
