//! The `aux` tree: byte values that one module owns under its own namespace (USSD sessions
//! and hop replies, SMPP message tracking, job watermarks...).
//!
//! Owns: namespaced get/put/remove/scan outside transactions. Inside a business transaction,
//! use [`super::WriteTx::aux_get`] and friends so the module's state commits with the write.
//! Must never: hold entity records (they have typed trees and indexes), or let one namespace
//! read another's keys.
//!
//! Plain puts here are not flushed by themselves; await [`super::Store::flushed`] when a
//! value must survive a crash before something is acknowledged.

use super::keys::{aux_key, TreeId};
use super::{outside_tx, Store, StoreError};

/// A key (without its namespace) and its value.
pub type AuxEntry = (Vec<u8>, Vec<u8>);

impl Store {
    pub fn aux_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        outside_tx()?;
        let k = aux_key(namespace, key)?;
        Ok(self.tree(TreeId::Aux).get(k)?.map(|v| v.to_vec()))
    }

    pub fn aux_put(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        outside_tx()?;
        self.admit_write()?;
        let k = aux_key(namespace, key)?;
        self.tree(TreeId::Aux).insert(k, value)?;
        Ok(())
    }

    /// Removes a key; returns whether it was there.
    pub fn aux_remove(&self, namespace: &str, key: &[u8]) -> Result<bool, StoreError> {
        outside_tx()?;
        self.admit_write()?;
        let k = aux_key(namespace, key)?;
        Ok(self.tree(TreeId::Aux).remove(k)?.is_some())
    }

    /// Atomically replaces `old` (None = absent) with `new` (None = remove). `Ok(false)` if
    /// the current value was not `old`.
    pub fn aux_compare_and_swap(
        &self,
        namespace: &str,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        outside_tx()?;
        self.admit_write()?;
        let k = aux_key(namespace, key)?;
        Ok(self
            .tree(TreeId::Aux)
            .compare_and_swap(k, old, new)?
            .is_ok())
    }

    /// Every `(key, value)` of `namespace` whose key starts with `prefix`, in key order; keys
    /// are returned without the namespace.
    pub fn aux_scan(&self, namespace: &str, prefix: &[u8]) -> Result<Vec<AuxEntry>, StoreError> {
        outside_tx()?;
        let ns_len = aux_key(namespace, &[])?.len();
        let start = aux_key(namespace, prefix)?;
        self.tree(TreeId::Aux)
            .scan_prefix(start)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k[ns_len..].to_vec(), v.to_vec()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, TxResult};

    #[test]
    fn namespaces_do_not_see_each_other() {
        let store = Store::open_temporary().unwrap();
        store.aux_put("ussd.session", b"s1", b"a").unwrap();
        store.aux_put("ussd.session", b"s2", b"b").unwrap();
        store.aux_put("ussd.sessio", b"ns1", b"x").unwrap();
        let all = store.aux_scan("ussd.session", b"").unwrap();
        assert_eq!(
            all,
            vec![
                (b"s1".to_vec(), b"a".to_vec()),
                (b"s2".to_vec(), b"b".to_vec())
            ]
        );
        assert_eq!(store.aux_scan("ussd.sessio", b"").unwrap().len(), 1);
        assert_eq!(
            store.aux_get("ussd.session", b"s1").unwrap(),
            Some(b"a".to_vec())
        );
        assert!(store.aux_remove("ussd.session", b"s1").unwrap());
        assert!(!store.aux_remove("ussd.session", b"s1").unwrap());
        assert!(store.aux_put("", b"k", b"v").is_err());
    }

    #[test]
    fn transactional_aux_commits_or_vanishes_with_the_write() {
        let store = Store::open_temporary().unwrap();
        store
            .write(|tx| -> TxResult<()> {
                tx.aux_put("journal", b"renew:1", b"done")?;
                Ok(())
            })
            .unwrap();
        let aborted = store.write(|tx| -> TxResult<(), &str> {
            tx.aux_put("journal", b"renew:2", b"done")?;
            Err(crate::store::Abort::User("no"))
        });
        assert!(aborted.is_err());
        assert_eq!(
            store.aux_get("journal", b"renew:1").unwrap(),
            Some(b"done".to_vec())
        );
        assert_eq!(store.aux_get("journal", b"renew:2").unwrap(), None);
        assert!(store
            .aux_compare_and_swap("journal", b"renew:1", Some(b"done"), Some(b"x"))
            .unwrap());
        assert!(!store
            .aux_compare_and_swap("journal", b"renew:1", Some(b"done"), None)
            .unwrap());
    }
}
