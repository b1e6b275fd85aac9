//! The embedded store: every record this gateway holds, on sled.
//!
//! Owns: one typed tree per entity (records encoded by [`codec`] with a version byte), the
//! secondary indexes (kept in the same transaction as their record, see [`tx`]), multi-tree
//! business transactions ([`Store::write`]), the durable [`outbox`] of work that must follow
//! a write and the one loop every outbox consumer runs on ([`consumer`]), group-committed
//! flushes ([`commit`]), bulk loading ([`bulk`]) and queueing a bulk-loaded store for the
//! mirror once ([`Store::queue_all_for_mirror`]).
//! Must never: apply a business rule (callers decide; the store only refuses to give one
//! unique key to two records), let an index disagree with its record, read a clock on the
//! consumer side of the outbox (`now` is passed in), or report a write as durable before it
//! was flushed.
//!
//! Key layouts are in [`keys`]. sled 0.34 caveats worth knowing:
//! - transactions are serialised process-wide (one global lock), cannot iterate, and hold
//!   every write in memory until commit: keep them small; use [`Store::bulk`] for loads;
//! - once any transaction has run, plain reads take a shared read lock too (cheap, uncontended
//!   except against a committing transaction), so a `Store` call made inside a transaction
//!   closure would wait for itself: it fails with [`StoreError::InsideTransaction`] instead;
//! - `Tree::len` (used by [`Store::counts`]) scans the whole tree.

pub mod aux;
pub mod bulk;
pub mod codec;
pub mod commit;
pub mod consumer;
mod family_payments;
pub mod keys;
pub mod outbox;
mod private;
mod read;
mod remirror;
pub mod space;
pub mod tx;

use std::cell::Cell;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sled::transaction::{TransactionError, Transactional, TransactionalTree};
use sled::IVec;

use crate::domain::Id;
use keys::TreeId;
use tx::{Aborted, Source};

pub use bulk::BulkWriter;
pub use codec::CodecError;
pub use commit::CommitStats;
pub use outbox::{DeadLetter, OutboxItem, OutboxPolicy, RetryOutcome};
pub use space::DiskStatus;
pub use tx::{
    mirror_entity_key, Abort, MirrorWrite, TxError, TxResult, WriteError, WriteTx,
    MIRROR_PENDING_NS, MIRROR_TOPIC,
};

/// Waits of 50 ms for a directory lock a just-closed handle of this process still holds.
const LOCK_RETRIES: u32 = 40;

/// The layout version of the whole store, kept in `meta` and checked on open. 2: a CHFID is
/// stored, and keyed, as its central text (1 held it as a u32).
pub const SCHEMA_VERSION: u32 = 2;
const SCHEMA_KEY: &[u8] = b"schema_version";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("tree {tree}: {source}")]
    Codec {
        tree: &'static str,
        #[source]
        source: CodecError,
    },
    #[error(
        "store schema version {found} is not this build's {expected}: run the gateway that \
         wrote it, or import the central database into a new data directory with this one \
         (imis-gateway import --from DSN --data-dir NEW_DIR)"
    )]
    SchemaVersion { found: u32, expected: u32 },
    #[error("malformed key or index value in tree {tree}")]
    CorruptKey { tree: &'static str },
    #[error("index {index} points to record {id}, which does not exist")]
    Dangling { index: &'static str, id: Id },
    #[error("{index}: the key already belongs to record {existing}, cannot give it to {id}")]
    Duplicate {
        index: &'static str,
        existing: Id,
        id: Id,
    },
    #[error("outbox topic {0:?} must be 1 to {max} bytes", max = keys::MAX_TOPIC_LEN)]
    InvalidTopic(String),
    #[error("idempotency key of {len} bytes; must be 1 to {max}", max = keys::MAX_IDEMPOTENCY_KEY_LEN)]
    InvalidIdempotencyKey { len: usize },
    #[error("data directory {dir}: {source}")]
    Permissions {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("flush failed: {0}")]
    Flush(#[source] Arc<sled::Error>),
    #[error("the store's flusher has stopped")]
    Closed,
    #[error("a Store method was called inside a transaction closure (it would deadlock); use the WriteTx")]
    InsideTransaction,
    #[error("cannot start the flusher thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The data directory's disk is (nearly) full: nothing was written. Temporary for the
    /// sender (it should retry later) unless `restart_required` (sled failed on the full
    /// disk and must be reopened). See [`space`].
    #[error("disk full on {path}: writes refused{}", if *restart_required { " until restart" } else { " until space is freed" })]
    DiskFull {
        path: String,
        restart_required: bool,
    },
}

impl StoreError {
    /// Whether this failure is the data directory's disk being full (the guard's refusal,
    /// or sled's own ENOSPC).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::DiskFull { .. } => true,
            StoreError::Sled(e) => space::sled_is_disk_full(e),
            StoreError::Flush(e) => space::sled_is_disk_full(e),
            _ => false,
        }
    }
}

