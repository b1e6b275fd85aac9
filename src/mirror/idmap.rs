//! The local ↔ central id map, in the store's `aux` tree.
//!
//! Owns: `mirror.idmap` (`kind:local id` → central id) and `mirror.idrev`
//! (`kind:central id` → local id), both big-endian integers, and the allocation of local
//! ids for central rows ([`LocalIds`]).
//! Must never: guess a mapping; an id is mapped only after the central row exists (mirror)
//! or the local record was created from it (import, pull).

use std::collections::HashMap;

use crate::domain::Id;
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

/// Entries kept in [`LocalIds`]' cache.
const CACHE_CAP: usize = 1_000_000;

/// Allocates local ids for central rows, remembering them in the id map.
pub struct LocalIds<'a> {
    store: &'a Store,
    cache: HashMap<(&'static str, i64), Id>,
}

impl<'a> LocalIds<'a> {
    pub fn new(store: &'a Store) -> LocalIds<'a> {
        LocalIds {
            store,
            cache: HashMap::new(),
        }
    }

    /// The local id of central row `central` of `kind`, allocated on first sight.
    pub fn get(&mut self, kind: &'static str, central: i64) -> Result<Id, StoreError> {
        if let Some(id) = self.cache.get(&(kind, central)) {
            return Ok(*id);
        }
        // Bounded: a million-family import maps ~10 million ids; past the cap the id map in
        // the store answers (a point read) until the cache warms up again.
        if self.cache.len() >= CACHE_CAP {
            self.cache.clear();
        }
        let id = match local(self.store, kind, central)? {
            Some(id) => id,
            None => {
                let id = self.store.next_id()?;
                put(self.store, kind, id, central)?;
                id
            }
        };
        self.cache.insert((kind, central), id);
        Ok(id)
    }

    pub fn opt(
        &mut self,
        kind: &'static str,
        central: Option<i64>,
    ) -> Result<Option<Id>, StoreError> {
        central.map(|c| self.get(kind, c)).transpose()
    }
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
