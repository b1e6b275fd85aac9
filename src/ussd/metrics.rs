//! Per-gateway USSD metrics, rendered as Prometheus text for `GET /metrics`.
//!
//! Owns: counters of hops, duplicate hops and sessions (started, completed, abandoned,
//! timed out), and a hop latency histogram, per gateway.
//! Must never: take a lock on the hot path beyond a read lock on the gateway map (counters
//! are atomics), or label by anything unbounded (a phone, a session id).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 12] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 1_000_000, 3_000_000,
];

#[derive(Default)]
pub struct GatewayMetrics {
    pub hops: AtomicU64,
    pub duplicate_hops: AtomicU64,
    pub started: AtomicU64,
    pub completed: AtomicU64,
    pub abandoned: AtomicU64,
    pub timed_out: AtomicU64,
    pub late_results: AtomicU64,
    /// Hops refused by the per-phone rate limit (`[limits]`).
    pub rate_limited: AtomicU64,
    buckets: [AtomicU64; BUCKETS_US.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl GatewayMetrics {
    pub fn observe(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        for (b, bound) in self.buckets.iter().zip(BUCKETS_US) {
            if us <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }
}

/// Every gateway's metrics.
#[derive(Default, Clone)]
pub struct Metrics {
    by_gateway: Arc<RwLock<BTreeMap<String, Arc<GatewayMetrics>>>>,
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn gateway(&self, name: &str) -> Arc<GatewayMetrics> {
        if let Ok(map) = self.by_gateway.read() {
            if let Some(m) = map.get(name) {
                return m.clone();
            }
        }
        match self.by_gateway.write() {
            Ok(mut map) => map.entry(name.to_string()).or_default().clone(),
            // A poisoned map only loses counting, never a hop.
            Err(_) => Arc::new(GatewayMetrics::default()),
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(map) = self.by_gateway.read() else {
            return out;
        };
        let counter =
            |out: &mut String, name: &str, help: &str, get: &dyn Fn(&GatewayMetrics) -> u64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (g, m) in map.iter() {
                    let _ = writeln!(out, "{name}{{gateway=\"{g}\"}} {}", get(m));
                }
            };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(&mut out, "ussd_hops_total", "USSD hops received.", &|m| {
            load(&m.hops)
        });
        counter(
            &mut out,
            "ussd_duplicate_hops_total",
            "Re-sent hops answered from the cache.",
            &|m| load(&m.duplicate_hops),
        );
        counter(
            &mut out,
            "ussd_late_results_total",
            "Actions past the hop budget whose result went by SMS.",
            &|m| load(&m.late_results),
        );
        counter(
            &mut out,
            "ussd_rate_limited_total",
            "Hops refused by the per-phone rate limit.",
            &|m| load(&m.rate_limited),
        );
        let _ = writeln!(
            out,
            "# HELP ussd_sessions_total USSD sessions by what happened to them.\n# TYPE ussd_sessions_total counter"
        );
        for (g, m) in map.iter() {
            for (event, v) in [
                ("started", &m.started),
                ("completed", &m.completed),
                ("abandoned", &m.abandoned),
                ("timed_out", &m.timed_out),
            ] {
                let _ = writeln!(
                    out,
                    "ussd_sessions_total{{gateway=\"{g}\",event=\"{event}\"}} {}",
                    load(v)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP ussd_hop_latency_seconds Time to answer a hop.\n# TYPE ussd_hop_latency_seconds histogram"
        );
        for (g, m) in map.iter() {
            for (b, bound) in m.buckets.iter().zip(BUCKETS_US) {
                let le = bound as f64 / 1_000_000.0;
                let _ = writeln!(
                    out,
                    "ussd_hop_latency_seconds_bucket{{gateway=\"{g}\",le=\"{le}\"}} {}",
                    load(b)
                );
            }
            let count = load(&m.latency_count);
            let _ = writeln!(
                out,
                "ussd_hop_latency_seconds_bucket{{gateway=\"{g}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "ussd_hop_latency_seconds_sum{{gateway=\"{g}\"}} {}",
                load(&m.latency_sum_us) as f64 / 1_000_000.0
            );
            let _ = writeln!(
                out,
                "ussd_hop_latency_seconds_count{{gateway=\"{g}\"}} {count}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram_per_gateway() {
        let m = Metrics::default();
        let at = m.gateway("africastalking");
        inc(&at.hops);
        inc(&at.hops);
        inc(&at.started);
        at.observe(Duration::from_micros(700));
        at.observe(Duration::from_millis(20));
        inc(&m.gateway("json").timed_out);
        let text = m.render();
        assert!(
            text.contains("ussd_hops_total{gateway=\"africastalking\"} 2"),
            "{text}"
        );
        assert!(text.contains("ussd_sessions_total{gateway=\"json\",event=\"timed_out\"} 1"));
        assert!(text.contains(
            "ussd_hop_latency_seconds_bucket{gateway=\"africastalking\",le=\"0.001\"} 1"
        ));
        assert!(text.contains(
            "ussd_hop_latency_seconds_bucket{gateway=\"africastalking\",le=\"0.025\"} 2"
        ));
        assert!(text.contains("ussd_hop_latency_seconds_count{gateway=\"africastalking\"} 2"));
    }
}