/// Tuning knobs; `Default` suits a server.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled page cache, bytes.
    pub cache_capacity: u64,
    /// sled's own background flush interval; `None` flushes only on demand.
    pub flush_every_ms: Option<u64>,
    pub outbox_policy: OutboxPolicy,
    /// Below this many free bytes on the data directory's filesystem, writes are refused
    /// with [`StoreError::DiskFull`] (see [`space`]).
    pub min_free_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            cache_capacity: 256 * 1024 * 1024,
            flush_every_ms: Some(500),
            outbox_policy: OutboxPolicy::default(),
            min_free_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Records per tree, as [`Store::counts`] reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub locations: usize,
    pub products: usize,
    pub officers: usize,
    pub families: usize,
    pub insurees: usize,
    pub policies: usize,
    pub insuree_policies: usize,
    pub premiums: usize,
    pub payments: usize,
    pub control_numbers: usize,
    pub outbox_pending: usize,
    pub outbox_dead: usize,
}

/// The store handle: cheap to clone, shareable across threads and tasks.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("commit", &self.commit_stats())
            .finish_non_exhaustive()
    }
}

struct Inner {
    // Dropped first: stops the flusher, which holds its own handle to `db`.
    commit: commit::GroupCommit,
    trees: Vec<sled::Tree>,
    db: sled::Db,
    options: StoreOptions,
    space: Arc<space::SpaceGuard>,
    /// Rung after a commit that pushed to the topic, so consumers need not poll.
    bells: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Notify>>>,
}

