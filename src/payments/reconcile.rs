//! Reconciliation: ask GePG for a day's transactions, feed every payment we never received
//! through the same idempotent path as a notification, and report the differences.
//!
//! Owns: the request (`gepgSpReconcReq`, one per SP code, option 1 = successful
//! transactions), the callback (`gepgSpReconcResp` → ack once durable), matching lines by
//! PayRefId, the report (kept in aux [`RECON_NS`] and handed to whoever waits), and the daily
//! job at `[gepg] reconcile_at` (East Africa time) for the previous day.
//! Must never: apply a reconciliation line by any other path than [`super::notify`], or
//! "fix" a difference silently (differences are reported; conflicts raise the alarm).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, Utc};

use super::gepg_call::send_signed;
use super::notify::{self, Applied, PaymentNotice, Source};
use super::service::{Payments, PaymentsError, Reply};
use super::xml::{self, ReconcReq, ReconcResp};
use super::RECON_NS;
use crate::shutdown::Signal;

/// The SP codes to reconcile: every product's (as its bills decide it: a product without
/// one has no bills to reconcile) and the configured default when set.
fn sp_codes(p: &Payments) -> Result<Vec<String>, PaymentsError> {
    let mut set: BTreeSet<String> = p
        .store
        .products()?
        .into_iter()
        .filter_map(|pr| p.sp_code_for(&pr.code, pr.sp_code.as_deref(), false).ok())
        .collect();
    let default = p.config.sp_code.trim();
    if !default.is_empty() {
        set.insert(default.to_string());
    }
    Ok(set.into_iter().collect())
}

/// Requests the reconciliation of `date` for every SP code and waits for GePG's reports;
/// returns them as text.
pub async fn request(p: &Arc<Payments>, date: NaiveDate) -> Result<String, PaymentsError> {
    if let Some(why) = &p.disabled {
        return Err(PaymentsError::Config(why.clone()));
    }
    let mut report = String::new();
    let codes = {
        let p2 = p.clone();
        tokio::task::spawn_blocking(move || sp_codes(&p2)).await??
    };
    for why in p.sp_code_missing.reasons() {
        report.push_str(&format!("not reconciled: {why}\n"));
    }
    for sp_code in codes {
        let req_id = (rand::random::<u32>() & 0x7fff_ffff).to_string();
        let (tx, rx) = tokio::sync::oneshot::channel();
        p.recon_waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(req_id.clone(), tx);
        let req = ReconcReq {
            req_id: req_id.clone(),
            sp_code: sp_code.clone(),
            sp_sys_id: p.config.sp_sys_id.clone(),
            date,
            option: 1,
        };
        // Remember the day, so the report can list what we hold that GePG does not.
        p.store.aux_put(
            RECON_NS,
            format!("req:{req_id}").as_bytes(),
            date.to_string().as_bytes(),
        )?;
        let body = p.keys.ours.envelope(&req.to_xml())?;
        let acked = send_signed(
            p,
            "/api/reconciliations/sig_sp_qrequest",
            &sp_code,
            body,
            "gepgSpReconcReqAck",
        )
        .await;
        let wait = Duration::from_secs(p.config.request_timeout_secs.max(1) * 2);
        match acked {
            Ok(codes) if codes.iter().any(|c| c == "7101") => {
                match tokio::time::timeout(wait, rx).await {
                    Ok(Ok(text)) => report.push_str(&text),
                    _ => report.push_str(&format!(
                        "{sp_code} {date}: requested (id {req_id}); no report within {wait:?}, it will be applied when it arrives\n"
                    )),
                }
            }
            Ok(codes) => report.push_str(&format!(
                "{sp_code} {date}: GePG refused: {}\n",
                codes.join(";")
            )),
            Err(e) => report.push_str(&format!("{sp_code} {date}: request failed: {e}\n")),
        }
        p.recon_waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&req_id);
    }
    Ok(report)
}

fn notice_of(sp_code: &str, l: &xml::ReconcLine) -> PaymentNotice {
    let id = if l.psp_trx_id.is_empty() {
        &l.pay_ref_id
    } else {
        &l.psp_trx_id
    };
    PaymentNotice {
        source: Source::Reconciliation,
        sp_code: sp_code.to_string(),
        trx_id: format!("RECON:{id}"),
        pay_ref_id: l.pay_ref_id.clone(),
        bill_id: l.bill_id.clone(),
        control_number: l.control_number.clone(),
        paid: l.paid_amt,
        currency: l.ccy.clone(),
        paid_at: l.trx_date.clone(),
        channel: l.channel.clone(),
        psp_name: l.psp_name.clone(),
        payer_phone: l.payer_phone.clone(),
        receipt: l.pay_ref_id.clone(),
    }
}

