//! The SMPP 3.4 client (ESME) and the SMS pipelines that run over it.
//!
//! Owns: the binds to the SMSC ([`session`]: connect, bind 3.4, keepalive, window,
//! throttle pause, reconnect with backoff and jitter, generic_nack for what cannot be
//! framed, the field's status for a deliver_sm with one bad field via [`fields`]), the
//! PDU adapter ([`pdu`], the only file that sees rusmpp), the shared
//! [`bucket`] at the contracted TPS, the MT drain of the durable outbox ([`mt`]), inbound
//! deliver_sm ([`mo`]: MO, receipts via [`receipt`], USSD via [`ussd`]) and [`metrics`].
//! Must never: acknowledge an MO before it is durable, ack an outbox entry before its
//! submit_sm_resp, or let a wire format reach the USSD engine or the SMS pipeline.
//!
//! Jobs flow through one queue that every bind with a free window slot pulls from, so a
//! slow or dropped bind never holds messages that another could send.

pub mod bucket;
pub mod fields;
pub mod metrics;
pub mod mo;
pub mod mt;
pub mod pdu;
pub mod receipt;
pub mod session;
pub mod ussd;

use std::sync::atomic::{AtomicBool, AtomicU16};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::sms::reassembly;
use crate::sms::MoPipeline;
use crate::store::Store;

pub use pdu::BindKind;

pub use crate::config::BindMode;

/// The SMPP knobs, from `[smpp]`, `[sms]` and `[ussd]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub system_id: String,
    pub password: String,
    pub bind_mode: BindMode,
    pub binds: usize,
    pub window: usize,
    pub tps: u32,
    pub enquire_link: Duration,
    pub response_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub throttle_pause: Duration,
    pub throttle_pause_max: Duration,
    pub registered_delivery: bool,
    pub validity_secs: u64,
    pub lease: Duration,
    pub poll: Duration,
    pub id_format: receipt::IdFormat,
    pub source: String,
    pub max_pdu_bytes: usize,
    pub reassembly: reassembly::Policy,
    pub service_code: String,
    pub ussd_ops: ussd::UssdOps,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        let s = &c.smpp;
        Settings {
            host: s.host.clone(),
            port: s.port,
            system_id: s.system_id.clone(),
            password: s.password.clone(),
            bind_mode: s.bind_mode,
            binds: s.binds.max(1) as usize,
            window: s.window.max(1) as usize,
            tps: s.tps.max(1),
            enquire_link: Duration::from_secs(s.enquire_link_secs.max(1)),
            response_timeout: Duration::from_secs(s.response_timeout_secs.max(1)),
            reconnect_min: Duration::from_millis(s.reconnect_min_ms.max(1)),
            reconnect_max: Duration::from_millis(s.reconnect_max_ms.max(s.reconnect_min_ms)),
            throttle_pause: Duration::from_millis(s.throttle_pause_ms),
            throttle_pause_max: Duration::from_millis(
                s.throttle_pause_max_ms.max(s.throttle_pause_ms),
            ),
            registered_delivery: s.registered_delivery,
            validity_secs: s.validity_secs,
            lease: Duration::from_secs(s.lease_secs.max(1)),
            poll: Duration::from_millis(100),
            id_format: s.message_id_format,
            source: c.sms.sender_id.clone(),
            max_pdu_bytes: s.max_pdu_bytes.max(64) as usize,
            reassembly: reassembly::Policy {
                timeout: Duration::from_secs(s.mo_reassembly_secs),
                max_parts: s.mo_max_parts,
                default_alphabet: s.mo_default_alphabet,
                dedupe_window: Duration::from_secs(s.mo_dedupe_secs),
            },
            service_code: c.ussd.service_code.clone(),
            ussd_ops: ussd::UssdOps {
                begin: s.ussd_op_begin,
                answer: s.ussd_op_answer,
                release: s.ussd_op_release,
                reply_continue: s.ussd_op_continue,
                reply_end: s.ussd_op_end,
            },
        }
    }
}

