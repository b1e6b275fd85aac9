//! Control numbers: bills sent to GePG through the outbox, the control-number callback, and
//! the assignment a USSD renewal calls inside its own transaction.
//!
//! Owns: the bill record (aux [`BILL_NS`]; the bill id is the payment id for a member's
//! bill, a fresh id for a pool bill), queueing a submission on [`BILL_TOPIC`] in the same
//! transaction that needs it, the worker that submits them on the outbox's consumer loop
//! (signed `gepgBillSubReq`, retried with the same BillId after a timeout or a store error;
//! `7226` means GePG already has it), topping up the per-product pools, and applying
//! `gepgBillSubResp` (number → payment and SMS, or → pool).
//! Must never: create a second bill for a payment, send an SMS outside the callback's
//! transaction, or treat a failed submission as submitted.

use std::collections::HashMap;

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::gepg_call::{send_signed, GepgCallError};
use super::pool::{self, PoolEntry};
use super::service::{Payments, Reply};
use super::xml::{self, Bill, BillSubReq, BillSubResp, ControlNumberResult};
use super::{spcode, story, BILL_NS, BILL_TOPIC};
use crate::config::GepgMode;
use crate::domain::{
    ControlNumber, ControlNumberStatus, Id, Money, Payment, PaymentStatus, Product,
};
use crate::shutdown::Signal;
use crate::sms::{self, OutboundSms};
use crate::store::consumer::{Consumer, ConsumerLoop, LoopOptions, Shape, Unavailable, Verdict};
use crate::store::{codec, Abort, OutboxItem, StoreError, TxError, TxResult, WriteTx};

