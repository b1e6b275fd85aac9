//! The accept loop of both listeners: connection cap, header read timeout, graceful stop.
//!
//! Owns: accepting TCP connections, handing each to hyper's HTTP/1 connection with a header
//! read timeout (which also closes keep-alive connections idle between requests), the
//! shared cap on open connections, the peer address each request carries
//! (`ConnectInfo<SocketAddr>`, read by the allowlists), and the open-file limit.
//! Must never: block the accept loop on a connection, or log more than one "cap reached"
//! line a minute (a flood must not become a log flood).
//!
//! `axum::serve` has no header timeout and no cap: 1,100 idle connections exhausted the
//! default 1024 file descriptors and `/health` stopped answering.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::shutdown::Signal;

/// At most one "connection cap reached" (or accept error) line per this period.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// File descriptors kept back from the connection cap: the store, logs, SMPP, the mirror.
const FD_RESERVE: u64 = 128;

/// What both listeners share: the timeout and the connection cap.
#[derive(Debug)]
pub struct ConnLimits {
    header_read_timeout: Duration,
    permits: Arc<Semaphore>,
    cap: usize,
    started: Instant,
    /// Milliseconds since `started` of the last warning (0 = never).
    last_warn_ms: AtomicU64,
}

impl ConnLimits {
    /// `max_connections`, lowered to fit `nofile` (the open-file limit) minus a reserve.
    pub fn new(header_read_timeout: Duration, max_connections: usize, nofile: u64) -> ConnLimits {
        let cap = effective_cap(max_connections, nofile);
        if cap < max_connections {
            tracing::warn!(
                max_connections,
                cap,
                nofile,
                "[server] max_connections lowered to fit the open-file limit (raise LimitNOFILE)"
            );
        }
        ConnLimits {
            header_read_timeout,
            permits: Arc::new(Semaphore::new(cap)),
            cap,
            started: Instant::now(),
            last_warn_ms: AtomicU64::new(0),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Limits of their own for the admin listener (same timeout, `cap` connections), so
    /// that a flood on the public listener never locks the operators out.
    pub fn for_admin(&self, cap: usize) -> ConnLimits {
        ConnLimits::new(self.header_read_timeout, cap, u64::MAX)
    }

    /// True at most once per [`WARN_EVERY`].
    fn may_warn(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < WARN_EVERY.as_millis() as u64 {
            return false;
        }
        self.last_warn_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// A connection slot; waits (after one warning) while every slot is taken.
    async fn slot(&self, listener: &'static str) -> OwnedSemaphorePermit {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return p;
        }
        if self.may_warn() {
            tracing::warn!(
                cap = self.cap,
                listener,
                "connection cap reached: new connections wait until one closes \
                 ([server] max_connections, header_read_timeout_secs)"
            );
        }
        // The semaphore is never closed, so this cannot fail; a closed one would mean stop.
        match self.permits.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => std::future::pending().await,
        }
    }
}

/// The connection cap that fits `nofile` descriptors: never above `wanted`, never 0.
pub fn effective_cap(wanted: usize, nofile: u64) -> usize {
    let room = nofile.saturating_sub(FD_RESERVE).max(16);
    wanted
        .min(usize::try_from(room).unwrap_or(usize::MAX))
        .max(1)
}

/// Raises the soft open-file limit to the hard one (at most `want`) and returns the soft
/// limit now in force. systemd's default soft limit is 1024 with a far higher hard limit.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        let target = want.min(lim.rlim_max);
        if lim.rlim_cur < target {
            let raised = libc::rlimit {
                rlim_cur: target,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return target;
            }
        }
    }
    lim.rlim_cur
}

/// Serves `router` on `listener` until `signal`, then stops accepting, lets hyper close
/// idle connections and waits for in-flight requests (the caller bounds the wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Arc<ConnLimits>,
    name: &'static str,
    mut signal: Signal,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            p = limits.slot(name) => p,
            _ = signal.recv() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning.
                    if limits.may_warn() {
                        tracing::warn!(error = %e, listener = name, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = signal.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
        tokio::spawn(async move {
            // Timeouts and resets end here; they are the peer's business, not an error.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        // systemd's default soft limit with the default cap: what fits.
        assert_eq!(effective_cap(4096, 1024), 896);
        // A generous limit keeps the configured cap.
        assert_eq!(effective_cap(4096, 65536), 4096);
        // A tiny limit still leaves a few connections.
        assert_eq!(effective_cap(4096, 10), 16);
        assert_eq!(effective_cap(0, 65536), 1);
    }

    #[test]
    fn one_warning_per_period() {
        let l = ConnLimits::new(Duration::from_secs(1), 10, 65536);
        assert!(l.may_warn());
        assert!(!l.may_warn());
        assert!(!l.may_warn());
    }
}