/// One submit_sm to send, and where to report what became of it.
#[derive(Debug)]
pub(crate) struct Job {
    pub req: pdu::SubmitReq,
    pub reply: oneshot::Sender<SubmitOutcome>,
}

/// What became of a submit job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// The SMSC accepted it under this message id.
    Accepted(String),
    /// The SMSC answered this error status.
    Rejected(u32),
    /// It cannot be encoded at all.
    Invalid(String),
    /// The bind dropped or the response timed out: send it again.
    Requeue,
}

/// What the binds, the drain and the MO handlers share.
pub(crate) struct Shared {
    pub settings: Settings,
    pub store: Store,
    /// The inbound SMS pipeline MO go through (built by `serve`).
    pub mo: Arc<MoPipeline>,
    /// What the client counts, shared with the HTTP routes that report it.
    pub metrics: Arc<metrics::Metrics>,
    pub ussd: Option<Arc<crate::ussd::Engine>>,
    pub jobs_tx: mpsc::Sender<Job>,
    pub jobs_rx: Mutex<mpsc::Receiver<Job>>,
    pub bucket: bucket::TokenBucket,
    pub stopping: AtomicBool,
    reference: AtomicU16,
}

impl Shared {
    /// The next concatenation reference (8-bit, rotating, starting at random so that a
    /// restart does not reuse the references of messages still being reassembled).
    pub fn next_reference(&self) -> u8 {
        self.reference
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u8
    }
}

/// Starts the binds, the outbox drain and the reassembly sweeper; each holds a shutdown
/// signal and drains on it.
pub fn spawn(
    config: &Config,
    store: Store,
    mo: Arc<MoPipeline>,
    metrics: Arc<metrics::Metrics>,
    ussd: Option<Arc<crate::ussd::Engine>>,
    shutdown: &Shutdown,
) {
    let settings = Settings::from_config(config);
    let (jobs_tx, jobs_rx) = mpsc::channel(settings.window * settings.binds * 4);
    let shared = Arc::new(Shared {
        bucket: bucket::TokenBucket::new(settings.tps, settings.tps.min(settings.window as u32)),
        settings,
        store,
        mo,
        metrics,
        ussd,
        jobs_tx,
        jobs_rx: Mutex::new(jobs_rx),
        stopping: AtomicBool::new(false),
        reference: AtomicU16::new(rand::random()),
    });
    let s = &shared.settings;
    let mut index = 0;
    for _ in 0..s.binds {
        let kinds: &[BindKind] = match s.bind_mode {
            BindMode::Transceiver => &[BindKind::Transceiver],
            BindMode::TxRx => &[BindKind::Transmitter, BindKind::Receiver],
        };
        for &kind in kinds {
            tokio::spawn(session::run_bind(
                shared.clone(),
                index,
                kind,
                shutdown.signal(),
            ));
            index += 1;
        }
    }
    tokio::spawn(mt::run(shared.clone(), shutdown.signal()));
    tokio::spawn(gauges(shared.clone(), shutdown.signal()));
    tokio::spawn(sweeper(shared, shutdown.signal()));
}

/// Samples TPS every second and the outbox depth every 5 s, so that `/health` stays a
/// cheap read.
async fn gauges(shared: Arc<Shared>, mut stop: crate::shutdown::Signal) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = 0;
    for n in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.recv() => break,
        }
        let depth = (n % 5 == 0)
            .then(|| shared.store.pending_count(crate::sms::SMS_TOPIC).ok())
            .flatten();
        shared.metrics.sample(depth, &mut last);
    }
}

async fn sweeper(shared: Arc<Shared>, mut stop: crate::shutdown::Signal) {
    let every = (shared.settings.reassembly.timeout / 4)
        .clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.recv() => break,
        }
        let r = crate::sms::reassembly::sweep(
            &shared.store,
            &shared.mo,
            &shared.settings.reassembly,
            chrono::Utc::now(),
        )
        .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "multipart MO sweep failed");
        }
    }
}
