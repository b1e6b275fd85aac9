//! Background tasks of the USSD engine: reload menus on SIGHUP, sweep expired sessions.
//!
//! Owns: the two loops and their stop on the shutdown signal.
//! Must never: outlive the shutdown signal, or drop the running menus on a bad reload.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::Engine;
use crate::shutdown::Signal;

/// Reloads the menus on every SIGHUP until shutdown. A broken menu set is logged and the
/// running one kept.
pub async fn reload_on_sighup(engine: Arc<Engine>, mut signal: Signal) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal as unix_signal, SignalKind};
        let Ok(mut hup) = unix_signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; menus reload needs a restart");
            signal.recv().await;
            return;
        };
        loop {
            tokio::select! {
                _ = signal.recv() => return,
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    match engine.reload() {
                        Ok(n) => tracing::info!(screens = n, "menus reloaded"),
                        Err(e) => tracing::error!(error = %e, "menus reload refused; keeping the running menus"),
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = engine;
        signal.recv().await;
    }
}

/// Removes sessions past their TTL and resume window, every `every`, until shutdown.
pub async fn sweep_sessions(engine: Arc<Engine>, every: Duration, mut signal: Signal) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = signal.recv() => return,
            _ = tick.tick() => {
                let e = engine.clone();
                match tokio::task::spawn_blocking(move || e.sweep(Utc::now())).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::debug!(removed = n, "expired USSD sessions swept"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "session sweep failed"),
                    Err(e) => tracing::warn!(error = %e, "session sweep task failed"),
                }
            }
        }
    }
}
