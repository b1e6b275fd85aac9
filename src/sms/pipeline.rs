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

use super::router::{Help, MoHandler, MoScreen};
use super::templates::Templates;
use crate::ratelimit::Limiter;

/// Counters the pipeline keeps, for `/sms/metrics` and `/health`.
#[derive(Debug, Default)]
pub struct MoCounters {
    /// MO over the per-phone rate limit (kept and acknowledged, not processed).
    pub rate_limited: AtomicU64,
}

impl MoCounters {
    /// The counters in Prometheus text (`imis_sms_*`).
    pub fn prometheus(&self) -> String {
        let n = self.rate_limited.load(Ordering::Relaxed);
        format!(
            "# HELP imis_sms_mo_rate_limited MO SMS over the per-phone rate limit (kept and \
             acknowledged, not processed)\n# TYPE imis_sms_mo_rate_limited counter\n\
             imis_sms_mo_rate_limited {n}\n"
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
        handlers.push(Arc::new(Help));
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
