//! The family → payment index: [`Store::payments_of_family`], over `idx_chfid_payments`
//! (a payment under each CHFID its lines name), and the one-time backfill of that index for
//! stores written before it existed.
//!
//! Owns: the reader and the backfill. The entries themselves are written by `put_record`
//! with every payment (see `tx.rs`), so every writer indexes in the payment's own
//! transaction. Must never: be written by hand outside `put_record`.

use crate::domain::{Id, Payment};

use super::keys::{self, TreeId};
use super::tx::decode_in;
use super::{Store, StoreError};

/// Meta key set once the index holds every payment stored before it existed.
const BACKFILLED_KEY: &[u8] = b"idx_chfid_payments_backfilled";

impl Store {
    /// Payments whose lines name a member of `family`, by payment id.
    pub fn payments_of_family(&self, family: Id) -> Result<Vec<Payment>, StoreError> {
        let mut out: Vec<Payment> = Vec::new();
        for member in self.family_members(family)? {
            let prefix = keys::chfid_prefix(&member.chfid);
            out.extend(self.by_prefix::<Payment>(TreeId::IdxChfidPayments, &prefix)?);
        }
        out.sort_by_key(|p| p.id);
        out.dedup_by_key(|p| p.id);
        Ok(out)
    }
}

/// Indexes every stored payment once (a store from before the index); later opens only read
/// the marker. Re-running after a crash before the marker rewrites the same entries.
pub(crate) fn backfill(db: &sled::Db, trees: &[sled::Tree]) -> Result<(), StoreError> {
    let meta = &trees[TreeId::Meta.index()];
    if meta.get(BACKFILLED_KEY)?.is_some() {
        return Ok(());
    }
    let index = &trees[TreeId::IdxChfidPayments.index()];
    let mut written = 0usize;
    for v in trees[TreeId::Payments.index()].iter().values() {
        let p: Payment = decode_in(TreeId::Payments, &v?)?;
        for d in &p.details {
            index.insert(keys::chfid_payment_key(&d.chfid, p.id), &[])?;
            written += 1;
        }
    }
    // The entries are durable before the marker that says they exist.
    if written > 0 {
        db.flush()?;
    }
    meta.insert(BACKFILLED_KEY, &[])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{StoreOptions, TxResult};
    use super::*;
    use crate::domain::{PaymentDetail, PolicyStage};

    fn line(chfid: crate::domain::Chfid) -> PaymentDetail {
        PaymentDetail {
            product_code: "P".into(),
            chfid,
            stage: PolicyStage::New,
            policy: None,
            expected_amount: crate::domain::Money(100),
            amount: None,
            premium: None,
        }
    }

    #[test]
    fn a_payment_is_found_by_the_family_of_each_chfid_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut pay = payment(30, None);
        pay.details = vec![line(chfid(1)), line(chfid(2))];
        store
            .write(|tx| -> TxResult<()> {
                tx.put_family(&family(10, 11))?;
                tx.put_insuree(&insuree(11, 10, 1, None))?;
                tx.put_insuree(&insuree(12, 10, 2, None))?;
                tx.put_payment(&pay)?;
                Ok(())
            })
            .unwrap();
        let found = store.payments_of_family(10).unwrap();
        assert_eq!(found.iter().map(|p| p.id).collect::<Vec<_>>(), vec![30]);
        assert!(store.payments_of_family(99).unwrap().is_empty());
        // A store from before the index: entries gone, marker gone; reopening backfills.
        store.tree(TreeId::IdxChfidPayments).clear().unwrap();
        store.tree(TreeId::Meta).remove(BACKFILLED_KEY).unwrap();
        assert!(store.payments_of_family(10).unwrap().is_empty());
        drop(store);
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.payments_of_family(10).unwrap().len(), 1);
    }

    #[test]
    fn a_bulk_load_indexes_a_payment_before_its_insurees() {
        let store = Store::open_temporary().unwrap();
        let mut pay = payment(30, None);
        pay.details = vec![line(chfid(1))];
        store
            .bulk(|b| -> Result<(), StoreError> {
                b.put_payment(&pay)?;
                b.put_family(&family(10, 11))?;
                b.put_insuree(&insuree(11, 10, 1, None))
            })
            .unwrap()
            .unwrap();
        assert_eq!(store.payments_of_family(10).unwrap(), vec![pay]);
    }
}
