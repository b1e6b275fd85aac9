//! Which GePG service-provider code (SpCode) a product's bills, payments and
//! reconciliations go under.
//!
//! Owns: the one decision (the product's `AccCodePremiums` when it is not blank, else
//! `[gepg] sp_code`), its error when both are blank (naming the product and the setting to
//! fix), the set of products found without one (each logged once, shown on `/health`), and
//! what becomes of a queued bill without one (not sent: dead-lettered with the reason, its
//! payment Rejected with it).
//! Must never: let an empty or blank SpCode reach GePG (GePG answers `7242`, and openIMIS's
//! real demo products all have an empty `AccCodePremiums`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::bill::{bill_in_tx, BillPurpose, BillRecord, BillState};
use super::service::Payments;
use crate::domain::{Id, Product};
use crate::store::consumer::Verdict;
use crate::store::{Store, StoreError, TxResult, WriteTx};

/// A bill for `product` cannot be sent: it has no SpCode and neither has the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("product {product} has no account code (AccCodePremiums) and [gepg] sp_code is empty")]
pub struct NoSpCode {
    pub product: String,
}

/// The SpCode of `product`'s bills: its account code trimmed, else `default` trimmed.
pub fn decide(
    product: &str,
    account_code: Option<&str>,
    default: &str,
) -> Result<String, NoSpCode> {
    [account_code.unwrap_or(""), default]
        .into_iter()
        .map(str::trim)
        .find(|c| !c.is_empty())
        .map(str::to_string)
        .ok_or_else(|| NoSpCode {
            product: product.to_string(),
        })
}

/// The products found without an SpCode, product code → reason, for the operator.
#[derive(Debug, Default)]
pub struct Missing(Mutex<BTreeMap<String, String>>);

