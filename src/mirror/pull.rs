//! Central → local: the one-off import into an empty store and the incremental pull.
//!
//! Owns: reading the current openIMIS rows (`ValidityTo IS NULL`) of every table the pull
//! reads (the SELECT and the mapping to our records are each table's description, in
//! [`super::tables`]), loading them into the store, and the per-table pull watermarks
//! (aux `mirror.pull`: table → last `ValidityFrom` seen, in µs).
//! Must never: write through a mirroring transaction (pulled rows use
//! [`Store::write_from_central`] or a bulk load, so they are not echoed back), or overwrite
//! an entity that has an unmirrored local write (the conflict rule in [`super`]).
//!
//! The pull re-reads a small overlap before its watermark, because `ValidityFrom` is the
//! writing transaction's start time and a long transaction may commit after a later one;
//! rows that did not change are recognised and skipped.

use std::convert::Infallible;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, Row as PgRow};

use super::idmap::LocalIds;
use super::rows::{self, Entity};
use super::schema::{Desc, Named, Select, VALIDITY_FROM};
use super::MirrorError;
use crate::shutdown::Signal;
use crate::store::{mirror_entity_key, Store, TxResult, MIRROR_PENDING_NS};

const NS_WATERMARK: &str = "mirror.pull";
/// How far before the watermark each pull looks again (see the module doc).
const OVERLAP: Duration = Duration::from_secs(60);

/// The tables the pull reads, in dependency order.
fn pulled() -> impl Iterator<Item = &'static Desc> {
    rows::all().into_iter().filter(|d| d.pull.is_some())
}

/// The record of a current central row of `desc`'s table, read by column name.
fn decode(desc: &Desc, r: &PgRow, ids: &mut LocalIds<'_>) -> Result<Entity, MirrorError> {
    let named = Named::new(r, &desc.table)?;
    Entity::read(desc, &named, ids)?.ok_or_else(|| MirrorError::UnknownKind(desc.kind.to_string()))
}

fn put_bulk(
    b: &mut crate::store::BulkWriter<'_>,
    p: &Entity,
) -> Result<(), crate::store::StoreError> {
    match p {
        Entity::Location(r) => b.put_location(r),
        Entity::Product(r) => b.put_product(r),
        Entity::Officer(r) => b.put_officer(r),
        Entity::Family(r) => b.put_family(r),
        Entity::Insuree(r) => b.put_insuree(r),
        Entity::Policy(r) => b.put_policy(r),
        Entity::InsureePolicy(r) => b.put_insuree_policy(r),
        Entity::Premium(r) => b.put_premium(r),
        Entity::Payment(r) => b.put_payment(r),
        Entity::ControlNumber(r) => b.put_control_number(r),
    }
}

fn watermark_set(store: &Store, table: &str, t: DateTime<Utc>) -> Result<(), MirrorError> {
    store.aux_put(
        NS_WATERMARK,
        table.as_bytes(),
        &t.timestamp_micros().to_be_bytes(),
    )?;
    Ok(())
}

fn watermark(store: &Store, table: &str) -> Result<Option<DateTime<Utc>>, MirrorError> {
    Ok(store
        .aux_get(NS_WATERMARK, table.as_bytes())?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .and_then(|b| DateTime::<Utc>::from_timestamp_micros(i64::from_be_bytes(b))))
}

/// What an import loaded, per table.
pub type ImportCounts = Vec<(&'static str, u64)>;

/// Loads the current central rows into an empty store, streaming in chunks. `progress` is
/// called every chunk with (table, rows so far).
pub async fn import(
    client: &Client,
    store: &Store,
    mut progress: impl FnMut(&str, u64),
) -> Result<ImportCounts, MirrorError> {
    let c = store.counts()?;
    if c.families + c.insurees + c.policies + c.products + c.locations + c.officers > 0 {
        return Err(MirrorError::NotEmpty);
    }
    let mut ids = LocalIds::new(store);
    let mut out = Vec::new();
    let started = client
        .query_one("SELECT now()", &[])
        .await?
        .get::<_, DateTime<Utc>>(0);
    for q in pulled() {
        let table = q.table.name;
        let sql = q.select(Select::Pull);
        let stream = client.query_raw(&sql, std::iter::empty::<i32>()).await?;
        stream_chunks(
            stream,
            |rows| -> Result<(), MirrorError> {
                let mut chunk = Vec::with_capacity(rows.len());
                for r in rows {
                    chunk.push(decode(q, r, &mut ids)?);
                }
                store.bulk(|b| chunk.iter().try_for_each(|p| put_bulk(b, p)))??;
                Ok(())
            },
            |n| progress(table, n),
        )
        .await
        .map(|n| out.push((table, n)))?;
        watermark_set(store, table, started)?;
    }
    store.flush()?;
    Ok(out)
}

/// Rows per import chunk: each chunk is one bulk load, which ends with a flush of the store,
/// so chunks are large (a few MB of records) to keep flushes rare.
const CHUNK: usize = 25_000;

/// Drives a row stream in chunks of [`CHUNK`] rows; returns the row count.
async fn stream_chunks(
    stream: tokio_postgres::RowStream,
    mut each: impl FnMut(&[PgRow]) -> Result<(), MirrorError>,
    mut progress: impl FnMut(u64),
) -> Result<u64, MirrorError> {
    use futures_util::TryStreamExt;
    let mut stream = std::pin::pin!(stream);
    let mut buf = Vec::with_capacity(CHUNK);
    let mut n = 0u64;
    while let Some(row) = stream.try_next().await? {
        buf.push(row);
        if buf.len() == CHUNK {
            each(&buf)?;
            n += buf.len() as u64;
            buf.clear();
            progress(n);
        }
    }
    if !buf.is_empty() {
        each(&buf)?;
        n += buf.len() as u64;
        progress(n);
    }
    Ok(n)
}

/// What one pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    pub applied: usize,
    pub unchanged: usize,
    /// Skipped because the entity has an unmirrored local write (the local write wins).
    pub conflicts: usize,
}

