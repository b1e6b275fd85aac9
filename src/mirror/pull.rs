//! Central → local: the incremental pull (the one-off import is [`super::import`]).
//!
//! Owns: reading the current openIMIS rows (`ValidityTo IS NULL`) changed since each
//! table's watermark (the SELECT and the mapping to our records are each table's
//! description, in [`super::tables`]; the columns of the child tables its extras read are
//! spelled as the live catalogue spells them, [`super::spelling`]), applying them to the
//! store, and the per-table pull watermarks (aux `mirror.pull`: table → last
//! `ValidityFrom` seen, in µs).
//! Must never: write through a mirroring transaction (pulled rows use
//! [`Store::write_from_central`] or a bulk load, so they are not echoed back), overwrite
//! an entity that has an unmirrored local write (the conflict rule in [`super`]), or break
//! a local link the central row cannot carry (a payment line's policy, premium and paid
//! amount, a payment's control number, an officer's PIN, a policy's self-renewal mark).
//!
//! The pull re-reads a small overlap before its watermark, because `ValidityFrom` is the
//! writing transaction's start time and a long transaction may commit after a later one;
//! rows that did not change are recognised and skipped. The rows the gateway's own mirror
//! writer wrote come back this way: they are recognised by the id map (the writer maps a
//! central key to its local record right after its commit) and, being what the store
//! holds, skipped. The periodic pull ([`run_puller`]) leaves rows younger than
//! [`SETTLE`] for its next round, so it never reads a row of ours before the writer has
//! mapped it (it would take it for a new central record).

use std::convert::Infallible;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, Row as PgRow};

use super::idmap::LocalIds;
use super::rows::{self, Entity};
use super::schema::{Desc, Named, Select, VALIDITY_FROM};
use super::spelling::Spellings;
use super::MirrorError;
use crate::domain::Payment;
use crate::shutdown::Signal;
use crate::store::{mirror_entity_key, Store, TxResult, MIRROR_PENDING_NS};

pub use super::import::{import, ImportCounts};

const NS_WATERMARK: &str = "mirror.pull";
/// How far before the watermark each pull looks again (see the module doc).
const OVERLAP: Duration = Duration::from_secs(60);
/// How old a central row must be before the periodic pull applies it (see the module doc).
pub const SETTLE: Duration = Duration::from_secs(10);

/// The watermark of a table never pulled: the start of PostgreSQL's era (chrono's own
/// minimum is outside the range of a `timestamptz`, which the server refuses).
fn floor() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(-62_135_596_800, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The tables the pull reads, in dependency order.
pub(super) fn pulled() -> impl Iterator<Item = &'static Desc> {
    rows::all().into_iter().filter(|d| d.pull.is_some())
}

/// The record of a current central row of `desc`'s table, read by column name.
fn decode(desc: &Desc, r: &PgRow, ids: &mut LocalIds<'_>) -> Result<Entity, MirrorError> {
    let named = Named::new(r, &desc.table)?;
    Entity::read(desc, &named, ids)?.ok_or_else(|| MirrorError::UnknownKind(desc.kind.to_string()))
}

pub(super) fn watermark_set(
    store: &Store,
    table: &str,
    t: DateTime<Utc>,
) -> Result<(), MirrorError> {
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
    pull_settled(client, store, Duration::ZERO).await
}

