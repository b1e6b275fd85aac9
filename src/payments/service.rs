//! The payments service: keys, store, templates and configuration in one handle, and the
//! three GePG callbacks as calls that return the signed acknowledgement to send back.
//!
//! Owns: verifying a callback (size, XML, envelope, signature) before anything is stored,
//! running its effects in one durable write, choosing the ack code, counting outcomes.
//! Must never: answer 7101 before `flushed()` has covered the write, or store anything from
//! a message that failed verification.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::notify::{self, Applied, PaymentNotice};
use super::sign::{self, SignError, SigningKey, VerifyingKey};
use super::spcode::{self, Missing, NoSpCode};
use super::xml::{self, Ack, PmtSpInfo, Signed, XmlError};
use crate::config::{Config, GepgConfig, GepgMode};
use crate::sms::{TemplateError, Templates};
use crate::store::{Store, StoreError, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("SMS templates: {0}")]
    Templates(#[from] TemplateError),
    #[error("[gepg] configuration: {0}")]
    Config(String),
    #[error("GePG request failed: {0}")]
    Http(#[source] reqwest::Error),
    #[error("GePG answered {0:?}")]
    Rejected(Vec<String>),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<WriteError<notify::NotifyError>> for PaymentsError {
    fn from(e: WriteError<notify::NotifyError>) -> PaymentsError {
        match e {
            WriteError::Store(s) => PaymentsError::Store(s),
            WriteError::Aborted(notify::NotifyError::Template(t)) => PaymentsError::Templates(t),
        }
    }
}

/// The keys: ours signs, GePG's verifies. In simulator mode the simulated GePG's key pair
/// is here too (it signs what the simulator sends; our public key verifies what it receives).
#[derive(Debug, Clone)]
pub struct Keys {
    pub ours: SigningKey,
    pub ours_public: VerifyingKey,
    pub gepg: VerifyingKey,
    pub simulator: Option<SigningKey>,
}

impl Keys {
    /// From the configured PKCS#12 files; in simulator mode, missing files are replaced by
    /// keys generated now (so signatures are still made and checked end to end).
    pub fn from_config(c: &GepgConfig) -> Result<Keys, PaymentsError> {
        let set = |p: &std::path::Path| !p.as_os_str().is_empty();
        let simulator = c.mode == GepgMode::Simulator;
        if !simulator && (!set(&c.key_p12) || !set(&c.gepg_cert_p12)) {
            return Err(PaymentsError::Config(
                "mode = \"live\" needs key_p12 and gepg_cert_p12".into(),
            ));
        }
        Keys::load_or_generate(c)
    }

    /// Loads the configured files, generating whatever is not configured.
    fn load_or_generate(c: &GepgConfig) -> Result<Keys, PaymentsError> {
        let set = |p: &std::path::Path| !p.as_os_str().is_empty();
        let simulator = c.mode == GepgMode::Simulator;
        let ours = if set(&c.key_p12) {
            sign::load_signing_key(&c.key_p12, &c.key_password)?
        } else {
            SigningKey::from_pkey(sign::generate_identity("imis-gateway")?.0)
        };
        let (gepg, sim) = match (set(&c.gepg_cert_p12), set(&c.simulator_key_p12)) {
            (true, true) => (
                sign::load_verifying_key(&c.gepg_cert_p12, &c.gepg_cert_password)?,
                Some(sign::load_signing_key(
                    &c.simulator_key_p12,
                    &c.simulator_key_password,
                )?),
            ),
            (true, false) => (
                sign::load_verifying_key(&c.gepg_cert_p12, &c.gepg_cert_password)?,
                None,
            ),
            (false, _) => {
                let k = SigningKey::from_pkey(sign::generate_identity("gepg-simulator")?.0);
                (k.verifying_key()?, Some(k))
            }
        };
        Ok(Keys {
            ours_public: ours.verifying_key()?,
            ours,
            gepg,
            simulator: if simulator { sim } else { None },
        })
    }
}

/// Counters for `/payments/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub notifications: AtomicU64,
    pub applied: AtomicU64,
    pub duplicates: AtomicU64,
    pub conflicts: AtomicU64,
    pub unmatched: AtomicU64,
    pub bad_signature: AtomicU64,
    pub malformed: AtomicU64,
    pub store_failures: AtomicU64,
    pub control_numbers: AtomicU64,
    pub bills_sent: AtomicU64,
    pub bill_failures: AtomicU64,
    pub reconciled_missing: AtomicU64,
    pub without_sp_code: AtomicU64,
}

impl Metrics {
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        for (name, v, help) in [
            (
                "gepg_notifications_total",
                g(&self.notifications),
                "Payment transactions received",
            ),
            (
                "gepg_payments_applied_total",
                g(&self.applied),
                "Payments applied (first delivery)",
            ),
            (
                "gepg_payments_duplicate_total",
                g(&self.duplicates),
                "Redeliveries acknowledged without effect",
            ),
            (
                "gepg_payments_conflict_total",
                g(&self.conflicts),
                "Same TrxId or PayRefId with another amount or bill (ALARM)",
            ),
            (
                "gepg_payments_unmatched_total",
                g(&self.unmatched),
                "Payments for an unknown control number",
            ),
            (
                "gepg_bad_signature_total",
                g(&self.bad_signature),
                "Callbacks refused with 7303",
            ),
            (
                "gepg_malformed_total",
                g(&self.malformed),
                "Callbacks refused as malformed",
            ),
            (
                "gepg_store_failures_total",
                g(&self.store_failures),
                "Callbacks not acknowledged: store failure",
            ),
            (
                "gepg_control_numbers_total",
                g(&self.control_numbers),
                "Control numbers received",
            ),
            (
                "gepg_bills_sent_total",
                g(&self.bills_sent),
                "Bill submissions acknowledged by GePG",
            ),
            (
                "gepg_bill_failures_total",
                g(&self.bill_failures),
                "Bill submissions failed or rejected",
            ),
            (
                "gepg_reconciled_missing_total",
                g(&self.reconciled_missing),
                "Payments found only by reconciliation",
            ),
            (
                "gepg_without_sp_code_total",
                g(&self.without_sp_code),
                "Bills and requests not sent: no AccCodePremiums and no [gepg] sp_code",
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        }
        out
    }
}

fn inc(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// What to answer a callback: HTTP status and the signed ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// The ack code inside (for logs and tests).
    pub code: String,
}

/// A reconciliation report handed to whoever waits for it (see `reconcile`).
pub type ReconWaiters = Mutex<HashMap<String, tokio::sync::oneshot::Sender<String>>>;

pub struct Payments {
    pub store: Store,
    pub config: GepgConfig,
    pub keys: Keys,
    pub templates: Arc<Templates>,
    pub metrics: Metrics,
    pub http: reqwest::Client,
    /// Where GePG requests go (`[gepg] url`, or our own simulator).
    pub gepg_url: String,
    /// Our own base URL (where the simulator calls back).
    pub self_url: String,
    pub(crate) recon_waiters: ReconWaiters,
    /// Why payments are off (`mode = "disabled"`, the default, or live mode without keys or
    /// URL): callbacks then answer 503 and no bill is sent (renewals' bills wait on the
    /// outbox), so GePG retries once the configuration is fixed.
    pub disabled: Option<String>,
    /// Signed acks by (ack name, code).
    acks: Mutex<HashMap<(String, String), Vec<u8>>>,
    /// The built-in simulator's memory (bills seen, payments made), one per server.
    pub(crate) simulator: Mutex<super::simulator::SimState>,
    /// Products whose bills cannot be sent for want of an SpCode (for `/health`).
    pub sp_code_missing: Missing,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("gepg_url", &self.gepg_url)
            .finish_non_exhaustive()
    }
}

