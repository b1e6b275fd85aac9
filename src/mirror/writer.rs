//! The mirror writer: drains the outbox topic `mirror` into the central database.
//!
//! Owns: batching (one PostgreSQL transaction per batch), reference resolution (local →
//! central ids, reserving keys for entities not yet mirrored: from the sequences, or
//! allocated under a table lock where the database has none, [`super::live`]), the
//! history-row convention per write, and which writes are applied or rejected; the outbox's
//! consumer loop (`crate::store::consumer`) acknowledges, dead-letters the rejected rows and
//! holds the batch with exponential backoff while the database is unreachable.
//! At start the writer resolves its descriptions against the live catalogue; a database
//! lacking a table or column the gateway needs is refused with one line naming it (state
//! `refused` on `/health`), and nothing is written.
//! Must never: claim more entries while a claimed batch is neither acknowledged nor dead
//! (that would let a later write of an entity overtake an earlier one), or acknowledge a
//! write before its PostgreSQL transaction committed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, Transaction};

use super::live::{KeySource, Keys, LiveSchema};
use super::rows::{self, Entity, Ref, Resolved};
use super::sql::{self, Row};
use super::status::MirrorStatus;
use super::{idmap, progress, sides, MirrorError};
use crate::shutdown::Signal;
use crate::store::consumer::{
    Consumer, ConsumerLoop, Flushes, LoopOptions, Shape, Unavailable, Verdict,
};
use crate::store::{
    codec, mirror_entity_key, MirrorWrite, OutboxItem, Store, MIRROR_PENDING_NS, MIRROR_TOPIC,
};

pub use super::options::WriterOptions;

/// What happened to one claimed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Rejected(String),
}

pub struct MirrorWriter {
    store: Store,
    dsn: String,
    opts: WriterOptions,
    status: MirrorStatus,
    /// The descriptions resolved against the central database, read at the first connection
    /// and kept (a reconnection reaches the same database).
    live: Mutex<Option<Arc<LiveSchema>>>,
}

impl MirrorWriter {
    pub fn new(store: Store, dsn: String, opts: WriterOptions) -> MirrorWriter {
        let status = MirrorStatus::new(store.clone());
        MirrorWriter {
            store,
            dsn,
            opts,
            status,
            live: Mutex::new(None),
        }
    }

    /// The descriptions resolved against the connected database (read on first use).
    async fn schema(&self, c: &Client) -> Result<Arc<LiveSchema>, MirrorError> {
        if let Some(l) = self.live.lock().ok().and_then(|l| l.clone()) {
            return Ok(l);
        }
        let l = Arc::new(LiveSchema::read(c).await?);
        if let Ok(mut slot) = self.live.lock() {
            *slot = Some(l.clone());
        }
        Ok(l)
    }

