//! A payment notification, applied exactly once: payment, premium, activation, SMS.
//!
//! Owns: the one internal payment event ([`PaymentNotice`], whatever adapter it came from:
//! GePG notification, reconciliation line, direct mobile money), its deduplication on
//! (SpCode, TrxId) and on PayRefId, and the single store transaction that records the money
//! against its payment, creates the premium, applies the openIMIS activation rules
//! (`domain::activation`), marks the payment matched and enqueues one confirmation SMS.
//! Must never: apply a notification twice, apply a notification whose TrxId or PayRefId we
//! already hold with another amount or bill (a conflict: reported, not applied), or acknowledge
//! anything (the caller acks after [`crate::store::Store::write_durable`]).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::xml::{parse_timestamp, PmtTrx};
use super::{story, PAID_NS, PAYREF_NS, TRX_NS};
use crate::domain::{
    apply_payment, cover_members, Activation, Id, Money, Msisdn, PayType, Payment, PaymentStatus,
    Policy, PolicyStatus, Premium,
};
use crate::sms::{self, OutboundSms, TemplateError, Templates};
use crate::store::{codec, Abort, Store, StoreError, TxError, TxResult, WriteTx};

/// Where a payment event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    Gepg,
    Reconciliation,
    MobileMoney,
}

/// One payment as every adapter reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentNotice {
    pub source: Source,
    pub sp_code: String,
    /// The provider's transaction id: the deduplication key with `sp_code`.
    pub trx_id: String,
    /// GePG's payment reference: also unique, and what reconciliation lines carry.
    pub pay_ref_id: String,
    pub bill_id: String,
    pub control_number: String,
    pub paid: Money,
    pub currency: String,
    /// As sent (`TrxDtTm`); the pay date is read from it leniently.
    pub paid_at: String,
    pub channel: String,
    pub psp_name: String,
    pub payer_phone: String,
    pub receipt: String,
}

impl From<&PmtTrx> for PaymentNotice {
    fn from(t: &PmtTrx) -> PaymentNotice {
        PaymentNotice {
            source: Source::Gepg,
            sp_code: t.sp_code.clone(),
            trx_id: t.trx_id.clone(),
            pay_ref_id: t.pay_ref_id.clone(),
            bill_id: t.bill_id.clone(),
            control_number: t.control_number.clone(),
            paid: t.paid_amt,
            currency: t.ccy.clone(),
            paid_at: t.trx_date.clone(),
            channel: t.channel.clone(),
            psp_name: t.psp_name.clone(),
            payer_phone: t.payer_phone.clone(),
            receipt: if t.psp_receipt.is_empty() {
                t.pay_ref_id.clone()
            } else {
                t.psp_receipt.clone()
            },
        }
    }
}

impl PaymentNotice {
    fn trx_key(&self) -> Vec<u8> {
        format!("{}:{}", self.sp_code, self.trx_id).into_bytes()
    }

    /// GePG's payment reference is unique across GePG, whatever SP code a report files it
    /// under, so it is keyed alone.
    fn payref_key(&self) -> Vec<u8> {
        self.pay_ref_id.as_bytes().to_vec()
    }

    /// Bank channels pay by bank; everything else through GePG is mobile money.
    fn pay_type(&self) -> PayType {
        let c = self.channel.to_ascii_uppercase();
        if c == "IB" || c.contains("BANK") || self.psp_name.to_ascii_uppercase().contains("BANK") {
            PayType::Bank
        } else {
            PayType::Mobile
        }
    }
}

/// What we keep per applied transaction (aux [`TRX_NS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrxRecord {
    pub notice: PaymentNotice,
    pub payment: Option<Id>,
    pub premium: Option<Id>,
    pub outcome: String,
    pub recorded_at: DateTime<Utc>,
}

