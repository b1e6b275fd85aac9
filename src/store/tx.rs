//! Business transactions ([`WriteTx`]) and the one place secondary indexes are maintained.
//!
//! Each record type says which index entries it implies (`Record::index_entries`);
//! `put_record` writes the record, removes the entries its previous version implied and
//! no longer does, and adds the new ones, through a `Sink`. The sink is a sled
//! transaction here and a bulk writer's buffers in [`super::bulk`], so both paths share
//! the rules.
//!
//! Unique indexes (CHFID, officer phone, codes, control numbers) are never stolen: putting a
//! record whose unique key already belongs to another record fails with
//! [`StoreError::Duplicate`], and an old entry is removed only while it still points to the
//! record being updated.
//!
//! **Mirror hook.** Every `WriteTx::put_*` also queues the record's new state on the outbox
//! topic [`MIRROR_TOPIC`] (a [`MirrorWrite`], key `kind:id:seq`) in the same transaction, so
//! no caller can forget to mirror a write; per-entity order is the outbox's FIFO order. It
//! also marks the entity as having an unmirrored write (aux [`MIRROR_PENDING_NS`]), which the
//! pull consults before applying a central change. Bulk loads and
//! [`super::Store::write_from_central`] do not queue: their rows come from (or must not go
//! to) the central database.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{TransactionalTree, UnabortableTransactionError};
use sled::IVec;

use super::codec::{decode, encode};
use super::keys::{self, TreeId};
use super::{outbox, StoreError};
use crate::domain::{
    Chfid, ControlNumber, Family, Id, Insuree, InsureePolicy, Location, Msisdn, Officer, Payment,
    Policy, Premium, Product,
};

/// A place to read key/values by tree: the store itself, a transaction, a bulk writer.
pub(crate) trait Source {
    type Error: From<StoreError>;
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<IVec>, Self::Error>;
}

/// A place to also write them: a sled transaction, or a bulk writer's buffers.
pub(crate) trait Sink: Source {
    fn insert(&mut self, tree: TreeId, key: &[u8], value: &[u8]) -> Result<(), Self::Error>;
    fn remove(&mut self, tree: TreeId, key: &[u8]) -> Result<(), Self::Error>;
}

/// One secondary index entry implied by a record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    tree: TreeId,
    key: Vec<u8>,
    /// Unique entries map the key to the record id; others carry the id in the key.
    unique: bool,
}

impl IndexEntry {
    fn unique(tree: TreeId, key: impl Into<Vec<u8>>) -> IndexEntry {
        IndexEntry {
            tree,
            key: key.into(),
            unique: true,
        }
    }
    fn many(tree: TreeId, key: impl Into<Vec<u8>>) -> IndexEntry {
        IndexEntry {
            tree,
            key: key.into(),
            unique: false,
        }
    }
}

/// The outbox topic the mirror to the central database consumes.
pub const MIRROR_TOPIC: &str = "mirror";

/// Aux namespace: `kind:id` → the seq of the entity's latest queued mirror write (BE u64).
/// The mirror removes it once that write is acknowledged.
pub const MIRROR_PENDING_NS: &str = "mirror.pending";

/// One queued mirror write: the record's state after a transaction, as the store encodes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MirrorWrite {
    /// [`Record::KIND`]: `family`, `insuree`, `policy`...
    pub kind: String,
    pub id: Id,
    /// The record, encoded by [`super::codec::encode`].
    pub record: Vec<u8>,
}

/// The aux key of an entity in [`MIRROR_PENDING_NS`].
pub fn mirror_entity_key(kind: &str, id: Id) -> Vec<u8> {
    format!("{kind}:{id}").into_bytes()
}

/// A stored entity: its tree, its id and the index entries it implies.
pub(crate) trait Record: Serialize + DeserializeOwned {
    const TREE: TreeId;
    /// The entity kind named in mirror writes.
    const KIND: &'static str;
    fn id(&self) -> Id;
    fn index_entries(&self) -> Vec<IndexEntry>;
}

