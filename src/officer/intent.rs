//! The payment intent of a new or renewed policy. Its control number is given inside the
//! command's transaction by `payments::assign_control_number` (the product's pool, the
//! simulator, or a GePG bill whose number comes later by SMS to the officer), so replies
//! carry [`CN_MARK`] until then.
//! Must never: create a payment without its detail line naming the policy.

use super::plan::uuid;
use super::Ctx;
use crate::domain::{
    Chfid, Id, Money, Payment, PaymentDetail, PaymentStatus, PolicyStage, Product,
};

/// Stands for the control number in a rendered text until the transaction knows it.
pub const CN_MARK: &str = "\u{1}CN\u{1}";

/// A payment to create, and the product whose pool may give its control number.
#[derive(Debug, Clone)]
pub struct Intent {
    pub payment: Payment,
    pub product: Product,
}

pub fn create(
    ctx: &Ctx<'_>,
    payment_id: Id,
    chfid: Chfid,
    product: &Product,
    policy: Id,
    stage: PolicyStage,
    amount: Money,
) -> Intent {
    let payment = Payment {
        id: payment_id,
        uuid: uuid(),
        status: PaymentStatus::IntentCreated,
        expected_amount: amount,
        received_amount: None,
        officer_code: Some(ctx.officer.code.clone()),
        phone: ctx.officer.phone.clone(),
        language: ctx.lang,
        request_date: ctx.now,
        control_number: None,
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
    Intent {
        payment,
        product: product.clone(),
    }
}

/// `text` with [`CN_MARK`] replaced by the number, or by "to follow by SMS".
pub fn fill(ctx: &Ctx<'_>, text: &str, number: Option<&str>) -> String {
    if !text.contains(CN_MARK) {
        return text.to_string();
    }
    let shown = match number {
        Some(n) => n.to_string(),
        None => ctx.grammar.text("cn_pending", ctx.lang, &[]),
    };
    text.replace(CN_MARK, &shown)
}

/// The control number as shown in a reply, when it is known before the transaction.
pub fn show(ctx: &Ctx<'_>, number: &Option<String>) -> String {
    fill(ctx, CN_MARK, number.as_deref())
}
