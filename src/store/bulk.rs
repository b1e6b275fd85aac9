//! Bulk loading (demo and scale data): records and their indexes written without
//! transactions, with the same index rules as [`super::WriteTx`] (both go through
//! `put_record`, over the `Sink` trait).
//!
//! Writes are buffered per tree (reads see the buffer, so a record put twice in one load
//! still moves its index entries) and applied in key order every [`BulkWriter::CHUNK_OPS`]
//! operations, then flushed once at the end. A bulk load is **not atomic**: if it fails or
//! the process dies, the chunks already applied stay. Run it on a store nobody else is
//! writing to.

use std::collections::HashMap;

use sled::IVec;

use super::keys::TreeId;
use super::tx::{put_record, Record, Sink, Source};
use super::{Store, StoreError};
use crate::domain::{
    ControlNumber, Family, Id, Insuree, InsureePolicy, Location, Officer, Payment, Policy, Premium,
    Product,
};

/// Buffers writes per tree; reads see buffered writes first, then the trees.
pub struct BulkWriter<'a> {
    store: &'a Store,
    pending: Vec<HashMap<IVec, Option<IVec>>>,
    pending_ops: usize,
    chunk_ops: usize,
    records: u64,
}

impl Source for BulkWriter<'_> {
    type Error = StoreError;
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        match self.pending[tree.index()].get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.store.read(tree)?.get(key)?),
        }
    }
}

impl Sink for BulkWriter<'_> {
    fn insert(&mut self, tree: TreeId, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.pending[tree.index()].insert(key.into(), Some(value.into()));
        self.pending_ops += 1;
        Ok(())
    }
    fn remove(&mut self, tree: TreeId, key: &[u8]) -> Result<(), StoreError> {
        self.pending[tree.index()].insert(key.into(), None);
        self.pending_ops += 1;
        Ok(())
    }
}

macro_rules! bulk_put {
    ($($put:ident: $ty:ty),* $(,)?) => {
        $(
            pub fn $put(&mut self, record: &$ty) -> Result<(), StoreError> {
                self.put(record)
            }
        )*
    };
}

impl<'a> BulkWriter<'a> {
    /// Buffered operations after which the buffers are applied to the trees.
    pub const CHUNK_OPS: usize = 200_000;

    fn new(store: &'a Store) -> BulkWriter<'a> {
        BulkWriter {
            store,
            pending: TreeId::ALL.iter().map(|_| HashMap::new()).collect(),
            pending_ops: 0,
            chunk_ops: Self::CHUNK_OPS,
            records: 0,
        }
    }

    /// A fresh id (never 0), as [`Store::next_id`].
    pub fn next_id(&self) -> Result<Id, StoreError> {
        self.store.next_id()
    }

    /// Puts an aux value with the load (a bulk load's bookkeeping, e.g. the mirror's id
    /// map): buffered and applied in key order with the records.
    pub fn aux_put(&mut self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let k = super::keys::aux_key(namespace, key)?;
        self.insert(TreeId::Aux, &k, value)?;
        if self.pending_ops >= self.chunk_ops {
            self.apply()?;
        }
        Ok(())
    }

    /// Records put so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    bulk_put!(
        put_location: Location,
        put_product: Product,
        put_officer: Officer,
        put_family: Family,
        put_insuree: Insuree,
        put_policy: Policy,
        put_insuree_policy: InsureePolicy,
        put_premium: Premium,
        put_payment: Payment,
        put_control_number: ControlNumber,
    );

    fn put<R: Record>(&mut self, record: &R) -> Result<(), StoreError> {
        put_record(self, record)?;
        self.records += 1;
        if self.pending_ops >= self.chunk_ops {
            self.apply()?;
        }
        Ok(())
    }

    /// Applies the buffered writes, each tree's in key order. (A sled `Batch` applies in
    /// hash order, which splits nodes all over the tree: measured 2.3× slower here. Writing
    /// trees from parallel threads was slower still: sled's log is the bottleneck.)
    fn apply(&mut self) -> Result<(), StoreError> {
        for t in TreeId::ALL {
            let writes = std::mem::take(&mut self.pending[t.index()]);
            if writes.is_empty() {
                continue;
            }
            let mut writes: Vec<_> = writes.into_iter().collect();
            writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let tree = self.store.tree(t);
            for (k, v) in writes {
                match v {
                    Some(v) => tree.insert(k, v)?,
                    None => tree.remove(k)?,
                };
            }
        }
        self.pending_ops = 0;
        Ok(())
    }
}

