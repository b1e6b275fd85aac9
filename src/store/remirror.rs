//! Queueing the whole store for the mirror, once: how a world loaded without mirror writes
//! (the demo seed is a bulk load) reaches an empty central database.
//!
//! Owns: [`Store::queue_all_for_mirror`]. Must never: run against a store whose entities
//! already exist centrally (the writer would insert them a second time: the caller checks
//! the central database is empty), or hold the whole store in memory.
//!
//! Entities are queued in dependency order (locations, products, officers, families,
//! insurees, policies, member rows, premiums, payments, control numbers) in transactions of
//! [`CHUNK`], so the mirror writer meets a row's references before the row, and a crash
//! half-way leaves a prefix queued (the caller's marker says whether it finished).

use super::tx::Record;
use super::{Store, StoreError, TxResult};
use crate::domain::{
    ControlNumber, Family, Insuree, InsureePolicy, Location, Officer, Payment, Policy, Premium,
    Product,
};

/// Entities per transaction.
const CHUNK: usize = 256;

impl Store {
    /// Puts every entity again through a mirroring write, so each is queued for the central
    /// database once. Returns how many were queued.
    pub fn queue_all_for_mirror(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        n += self.requeue::<Location>()?;
        n += self.requeue::<Product>()?;
        n += self.requeue::<Officer>()?;
        n += self.requeue::<Family>()?;
        n += self.requeue::<Insuree>()?;
        n += self.requeue::<Policy>()?;
        n += self.requeue::<InsureePolicy>()?;
        n += self.requeue::<Premium>()?;
        n += self.requeue::<Payment>()?;
        n += self.requeue::<ControlNumber>()?;
        self.flush()?;
        Ok(n)
    }

    fn requeue<R: Record + Clone>(&self) -> Result<u64, StoreError> {
        let mut chunk: Vec<R> = Vec::with_capacity(CHUNK);
        let mut n = 0u64;
        let mut send = |chunk: &mut Vec<R>| -> Result<(), StoreError> {
            self.write(|tx| -> TxResult<()> {
                for r in chunk.iter() {
                    tx.put_mirrored(r)?;
                }
                Ok(())
            })
            .map_err(StoreError::from)?;
            n += chunk.len() as u64;
            chunk.clear();
            Ok(())
        };
        self.for_each_record::<R, _>(|r| {
            chunk.push(r);
            if chunk.len() == CHUNK {
                send(&mut chunk)?;
            }
            Ok(true)
        })?;
        if !chunk.is_empty() {
            send(&mut chunk)?;
        }
        Ok(n)
    }
}