macro_rules! record {
    ($ty:ty, $tree:ident, $kind:literal, |$r:ident| $entries:expr) => {
        impl Record for $ty {
            const TREE: TreeId = TreeId::$tree;
            const KIND: &'static str = $kind;
            fn id(&self) -> Id {
                self.id
            }
            fn index_entries(&self) -> Vec<IndexEntry> {
                let $r = self;
                $entries
            }
        }
    };
}

/// The entry of an optional unique key (a blank code or no control number: none).
fn unique_if(tree: TreeId, key: Option<Vec<u8>>) -> Vec<IndexEntry> {
    key.map(|k| IndexEntry::unique(tree, k))
        .into_iter()
        .collect()
}

record!(Location, Locations, "location", |r| unique_if(
    TreeId::IdxLocationCode,
    keys::code_key(&r.code)
));
record!(Product, Products, "product", |r| unique_if(
    TreeId::IdxProductCode,
    keys::code_key(&r.code)
));
record!(Officer, Officers, "officer", |r| {
    let mut v = unique_if(TreeId::IdxOfficerCode, keys::code_key(&r.code));
    if let Some(p) = &r.phone {
        v.push(IndexEntry::unique(
            TreeId::IdxOfficerPhone,
            keys::phone_key(p),
        ));
    }
    v
});
record!(Family, Families, "family", |_r| Vec::new());
record!(Insuree, Insurees, "insuree", |r| {
    let mut v = vec![
        IndexEntry::unique(TreeId::IdxChfid, keys::chfid_key(&r.chfid)),
        IndexEntry::many(TreeId::IdxFamilyMembers, keys::pair_key(r.family, r.id)),
    ];
    // The family-phone index follows the member flagged as head, so it derives from this
    // record alone (a bulk load or a transaction need not read the family).
    if let (true, Some(p)) = (r.is_head, &r.phone) {
        let key = keys::phone_family_key(p, r.family);
        v.push(IndexEntry::many(TreeId::IdxFamilyPhone, key));
    }
    v
});
record!(Policy, Policies, "policy", |r| {
    let key = keys::pair_key(r.family, r.id);
    vec![IndexEntry::many(TreeId::IdxFamilyPolicies, key)]
});
record!(InsureePolicy, InsureePolicies, "insuree_policy", |r| {
    let key = keys::pair_key(r.policy, r.id);
    vec![IndexEntry::many(TreeId::IdxPolicyInsureePolicies, key)]
});
record!(Premium, Premiums, "premium", |r| {
    let key = keys::pair_key(r.policy, r.id);
    vec![IndexEntry::many(TreeId::IdxPolicyPremiums, key)]
});
record!(Payment, Payments, "payment", |r| {
    let mut v = unique_if(
        TreeId::IdxPaymentControlNumber,
        r.control_number
            .as_deref()
            .and_then(keys::control_number_key),
    );
    // Keyed by the CHFIDs the lines name, not by family, so that the entry derives from the
    // payment alone: every writer (transaction, bulk load, pull, import) indexes without
    // reading the insurees, which a bulk load may not have written yet.
    for d in &r.details {
        let e = IndexEntry::many(
            TreeId::IdxChfidPayments,
            keys::chfid_payment_key(&d.chfid, r.id),
        );
        if !v.contains(&e) {
            v.push(e);
        }
    }
    v
});
record!(ControlNumber, ControlNumbers, "control_number", |r| {
    unique_if(
        TreeId::IdxControlNumber,
        keys::control_number_key(&r.number),
    )
});

pub(crate) fn decode_in<T: DeserializeOwned>(tree: TreeId, bytes: &[u8]) -> Result<T, StoreError> {
    decode(bytes).map_err(|source| StoreError::Codec {
        tree: tree.name(),
        source,
    })
}

pub(crate) fn encode_in<T: Serialize>(tree: TreeId, value: &T) -> Result<Vec<u8>, StoreError> {
    encode(value).map_err(|source| StoreError::Codec {
        tree: tree.name(),
        source,
    })
}

