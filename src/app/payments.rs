//! A family's payments: the intents a renewal or an enrolment creates, written with their
//! control number, and the payments still waiting to be paid.
//!
//! Owns: building a payment intent for one policy's contribution, writing it with the
//! control number the caller's [`AssignControlNumber`] gives, re-pricing a waiting payment.
//! Must never: decide how a control number is obtained (the payments module does, passed in
//! by the channel), or keep its own family → payment index (the store's
//! [`Store::payments_of_family`] is the one).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{
    Chfid, Id, Language, Money, Msisdn, Payment, PaymentDetail, PaymentStatus, PolicyStage, Product,
};
use crate::store::{Store, StoreError, TxError, WriteTx};

/// Gives a new payment its control number inside the transaction that creates it, returning
/// the number when one is known now (a pool, the simulator) and `None` when it comes later
/// (a queued GePG bill). The channel passes `payments::assign_control_number` here.
pub type AssignControlNumber<'f> =
    &'f dyn Fn(&mut WriteTx<'_>, &mut Payment, &Product) -> Result<Option<String>, TxError>;

/// Who a payment intent is for: where its control number is sent, in which language, and
/// the officer who asked (none for a member's own request).
#[derive(Debug, Clone)]
pub struct Payer {
    pub phone: Option<Msisdn>,
    pub language: Language,
    pub officer_code: Option<String>,
}

/// The contribution of one policy, as a payment's line.
#[derive(Debug, Clone, Copy)]
pub struct PolicyLine {
    pub chfid: Chfid,
    pub policy: Id,
    pub stage: PolicyStage,
    pub amount: Money,
}

/// A payment intent (no control number yet) for `line` of `product`.
pub fn intent(
    id: Id,
    product: &Product,
    line: PolicyLine,
    payer: &Payer,
    now: DateTime<Utc>,
) -> Payment {
    let detail = PaymentDetail {
        product_code: product.code.clone(),
        chfid: line.chfid,
        stage: line.stage,
        policy: Some(line.policy),
        expected_amount: line.amount,
        amount: None,
        premium: None,
    };
    let mut payment = Payment::intent(
        id,
        Uuid::new_v4(),
        detail,
        payer.phone.clone(),
        payer.language,
        now,
    );
    payment.officer_code = payer.officer_code.clone();
    payment
}

/// Writes a new payment with the control number `assign` gives it (the store indexes it by
/// family in the same write); returns the number when known now.
pub fn create_in(
    tx: &mut WriteTx<'_>,
    payment: &Payment,
    product: &Product,
    assign: AssignControlNumber<'_>,
) -> Result<Option<String>, TxError> {
    let mut payment = payment.clone();
    let number = assign(tx, &mut payment, product)?;
    tx.put_payment(&payment)?;
    Ok(number)
}

/// Waiting to be paid: intent created up to control number assigned.
pub fn is_pending(p: &Payment) -> bool {
    (0..PaymentStatus::Received.code()).contains(&p.status.code())
}

/// The payments of `family` still waiting to be paid, by id.
pub fn pending_of_family(store: &Store, family: Id) -> Result<Vec<Payment>, StoreError> {
    let mut all = store.payments_of_family(family)?;
    all.retain(is_pending);
    Ok(all)
}

/// The control number of the payment for `policy` of `family`, if it has one yet.
pub fn control_number_of_policy(
    store: &Store,
    family: Id,
    policy: Id,
) -> Result<Option<String>, StoreError> {
    Ok(store
        .payments_of_family(family)?
        .into_iter()
        .find(|p| p.details.iter().any(|d| d.policy == Some(policy)))
        .and_then(|p| p.control_number))
}

/// The waiting payments of `family` with a line for `policy`, re-priced to `value` (the
/// policy's value changed, e.g. a member was added): lines for it carry the new amount and
/// the total follows.
pub fn repriced_for_policy(
    store: &Store,
    family: Id,
    policy: Id,
    value: Money,
) -> Result<Vec<Payment>, StoreError> {
    let mut out = Vec::new();
    for mut pay in pending_of_family(store, family)? {
        let mut touched = false;
        for d in pay.details.iter_mut().filter(|d| d.policy == Some(policy)) {
            d.expected_amount = value;
            touched = true;
        }
        if touched {
            pay.expected_amount = pay.details.iter().map(|d| d.expected_amount).sum();
            out.push(pay);
        }
    }
    Ok(out)
}