/// `gepgSpReconcResp` → `gepgSpReconcRespAck`: applies what we missed, then acks.
pub async fn on_callback(p: &Payments, raw: &[u8]) -> Reply {
    const ACK: &str = "gepgSpReconcRespAck";
    let signed = match p.open(raw, ReconcResp::NAME) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let resp = match xml::parse(signed.inner, p.config.max_body_bytes)
        .and_then(|el| ReconcResp::parse(&el))
    {
        Ok(r) => r,
        Err(e) => {
            p.count(|m| &m.malformed, 1);
            tracing::warn!(error = %e, "reconciliation callback without required data");
            return p.reply(ACK, "7242", 400);
        }
    };
    let sp_code = match resp.sp_code.trim() {
        "" => p.config.sp_code.trim().to_string(),
        code => code.to_string(),
    };
    let notices: Vec<PaymentNotice> = resp.lines.iter().map(|l| notice_of(&sp_code, l)).collect();
    let results = match p.apply(notices.clone()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "reconciliation not applied; not acknowledged");
            return p.reply(ACK, "7201", 503);
        }
    };
    let mut known = 0;
    let mut missing = Vec::new();
    let mut conflicts = Vec::new();
    for (n, r) in notices.iter().zip(&results) {
        match r {
            Applied::Duplicate => known += 1,
            Applied::New(o) => missing.push(format!(
                "  MISSING notification, applied now: PayRefId {} control number {} TZS {}: {o:?}",
                n.pay_ref_id, n.control_number, n.paid
            )),
            Applied::Conflict(why) => conflicts.push(format!("  CONFLICT: {why}")),
        }
    }
    p.count(|m| &m.reconciled_missing, missing.len() as u64);
    let mut text = format!(
        "{sp_code} reconciliation {} (codes {}): {} line(s), {known} already applied, {} missing, {} conflict(s)\n",
        resp.req_id,
        resp.status_codes.join(";"),
        resp.lines.len(),
        missing.len(),
        conflicts.len()
    );
    // The other side: GePG notifications we applied for that day that the report lacks.
    let day = p
        .store
        .aux_get(RECON_NS, format!("req:{}", resp.req_id).as_bytes())
        .ok()
        .flatten()
        .and_then(|b| NaiveDate::parse_from_str(&String::from_utf8_lossy(&b), "%Y-%m-%d").ok());
    let mut extra = Vec::new();
    if let Some(day) = day {
        let listed: BTreeSet<&str> = resp.lines.iter().map(|l| l.pay_ref_id.as_str()).collect();
        for r in held_on(p, day).unwrap_or_default() {
            if r.notice.source == Source::Gepg
                && r.notice.sp_code == sp_code
                && !listed.contains(r.notice.pay_ref_id.as_str())
            {
                extra.push(format!(
                    "  NOT IN GePG's REPORT: TrxId {} PayRefId {} control number {} TZS {}",
                    r.notice.trx_id, r.notice.pay_ref_id, r.notice.control_number, r.notice.paid
                ));
            }
        }
    }
    for l in missing.iter().chain(&conflicts).chain(&extra) {
        text.push_str(l);
        text.push('\n');
    }
    if !conflicts.is_empty() {
        tracing::error!(alarm = "reconciliation_conflict", report = %text, "reconciliation found conflicts");
    } else {
        tracing::info!(report = %text, "reconciliation applied");
    }
    let key = format!("report:{}", resp.req_id);
    if let Err(e) = p.store.aux_put(RECON_NS, key.as_bytes(), text.as_bytes()) {
        tracing::warn!(error = %e, "cannot keep the reconciliation report");
    }
    let _ = p.store.flushed().await;
    if let Some(w) = p
        .recon_waiters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&resp.req_id)
    {
        let _ = w.send(text);
    }
    p.reply(ACK, "7101", 200)
}

/// Payments we hold for `date` (by their own date) that a report did not list: for the
/// "we have, GePG does not" side of a report.
pub fn held_on(p: &Payments, date: NaiveDate) -> Result<Vec<notify::TrxRecord>, PaymentsError> {
    Ok(notify::transactions(&p.store)?
        .into_iter()
        .filter(|r| xml::parse_timestamp(&r.notice.paid_at).map(|t| t.date()) == Some(date))
        .collect())
}

/// Runs the reconciliation of the previous day every day at `[gepg] reconcile_at` (EAT).
pub async fn run_daily(p: Arc<Payments>, mut signal: Signal) {
    if p.disabled.is_some() {
        return;
    }
    let Ok(at) = NaiveTime::parse_from_str(p.config.reconcile_at.trim(), "%H:%M") else {
        if !p.config.reconcile_at.trim().is_empty() {
            tracing::warn!(at = %p.config.reconcile_at, "[gepg] reconcile_at is not HH:MM; daily reconciliation off");
        }
        return;
    };
    loop {
        let now_eat = crate::domain::eat_datetime(Utc::now());
        let mut next = now_eat.date().and_time(at);
        if next <= now_eat {
            next += chrono::Duration::days(1);
        }
        let wait = (next - now_eat).to_std().unwrap_or(Duration::from_secs(60));
        tokio::select! {
            _ = signal.recv() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let day = next.date() - chrono::Duration::days(1);
        match request(&p, day).await {
            Ok(report) => tracing::info!(%day, %report, "daily reconciliation"),
            Err(e) => tracing::warn!(%day, error = %e, "daily reconciliation failed"),
        }
    }
}