/// Who a bill is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillPurpose {
    /// A member's payment (bill id = payment id).
    Member { payment: Id },
    /// A pre-requested number for the pool of a product.
    Pool { product: Id },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillState {
    Queued,
    /// GePG acknowledged it (7101, or 7226 on a resubmission).
    Submitted,
    Assigned(String),
    Rejected(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillRecord {
    pub bill_id: Id,
    pub purpose: BillPurpose,
    pub amount: Money,
    /// `None`: the configured default SP code.
    pub sp_code: Option<String>,
    pub payer_id: String,
    pub payer_name: String,
    pub payer_phone: String,
    pub generated: DateTime<Utc>,
    pub state: BillState,
}

/// How a payment got (or will get) its control number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// From the product's pool: usable now.
    Pooled(String),
    /// Simulator mode with an empty pool: the number the simulated GePG gives, now.
    Simulated(String),
    /// A bill is queued; the number arrives by callback (and by SMS).
    Requested,
}

impl Assignment {
    pub fn number(&self) -> Option<&str> {
        match self {
            Assignment::Pooled(n) | Assignment::Simulated(n) => Some(n),
            Assignment::Requested => None,
        }
    }
}

fn codec_err(e: codec::CodecError) -> TxError {
    TxError::from(StoreError::Codec {
        tree: "aux",
        source: e,
    })
}

pub fn bill_in_tx(tx: &WriteTx<'_>, bill_id: Id) -> Result<Option<BillRecord>, TxError> {
    match tx.aux_get(BILL_NS, &bill_id.to_be_bytes())? {
        Some(b) => Ok(Some(codec::decode(&b).map_err(codec_err)?)),
        None => Ok(None),
    }
}

pub(crate) fn put_bill(tx: &mut WriteTx<'_>, bill: &BillRecord) -> Result<(), TxError> {
    let bytes = codec::encode(bill).map_err(codec_err)?;
    tx.aux_put(BILL_NS, &bill.bill_id.to_be_bytes(), &bytes)
}

/// Records `bill` and queues its submission, in the caller's transaction. Idempotent per
/// bill id: a bill already recorded is left as it is.
/// Marks `bill` rejected with `codes`: a pool bill frees its in-flight slot; a member's
/// payment is rejected with `reason` and its story gets `story_line`.
pub(crate) fn reject(
    tx: &mut WriteTx<'_>,
    bill: &mut BillRecord,
    codes: Vec<String>,
    reason: &str,
    story_line: &str,
) -> Result<(), TxError> {
    bill.state = BillState::Rejected(codes);
    put_bill(tx, bill)?;
    match bill.purpose {
        BillPurpose::Pool { product } => pool::add_in_flight(tx, product, -1),
        BillPurpose::Member { payment } => {
            if let Some(mut pay) = tx.payment(payment)? {
                pay.status = PaymentStatus::Rejected;
                pay.rejected_reason = Some(reason.to_string());
                tx.put_payment(&pay)?;
            }
            story(tx, payment, story_line)
        }
    }
}

/// Bill `bill_id` as stored, outside a transaction (reports and tests).
pub fn stored_bill(
    store: &crate::store::Store,
    bill_id: Id,
) -> Result<Option<BillRecord>, StoreError> {
    match store.aux_get(BILL_NS, &bill_id.to_be_bytes())? {
        Some(raw) => Ok(Some(codec::decode_aux(&raw)?)),
        None => Ok(None),
    }
}

pub fn queue_bill(tx: &mut WriteTx<'_>, bill: &BillRecord) -> Result<(), TxError> {
    if bill_in_tx(tx, bill.bill_id)?.is_some() {
        return Ok(());
    }
    put_bill(tx, bill)?;
    tx.outbox_push(
        BILL_TOPIC,
        &format!("bill:{}", bill.bill_id),
        &bill.bill_id.to_be_bytes(),
    )?;
    Ok(())
}

/// Gives `payment` (not yet put: the caller puts it afterwards) a control number inside the
/// caller's transaction: the oldest free number of `product`'s pool for exactly this amount;
/// else, in simulator mode, the simulated GePG's number at once; else a queued bill
/// (the payment is then `ControlNumberRequested` and the number comes by SMS).
pub fn assign_control_number(
    tx: &mut WriteTx<'_>,
    payment: &mut Payment,
    product: &Product,
    mode: GepgMode,
) -> Result<Assignment, TxError> {
    let now = tx.now();
    let give = |tx: &mut WriteTx<'_>, payment: &mut Payment, number: &str| {
        let mut cn = tx
            .control_number_by_number(number)?
            .unwrap_or_else(|| ControlNumber {
                id: 0,
                number: number.to_string(),
                status: ControlNumberStatus::Assigned,
                payment: None,
                product: Some(product.id),
                requested_date: now,
                received_date: Some(now),
            });
        if cn.id == 0 {
            cn.id = tx.next_id()?;
        }
        cn.status = ControlNumberStatus::Assigned;
        cn.payment = Some(payment.id);
        tx.put_control_number(&cn)?;
        payment.control_number = Some(number.to_string());
        payment.status = PaymentStatus::Assigned;
        Ok::<(), TxError>(())
    };
    if let Some(number) = pool::take(tx, product.id, payment.expected_amount)? {
        give(tx, payment, &number)?;
        story(
            tx,
            payment.id,
            &format!(
                "control number {number} assigned from the {} pool",
                product.code
            ),
        )?;
        return Ok(Assignment::Pooled(number));
    }
    if mode == GepgMode::Simulator {
        let number = format!("99{:010}", payment.id);
        give(tx, payment, &number)?;
        story(
            tx,
            payment.id,
            &format!("control number {number} assigned by the simulator"),
        )?;
        return Ok(Assignment::Simulated(number));
    }
    let detail = payment.details.first();
    queue_bill(
        tx,
        &BillRecord {
            bill_id: payment.id,
            purpose: BillPurpose::Member {
                payment: payment.id,
            },
            amount: payment.expected_amount,
            sp_code: product.sp_code.clone(),
            payer_id: detail.map(|d| d.chfid.to_string()).unwrap_or_default(),
            payer_name: detail
                .map(|d| format!("CHFID {}", d.chfid))
                .unwrap_or_default(),
            payer_phone: payment
                .phone
                .as_ref()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            generated: now,
            state: BillState::Queued,
        },
    )?;
    payment.status = PaymentStatus::ControlNumberRequested;
    story(
        tx,
        payment.id,
        &format!("control number requested from GePG (BillId {})", payment.id),
    )?;
    Ok(Assignment::Requested)
}

