//! GePG payments: control numbers, payment notifications, activation and confirmations.
//!
//! Owns: the GePG v4 messages ([`xml`]) and their signatures ([`sign`]); control-number
//! requests through the durable outbox ([`bill`]) and the pool of pre-requested numbers per
//! product ([`pool`]); applying a payment exactly once ([`notify`]); the daily
//! reconciliation ([`reconcile`]); the direct mobile-money callback ([`mobile`]); the GePG
//! simulator for demos and tests ([`simulator`]); the one decision of a bill's SpCode
//! ([`spcode`]).
//! [`Payments`] ties them to the store, the keys and the configuration; the HTTP edge
//! (`server::gepg`) only turns requests into calls on it.
//! Must never: acknowledge a callback (7101) before its effects are durable, apply a
//! payment twice, store anything from a message whose signature does not verify, or send an
//! SMS or a GePG request other than through the outbox.
//!
//! State lives in the store: payments, premiums, policies and control numbers in their typed
//! trees (each put also queues its mirror write), and this module's own bookkeeping in `aux`
//! namespaces `payments.*` (transactions by (SpCode, TrxId), PayRefIds, bills, the pool,
//! the amount paid per policy, each payment's story for `payments show`).

pub mod bill;
pub mod gepg_call;
pub mod mobile;
pub mod notify;
pub mod pool;
pub mod reconcile;
pub mod service;
pub mod sign;
pub mod simulator;
pub mod spcode;
pub mod xml;

pub use bill::{assign_control_number, Assignment};
pub use notify::{Applied, Outcome, PaymentNotice, Source};
pub use service::{Metrics, Payments, PaymentsError, Reply};

use crate::domain::Id;
use crate::store::{TxError, WriteTx};

/// (SpCode, TrxId) → [`notify::TrxRecord`].
pub const TRX_NS: &str = "payments.trx";
/// PayRefId → the (SpCode, TrxId) key it was applied under.
pub const PAYREF_NS: &str = "payments.payref";
/// Policy id → total paid through payments (cents, BE i64).
pub const PAID_NS: &str = "payments.paid";
/// Bill id → [`bill::BillRecord`].
pub const BILL_NS: &str = "payments.bill";
/// The pool of control numbers (see [`pool`]).
pub const POOL_NS: &str = "payments.pool";
/// Payment id ‖ seq → one line of the payment's story.
pub const STORY_NS: &str = "payments.story";
/// Reconciliation requests and reports.
pub const RECON_NS: &str = "payments.reconcile";

/// Outbox topic of bill submissions to GePG.
pub const BILL_TOPIC: &str = "gepg.bill";

/// Appends a line to the story of `payment`, committed with the transaction.
pub fn story(tx: &mut WriteTx<'_>, payment: Id, line: &str) -> Result<(), TxError> {
    let mut key = payment.to_be_bytes().to_vec();
    key.extend_from_slice(&tx.next_id()?.to_be_bytes());
    let text = format!("{} {line}", tx.now().format("%Y-%m-%d %H:%M:%S UTC"));
    tx.aux_put(STORY_NS, &key, text.as_bytes())
}

/// The story of a payment, oldest first.
pub fn story_of(
    store: &crate::store::Store,
    payment: Id,
) -> Result<Vec<String>, crate::store::StoreError> {
    Ok(store
        .aux_scan(STORY_NS, &payment.to_be_bytes())?
        .into_iter()
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .collect())
}