    /// Connects and resolves the descriptions, retrying while the database is unreachable.
    /// Returns false when the database was refused (logged once, state `refused`) or the
    /// shutdown signal came first.
    async fn resolve_at_start(&self, signal: &mut Signal) -> bool {
        let mut client = None;
        let mut attempt = 0u32;
        loop {
            let resolved = match connected(&self.dsn, &mut client).await {
                Ok(c) => self.schema(c).await.map(|_| ()),
                Err(e) => Err(e),
            };
            match resolved {
                Ok(()) => return true,
                Err(MirrorError::Refused(reason)) => {
                    tracing::error!("mirror: central database refused: {reason}");
                    self.status.refuse(&reason);
                    let _ = signal.recv().await;
                    return false;
                }
                Err(e) => {
                    self.status.set_state("unreachable", Some(e.to_string()));
                    client = None;
                    let wait = loop_options(&self.opts).unavailable_backoff(attempt);
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = signal.recv() => return false,
                    }
                }
            }
        }
    }

    /// Runs until the shutdown signal, on the outbox's consumer loop: claim a batch, apply
    /// it in one PostgreSQL transaction, ack; while the database is unreachable, keep the
    /// batch and back off (claiming nothing else, so no later write overtakes it).
    pub async fn run(self, mut signal: Signal) {
        self.status.set_state("starting", None);
        tokio::select! {
            _ = tokio::time::sleep(self.opts.lease) => {}
            _ = signal.recv() => return,
        }
        if !self.resolve_at_start(&mut signal).await {
            tracing::info!("mirror writer stopped");
            return;
        }
        let opts = loop_options(&self.opts);
        let store = self.store.clone();
        let consumer = Arc::new(Draining {
            writer: self,
            client: tokio::sync::Mutex::new(None),
        });
        ConsumerLoop::new(store, consumer, opts).run(signal).await;
        tracing::info!("mirror writer stopped");
    }

    /// One round: (re)connect, claim a batch if none is held, apply it. Returns how many
    /// writes were settled (acked or dead); an error means "retry the held batch later".
    pub async fn step(
        &self,
        client: &mut Option<Client>,
        held: &mut Vec<OutboxItem>,
    ) -> Result<usize, MirrorError> {
        let c = connected(&self.dsn, client).await?;
        let live = self.schema(c).await?;
        if held.is_empty() {
            *held = self.store.claim(
                MIRROR_TOPIC,
                self.opts.batch_size,
                self.opts.lease,
                Utc::now(),
            )?;
        }
        if held.is_empty() {
            self.status.set_state("idle", None);
            return Ok(0);
        }
        // A claimed write may not be on disk yet (see `run`).
        self.store.flushed().await?;
        let outcomes = self.apply(c, &live, held).await?;
        let n = outcomes.len();
        self.settle(held, &outcomes)?;
        held.clear();
        Ok(n)
    }

    /// Applies a batch and records it in the status.
    async fn apply(
        &self,
        c: &mut Client,
        live: &LiveSchema,
        items: &[OutboxItem],
    ) -> Result<Vec<Outcome>, MirrorError> {
        let started = std::time::Instant::now();
        let outcomes = apply_resolved(c, live, &self.store, items, self.opts.audit_user_id).await?;
        self.status.batch_done(&outcomes, started.elapsed());
        Ok(outcomes)
    }

    fn settle(&self, items: &[OutboxItem], outcomes: &[Outcome]) -> Result<(), MirrorError> {
        let now = Utc::now();
        for (item, outcome) in items.iter().zip(outcomes) {
            match outcome {
                Outcome::Applied => {
                    self.store.ack(MIRROR_TOPIC, item.seq)?;
                }
                Outcome::Rejected(reason) => {
                    tracing::warn!(key = %item.key, %reason, "mirror: row rejected, dead-lettered");
                    self.store
                        .dead_letter(MIRROR_TOPIC, item.seq, reason, now)?;
                }
            }
            self.clear_pending(item)?;
        }
        Ok(())
    }

    /// Forgets that the entity of a settled write has a write pending (unless a later one
    /// replaced it).
    fn clear_pending(&self, item: &OutboxItem) -> Result<(), MirrorError> {
        if let Some(entity) = entity_of_key(&item.key) {
            let seq = item.seq.to_be_bytes();
            self.store
                .aux_compare_and_swap(MIRROR_PENDING_NS, &entity, Some(&seq[..]), None)?;
        }
        Ok(())
    }

    pub fn status(&self) -> MirrorStatus {
        self.status.clone()
    }
}

/// The writer's settings of the consumer loop.
fn loop_options(o: &WriterOptions) -> LoopOptions {
    LoopOptions {
        shape: Shape::Batch(o.batch_size),
        // A claimed write may not be on disk yet; a crash could still lose it locally, and
        // the central database must not get a row the store then forgets.
        flush: Flushes {
            before_run: true,
            ..Flushes::default()
        },
        unavailable_base: o.backoff_base,
        unavailable_cap: o.backoff_cap,
        ..LoopOptions::new(MIRROR_TOPIC, o.lease, o.poll)
    }
}