/// Queues pool bills for every product whose pool (free + awaited) is under the low-water
/// mark. Returns how many bills were queued.
pub fn top_up_pools(p: &Payments) -> Result<usize, StoreError> {
    let low = u64::from(p.config.pool_low_water);
    if low == 0 {
        return Ok(0);
    }
    let mut queued = 0;
    let today = crate::domain::eat_date(chrono::Utc::now());
    for product in p.store.products()? {
        if !product.lump_sum.is_positive() || product.sale_to < today {
            continue;
        }
        let (free, in_flight) = pool::level(&p.store, product.id)?;
        // No SpCode: no pool bill is queued at all (the reason is logged once and on /health).
        if free + in_flight >= low || !spcode::billable(p, &product) {
            continue;
        }
        let n = p.config.pool_batch.max(1);
        p.store.write(|tx| -> TxResult<()> {
            for _ in 0..n {
                let id = tx.next_id()?;
                queue_bill(
                    tx,
                    &BillRecord {
                        bill_id: id,
                        purpose: BillPurpose::Pool {
                            product: product.id,
                        },
                        amount: product.lump_sum,
                        sp_code: product.sp_code.clone(),
                        payer_id: product.code.clone(),
                        payer_name: "CHF IMIS".into(),
                        payer_phone: String::new(),
                        generated: tx.now(),
                        state: BillState::Queued,
                    },
                )?;
            }
            pool::add_in_flight(tx, product.id, i64::from(n))?;
            Ok(())
        })?;
        tracing::info!(product = %product.code, free, in_flight, queued = n, "topping up the control number pool");
        queued += n as usize;
    }
    Ok(queued)
}

/// Submits one bill; `Ok(codes)` is GePG's signed answer.
async fn submit(
    p: &Payments,
    bill: &BillRecord,
    sp_code: String,
) -> Result<Vec<String>, GepgCallError> {
    let generated = crate::domain::eat_datetime(bill.generated);
    let days = match bill.purpose {
        BillPurpose::Member { .. } => p.config.bill_expiry_days,
        BillPurpose::Pool { .. } => p.config.pool_bill_expiry_days,
    };
    let req = BillSubReq {
        sp_code: sp_code.clone(),
        sub_sp_code: p.config.sub_sp_code.clone(),
        sp_sys_id: p.config.sp_sys_id.clone(),
        bills: vec![Bill {
            bill_id: bill.bill_id.to_string(),
            amount: bill.amount,
            expires: generated + chrono::Duration::days(i64::from(days)),
            generated,
            payer_id: bill.payer_id.clone(),
            payer_name: bill.payer_name.clone(),
            payer_phone: bill.payer_phone.clone(),
            payer_email: String::new(),
            description: "CHF contribution".into(),
            item_ref: bill.bill_id.to_string(),
            gfs_code: p.config.gfs_code.clone(),
        }],
    };
    let body = p.keys.ours.envelope(&req.to_xml())?;
    send_signed(
        p,
        "/api/bill/sigqrequest",
        &sp_code,
        body,
        "gepgBillSubReqAck",
    )
    .await
}

/// Drains the bill outbox and keeps the pools topped up, until shutdown.
pub async fn run_worker(p: Arc<Payments>, signal: Signal) {
    if p.disabled.is_some() {
        return;
    }
    let lease = Duration::from_secs(p.config.request_timeout_secs.max(1) + 10);
    let opts = LoopOptions {
        // One bill at a time, each acknowledged as soon as its answer is recorded.
        shape: Shape::Each(1),
        // A request under way may finish; one cut short is resubmitted with the same BillId
        // after the restart, which GePG answers 7226 (already has it).
        drain: Duration::from_secs(p.config.request_timeout_secs.max(1) + 1),
        ..LoopOptions::new(BILL_TOPIC, lease, Duration::from_millis(500))
    };
    let store = p.store.clone();
    let worker = Arc::new(BillWorker {
        p,
        last_top_up: std::sync::Mutex::new(None),
    });
    ConsumerLoop::new(store, worker, opts).run(signal).await;
}

