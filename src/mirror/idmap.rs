//! The local ↔ central id map, in the store's `aux` tree.
//!
//! Owns: `mirror.idmap` (`kind:local id` → central id) and `mirror.idrev`
//! (`kind:central id` → local id), both big-endian integers.
//! Must never: guess a mapping; an id is mapped only after the central row exists (mirror)
//! or the local record was created from it (import, pull).

use crate::store::{Store, StoreError};

pub const NS: &str = "mirror.idmap";
pub const NS_REV: &str = "mirror.idrev";

fn key(kind: &str, id: impl std::fmt::Display) -> Vec<u8> {
    format!("{kind}:{id}").into_bytes()
}

fn int(v: Option<Vec<u8>>) -> Option<i64> {
    v.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(i64::from_be_bytes)
}

/// The central id of a local record, if mapped.
pub fn central(store: &Store, kind: &str, local: u64) -> Result<Option<i64>, StoreError> {
    Ok(int(store.aux_get(NS, &key(kind, local))?))
}

/// The local id of a central row, if mapped.
pub fn local(store: &Store, kind: &str, central: i64) -> Result<Option<u64>, StoreError> {
    Ok(int(store.aux_get(NS_REV, &key(kind, central))?).map(|v| v as u64))
}

/// Records both directions.
pub fn put(store: &Store, kind: &str, local: u64, central: i64) -> Result<(), StoreError> {
    store.aux_put(NS, &key(kind, local), &central.to_be_bytes())?;
    store.aux_put(NS_REV, &key(kind, central), &(local as i64).to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways_per_kind() {
        let s = Store::open_temporary().unwrap();
        assert_eq!(central(&s, "family", 10).unwrap(), None);
        put(&s, "family", 10, 501).unwrap();
        assert_eq!(central(&s, "family", 10).unwrap(), Some(501));
        assert_eq!(local(&s, "family", 501).unwrap(), Some(10));
        assert_eq!(local(&s, "insuree", 501).unwrap(), None);
    }
}