/// The writer on the consumer loop, with its connection.
struct Draining {
    writer: MirrorWriter,
    client: tokio::sync::Mutex<Option<Client>>,
}

impl Consumer for Draining {
    async fn run(&self, items: &[OutboxItem]) -> Result<Vec<Verdict>, Unavailable> {
        let w = &self.writer;
        let mut client = self.client.lock().await;
        let applied = match connected(&w.dsn, &mut client).await {
            Ok(c) => match w.schema(c).await {
                Ok(live) => w.apply(c, &live, items).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let outcomes = applied.map_err(|e| {
            w.status.set_state("unreachable", Some(e.to_string()));
            if client.as_ref().is_some_and(|c| c.is_closed()) {
                *client = None;
            }
            Unavailable(format!("mirror: central database unavailable: {e}"))
        })?;
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                Outcome::Applied => Verdict::Done,
                Outcome::Rejected(reason) => Verdict::Dead(reason),
            })
            .collect())
    }

    fn idle(&self) {
        self.writer.status.set_state("idle", None);
    }

    fn settled(&self, item: &OutboxItem, _verdict: &Verdict) {
        if let Err(e) = self.writer.clear_pending(item) {
            tracing::warn!(key = %item.key, error = %e, "mirror: clearing the pending mark failed");
        }
    }
}

/// The open connection, (re)connecting when there is none or it closed.
async fn connected<'c>(
    dsn: &str,
    client: &'c mut Option<Client>,
) -> Result<&'c mut Client, MirrorError> {
    if let Some(c) = client.take().filter(|c| !c.is_closed()) {
        return Ok(client.insert(c));
    }
    Ok(client.insert(super::connect(dsn).await?))
}

/// `kind:id` of an idempotency key `kind:id:seq`.
fn entity_of_key(key: &str) -> Option<Vec<u8>> {
    let (entity, _seq) = key.rsplit_once(':')?;
    let (kind, id) = entity.split_once(':')?;
    Some(mirror_entity_key(kind, id.parse().ok()?))
}

/// Applies claimed writes in order (see [`apply_resolved`]), resolving the descriptions
/// against the database first.
pub async fn apply_batch(
    client: &mut Client,
    store: &Store,
    items: &[OutboxItem],
    audit: i32,
) -> Result<Vec<Outcome>, MirrorError> {
    let live = LiveSchema::read(client).await?;
    apply_resolved(client, &live, store, items, audit).await
}