/// Why payments are off when nobody configured them (`/health` shows it).
pub const DISABLED_BY_DEFAULT: &str =
    "[gepg] mode = \"disabled\" (the default): set mode = \"live\" \
     with GePG's url and keys, or run serve --demo / mode = \"simulator\" for the simulator";

impl Payments {
    /// `self_url` is this server's base URL (`http://127.0.0.1:8080`).
    /// In live mode, missing keys or URL do not stop the server (USSD and SMS still work):
    /// payments stay [`Payments::disabled`] and the error is logged.
    pub fn new(
        store: Store,
        config: &Config,
        templates: Arc<Templates>,
        self_url: &str,
    ) -> Result<Payments, PaymentsError> {
        let c = config.gepg.clone();
        let mut disabled = (c.mode == GepgMode::Disabled).then(|| DISABLED_BY_DEFAULT.to_string());
        // Disabled: nothing to load; keys are made below only so that the handle is whole.
        let loaded = match &disabled {
            Some(why) => Err(PaymentsError::Config(why.clone())),
            None => Keys::from_config(&c),
        };
        let keys = match loaded {
            Ok(k) => k,
            Err(PaymentsError::Config(why)) => {
                disabled = Some(why);
                Keys::load_or_generate(&GepgConfig {
                    key_p12: Default::default(),
                    gepg_cert_p12: Default::default(),
                    simulator_key_p12: Default::default(),
                    ..c.clone()
                })?
            }
            Err(e) => return Err(e),
        };
        let gepg_url = match (c.mode, c.url.is_empty()) {
            (GepgMode::Simulator, true) => format!("{self_url}/gepg-sim"),
            (GepgMode::Disabled, _) => String::new(),
            (GepgMode::Live, true) => {
                disabled.get_or_insert_with(|| "mode = \"live\" needs url".into());
                String::new()
            }
            (_, false) => c.url.trim_end_matches('/').to_string(),
        };
        if let Some(why) = &disabled {
            tracing::error!(%why, "[gepg] GePG payments are OFF: callbacks answer 503, no bills are sent");
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(c.request_timeout_secs.max(1)))
            .build()
            .map_err(PaymentsError::Http)?;
        Ok(Payments {
            store,
            config: c,
            keys,
            templates,
            metrics: Metrics::default(),
            http,
            gepg_url,
            self_url: self_url.trim_end_matches('/').to_string(),
            recon_waiters: Mutex::new(HashMap::new()),
            acks: Mutex::new(HashMap::new()),
            disabled,
            simulator: Mutex::new(Default::default()),
            sp_code_missing: Missing::default(),
        })
        .inspect(Payments::warn_missing_sp_codes)
    }