/// Reads a record by id.
pub(crate) fn get_record<S: Source, R: Record>(s: &S, id: Id) -> Result<Option<R>, S::Error> {
    match s.get(R::TREE, &keys::id_key(id))? {
        Some(bytes) => Ok(Some(decode_in(R::TREE, &bytes)?)),
        None => Ok(None),
    }
}

/// Reads the record a unique index entry points to.
pub(crate) fn get_unique<S: Source, R: Record>(
    s: &S,
    index: TreeId,
    key: &[u8],
) -> Result<Option<R>, S::Error> {
    let Some(v) = s.get(index, key)? else {
        return Ok(None);
    };
    let id = keys::id_value(&v, index)?;
    match get_record(s, id)? {
        Some(r) => Ok(Some(r)),
        None => Err(StoreError::Dangling {
            index: index.name(),
            id,
        }
        .into()),
    }
}

/// Writes a record and brings every index it implies up to date (see the module doc).
pub(crate) fn put_record<S: Sink, R: Record>(s: &mut S, record: &R) -> Result<(), S::Error> {
    let id = record.id();
    let id_bytes = keys::id_key(id);
    let new = record.index_entries();
    for e in new.iter().filter(|e| e.unique) {
        if let Some(v) = s.get(e.tree, &e.key)? {
            let existing = keys::id_value(&v, e.tree)?;
            if existing != id {
                return Err(StoreError::Duplicate {
                    index: e.tree.name(),
                    existing,
                    id,
                }
                .into());
            }
        }
    }
    let old: Option<R> = get_record(s, id)?;
    let old = old.map(|o| o.index_entries()).unwrap_or_default();
    for e in old.iter().filter(|e| !new.contains(e)) {
        let ours = !e.unique || s.get(e.tree, &e.key)?.is_some_and(|v| v == id_bytes);
        if ours {
            s.remove(e.tree, &e.key)?;
        }
    }
    s.insert(R::TREE, &id_bytes, &encode_in(R::TREE, record)?)?;
    for e in new.iter().filter(|e| !old.contains(e)) {
        let value: &[u8] = if e.unique { &id_bytes } else { &[] };
        s.insert(e.tree, &e.key, value)?;
    }
    Ok(())
}

/// A failure inside a transaction: a storage error, or sled asking to re-run the closure.
/// Propagate it with `?`; it becomes [`WriteError::Store`] (or a silent retry).
pub struct TxError(TxErrorKind);

enum TxErrorKind {
    Conflict,
    Store(StoreError),
}

impl fmt::Debug for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            TxErrorKind::Conflict => f.write_str("TxError(Conflict)"),
            TxErrorKind::Store(e) => write!(f, "TxError({e:?})"),
        }
    }
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            TxErrorKind::Conflict => f.write_str("transaction conflict (will be retried)"),
            TxErrorKind::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TxError {}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> TxError {
        TxError(TxErrorKind::Store(e))
    }
}

impl From<UnabortableTransactionError> for TxError {
    fn from(e: UnabortableTransactionError) -> TxError {
        match e {
            UnabortableTransactionError::Conflict => TxError(TxErrorKind::Conflict),
            UnabortableTransactionError::Storage(e) => TxError(TxErrorKind::Store(e.into())),
        }
    }
}

/// Why a transaction closure stopped: the caller's own reason, or a store failure.
#[derive(Debug)]
pub enum Abort<E> {
    /// Abort with a business error; nothing the closure wrote is kept.
    User(E),
    /// A store failure, usually propagated from a [`WriteTx`] method with `?`.
    Store(TxError),
}

impl<E> From<TxError> for Abort<E> {
    fn from(e: TxError) -> Abort<E> {
        Abort::Store(e)
    }
}

impl<E> From<StoreError> for Abort<E> {
    fn from(e: StoreError) -> Abort<E> {
        Abort::Store(e.into())
    }
}

/// The result type of a transaction closure. `E` defaults to "cannot abort".
pub type TxResult<T, E = std::convert::Infallible> = Result<T, Abort<E>>;

