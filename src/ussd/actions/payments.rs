//! "My control number": pending payments of the caller's families (or of a CHFID), and the
//! family → payment index the USSD module keeps until the payments module owns one.
//!
//! The store has no index from a family to its payments. This module keeps one in `aux`
//! ([`FAMILY_PAYMENTS_NS`]): written in the same transaction as every payment USSD creates,
//! and backfilled at start from a scan of the payments (for payments others created, such as
//! the demo renewal). Payments created later by other modules are not seen until the next
//! start; the payments module should replace this with a real index.

use crate::domain::{Chfid, Family, Id, Payment, PaymentStatus};
use crate::store::{Store, StoreError, TxError, WriteTx};

use super::{ActionCtx, ActionError, Outcome};

pub const FAMILY_PAYMENTS_NS: &str = "ussd.family_payments";

fn key(family: Id, payment: Id) -> Vec<u8> {
    let mut k = family.to_be_bytes().to_vec();
    k.extend_from_slice(&payment.to_be_bytes());
    k
}

pub fn index_in_tx(tx: &mut WriteTx<'_>, family: Id, payment: Id) -> Result<(), TxError> {
    tx.aux_put(FAMILY_PAYMENTS_NS, &key(family, payment), b"")
}

/// Indexes every stored payment by the families of its CHFIDs. Idempotent.
pub fn backfill(store: &Store) -> Result<usize, StoreError> {
    let mut n = 0;
    for p in store.payments()? {
        for d in &p.details {
            if let Some(i) = store.insuree_by_chfid(d.chfid)? {
                store.aux_put(FAMILY_PAYMENTS_NS, &key(i.family, p.id), b"")?;
                n += 1;
            }
        }
    }
    Ok(n)
}

pub fn of_family(store: &Store, family: Id) -> Result<Vec<Payment>, StoreError> {
    let mut out = Vec::new();
    for (k, _) in store.aux_scan(FAMILY_PAYMENTS_NS, &family.to_be_bytes())? {
        let Some(id) = k.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
            continue;
        };
        if let Some(p) = store.payment(u64::from_be_bytes(id))? {
            out.push(p);
        }
    }
    Ok(out)
}

/// Waiting to be paid: intent created up to control number assigned.
pub fn is_pending(p: &Payment) -> bool {
    (0..PaymentStatus::Received.code()).contains(&p.status.code())
}

pub fn control_numbers(ctx: &ActionCtx) -> Result<Outcome, ActionError> {
    let store = &ctx.store;
    let families: Vec<Id> = match Chfid::parse(ctx.var("chfid")) {
        Ok(c) => match store.insuree_by_chfid(c)? {
            Some(i) => vec![i.family],
            None => return Ok(Outcome::named("not_found")),
        },
        Err(_) => store
            .families_by_phone(&ctx.msisdn)?
            .iter()
            .map(|f: &Family| f.id)
            .collect(),
    };
    let mut lines = Vec::new();
    for f in families {
        for p in of_family(store, f)?.into_iter().filter(is_pending) {
            let product = p
                .details
                .first()
                .map(|d| d.product_code.clone())
                .unwrap_or_default();
            let cn = p.control_number.clone().unwrap_or_else(|| "-".into());
            lines.push(format!("{cn} TZS {} {product}", p.expected_amount));
        }
    }
    if lines.is_empty() {
        return Ok(Outcome::named("none"));
    }
    Ok(Outcome::named("ok").var("payments", lines.join("\n")))
}