    /// Start-up: with `[gepg] sp_code` empty, every product without an account code is a
    /// bill that cannot be sent; say so now rather than at the first renewal.
    fn warn_missing_sp_codes(&self) {
        if !self.config.sp_code.trim().is_empty() {
            return;
        }
        match self.store.products() {
            Ok(products) => {
                for pr in products {
                    let _ = self.sp_code_for(&pr.code, pr.sp_code.as_deref(), false);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list products to check their SpCodes"),
        }
    }

    /// The SpCode of `product`'s bills ([`spcode::decide`]); when there is none, the error is
    /// logged once per product, kept for `/health`, and counted when `count` (a bill or a
    /// request was actually refused).
    pub fn sp_code_for(
        &self,
        product: &str,
        account_code: Option<&str>,
        count: bool,
    ) -> Result<String, NoSpCode> {
        spcode::decide(product, account_code, &self.config.sp_code).inspect_err(|e| {
            if count {
                inc(&self.metrics.without_sp_code, 1);
            }
            if self.sp_code_missing.record(e) {
                tracing::error!(product, reason = %e, "GePG bills of this product are NOT sent: set its AccCodePremiums or [gepg] sp_code");
            }
        })
    }

    /// A signed ack `<{ack}><..Code>{code}</..Code></{ack}>` with HTTP `status`. An ack's
    /// bytes depend only on (ack, code) and PKCS#1 v1.5 signatures are deterministic, so
    /// each is signed once (an RSA signature costs more than applying a payment).
    pub fn reply(&self, ack: &str, code: &str, status: u16) -> Reply {
        let key = (ack.to_string(), code.to_string());
        let cached = self
            .acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let signed = match cached {
            Some(b) => Ok(b),
            None => self
                .keys
                .ours
                .envelope(&Ack::to_xml(ack, code))
                .inspect(|b| {
                    self.acks
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key, b.clone());
                }),
        };
        let body = match signed {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot sign an ack");
                return Reply {
                    status: 500,
                    body: Vec::new(),
                    code: code.into(),
                };
            }
        };
        Reply {
            status,
            body,
            code: code.into(),
        }
    }