/// The outcome of [`super::Store::write`] when it does not commit.
#[derive(Debug)]
pub enum WriteError<E> {
    /// The closure aborted with this business error; nothing was written.
    Aborted(E),
    /// The store failed; nothing was written.
    Store(StoreError),
}

impl<E> From<StoreError> for WriteError<E> {
    fn from(e: StoreError) -> WriteError<E> {
        WriteError::Store(e)
    }
}

impl From<WriteError<std::convert::Infallible>> for StoreError {
    fn from(e: WriteError<std::convert::Infallible>) -> StoreError {
        match e {
            WriteError::Store(e) => e,
            WriteError::Aborted(never) => match never {},
        }
    }
}

impl<E: fmt::Display> fmt::Display for WriteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Aborted(e) => write!(f, "transaction aborted: {e}"),
            WriteError::Store(e) => write!(f, "store: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for WriteError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Aborted(e) => Some(e),
            WriteError::Store(e) => Some(e),
        }
    }
}

/// What the sled closure aborts with; split again in [`super::Store::write_at`].
pub(crate) enum Aborted<E> {
    User(E),
    Store(StoreError),
}

/// Maps a closure result to sled's, so that conflicts are retried and aborts carried out.
pub(crate) fn to_sled<T, E>(
    r: TxResult<T, E>,
) -> sled::transaction::ConflictableTransactionResult<T, Aborted<E>> {
    use sled::transaction::ConflictableTransactionError as C;
    match r {
        Ok(v) => Ok(v),
        Err(Abort::User(e)) => Err(C::Abort(Aborted::User(e))),
        Err(Abort::Store(TxError(TxErrorKind::Conflict))) => Err(C::Conflict),
        Err(Abort::Store(TxError(TxErrorKind::Store(e)))) => Err(C::Abort(Aborted::Store(e))),
    }
}

/// The sink over one transaction's view of every tree.
pub(crate) struct TxSink<'a> {
    trees: &'a [TransactionalTree],
}

impl Source for TxSink<'_> {
    type Error = TxError;
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<IVec>, TxError> {
        Ok(self.tree(tree)?.get(key)?)
    }
}

impl Sink for TxSink<'_> {
    fn insert(&mut self, tree: TreeId, key: &[u8], value: &[u8]) -> Result<(), TxError> {
        self.tree(tree)?.insert(key, value)?;
        Ok(())
    }
    fn remove(&mut self, tree: TreeId, key: &[u8]) -> Result<(), TxError> {
        self.tree(tree)?.remove(key)?;
        Ok(())
    }
}

impl TxSink<'_> {
    fn tree(&self, tree: TreeId) -> Result<&TransactionalTree, TxError> {
        self.trees
            .get(tree.index())
            .ok_or_else(|| StoreError::CorruptKey { tree: tree.name() }.into())
    }
}

/// One business transaction over every tree. Reads see the transaction's own writes.
///
/// The closure that receives it may be re-run by sled, so it must not have side effects
/// outside the transaction (no sends, no counters); allocate ids freely, waste is fine.
/// Inside it, use only this `WriteTx`: a `Store` read or write there would wait on sled's
/// global transaction lock held by this very thread, so it fails with
/// [`StoreError::InsideTransaction`] instead.
/// sled transactions cannot iterate, so prefix reads (`family_members`, …) are not offered
/// here; read them before the transaction and re-check what matters by key inside it.
pub struct WriteTx<'a> {
    sink: TxSink<'a>,
    now: DateTime<Utc>,
    /// Whether puts queue mirror writes (false when applying central rows).
    mirror: bool,
}

macro_rules! tx_entity {
    ($get:ident, $put:ident, $ty:ty) => {
        pub fn $get(&self, id: Id) -> Result<Option<$ty>, TxError> {
            get_record(&self.sink, id)
        }
        pub fn $put(&mut self, record: &$ty) -> Result<(), TxError> {
            put_record(&mut self.sink, record)?;
            self.queue_mirror(record)
        }
    };
}

