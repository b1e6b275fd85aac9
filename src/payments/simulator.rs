//! A GePG simulator for demos and tests, built into the server in `[gepg] mode = "simulator"`
//! under `/gepg-sim`: it accepts signed bill submissions and calls back with control
//! numbers, "pays" a control number with a signed notification (optionally duplicated,
//! delayed, with another amount, or silently so only reconciliation finds it), and answers
//! reconciliation requests with the payments it made.
//!
//! Owns: the simulated GePG's side of every exchange, signed with the simulator's key and
//! checking our signatures, over real HTTP to this server's own callbacks.
//! Must never: run in live mode, or touch the store except to read what a control number
//! is for (GePG knows the bill; the simulator reads it back instead of keeping a copy).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::service::{Payments, Reply};
use super::sign::SignError;
use super::xml::{
    self, Ack, BillSubReq, BillSubResp, ControlNumberResult, PmtSpInfo, PmtTrx, ReconcLine,
    ReconcReq, ReconcResp, XmlError,
};
use crate::domain::Money;
use crate::store::StoreError;

/// What the simulated GePG remembers.
#[derive(Debug, Default)]
pub struct SimState {
    /// BillId → control number.
    bills: HashMap<String, String>,
    /// Payments made, by EAT date and SP code, for reconciliation.
    paid: Vec<(NaiveDate, String, ReconcLine)>,
    seq: u64,
}

/// `POST /gepg-sim/pay`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PayRequest {
    pub control_number: String,
    /// Amount paid (default: the bill's amount).
    pub amount: Option<String>,
    /// Deliveries of the same notification (default 1), sent concurrently.
    pub deliveries: Option<u32>,
    pub delay_ms: u64,
    /// Pay without notifying: only reconciliation will tell.
    pub silent: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PayResult {
    pub trx_id: String,
    pub pay_ref_id: String,
    pub amount: String,
    /// Our ack code per delivery.
    pub acks: Vec<String>,
}

fn sim_reply(p: &Payments, ack: &str, code: &str, status: u16) -> Reply {
    let inner = Ack::to_xml(ack, code);
    match p.keys.simulator.as_ref().map(|k| k.envelope(&inner)) {
        Some(Ok(body)) => Reply {
            status,
            body,
            code: code.into(),
        },
        _ => Reply {
            status: 404,
            body: b"simulator not enabled".to_vec(),
            code: code.into(),
        },
    }
}

/// Why the simulator refused a request or could not pay.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulator not enabled")]
    Disabled,
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("calling our own callback failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("expected <{expected}>, got <{got}>")]
    Unexpected { expected: String, got: String },
    #[error("invalid signature")]
    BadSignature,
    #[error("bad ack <{0}>")]
    BadAck(String),
    #[error("no bill with control number {0:?}")]
    UnknownControlNumber(String),
    #[error("bad amount {0:?}")]
    BadAmount(String),
    #[error(transparent)]
    NoSpCode(#[from] super::spcode::NoSpCode),
}

/// Checks that a request to the simulator is ours and signed by us.
fn open_ours<'a>(p: &Payments, raw: &'a [u8], name: &str) -> Result<&'a [u8], SimError> {
    let s = xml::split_envelope(raw, p.config.max_body_bytes)?;
    if s.name != name {
        return Err(SimError::Unexpected {
            expected: name.to_string(),
            got: s.name.to_string(),
        });
    }
    if !p.keys.ours_public.verify(s.inner, &s.signature) {
        return Err(SimError::BadSignature);
    }
    Ok(s.inner)
}

/// Sends a message signed by the simulator to one of our callbacks; our ack's codes.
async fn post_signed(
    p: &Payments,
    path: &str,
    inner: &str,
    ack: &str,
) -> Result<Vec<String>, SimError> {
    let key = p.keys.simulator.as_ref().ok_or(SimError::Disabled)?;
    let body = key.envelope(inner)?;
    let resp = p
        .http
        .post(format!("{}{path}", p.self_url))
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await?;
    let raw = resp.bytes().await?;
    let s = xml::split_envelope(&raw, p.config.max_body_bytes)?;
    if s.name != ack || !p.keys.ours_public.verify(s.inner, &s.signature) {
        return Err(SimError::BadAck(s.name.to_string()));
    }
    let el = xml::parse(s.inner, p.config.max_body_bytes)?;
    Ok(Ack::parse(&el).codes)
}