/// Applies central rows changed since each table's watermark.
pub async fn pull_once(client: &Client, store: &Store) -> Result<PullReport, MirrorError> {
    let mut ids = LocalIds::new(store);
    let mut report = PullReport::default();
    for q in pulled() {
        let table = q.table.name;
        let since = watermark(store, table)?
            .map(|t| t - chrono::Duration::from_std(OVERLAP).unwrap_or_default())
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let rows = client
            .query(&q.select(Select::PullSince), &[&since])
            .await?;
        let mut newest = None;
        for r in &rows {
            let vf: DateTime<Utc> = r.try_get(VALIDITY_FROM)?;
            newest = Some(newest.map_or(vf, |n: DateTime<Utc>| n.max(vf)));
            let p = decode(q, r, &mut ids)?;
            let key = mirror_entity_key(q.kind, p.id());
            if store.aux_get(MIRROR_PENDING_NS, &key)?.is_some() {
                tracing::warn!(
                    kind = q.kind,
                    id = p.id(),
                    "pull: central change skipped; a local write is not mirrored yet and wins"
                );
                report.conflicts += 1;
                continue;
            }
            if apply(store, &p)? {
                report.applied += 1;
            } else {
                report.unchanged += 1;
            }
        }
        if let Some(n) = newest {
            if watermark(store, table)?.is_none_or(|w| n > w) {
                watermark_set(store, table, n)?;
            }
        }
    }
    Ok(report)
}

/// Writes a pulled record unless the store already holds exactly it, keeping local-only
/// fields (an officer's PIN and language). Returns whether it wrote.
fn apply(store: &Store, p: &Entity) -> Result<bool, MirrorError> {
    macro_rules! put_if_changed {
        ($get:ident, $put:ident, $r:expr) => {{
            if store.$get($r.id)?.as_ref() == Some($r) {
                return Ok(false);
            }
            let r = $r.clone();
            store
                .write_from_central(|tx| -> TxResult<(), Infallible> { Ok(tx.$put(&r)?) })
                .map_err(crate::store::StoreError::from)?;
        }};
    }
    match p {
        Entity::Location(r) => put_if_changed!(location, put_location, r),
        Entity::Product(r) => put_if_changed!(product, put_product, r),
        Entity::Officer(r) => {
            let mut r = r.clone();
            if let Some(old) = store.officer(r.id)? {
                r.pin_hash = old.pin_hash;
                r.language = old.language;
            }
            put_if_changed!(officer, put_officer, &r)
        }
        Entity::Family(r) => put_if_changed!(family, put_family, r),
        Entity::Insuree(r) => put_if_changed!(insuree, put_insuree, r),
        Entity::Policy(r) => {
            let mut r = r.clone();
            if let Some(old) = store.policy(r.id)? {
                r.self_renewed = old.self_renewed;
            }
            put_if_changed!(policy, put_policy, &r)
        }
        Entity::InsureePolicy(r) => put_if_changed!(insuree_policy, put_insuree_policy, r),
        Entity::Premium(r) => put_if_changed!(premium, put_premium, r),
        Entity::Payment(r) => put_if_changed!(payment, put_payment, r),
        Entity::ControlNumber(r) => {
            put_if_changed!(control_number, put_control_number, r)
        }
    }
    Ok(true)
}

/// The pull task of `serve`: every `interval`, connect if needed and pull.
pub async fn run_puller(store: Store, dsn: String, interval: Duration, mut signal: Signal) {
    let mut client: Option<Client> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = signal.recv() => break,
        }
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            match super::connect(&dsn).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    tracing::debug!(error = %e, "pull: central database unreachable");
                    continue;
                }
            }
        }
        let Some(c) = client.as_ref() else { continue };
        match pull_once(c, &store).await {
            Ok(r) if r.applied + r.conflicts > 0 => {
                tracing::info!(
                    applied = r.applied,
                    conflicts = r.conflicts,
                    "pulled central changes"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pull failed; will retry next interval"),
        }
    }
}
