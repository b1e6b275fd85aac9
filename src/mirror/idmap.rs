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

/// Records both directions with a bulk load (see [`LocalIds::deferred`]).
pub fn put_bulk(
    b: &mut crate::store::BulkWriter<'_>,
    kind: &str,
    local: u64,
    central: i64,
) -> Result<(), StoreError> {
    b.aux_put(NS, &key(kind, local), &central.to_be_bytes())?;
    b.aux_put(NS_REV, &key(kind, central), &(local as i64).to_be_bytes())
}

/// A mapping allocated but not written yet: (kind, local id, central id).
pub type NewMapping = (&'static str, Id, i64);

/// Entries kept in [`LocalIds`]' cache.
const CACHE_CAP: usize = 1_000_000;

/// Allocates local ids for central rows, remembering them in the id map.
pub struct LocalIds<'a> {
    store: &'a Store,
    cache: HashMap<(&'static str, i64), Id>,
    /// Deferred mode: new mappings not written yet (they stay in the cache until taken).
    unwritten: Option<Vec<NewMapping>>,
}

impl<'a> LocalIds<'a> {
    /// Writes each new mapping at once.
    pub fn new(store: &'a Store) -> LocalIds<'a> {
        LocalIds {
            store,
            cache: HashMap::new(),
            unwritten: None,
        }
    }

    /// Keeps new mappings for [`LocalIds::take_new`], for the caller to write with its bulk
    /// load (the import: in key order with the records, measured the larger half of its
    /// time when written one by one).
    pub fn deferred(store: &'a Store) -> LocalIds<'a> {
        LocalIds {
            unwritten: Some(Vec::new()),
            ..LocalIds::new(store)
        }
    }

    /// The mappings allocated since the last call, to be written now ([`put_bulk`]).
    pub fn take_new(&mut self) -> Vec<NewMapping> {
        self.unwritten
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The local id of central row `central` of `kind`, allocated on first sight.
    pub fn get(&mut self, kind: &'static str, central: i64) -> Result<Id, StoreError> {
        if let Some(id) = self.cache.get(&(kind, central)) {
            return Ok(*id);
        }
        // Bounded: a million-family import maps ~10 million ids; past the cap the id map in
        // the store answers (a point read) until the cache warms up again.
        // A mapping not written yet lives only here: the cache is cleared only when every
        // mapping is written.
        if self.cache.len() >= CACHE_CAP && self.unwritten.as_ref().is_none_or(Vec::is_empty) {
            self.cache.clear();
        }
        let id = match local(self.store, kind, central)? {
            Some(id) => id,
            None => {
                let id = self.store.next_id()?;
                match &mut self.unwritten {
                    Some(v) => v.push((kind, id, central)),
                    None => put(self.store, kind, id, central)?,
                }
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

    #[test]
    fn deferred_mappings_are_remembered_until_written_with_a_bulk_load() {
        let s = Store::open_temporary().unwrap();
        let mut ids = LocalIds::deferred(&s);
        let a = ids.get("family", 7).unwrap();
        assert_eq!(
            ids.get("family", 7).unwrap(),
            a,
            "remembered before it is written"
        );
        assert_eq!(local(&s, "family", 7).unwrap(), None, "not written yet");
        let new = ids.take_new();
        assert_eq!(new, vec![("family", a, 7)]);
        s.bulk(|b| new.iter().try_for_each(|(k, l, c)| put_bulk(b, k, *l, *c)))
            .unwrap()
            .unwrap();
        assert_eq!(local(&s, "family", 7).unwrap(), Some(a));
        assert_eq!(central(&s, "family", a).unwrap(), Some(7));
        assert!(ids.take_new().is_empty());
    }
}