impl TrxRecord {
    /// Same money against the same bill: a redelivery, not a new payment.
    fn same_payment(&self, n: &PaymentNotice) -> bool {
        let o = &self.notice;
        o.paid == n.paid
            && o.control_number == n.control_number
            && (o.bill_id.is_empty() || n.bill_id.is_empty() || o.bill_id == n.bill_id)
    }
}

/// What a notification did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// First time seen: applied with this outcome.
    New(Outcome),
    /// Seen before with the same amount and bill: nothing done.
    Duplicate,
    /// Seen before with another amount or bill: nothing done; the reason says what differs.
    Conflict(String),
}

/// The effect of a new payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The policy is fully paid and now active.
    Activated {
        payment: Id,
        policy: Id,
        effective: NaiveDate,
    },
    /// Recorded; the policy stays Idle until `balance` is paid.
    Underpaid { payment: Id, balance: Money },
    /// Recorded against an already active policy.
    AlreadyActive { payment: Id },
    /// Recorded against the payment, but no premium (policy suspended, expired, missing;
    /// wrong currency).
    NotApplied { payment: Id, reason: String },
    /// No payment has this control number or bill id: kept for reconciliation.
    Unmatched { reason: String },
}

impl Outcome {
    fn label(&self) -> String {
        match self {
            Outcome::Activated { effective, .. } => format!("activated from {effective}"),
            Outcome::Underpaid { balance, .. } => format!("underpaid, TZS {balance} remains"),
            Outcome::AlreadyActive { .. } => "recorded (policy already active)".into(),
            Outcome::NotApplied { reason, .. } => format!("recorded, not applied: {reason}"),
            Outcome::Unmatched { reason } => format!("unmatched: {reason}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("SMS template: {0}")]
    Template(#[from] TemplateError),
}

/// What the transaction needs that only a prefix scan can read (sled transactions cannot
/// iterate): the coverage rows of the payment's policies, read before and re-checked by key.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub notice: PaymentNotice,
    insuree_policies: Vec<Id>,
}

fn find_payment_outside(store: &Store, n: &PaymentNotice) -> Result<Option<Payment>, StoreError> {
    if let Some(p) = store.payment_by_control_number(&n.control_number)? {
        return Ok(Some(p));
    }
    match n.bill_id.parse::<Id>() {
        Ok(id) => store.payment(id),
        Err(_) => Ok(None),
    }
}

/// Reads outside the transaction what [`apply`] will need.
pub fn prepare(store: &Store, notice: PaymentNotice) -> Result<Prepared, StoreError> {
    let mut insuree_policies = Vec::new();
    if let Some(p) = find_payment_outside(store, &notice)? {
        for policy in p.details.iter().filter_map(|d| d.policy) {
            insuree_policies.extend(
                store
                    .insuree_policies_of_policy(policy)?
                    .into_iter()
                    .map(|ip| ip.id),
            );
        }
    }
    Ok(Prepared {
        notice,
        insuree_policies,
    })
}

fn codec_err(e: codec::CodecError) -> TxError {
    TxError::from(StoreError::Codec {
        tree: "aux",
        source: e,
    })
}

fn find_payment(tx: &WriteTx<'_>, n: &PaymentNotice) -> Result<Option<Payment>, TxError> {
    if let Some(p) = tx.payment_by_control_number(&n.control_number)? {
        return Ok(Some(p));
    }
    // A bill id alone is trusted only if that payment has no other control number.
    match n.bill_id.parse::<Id>() {
        Ok(id) => Ok(tx.payment(id)?.filter(|p| {
            p.control_number
                .as_deref()
                .is_none_or(|c| c == n.control_number)
        })),
        Err(_) => Ok(None),
    }
}

fn paid_before(tx: &WriteTx<'_>, policy: Id) -> Result<Money, TxError> {
    Ok(tx
        .aux_get(PAID_NS, &policy.to_be_bytes())?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(|b| Money(i64::from_be_bytes(b)))
        .unwrap_or(Money::ZERO))
}

/// The pay date: the notification's own date (East Africa time as GePG sends it), else today.
fn pay_date(n: &PaymentNotice, today: NaiveDate) -> NaiveDate {
    parse_timestamp(&n.paid_at)
        .map(|t| t.date())
        .unwrap_or(today)
}

/// Applies one notification inside the caller's transaction (see the module doc). `today`
/// is the scheme's civil date, used when the notification carries no readable date.
pub fn apply(
    tx: &mut WriteTx<'_>,
    prepared: &Prepared,
    templates: &Templates,
    today: NaiveDate,
) -> TxResult<Applied, NotifyError> {
    let n = &prepared.notice;
    let tkey = n.trx_key();
    if let Some(bytes) = tx.aux_get(TRX_NS, &tkey)? {
        let old: TrxRecord = codec::decode(&bytes).map_err(codec_err)?;
        return Ok(if old.same_payment(n) {
            Applied::Duplicate
        } else {
            Applied::Conflict(format!(
                "TrxId {} already applied as TZS {} for control number {}, now TZS {} for {}",
                n.trx_id, old.notice.paid, old.notice.control_number, n.paid, n.control_number
            ))
        });
    }
    if !n.pay_ref_id.is_empty() {
        if let Some(other) = tx.aux_get(PAYREF_NS, &n.payref_key())? {
            let old: Option<TrxRecord> = match tx.aux_get(TRX_NS, &other)? {
                Some(b) => Some(codec::decode(&b).map_err(codec_err)?),
                None => None,
            };
            return Ok(match old {
                Some(old) if old.same_payment(n) => Applied::Duplicate,
                Some(old) => Applied::Conflict(format!(
                    "PayRefId {} already applied as TZS {} (TrxId {}), now TZS {} (TrxId {})",
                    n.pay_ref_id, old.notice.paid, old.notice.trx_id, n.paid, n.trx_id
                )),
                None => Applied::Duplicate,
            });
        }
    }
    let mut premium_id = None;
    let outcome = match find_payment(tx, n)? {
        None => Outcome::Unmatched {
            reason: format!("no payment with control number {:?}", n.control_number),
        },
        Some(payment) => {
            let (outcome, premium) = apply_to_payment(tx, prepared, payment, templates, today)?;
            premium_id = premium;
            outcome
        }
    };
    let payment_id = match &outcome {
        Outcome::Activated { payment, .. }
        | Outcome::Underpaid { payment, .. }
        | Outcome::AlreadyActive { payment }
        | Outcome::NotApplied { payment, .. } => Some(*payment),
        Outcome::Unmatched { .. } => None,
    };
    let record = TrxRecord {
        notice: n.clone(),
        payment: payment_id,
        premium: premium_id,
        outcome: outcome.label(),
        recorded_at: tx.now(),
    };
    tx.aux_put(TRX_NS, &tkey, &codec::encode(&record).map_err(codec_err)?)?;
    if !n.pay_ref_id.is_empty() {
        tx.aux_put(PAYREF_NS, &n.payref_key(), &tkey)?;
    }
    if let Some(p) = payment_id {
        story(
            tx,
            p,
            &format!(
                "{:?} payment TrxId {} PayRefId {} {} {} via {} {}: {}",
                n.source,
                n.trx_id,
                n.pay_ref_id,
                if n.currency.is_empty() {
                    "TZS"
                } else {
                    &n.currency
                },
                n.paid,
                n.psp_name,
                n.channel,
                outcome.label()
            ),
        )?;
    }
    Ok(Applied::New(outcome))
}

fn apply_to_payment(
    tx: &mut WriteTx<'_>,
    prepared: &Prepared,
    mut payment: Payment,
    templates: &Templates,
    today: NaiveDate,
) -> TxResult<(Outcome, Option<Id>), NotifyError> {
    let n = &prepared.notice;
    let now = tx.now();
    let on = pay_date(n, today);
    let detail_policy = payment.details.first().and_then(|d| d.policy);
    let policy: Option<Policy> = match detail_policy {
        Some(id) => tx.policy(id)?,
        None => None,
    };
    // Record the money on the payment whatever happens next, but only TZS: the payment's
    // amounts are TZS, and a foreign amount added to them is a wrong number (the amount
    // stays in the notice, the transaction record and the payment's reason and story).
    let currency_ok = n.currency.is_empty() || n.currency.eq_ignore_ascii_case("TZS");
    if currency_ok {
        payment.received_amount = Some(payment.received_amount.unwrap_or(Money::ZERO) + n.paid);
    }
    payment.received_date = Some(now);
    // GePG's timestamps are East Africa time (UTC+3) without a zone.
    payment.payment_date = parse_timestamp(&n.paid_at).map(crate::domain::utc_from_eat);
    payment.transaction_no = Some(n.trx_id.clone());
    payment.receipt_no = Some(n.receipt.clone());
    payment.payment_origin = Some(if n.psp_name.is_empty() {
        n.channel.clone()
    } else {
        n.psp_name.clone()
    });
    let not_applied = |payment: &mut Payment, reason: String| {
        payment.status = PaymentStatus::Received;
        payment.rejected_reason = Some(reason.clone());
        Outcome::NotApplied {
            payment: payment.id,
            reason,
        }
    };
    let (outcome, premium) = match (policy, currency_ok) {
        (_, false) => {
            let why = format!(
                "currency {} (paid {} {}, not counted as received)",
                n.currency, n.currency, n.paid
            );
            (not_applied(&mut payment, why), None)
        }
        (None, _) => (not_applied(&mut payment, "no policy to pay".into()), None),
        (Some(mut policy), true) => {
            let before = paid_before(tx, policy.id)?;
            match apply_payment(&policy, before, n.paid, on) {
                Err(e) => (not_applied(&mut payment, e.to_string()), None),
                Ok(act) => {
                    let premium = Premium {
                        id: tx.next_id()?,
                        uuid: Uuid::new_v4(),
                        policy: policy.id,
                        amount: n.paid,
                        receipt: n.receipt.chars().take(50).collect(),
                        pay_date: on,
                        pay_type: n.pay_type(),
                        is_photo_fee: false,
                    };
                    tx.put_premium(&premium)?;
                    let total = before + n.paid;
                    tx.aux_put(PAID_NS, &policy.id.to_be_bytes(), &total.0.to_be_bytes())?;
                    let outcome = match act {
                        Activation::Activated { effective_date, .. } => {
                            policy.status = PolicyStatus::Active;
                            policy.effective_date = Some(effective_date);
                            tx.put_policy(&policy)?;
                            let mut rows = Vec::new();
                            for id in &prepared.insuree_policies {
                                if let Some(r) = tx.insuree_policy(*id)? {
                                    rows.push(r);
                                }
                            }
                            for r in cover_members(policy.id, effective_date, &rows) {
                                tx.put_insuree_policy(&r)?;
                            }
                            Outcome::Activated {
                                payment: payment.id,
                                policy: policy.id,
                                effective: effective_date,
                            }
                        }
                        Activation::Underpaid { balance } => Outcome::Underpaid {
                            payment: payment.id,
                            balance,
                        },
                        Activation::AlreadyActive => Outcome::AlreadyActive {
                            payment: payment.id,
                        },
                    };
                    payment.status = PaymentStatus::Matched;
                    payment.matched_date = Some(now);
                    payment.rejected_reason = None;
                    if let Some(d) = payment.details.first_mut() {
                        d.amount = Some(d.amount.unwrap_or(Money::ZERO) + n.paid);
                        d.premium = Some(premium.id);
                    }
                    (outcome, Some(premium.id))
                }
            }
        }
    };
    tx.put_payment(&payment)?;
    confirm_by_sms(tx, &payment, n, &outcome, templates)?;
    Ok((outcome, premium))
}

/// One SMS per payment event and template; the key makes a replay a no-op.
fn confirm_by_sms(
    tx: &mut WriteTx<'_>,
    payment: &Payment,
    n: &PaymentNotice,
    outcome: &Outcome,
    templates: &Templates,
) -> TxResult<(), NotifyError> {
    let to = match payment.phone.clone() {
        Some(p) => p,
        None => match Msisdn::parse(&n.payer_phone) {
            Ok(p) => p,
            Err(_) => return Ok(()),
        },
    };
    let detail = payment.details.first();
    let chfid = detail.map(|d| d.chfid.to_string()).unwrap_or_default();
    let product = detail.map(|d| d.product_code.clone()).unwrap_or_default();
    let cn = payment.control_number.clone().unwrap_or_default();
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("control_number", cn),
        ("amount", n.paid.to_string()),
        ("chfid", chfid),
        ("product", product),
        ("receipt", n.receipt.clone()),
    ]);
    let template = match outcome {
        Outcome::Activated {
            policy, effective, ..
        } => {
            let expiry = tx
                .policy(*policy)?
                .map(|p| crate::domain::show_date(p.expiry_date))
                .unwrap_or_default();
            vars.insert("start", crate::domain::show_date(*effective));
            vars.insert("expiry", expiry);
            "payment_activated"
        }
        Outcome::Underpaid { balance, .. } => {
            vars.insert("balance", balance.to_string());
            "payment_partial"
        }
        _ => "payment_received",
    };
    let text = templates
        .render(template, payment.language, &vars)
        .map_err(|e| Abort::User(NotifyError::from(e)))?;
    sms::enqueue(
        tx,
        &format!(
            "payment:{}:{}:{}:{}",
            payment.id, n.sp_code, n.trx_id, template
        ),
        &OutboundSms {
            to,
            text,
            template: template.into(),
            language: payment.language,
            reference: format!("payment:{}", payment.id),
        },
    )?;
    Ok(())
}

/// The record of a transaction we hold, by (SpCode, TrxId).
pub fn transaction(
    store: &Store,
    sp_code: &str,
    trx_id: &str,
) -> Result<Option<TrxRecord>, StoreError> {
    match store.aux_get(TRX_NS, format!("{sp_code}:{trx_id}").as_bytes())? {
        Some(b) => codec::decode_aux(&b).map(Some),
        None => Ok(None),
    }
}

/// Every transaction we hold (for reports; scans a namespace).
pub fn transactions(store: &Store) -> Result<Vec<TrxRecord>, StoreError> {
    store
        .aux_scan(TRX_NS, b"")?
        .into_iter()
        .map(|(_, v)| codec::decode_aux(&v))
        .collect()
}

/// Whether a PayRefId was already applied.
pub fn pay_ref_known(store: &Store, pay_ref_id: &str) -> Result<bool, StoreError> {
    Ok(store.aux_get(PAYREF_NS, pay_ref_id.as_bytes())?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PaymentDetail, PolicyStage};
    use crate::sms::SMS_TOPIC;
    use crate::store::fixtures::{
        chfid, d, family, insuree, insuree_policy, payment, policy, product,
    };
    use crate::store::WriteError;

    const CN: &str = "991110000025";

    fn templates() -> Templates {
        Templates::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates"))
            .unwrap()
    }

    /// A family with an Idle renewal (policy 20, 30,000 from 1 Jan 2024) and its payment 30
    /// with control number CN.
    fn seeded() -> Store {
        let store = Store::open_temporary().unwrap();
        store
            .write(|tx| -> TxResult<()> {
                tx.put_product(&product(1, "CHF01"))?;
                tx.put_family(&family(10, 11))?;
                tx.put_insuree(&insuree(11, 10, 7_070_707, Some("0754100001")))?;
                tx.put_insuree(&insuree(12, 10, 7_070_708, None))?;
                tx.put_policy(&Policy {
                    status: PolicyStatus::Idle,
                    effective_date: None,
                    stage: PolicyStage::Renewal,
                    ..policy(20, 10)
                })?;
                for (id, who) in [(21, 11), (22, 12)] {
                    tx.put_insuree_policy(&crate::domain::InsureePolicy {
                        effective_date: None,
                        ..insuree_policy(id, who, 20)
                    })?;
                }
                tx.put_payment(&Payment {
                    details: vec![PaymentDetail {
                        product_code: "CHF01".into(),
                        chfid: chfid(7_070_707),
                        stage: PolicyStage::Renewal,
                        policy: Some(20),
                        expected_amount: Money::tzs(30_000),
                        amount: None,
                        premium: None,
                    }],
                    ..payment(30, Some(CN))
                })?;
                Ok(())
            })
            .unwrap();
        store
    }

    fn notice(trx: &str, amount: i64) -> PaymentNotice {
        PaymentNotice {
            source: Source::Gepg,
            sp_code: "SP111".into(),
            trx_id: trx.into(),
            pay_ref_id: format!("PR-{trx}"),
            bill_id: "30".into(),
            control_number: CN.into(),
            paid: Money::tzs(amount),
            currency: "TZS".into(),
            paid_at: "2024-01-15T08:01:44".into(),
            channel: "MOBILE".into(),
            psp_name: "M-PESA".into(),
            payer_phone: "255754000000".into(),
            receipt: format!("R-{trx}"),
        }
    }

    fn run(store: &Store, n: PaymentNotice) -> Applied {
        let t = templates();
        let p = prepare(store, n).unwrap();
        let r: Result<Applied, WriteError<NotifyError>> =
            store.write(|tx| apply(tx, &p, &t, d(2024, 1, 20)));
        r.unwrap()
    }

    fn sms_texts(store: &Store) -> Vec<String> {
        store
            .claim(
                SMS_TOPIC,
                100,
                std::time::Duration::from_secs(60),
                Utc::now(),
            )
            .unwrap()
            .iter()
            .map(|i| sms::outbound::decode(&i.payload).unwrap().text)
            .collect()
    }

    #[test]
    fn a_full_payment_activates_once_and_a_redelivery_does_nothing() {
        let store = seeded();
        let first = run(&store, notice("T1", 30_000));
        assert_eq!(
            first,
            Applied::New(Outcome::Activated {
                payment: 30,
                policy: 20,
                effective: d(2024, 1, 15)
            })
        );
        assert_eq!(run(&store, notice("T1", 30_000)), Applied::Duplicate);
        let p = store.policy(20).unwrap().unwrap();
        assert_eq!(
            (p.status, p.effective_date),
            (PolicyStatus::Active, Some(d(2024, 1, 15)))
        );
        let covered: Vec<_> = store
            .insuree_policies_of_policy(20)
            .unwrap()
            .into_iter()
            .map(|r| r.effective_date)
            .collect();
        assert_eq!(covered, [Some(d(2024, 1, 15)); 2]);
        let premiums = store.premiums_of_policy(20).unwrap();
        assert_eq!(premiums.len(), 1);
        assert_eq!(
            (premiums[0].amount, premiums[0].pay_type),
            (Money::tzs(30_000), PayType::Mobile)
        );
        let pay = store.payment(30).unwrap().unwrap();
        assert_eq!(pay.status, PaymentStatus::Matched);
        assert_eq!(pay.received_amount, Some(Money::tzs(30_000)));
        assert_eq!(pay.transaction_no.as_deref(), Some("T1"));
        let texts = sms_texts(&store);
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(
            texts[0].contains("070707070") && texts[0].contains("15/01/2024"),
            "{texts:?}"
        );
        let rec = transaction(&store, "SP111", "T1").unwrap().unwrap();
        assert_eq!((rec.payment, rec.premium), (Some(30), Some(premiums[0].id)));
        assert!(!super::super::story_of(&store, 30).unwrap().is_empty());
    }

    #[test]
    fn the_same_trx_or_payref_with_another_amount_or_bill_is_a_conflict_not_applied() {
        let store = seeded();
        run(&store, notice("T1", 10_000));
        let other_amount = run(&store, notice("T1", 20_000));
        assert!(
            matches!(other_amount, Applied::Conflict(ref w) if w.contains("TrxId T1")),
            "{other_amount:?}"
        );
        let other_bill = run(
            &store,
            PaymentNotice {
                control_number: "991110000099".into(),
                ..notice("T1", 10_000)
            },
        );
        assert!(matches!(other_bill, Applied::Conflict(_)));
        // Another TrxId reusing the PayRefId with another amount.
        let reused = run(
            &store,
            PaymentNotice {
                pay_ref_id: "PR-T1".into(),
                ..notice("T2", 5_000)
            },
        );
        assert!(
            matches!(reused, Applied::Conflict(ref w) if w.contains("PayRefId")),
            "{reused:?}"
        );
        // The same money reported under another id (reconciliation) is a duplicate.
        let recon = run(
            &store,
            PaymentNotice {
                source: Source::Reconciliation,
                trx_id: "RECON:x".into(),
                pay_ref_id: "PR-T1".into(),
                ..notice("T1", 10_000)
            },
        );
        assert_eq!(recon, Applied::Duplicate);
        assert_eq!(store.premiums_of_policy(20).unwrap().len(), 1);
        assert_eq!(
            store.payment(30).unwrap().unwrap().received_amount,
            Some(Money::tzs(10_000))
        );
    }

    #[test]
    fn underpayments_keep_the_policy_idle_with_a_balance_until_installments_add_up() {
        let store = seeded();
        assert_eq!(
            run(&store, notice("T1", 20_000)),
            Applied::New(Outcome::Underpaid {
                payment: 30,
                balance: Money::tzs(10_000)
            })
        );
        assert_eq!(
            store.policy(20).unwrap().unwrap().status,
            PolicyStatus::Idle
        );
        let texts = sms_texts(&store);
        assert!(texts[0].contains("10,000"), "{texts:?}");
        assert!(matches!(
            run(&store, notice("T2", 10_000)),
            Applied::New(Outcome::Activated { .. })
        ));
        assert_eq!(
            store.policy(20).unwrap().unwrap().status,
            PolicyStatus::Active
        );
        assert_eq!(store.premiums_of_policy(20).unwrap().len(), 2);
        assert!(matches!(
            run(&store, notice("T3", 1_000)),
            Applied::New(Outcome::AlreadyActive { .. })
        ));
    }

    #[test]
    fn unknown_control_numbers_and_foreign_currencies_are_kept_but_not_applied() {
        let store = seeded();
        let unknown = run(
            &store,
            PaymentNotice {
                control_number: "990000000001".into(),
                bill_id: "999".into(),
                ..notice("T9", 30_000)
            },
        );
        assert!(matches!(unknown, Applied::New(Outcome::Unmatched { .. })));
        assert!(transaction(&store, "SP111", "T9").unwrap().is_some());
        let usd = run(
            &store,
            PaymentNotice {
                currency: "USD".into(),
                ..notice("T8", 30_000)
            },
        );
        assert!(
            matches!(usd, Applied::New(Outcome::NotApplied { ref reason, .. }) if reason.contains("USD")),
            "{usd:?}"
        );
        assert_eq!(
            store.policy(20).unwrap().unwrap().status,
            PolicyStatus::Idle
        );
        assert!(store.premiums_of_policy(20).unwrap().is_empty());
        let pay = store.payment(30).unwrap().unwrap();
        assert_eq!(pay.status, PaymentStatus::Received);
        // Issue 14: a USD amount is never added to the TZS received.
        assert_eq!(pay.received_amount, None, "{pay:?}");
        assert!(pay.rejected_reason.unwrap().contains("USD 30,000"));
    }
}
