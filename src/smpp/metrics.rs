//! SMPP/SMS counters and per-bind state, for `/health` and `/sms/metrics`.
//!
//! Owns: the counters (monotonic) and gauges, and their JSON / Prometheus text forms.
//! Must never: be read for decisions (the pipeline keeps its own state; these are reports),
//! or be a process-wide static: `serve` makes one [`Metrics`] and hands it to the SMPP
//! client that counts and the HTTP routes that report.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

macro_rules! counters {
    ($($name:ident: $help:literal),* $(,)?) => {
        /// Every counter, named as exported.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $(#[doc = $help] pub $name: AtomicU64,)*
            /// Requests awaiting a response, over all binds (window occupancy).
            pub in_flight: AtomicI64,
            /// Binds currently bound.
            pub binds_up: AtomicI64,
            /// submit_sm sent in the last second (sampled every second).
            pub tps: AtomicI64,
            /// SMS waiting on the outbox (sampled every few seconds; a scan).
            pub queue_depth: AtomicI64,
            /// The throttle pause (before jitter) a bind last started, ms; 0 once an
            /// accepted submit_sm ended the backoff.
            pub throttle_pause_ms: AtomicI64,
            /// Each bind's state, by index.
            binds: Mutex<Vec<BindInfo>>,
        }

        impl Metrics {
            fn pairs(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($name), $help, self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    sms_submitted: "SMS whose every segment the SMSC accepted",
    submit_sm_sent: "submit_sm PDUs sent",
    sms_delivered: "SMS delivered according to receipts",
    sms_failed: "SMS failed (permanent rejection or failed receipt)",
    sms_expired: "SMS expired according to receipts",
    throttled: "ESME_RTHROTTLED / ESME_RMSGQFUL responses (bind paused)",
    requeued: "submits re-queued after a bind dropped or a response timed out",
    rebinds: "successful binds after the first",
    bind_failures: "connection or bind attempts that failed",
    mo_received: "MO SMS stored",
    mo_temp_failures: "deliver_sm answered ESME_RX_T_APPN",
    receipts: "delivery receipts received",
    generic_nacks_sent: "undecodable PDUs answered with generic_nack",
    field_errors: "deliver_sm / data_sm refused with a field's status (e.g. ESME_RINVSRCADR)",
    dlr_latency_ms_sum: "sum of submit-to-final-receipt latency, ms",
    dlr_latency_count: "receipts in dlr_latency_ms_sum",
}

/// One bind as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindInfo {
    pub index: usize,
    pub kind: &'static str,
    pub state: &'static str,
    pub in_flight: usize,
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Records bind `index`'s state.
    pub fn set_bind(&self, info: BindInfo) {
        let mut binds = self.binds.lock().unwrap_or_else(|p| p.into_inner());
        match binds.iter_mut().find(|b| b.index == info.index) {
            Some(b) => *b = info,
            None => {
                binds.push(info);
                binds.sort_by_key(|b| b.index);
            }
        }
    }

    fn binds(&self) -> Vec<BindInfo> {
        self.binds.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The `/health` component: overall state and each bind.
    pub fn health(&self) -> Value {
        let binds = self.binds();
        let up = binds.iter().filter(|b| b.state == "bound").count();
        let state = match (up, binds.len()) {
            (_, 0) => "starting",
            (0, _) => "down",
            (u, n) if u == n => "up",
            _ => "degraded",
        };
        json!({
            "state": state,
            "binds": binds.iter().map(|b| json!({
                "index": b.index, "kind": b.kind, "state": b.state, "in_flight": b.in_flight,
            })).collect::<Vec<_>>(),
        })
    }

    /// Samples the gauges that are rates or scans: call once a second; `queue_depth` when
    /// the caller has it.
    pub fn sample(&self, queue_depth: Option<usize>, last_submits: &mut u64) {
        let m = self;
        let now = m.submit_sm_sent.load(Ordering::Relaxed);
        m.tps
            .store(now.saturating_sub(*last_submits) as i64, Ordering::Relaxed);
        *last_submits = now;
        if let Some(d) = queue_depth {
            m.queue_depth.store(d as i64, Ordering::Relaxed);
        }
    }

    /// Every counter and gauge as JSON.
    pub fn snapshot(&self) -> Value {
        let m = self;
        let mut v = serde_json::Map::new();
        for (name, _, n) in m.pairs() {
            v.insert(name.to_string(), json!(n));
        }
        v.insert(
            "in_flight".into(),
            json!(m.in_flight.load(Ordering::Relaxed)),
        );
        v.insert("binds_up".into(), json!(m.binds_up.load(Ordering::Relaxed)));
        v.insert("tps".into(), json!(m.tps.load(Ordering::Relaxed)));
        v.insert(
            "throttle_pause_ms".into(),
            json!(m.throttle_pause_ms.load(Ordering::Relaxed)),
        );
        v.insert(
            "queue_depth".into(),
            json!(m.queue_depth.load(Ordering::Relaxed)),
        );
        let (sum, n) = (
            m.dlr_latency_ms_sum.load(Ordering::Relaxed),
            m.dlr_latency_count.load(Ordering::Relaxed),
        );
        v.insert(
            "dlr_latency_ms_avg".into(),
            json!(sum.checked_div(n).unwrap_or(0)),
        );
        Value::Object(v)
    }

    /// Prometheus text exposition.
    pub fn prometheus(&self, queue_depth: Option<usize>) -> String {
        let m = self;
        let mut out = String::new();
        for (name, help, n) in m.pairs() {
            out.push_str(&format!(
            "# HELP imis_sms_{name} {help}\n# TYPE imis_sms_{name} counter\nimis_sms_{name} {n}\n"
        ));
        }
        for (name, n) in [
            ("in_flight", m.in_flight.load(Ordering::Relaxed)),
            ("binds_up", m.binds_up.load(Ordering::Relaxed)),
            ("tps", m.tps.load(Ordering::Relaxed)),
            (
                "throttle_pause_ms",
                m.throttle_pause_ms.load(Ordering::Relaxed),
            ),
        ] {
            out.push_str(&format!(
                "# TYPE imis_sms_{name} gauge\nimis_sms_{name} {n}\n"
            ));
        }
        let depth = queue_depth
            .map(|d| d as i64)
            .unwrap_or_else(|| m.queue_depth.load(Ordering::Relaxed));
        out.push_str(&format!(
            "# TYPE imis_sms_queue_depth gauge\nimis_sms_queue_depth {depth}\n"
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_counters_and_bind_states() {
        let m = Metrics::default();
        inc(&m.throttled);
        m.set_bind(BindInfo {
            index: 900,
            kind: "transceiver",
            state: "bound",
            in_flight: 2,
        });
        m.set_bind(BindInfo {
            index: 900,
            kind: "transceiver",
            state: "down",
            in_flight: 0,
        });
        let h = m.health();
        let b = h["binds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["index"] == 900)
            .cloned();
        assert_eq!(b.unwrap()["state"], "down");
        assert!(m.snapshot()["throttled"].as_u64().unwrap() >= 1);
        let text = m.prometheus(Some(4));
        assert!(text.contains("imis_sms_throttled "));
        assert!(text.contains("imis_sms_queue_depth 4"));
    }

    #[test]
    fn tps_is_the_submits_since_the_last_sample() {
        let m = Metrics::default();
        let mut last = m.submit_sm_sent.load(Ordering::Relaxed);
        inc(&m.submit_sm_sent);
        inc(&m.submit_sm_sent);
        m.sample(Some(7), &mut last);
        let s = m.snapshot();
        assert!(s["tps"].as_i64() >= Some(2), "{s}");
        assert_eq!(s["queue_depth"], 7);
        assert!(m.prometheus(None).contains("imis_sms_queue_depth 7"));
    }
}
