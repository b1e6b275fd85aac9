//! Per-flow results: latencies, errors by kind, and the report as a table or JSON.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// One flow's measurements, shared by its workers.
#[derive(Default)]
pub struct Recorder {
    /// Microseconds per operation (a USSD hop, an MO, a notification).
    latencies: Mutex<Vec<u32>>,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Counts that are not errors (duplicates sent, binds, other MT...).
    notes: Mutex<BTreeMap<String, u64>>,
    pub ok: AtomicU64,
    /// Completed units above the operation (USSD journeys).
    pub completed: AtomicU64,
}

impl Recorder {
    pub fn ok(&self, took: Duration) {
        self.ok.fetch_add(1, Ordering::Relaxed);
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        if let Ok(mut v) = self.latencies.lock() {
            v.push(us);
        }
    }

    pub fn error(&self, kind: impl Into<String>) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(kind.into()).or_default() += 1;
        }
    }

    pub fn note(&self, kind: impl Into<String>, n: u64) {
        if let Ok(mut e) = self.notes.lock() {
            *e.entry(kind.into()).or_default() += n;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.lock().map(|e| e.values().sum()).unwrap_or(0)
    }

    pub fn summary(&self, flow: &str, elapsed: Duration) -> FlowReport {
        let mut lat = self.latencies.lock().map(|v| v.clone()).unwrap_or_default();
        lat.sort_unstable();
        let q = |p: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
            f64::from(lat[i.min(lat.len() - 1)]) / 1000.0
        };
        let ok = self.ok.load(Ordering::Relaxed);
        FlowReport {
            flow: flow.to_string(),
            ops: ok,
            rate: ok as f64 / elapsed.as_secs_f64().max(1e-9),
            completed: self.completed.load(Ordering::Relaxed),
            p50_ms: q(0.50),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            max_ms: lat.last().map(|v| f64::from(*v) / 1000.0).unwrap_or(0.0),
            errors: self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            notes: self.notes.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FlowReport {
    pub flow: String,
    /// Successful operations.
    pub ops: u64,
    /// Successful operations per second.
    pub rate: f64,
    pub completed: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: BTreeMap<String, u64>,
    pub notes: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub seconds: f64,
    pub flows: Vec<FlowReport>,
    /// `uptime`'s load averages at the end of the run (1, 5, 15 min), when readable.
    pub load_average: Option<[f64; 3]>,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<22} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}  errors  [notes]\n",
            "flow", "ops", "ops/s", "complete", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for f in &self.flows {
            let mut errors = if f.errors.is_empty() {
                "0".to_string()
            } else {
                join(&f.errors)
            };
            if !f.notes.is_empty() {
                errors.push_str(&format!("  [{}]", join(&f.notes)));
            }
            out.push_str(&format!(
                "{:<22} {:>9} {:>9.1} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {}\n",
                f.flow, f.ops, f.rate, f.completed, f.p50_ms, f.p95_ms, f.p99_ms, f.max_ms, errors
            ));
        }
        if let Some([a, b, c]) = self.load_average {
            out.push_str(&format!("load average {a:.2} {b:.2} {c:.2}\n"));
        }
        out
    }
}

fn join(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The 1, 5 and 15 minute load averages (Linux `/proc/loadavg`).
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let r = Recorder::default();
        for ms in 1..=100u64 {
            r.ok(Duration::from_millis(ms));
        }
        r.error("http 503");
        r.error("http 503");
        let s = r.summary("ussd", Duration::from_secs(10));
        assert_eq!(s.ops, 100);
        assert!((s.rate - 10.0).abs() < 1e-9);
        assert!((s.p50_ms - 51.0).abs() < 1.01, "{}", s.p50_ms);
        assert!((s.p99_ms - 99.0).abs() < 1.01, "{}", s.p99_ms);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(s.errors.get("http 503"), Some(&2));
    }
}