impl Missing {
    /// Records `e`; true the first time its product is seen (the caller then logs it).
    pub fn record(&self, e: &NoSpCode) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(e.product.clone(), e.to_string())
            .is_none()
    }

    /// Every reason recorded, by product code.
    pub fn reasons(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Whether `product`'s bills have an SpCode (when not, that is logged once and counted).
pub(crate) fn billable(p: &Payments, product: &Product) -> bool {
    p.sp_code_for(&product.code, product.sp_code.as_deref(), true)
        .is_ok()
}

/// The SpCode to submit `bill` under, or what to do with its outbox entry instead (retry
/// a store error; dead-letter a bill that has none, see [`refuse_bill`]).
pub(crate) fn of_bill(p: &Payments, bill: &BillRecord) -> Result<String, Verdict> {
    let id = bill.bill_id;
    let product = product_of(&p.store, &bill.purpose)
        .map_err(|e| Verdict::Retry(format!("reading the product of bill {id}: {e}")))?;
    p.sp_code_for(&product, bill.sp_code.as_deref(), true)
        .map_err(|e| refuse_bill(p, id, &e))
}

/// The code of the product a bill is for, read back from the store (for the operator:
/// the bill record itself keeps only the product's SpCode).
pub(crate) fn product_of(store: &Store, purpose: &BillPurpose) -> Result<String, StoreError> {
    let code = match *purpose {
        BillPurpose::Member { payment } => store
            .payment(payment)?
            .and_then(|p| p.details.first().map(|d| d.product_code.clone())),
        BillPurpose::Pool { product } => store.product(product)?.map(|p| p.code),
    };
    Ok(code.unwrap_or_else(|| "(unknown)".into()))
}

/// Bill `id` has no SpCode: it is not sent. It is rejected with `e` as its reason (a
/// member's payment becomes Rejected with that reason, which `payments show` prints, and
/// its story says so; a pool bill is no longer awaited), and its outbox entry is
/// dead-lettered with the same reason: the configuration is read once at start, so
/// retrying could not help, and a dead letter is where an operator looks.
fn refuse_bill(p: &Payments, id: Id, e: &NoSpCode) -> Verdict {
    let reason = e.to_string();
    match p.store.write(|tx| record_refusal(tx, id, &reason)) {
        Ok(()) => Verdict::Dead(reason),
        Err(err) => Verdict::Retry(format!("recording that bill {id} cannot be sent: {err}")),
    }
}

fn record_refusal(tx: &mut WriteTx<'_>, id: Id, reason: &str) -> TxResult<()> {
    let Some(mut bill) = bill_in_tx(tx, id)? else {
        return Ok(());
    };
    if bill.state != BillState::Queued {
        return Ok(());
    }
    let line = format!("bill not sent to GePG: {reason}");
    super::bill::reject(tx, &mut bill, vec![reason.to_string()], reason, &line)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_products_code_wins_when_it_is_not_blank() {
        assert_eq!(decide("CHF01", Some("SP111"), "SP999"), Ok("SP111".into()));
        assert_eq!(decide("CHF01", Some(" SP111\t"), ""), Ok("SP111".into()));
    }

    #[test]
    fn a_blank_or_missing_code_falls_back_to_the_configured_one() {
        assert_eq!(decide("CHF01", Some(""), "SP999"), Ok("SP999".into()));
        assert_eq!(decide("CHF01", Some("   "), " SP999 "), Ok("SP999".into()));
        assert_eq!(decide("CHF01", None, "SP999"), Ok("SP999".into()));
    }

    #[test]
    fn both_blank_is_an_error_naming_the_product_and_the_setting() {
        let e = decide("CHF01", Some(" "), "  ").unwrap_err();
        assert_eq!(e.product, "CHF01");
        assert_eq!(
            e.to_string(),
            "product CHF01 has no account code (AccCodePremiums) and [gepg] sp_code is empty"
        );
        assert_eq!(decide("CHF01", None, ""), Err(e));
    }

    #[test]
    fn each_product_is_recorded_once() {
        let m = Missing::default();
        let e = NoSpCode {
            product: "CHF01".into(),
        };
        assert!(m.record(&e));
        assert!(!m.record(&e));
        assert!(m.record(&NoSpCode {
            product: "CHF02".into()
        }));
        assert_eq!(m.reasons().len(), 2);
        assert!(m.reasons()[0].starts_with("product CHF01 "));
    }
}

#[cfg(test)]
mod bill_tests {
    use crate::domain::PaymentStatus;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use super::*;
    use crate::config::{Config, GepgMode};
    use crate::domain::{Money, Payment, PaymentDetail, PolicyStage};
    use crate::payments::bill::assign_control_number;
    use crate::store::fixtures::{chfid, payment, product};

    /// A service over a store holding product PRD with a blank account code and a member
    /// bill (id 40) queued for it in live mode.
    fn service(default_sp_code: &str) -> (Payments, BillRecord) {
        let store = Store::open_temporary().unwrap();
        let prd = Product {
            sp_code: Some("  ".into()),
            ..product(1, "PRD")
        };
        store
            .write(|tx| -> TxResult<()> {
                tx.put_product(&prd)?;
                let mut pay = Payment {
                    status: PaymentStatus::IntentCreated,
                    expected_amount: Money::tzs(30_000),
                    details: vec![PaymentDetail {
                        product_code: "PRD".into(),
                        chfid: chfid(1),
                        stage: PolicyStage::Renewal,
                        policy: None,
                        expected_amount: Money::tzs(30_000),
                        amount: None,
                        premium: None,
                    }],
                    ..payment(40, None)
                };
                assign_control_number(tx, &mut pay, &prd, GepgMode::Live)?;
                tx.put_payment(&pay)?;
                Ok(())
            })
            .unwrap();
        let bill: BillRecord = crate::payments::bill::stored_bill(&store, 40)
            .unwrap()
            .unwrap();
        let mut config = Config::default();
        config.gepg.sp_code = default_sp_code.into();
        let templates = crate::sms::Templates::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sms-templates"),
        )
        .unwrap();
        let p = Payments::new(store, &config, Arc::new(templates), "http://127.0.0.1:9").unwrap();
        (p, bill)
    }

    #[test]
    fn a_bill_of_a_product_without_a_code_goes_under_the_configured_one() {
        let (p, bill) = service("SP999");
        assert_eq!(of_bill(&p, &bill), Ok("SP999".to_string()));
        assert!(p.sp_code_missing.reasons().is_empty());
    }

    #[test]
    fn with_no_code_anywhere_the_bill_is_dead_lettered_and_the_payment_says_why() {
        let (p, bill) = service("");
        let why = "product PRD has no account code (AccCodePremiums) and [gepg] sp_code is empty";
        // Start-up already named the product.
        assert_eq!(p.sp_code_missing.reasons(), vec![why.to_string()]);
        assert_eq!(of_bill(&p, &bill), Err(Verdict::Dead(why.into())));
        let pay = p.store.payment(40).unwrap().unwrap();
        assert_eq!(pay.status, PaymentStatus::Rejected);
        assert_eq!(pay.rejected_reason.as_deref(), Some(why));
        assert!(crate::payments::story_of(&p.store, 40)
            .unwrap()
            .iter()
            .any(|l| l.ends_with(&format!("bill not sent to GePG: {why}"))));
        let stored = crate::payments::bill::stored_bill(&p.store, 40)
            .unwrap()
            .unwrap();
        assert_eq!(stored.state, BillState::Rejected(vec![why.into()]));
        assert_eq!(p.metrics.without_sp_code.load(Ordering::Relaxed), 1);
        // Pools of that product are not topped up either: no bill is queued.
        assert!(!billable(&p, &p.store.product(1).unwrap().unwrap()));
        assert_eq!(p.metrics.without_sp_code.load(Ordering::Relaxed), 2);
        assert_eq!(
            p.sp_code_missing.reasons().len(),
            1,
            "one entry per product"
        );
    }
}