/// The bill worker's part of the outbox loop.
struct BillWorker {
    p: Arc<Payments>,
    last_top_up: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Consumer for BillWorker {
    async fn run(&self, items: &[OutboxItem]) -> Result<Vec<Verdict>, Unavailable> {
        let mut verdicts = Vec::with_capacity(items.len());
        for item in items {
            verdicts.push(submit_item(&self.p, item).await);
        }
        Ok(verdicts)
    }

    async fn before_claim(&self) {
        {
            let mut last = self.last_top_up.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() <= Duration::from_secs(30)) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        let p2 = self.p.clone();
        match tokio::task::spawn_blocking(move || top_up_pools(&p2)).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "pool top-up failed"),
            Err(e) => tracing::warn!(error = %e, "pool top-up task failed"),
            Ok(Ok(_)) => {}
        }
    }
}

/// Submits the bill of one outbox entry and records GePG's answer.
async fn submit_item(p: &Payments, item: &OutboxItem) -> Verdict {
    let Some(id) = <[u8; 8]>::try_from(item.payload.as_slice())
        .ok()
        .map(u64::from_be_bytes)
    else {
        return Verdict::Dead("bad payload".into());
    };
    let bill = match p.store.aux_get(BILL_NS, &id.to_be_bytes()) {
        // A read error says nothing about the bill: try again.
        Err(e) => return Verdict::Retry(format!("reading bill {id}: {e}")),
        Ok(None) => return Verdict::Dead("no bill record".into()),
        Ok(Some(b)) => match codec::decode::<BillRecord>(&b) {
            Ok(bill) => bill,
            Err(e) => return Verdict::Dead(format!("undecodable bill record: {e}")),
        },
    };
    if bill.state != BillState::Queued {
        return Verdict::Done;
    }
    let sp_code = match spcode::of_bill(p, &bill) {
        Ok(c) => c,
        Err(verdict) => return verdict,
    };
    let span = tracing::info_span!("bill", bill_id = id, attempt = item.attempts);
    let submitted = submit(p, &bill, sp_code).instrument(span.clone()).await;
    let _g = span.enter();
    match submitted {
        Ok(codes) if codes.iter().any(|c| c == "7101" || c == "7226") => {
            p.count(|m| &m.bills_sent, 1);
            match p.store.write(|tx| record_submitted(tx, id, &codes)) {
                Ok(()) => Verdict::Done,
                // Kept queued: the resubmission with the same BillId is answered 7226
                // (duplicate), which records it then.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record a submitted bill; will retry");
                    Verdict::Retry(e.to_string())
                }
            }
        }
        Ok(codes) => {
            p.count(|m| &m.bill_failures, 1);
            tracing::warn!(codes = ?codes, "GePG refused a bill");
            let result = ControlNumberResult {
                bill_id: id.to_string(),
                control_number: None,
                codes,
            };
            let templates = p.templates.clone();
            match p.store.write(|tx| apply_result(tx, &result, &templates)) {
                Ok(_) => Verdict::Done,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record a refused bill; will retry");
                    Verdict::Retry(e.to_string())
                }
            }
        }
        Err(e) => {
            p.count(|m| &m.bill_failures, 1);
            tracing::warn!(error = %e, "bill submission failed; will retry with the same BillId");
            Verdict::Retry(e.to_string())
        }
    }
}

/// GePG acknowledged bill `id`: the bill is submitted, a member's payment posted.
fn record_submitted(tx: &mut WriteTx<'_>, id: Id, codes: &[String]) -> TxResult<()> {
    let Some(mut b) = bill_in_tx(tx, id)? else {
        return Ok(());
    };
    if b.state == BillState::Queued {
        b.state = BillState::Submitted;
        put_bill(tx, &b)?;
    }
    if let BillPurpose::Member { payment } = b.purpose {
        if let Some(mut pay) = tx.payment(payment)? {
            if pay.status == PaymentStatus::ControlNumberRequested {
                pay.status = PaymentStatus::Posted;
                tx.put_payment(&pay)?;
            }
        }
        story(
            tx,
            payment,
            &format!("bill submitted to GePG: {}", codes.join(";")),
        )?;
    }
    Ok(())
}

/// What one `BillTrxInf` of a callback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackResult {
    Assigned,
    Pooled,
    Refused,
    AlreadyKnown,
    UnknownBill,
}