impl Store {
    /// Opens (or creates) the store in `dir`, checking its schema version.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        // sled's background threads can hold the directory lock for a moment after the last
        // handle of an earlier open is dropped (a restart within one process): wait that out
        // briefly instead of failing. A store held by another live process still fails.
        private::prepare(dir).map_err(|source| StoreError::Permissions {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut tries = 0;
        loop {
            let config = sled::Config::new().path(dir);
            match Store::from_config(config, Some(dir), options.clone()) {
                Ok(store) => {
                    // Narrowing is hardening, not a precondition: a store this user cannot
                    // chmod (another owner's, opened read-mostly) still opens, with a warning.
                    if let Err(e) = private::restrict(dir) {
                        tracing::warn!(dir = %dir.display(), error = %e, "could not make the data directory private (0700/0600)");
                    }
                    return Ok(store);
                }
                Err(StoreError::Sled(sled::Error::Io(e)))
                    if tries < LOCK_RETRIES && e.to_string().contains("could not acquire lock") =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// A store deleted when dropped, for tests.
    pub fn open_temporary() -> Result<Store, StoreError> {
        Store::open_temporary_with(StoreOptions::default())
    }

    /// [`Store::open_temporary`] with options.
    pub fn open_temporary_with(options: StoreOptions) -> Result<Store, StoreError> {
        Store::from_config(sled::Config::new().temporary(true), None, options)
    }

    fn from_config(
        config: sled::Config,
        dir: Option<&Path>,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let db = config
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(options.flush_every_ms)
            .open()?;
        let trees = TreeId::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()?;
        check_schema(&db, &trees)?;
        family_payments::backfill(&db, &trees)?;
        let commit = commit::GroupCommit::start(db.clone())?;
        let space = Arc::new(space::SpaceGuard::new(dir, options.min_free_bytes));
        Ok(Store {
            inner: Arc::new(Inner {
                commit,
                trees,
                db,
                options,
                space,
                bells: Default::default(),
            }),
        })
    }

    pub(crate) fn tree(&self, t: TreeId) -> &sled::Tree {
        &self.inner.trees[t.index()]
    }

    /// A tree to read outside a transaction: refused inside a transaction closure, where
    /// sled's global transaction lock would make the read wait for itself forever.
    pub(crate) fn read(&self, t: TreeId) -> Result<&sled::Tree, StoreError> {
        outside_tx()?;
        Ok(self.tree(t))
    }

    pub(crate) fn outbox_policy(&self) -> &OutboxPolicy {
        &self.inner.options.outbox_policy
    }

    /// A fresh id (store-wide, increasing, never 0). Ids are not reused after a crash, but
    /// may skip: allocate freely.
    pub fn next_id(&self) -> Result<Id, StoreError> {
        Ok(self.inner.db.generate_id()? + 1)
    }

    /// Runs a business transaction over every tree (see [`WriteTx`]). Committed, not yet
    /// flushed: use [`Store::write_durable`] before acknowledging it to the outside.
    pub fn write<T, E, F>(&self, f: F) -> Result<T, WriteError<E>>
    where
        F: Fn(&mut WriteTx<'_>) -> TxResult<T, E>,
    {
        self.write_at(Utc::now(), f)
    }

    /// [`Store::write`] with the transaction's `now` given (for outbox enqueue times).
    pub fn write_at<T, E, F>(&self, now: DateTime<Utc>, f: F) -> Result<T, WriteError<E>>
    where
        F: Fn(&mut WriteTx<'_>) -> TxResult<T, E>,
    {
        self.write_with(now, true, true, f)
    }

    /// [`Store::write`] past the disk-space guard, for the small bookkeeping write that
    /// closes work already done outside (an outbox ack): refusing it would send that work
    /// again after recovery. Not for new work.
    pub(crate) fn write_closing<T, E, F>(&self, f: F) -> Result<T, WriteError<E>>
    where
        F: Fn(&mut WriteTx<'_>) -> TxResult<T, E>,
    {
        self.write_with(Utc::now(), true, false, f)
    }

    /// [`Store::write`] for applying rows pulled from the central database: its puts queue
    /// no mirror writes, so central changes are not echoed back.
    pub fn write_from_central<T, E, F>(&self, f: F) -> Result<T, WriteError<E>>
    where
        F: Fn(&mut WriteTx<'_>) -> TxResult<T, E>,
    {
        self.write_with(Utc::now(), false, true, f)
    }

    fn write_with<T, E, F>(
        &self,
        now: DateTime<Utc>,
        mirror: bool,
        guarded: bool,
        f: F,
    ) -> Result<T, WriteError<E>>
    where
        F: Fn(&mut WriteTx<'_>) -> TxResult<T, E>,
    {
        let scope = TxScope::enter()?;
        if guarded {
            self.inner.space.admit()?;
        }
        let r = Transactional::<Aborted<E>>::transaction(
            &self.inner.trees[..],
            |views: &Vec<TransactionalTree>| tx::to_sled(f(&mut WriteTx::new(views, now, mirror))),
        );
        drop(scope);
        let pushed = PUSHED.with(|p| std::mem::take(&mut *p.borrow_mut()));
        match r {
            Ok(v) => {
                for topic in pushed {
                    self.outbox_bell(&topic).notify_one();
                }
                Ok(v)
            }
            Err(TransactionError::Abort(Aborted::User(e))) => Err(WriteError::Aborted(e)),
            Err(TransactionError::Abort(Aborted::Store(e))) => {
                Err(WriteError::Store(self.inner.space.map(e)))
            }
            Err(TransactionError::Storage(e)) => {
                Err(WriteError::Store(self.inner.space.map(e.into())))
            }
        }
    }

    /// Commits, then waits for a (group-committed) flush that covers the write.
    pub async fn write_durable<T, E, F>(&self, f: F) -> Result<T, WriteError<E>>
    where
        F: Fn(&mut WriteTx<'_>) -> TxResult<T, E>,
    {
        let v = self.write(f)?;
        self.flushed().await?;
        Ok(v)
    }

    /// Blocking [`Store::write_durable`], for threads outside the async runtime.
    pub fn write_durable_blocking<T, E, F>(&self, f: F) -> Result<T, WriteError<E>>
    where
        F: Fn(&mut WriteTx<'_>) -> TxResult<T, E>,
    {
        let v = self.write(f)?;
        self.flushed_blocking()?;
        Ok(v)
    }

    /// Resolves once everything committed before this call is on disk. The waiter is
    /// registered at the call, so the future may be awaited later.
    pub fn flushed(&self) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (flushed, space) = (self.inner.commit.flushed(), self.inner.space.clone());
        async move { flushed.await.map_err(|e| space.map(e)) }
    }

    /// Blocking [`Store::flushed`]. Must not be called from an async task.
    pub fn flushed_blocking(&self) -> Result<(), StoreError> {
        self.inner
            .commit
            .flushed_blocking()
            .map_err(|e| self.inner.space.map(e))
    }

    /// Writes are refused for lack of disk space now (see [`space`]).
    pub fn disk_full(&self) -> bool {
        self.inner.space.admit().is_err()
    }

    /// The data directory's disk, for `/health`.
    pub fn disk_status(&self) -> DiskStatus {
        self.inner.space.status()
    }

    /// Refuses a write outside a transaction when the disk is full (see [`space`]).
    pub(crate) fn admit_write(&self) -> Result<(), StoreError> {
        self.inner.space.admit()
    }

    /// Flushes now, on this thread (shutdown, end of a bulk load).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.db.flush()?;
        Ok(())
    }

    pub fn commit_stats(&self) -> CommitStats {
        self.inner.commit.stats()
    }

    /// A cheap liveness probe: one point read of the schema record.
    pub fn check(&self) -> Result<(), StoreError> {
        match read_schema(self.read(TreeId::Meta)?)? {
            Some(SCHEMA_VERSION) => Ok(()),
            found => Err(StoreError::SchemaVersion {
                found: found.unwrap_or(0),
                expected: SCHEMA_VERSION,
            }),
        }
    }

    /// Records per tree. Scans every tree: for stats, not for a request path.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        outside_tx()?;
        let n = |t: TreeId| self.tree(t).len();
        Ok(Counts {
            locations: n(TreeId::Locations),
            products: n(TreeId::Products),
            officers: n(TreeId::Officers),
            families: n(TreeId::Families),
            insurees: n(TreeId::Insurees),
            policies: n(TreeId::Policies),
            insuree_policies: n(TreeId::InsureePolicies),
            premiums: n(TreeId::Premiums),
            payments: n(TreeId::Payments),
            control_numbers: n(TreeId::ControlNumbers),
            outbox_pending: n(TreeId::Outbox),
            outbox_dead: n(TreeId::OutboxDead),
        })
    }

    /// Notified (one permit, kept until taken) after each commit that pushed to `topic`:
    /// a consumer waits on it next to its poll timer, so new work starts at once.
    pub fn outbox_bell(&self, topic: &str) -> Arc<tokio::sync::Notify> {
        let mut bells = self.inner.bells.lock().unwrap_or_else(|p| p.into_inner());
        bells.entry(topic.to_string()).or_default().clone()
    }

    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        outside_tx()?;
        Ok(self.inner.db.size_on_disk()?)
    }
}

thread_local! {
    /// Whether this thread is running a transaction closure.
    static IN_TX: Cell<bool> = const { Cell::new(false) };
    /// Outbox topics pushed to by the transaction this thread runs.
    static PUSHED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Notes a push for the bell rung once the transaction commits.
pub(crate) fn note_push(topic: &str) {
    PUSHED.with(|p| {
        let mut p = p.borrow_mut();
        if !p.iter().any(|t| t == topic) {
            p.push(topic.to_string());
        }
    });
}

fn outside_tx() -> Result<(), StoreError> {
    match IN_TX.with(Cell::get) {
        true => Err(StoreError::InsideTransaction),
        false => Ok(()),
    }
}

/// Marks this thread as inside a transaction closure until dropped (also on panic).
struct TxScope;

impl TxScope {
    fn enter() -> Result<TxScope, StoreError> {
        outside_tx()?;
        PUSHED.with(|p| p.borrow_mut().clear());
        IN_TX.with(|c| c.set(true));
        Ok(TxScope)
    }
}

impl Drop for TxScope {
    fn drop(&mut self) {
        IN_TX.with(|c| c.set(false));
    }
}

fn read_schema(meta: &sled::Tree) -> Result<Option<u32>, StoreError> {
    match meta.get(SCHEMA_KEY)? {
        None => Ok(None),
        Some(v) => <[u8; 4]>::try_from(v.as_ref())
            .map(|b| Some(u32::from_be_bytes(b)))
            .map_err(|_| StoreError::CorruptKey {
                tree: TreeId::Meta.name(),
            }),
    }
}

/// Stamps a new store with [`SCHEMA_VERSION`]; refuses a store of another version, or one
/// holding data but no version.
fn check_schema(db: &sled::Db, trees: &[sled::Tree]) -> Result<(), StoreError> {
    let meta = &trees[TreeId::Meta.index()];
    match read_schema(meta)? {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(found) => Err(StoreError::SchemaVersion {
            found,
            expected: SCHEMA_VERSION,
        }),
        None if trees.iter().all(|t| t.is_empty()) => {
            meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            db.flush()?;
            Ok(())
        }
        None => Err(StoreError::SchemaVersion {
            found: 0,
            expected: SCHEMA_VERSION,
        }),
    }
}

impl Source for Store {
    type Error = StoreError;
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        Ok(self.read(tree)?.get(key)?)
    }
}

/// Records for the store's tests: valid, minimal, varied by argument.
#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::{NaiveDate, TimeZone, Utc};
    use uuid::Uuid;

    use crate::domain::*;

    pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    pub fn phone(s: &str) -> Msisdn {
        Msisdn::parse(s).unwrap()
    }

    /// The CHFID with base `n`.
    pub fn chfid(n: u32) -> Chfid {
        Chfid::from_base(n).unwrap()
    }

    pub fn location(id: Id, code: &str) -> Location {
        Location {
            id,
            uuid: Uuid::from_u128(u128::from(id)),
            code: code.into(),
            name: format!("Kijiji {code}"),
            kind: LocationKind::Village,
            parent: None,
        }
    }

    pub fn product(id: Id, code: &str) -> Product {
        Product {
            id,
            uuid: Uuid::from_u128(u128::from(id)),
            code: code.into(),
            cycles: vec![CycleStart { day: 1, month: 7 }],
            lump_sum: Money::tzs(30_000),
            sp_code: Some("SP111".into()),
            ..crate::domain::fixtures::product()
        }
    }

    pub fn officer(id: Id, code: &str, tel: Option<&str>) -> Officer {
        Officer {
            id,
            uuid: Uuid::from_u128(u128::from(id)),
            code: code.into(),
            last_name: "Mwakyusa".into(),
            other_names: "Amina".into(),
            phone: tel.map(phone),
            district: None,
            villages: vec![1, 2],
            substitute: None,
            works_to: None,
            phone_communication: true,
            language: Language::Sw,
            pin_hash: None,
        }
    }

    pub fn family(id: Id, head: Id) -> Family {
        Family {
            id,
            uuid: Uuid::from_u128(u128::from(id)),
            head,
            village: 1,
            poverty: false,
            sms: SmsPreference::default(),
        }
    }

    /// A member; the head when `tel` is given.
    pub fn insuree(id: Id, family: Id, base: u32, tel: Option<&str>) -> Insuree {
        Insuree {
            id,
            uuid: Uuid::from_u128(u128::from(id)),
            chfid: chfid(base),
            family,
            is_head: tel.is_some(),
            last_name: "Hamisi".into(),
            other_names: "Juma".into(),
            dob: d(1985, 6, 1),
            gender: Gender::Male,
            relationship: if tel.is_some() {
                None
            } else {
                Some(Relationship::Child)
            },
            phone: tel.map(phone),
            card_issued: false,
        }
    }

    pub fn policy(id: Id, family: Id) -> Policy {
        Policy {
            id,
            uuid: Uuid::from_u128(u128::from(id)),
            family,
            product: 1,
            officer: None,
            stage: PolicyStage::New,
            status: PolicyStatus::Active,
            value: Money::tzs(30_000),
            enroll_date: d(2024, 1, 1),
            start_date: d(2024, 1, 1),
            effective_date: Some(d(2024, 1, 1)),
            expiry_date: d(2024, 12, 31),
            self_renewed: false,
        }
    }

    pub fn insuree_policy(id: Id, insuree: Id, policy: Id) -> InsureePolicy {
        InsureePolicy {
            id,
            insuree,
            policy,
            enrollment_date: d(2024, 1, 1),
            start_date: d(2024, 1, 1),
            effective_date: Some(d(2024, 1, 1)),
            expiry_date: d(2024, 12, 31),
        }
    }

    pub fn premium(id: Id, policy: Id) -> Premium {
        Premium {
            id,
            uuid: Uuid::from_u128(u128::from(id)),
            policy,
            amount: Money::tzs(30_000),
            receipt: format!("R{id}"),
            pay_date: d(2024, 1, 1),
            pay_type: PayType::Mobile,
            is_photo_fee: false,
        }
    }

    /// An assigned payment without detail lines, made as every payment starts (an intent)
    /// so that a field added to `Payment` needs no edit here.
    pub fn payment(id: Id, control_number: Option<&str>) -> Payment {
        let line = PaymentDetail {
            product_code: "PRD".into(),
            chfid: chfid(1),
            stage: PolicyStage::New,
            policy: None,
            expected_amount: Money::tzs(30_000),
            amount: None,
            premium: None,
        };
        let mut p = Payment::intent(
            id,
            Uuid::from_u128(u128::from(id)),
            line,
            Some(phone("0754100001")),
            Language::Sw,
            Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0).unwrap(),
        );
        p.status = PaymentStatus::Assigned;
        p.control_number = control_number.map(String::from);
        p.details.clear();
        p
    }

    pub fn control_number(id: Id, number: &str, payment: Option<Id>) -> ControlNumber {
        ControlNumber {
            id,
            number: number.into(),
            status: ControlNumberStatus::Assigned,
            payment,
            product: None,
            requested_date: Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0).unwrap(),
            received_date: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::domain::Insuree;

    fn seed(store: &Store) {
        let w: Result<(), WriteError<std::convert::Infallible>> = store.write(|tx| {
            tx.put_location(&location(1, "V0111"))?;
            tx.put_product(&product(2, "CHF01"))?;
            tx.put_officer(&officer(3, "EO0001", Some("0754000001")))?;
            tx.put_family(&family(10, 11))?;
            tx.put_insuree(&insuree(11, 10, 7_070_707, Some("0754100001")))?;
            tx.put_insuree(&insuree(12, 10, 7_070_708, None))?;
            tx.put_policy(&policy(20, 10))?;
            tx.put_insuree_policy(&insuree_policy(21, 11, 20))?;
            tx.put_insuree_policy(&insuree_policy(22, 12, 20))?;
            tx.put_premium(&premium(23, 20))?;
            tx.put_payment(&payment(30, Some("991110000025")))?;
            tx.put_control_number(&control_number(31, "991110000025", Some(30)))?;
            Ok(())
        });
        w.unwrap();
    }

    #[test]
    fn reads_find_records_by_id_and_by_every_index() {
        let store = Store::open_temporary().unwrap();
        seed(&store);
        assert_eq!(
            store.location_by_code("v0111").unwrap().map(|l| l.id),
            Some(1)
        );
        assert_eq!(
            store.product_by_code(" CHF01 ").unwrap().map(|p| p.id),
            Some(2)
        );
        assert_eq!(
            store.officer_by_code("EO0001").unwrap().map(|o| o.id),
            Some(3)
        );
        let o = store.officer_by_phone(&phone("255754000001")).unwrap();
        assert_eq!(o.map(|o| o.id), Some(3));
        let head = store.insuree_by_chfid(chfid(7_070_707)).unwrap().unwrap();
        assert_eq!((head.id, head.family), (11, 10));
        assert!(store.chfid_taken(chfid(7_070_708)).unwrap());
        assert!(!store.chfid_taken(chfid(7_070_709)).unwrap());
        assert_eq!(store.insuree_by_chfid(chfid(7_070_709)).unwrap(), None);
        let ids = |v: Vec<Insuree>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(store.family_members(10).unwrap()), vec![11, 12]);
        let fams = store.families_by_phone(&phone("0754100001")).unwrap();
        assert_eq!(fams.iter().map(|f| f.id).collect::<Vec<_>>(), vec![10]);
        assert!(store
            .families_by_phone(&phone("0754000001"))
            .unwrap()
            .is_empty());
        assert_eq!(store.family_policies(10).unwrap()[0].id, 20);
        assert_eq!(store.insuree_policies_of_policy(20).unwrap().len(), 2);
        assert_eq!(store.premiums_of_policy(20).unwrap()[0].id, 23);
        assert!(store.family_members(11).unwrap().is_empty());
        let p = store.payment_by_control_number("991110000025").unwrap();
        assert_eq!(p.map(|p| p.id), Some(30));
        let cn = store.control_number_by_number("991110000025").unwrap();
        assert_eq!(cn.map(|c| c.id), Some(31));
        assert_eq!(store.payment_by_control_number("").unwrap(), None);
        assert_eq!(store.products().unwrap().len(), 1);
        assert_eq!(store.locations().unwrap().len(), 1);
        assert_eq!(store.officers().unwrap().len(), 1);
        assert_eq!(store.family(10).unwrap(), Some(family(10, 11)));
        assert_eq!(store.policy(99).unwrap(), None);
        let c = store.counts().unwrap();
        assert_eq!((c.families, c.insurees, c.insuree_policies), (1, 2, 2));
        // Each of the 12 puts queued its mirror write.
        assert_eq!(
            (c.payments, c.control_numbers, c.outbox_pending),
            (1, 1, 12)
        );
        store.check().unwrap();
        assert!(store.size_on_disk().unwrap() > 0);
    }

    #[test]
    fn ids_are_fresh_and_never_zero() {
        let store = Store::open_temporary().unwrap();
        let a = store.next_id().unwrap();
        let b = store.next_id().unwrap();
        assert!(a > 0 && b > a);
    }

    #[test]
    fn a_record_that_does_not_decode_is_an_error_naming_its_tree() {
        let store = Store::open_temporary().unwrap();
        seed(&store);
        store
            .tree(TreeId::Insurees)
            .insert(keys::id_key(11), &[9u8, 1, 2][..])
            .unwrap();
        let err = store.insuree_by_chfid(chfid(7_070_707)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Codec {
                    tree: "insurees",
                    source: CodecError::UnknownVersion { found: 9, .. }
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn schema_version_is_stamped_and_checked_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        seed(&store);
        drop(store);
        // Reopening the same version is fine; data is there.
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert!(store.family(10).unwrap().is_some());
        store
            .tree(TreeId::Meta)
            .insert(SCHEMA_KEY, &99u32.to_be_bytes())
            .unwrap();
        assert!(store.check().is_err());
        drop(store);
        let err = Store::open(dir.path(), StoreOptions::default()).err();
        assert!(
            matches!(
                err,
                Some(StoreError::SchemaVersion {
                    found: 99,
                    expected: SCHEMA_VERSION
                })
            ),
            "{err:?}"
        );
        // The refusal says what to do about it.
        let said = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(said.contains("imis-gateway import --from"), "{said}");
    }

    #[test]
    fn a_store_with_data_but_no_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("families")
                .unwrap()
                .insert(b"x", b"y")
                .unwrap();
            db.flush().unwrap();
        }
        let err = Store::open(dir.path(), StoreOptions::default()).err();
        assert!(
            matches!(err, Some(StoreError::SchemaVersion { found: 0, .. })),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_durable_write_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            flush_every_ms: None,
            ..StoreOptions::default()
        };
        let store = Store::open(dir.path(), opts.clone()).unwrap();
        store
            .write_durable(|tx| -> TxResult<()> {
                tx.put_family(&family(10, 11))?;
                tx.put_insuree(&insuree(11, 10, 7_070_707, Some("0754100001")))?;
                tx.outbox_push("sms", "welcome-10", b"Karibu")?;
                Ok(())
            })
            .await
            .unwrap();
        drop(store);
        let store = Store::open(dir.path(), opts).unwrap();
        assert_eq!(store.family(10).unwrap(), Some(family(10, 11)));
        let head = store.insuree_by_chfid(chfid(7_070_707)).unwrap();
        assert_eq!(head.map(|i| i.id), Some(11));
        assert_eq!(store.pending_count("sms").unwrap(), 1);
    }
}
