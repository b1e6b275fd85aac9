//! A command's effects as data, and the one transaction that applies them together with the
//! reply, the audit entry and the MO's done marker (the worker flushes before it acknowledges).
//!
//! Owns: [`Plan`] and [`commit`]: the re-checks by key that must hold at commit time (a
//! CHFID allocated or named in the command is still free), and the all-or-nothing write.
//! Must never: apply part of a plan, or reply twice to one MO.

use uuid::Uuid;

use super::audit::{self, AuditEntry};
use super::{fit, intent, Ctx, OfficerError, Processed};
use crate::domain::{
    Chfid, ControlNumber, Family, Id, Insuree, InsureePolicy, Officer, Payment, Policy,
};
use crate::sms::{self, OutboundSms};
use crate::store::{TxResult, WriteError, WriteTx};

/// A record the command writes. Plans hold a handful, briefly: no need to box the larger.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Rec {
    Family(Family),
    Insuree(Insuree),
    Policy(Policy),
    InsureePolicy(InsureePolicy),
    Payment(Payment),
    ControlNumber(ControlNumber),
    Officer(Officer),
}

/// A module-state write: aux namespace, key, value (`None` removes).
pub type StateWrite = (&'static str, Vec<u8>, Option<Vec<u8>>);

/// What a command does, decided from reads made before the transaction.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The reply to the officer.
    pub reply: String,
    /// The command did what was asked (false for every rejection).
    pub ok: bool,
    pub records: Vec<Rec>,
    /// CHFIDs this plan gives out; if one was taken meanwhile, nothing is written and the
    /// officer gets `taken_reply`.
    pub fresh_chfids: Vec<Chfid>,
    pub taken_reply: String,
    /// Further SMS (to the family's head), keyed by a suffix unique within the MO.
    pub notices: Vec<(String, OutboundSms)>,
    /// Module state written whatever the outcome (PIN failure counters): namespace, key,
    /// value (`None` removes).
    pub state: Vec<StateWrite>,
    /// Module indexes written with the effects: namespace, key, value.
    pub indexes: Vec<(&'static str, Vec<u8>, Vec<u8>)>,
    /// Family → payment entries of the payment index (until the payments module owns one).
    pub payment_index: Vec<(Id, Id)>,
    /// A payment to create; its control number is assigned in the transaction and fills
    /// [`super::intent::CN_MARK`] in the reply and the notices.
    pub intent: Option<super::intent::Intent>,
    /// Resend-detection key under which the reply is remembered on success.
    pub remember: Option<Vec<u8>>,
}

impl Plan {
    /// A reply and nothing else.
    pub fn reject(reply: String) -> Plan {
        Plan {
            reply,
            ..Plan::default()
        }
    }

    /// A successful read-only reply.
    pub fn answer(reply: String) -> Plan {
        Plan {
            reply,
            ok: true,
            ..Plan::default()
        }
    }
}

fn put(tx: &mut WriteTx<'_>, r: &Rec) -> TxResult<()> {
    match r {
        Rec::Family(x) => tx.put_family(x)?,
        Rec::Insuree(x) => tx.put_insuree(x)?,
        Rec::Policy(x) => tx.put_policy(x)?,
        Rec::InsureePolicy(x) => tx.put_insuree_policy(x)?,
        Rec::Payment(x) => tx.put_payment(x)?,
        Rec::ControlNumber(x) => tx.put_control_number(x)?,
        Rec::Officer(x) => tx.put_officer(x)?,
    }
    Ok(())
}

/// Applies `plan` for the MO of `ctx` in one transaction; the caller flushes it.
pub fn commit(
    ctx: &Ctx<'_>,
    command: String,
    masked_text: &str,
    plan: Plan,
) -> Result<Processed, OfficerError> {
    let mo = ctx.mo;
    let officer = ctx.officer;
    let Some(to) = mo.msisdn() else {
        return Ok(Processed::Ignored);
    };
    let taken_fit = fit(&plan.taken_reply);
    let written = ctx
        .store
        // Not flushed here: the worker flushes once per batch of commands before it
        // acknowledges them (a lost write is redone; the replies wait for the flush too).
        .write(|tx| -> TxResult<Option<(bool, Vec<u64>)>> {
            if audit::is_done_in(tx, mo.id)? {
                return Ok(None);
            }
            let mut ok = plan.ok;
            let mut reply = plan.reply.clone();
            let mut effects = true;
            for c in &plan.fresh_chfids {
                if tx.chfid_taken(*c)? {
                    effects = false;
                    ok = false;
                    reply = taken_fit.clone();
                }
            }
            for (ns, key, value) in &plan.state {
                match value {
                    Some(v) => tx.aux_put(ns, key, v)?,
                    None => tx.aux_remove(ns, key)?,
                }
            }
            let mut seqs = Vec::new();
            if effects {
                for r in &plan.records {
                    put(tx, r)?;
                }
                let mut number: Option<String> = None;
                if let Some(i) = &plan.intent {
                    let mut payment = i.payment.clone();
                    number = crate::payments::assign_control_number(
                        tx,
                        &mut payment,
                        &i.product,
                        ctx.gepg,
                    )?
                    .number()
                    .map(String::from);
                    tx.put_payment(&payment)?;
                }
                reply = intent::fill(ctx, &reply, number.as_deref());
                for (ns, key, value) in &plan.indexes {
                    tx.aux_put(ns, key, value)?;
                }
                for (family, payment) in &plan.payment_index {
                    crate::ussd::actions::payments::index_in_tx(tx, *family, *payment)?;
                }
                for (suffix, sms) in &plan.notices {
                    let mut sms = sms.clone();
                    sms.text = fit(&intent::fill(ctx, &sms.text, number.as_deref()));
                    seqs.push(sms::enqueue(
                        tx,
                        &format!("mo:{}:officer:{suffix}", mo.id),
                        &sms,
                    )?);
                }
            }
            let reply = fit(&reply);
            if let (true, true, Some(key)) = (effects, ok, &plan.remember) {
                audit::remember_in(tx, key, &reply)?;
            }
            let sms = OutboundSms {
                to: to.clone(),
                text: reply.clone(),
                template: format!("officer.{command}"),
                language: ctx.lang,
                reference: format!("mo:{}", mo.id),
            };
            seqs.insert(0, sms::enqueue(tx, &format!("mo:{}:officer", mo.id), &sms)?);
            let entry = AuditEntry {
                mo_id: mo.id,
                officer: officer.id,
                officer_code: officer.code.clone(),
                at_ms: tx.now().timestamp_millis(),
                received_ms: mo.received_ms,
                command: command.clone(),
                text: masked_text.to_string(),
                ok,
                reply,
                notices: plan.notices.len() as u32,
            };
            audit::record_in(tx, &entry)?;
            crate::sms::inbound::mask_in(tx, mo.id, masked_text)?;
            Ok(Some((ok, seqs)))
        });
    match written {
        Ok(Some((ok, sms))) => Ok(Processed::Replied { command, ok, sms }),
        Ok(None) => Ok(Processed::AlreadyDone),
        Err(WriteError::Store(e)) => Err(OfficerError::Store(e)),
        Err(WriteError::Aborted(never)) => match never {},
    }
}

/// A fresh UUID for a new record.
pub fn uuid() -> Uuid {
    Uuid::new_v4()
}
