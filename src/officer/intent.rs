//! The payment intent of a new or renewed policy. Its control number is given inside the
//! command's transaction by `payments::assign_control_number` (the product's pool, the
//! simulator, or a GePG bill whose number comes later by SMS to the officer), so replies
//! carry [`CN_MARK`] until then.
//! Must never: create a payment without its detail line naming the policy.

use super::Ctx;
use crate::app::payments::{self, Payer, PolicyLine};
use crate::domain::{Id, Payment, Product};

/// Stands for the control number in a rendered text until the transaction knows it.
pub const CN_MARK: &str = "\u{1}CN\u{1}";

/// A payment to create, and the product whose pool may give its control number.
#[derive(Debug, Clone)]
pub struct Intent {
    pub payment: Payment,
    pub product: Product,
}

/// The officer of `ctx` as the payer of an intent: the control number goes to their phone.
pub fn payer(ctx: &Ctx<'_>) -> Payer {
    Payer {
        phone: ctx.officer.phone.clone(),
        language: ctx.lang,
        officer_code: Some(ctx.officer.code.clone()),
    }
}

pub fn create(ctx: &Ctx<'_>, payment_id: Id, product: &Product, line: PolicyLine) -> Intent {
    Intent {
        payment: payments::intent(payment_id, product, line, &payer(ctx), ctx.now),
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