/// Applies claimed writes in order. The whole batch is one transaction; if the database
/// rejects something in it, each write is retried in a transaction of its own so that only
/// the rejected ones are dead-lettered. Connection-level failures are returned as errors.
pub async fn apply_resolved(
    client: &mut Client,
    live: &LiveSchema,
    store: &Store,
    items: &[OutboxItem],
    audit: i32,
) -> Result<Vec<Outcome>, MirrorError> {
    let mut decoded = Vec::with_capacity(items.len());
    for item in items {
        decoded.push(decode_item(item));
    }
    let all: Vec<usize> = (0..items.len()).collect();
    let node = progress::node_id(store).await?;
    progress::ensure_table(client).await?;
    let b = Batch {
        live,
        store,
        node,
        items,
        decoded: &decoded,
        audit,
    };
    match apply_in_tx(client, &b, &all).await {
        Ok(()) => {
            return Ok(decoded
                .iter()
                .map(|d| match d {
                    Ok(_) => Outcome::Applied,
                    Err(e) => Outcome::Rejected(e.to_string()),
                })
                .collect())
        }
        Err(e) if !e.is_rejection() => return Err(e),
        Err(e) => tracing::debug!(error = %e, "mirror: batch refused; isolating the culprit"),
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, d) in decoded.iter().enumerate() {
        if let Err(e) = d {
            out.push(Outcome::Rejected(e.to_string()));
            continue;
        }
        match apply_in_tx(client, &b, &[i]).await {
            Ok(()) => out.push(Outcome::Applied),
            Err(e) if e.is_rejection() => out.push(Outcome::Rejected(reason(&e))),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn reason(e: &MirrorError) -> String {
    match e {
        MirrorError::Db(db) => super::db_detail(db),
        other => other.to_string(),
    }
}

fn decode_item(item: &OutboxItem) -> Result<Entity, MirrorError> {
    let w: MirrorWrite = codec::decode(&item.payload).map_err(|source| MirrorError::Decode {
        kind: "mirror write".into(),
        source,
    })?;
    Entity::decode(&w.kind, &w.record)
}

/// The claimed writes and what applying them needs.
struct Batch<'a> {
    live: &'a LiveSchema,
    store: &'a Store,
    node: uuid::Uuid,
    items: &'a [OutboxItem],
    decoded: &'a [Result<Entity, MirrorError>],
    audit: i32,
}

/// Applies writes `which` of the batch in one transaction.
async fn apply_in_tx(
    client: &mut Client,
    b: &Batch<'_>,
    which: &[usize],
) -> Result<(), MirrorError> {
    let Batch {
        live,
        store,
        node,
        items,
        decoded,
        audit,
    } = *b;
    let tx = client.transaction().await?;
    let mut ctx = Ctx {
        tx: &tx,
        live,
        keys: Keys::new(),
        store,
        now: Utc::now(),
        audit,
        map: HashMap::new(),
        reserved: HashSet::new(),
    };
    let done = progress::applied_upto(&tx, node).await?;
    let mut upto = done;
    for &i in which {
        let seq = items[i].seq;
        if seq <= done {
            // Committed before a crash lost its ack: applying it again could roll the
            // entity back to an older state. Its central key is learnt again, since the
            // id map written after that commit may have been lost with the ack.
            if let Ok(e) = &decoded[i] {
                ctx.learn(e).await?;
            }
            tracing::info!(seq, done, key = %items[i].key, "mirror: write already applied centrally; skipped");
            continue;
        }
        if let Ok(e) = &decoded[i] {
            ctx.apply(e, Some(seq)).await?;
        }
        upto = upto.max(seq);
    }
    ctx.insert_reserved().await?;
    if upto > done {
        progress::advance(ctx.tx, node, upto).await?;
    }
    let map = std::mem::take(&mut ctx.map);
    drop(ctx);
    tx.commit().await?;
    // Only mappings learnt in this transaction are written; most were read from the map.
    for ((kind, local), central) in map {
        if idmap::central(store, kind, local)? != Some(central) {
            idmap::put(store, kind, local, central)?;
        }
    }
    Ok(())
}

/// One PostgreSQL transaction's view: ids resolved so far, keys reserved but not inserted.
struct Ctx<'a, 't> {
    tx: &'a Transaction<'t>,
    live: &'a LiveSchema,
    /// Keys allocated in this transaction for tables without a sequence.
    keys: Keys,
    store: &'a Store,
    now: DateTime<Utc>,
    audit: i32,
    map: HashMap<Ref, i64>,
    reserved: HashSet<Ref>,
}

impl Ctx<'_, '_> {
    /// The local record an id refers to, as it is now.
    fn local(&self, r: Ref) -> Result<Option<Entity>, MirrorError> {
        let s = self.store;
        let (kind, id) = r;
        Ok(match kind {
            "location" => s.location(id)?.map(Entity::Location),
            "product" => s.product(id)?.map(Entity::Product),
            "officer" => s.officer(id)?.map(Entity::Officer),
            "family" => s.family(id)?.map(Entity::Family),
            "insuree" => s.insuree(id)?.map(Entity::Insuree),
            "policy" => s.policy(id)?.map(Entity::Policy),
            "insuree_policy" => s.insuree_policy(id)?.map(Entity::InsureePolicy),
            "premium" => s.premium(id)?.map(Entity::Premium),
            "payment" => s.payment(id)?.map(Entity::Payment),
            "control_number" => s.control_number(id)?.map(Entity::ControlNumber),
            other => return Err(MirrorError::UnknownKind(other.to_string())),
        })
    }

    /// The central key of an entity already in the central database (or reserved in this
    /// transaction), found by the map, then by UUID.
    async fn find(&mut self, r: Ref, uuid: Option<uuid::Uuid>) -> Result<Option<i64>, MirrorError> {
        if let Some(k) = self.map.get(&r) {
            return Ok(Some(*k));
        }
        if let Some(k) = idmap::central(self.store, r.0, r.1)? {
            self.map.insert(r, k);
            return Ok(Some(k));
        }
        if let Some(u) = uuid {
            let table = &rows::desc_of_kind(r.0)?.table;
            let live = self.live.table(table.name)?;
            if let Some(k) = table.by_uuid(live, self.tx, u).await? {
                self.map.insert(r, k);
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    /// Finds the central key of an entity already written (by the map, UUID or natural
    /// key) without writing anything; an entity it cannot find is left alone.
    async fn learn(&mut self, e: &Entity) -> Result<(), MirrorError> {
        let me: Ref = (e.kind(), e.id());
        if self.find(me, e.uuid()).await?.is_some() {
            return Ok(());
        }
        let mut refs = Resolved::new();
        for r in e.refs() {
            let uuid = self.local(r)?.and_then(|x| x.uuid());
            match self.find(r, uuid).await? {
                Some(k) => {
                    refs.insert(r, k);
                }
                None => return Ok(()),
            }
        }
        let row = e.row(&refs)?;
        if let Some(nk) = e.natural_key(&row) {
            let live = self.live.table(e.table().name)?;
            if let Some(k) = e.table().current_by(live, self.tx, &nk).await? {
                self.map.insert(me, k);
            }
        }
        Ok(())
    }

    /// The central key of a referenced entity; one not mirrored yet gets a key reserved
    /// (drawn from its sequence or allocated) now and is inserted from its current local state before commit
    /// (FKs are deferred, so a family and its head may reference each other).
    async fn resolve(&mut self, r: Ref, from: Ref) -> Result<i64, MirrorError> {
        if let Some(k) = self.map.get(&r) {
            return Ok(*k);
        }
        let Some(e) = self.local(r)? else {
            return Err(MirrorError::MissingRef {
                kind: from.0,
                id: from.1,
                ref_kind: r.0,
                ref_id: r.1,
            });
        };
        if let Some(k) = self.find(r, e.uuid()).await? {
            return Ok(k);
        }
        let live = self.live.table(rows::desc_of_kind(r.0)?.table.name)?;
        let k = self.keys.next(self.tx, live).await?;
        self.map.insert(r, k);
        self.reserved.insert(r);
        Ok(k)
    }

    async fn insert_reserved(&mut self) -> Result<(), MirrorError> {
        while let Some(r) = self.reserved.iter().next().copied() {
            let Some(e) = self.local(r)? else {
                return Err(MirrorError::MissingRef {
                    kind: r.0,
                    id: r.1,
                    ref_kind: r.0,
                    ref_id: r.1,
                });
            };
            self.apply(&e, None).await?;
        }
        Ok(())
    }

    async fn resolve_refs(&mut self, e: &Entity) -> Result<Resolved, MirrorError> {
        let me = (e.kind(), e.id());
        let mut refs = Resolved::new();
        for r in e.refs() {
            let k = self.resolve(r, me).await?;
            refs.insert(r, k);
        }
        Ok(refs)
    }

    /// Applies one entity state; `seq` is its outbox seq (`None` for a state taken from the
    /// store to fill a reserved key).
    async fn apply(&mut self, e: &Entity, seq: Option<u64>) -> Result<(), MirrorError> {
        let table = e.table();
        let live = self.live.table(table.name)?;
        let me: Ref = (e.kind(), e.id());
        let refs = self.resolve_refs(e).await?;
        let row = e.row(&refs)?;
        let audit = e.audit_user(self.audit);
        let mut key = self.find(me, e.uuid()).await?;
        if key.is_none() {
            if let Some(nk) = e.natural_key(&row) {
                key = table.current_by(live, self.tx, &nk).await?;
            }
        }
        let key = match key {
            Some(k) if !self.reserved.remove(&me) => {
                self.update(table, k, e.uuid(), seq, &row, audit).await?;
                k
            }
            reserved => {
                let k = match reserved {
                    Some(k) => k,
                    None => self.keys.next(self.tx, live).await?,
                };
                table
                    .insert(live, self.tx, k, e.uuid(), &row, audit, self.now)
                    .await?
            }
        };
        self.map.insert(me, key);
        match e {
            Entity::Family(f) => sides::family_sms(self.tx, self.live, key, f, self.now).await?,
            Entity::Officer(o) => {
                let want: HashSet<i32> = o
                    .villages
                    .iter()
                    .filter_map(|v| refs.get(&("location", *v)).map(|k| *k as i32))
                    .collect();
                let (tx, live) = (self.tx, self.live);
                let at = (self.audit, self.now);
                sides::officer_villages(tx, live, &mut self.keys, key, &want, at).await?
            }
            Entity::Payment(p) => {
                for d in &p.details {
                    self.payment_detail(key, d, &refs).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// One `tblPaymentDetails` line of central payment `payment`: updated when its natural
    /// key has a current row, inserted otherwise.
    async fn payment_detail(
        &mut self,
        payment: i64,
        d: &crate::domain::PaymentDetail,
        refs: &Resolved,
    ) -> Result<(), MirrorError> {
        let row = rows::payment_detail_row(payment, d, refs);
        let details = &rows::PAYMENT_DETAILS;
        let nk = details.natural_key_of(&row).unwrap_or_default();
        let t = &details.table;
        let live = self.live.table(t.name)?;
        match t.current_by(live, self.tx, &nk).await? {
            Some(k) => {
                self.update(t, k, None, None, &row, rows::AUDIT_SYSTEM)
                    .await?
            }
            None => {
                let k = self.keys.next(self.tx, live).await?;
                t.insert(live, self.tx, k, None, &row, rows::AUDIT_SYSTEM, self.now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Update with a history row unless the write was applied already (its history row's
    /// UUID exists) or the current row already holds these values.
    async fn update(
        &mut self,
        table: &sql::Table,
        key: i64,
        uuid: Option<uuid::Uuid>,
        seq: Option<u64>,
        row: &Row,
        audit: i32,
    ) -> Result<(), MirrorError> {
        let live = self.live.table(table.name)?;
        let hist = match (uuid, seq) {
            (Some(u), Some(s)) => Some(sql::history_uuid(u, s)),
            (Some(u), None) => Some(uuid::Uuid::from_u128(
                u.as_u128() ^ u128::from(self.now.timestamp_micros() as u64),
            )),
            _ => None,
        };
        // A table with a sequence draws the history row's key inside the statement; one
        // without gets it allocated here (under the table lock) before the statement.
        let hist_key = match live.key {
            KeySource::Allocate => Some(self.keys.next(self.tx, live).await?),
            _ => None,
        };
        table
            .update_with_history(
                live,
                self.tx,
                key,
                (hist_key, hist),
                seq.is_some(),
                row,
                audit,
                self.now,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn idempotency_keys_name_their_entity() {
        assert_eq!(entity_of_key("family:10:42"), Some(b"family:10".to_vec()));
        assert_eq!(
            entity_of_key("insuree_policy:7:9"),
            Some(b"insuree_policy:7".to_vec())
        );
        assert_eq!(entity_of_key("garbage"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = WriterOptions {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(1),
            ..WriterOptions::default()
        };
        assert_eq!(
            loop_options(&o).unavailable_backoff(0),
            Duration::from_millis(100)
        );
        assert_eq!(
            loop_options(&o).unavailable_backoff(2),
            Duration::from_millis(400)
        );
        assert_eq!(
            loop_options(&o).unavailable_backoff(30),
            Duration::from_secs(1)
        );
    }
}
