//! The inbound SMS pipeline as one value: what every MO goes through, built once at start-up.
//!
//! Owns: the templates replies are rendered from, the [`MoHandler`]s asked in order (the
//! HELP fallback always last), the [`MoScreen`] every MO's text goes through before it is
//! stored, the per-phone MO limit (`[limits]`), and the pipeline's own
//! counters. `serve` builds one and hands it to every channel (SMPP deliver_sm,
//! `POST /sms/inbound`); tests build theirs with the handlers they exercise.
//! Must never: be a process-wide static (two pipelines in one process — a test server and
//! its harness — must not share limits, handlers or counts).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::cost_guard::CostGuard;
use super::router::{Help, MoHandler, MoScreen};
use super::templates::Templates;
use crate::domain::Msisdn;
use crate::ratelimit::Limiter;

/// Counters the pipeline keeps, for `/sms/metrics` and `/health`.
#[derive(Debug, Default)]
pub struct MoCounters {
    /// MO over the per-phone rate limit (kept and acknowledged, not processed).
    pub rate_limited: AtomicU64,
    /// The SMS cost guard's counters, when there is one.
    pub cost_guard: Option<Arc<CostGuard>>,
}

impl MoCounters {
    /// The counters in Prometheus text (`imis_sms_*`).
    pub fn prometheus(&self) -> String {
        let n = self.rate_limited.load(Ordering::Relaxed);
        format!(
            "# HELP imis_sms_mo_rate_limited MO SMS over the per-phone rate limit (kept and \
             acknowledged, not processed)\n# TYPE imis_sms_mo_rate_limited counter\n\
             imis_sms_mo_rate_limited {n}\n{}",
            self.cost_guard
                .as_ref()
                .map(|g| g.prometheus())
                .unwrap_or_default()
        )
    }
}

/// See the module doc.
pub struct MoPipeline {
    templates: Arc<Templates>,
    handlers: Vec<Arc<dyn MoHandler>>,
    screen: Option<Arc<dyn MoScreen>>,
    limiter: Option<Limiter>,
    counters: MoCounters,
}

impl MoPipeline {
    /// A pipeline that offers each MO to `handlers` in order, then answers HELP; no limit.
    pub fn new(templates: Arc<Templates>, handlers: Vec<Arc<dyn MoHandler>>) -> MoPipeline {
        let mut handlers = handlers;
        handlers.push(Arc::new(Help::default()));
        MoPipeline {
            templates,
            handlers,
            screen: None,
            limiter: None,
            counters: MoCounters::default(),
        }
    }

    /// The same pipeline under a per-phone MO limit (`None`: unlimited).
    pub fn with_limit(mut self, limiter: Option<Limiter>) -> MoPipeline {
        self.limiter = limiter;
        self
    }

    /// The same pipeline with HELP to unknown phones under `guard` (the cost guard).
    pub fn with_cost_guard(mut self, guard: Arc<CostGuard>) -> MoPipeline {
        // HELP is always the last handler (see `new`).
        if let Some(last) = self.handlers.last_mut() {
            *last = Arc::new(Help {
                guard: Some(guard.clone()),
            });
        }
        self.counters.cost_guard = Some(guard);
        self
    }

    /// What the pipeline needs to know before the transaction that stores an MO from
    /// `from`: whether the sender is known to the cost guard (a lookup a transaction cannot
    /// make). A failed lookup leaves the sender unknown: capped, not refused.
    pub fn before_store(&self, from: &str) {
        let (Some(guard), Ok(phone)) = (&self.counters.cost_guard, Msisdn::parse(from)) else {
            return;
        };
        if let Err(e) = guard.look_up(&phone, std::time::Instant::now()) {
            tracing::warn!(error = %e, "SMS cost guard: looking up a sender failed");
        }
    }

    /// The same pipeline, every MO screened by `screen` before it is stored (officer PINs).
    pub fn with_screen(mut self, screen: Option<Arc<dyn MoScreen>>) -> MoPipeline {
        self.screen = screen;
        self
    }

    pub fn screen(&self) -> Option<&Arc<dyn MoScreen>> {
        self.screen.as_ref()
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    pub fn handlers(&self) -> &[Arc<dyn MoHandler>] {
        &self.handlers
    }

    pub fn limiter(&self) -> Option<&Limiter> {
        self.limiter.as_ref()
    }

    pub fn counters(&self) -> &MoCounters {
        &self.counters
    }
}