/// Applies one control-number result inside a transaction.
pub fn apply_result(
    tx: &mut WriteTx<'_>,
    r: &ControlNumberResult,
    templates: &crate::sms::Templates,
) -> TxResult<CallbackResult, crate::sms::TemplateError> {
    let Some(mut bill) = r
        .bill_id
        .parse::<Id>()
        .ok()
        .map(|id| bill_in_tx(tx, id))
        .transpose()?
        .flatten()
    else {
        return Ok(CallbackResult::UnknownBill);
    };
    if matches!(bill.state, BillState::Assigned(_) | BillState::Rejected(_)) {
        return Ok(CallbackResult::AlreadyKnown);
    }
    let now = tx.now();
    let Some(number) = r.control_number.clone() else {
        let codes = r.codes.join(";");
        let why = (
            format!("GePG: {codes}"),
            format!("GePG refused the bill: {codes}"),
        );
        reject(tx, &mut bill, r.codes.clone(), &why.0, &why.1)?;
        return Ok(CallbackResult::Refused);
    };
    if tx.control_number_by_number(&number)?.is_some() {
        // GePG never reuses a number for another bill; a second callback is a redelivery.
        bill.state = BillState::Assigned(number);
        put_bill(tx, &bill)?;
        return Ok(CallbackResult::AlreadyKnown);
    }
    bill.state = BillState::Assigned(number.clone());
    put_bill(tx, &bill)?;
    match bill.purpose {
        BillPurpose::Pool { product } => {
            tx.put_control_number(&ControlNumber {
                id: tx.next_id()?,
                number: number.clone(),
                status: ControlNumberStatus::Pooled,
                payment: None,
                product: Some(product),
                requested_date: bill.generated,
                received_date: Some(now),
            })?;
            pool::push(
                tx,
                product,
                &PoolEntry {
                    number,
                    amount: bill.amount,
                },
            )?;
            pool::add_in_flight(tx, product, -1)?;
            Ok(CallbackResult::Pooled)
        }
        BillPurpose::Member { payment } => assign_to_member(tx, &bill, payment, number, templates),
    }
}

/// A member's bill got `number`: the control number, the payment and its SMS.
fn assign_to_member(
    tx: &mut WriteTx<'_>,
    bill: &BillRecord,
    payment: Id,
    number: String,
    templates: &crate::sms::Templates,
) -> TxResult<CallbackResult, crate::sms::TemplateError> {
    let now = tx.now();
    let Some(mut pay) = tx.payment(payment)? else {
        return Ok(CallbackResult::UnknownBill);
    };
    if pay.control_number.is_some() {
        return Ok(CallbackResult::AlreadyKnown);
    }
    let product = pay.details.first().map(|d| d.product_code.clone());
    let product_id = match &product {
        Some(code) => tx.product_by_code(code)?.map(|p| p.id),
        None => None,
    };
    tx.put_control_number(&ControlNumber {
        id: tx.next_id()?,
        number: number.clone(),
        status: ControlNumberStatus::Assigned,
        payment: Some(pay.id),
        product: product_id,
        requested_date: bill.generated,
        received_date: Some(now),
    })?;
    pay.control_number = Some(number.clone());
    pay.status = PaymentStatus::Assigned;
    tx.put_payment(&pay)?;
    story(
        tx,
        pay.id,
        &format!("control number {number} received from GePG"),
    )?;
    if let Some(to) = pay.phone.clone() {
        let detail = pay.details.first();
        let vars = HashMap::from([
            ("control_number", number.clone()),
            ("amount", pay.expected_amount.to_string()),
            (
                "chfid",
                detail.map(|d| d.chfid.to_string()).unwrap_or_default(),
            ),
            ("product", product.unwrap_or_default()),
        ]);
        let text = templates
            .render("control_number", pay.language, &vars)
            .map_err(Abort::User)?;
        sms::enqueue(
            tx,
            &format!("payment:{}:control_number", pay.id),
            &OutboundSms {
                to,
                text,
                template: "control_number".into(),
                language: pay.language,
                reference: format!("payment:{}", pay.id),
            },
        )?;
    }
    Ok(CallbackResult::Assigned)
}