/// [`pull_once`], leaving rows whose `ValidityFrom` is less than `settle` old for a later
/// pull (the watermark stops before them).
pub async fn pull_settled(
    client: &Client,
    store: &Store,
    settle: Duration,
) -> Result<PullReport, MirrorError> {
    let mut ids = LocalIds::new(store);
    let mut spellings = Spellings::default();
    let mut report = PullReport::default();
    let cutoff = Utc::now() - chrono::Duration::from_std(settle).unwrap_or_default();
    for q in pulled() {
        let table = q.table.name;
        let since = watermark(store, table)?
            .map(|t| t - chrono::Duration::from_std(OVERLAP).unwrap_or_default())
            .unwrap_or_else(floor)
            .max(floor());
        let sql = spellings.apply(client, q.select(Select::PullSince)).await?;
        let rows = client.query(&sql, &[&since]).await?;
        let mut newest = None;
        for r in &rows {
            let vf: DateTime<Utc> = r.try_get(VALIDITY_FROM)?;
            if !settle.is_zero() && vf > cutoff {
                break; // oldest first: the rest are younger still
            }
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

/// Keeps in a pulled payment what its central rows cannot carry (see the module doc): the
/// lines' policy, premium and paid amount, the control number until its row is mirrored,
/// and timestamps that differ from ours only below PostgreSQL's microsecond.
fn keep_local(pulled: &mut Payment, old: &Payment) {
    for d in &mut pulled.details {
        let same = |o: &&crate::domain::PaymentDetail| {
            o.product_code == d.product_code && o.chfid == d.chfid
        };
        if let Some(o) = old.details.iter().find(same) {
            d.policy = d.policy.or(o.policy);
            d.premium = d.premium.or(o.premium);
            d.amount = d.amount.or(o.amount);
        }
    }
    if pulled.control_number.is_none() {
        pulled.control_number.clone_from(&old.control_number);
    }
    // Below a microsecond: the writer sends whole microseconds, a SQL literal rounds.
    let same = |a: &DateTime<Utc>, b: &DateTime<Utc>| {
        (*a - *b).num_nanoseconds().is_some_and(|n| n.abs() < 1_000)
    };
    if same(&pulled.request_date, &old.request_date) {
        pulled.request_date = old.request_date;
    }
    for (p, o) in [
        (&mut pulled.received_date, old.received_date),
        (&mut pulled.payment_date, old.payment_date),
        (&mut pulled.matched_date, old.matched_date),
    ] {
        if let (Some(a), Some(b)) = (p.as_ref(), o.as_ref()) {
            if same(a, b) {
                *p = o;
            }
        }
    }
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
        Entity::Payment(r) => {
            let mut r = r.clone();
            if let Some(old) = store.payment(r.id)? {
                keep_local(&mut r, &old);
            }
            put_if_changed!(payment, put_payment, &r)
        }
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
        match pull_settled(c, &store, SETTLE).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Money, PaymentDetail, PaymentStatus, PolicyStage};
    use crate::store::fixtures as fx;

    fn line(policy: Option<u64>) -> PaymentDetail {
        PaymentDetail {
            product_code: "PRD".into(),
            chfid: fx::chfid(1),
            stage: PolicyStage::Renewal,
            policy,
            expected_amount: Money::tzs(30_000),
            amount: None,
            premium: None,
        }
    }

    /// Our payment read back from its central rows: what they carry is taken (the
    /// status), what they cannot carry is kept (the policy link, a control number not
    /// mirrored yet, nanoseconds).
    #[test]
    fn a_pulled_payment_keeps_the_links_its_rows_cannot_carry() {
        let mut ours = fx::payment(8, Some("991"));
        ours.details = vec![line(Some(5))];
        ours.request_date += chrono::Duration::nanoseconds(123_456_789);
        let mut pulled = ours.clone();
        pulled.details = vec![line(None)];
        pulled.control_number = None;
        pulled.request_date =
            DateTime::<Utc>::from_timestamp_micros(ours.request_date.timestamp_micros()).unwrap();
        pulled.status = PaymentStatus::Received;
        keep_local(&mut pulled, &ours);
        assert_eq!(pulled.details[0].policy, Some(5));
        assert_eq!(pulled.control_number.as_deref(), Some("991"));
        assert_eq!(pulled.request_date, ours.request_date);
        assert_eq!(pulled.status, PaymentStatus::Received);
        let mut back = pulled.clone();
        back.status = ours.status;
        assert_eq!(back, ours, "nothing else differs");

        // A line for another insuree gains nothing; a central control number wins.
        let mut other = ours.clone();
        other.details[0].chfid = fx::chfid(2);
        other.details[0].policy = None;
        other.control_number = Some("992".into());
        keep_local(&mut other, &ours);
        assert_eq!(other.details[0].policy, None);
        assert_eq!(other.control_number.as_deref(), Some("992"));
    }

    #[test]
    fn the_first_pull_starts_where_postgresql_can() {
        assert_eq!(floor().to_rfc3339(), "0001-01-01T00:00:00+00:00");
    }
}