/// `POST /gepg-sim/api/bill/sigqrequest`: ack now, call back with the numbers shortly after.
pub async fn on_bill(p: Arc<Payments>, raw: &[u8]) -> Reply {
    const ACK: &str = "gepgBillSubReqAck";
    if p.keys.simulator.is_none() {
        return sim_reply(&p, ACK, "7201", 404);
    }
    let req = match open_ours(&p, raw, BillSubReq::NAME).and_then(|inner| {
        xml::parse(inner, p.config.max_body_bytes)
            .and_then(|el| BillSubReq::parse(&el))
            .map_err(SimError::from)
    }) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "simulator: bad bill submission");
            return sim_reply(
                &p,
                ACK,
                if matches!(e, SimError::BadSignature) {
                    "7303"
                } else {
                    "7242"
                },
                200,
            );
        }
    };
    let mut fresh = Vec::new();
    {
        let mut st = p.simulator.lock().unwrap_or_else(|e| e.into_inner());
        for b in &req.bills {
            if st.bills.contains_key(&b.bill_id) {
                continue;
            }
            let n: u64 = b.bill_id.parse().unwrap_or_else(|_| {
                st.seq += 1;
                st.seq
            });
            let cn = format!("99{:010}", n % 10_000_000_000);
            st.bills.insert(b.bill_id.clone(), cn.clone());
            fresh.push(ControlNumberResult {
                bill_id: b.bill_id.clone(),
                control_number: Some(cn),
                codes: vec!["7101".into()],
            });
        }
    }
    let code = if fresh.is_empty() { "7226" } else { "7101" };
    if !fresh.is_empty() {
        let p2 = p.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let inner = BillSubResp { results: fresh }.to_xml();
            for attempt in 0..5u64 {
                match post_signed(&p2, "/gepg/control-number", &inner, "gepgBillSubRespAck").await {
                    Ok(codes) if codes.iter().any(|c| c == "7101") => return,
                    Ok(codes) => {
                        tracing::warn!(?codes, "simulator: control number callback refused")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "simulator: control number callback failed")
                    }
                }
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
        });
    }
    sim_reply(&p, ACK, code, 200)
}

