//! What the mirror is doing, for `/health` and `imis-gateway mirror status`.
//!
//! Owns: the `mirror.status` aux key (the writer's last state, counters and recent dead
//! letters, as JSON) and the health view, which adds the lag from the outbox.
//! Must never: scan on the health path (one aux read and one outbox point read).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::writer::Outcome;
use crate::store::{Store, MIRROR_TOPIC};

const NS: &str = "mirror.status";
const KEY: &[u8] = b"writer";
/// Dead letters kept in the status for display; `mirror status --all` lists every one.
const RECENT: usize = 10;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub state: String,
    pub last_error: Option<String>,
    /// Why the writer refused the central database (state `refused`): one line naming the
    /// table and column it lacks.
    #[serde(default)]
    pub reason: Option<String>,
    pub applied_total: u64,
    pub rejected_total: u64,
    pub last_batch_rows: usize,
    pub last_batch_ms: u64,
    /// `(reason)` of the latest rejections, newest last.
    pub recent_rejections: Vec<String>,
    pub updated_at: Option<chrono::DateTime<Utc>>,
}

/// Shared, cheap to clone; every change is also written to the store's aux tree.
#[derive(Clone)]
pub struct MirrorStatus {
    store: Store,
    inner: Arc<Mutex<Snapshot>>,
}

impl MirrorStatus {
    pub fn new(store: Store) -> MirrorStatus {
        let prev = load(&store).unwrap_or_default();
        MirrorStatus {
            store,
            inner: Arc::new(Mutex::new(prev)),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let snap = match self.inner.lock() {
            Ok(mut s) => {
                let before = s.clone();
                f(&mut s);
                if *s == before {
                    return;
                }
                s.updated_at = Some(Utc::now());
                s.clone()
            }
            Err(_) => return,
        };
        if let Ok(bytes) = serde_json::to_vec(&snap) {
            if let Err(e) = self.store.aux_put(NS, KEY, &bytes) {
                tracing::warn!(error = %e, "mirror: cannot record status");
            }
        }
    }

    pub fn set_state(&self, state: &str, error: Option<String>) {
        self.update(|s| {
            s.state = state.to_string();
            s.reason = None;
            if error.is_some() {
                s.last_error = error;
            }
        });
    }

    /// The central database lacks what the gateway needs: nothing is written.
    pub fn refuse(&self, reason: &str) {
        self.update(|s| {
            s.state = "refused".into();
            s.reason = Some(reason.to_string());
            s.last_error = Some(format!("refused: {reason}"));
        });
    }

    pub fn batch_done(&self, outcomes: &[Outcome], took: Duration) {
        self.update(|s| {
            s.state = "ok".into();
            s.reason = None;
            s.last_batch_rows = outcomes.len();
            s.last_batch_ms = took.as_millis() as u64;
            for o in outcomes {
                match o {
                    Outcome::Applied => s.applied_total += 1,
                    Outcome::Rejected(r) => {
                        s.rejected_total += 1;
                        s.recent_rejections.push(r.clone());
                    }
                }
            }
            let n = s.recent_rejections.len();
            if n > RECENT {
                s.recent_rejections.drain(..n - RECENT);
            }
        });
    }

    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

pub fn load(store: &Store) -> Option<Snapshot> {
    let bytes = store.aux_get(NS, KEY).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// The `mirror` entry of `/health`: state, lag (age of the oldest unmirrored write),
/// totals, and the latest rejection reasons.
pub fn health(store: &Store, enabled: bool) -> Value {
    if !enabled {
        return json!({"state": "disabled"});
    }
    let lag = store
        .oldest_pending_age(MIRROR_TOPIC, Utc::now())
        .ok()
        .flatten()
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let s = load(store).unwrap_or_default();
    let mut h = json!({
        "state": if s.state.is_empty() { "starting" } else { s.state.as_str() },
        "lag_secs": lag,
        "applied_total": s.applied_total,
        "rejected_total": s.rejected_total,
        "last_batch_rows": s.last_batch_rows,
        "last_batch_ms": s.last_batch_ms,
        "last_error": s.last_error,
        "recent_rejections": s.recent_rejections,
    });
    if let Some(r) = s.reason {
        h["reason"] = json!(r);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_survives_in_the_store_and_keeps_only_recent_rejections() {
        let store = Store::open_temporary().unwrap();
        assert_eq!(health(&store, false)["state"], "disabled");
        let st = MirrorStatus::new(store.clone());
        let mut outcomes = vec![Outcome::Applied; 3];
        for i in 0..12 {
            outcomes.push(Outcome::Rejected(format!("23514: bad {i}")));
        }
        st.batch_done(&outcomes, Duration::from_millis(7));
        let h = health(&store, true);
        assert_eq!(h["state"], "ok");
        assert_eq!(h["applied_total"], 3);
        assert_eq!(h["rejected_total"], 12);
        let recent = h["recent_rejections"].as_array().unwrap();
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[RECENT - 1], "23514: bad 11");
        assert_eq!(h["lag_secs"], 0.0);
        // A new handle (a restart) continues from the stored counters.
        let again = MirrorStatus::new(store.clone());
        assert_eq!(again.snapshot().applied_total, 3);
    }

    #[test]
    fn a_refused_database_shows_its_reason_until_the_writer_runs_again() {
        let store = Store::open_temporary().unwrap();
        let st = MirrorStatus::new(store.clone());
        st.refuse("tblFoo.Bar missing");
        let h = health(&store, true);
        assert_eq!(h["state"], "refused");
        assert_eq!(h["reason"], "tblFoo.Bar missing");
        st.set_state("idle", None);
        let h = health(&store, true);
        assert_eq!(h["state"], "idle");
        assert!(h.get("reason").is_none(), "{h}");
    }
}