/// `gepgBillSubResp` → `gepgBillSubRespAck` (7101 once durable).
pub async fn on_callback(p: &Payments, raw: &[u8]) -> Reply {
    const ACK: &str = "gepgBillSubRespAck";
    let signed = match p.open(raw, BillSubResp::NAME) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let resp = match xml::parse(signed.inner, p.config.max_body_bytes)
        .and_then(|el| BillSubResp::parse(&el))
    {
        Ok(r) => r,
        Err(e) => {
            p.count(|m| &m.malformed, 1);
            tracing::warn!(error = %e, "control number callback without required data");
            return p.reply(ACK, "7242", 400);
        }
    };
    let store = p.store.clone();
    let templates = p.templates.clone();
    let results = resp.results.clone();
    let written = tokio::task::spawn_blocking(move || {
        store.write(|tx| {
            let mut out = Vec::new();
            for r in &results {
                out.push(apply_result(tx, r, &templates)?);
            }
            Ok(out)
        })
    })
    .await;
    match written {
        Ok(Ok(outcomes)) => {
            if let Err(e) = p.store.flushed().await {
                tracing::error!(error = %e, "control numbers not flushed; not acknowledged");
                return p.reply(ACK, "7201", 503);
            }
            for (r, o) in resp.results.iter().zip(&outcomes) {
                tracing::info!(bill_id = %r.bill_id, control_number = ?r.control_number, outcome = ?o, "control number callback");
                if matches!(o, CallbackResult::Assigned | CallbackResult::Pooled) {
                    p.count(|m| &m.control_numbers, 1);
                }
            }
            if outcomes.iter().all(|o| *o == CallbackResult::UnknownBill) {
                return p.reply(ACK, "7204", 200);
            }
            p.reply(ACK, "7101", 200)
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "control number callback not applied; not acknowledged");
            p.reply(ACK, "7201", 503)
        }
        Err(e) => {
            tracing::error!(error = %e, "control number task failed");
            p.reply(ACK, "7201", 503)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{payment, product};
    use crate::store::Store;

    fn assign(store: &Store, id: Id, amount: Money, mode: GepgMode) -> (Assignment, Payment) {
        let product = product(1, "CHF01");
        store
            .write(|tx| -> TxResult<(Assignment, Payment)> {
                let mut p = Payment {
                    status: PaymentStatus::IntentCreated,
                    expected_amount: amount,
                    ..payment(id, None)
                };
                let a = assign_control_number(tx, &mut p, &product, mode)?;
                tx.put_payment(&p)?;
                Ok((a, p))
            })
            .unwrap()
    }

    #[test]
    fn a_payment_gets_a_pooled_number_else_the_simulators_else_a_queued_bill() {
        let store = Store::open_temporary().unwrap();
        store
            .write(|tx| -> TxResult<()> {
                tx.put_product(&product(1, "CHF01"))?;
                tx.put_control_number(&ControlNumber {
                    id: 90,
                    number: "991000000090".into(),
                    status: ControlNumberStatus::Pooled,
                    payment: None,
                    product: Some(1),
                    requested_date: tx.now(),
                    received_date: Some(tx.now()),
                })?;
                pool::push(
                    tx,
                    1,
                    &PoolEntry {
                        number: "991000000090".into(),
                        amount: Money::tzs(30_000),
                    },
                )?;
                Ok(())
            })
            .unwrap();
        // Another amount does not take the pooled number.
        let (a, _) = assign(&store, 40, Money::tzs(25_000), GepgMode::Live);
        assert_eq!(a, Assignment::Requested);
        let (a, p) = assign(&store, 41, Money::tzs(30_000), GepgMode::Live);
        assert_eq!(a, Assignment::Pooled("991000000090".into()));
        assert_eq!(p.status, PaymentStatus::Assigned);
        let cn = store
            .control_number_by_number("991000000090")
            .unwrap()
            .unwrap();
        assert_eq!(
            (cn.status, cn.payment),
            (ControlNumberStatus::Assigned, Some(41))
        );
        assert_eq!(
            store
                .payment_by_control_number("991000000090")
                .unwrap()
                .map(|p| p.id),
            Some(41)
        );
        // Pool empty: the simulator answers at once; live mode queues a bill.
        let (a, _) = assign(&store, 42, Money::tzs(30_000), GepgMode::Simulator);
        assert_eq!(a, Assignment::Simulated("990000000042".into()));
        let (a, p) = assign(&store, 43, Money::tzs(30_000), GepgMode::Live);
        assert_eq!(a, Assignment::Requested);
        assert_eq!(
            (p.status, p.control_number),
            (PaymentStatus::ControlNumberRequested, None)
        );
        // One bill per payment, with the payment id as BillId.
        assert_eq!(store.pending_count(BILL_TOPIC).unwrap(), 2);
        let bill: BillRecord = crate::payments::bill::stored_bill(&store, 43)
            .unwrap()
            .unwrap();
        assert_eq!(bill.purpose, BillPurpose::Member { payment: 43 });
        assert_eq!(bill.state, BillState::Queued);
        store
            .write(|tx| -> TxResult<()> { Ok(queue_bill(tx, &bill)?) })
            .unwrap();
        assert_eq!(
            store.pending_count(BILL_TOPIC).unwrap(),
            2,
            "re-queueing is a no-op"
        );
    }
}

#[cfg(test)]
mod callback_tests {
    use super::*;
    use crate::store::fixtures::{payment, product};
    use crate::store::Store;

    fn templates() -> crate::sms::Templates {
        crate::sms::Templates::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates"),
        )
        .unwrap()
    }

    fn result(bill: Id, number: Option<&str>, codes: &[&str]) -> ControlNumberResult {
        ControlNumberResult {
            bill_id: bill.to_string(),
            control_number: number.map(String::from),
            codes: codes.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn callbacks_fill_the_pool_assign_members_and_record_refusals_once() {
        let store = Store::open_temporary().unwrap();
        let t = templates();
        store
            .write(|tx| -> TxResult<()> {
                tx.put_product(&product(1, "CHF01"))?;
                for (bill, purpose) in [
                    (70, BillPurpose::Pool { product: 1 }),
                    (71, BillPurpose::Member { payment: 71 }),
                    (72, BillPurpose::Member { payment: 72 }),
                ] {
                    if let BillPurpose::Member { payment: id } = purpose {
                        tx.put_payment(&Payment {
                            status: PaymentStatus::ControlNumberRequested,
                            ..payment(id, None)
                        })?;
                    }
                    queue_bill(
                        tx,
                        &BillRecord {
                            bill_id: bill,
                            purpose,
                            amount: Money::tzs(30_000),
                            sp_code: None,
                            payer_id: String::new(),
                            payer_name: String::new(),
                            payer_phone: String::new(),
                            generated: tx.now(),
                            state: BillState::Queued,
                        },
                    )?;
                }
                pool::add_in_flight(tx, 1, 1)?;
                Ok(())
            })
            .unwrap();
        let apply = |r: ControlNumberResult| store.write(|tx| apply_result(tx, &r, &t)).unwrap();
        assert_eq!(
            apply(result(70, Some("990000000070"), &["7101"])),
            CallbackResult::Pooled
        );
        assert_eq!(pool::level(&store, 1).unwrap(), (1, 0));
        assert_eq!(
            apply(result(70, Some("990000000070"), &["7101"])),
            CallbackResult::AlreadyKnown
        );
        assert_eq!(
            apply(result(71, Some("990000000071"), &["7101"])),
            CallbackResult::Assigned
        );
        let p = store.payment(71).unwrap().unwrap();
        assert_eq!(
            (p.status, p.control_number.as_deref()),
            (PaymentStatus::Assigned, Some("990000000071"))
        );
        assert_eq!(
            apply(result(72, None, &["7242", "7627"])),
            CallbackResult::Refused
        );
        let p = store.payment(72).unwrap().unwrap();
        assert_eq!(p.status, PaymentStatus::Rejected);
        assert_eq!(p.rejected_reason.as_deref(), Some("GePG: 7242;7627"));
        assert_eq!(
            apply(result(999, Some("990000000999"), &["7101"])),
            CallbackResult::UnknownBill
        );
        // One control-number SMS (member 71 has a phone), however often GePG calls back.
        assert_eq!(
            apply(result(71, Some("990000000071"), &["7101"])),
            CallbackResult::AlreadyKnown
        );
        assert_eq!(store.pending_count(crate::sms::SMS_TOPIC).unwrap(), 1);
    }
}