impl Store {
    /// Runs a bulk load: `f` puts records through the [`BulkWriter`]; then the rest is
    /// applied and the database flushed, whatever `f` returned (so `f` may return its own
    /// `Result`). Store failures while putting surface through `f`'s own error; a put that
    /// failed wrote nothing, but chunks already applied stay (see the module doc).
    pub fn bulk<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut BulkWriter<'_>) -> T,
    {
        self.read(TreeId::Meta)?; // refuses to run inside a transaction closure
        let mut w = BulkWriter::new(self);
        let out = f(&mut w);
        w.apply()?;
        self.flush()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::super::fixtures::*;
    use super::super::{TxResult, WriteError};
    use super::*;

    fn load(w: &mut BulkWriter<'_>, families: u64) -> Result<(), StoreError> {
        for f in 0..families {
            let fam = 1000 + f * 10;
            let tel = format!("07541{f:05}");
            w.put_family(&family(fam, fam + 1))?;
            w.put_insuree(&insuree(fam + 1, fam, 4_000_000 + f as u32 * 2, Some(&tel)))?;
            w.put_insuree(&insuree(fam + 2, fam, 4_000_001 + f as u32 * 2, None))?;
            w.put_policy(&policy(fam + 3, fam))?;
            w.put_insuree_policy(&insuree_policy(fam + 4, fam + 1, fam + 3))?;
            w.put_premium(&premium(fam + 5, fam + 3))?;
        }
        Ok(())
    }

    #[test]
    fn bulk_loads_records_and_the_same_indexes_as_transactions() {
        let bulk_store = Store::open_temporary().unwrap();
        let records = bulk_store
            .bulk(|w| {
                w.chunk_ops = 7; // several chunks, each splitting families
                load(w, 20)?;
                Ok::<_, StoreError>(w.records())
            })
            .unwrap()
            .unwrap();
        assert_eq!(records, 120);

        let tx_store = Store::open_temporary().unwrap();
        for f in 0..20u64 {
            let fam = 1000 + f * 10;
            let tel = format!("07541{f:05}");
            // Bulk rows come from the central database, so compare with the non-mirroring path.
            let r: Result<(), WriteError<Infallible>> =
                tx_store.write_from_central(|tx| -> TxResult<()> {
                    tx.put_family(&family(fam, fam + 1))?;
                    tx.put_insuree(&insuree(fam + 1, fam, 4_000_000 + f as u32 * 2, Some(&tel)))?;
                    tx.put_insuree(&insuree(fam + 2, fam, 4_000_001 + f as u32 * 2, None))?;
                    tx.put_policy(&policy(fam + 3, fam))?;
                    tx.put_insuree_policy(&insuree_policy(fam + 4, fam + 1, fam + 3))?;
                    tx.put_premium(&premium(fam + 5, fam + 3))?;
                    Ok(())
                });
            r.unwrap();
        }
        for t in TreeId::ALL {
            let a: Vec<_> = bulk_store.tree(t).iter().collect::<Result<_, _>>().unwrap();
            let b: Vec<_> = tx_store.tree(t).iter().collect::<Result<_, _>>().unwrap();
            assert_eq!(a, b, "tree {} differs", t.name());
        }
        let head = bulk_store
            .insuree_by_chfid(chfid(4_000_006))
            .unwrap()
            .unwrap();
        assert_eq!(head.id, 1031);
        assert_eq!(bulk_store.family_members(1030).unwrap().len(), 2);
        let fams = bulk_store.families_by_phone(&phone("0754100003")).unwrap();
        assert_eq!(fams.iter().map(|f| f.id).collect::<Vec<_>>(), vec![1030]);
    }

    #[test]
    fn a_bulk_update_moves_index_entries_even_within_one_chunk() {
        let store = Store::open_temporary().unwrap();
        store
            .bulk(|w| -> Result<(), StoreError> {
                w.put_officer(&officer(3, "EO0001", Some("0754000001")))?;
                w.put_officer(&officer(3, "EO0001", Some("0754000002")))?;
                Ok(())
            })
            .unwrap()
            .unwrap();
        assert_eq!(store.officer_by_phone(&phone("0754000001")).unwrap(), None);
        let o = store.officer_by_phone(&phone("0754000002")).unwrap();
        assert_eq!(o.map(|o| o.id), Some(3));
        store
            .bulk(|w| w.put_officer(&officer(3, "EO0001", Some("0754000003"))))
            .unwrap()
            .unwrap();
        assert_eq!(store.officer_by_phone(&phone("0754000002")).unwrap(), None);
        assert_eq!(store.tree(TreeId::IdxOfficerPhone).len(), 1);
    }

    #[test]
    fn a_duplicate_in_a_bulk_load_is_refused_and_that_put_writes_nothing() {
        let store = Store::open_temporary().unwrap();
        let r = store
            .bulk(|w| -> Result<(), StoreError> {
                w.put_insuree(&insuree(11, 10, 1_000_001, None))?;
                w.put_insuree(&insuree(12, 20, 1_000_001, None))?;
                Ok(())
            })
            .unwrap();
        assert!(matches!(
            r,
            Err(StoreError::Duplicate {
                index: "idx_chfid",
                existing: 11,
                id: 12
            })
        ));
        assert_eq!(store.insuree(12).unwrap(), None);
        assert!(store.family_members(20).unwrap().is_empty());
        assert_eq!(store.insuree(11).unwrap().map(|i| i.family), Some(10));
    }
}