    /// Size, XML, envelope, message name and GePG's signature, in that order; the refusal
    /// is the signed reply to send.
    pub fn open<'a>(&self, raw: &'a [u8], expected: &str) -> Result<Signed<'a>, Reply> {
        let ack = format!("{expected}Ack");
        if self.disabled.is_some() {
            return Err(self.reply(&ack, "7201", 503));
        }
        if raw.len() > self.config.max_body_bytes {
            inc(&self.metrics.malformed, 1);
            tracing::warn!(
                len = raw.len(),
                "GePG callback over the size limit: refused"
            );
            return Err(self.reply(&ack, "7242", 413));
        }
        let signed = match xml::split_envelope(raw, self.config.max_body_bytes) {
            Ok(s) if s.name == expected => s,
            Ok(s) => {
                inc(&self.metrics.malformed, 1);
                tracing::warn!(got = %s.name, expected, "GePG callback of the wrong kind: refused");
                return Err(self.reply(&ack, "7242", 400));
            }
            Err(e) => {
                inc(&self.metrics.malformed, 1);
                tracing::warn!(error = %e, "malformed GePG callback: refused");
                return Err(self.reply(&ack, "7242", 400));
            }
        };
        if !self.keys.gepg.verify(signed.inner, &signed.signature) {
            inc(&self.metrics.bad_signature, 1);
            tracing::warn!(
                message = expected,
                "GePG callback with an invalid signature: refused (7303)"
            );
            return Err(self.reply(&ack, "7303", 200));
        }
        Ok(signed)
    }

    /// `gepgPmtSpInfo` → `gepgPmtSpInfoAck`: 7101 once every transaction in it is applied
    /// (or known) and durable; 7207 if one conflicts with what we hold.
    pub async fn on_payment(&self, raw: &[u8]) -> Reply {
        const ACK: &str = "gepgPmtSpInfoAck";
        let signed = match self.open(raw, PmtSpInfo::NAME) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let info = match xml::parse(signed.inner, self.config.max_body_bytes)
            .and_then(|el| PmtSpInfo::parse(&el))
        {
            Ok(i) => i,
            Err(e) => {
                inc(&self.metrics.malformed, 1);
                tracing::warn!(error = %e, "payment notification without required data: refused");
                return self.reply(ACK, "7242", 400);
            }
        };
        let notices: Vec<PaymentNotice> = info.payments.iter().map(PaymentNotice::from).collect();
        match self.apply(notices).await {
            Ok(results) if results.iter().any(|r| matches!(r, Applied::Conflict(_))) => {
                self.reply(ACK, "7207", 200)
            }
            Ok(_) => self.reply(ACK, "7101", 200),
            Err(e) => {
                inc(&self.metrics.store_failures, 1);
                tracing::error!(error = %e, "payment notification not applied; not acknowledged");
                self.reply(ACK, "7201", 503)
            }
        }
    }

    /// Applies payment events in one transaction and waits until it is durable.
    pub async fn apply(&self, notices: Vec<PaymentNotice>) -> Result<Vec<Applied>, PaymentsError> {
        inc(&self.metrics.notifications, notices.len() as u64);
        let store = self.store.clone();
        let templates = self.templates.clone();
        let today = crate::domain::eat_date(chrono::Utc::now());
        let for_log = notices.clone();
        let results =
            tokio::task::spawn_blocking(move || -> Result<Vec<Applied>, PaymentsError> {
                let prepared = notices
                    .into_iter()
                    .map(|n| notify::prepare(&store, n))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(store.write(|tx| {
                    let mut out = Vec::with_capacity(prepared.len());
                    for p in &prepared {
                        out.push(notify::apply(tx, p, &templates, today)?);
                    }
                    Ok(out)
                })?)
            })
            .await??;
        self.store.flushed().await?;
        for (n, r) in for_log.iter().zip(&results) {
            let span = tracing::info_span!("payment", trx_id = %n.trx_id, sp_code = %n.sp_code, control_number = %n.control_number);
            let _g = span.enter();
            match r {
                Applied::New(notify::Outcome::Unmatched { reason }) => {
                    inc(&self.metrics.unmatched, 1);
                    tracing::warn!(%reason, amount = %n.paid, "payment kept unmatched");
                }
                Applied::New(o) => {
                    inc(&self.metrics.applied, 1);
                    tracing::info!(outcome = ?o, amount = %n.paid, "payment applied");
                }
                Applied::Duplicate => {
                    inc(&self.metrics.duplicates, 1);
                    tracing::info!("payment redelivered: acknowledged, no effect");
                }
                Applied::Conflict(why) => {
                    inc(&self.metrics.conflicts, 1);
                    tracing::error!(alarm = "payment_conflict", %why, "CONFLICTING payment not applied");
                }
            }
        }
        Ok(results)
    }

    /// `gepgBillSubResp` → `gepgBillSubRespAck`.
    pub async fn on_control_number(&self, raw: &[u8]) -> Reply {
        super::bill::on_callback(self, raw).await
    }

    /// `gepgSpReconcResp` → `gepgSpReconcRespAck`.
    pub async fn on_reconciliation(&self, raw: &[u8]) -> Reply {
        super::reconcile::on_callback(self, raw).await
    }

    pub(crate) fn count(&self, which: fn(&Metrics) -> &AtomicU64, n: u64) {
        inc(which(&self.metrics), n);
    }
}