impl<'a> WriteTx<'a> {
    pub(crate) fn new(
        trees: &'a [TransactionalTree],
        now: DateTime<Utc>,
        mirror: bool,
    ) -> WriteTx<'a> {
        WriteTx {
            sink: TxSink { trees },
            now,
            mirror,
        }
    }

    /// Puts any entity record (and queues its mirror write): for whole-store passes
    /// ([`super::remirror`]); business code uses the typed `put_*`.
    pub(crate) fn put_mirrored<R: Record>(&mut self, record: &R) -> Result<(), TxError> {
        put_record(&mut self.sink, record)?;
        self.queue_mirror(record)
    }

    /// Queues the record's new state for the central database (see the module doc).
    fn queue_mirror<R: Record>(&mut self, record: &R) -> Result<(), TxError> {
        if !self.mirror {
            return Ok(());
        }
        let id = record.id();
        let write = MirrorWrite {
            kind: R::KIND.to_string(),
            id,
            record: encode_in(R::TREE, record)?,
        };
        let payload = encode_in(TreeId::Outbox, &write)?;
        let seq = self.next_id()?;
        let key = format!("{}:{id}:{seq}", R::KIND);
        let now = self.now;
        let seq = outbox::push(&mut self.sink, MIRROR_TOPIC, &key, &payload, now, seq)?;
        let entity = mirror_entity_key(R::KIND, id);
        self.aux_put(MIRROR_PENDING_NS, &entity, &seq.to_be_bytes())
    }

    /// The time this write started (fixed across re-runs of the closure).
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// A fresh id (never 0), as [`super::Store::next_id`].
    pub fn next_id(&self) -> Result<Id, TxError> {
        let t = self.sink.tree(TreeId::Meta)?;
        Ok(t.generate_id().map_err(StoreError::from)? + 1)
    }

    tx_entity!(location, put_location, Location);
    tx_entity!(product, put_product, Product);
    tx_entity!(officer, put_officer, Officer);
    tx_entity!(family, put_family, Family);
    tx_entity!(insuree, put_insuree, Insuree);
    tx_entity!(policy, put_policy, Policy);
    tx_entity!(insuree_policy, put_insuree_policy, InsureePolicy);
    tx_entity!(premium, put_premium, Premium);
    tx_entity!(payment, put_payment, Payment);
    tx_entity!(control_number, put_control_number, ControlNumber);

    pub fn insuree_by_chfid(&self, chfid: Chfid) -> Result<Option<Insuree>, TxError> {
        get_unique(&self.sink, TreeId::IdxChfid, keys::chfid_key(&chfid))
    }

    pub fn chfid_taken(&self, chfid: Chfid) -> Result<bool, TxError> {
        Ok(self
            .sink
            .get(TreeId::IdxChfid, keys::chfid_key(&chfid))?
            .is_some())
    }

    pub fn officer_by_phone(&self, phone: &Msisdn) -> Result<Option<Officer>, TxError> {
        get_unique(&self.sink, TreeId::IdxOfficerPhone, keys::phone_key(phone))
    }

    pub fn officer_by_code(&self, code: &str) -> Result<Option<Officer>, TxError> {
        self.by_code(TreeId::IdxOfficerCode, code)
    }

    pub fn product_by_code(&self, code: &str) -> Result<Option<Product>, TxError> {
        self.by_code(TreeId::IdxProductCode, code)
    }

    pub fn location_by_code(&self, code: &str) -> Result<Option<Location>, TxError> {
        self.by_code(TreeId::IdxLocationCode, code)
    }

    pub fn payment_by_control_number(&self, number: &str) -> Result<Option<Payment>, TxError> {
        match keys::control_number_key(number) {
            Some(k) => get_unique(&self.sink, TreeId::IdxPaymentControlNumber, &k),
            None => Ok(None),
        }
    }

    pub fn control_number_by_number(&self, number: &str) -> Result<Option<ControlNumber>, TxError> {
        match keys::control_number_key(number) {
            Some(k) => get_unique(&self.sink, TreeId::IdxControlNumber, &k),
            None => Ok(None),
        }
    }

    fn by_code<R: Record>(&self, index: TreeId, code: &str) -> Result<Option<R>, TxError> {
        match keys::code_key(code) {
            Some(k) => get_unique(&self.sink, index, &k),
            None => Ok(None),
        }
    }

    /// Queues `payload` on `topic`, committed with the rest of this transaction. If the
    /// `(topic, idempotency_key)` pair was ever pushed (pending, delivered or dead), this is
    /// a no-op returning the first push's sequence number.
    pub fn outbox_push(
        &mut self,
        topic: &str,
        idempotency_key: &str,
        payload: &[u8],
    ) -> Result<u64, TxError> {
        let seq = self.next_id()?;
        let now = self.now;
        outbox::push(&mut self.sink, topic, idempotency_key, payload, now, seq)
    }

    /// Reads a value its owner module keeps in the `aux` tree (see [`super::aux`]).
    pub fn aux_get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        let k = keys::aux_key(namespace, key)?;
        Ok(self.sink.get(TreeId::Aux, &k)?.map(|v| v.to_vec()))
    }

    /// Writes an `aux` value, committed with the rest of this transaction.
    pub fn aux_put(&mut self, namespace: &str, key: &[u8], value: &[u8]) -> Result<(), TxError> {
        let k = keys::aux_key(namespace, key)?;
        self.sink.insert(TreeId::Aux, &k, value)
    }

    pub fn aux_remove(&mut self, namespace: &str, key: &[u8]) -> Result<(), TxError> {
        let k = keys::aux_key(namespace, key)?;
        self.sink.remove(TreeId::Aux, &k)
    }

    pub(crate) fn sink(&mut self) -> &mut TxSink<'a> {
        &mut self.sink
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Barrier};

    use super::super::fixtures::*;
    use super::super::{Store, StoreError, WriteError};
    use super::*;

    fn put<F: Fn(&mut WriteTx<'_>) -> Result<(), TxError>>(store: &Store, f: F) {
        let r: Result<(), WriteError<Infallible>> = store.write(|tx| Ok(f(tx)?));
        r.unwrap();
    }

    #[test]
    fn updating_an_officer_moves_its_phone_and_code_entries() {
        let store = Store::open_temporary().unwrap();
        put(&store, |tx| {
            tx.put_officer(&officer(3, "EO0001", Some("0754000001")))
        });
        put(&store, |tx| {
            tx.put_officer(&officer(3, "EO0009", Some("0754000009")))
        });
        assert_eq!(store.officer_by_phone(&phone("0754000001")).unwrap(), None);
        assert_eq!(store.officer_by_code("EO0001").unwrap(), None);
        let by_phone = store.officer_by_phone(&phone("0754000009")).unwrap();
        assert_eq!(by_phone.map(|o| o.code), Some("EO0009".to_string()));
        // Dropping the phone drops the entry.
        put(&store, |tx| tx.put_officer(&officer(3, "EO0009", None)));
        assert_eq!(store.officer_by_phone(&phone("0754000009")).unwrap(), None);
        assert_eq!(store.tree(TreeId::IdxOfficerPhone).len(), 0);
        assert_eq!(store.tree(TreeId::IdxOfficerCode).len(), 1);
    }

    #[test]
    fn updating_an_insuree_moves_its_chfid_family_and_head_phone_entries() {
        let store = Store::open_temporary().unwrap();
        put(&store, |tx| {
            tx.put_family(&family(10, 11))?;
            tx.put_insuree(&insuree(11, 10, 1_000_001, Some("0754100001")))
        });
        // New CHFID, another family, a new phone.
        put(&store, |tx| {
            tx.put_insuree(&insuree(11, 20, 1_000_002, Some("0754100002")))
        });
        assert!(!store.chfid_taken(chfid(1_000_001)).unwrap());
        assert!(store.chfid_taken(chfid(1_000_002)).unwrap());
        assert!(store.family_members(10).unwrap().is_empty());
        assert_eq!(store.family_members(20).unwrap().len(), 1);
        assert_eq!(store.tree(TreeId::IdxFamilyPhone).len(), 1);
        assert!(store
            .families_by_phone(&phone("0754100001"))
            .unwrap()
            .is_empty());
        // No longer the head: the family-phone entry goes.
        put(&store, |tx| {
            let mut i = tx.insuree(11)?.unwrap();
            i.is_head = false;
            tx.put_insuree(&i)
        });
        assert_eq!(store.tree(TreeId::IdxFamilyPhone).len(), 0);
    }

    #[test]
    fn an_aborted_transaction_leaves_no_record_index_or_outbox_entry() {
        let store = Store::open_temporary().unwrap();
        let r: Result<(), WriteError<&str>> = store.write(|tx| {
            tx.put_family(&family(10, 11))?;
            tx.put_insuree(&insuree(11, 10, 1_000_001, Some("0754100001")))?;
            tx.put_officer(&officer(3, "EO0001", Some("0754000001")))?;
            tx.outbox_push("sms", "welcome-10", b"Karibu")?;
            Err(Abort::User("premium too small"))
        });
        assert!(matches!(r, Err(WriteError::Aborted("premium too small"))));
        for t in TreeId::ALL.into_iter().filter(|t| *t != TreeId::Meta) {
            assert_eq!(store.tree(t).len(), 0, "{} is not empty", t.name());
        }
        assert_eq!(store.pending_count("sms").unwrap(), 0);
    }

    #[test]
    fn a_unique_key_of_another_record_is_refused_and_nothing_is_written() {
        let store = Store::open_temporary().unwrap();
        put(&store, |tx| {
            tx.put_insuree(&insuree(11, 10, 1_000_001, None))?;
            tx.put_officer(&officer(3, "EO0001", Some("0754000001")))
        });
        let r: Result<(), WriteError<Infallible>> = store.write(|tx| {
            tx.put_family(&family(20, 21))?;
            tx.put_insuree(&insuree(21, 20, 1_000_001, None))?;
            Ok(())
        });
        assert!(matches!(
            r,
            Err(WriteError::Store(StoreError::Duplicate {
                index: "idx_chfid",
                existing: 11,
                id: 21
            }))
        ));
        assert_eq!(store.family(20).unwrap(), None);
        assert_eq!(store.insuree(21).unwrap(), None);
        // The officer code is unique case-insensitively, as in openIMIS.
        let r: Result<(), WriteError<Infallible>> =
            store.write(|tx| Ok(tx.put_officer(&officer(4, "eo0001", None))?));
        assert!(matches!(
            r,
            Err(WriteError::Store(StoreError::Duplicate { .. }))
        ));
        // Once the first officer lets go of its phone, another may take it.
        put(&store, |tx| tx.put_officer(&officer(3, "EO0001", None)));
        put(&store, |tx| {
            tx.put_officer(&officer(4, "EO0002", Some("0754000001")))
        });
        let o = store.officer_by_phone(&phone("0754000001")).unwrap();
        assert_eq!(o.map(|o| o.id), Some(4));
    }

    #[test]
    fn store_calls_inside_a_transaction_closure_fail_instead_of_deadlocking() {
        let store = Store::open_temporary().unwrap();
        put(&store, |tx| tx.put_family(&family(10, 11)));
        let r: Result<(), WriteError<StoreError>> = store.write(|_tx| {
            let read = store.family(10);
            assert!(
                matches!(read, Err(StoreError::InsideTransaction)),
                "{read:?}"
            );
            let nested: Result<(), WriteError<Infallible>> = store.write(|_| Ok(()));
            assert!(matches!(
                nested,
                Err(WriteError::Store(StoreError::InsideTransaction))
            ));
            Ok(())
        });
        r.unwrap();
        // Outside again, reads work.
        assert!(store.family(10).unwrap().is_some());
    }

    #[test]
    fn every_put_queues_its_mirror_write_in_order_unless_applying_central_rows() {
        let store = Store::open_temporary().unwrap();
        put(&store, |tx| {
            tx.put_family(&family(10, 11))?;
            tx.put_insuree(&insuree(11, 10, 1_000_001, Some("0754100001")))
        });
        put(&store, |tx| {
            let mut f = tx.family(10)?.unwrap();
            f.poverty = true;
            tx.put_family(&f)
        });
        let items = store
            .claim(
                MIRROR_TOPIC,
                10,
                std::time::Duration::from_secs(30),
                Utc::now(),
            )
            .unwrap();
        let writes: Vec<MirrorWrite> = items
            .iter()
            .map(|i| decode_in(TreeId::Outbox, &i.payload).unwrap())
            .collect();
        let kinds: Vec<_> = writes.iter().map(|w| (w.kind.as_str(), w.id)).collect();
        assert_eq!(kinds, [("family", 10), ("insuree", 11), ("family", 10)]);
        let last: Family = decode_in(TreeId::Families, &writes[2].record).unwrap();
        assert!(last.poverty, "the snapshot is the state after the write");
        // Unique key per write, and the entity is marked as having an unmirrored write.
        assert_ne!(items[0].key, items[2].key);
        assert!(items[2].key.starts_with("family:10:"));
        let pending = store
            .aux_get(MIRROR_PENDING_NS, &mirror_entity_key("family", 10))
            .unwrap();
        assert_eq!(pending, Some(items[2].seq.to_be_bytes().to_vec()));
        // Rows applied from the central database are not echoed back.
        let r: Result<(), WriteError<Infallible>> =
            store.write_from_central(|tx| Ok(tx.put_policy(&policy(20, 10))?));
        r.unwrap();
        assert!(store.policy(20).unwrap().is_some());
        assert_eq!(store.pending_count(MIRROR_TOPIC).unwrap(), 3);
        assert_eq!(
            store
                .aux_get(MIRROR_PENDING_NS, &mirror_entity_key("policy", 20))
                .unwrap(),
            None
        );
        // Nor are bulk loads.
        store
            .bulk(|b| b.put_policy(&policy(21, 10)))
            .unwrap()
            .unwrap();
        assert_eq!(store.pending_count(MIRROR_TOPIC).unwrap(), 3);
    }

    #[test]
    fn reads_inside_a_transaction_see_its_own_writes() {
        let store = Store::open_temporary().unwrap();
        let r: Result<_, WriteError<Infallible>> = store.write(|tx| {
            assert_eq!(tx.insuree_by_chfid(chfid(1_000_001))?, None);
            tx.put_insuree(&insuree(11, 10, 1_000_001, None))?;
            tx.put_product(&product(2, "CHF01"))?;
            Ok((
                tx.insuree_by_chfid(chfid(1_000_001))?.map(|i| i.id),
                tx.product_by_code("chf01")?.map(|p| p.id),
                tx.chfid_taken(chfid(1_000_001))?,
            ))
        });
        assert_eq!(r.unwrap(), (Some(11), Some(2), true));
    }

    #[test]
    fn the_chfid_check_inside_a_transaction_admits_exactly_one_of_racing_enrolments() {
        let store = Store::open_temporary().unwrap();
        let wanted = chfid(1_000_001);
        let n = 8;
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n as u64)
            .map(|i| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.write(|tx| {
                        if tx.chfid_taken(wanted)? {
                            return Err(Abort::User("CHFID already used"));
                        }
                        tx.put_family(&family(100 + i, 200 + i))?;
                        tx.put_insuree(&insuree(200 + i, 100 + i, 1_000_001, None))?;
                        Ok(200 + i)
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let losers = results
            .iter()
            .filter(|r| matches!(r, Err(WriteError::Aborted("CHFID already used"))))
            .count();
        assert_eq!(losers, n - 1);
        let owner = store.insuree_by_chfid(wanted).unwrap().unwrap();
        assert_eq!(owner.id, *winners[0]);
        assert_eq!(store.counts().unwrap().families, 1);
    }
}
