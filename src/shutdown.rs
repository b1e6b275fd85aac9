//! Graceful shutdown as a first-class concern.
//!
//! Owns: turning SIGINT/SIGTERM (or a programmatic trigger) into one signal that every
//! long-running task can await, and knowing when all of them have drained.
//! Must never: exit the process itself; the caller decides what happens after the drain
//! (flush the store, then return from `main`).
//!
//! Pattern as in tokio's mini-redis: a `watch` channel broadcasts "stop"; each task holds a
//! clone of a `mpsc::Sender` that it drops when done, so the coordinator knows all tasks are
//! finished when `recv()` on the matching receiver returns `None`.

use tokio::sync::{mpsc, watch};

/// The coordinator side: triggers the stop and waits for the drain.
pub struct Shutdown {
    notify: watch::Sender<bool>,
    done_tx: mpsc::Sender<()>,
    done_rx: mpsc::Receiver<()>,
}

/// A task's handle: await [`Signal::recv`] to learn that the server is stopping. Dropping it
/// tells the coordinator this task has drained.
#[derive(Clone)]
pub struct Signal {
    notify: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (notify, _) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel(1);
        Shutdown {
            notify,
            done_tx,
            done_rx,
        }
    }

    pub fn signal(&self) -> Signal {
        Signal {
            notify: self.notify.subscribe(),
            _done: self.done_tx.clone(),
        }
    }

    /// Tells every task to stop.
    pub fn trigger(&self) {
        self.notify.send_replace(true);
    }

    /// Triggers, then waits until every [`Signal`] has been dropped.
    pub async fn drain(self) {
        let Shutdown {
            notify,
            done_tx,
            mut done_rx,
        } = self;
        notify.send_replace(true);
        drop(done_tx);
        let _ = done_rx.recv().await;
    }
}

impl Signal {
    /// Resolves once shutdown has been triggered (immediately if it already was).
    pub async fn recv(&mut self) {
        // An error means the coordinator is gone: that is a shutdown too.
        let _ = self.notify.wait_for(|stop| *stop).await;
    }

    pub fn is_triggered(&self) -> bool {
        *self.notify.borrow()
    }
}

/// Listens for SIGINT and SIGTERM from the moment it is called (not from the first poll):
/// `serve` calls it before announcing readiness, so a SIGTERM right after "ready" is a
/// graceful shutdown rather than the default action that kills the process.
/// The future resolves with the name of the first termination signal.
pub fn os_signal() -> impl std::future::Future<Output = &'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        );
        async move {
            match handlers {
                (Ok(mut int), Ok(mut term)) => tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                },
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                    "SIGINT"
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn drain_waits_for_every_task() {
        let shutdown = Shutdown::new();
        let finished = Arc::new(AtomicUsize::new(0));
        for i in 0..5u64 {
            let mut signal = shutdown.signal();
            let finished = finished.clone();
            tokio::spawn(async move {
                signal.recv().await;
                // Simulates draining in-flight work of varying length.
                tokio::time::sleep(Duration::from_millis(10 * i)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                drop(signal);
            });
        }
        tokio::time::timeout(Duration::from_secs(5), shutdown.drain())
            .await
            .expect("drain finished");
        assert_eq!(finished.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_late_subscriber_sees_the_trigger() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let mut late = shutdown.signal();
        assert!(late.is_triggered());
        tokio::time::timeout(Duration::from_millis(100), late.recv())
            .await
            .expect("resolves at once");
    }
}
