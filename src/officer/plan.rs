//! A command's effects as data, and the one transaction that applies them together with the
//! reply, the audit entry and the MO's done marker (the worker flushes before it acknowledges).
//!
//! Owns: [`Plan`] and [`commit`]: the re-checks by key that must hold at commit time (a
//! CHFID allocated or named in the command is still free), and the all-or-nothing write.
//! Must never: apply part of a plan, or reply twice to one MO.

use uuid::Uuid;

use super::audit::{self, AuditEntry};
use super::{fit, intent, Ctx, OfficerError, Processed};
use crate::app::payments::create_in;
use crate::domain::{
    Chfid, ControlNumber, Family, Id, Insuree, InsureePolicy, Officer, Payment, Policy, Product,
};
use crate::sms::{self, OutboundSms};
use crate::store::{TxError, TxResult, WriteError, WriteTx};

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

/// An SMS to a family's head about one of its policies (see [`Plan::notify_head`]).
pub struct HeadNotice<'a> {
    /// The grammar entry it was rendered from (`head_renewed`...).
    pub template: &'a str,
    pub text: String,
    pub policy: Id,
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
    /// A payment to create; its control number is assigned in the transaction and fills
    /// [`super::intent::CN_MARK`] in the reply and the notices.
    pub intent: Option<super::intent::Intent>,
    /// Resend-detection key under which the reply is remembered on success.
    pub remember: Option<Vec<u8>>,
    /// The reply as a text key and its values, composed again in the transaction once the
    /// control number is known, so that fitting it never cuts the number (`reply` holds
    /// it composed with [`super::intent::CN_MARK`] until then).
    pub compose: Option<Composed>,
}

/// A reply still to be composed: grammar text `key` with `vars`.
#[derive(Debug, Clone)]
pub struct Composed {
    pub key: &'static str,
    pub vars: Vec<(&'static str, String)>,
}

impl Composed {
    /// The reply, with [`super::intent::CN_MARK`] in any value replaced by `number` (or
    /// "to follow by SMS"), fitted to the SMS limit by shortening only what may be.
    pub fn render(&self, ctx: &Ctx<'_>, number: Option<&str>) -> String {
        let filled: Vec<(&str, String)> = self
            .vars
            .iter()
            .map(|(k, v)| (*k, intent::fill(ctx, v, number)))
            .collect();
        let refs: Vec<(&str, &str)> = filled.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ctx.grammar.compose(self.key, ctx.lang, &refs)
    }
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

    /// A successful reply composed from grammar text `key` (see [`Plan::compose`]).
    pub fn composed(ctx: &Ctx<'_>, key: &'static str, vars: &[(&'static str, &str)]) -> Plan {
        let c = Composed {
            key,
            vars: vars.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        };
        Plan {
            reply: c.render(ctx, None),
            ok: true,
            compose: Some(c),
            ..Plan::default()
        }
    }

    /// Sends `text` to the family's head too, if the family agreed to SMS and the head has
    /// a phone; `template` names it in the outbox, `policy` is what it is about.
    pub fn notify_head(&mut self, family: &Family, head: &Insuree, notice: HeadNotice<'_>) {
        let (true, Some(phone)) = (family.sms.approved, &head.phone) else {
            return;
        };
        self.notices.push((
            "head".into(),
            OutboundSms {
                to: phone.clone(),
                text: notice.text,
                template: format!("officer.{}", notice.template),
                language: family.sms.language,
                reference: format!("policy:{}", notice.policy),
            },
        ));
    }

    /// Adds `policy` to the officer → policy index PENDING reads.
    pub fn index_officer_policy(&mut self, officer: Id, policy: Id) {
        self.indexes.push((
            super::pending::NS_OFFICER_POLICIES,
            super::pending::officer_policy_key(officer, policy),
            Vec::new(),
        ));
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
                    let assign = |tx: &mut WriteTx<'_>, p: &mut Payment, product: &Product| {
                        let given =
                            crate::payments::assign_control_number(tx, p, product, ctx.gepg)?;
                        Ok::<_, TxError>(given.number().map(String::from))
                    };
                    number = create_in(tx, &i.payment, &i.product, &assign)?;
                }
                reply = match &plan.compose {
                    Some(c) => c.render(ctx, number.as_deref()),
                    None => intent::fill(ctx, &reply, number.as_deref()),
                };
                for (ns, key, value) in &plan.indexes {
                    tx.aux_put(ns, key, value)?;
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