/// `POST /gepg-sim/pay`: pays a control number (see [`PayRequest`]).
pub async fn pay(p: Arc<Payments>, req: PayRequest) -> Result<PayResult, SimError> {
    if p.keys.simulator.is_none() {
        return Err(SimError::Disabled);
    }
    let store = p.store.clone();
    let cn = req.control_number.trim().to_string();
    let payment = tokio::task::spawn_blocking(move || store.payment_by_control_number(&cn))
        .await??
        .ok_or_else(|| SimError::UnknownControlNumber(req.control_number.clone()))?;
    let amount = match req.amount.as_deref() {
        Some(a) => xml::parse_amount(a).ok_or_else(|| SimError::BadAmount(a.to_string()))?,
        None => payment.expected_amount,
    };
    // GePG pays under the SpCode the bill went under: the same decision as the bill's.
    let product_code = payment
        .details
        .first()
        .map(|d| d.product_code.clone())
        .unwrap_or_default();
    let (store, code) = (p.store.clone(), product_code.clone());
    let account = tokio::task::spawn_blocking(move || store.product_by_code(&code))
        .await??
        .and_then(|p| p.sp_code);
    let sp_code = p.sp_code_for(&product_code, account.as_deref(), true)?;
    let now_eat = crate::domain::eat_datetime(Utc::now());
    let seq = {
        let mut st = p.simulator.lock().unwrap_or_else(|e| e.into_inner());
        st.seq += 1;
        st.seq
    };
    let stamp = Utc::now().timestamp_millis();
    let trx = PmtTrx {
        trx_id: format!("SIM{stamp}{seq:04}"),
        sp_code: sp_code.clone(),
        pay_ref_id: format!("PR{stamp}{seq:04}"),
        bill_id: payment.id.to_string(),
        control_number: req.control_number.trim().to_string(),
        bill_amt: payment.expected_amount,
        paid_amt: amount,
        pay_opt: "3".into(),
        ccy: "TZS".into(),
        trx_date: xml::format_timestamp(now_eat),
        channel: "MOBILE".into(),
        payer_phone: payment
            .phone
            .as_ref()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
        payer_name: "Simulated payer".into(),
        payer_email: String::new(),
        psp_receipt: format!("MP{seq:08}"),
        psp_name: "M-PESA".into(),
        ctr_acc: "0150211612834".into(),
    };
    {
        let mut st = p.simulator.lock().unwrap_or_else(|e| e.into_inner());
        st.paid.push((
            now_eat.date(),
            sp_code.clone(),
            ReconcLine {
                bill_id: trx.bill_id.clone(),
                control_number: trx.control_number.clone(),
                psp_trx_id: trx.trx_id.clone(),
                paid_amt: amount,
                ccy: "TZS".into(),
                pay_ref_id: trx.pay_ref_id.clone(),
                trx_date: trx.trx_date.replace('T', " ") + ".0",
                ctr_acc: trx.ctr_acc.clone(),
                channel: trx.channel.clone(),
                psp_name: trx.psp_name.clone(),
                payer_phone: trx.payer_phone.clone(),
                payer_name: trx.payer_name.clone(),
            },
        ));
    }
    let mut result = PayResult {
        trx_id: trx.trx_id.clone(),
        pay_ref_id: trx.pay_ref_id.clone(),
        amount: amount.to_string(),
        acks: Vec::new(),
    };
    if req.silent {
        return Ok(result);
    }
    if req.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(req.delay_ms)).await;
    }
    let inner = PmtSpInfo {
        payments: vec![trx],
    }
    .to_xml();
    let n = req.deliveries.unwrap_or(1).clamp(1, 100);
    let sends = (0..n).map(|_| post_signed(&p, "/gepg/payment", &inner, "gepgPmtSpInfoAck"));
    for r in futures_util::future::join_all(sends).await {
        result.acks.push(match r {
            Ok(codes) => codes.join(";"),
            Err(e) => format!("error: {e}"),
        });
    }
    Ok(result)
}

/// `POST /gepg-sim/api/reconciliations/sig_sp_qrequest`: ack, then report the day.
pub async fn on_reconcile(p: Arc<Payments>, raw: &[u8]) -> Reply {
    const ACK: &str = "gepgSpReconcReqAck";
    if p.keys.simulator.is_none() {
        return sim_reply(&p, ACK, "7201", 404);
    }
    let req = match open_ours(&p, raw, ReconcReq::NAME).and_then(|inner| {
        xml::parse(inner, p.config.max_body_bytes)
            .and_then(|el| ReconcReq::parse(&el))
            .map_err(SimError::from)
    }) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "simulator: bad reconciliation request");
            return sim_reply(&p, ACK, "7242", 200);
        }
    };
    let lines: Vec<ReconcLine> = {
        let st = p.simulator.lock().unwrap_or_else(|e| e.into_inner());
        st.paid
            .iter()
            .filter(|(d, sp, _)| *d == req.date && *sp == req.sp_code)
            .map(|(_, _, l)| l.clone())
            .collect()
    };
    let resp = ReconcResp {
        req_id: req.req_id.clone(),
        sp_code: req.sp_code.clone(),
        status_codes: vec![if lines.is_empty() { "7324" } else { "7101" }.into()],
        lines,
    };
    let p2 = p.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let inner = resp.to_xml();
        if let Err(e) =
            post_signed(&p2, "/gepg/reconciliation", &inner, "gepgSpReconcRespAck").await
        {
            tracing::warn!(error = %e, "simulator: reconciliation callback failed");
        }
    });
    sim_reply(&p, ACK, "7101", 200)
}

/// Total paid through the simulator (for the demo page and tests).
pub fn total_paid(p: &Payments) -> Money {
    let st = p.simulator.lock().unwrap_or_else(|e| e.into_inner());
    st.paid.iter().map(|(_, _, l)| l.paid_amt).sum()
}
