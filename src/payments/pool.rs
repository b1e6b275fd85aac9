//! The pool of pre-requested control numbers, per product, so that a USSD renewal shows a
//! control number at once instead of waiting for GePG's asynchronous callback.
//!
//! Owns: a FIFO per product in `aux` [`POOL_NS`]: a head and a tail counter and one entry per
//! free number (sled transactions cannot iterate, so the queue is addressed by counters and
//! taken by point reads; two racing takers conflict and sled re-runs one of them, so a number
//! is never handed out twice), plus the count of pool bills still awaiting their number.
//! Must never: hand out a number for another amount than its bill's (GePG bills are exact).

use serde::{Deserialize, Serialize};

use super::POOL_NS;
use crate::domain::{Id, Money};
use crate::store::{codec, Store, StoreError, TxError, WriteTx};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolEntry {
    pub number: String,
    pub amount: Money,
}

fn key(product: Id, what: u8, seq: Option<u64>) -> Vec<u8> {
    let mut k = product.to_be_bytes().to_vec();
    k.push(what);
    if let Some(s) = seq {
        k.extend_from_slice(&s.to_be_bytes());
    }
    k
}

const HEAD: u8 = b'h';
const TAIL: u8 = b't';
const ENTRY: u8 = b'e';
const IN_FLIGHT: u8 = b'i';

fn read_u64(v: Option<Vec<u8>>) -> u64 {
    v.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

fn codec_err(e: codec::CodecError) -> TxError {
    TxError::from(StoreError::Codec {
        tree: "aux",
        source: e,
    })
}

/// Takes the oldest free number of `product` if its bill is for exactly `amount`.
pub fn take(tx: &mut WriteTx<'_>, product: Id, amount: Money) -> Result<Option<String>, TxError> {
    let head = read_u64(tx.aux_get(POOL_NS, &key(product, HEAD, None))?);
    let tail = read_u64(tx.aux_get(POOL_NS, &key(product, TAIL, None))?);
    if head >= tail {
        return Ok(None);
    }
    let ekey = key(product, ENTRY, Some(head));
    let Some(bytes) = tx.aux_get(POOL_NS, &ekey)? else {
        return Ok(None);
    };
    let entry: PoolEntry = codec::decode(&bytes).map_err(codec_err)?;
    if entry.amount != amount {
        return Ok(None);
    }
    tx.aux_remove(POOL_NS, &ekey)?;
    tx.aux_put(
        POOL_NS,
        &key(product, HEAD, None),
        &(head + 1).to_be_bytes(),
    )?;
    Ok(Some(entry.number))
}

/// Adds a free number to the pool of `product`.
pub fn push(tx: &mut WriteTx<'_>, product: Id, entry: &PoolEntry) -> Result<(), TxError> {
    let tail = read_u64(tx.aux_get(POOL_NS, &key(product, TAIL, None))?);
    let bytes = codec::encode(entry).map_err(codec_err)?;
    tx.aux_put(POOL_NS, &key(product, ENTRY, Some(tail)), &bytes)?;
    tx.aux_put(
        POOL_NS,
        &key(product, TAIL, None),
        &(tail + 1).to_be_bytes(),
    )
}

/// Adds `delta` to the pool bills of `product` awaiting a number (never below 0).
pub fn add_in_flight(tx: &mut WriteTx<'_>, product: Id, delta: i64) -> Result<(), TxError> {
    let k = key(product, IN_FLIGHT, None);
    let n = read_u64(tx.aux_get(POOL_NS, &k)?) as i64;
    let n = (n + delta).max(0) as u64;
    tx.aux_put(POOL_NS, &k, &n.to_be_bytes())
}

/// (free numbers, bills awaiting their number) of `product`.
pub fn level(store: &Store, product: Id) -> Result<(u64, u64), StoreError> {
    let get = |w| store.aux_get(POOL_NS, &key(product, w, None));
    let head = read_u64(get(HEAD)?);
    let tail = read_u64(get(TAIL)?);
    Ok((tail.saturating_sub(head), read_u64(get(IN_FLIGHT)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Abort, TxResult};
    use std::sync::{Arc, Barrier};

    fn entry(n: u32) -> PoolEntry {
        PoolEntry {
            number: format!("99100000{n:04}"),
            amount: Money::tzs(30_000),
        }
    }

    #[test]
    fn numbers_come_out_in_order_and_only_for_their_amount() {
        let store = Store::open_temporary().unwrap();
        store
            .write(|tx| -> TxResult<()> {
                push(tx, 7, &entry(1))?;
                push(tx, 7, &entry(2))?;
                add_in_flight(tx, 7, 3)?;
                add_in_flight(tx, 7, -1)?;
                Ok(())
            })
            .unwrap();
        assert_eq!(level(&store, 7).unwrap(), (2, 2));
        let took = |amount| {
            store
                .write(|tx| -> TxResult<Option<String>> { Ok(take(tx, 7, amount)?) })
                .unwrap()
        };
        assert_eq!(took(Money::tzs(25_000)), None, "another amount");
        assert_eq!(took(Money::tzs(30_000)), Some(entry(1).number));
        assert_eq!(took(Money::tzs(30_000)), Some(entry(2).number));
        assert_eq!(took(Money::tzs(30_000)), None, "empty");
        assert_eq!(level(&store, 7).unwrap(), (0, 2));
        assert_eq!(level(&store, 8).unwrap(), (0, 0));
        // An aborted take gives nothing away.
        store
            .write(|tx| -> TxResult<()> { Ok(push(tx, 7, &entry(3))?) })
            .unwrap();
        let r = store.write(|tx| -> TxResult<(), &str> {
            take(tx, 7, Money::tzs(30_000))?;
            Err(Abort::User("USSD session gone"))
        });
        assert!(r.is_err());
        assert_eq!(level(&store, 7).unwrap().0, 1);
    }

    #[test]
    fn racing_takers_never_get_the_same_number() {
        let store = Store::open_temporary().unwrap();
        store
            .write(|tx| -> TxResult<()> {
                for n in 0..20 {
                    push(tx, 1, &entry(n))?;
                }
                Ok(())
            })
            .unwrap();
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..4)
                        .filter_map(|_| {
                            store
                                .write(|tx| -> TxResult<Option<String>> {
                                    Ok(take(tx, 1, Money::tzs(30_000))?)
                                })
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut got: Vec<String> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(got.len(), 20, "32 requests for 20 numbers");
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 20, "no number handed out twice");
    }
}
