//! The payment intent of a new or renewed policy, and its control number.
//!
//! Until the GePG payments module offers a pool/request function, this does what the USSD
//! renewal does: in `[gepg] mode = "simulator"` the control number is "99" + the zero-padded
//! payment id, Assigned at once; in live mode the intent waits (IntentCreated) with no
//! number, and the officer is told it will follow by SMS.
//! Must never: create a payment without its detail line naming the policy.

use super::plan::{uuid, Rec};
use super::Ctx;
use crate::config::GepgMode;
use crate::domain::{
    Chfid, ControlNumber, ControlNumberStatus, Id, Money, Payment, PaymentDetail, PaymentStatus,
    PolicyStage, Product,
};

pub struct Intent {
    pub payment: Id,
    pub records: Vec<Rec>,
    /// The control number, when one is assigned now.
    pub control_number: Option<String>,
}

pub fn create(
    ctx: &Ctx<'_>,
    (payment_id, cn_id): (Id, Id),
    chfid: Chfid,
    product: &Product,
    policy: Id,
    stage: PolicyStage,
    amount: Money,
) -> Intent {
    let simulator = ctx.gepg == GepgMode::Simulator;
    let number = simulator.then(|| format!("99{payment_id:010}"));
    let payment = Payment {
        id: payment_id,
        uuid: uuid(),
        status: if simulator {
            PaymentStatus::Assigned
        } else {
            PaymentStatus::IntentCreated
        },
        expected_amount: amount,
        received_amount: None,
        officer_code: Some(ctx.officer.code.clone()),
        phone: ctx.officer.phone.clone(),
        language: ctx.lang,
        request_date: ctx.now,
        control_number: number.clone(),
        received_date: None,
        payment_date: None,
        matched_date: None,
        transaction_no: None,
        receipt_no: None,
        payment_origin: None,
        rejected_reason: None,
        details: vec![PaymentDetail {
            product_code: product.code.clone(),
            chfid,
            stage,
            policy: Some(policy),
            expected_amount: amount,
            amount: None,
            premium: None,
        }],
    };
    let mut records = vec![Rec::Payment(payment)];
    if let Some(n) = &number {
        records.push(Rec::ControlNumber(ControlNumber {
            id: cn_id,
            number: n.clone(),
            status: ControlNumberStatus::Assigned,
            payment: Some(payment_id),
            product: Some(product.id),
            requested_date: ctx.now,
            received_date: Some(ctx.now),
        }));
    }
    Intent {
        payment: payment_id,
        records,
        control_number: number,
    }
}

/// The control number as shown in a reply.
pub fn show(ctx: &Ctx<'_>, number: &Option<String>) -> String {
    match number {
        Some(n) => n.clone(),
        None => ctx.grammar.text("cn_pending", ctx.lang, &[]),
    }
}
